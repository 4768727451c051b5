#!/usr/bin/env python3
"""Prints the README's default-suite table from a results JSON (`make run` writes
results/results.json): one row per scenario with its verdict counts, its workloads' outcomes and
the calls that still connected. Usage: scripts/readme_table.py results/results.json"""
import collections
import json
import sys


def main(path):
    doc = json.load(open(path))
    print("| scenario | calls | connected | degraded | cut | blocked | workloads | what still gets through (connected) |")
    print("|---|--:|--:|--:|--:|--:|---|---|")
    for r in sorted(doc["runs"], key=lambda r: r["scenario"]):
        calls = r.get("calls", [])
        n = collections.Counter(c["verdict"] for c in calls)
        w = collections.Counter(x["outcome"] for x in r.get("workloads", []))
        wl = ", ".join(f"{k} {v}" for k, v in sorted(w.items())) or "—"
        # The name, or transport/strategy when the name is just those two (as the table shows).
        shown = lambda c: (f"{c['transport']}/{c['strategy']}"
                           if c["name"] == f"{c['transport']}-{c['strategy']}" else c["name"])
        ok = sorted(shown(c) for c in calls if c["verdict"] == "connected")
        through = ", ".join(ok[:8]) + (f", ... ({len(ok) - 8} more)" if len(ok) > 8 else "")
        print(f"| {r['scenario']} | {len(calls)} | {n['connected']} | {n['degraded']} | {n['cut']} "
              f"| {n['blocked']} | {wl} | {through or '—'} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/results.json")
