#!/bin/bash
# Estimates the wall time of `callwall run --shard K/N` over N machines, each like this one,
# against one process on one machine. Runs the suite once as one process, then each shard
# alone, one after another, and reports each one's wall and CPU time (user + system of every
# process of the run, from /usr/bin/time -v). On a machine N times larger, or N machines, the N
# shards run at once, each with this machine's cores, so the suite takes the longest shard's
# wall time; the estimate is max(shard wall) / single wall. The shards' CPU adds up to about
# the single run's (nothing is done twice), which checks that no shard ran anything extra.
# Usage: benches/shard-estimate.sh [N] [callwall args...]   (run from the repository root, as root)
set -euo pipefail
N=${1:-4}; shift || true
BIN=${CALLWALL:-target/release/callwall}
OUT=${OUT:-target/shard-estimate}
rm -rf "$OUT"; mkdir -p "$OUT"
measure() { # name, args...
  local name=$1; shift
  /usr/bin/time -f "%e %U %S" -o "$OUT/$name.time" "$BIN" run --no-color --out "$OUT/$name.out" \
    --json "$OUT/$name.json" "$@" >"$OUT/$name.log" 2>&1 || true
  read -r wall user sys < <(tail -1 "$OUT/$name.time")
  printf '%-10s wall %7.1f s  cpu %7.1f s\n' "$name" "$wall" "$(echo "$user + $sys" | bc)"
  echo "$wall" >"$OUT/$name.wall"
}
measure single "$@"
for k in $(seq 1 "$N"); do measure "shard$k" --shard "$k/$N" "$@"; done
max=$(cat "$OUT"/shard*.wall | sort -g | tail -1)
single=$(cat "$OUT/single.wall")
echo "estimate: longest shard / single = $max / $single = $(echo "scale=2; $max / $single" | bc)"
"$BIN" merge "$OUT"/shard*.json --json "$OUT/merged.json" >/dev/null 2>&1 && code=0 || code=$?
echo "merge exit: $code (0: every expectation met)"
