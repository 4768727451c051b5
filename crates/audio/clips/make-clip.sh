#!/usr/bin/env bash
# Regenerates speech.wav, the bundled clip the voice model sends with `--audio`: espeak-ng
# speaks the text below, sox makes it 16 kHz mono 16-bit PCM. Needs espeak-ng and sox
# (`make deps`). The output is committed, so building callwall does not need either.
set -euo pipefail
cd "$(dirname "$0")"
text="This is a call through a censor. One, two, three, four, five. \
If you can hear every word, the call got through."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -v en-us -s 150 -w "$tmp/raw.wav" "$text"
sox "$tmp/raw.wav" -r 16000 -c 1 -b 16 speech.wav
soxi speech.wav
