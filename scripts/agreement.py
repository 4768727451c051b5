#!/usr/bin/env python3
"""Agreement of a repeated run: `callwall run --repeat N --json FILE`, then
`scripts/agreement.py FILE`.

A call agrees when it got the same verdict in every repeat of its scenario (a call placed
several times within a scenario, `repeat = K`, is K calls: `name#1` .. `name#K`). A repeat
meets its expectations when every call with an expectation met it, every distribution
(`expect = { verdict = "lo-hi%" }`) was met and no run failed. Exit 0 when every repeat met
every expectation, 1 otherwise.
"""
import collections
import json
import sys


def main(path):
    with open(path) as f:
        doc = json.load(f)
    verdicts = collections.defaultdict(dict)  # (scenario, call) -> {repeat: verdict}
    misses = collections.defaultdict(list)  # repeat -> ["scenario/call: got (expected)"]
    repeats = set()
    for run in doc["runs"]:
        rep = run.get("repeat") or 0
        repeats.add(rep)
        if run.get("error"):
            misses[rep].append(f"{run['scenario']}: run failed: {run['error']}")
        for c in run.get("calls", []):
            verdicts[(run["scenario"], c["name"])][rep] = c["verdict"]
            if c.get("expected") is not None and not c.get("met", True):
                misses[rep].append(f"{run['scenario']}/{c['name']}: {c['verdict']} (expected {c['expected']})")
        for d in run.get("distributions") or []:
            if not d.get("met", True):
                misses[rep].append(f"{run['scenario']}/{d['call']}: {d['counts']} (expected {d['expected']})")
    n = len(repeats)
    agree = [k for k, v in verdicts.items() if len(v) == n and len(set(v.values())) == 1]
    print(f"{len(verdicts)} calls x {n} repeats: {len(agree)} agree ({100.0 * len(agree) / max(1, len(verdicts)):.1f} %)")
    for k, v in sorted(verdicts.items()):
        if k not in agree:
            counts = collections.Counter(v.values())
            missing = n - len(v)
            extra = f", missing in {missing} repeats" if missing else ""
            print(f"  differ {k[0]}/{k[1]}: " + ", ".join(f"{x} {c}" for x, c in counts.most_common()) + extra)
    met = [r for r in sorted(repeats) if not misses[r]]
    print(f"repeats meeting every expectation: {len(met)} of {n}")
    for r in sorted(repeats):
        for m in misses[r]:
            print(f"  repeat {r}: {m}")
    return 0 if len(met) == n else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: agreement.py RESULTS.json (from callwall run --repeat N --json)")
    sys.exit(main(sys.argv[1]))
