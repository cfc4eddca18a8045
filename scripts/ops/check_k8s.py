"""Validates the rendered Kubernetes manifests (kubectl kustomize output on stdin) offline.

1. Every object against the Kubernetes OpenAPI schemas of kubernetes-validate for K8S_VERSION,
   strict (unknown fields are errors). Custom resources have no schema there: each kind we use
   is listed in CUSTOM_SCHEMAS with the operator's own CRD schema, vendored under
   deploy/k8s/schemas/ and made strict the same way; any other unknown kind is an error.
2. What the schemas cannot say: pod hardening and probes, the bridge's drain timing, the
   Ingress routes and limits against the Caddyfile, settings against .env.example, the static
   server's headers against the Caddyfile's, HPA/PDB targets, and the prometheus-adapter rule
   against the metric contract and the HPA.
Prints counts; exits 1 on any problem.

Usage: kubectl kustomize deploy/k8s/overlays/production | check_k8s.py REPO_ROOT
"""

import json
import os
import re
import sys

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

from metrics_contract import check_expr

K8S_VERSION = "1.30.0"
CUSTOM_SCHEMAS = {
    # Redis from OT-Container-Kit redis-operator v0.26.0 (deploy/k8s/base/redis.yaml).
    ("redis.redis.opstreelabs.in/v1beta2", "Redis"):
        "deploy/k8s/schemas/redis.redis.opstreelabs.in_v1beta2_redis.json",
}
SERVICES = {"token-svc": "TOKEN_SVC", "tools-svc": "TOOLS_SVC", "webhook-svc": "WEBHOOK_SVC",
            "media-bridge": "MEDIA_BRIDGE"}
SECRET_KEYS = {"CALLWAY_SESSION_SECRET", "SUPABASE_SERVICE_KEY", "OPENAI_API_KEY",
               "TELNYX_API_KEY", "REDIS_URL"}
# media-bridge: Tuning::drain_deadline (30 s) + the 5 s hard stop after it.

problems = []


def bad(msg):
    problems.append(msg)


def strictify(schema):
    """Like kubernetes-validate's -strict schemas: objects with properties allow nothing else."""
    if isinstance(schema, dict):
        out = {k: strictify(v) for k, v in schema.items() if k != "$comment"}
        if "properties" in out and "additionalProperties" not in out \
                and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strictify(x) for x in schema]
    return schema


def validate_schemas(docs, root):
    native = custom = 0
    for d in docs:
        name = f"{d.get('kind')}/{d.get('metadata', {}).get('name')}"
        key = (d.get("apiVersion"), d.get("kind"))
        if key in CUSTOM_SCHEMAS:
            with open(os.path.join(root, CUSTOM_SCHEMAS[key])) as f:
                schema = strictify(json.load(f))
            for e in jsonschema.Draft7Validator(schema).iter_errors(d):
                bad(f"{name}: {'.'.join(map(str, e.path))}: {e.message}")
            custom += 1
            continue
        try:
            kubernetes_validate.validate(d, K8S_VERSION, strict=True)
            native += 1
        except ValidationError as e:
            bad(f"{name}: {'.'.join(map(str, e.path))}: {e.message}")
        except SchemaNotFoundError:
            bad(f"{name}: no schema for {key} in Kubernetes {K8S_VERSION} and none vendored")
    return native, custom


def env_example(root):
    text = open(os.path.join(root, ".env.example")).read()
    services = text.split("# === Read by Caddy and docker compose only")[0]
    return {l.split("=", 1)[0].strip(): l.split("=", 1)[1] for l in services.splitlines()
            if "=" in l and not l.lstrip().startswith("#")}


