"""Hub benchmark names for decontamination (``hf:<repo>[:<config>][@<split>]``): parsed, fetched once into a local
cache, then read offline like any local benchmark file. This machine has no network, so the fetch itself is shown
failing in one line; the rows a fetch writes are shown equal, item for item, to the local copy they came from."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
from conftest import REPO, need_data
from shardsmith.builders.benchmarks import item_texts, read_records
from shardsmith.pipelines.decontam import ensure_index, resolve_benchmarks
from shardsmith.pipelines.hub_benchmarks import HubBenchmarkError, flatten_choices, parse_hub_name, write_rows
from shardsmith.schemas.decontam import DecontamSpec

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def test_hub_names_parse_and_bad_names_fail_in_one_line():
    spec = parse_hub_name("hf:cais/mmlu:all@test")
    assert (spec.repo, spec.config, spec.split, spec.name) == ("cais/mmlu", "all", "test", "mmlu-all")
    plain = parse_hub_name("hf:openai/gsm8k")
    assert (plain.config, plain.split, plain.name) == (None, "test", "gsm8k")
    assert plain.cache_file(REPO).relative_to(REPO).as_posix() == "benchmarks/openai/gsm8k/default/test.jsonl"
    for bad in ("hf:", "hf:/x", "hf:a b", "hf:cais/mmlu@"):
        with pytest.raises(HubBenchmarkError, match="is not a hub benchmark name"):
            parse_hub_name(bad)


def test_choices_lists_become_indexed_columns_and_other_rows_stay():
    row = {"question": "q", "subject": "s", "choices": ["a", "b", "c", "d"], "answer": 2}
    assert flatten_choices(row) == {"question": "q", "subject": "s", "answer": 2, "choice0": "a", "choice1": "b",
                                    "choice2": "c", "choice3": "d"}
    arc = {"question": "q", "choices": {"text": ["a"], "label": ["A"]}, "answerKey": "A"}
    assert flatten_choices(arc) is arc
    assert flatten_choices({"choices": ["a"], "answer": True}) == {"choices": ["a"], "answer": True}


def test_unreachable_hub_is_one_line_error_naming_the_benchmark(tmp_path):
    """In a fresh process (the hub's offline switches are read at import) with an empty cache."""
    code = ("from shardsmith.pipelines.decontam import resolve_benchmarks\n"
            "from shardsmith.schemas.decontam import DecontamSpec\n"
            "try:\n    resolve_benchmarks(DecontamSpec(benchmarks=['hf:cais/mmlu:all@test']))\n"
            "except ValueError as e:\n    print('ERROR', e)\n")
    env = {**os.environ, **OFFLINE, "SHARDSMITH_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in out.stdout.splitlines() if line.startswith("ERROR")]
    assert len(lines) == 1, out.stdout + out.stderr
    assert "cannot fetch hub benchmark hf:cais/mmlu:all@test" in lines[0] and "local copy" in lines[0]
    assert not list(tmp_path.rglob("*.jsonl"))  # nothing half-written


def test_cached_hub_split_is_read_offline_with_the_items_of_its_source(tmp_path, monkeypatch):
    """cais/mmlu's layout (``choices`` list, integer ``answer``) written from the real local MMLU sample through the
    fetch's own writer, then resolved by name with the hub switched off: same items, same parts, same index hits."""
    data = need_data("mcq_mmlu")
    src = data / "mcq_mmlu" / "test" / "anatomy_test.csv"
    with src.open(newline="", encoding="utf-8") as f:
        rows = [{"question": r["question"], "subject": "anatomy", "answer": int(r["answer"]),
                 "choices": [r[f"choice{i}"] for i in range(4)]} for r in csv.DictReader(f)]
    monkeypatch.setenv("SHARDSMITH_CACHE", str(tmp_path / "cache"))
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    write_rows(rows, parse_hub_name("hf:cais/mmlu:anatomy@test").cache_file())
    plan = resolve_benchmarks(DecontamSpec(benchmarks=["hf:cais/mmlu:anatomy@test"]))
    assert list(plan.sets) == ["mmlu-anatomy"]
    hub = [item_texts(rec) for _, _, rec in read_records(plan.sets)]
    local = [item_texts(rec) for _, _, rec in read_records({"mmlu": [src]})]
    assert len(hub) == len(rows) == len(local) > 100 and hub == local
    monkeypatch.setenv("SHARDSMITH_BENCHMARKS", f"{data / 'mcq_truthfulqa'}, hf:cais/mmlu:anatomy@test")
    assert list(resolve_benchmarks(None).sets) == ["truthfulqa", "mmlu-anatomy"]  # entries separated by commas
    index = ensure_index(plan, tmp_path / "index")
    assert index.match(f"Quiz of the day. {rows[7]['question']} Think about it.").item == "test.jsonl:7"
