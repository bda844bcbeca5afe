# Physical flow: synthesis/STA on real libraries, qflow P&R, QoR table, energy.
#   make synth  PRESET=tiny UNIT=frontend PDK=osu018
#   make pnr    PRESET=tiny UNIT=frontend
#   make qor    (all presets x PDKs x units -> build/flow/qor/QOR.md and docs/QOR.md)
#   make energy (LeOPArd vs pruning-only vs baseline on the MiniLM trace, nangate45)
#   make energy-all (the same on every committed trace, learned thresholds and 80 %/90 %
#                    pruning, one run; results/eval/energy/energy_traces.{json,md})
FLOW_PRESET ?= tiny
FLOW_UNIT   ?= frontend
FLOW_PDK    ?= osu018
FLOW_OUT    := $(BUILD)/flow

.PHONY: synth pnr qor energy energy-all flow-test
synth: setup
	$(VENV)/bin/leopard-rtl synth --preset $(FLOW_PRESET) --unit $(FLOW_UNIT) --pdk $(FLOW_PDK) \
	    --out $(FLOW_OUT)/synth-$(FLOW_PRESET)-$(FLOW_UNIT)-$(FLOW_PDK)

pnr: setup
	$(VENV)/bin/leopard-rtl pnr --preset $(FLOW_PRESET) --unit $(FLOW_UNIT) \
	    --out $(FLOW_OUT)/pnr-$(FLOW_PRESET)-$(FLOW_UNIT)

qor: setup
	$(VENV)/bin/leopard-rtl qor --out $(FLOW_OUT)/qor --doc docs/QOR.md --readme README.md

energy: setup
	$(VENV)/bin/leopard-rtl energy --preset minilm --trace traces/minilm/sample_l3.npz \
	    --pdk nangate45 --out $(FLOW_OUT)/energy-minilm

energy-all: setup
	$(VENV)/bin/leopard-rtl energy --all-traces --pdk nangate45 --prune-to 0.8 --prune-to 0.9 \
	    --out results/eval/energy

flow-test: setup
	$(VENV)/bin/pytest -q tests/flow
