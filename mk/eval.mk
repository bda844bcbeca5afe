# Evaluation: speedup, energy and accuracy vs the baseline; design-space sweep.
# Included from the main Makefile (VENV, PY, BUILD). See docs/EVALUATION.md.
#   make evaluate        all real traces + the sweep -> $(EVAL_OUT)/report.md, results.json,
#                        sweep.md, PNGs. First run from a clean build/: 3 core netlists and
#                        11 sweep units synthesized (~40 min on 2 busy cores), 3 Verilator
#                        builds; afterwards everything is cached in build/eval: ~3 min.
#   make evaluate-rtl    the same, every trace also run on the core RTL (Verilator)
#   make sweep           design-space sweep on a local Dask cluster (SWEEP_SPEC, default the
#                        shipped constraints/sweeps/default.yaml; SWEEP_WORKERS, default the
#                        cores; SWEEP_SCHEDULER=tcp://host:port for a running cluster);
#                        resumable: records cached in build/dse/points
#   make sweep-small     the small spec (6 tiny syntheses) for timing the cluster
#   make sweep-test      the fast tests of tests/eval/test_sweep_dse.py
#   make evaluate-commit copy the small outputs into results/eval/
#   make evaluate-test   the fast tests of tests/eval/test_evaluate.py
EVAL_OUT    ?= $(BUILD)/eval/report
EVAL_PRESET ?= auto
SWEEP_OUT   ?= $(BUILD)/dse/sweep
SWEEP_SPEC  ?= constraints/sweeps/default.yaml
SWEEP_ARGS  ?= $(if $(SWEEP_WORKERS),--workers $(SWEEP_WORKERS)) \
               $(if $(SWEEP_SCHEDULER),--scheduler $(SWEEP_SCHEDULER))

.PHONY: evaluate evaluate-rtl sweep sweep-small sweep-test evaluate-commit evaluate-test
evaluate: setup
	$(VENV)/bin/leopard-rtl evaluate --preset $(EVAL_PRESET) --sweep --out $(EVAL_OUT)

evaluate-rtl: setup
	$(VENV)/bin/leopard-rtl evaluate --preset $(EVAL_PRESET) --rtl --sweep --out $(EVAL_OUT)

sweep: setup
	$(VENV)/bin/leopard-rtl sweep --spec $(SWEEP_SPEC) $(SWEEP_ARGS) --out $(SWEEP_OUT)

sweep-small: setup
	$(VENV)/bin/leopard-rtl sweep --spec constraints/sweeps/small.yaml $(SWEEP_ARGS) \
	    --out $(BUILD)/dse/small

sweep-test: setup
	$(VENV)/bin/pytest -q tests/eval/test_sweep_dse.py

evaluate-commit:
	@mkdir -p results/eval
	cp $(EVAL_OUT)/report.md $(EVAL_OUT)/results.json $(EVAL_OUT)/sweep.md \
	    $(EVAL_OUT)/sweep.json $(EVAL_OUT)/*.png results/eval/

evaluate-test: setup
	$(VENV)/bin/pytest -q tests/eval/test_evaluate.py
