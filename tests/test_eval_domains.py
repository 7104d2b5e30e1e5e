"""The MMLU subject -> domain table equals lm-evaluation-harness's MMLU groups (read from its task YAML files)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest


def test_mmlu_domains_match_lm_eval():
    lm_eval = pytest.importorskip("lm_eval", reason="lm-eval is in the dev extra: pip install -e .[dev]")
    from shardsmith.evaluation.domains import MMLU_DOMAINS

    theirs: dict[str, set[str]] = {}
    for path in sorted((Path(lm_eval.__file__).parent / "tasks" / "mmlu" / "default").glob("mmlu_*.yaml")):
        text = path.read_text(encoding="utf-8")
        subject = re.search(r'"dataset_name": "([^"]+)"', text).group(1)
        domain = re.search(r'"tag": "mmlu_(\w+)_tasks"', text).group(1)
        theirs.setdefault(domain, set()).add(subject)
    assert {d: set(s) for d, s in MMLU_DOMAINS.items()} == theirs
    assert sum(len(s) for s in theirs.values()) == 57
