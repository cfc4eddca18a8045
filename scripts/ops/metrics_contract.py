"""The metric contract between the services and the ops files, in its Prometheus form.

The services emit OpenTelemetry instruments; the collector's Prometheus exporter turns dots into
underscores, adds `_total` to counters and `_seconds` for unit `s` (units in braces add nothing),
and, with resource_to_telemetry_conversion, turns resource attributes into labels. Every PromQL
expression in the dashboard, the alerts and the prometheus-adapter rules is checked against this
list, so a renamed instrument or a typo in a label value fails scripts/ops-checks instead of
leaving an empty panel or an alert that can never fire.
"""

import re

# Labels every series may carry: `job` (service.name), `instance` (service.instance.id), and
# the resource attributes the Kubernetes manifests set (OTEL_RESOURCE_ATTRIBUTES).
RESOURCE_LABELS = {
    "job", "instance", "service_name", "service_instance_id", "service_version",
    "k8s_pod_name", "k8s_namespace_name",
}

HTTP = {"http_request_method": None, "http_route": None, "http_response_status_code": None}

# Prometheus metric family -> {label: allowed values or None (free)}.
_FAMILIES = {
    "http_server_request_duration_seconds": ("histogram", HTTP),
    "callway_web_sessions_started_total": ("counter", {}),
    "callway_web_sessions_active": ("gauge", {}),
    "callway_web_sessions_refused_total": (
        "counter", {"reason": {"busy", "rate_limited", "upstream", "invalid", "unavailable"}}),
    "callway_leads_saved_total": ("counter", {}),
    "callway_leads_refused_total": ("counter", {"code": None}),
    "callway_callbacks_requested_total": ("counter", {}),
    "callway_callbacks_refused_total": ("counter", {"reason": {
        "cooldown", "already_requested", "rate_limited", "daily_cap", "unavailable",
        "invalid"}}),
    "callway_callbacks_dialled_total": ("counter", {}),
    "callway_callbacks_dial_failed_total": ("counter", {}),
    "callway_callbacks_answered_total": ("counter", {}),
    "callway_callbacks_ended_total": ("counter", {"outcome": {
        "completed", "voicemail", "no_answer", "busy", "failed"}}),
    "callway_webhooks_received_total": ("counter", {
        "result": {"verified", "refused"},
        "reason": {"", "signature_missing", "signature_invalid", "timestamp_out_of_window"}}),
    "callway_bridge_calls_active": ("gauge", {}),
    "callway_bridge_calls_limit": ("gauge", {}),
    "callway_bridge_admission_refused_total": (
        "counter", {"reason": {"full", "token", "draining"}}),
    "callway_bridge_frame_added_latency_seconds": (
        "histogram", {"direction": {"to_openai", "to_telnyx"}}),
    "callway_bridge_voice_to_voice_latency_seconds": ("histogram", {}),
    "callway_upstream_errors_total": ("counter", {"peer": {"openai", "telnyx"}, "kind": None}),
}


def _series():
    out = {}
    for name, (kind, labels) in _FAMILIES.items():
        if kind == "histogram":
            out[name + "_bucket"] = dict(labels, le=None)
            out[name + "_count"] = dict(labels)
            out[name + "_sum"] = dict(labels)
        else:
            out[name] = dict(labels)
    return out


METRICS = _series()

# PromQL functions, aggregations and keywords the ops files may use.
FUNCTIONS = {
    "sum", "max", "min", "avg", "count", "topk", "bottomk", "rate", "irate", "increase",
    "histogram_quantile", "vector", "scalar", "clamp_min", "clamp_max", "abs", "max_over_time",
    "min_over_time", "avg_over_time", "absent", "label_replace", "round",
}
KEYWORDS = {"and", "or", "unless", "bool", "offset"}
GROUPING = ("by", "without", "on", "ignoring", "group_left", "group_right")

_IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"


def check_expr(expr):
    """Problems found in one PromQL expression (an empty list when it only uses the contract)."""
    problems = []
    if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
        problems.append("unbalanced brackets")
    # prometheus-adapter templates and Grafana variables are not PromQL.
    text = re.sub(r"<<[^>]*>>", "", expr)
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges such as [5m] or [$__rate_interval]
    text = re.sub(r"\$\{?\w+\}?", "", text)
    used = []
    # A metric name followed by its matchers: check label names and enumerated values.
    for m in re.finditer(rf"({_IDENT})?\s*\{{([^}}]*)\}}", text):
        name, body = m.group(1), m.group(2)
        if name and name not in FUNCTIONS and name not in KEYWORDS and name not in GROUPING:
            used.append(name)
        allowed = METRICS.get(name, {}) if name in METRICS else None
        for lm in re.finditer(rf"({_IDENT})\s*(=~|!~|!=|=)\s*\"([^\"]*)\"", body):
            label, op, value = lm.groups()
            if label == "__name__":
                continue
            if allowed is None:
                continue  # the name itself is reported below
            if label not in allowed and label not in RESOURCE_LABELS:
                problems.append(f"{name}: label {label} is not in the contract")
                continue
            enum = allowed.get(label)
            if enum is not None and op in ("=", "!="):
                if value not in enum:
                    problems.append(f"{name}: {label}={value!r} is not one of {sorted(enum)}")
            elif enum is not None:
                for alt in value.split("|"):
                    if re.fullmatch(r"[a-z_]*", alt) and alt not in enum:
                        problems.append(f"{name}: {label}=~ alternative {alt!r} is not one of {sorted(enum)}")
    text = re.sub(r"\{[^}]*\}", " ", text)
    all_labels = RESOURCE_LABELS | {label for labels in METRICS.values() for label in labels}
    for m in re.finditer(r"\b(%s)\s*\(([^)]*)\)" % "|".join(GROUPING), text):
        for label in filter(None, (x.strip() for x in m.group(2).split(","))):
            if label not in all_labels:
                problems.append(f"grouping label {label} is not in the contract")
    text = re.sub(r"\b(%s)\s*\([^)]*\)" % "|".join(GROUPING), " ", text)
    text = re.sub(r'"[^"]*"', " ", text)
    for m in re.finditer(rf"({_IDENT})\s*(\()?", text):
        word, call = m.group(1), m.group(2)
        if word in KEYWORDS:
            continue
        if call:
            if word not in FUNCTIONS:
                problems.append(f"unknown function {word}")
        elif re.fullmatch(r"\d+[smhdwy]?|e\d+", word):
            continue
        else:
            used.append(word)
    for name in used:
        if name not in METRICS:
            problems.append(f"metric {name} is not in the contract")
    if not any(n in METRICS for n in used):
        problems.append("uses no contract metric")
    return problems


def metrics_in(expr):
    """Contract metric names an expression uses."""
    words = set(re.findall(_IDENT, re.sub(r'"[^"]*"', " ", expr)))
    return words & set(METRICS)
