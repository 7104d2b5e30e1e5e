# Two commands for a fresh machine:  `make demo` (install + main job)  and  `make test` (install + tests).
#
# Everything installs into a project virtual environment, .venv (created with `$(PYTHON3) -m venv`, Python >= 3.10),
# never into the system's Python (PEP 668 systems refuse that, and the project's pins would leak into it).
# Use it afterwards with `. .venv/bin/activate` (then `shardsmith ...`), or call `.venv/bin/shardsmith` directly.
# `make test PY=/usr/bin/python3` skips the venv and installs into / runs with that interpreter instead.
PYTHON3 ?= python3
VENV ?= .venv
ifeq ($(origin PY),undefined)
PY := $(VENV)/bin/python
SHARDSMITH := $(VENV)/bin/shardsmith
STAMP := $(VENV)/.install.stamp
INTERPRETER := $(PY)
else
SHARDSMITH := $(PY) -m shardsmith.cli
STAMP := .install.stamp
INTERPRETER :=
endif
SHARDSMITH_DATA ?= $(abspath $(CURDIR)/../shared/data)
export SHARDSMITH_DATA
OUT ?= out/demo

.PHONY: install demo test bench clean distclean

# setuptools + wheel: DeepSpeed builds without isolation (below), and Python >= 3.12 venvs come without setuptools.
$(VENV)/bin/python:
	@$(PYTHON3) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else \
		"shardsmith needs Python >= 3.10; $(PYTHON3) is " + sys.version.split()[0] + ": make PYTHON3=python3.11 ...")'
	$(PYTHON3) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q setuptools wheel

# torch first (the local CPU wheel; a bare `torch` would pull GBs of CUDA), then the project,
# then DeepSpeed without build isolation so that its build sees the installed torch.
$(STAMP): pyproject.toml | $(INTERPRETER)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-build-isolation deepspeed
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded samples: mix -> SFT + preference blocks -> pretrain/SFT/DPO training -> summary.
# The summary's prompts are held out of the demo's data: "Who created you?" and "你好" are SFT validation rows
# (self-cognition), "What is 24 plus 21?" a preference validation pair; each stage answers the same templated prompt.
demo: install
	$(SHARDSMITH) demo --out $(OUT)
	$(SHARDSMITH) inspect $(OUT)/mix --samples 2
	$(PY) -m shardsmith.demo.sft_sample $(OUT)/sft_src
	SFT_DEMO_DATA=$(abspath $(OUT))/sft_src $(SHARDSMITH) build recipes/blocks/demo.yaml --out $(OUT)/sft \
		--set tokenizer.name=$(abspath $(OUT))/mix/tokenizer
	SFT_DEMO_DATA=$(abspath $(OUT))/sft_src $(SHARDSMITH) build recipes/blocks/demo-pref.yaml --out $(OUT)/pref \
		--set tokenizer.name=$(abspath $(OUT))/mix/tokenizer
	SHARDSMITH_DEMO_MIX=$(abspath $(OUT))/mix SHARDSMITH_DEMO_SFT=$(abspath $(OUT))/sft \
		SHARDSMITH_DEMO_PREF=$(abspath $(OUT))/pref $(SHARDSMITH) train recipes/train/demo.yaml --out $(OUT)/runs
	$(SHARDSMITH) summary $(OUT) --template t1b --max-new-tokens 24 \
		--prompt "Who created you?" --prompt "What is 24 plus 21?" --prompt "你好"

# Two pytest workers (pytest-xdist), each test file on one worker (module fixtures build once): the suite's long
# parts are single-threaded datatrove and tokenizer work. TEST_WORKERS=0 runs it in one process. The 20 slowest
# tests are listed at the end.
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -q -p no:cacheprovider --durations=20 $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

bench: install
	$(PY) scripts/bench_mix.py

clean:
	rm -rf out .install.stamp

distclean: clean
	rm -rf $(VENV)