def check_pods(docs, env):
    deps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for name, d in deps.items():
        spec = d["spec"]["template"]["spec"]
        if spec.get("automountServiceAccountToken") is not False:
            bad(f"{name}: automountServiceAccountToken is not false")
        psc = spec.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            bad(f"{name}: pod securityContext lacks runAsNonRoot or seccomp RuntimeDefault")
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c.get("securityContext", {})
            if not (sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True
                    and sc.get("capabilities", {}).get("drop") == ["ALL"]):
                bad(f"{name}/{c['name']}: container securityContext is not hardened")
            res = c.get("resources", {})
            if not all(k in res.get(w, {}) for w in ("requests", "limits") for k in ("cpu", "memory")):
                bad(f"{name}/{c['name']}: cpu/memory requests and limits missing")
        for c in spec["containers"]:
            if "readinessProbe" not in c or "livenessProbe" not in c:
                bad(f"{name}/{c['name']}: readiness or liveness probe missing")
        if name in SERVICES:
            c = spec["containers"][0]
            prefix = SERVICES[name]
            if c.get("command") != [name]:
                bad(f"{name}: command is {c.get('command')}, not [{name}]")
            if spec.get("enableServiceLinks") is not False:
                bad(f"{name}: service links would set {prefix}_PORT=tcp://...")
            port = c["ports"][0]["containerPort"]
            if str(port) != env.get(f"{prefix}_PORT"):
                bad(f"{name}: container port {port} is not {prefix}_PORT of .env.example")
            if c["readinessProbe"].get("httpGet", {}).get("path") != "/health":
                bad(f"{name}: readiness is not GET /health")
            if "httpGet" in c["livenessProbe"]:
                bad(f"{name}: liveness must not depend on /health (it reports Redis and the lead store)")
            envs = {e["name"]: e.get("value", "") for e in c.get("env", [])}
            for attr in ("k8s.pod.name=", "k8s.namespace.name=", "service.instance.id="):
                if attr not in envs.get("OTEL_RESOURCE_ATTRIBUTES", ""):
                    bad(f"{name}: OTEL_RESOURCE_ATTRIBUTES lacks {attr}")
    b = deps.get("media-bridge")
    if b:
        spec = b["spec"]["template"]["spec"]
        c = spec["containers"][0]
        cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        if len(cmd) != 2 or cmd[0] != "sleep":
            bad("media-bridge: no preStop sleep (the Ingress must stop routing before SIGTERM)")
        else:
            envs = {e["name"]: e.get("value", "") for e in c.get("env", [])}
            drain = int(envs.get("MEDIA_BRIDGE_DRAIN_SECS", "30"))
            # preStop, then the drain, then the bridge's 5 s hard stop.
            need = int(cmd[1]) + drain + 5
            if spec.get("terminationGracePeriodSeconds", 30) < need:
                bad(f"media-bridge: terminationGracePeriodSeconds < preStop + drain + 5 ({need})")
            if "tcpSocket" not in c["livenessProbe"]:
                bad("media-bridge: liveness must be a TCP connect (the port stays open while it drains)")
    return deps


def caddy_routes(root):
    """path -> (service, body limit) from the Caddyfile's handle blocks."""
    text = open(os.path.join(root, "Caddyfile")).read()
    var_to_svc = {f"{v}_UPSTREAMS": k for k, v in SERVICES.items()}
    routes = {}
    named = dict(re.findall(r"^\s*@(\w+) path (.+)$", text, re.M))
    for m in re.finditer(r"^\thandle (\S+) \{\n(.*?)^\t\}", text, re.M | re.S):
        matcher, body = m.groups()
        up = re.search(r"reverse_proxy \{\$(\w+)", body)
        if not up:
            continue
        paths = named[matcher[1:]].split() if matcher.startswith("@") else [matcher]
        size = re.search(r"max_size (\d+)KiB", body)
        for p in paths:
            routes[p.removesuffix("/*")] = (var_to_svc[up.group(1)], f"{size.group(1)}k" if size else None)
    return routes


