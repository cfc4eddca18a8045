"""docker-compose.yml and the collector configs, where checkov has no rules (it has no
docker compose framework: it scans the Dockerfile, not the compose file).

Hardening: nothing privileged, no host network or added capabilities, only Caddy published on
all interfaces (the UIs on 127.0.0.1), every pulled image at a fixed version. Wiring: the
collector's metrics pipeline is complete and Prometheus scrapes its exporter, Grafana's data
source is that Prometheus, and the Kubernetes collector's metrics pipeline matches compose's.

Usage: check_compose.py REPO_ROOT
"""

import os
import re
import sys
from urllib.parse import urlparse

import yaml


def main():
    root = sys.argv[1]
    load = lambda p: yaml.safe_load(open(os.path.join(root, p)))
    services = load("docker-compose.yml")["services"]
    problems = []
    for name, s in services.items():
        if s.get("privileged") or s.get("network_mode") == "host" or s.get("cap_add"):
            problems.append(f"{name}: privileged, host network or added capabilities")
        for p in s.get("ports", []):
            if name != "caddy" and not str(p).startswith("127.0.0.1:"):
                problems.append(f"{name}: port {p} is published beyond 127.0.0.1")
        image = s.get("image", "")
        if "build" not in s and not re.search(r":(v?\d+(\.\d+)*[\w.-]*)$", image):
            problems.append(f"{name}: image {image!r} has no fixed version")
    if not re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", services["grafana"]["image"]):
        problems.append("grafana: pin an exact x.y.z version")

    otel = load("deploy/otel-collector.yaml")
    metrics = otel["service"]["pipelines"].get("metrics", {})
    for kind in ("receivers", "processors", "exporters"):
        for c in metrics.get(kind, []):
            if c not in otel[kind]:
                problems.append(f"collector: metrics {kind[:-1]} {c} is not defined")
    if "prometheus" not in metrics.get("exporters", []):
        problems.append("collector: no prometheus exporter in the metrics pipeline")
    port = otel["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    prom = load("deploy/prometheus/prometheus.yml")
    targets = [t for j in prom["scrape_configs"] for c in j.get("static_configs", []) for t in c["targets"]]
    if f"otel-collector:{port}" not in targets:
        problems.append(f"prometheus: does not scrape otel-collector:{port}")
    if not all(j.get("honor_labels") for j in prom["scrape_configs"]):
        problems.append("prometheus: honor_labels off would rename the exporter's job/instance")
    ds = load("deploy/grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    if urlparse(ds["url"]).hostname not in services:
        problems.append(f"grafana: data source {ds['url']} is not a compose service")

    k8s = load("deploy/k8s/base/otel-collector-config.yaml")
    same = lambda c: (c["service"]["pipelines"]["metrics"], c["exporters"]["prometheus"],
                      c["processors"]["resource/metrics"])
    if same(k8s) != same(otel):
        problems.append("the Kubernetes collector's metrics pipeline differs from compose's")
    for p in problems:
        print(f"  {p}")
    print(f"compose and collector: {len(services)} services checked, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
