#!/usr/bin/env bash
# Writes the bundled clip, as the build makes it (crates/audio/build.rs: espeak-ng at build
# time, nothing committed), to the WAV given (default speech.wav here), for listening:
# `crates/audio/clips/make-clip.sh /path/clip.wav && play /path/clip.wav`.
set -euo pipefail
out=${1:-$(dirname "$0")/speech.wav}
text="This is a call through a censor. One, two, three, four, five. \
If you can hear every word, the call got through."
espeak-ng -v en-us -s 150 -w "$out" "$text"
soxi "$out" 2>/dev/null || true
