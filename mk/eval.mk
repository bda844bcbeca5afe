# Evaluation: speedup, energy and accuracy vs the baseline; design-space sweep.
# Included from the main Makefile (VENV, PY, BUILD). See docs/EVALUATION.md.
#   make evaluate        all real traces + the sweep -> $(EVAL_OUT)/report.md, results.json,
#                        sweep.md, PNGs. First run from a clean build/: 3 core netlists and
#                        11 sweep units synthesized (~40 min on 2 busy cores), 3 Verilator
#                        builds; afterwards everything is cached in build/eval: ~3 min.
#   make evaluate-rtl    the same, every trace also run on the core RTL (Verilator)
#   make sweep           lanes x qk_bits x back-end width, speedup per area, Pareto plot
#   make evaluate-commit copy the small outputs into results/eval/
#   make evaluate-test   the fast tests of tests/eval/test_evaluate.py
EVAL_OUT    ?= $(BUILD)/eval/report
EVAL_PRESET ?= auto
SWEEP_OUT   ?= $(BUILD)/eval/sweep

.PHONY: evaluate evaluate-rtl sweep evaluate-commit evaluate-test
evaluate: setup
	$(VENV)/bin/leopard-rtl evaluate --preset $(EVAL_PRESET) --sweep --out $(EVAL_OUT)

evaluate-rtl: setup
	$(VENV)/bin/leopard-rtl evaluate --preset $(EVAL_PRESET) --rtl --sweep --out $(EVAL_OUT)

sweep: setup
	$(VENV)/bin/leopard-rtl sweep --out $(SWEEP_OUT)

evaluate-commit:
	@mkdir -p results/eval
	cp $(EVAL_OUT)/report.md $(EVAL_OUT)/results.json $(EVAL_OUT)/sweep.md \
	    $(EVAL_OUT)/sweep.json $(EVAL_OUT)/*.png results/eval/

evaluate-test: setup
	$(VENV)/bin/pytest -q tests/eval/test_evaluate.py
