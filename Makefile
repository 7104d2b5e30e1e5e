# Two commands for a fresh machine:  `make demo` (install + main job)  and  `make test` (install + tests).
PY ?= python3
SHARDSMITH_DATA ?= $(abspath $(CURDIR)/../shared/data)
export SHARDSMITH_DATA
OUT ?= out/demo
STAMP := .install.stamp

.PHONY: install demo test bench clean

# torch first (the local CPU wheel; a bare `torch` would pull GBs of CUDA), then the project,
# then DeepSpeed without build isolation so that its build sees the installed torch.
$(STAMP): pyproject.toml
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-build-isolation deepspeed
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded samples: mix -> SFT + preference blocks -> pretrain/SFT/DPO training -> completions.
demo: install
	shardsmith demo --out $(OUT)
	shardsmith inspect $(OUT)/mix --samples 2
	$(PY) -m shardsmith.builders.demo $(OUT)/sft_src
	SFT_DEMO_DATA=$(abspath $(OUT))/sft_src shardsmith build recipes/blocks/demo.yaml --out $(OUT)/sft \
		--set tokenizer.name=$(abspath $(OUT))/mix/tokenizer
	SFT_DEMO_DATA=$(abspath $(OUT))/sft_src shardsmith build recipes/blocks/demo-pref.yaml --out $(OUT)/pref \
		--set tokenizer.name=$(abspath $(OUT))/mix/tokenizer
	SHARDSMITH_DEMO_MIX=$(abspath $(OUT))/mix SHARDSMITH_DEMO_SFT=$(abspath $(OUT))/sft \
		SHARDSMITH_DEMO_PREF=$(abspath $(OUT))/pref shardsmith train recipes/train/demo.yaml --out $(OUT)/runs
	shardsmith generate $(OUT)/runs/pretrain/hf/final --max-new-tokens 24 --prompt "The history of the river valley"
	shardsmith generate $(OUT)/runs/sft/hf/final --max-new-tokens 24 \
		--prompt "The history of the river valley" --prompt "In 1861 the town council"
	shardsmith generate $(OUT)/runs/dpo/hf/final --max-new-tokens 16 --template t1b \
		--prompt "What is 12 plus 30?" --prompt "25 加 17 等于多少？"

test: install
	$(PY) -m pytest -q -p no:cacheprovider

bench: install
	$(PY) scripts/bench_mix.py

clean:
	rm -rf out $(STAMP)
