#!/bin/sh
# Writes the CALLWALL_MEDIA_PORT it got to `port` in its log directory, then exits 0
# (tests/e2e/external.rs: the port is the one written in the scenario).
echo "$CALLWALL_MEDIA_PORT" > "$CALLWALL_LOG_DIR/port"
