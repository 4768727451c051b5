#!/bin/sh
# A caller that leaves a `setsid` child behind (tests/e2e/external.rs): the child holds an
# flock on `lock` in the caller's log directory and would sleep 1000 s. The caller also lists
# the CALLWALL_* variables it got (`env`), then exits 0 as soon as the lock is held. Contract v2
# says the child dies with the caller, so the callee (waiting-callee.sh) gets the lock at once.
set -eu
env | grep '^CALLWALL_' | sort > "$CALLWALL_LOG_DIR/env"
lock="$CALLWALL_LOG_DIR/lock"
: > "$lock"
setsid flock "$lock" sleep 1000 &
i=0
while flock -n "$lock" true; do
  i=$((i + 1))
  [ $i -lt 100 ] || { echo "the child never took the lock" >&2; exit 1; }
  sleep 0.05
done
echo held > "$CALLWALL_LOG_DIR/held"
exit 0
