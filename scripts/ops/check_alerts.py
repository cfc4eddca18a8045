"""What promtool cannot check in deploy/prometheus/alerts.yml: every expression uses only contract
metrics and labels (metrics_contract.py), every alert has a summary and a runbook whose anchor
exists in documentations.md, and alerts.test.yml has a case that fires it and one that does not.

Usage: check_alerts.py ALERTS_YML ALERTS_TEST_YML DOCUMENTATIONS_MD
"""

import re
import sys

import yaml

from metrics_contract import check_expr


def main():
    alerts_path, tests_path, docs_path = sys.argv[1:4]
    rules = [r for g in yaml.safe_load(open(alerts_path))["groups"] for r in g["rules"]]
    tests = yaml.safe_load(open(tests_path))["tests"]
    docs = open(docs_path).read()
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', docs))
    fires, quiet = set(), set()
    for t in tests:
        for a in t.get("alert_rule_test", []):
            (fires if a.get("exp_alerts") else quiet).add(a["alertname"])
    problems = []
    for r in rules:
        name = r.get("alert") or r.get("record")
        problems += [f"{name}: {e}" for e in check_expr(r["expr"])]
        if "alert" not in r:
            continue
        ann = r.get("annotations", {})
        if not ann.get("summary"):
            problems.append(f"{name}: no summary")
        runbook = ann.get("runbook", "")
        file, _, anchor = runbook.partition("#")
        if file != "documentations.md" or anchor not in anchors:
            problems.append(f"{name}: runbook {runbook!r} is not an anchor of documentations.md")
        if name not in fires or name not in quiet:
            problems.append(f"{name}: alerts.test.yml needs a case that fires it and one that does not")
    for p in problems:
        print(f"  {p}")
    print(f"alerts: {len(rules)} rules on the metric contract, runbooks and tests checked, "
          f"{len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