def check_ingress(docs, root):
    routes = caddy_routes(root)
    seen = {}
    for d in docs:
        if d["kind"] != "Ingress":
            continue
        ann = d["metadata"].get("annotations", {})
        for rule in d["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                seen[p["path"]] = (p["backend"]["service"]["name"],
                                   ann.get("nginx.ingress.kubernetes.io/proxy-body-size"), ann)
    for path, (svc, size) in routes.items():
        if path not in seen:
            bad(f"Ingress: Caddyfile route {path} is not routed")
            continue
        if seen[path][0] != svc:
            bad(f"Ingress: {path} goes to {seen[path][0]}, the Caddyfile sends it to {svc}")
        if size and seen[path][1] != size:
            bad(f"Ingress: {path} body limit {seen[path][1]}, the Caddyfile's is {size}")
    extra = set(seen) - set(routes) - {"/"}
    if extra:
        bad(f"Ingress: paths the Caddyfile does not route: {sorted(extra)}")
    if seen.get("/", ("",))[0] != "static":
        bad("Ingress: / does not go to the static page")
    media = seen.get("/media", (None, None, {}))[2]
    for k in ("proxy-read-timeout", "proxy-send-timeout"):
        if int(media.get(f"nginx.ingress.kubernetes.io/{k}", "0")) < 3600:
            bad(f"Ingress /media: {k} below 3600 s would cut long calls")
    if seen.get("/api/health", (None, None, {}))[2].get("nginx.ingress.kubernetes.io/rewrite-target") != "/health":
        bad("Ingress /api/health is not rewritten to /health")
    return len(seen)


def check_settings(docs, env):
    cms = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("callway-config")]
    if len(cms) != 1:
        bad("expected one callway-config ConfigMap")
        return
    for key in cms[0]["data"]:
        if key not in env:
            bad(f"callway-config: {key} is not a setting of .env.example")
        if key in SECRET_KEYS:
            bad(f"callway-config: {key} is a key: it belongs in callway-secrets")
    for key in SECRET_KEYS:
        if key not in env:
            bad(f"secret key {key} is not a setting of .env.example")


def header_block(text):
    m = re.search(r"^\theader \{\n(.*?)^\t\}", text, re.M | re.S)
    return [l.strip() for l in m.group(1).splitlines() if l.strip() and not l.strip().startswith("#")] if m else None


def check_static(root):
    main = header_block(open(os.path.join(root, "Caddyfile")).read())
    static = header_block(open(os.path.join(root, "deploy/k8s/base/static.Caddyfile")).read())
    if not main or main != static:
        bad("static.Caddyfile's security headers differ from the Caddyfile's")


def check_scaling(docs, deps, root):
    hpas = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    for h in hpas:
        if h["spec"]["scaleTargetRef"]["name"] not in deps:
            bad(f"HPA {h['metadata']['name']}: no such Deployment")
    for p in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
        sel = p["spec"]["selector"]["matchLabels"]
        if not any(sel.items() <= d["spec"]["template"]["metadata"]["labels"].items() for d in deps.values()):
            bad(f"PDB {p['metadata']['name']}: selects no pod")
    with open(os.path.join(root, "deploy/k8s/prometheus-adapter/rules.yaml")) as f:
        adapter = yaml.safe_load(f)["rules"]["custom"]
    served = set()
    for r in adapter:
        for e in check_expr(r["seriesQuery"]):
            bad(f"prometheus-adapter seriesQuery: {e}")
        served.add(r["name"]["as"])
        labels = set(r["resources"]["overrides"])
        if labels != {"k8s_namespace_name", "k8s_pod_name"}:
            bad(f"prometheus-adapter: resource labels {labels} are not the ones the pods set")
    for h in hpas:
        for m in h["spec"].get("metrics", []):
            if m["type"] == "Pods" and m["pods"]["metric"]["name"] not in served:
                bad(f"HPA {h['metadata']['name']}: metric {m['pods']['metric']['name']} is not served by prometheus-adapter")
    if not any(m["type"] == "Pods" for h in hpas if h["metadata"]["name"] == "media-bridge" for m in h["spec"]["metrics"]):
        bad("media-bridge HPA does not scale on live calls")
    return len(hpas)


def main():
    root = sys.argv[1]
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    native, custom = validate_schemas(docs, root)
    env = env_example(root)
    deps = check_pods(docs, env)
    n_paths = check_ingress(docs, root)
    check_settings(docs, env)
    check_static(root)
    n_hpa = check_scaling(docs, deps, root)
    for p in problems:
        print(f"  {p}")
    print(f"kubernetes-validate {kubernetes_validate.__version__} (Kubernetes {K8S_VERSION}, strict): "
          f"{native} objects valid; {custom} custom resources against their vendored CRD schema; "
          f"{len(deps)} Deployments, {n_paths} Ingress paths, {n_hpa} HPAs cross-checked; "
          f"{len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
