"""Checks deploy/grafana/dashboards/*.json the way Grafana 11 would load it (no Grafana runs here):
the dashboard model's required fields, a schemaVersion the pinned Grafana migrates forward, panel
ids and grid positions, every query on the provisioned Prometheus data source (by uid), every
PromQL expression only on contract metrics (metrics_contract.py), and the panels on-call needs.
Prints one line per dashboard; exits 1 on the first file with problems.

Usage: check_dashboard.py DATASOURCES_YAML DASHBOARD_JSON...
"""

import json
import sys

import yaml

from metrics_contract import check_expr, metrics_in

# Grafana 11.3 writes schemaVersion 39/40 and migrates anything older; 36 is where panels and
# targets name their data source by {type, uid}, which this dashboard relies on.
SCHEMA_MIN, SCHEMA_MAX = 36, 39
PANEL_TYPES = {"row", "timeseries", "stat", "bargauge", "gauge", "table", "text"}

# What documentations.md §10 promises the dashboard shows, as metric names that must be queried.
REQUIRED = {
    "funnel": {"http_server_request_duration_seconds_count", "callway_web_sessions_started_total",
               "callway_leads_saved_total", "callway_callbacks_requested_total",
               "callway_callbacks_answered_total", "callway_callbacks_ended_total"},
    "latency": {"http_server_request_duration_seconds_bucket",
                "callway_bridge_frame_added_latency_seconds_bucket",
                "callway_bridge_voice_to_voice_latency_seconds_bucket"},
    "errors": {"callway_upstream_errors_total", "callway_webhooks_received_total"},
    "capacity": {"callway_bridge_calls_active", "callway_bridge_calls_limit"},
}


def datasource_uids(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    return {d["uid"]: d["type"] for d in doc["datasources"]}


def check(path, uids):
    problems = []
    with open(path) as f:
        d = json.load(f)
    for key, kind in (("uid", str), ("title", str), ("schemaVersion", int), ("panels", list),
                      ("time", dict), ("templating", dict)):
        if not isinstance(d.get(key), kind):
            problems.append(f"dashboard field {key} missing or not {kind.__name__}")
    if problems:
        return problems, 0, 0
    if not SCHEMA_MIN <= d["schemaVersion"] <= SCHEMA_MAX:
        problems.append(f"schemaVersion {d['schemaVersion']} outside {SCHEMA_MIN}..{SCHEMA_MAX}")
    flat = []
    for p in d["panels"]:
        flat.append(p)
        flat.extend(p.get("panels", []))
    ids, used, n_expr = set(), set(), 0
    for p in flat:
        where = f"panel {p.get('id')} {p.get('title')!r}"
        if not isinstance(p.get("id"), int) or p["id"] in ids:
            problems.append(f"{where}: id missing or repeated")
        ids.add(p.get("id"))
        if p.get("type") not in PANEL_TYPES:
            problems.append(f"{where}: type {p.get('type')!r} is not a core Grafana 11 panel")
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "xywh") or g["x"] + g["w"] > 24 or g["w"] < 1:
            problems.append(f"{where}: gridPos {g} is not within the 24-column grid")
        if p.get("type") == "row":
            continue
        targets = p.get("targets") or []
        if not targets:
            problems.append(f"{where}: no query")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or None in refs:
            problems.append(f"{where}: refIds missing or repeated")
        for ds in [p.get("datasource")] + [t.get("datasource") for t in targets]:
            if not isinstance(ds, dict) or uids.get(ds.get("uid")) != ds.get("type"):
                problems.append(f"{where}: data source {ds} is not a provisioned one {uids}")
        for t in targets:
            n_expr += 1
            expr = t.get("expr", "")
            used |= metrics_in(expr)
            problems += [f"{where} {t.get('refId')}: {e}" for e in check_expr(expr)]
    for topic, needed in REQUIRED.items():
        if needed - used:
            problems.append(f"{topic}: no panel queries {sorted(needed - used)}")
    return problems, len(flat), n_expr


def main():
    uids = datasource_uids(sys.argv[1])
    bad = False
    for path in sys.argv[2:]:
        problems, n_panels, n_expr = check(path, uids)
        for p in problems:
            print(f"{path}: {p}")
        bad |= bool(problems)
        print(f"dashboard {path}: {n_panels} panels, {n_expr} PromQL expressions, "
              f"{'FAILED' if problems else 'ok'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
