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


@pytest.mark.parametrize("folder,split,suffix", [("mcq_mmlu", "test", "_test.csv"), ("mcq_cmmlu", "test", ".csv"),
                                                 ("mcq_ceval", "val", "_val.csv")])
def test_domain_tables_cover_the_subject_files(folder, split, suffix):
    from conftest import need_data
    from shardsmith.evaluation.benchmarks import BENCHMARKS

    root = need_data(folder)
    bench = next(b for b in BENCHMARKS.values() if b.folder == folder)
    subjects = [s for subjects in bench.domains.values() for s in subjects]
    assert len(subjects) == len(set(subjects))
    files = {p.name[:-len(suffix)] for p in (root / folder / split).glob(f"*{suffix}")}
    assert set(subjects) == files
    assert set(bench.domains) == {"stem", "humanities", "social_sciences", "other"}
