# callwall: `make run` runs the default scenario suite with a report; `make test` runs the tests.
SHELL := /bin/bash
CARGO ?= cargo
PROFILE_DIR := target/release
CALLWALL := $(PROFILE_DIR)/callwall
OUT ?= results
# Debian packages runs and tests need: coturn (the TURN relay), iproute2 (the topology
# benchmark's reference script and the WireGuard reference peer), chromium + fonts and
# libxml2-utils (the report checks and the Chromium reference peer), wireguard-go +
# wireguard-tools (the WireGuard reference peer), python3-venv (the peers' virtualenv),
# libopus-dev + pkg-config (the audio path links the system libopus), espeak-ng (the build
# makes the bundled speech clip with it, crates/audio/build.rs), sox (to play recordings),
# tmux (the live view's terminal test).
DEB_PACKAGES := coturn iproute2 chromium fonts-dejavu-core libxml2-utils wireguard-go wireguard-tools python3-venv libopus-dev pkg-config espeak-ng sox tmux
# The external reference peers' Python packages (peers/requirements.txt, pinned), from PyPI
# into a virtualenv of the project's own; Debian's python3, not whatever `python3` is first
# on PATH, so a fresh machine gets the same interpreter.
VENV := .venv
PYTHON ?= /usr/bin/python3
# Only for `make bench`: nDPI's ndpiReader, the reference of the inspect benchmark.
BENCH_DEB_PACKAGES := libndpi-bin

.PHONY: all build deps bench-deps run test bench lint fuzz clean check

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES) $(EXTRA_DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing; run: sudo apt-get install -y$$missing" >&2; exit 2; fi; \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@# coturn's Debian package starts a system-wide service; callwall runs its own per run.
	@if command -v systemctl >/dev/null 2>&1; then systemctl disable --now coturn >/dev/null 2>&1 || true; fi
	@$(MAKE) --no-print-directory $(VENV)/.installed

# Re-made when the pinned requirements change.
$(VENV)/.installed: peers/requirements.txt
	@test -x $(VENV)/bin/python3 || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r peers/requirements.txt
	@touch $@

build:
	$(CARGO) build --release --bin callwall

# The main job: the default suite, with reports in $(OUT)/.
run: deps build
	$(CALLWALL) run --out $(OUT) --json $(OUT)/results.json --junit $(OUT)/junit.xml --markdown $(OUT)/results.md --html $(OUT)/report.html

check: build
	$(CALLWALL) check

# Unit tests and end-to-end tests (the latter build namespaces and place calls: needs root or
# unprivileged user namespaces). One release build serves both the binary and the tests.
test: deps
	$(CARGO) nextest run --release --workspace --no-fail-fast

# Benchmarks print ratios against references measured in the same run (see BENCHMARKS.md).
bench-deps:
	@$(MAKE) --no-print-directory deps EXTRA_DEB_PACKAGES="$(BENCH_DEB_PACKAGES)"

bench: bench-deps
	$(CARGO) bench -p callwall-netns --bench topology
	$(CARGO) bench -p callwall-censor --bench engine
	$(CARGO) bench -p callwall-wire --bench classify -- --warm-up-time 1 --measurement-time 2
	$(CARGO) bench -p callwall-workload-net --bench workloads
	@if [ -f crates/harness/benches/bridge.rs ]; then $(CARGO) bench -p callwall-harness --bench bridge; fi
	$(CARGO) bench -p callwall-harness --bench police
	$(CARGO) bench -p callwall-audio --bench opus
	$(CARGO) bench -p callwall-peer-ext --bench start
	$(CARGO) bench --bench inspect

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Every parser's fuzz target plus the censor engine's, FUZZ_SECONDS each. cargo-fuzz runs on
# the stable toolchain without a sanitizer (-s none): coverage-guided, crashes on panics.
FUZZ_SECONDS ?= 30
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	cd fuzz && for t in $$(cargo fuzz list); do \
	  echo "== fuzz $$t ($(FUZZ_SECONDS)s)"; \
	  cargo fuzz run -s none $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

clean:
	$(CARGO) clean
