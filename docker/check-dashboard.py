#!/usr/bin/env python3
"""Checks that every metric the Grafana dashboard queries is exported by a running FreeRouter.

    check-dashboard.py DASHBOARD.json METRICS_URL_OR_FILE...

Reads the metric names out of every panel target's `expr`, reads the live `/metrics` of the gateway
and the maintainer (URLs, or files holding their text), and fails listing the names that none of
them exports. A histogram's `_bucket`, `_sum` and `_count` series count as exported when the live
text has that series, or declares the base name as a histogram (`# TYPE … histogram`). A bare
histogram name is not a series and is reported. With `--promtool PATH`, every expression is also
parsed by `promtool check rules` (Grafana's `$__…` variables replaced by a fixed range).
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
import urllib.request

NAME = re.compile(r"\bfreerouter_[a-zA-Z0-9_:]*")
SUFFIXES = ("_bucket", "_sum", "_count")


def exprs_of(dashboard):
    """Every `expr` of every panel target, rows' nested panels included."""
    found = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((panel.get("title", "?"), target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    return found


def live_names(texts):
    """(series names with samples, {declared name: type}) over all the /metrics texts."""
    series, declared = set(), {}
    for text in texts:
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                parts = line.split()
                if len(parts) >= 4:
                    declared[parts[2]] = parts[3]
            elif line and not line.startswith("#"):
                series.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return series, declared


def is_exported(name, series, declared):
    if name in series:
        return True
    if declared.get(name) in ("counter", "gauge", "untyped"):
        return True
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            kind = declared.get(base)
            if kind == "histogram" or (kind == "summary" and suffix != "_bucket"):
                return True
    return False


def read(source):
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=10) as response:
            return response.read().decode()
    with open(source, encoding="utf-8") as f:
        return f.read()


def promtool_parse(promtool, exprs):
    """Runs every expression through `promtool check rules`; returns its complaint or None."""
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr_{i}", "expr": re.sub(r"\$__\w+", "5m", expr)}
        for i, (_, expr) in enumerate(exprs)
    ]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        json.dump(rules, f)  # JSON is YAML
        path = f.name
    done = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stdout + done.stderr).strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dashboard")
    parser.add_argument("metrics", nargs="+", help="a /metrics URL or a file with its text")
    parser.add_argument("--promtool", help="also parse every expression with this promtool")
    args = parser.parse_args()

    with open(args.dashboard, encoding="utf-8") as f:
        exprs = exprs_of(json.load(f))
    if not exprs:
        sys.exit("FAIL dashboard: no panel has an expr")
    wanted = {}
    for title, expr in exprs:
        for name in NAME.findall(expr):
            wanted.setdefault(name, set()).add(title)
    series, declared = live_names(read(source) for source in args.metrics)
    missing = sorted(n for n in wanted if not is_exported(n, series, declared))
    ok = True
    if missing:
        ok = False
        print(f"FAIL dashboard metrics: {len(missing)} of {len(wanted)} names not exported:")
        for name in missing:
            print(f"  {name}  (panels: {', '.join(sorted(wanted[name]))})")
    else:
        print(f"PASS dashboard metrics: all {len(wanted)} names in {len(exprs)} queries are exported")
    if args.promtool:
        complaint = promtool_parse(args.promtool, exprs)
        if complaint:
            ok = False
            print(f"FAIL dashboard queries do not parse:\n{complaint}")
        else:
            print(f"PASS dashboard queries parse ({len(exprs)} expressions, promtool)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
