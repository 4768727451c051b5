#!/bin/sh
# The callee beside forking-caller.sh: once the caller says its child holds the lock, wait up
# to 5 s for the lock and write `freed` (the child died with the caller) or `still-held` (it
# outlived the caller) to its own log directory. Also lists its CALLWALL_* variables.
set -eu
env | grep '^CALLWALL_' | sort > "$CALLWALL_LOG_DIR/env"
caller="${CALLWALL_LOG_DIR%.callee}.caller"
i=0
until [ -e "$caller/held" ]; do
  i=$((i + 1))
  [ $i -lt 200 ] || { echo "the caller never said its child held the lock" >&2; exit 1; }
  sleep 0.05
done
if flock -w 5 "$caller/lock" true; then
  echo freed > "$CALLWALL_LOG_DIR/lock-state"
else
  echo still-held > "$CALLWALL_LOG_DIR/lock-state"
fi
exit 0
