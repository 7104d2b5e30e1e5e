"""What a finished mix holds (issue 9 §2-§4): empty sources reported together or skipped, weight-0 sources never
read, `limit` exact across tasks, no `.work/` left, a manifest listing every file, `.ds.metadata` naming the set's
own tokenizer, a copied set that reads in datatrove and trains, and the parquet text export."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shardsmith.schemas.manifest import MANIFEST_NAME, ShardManifest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trainer_fixtures as F  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
JUNK = "buy now"  # under any length floor: the `length` step drops every such document


def shardsmith(*args):
    return subprocess.run([sys.executable, "-m", "shardsmith.cli", *args], capture_output=True, text=True)


def jsonl(path: Path, texts: list[str], prefix: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"{prefix}-{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    return path


def source(name: str, path: Path, weight: float, **extra) -> dict:
    """A generic jsonl source whose only filter drops documents under 40 characters."""
    return {"name": name, "kind": "generic", "paths": [str(path)], "weight": weight,
            "filters": [{"step": "length", "min_chars": 40}], **extra}


def write_recipe(folder: Path, sources: list[dict], **fields) -> Path:
    recipe = {"name": "t", "seed": 5, "tokenizer": {"name": "gpt2"}, "validation_fraction": 0.1,
              "sources": sources, **fields}
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two sources of real-looking prose and two of junk (every document dropped by the `length` step)."""
    root = tmp_path_factory.mktemp("inputs")
    return {
        "good": jsonl(root / "good.jsonl", F.documents(60, seed=1), "g"),
        "more": jsonl(root / "more.jsonl", F.documents(40, seed=2), "m"),
        "junk": jsonl(root / "junk.jsonl", [JUNK] * 7, "j"),
        "spam": jsonl(root / "spam.jsonl", [JUNK + "!"] * 5, "s"),
    }


def error_of(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    error = r.stderr[r.stderr.index("shardsmith mix: error:"):]
    assert "Traceback" not in r.stderr
    return error


# ------------------------------------------------------------------------------------------- §2 empty sources


def test_weight_zero_source_is_never_read(inputs, tmp_path):
    """The old error's own advice (`weight: 0`) crashed with `No files found on .work/filtered/<source>`."""
    recipe = write_recipe(tmp_path, [source("good", inputs["good"], 1), source("junk", inputs["junk"], 0)])
    out = tmp_path / "out"
    r = shardsmith("mix", str(recipe), "--out", str(out), "--keep-work")
    assert r.returncode == 0, r.stderr[-3000:]
    m = ShardManifest.load(out)
    junk = next(s for s in m.sources if s.name == "junk")
    assert (junk.weight_requested, junk.documents, junk.tokens, junk.share_realized) == (0, 0, 0, 0)
    assert junk.skipped.startswith("weight 0")
    assert "junk" not in m.filters  # never read: no filter phase, no counts, nothing in .work
    assert (out / ".work").is_dir()  # --keep-work
    assert not [p for p in (out / ".work").rglob("*") if "junk" in p.name]


def test_every_empty_source_is_named_in_one_error(inputs, tmp_path):
    recipe = write_recipe(tmp_path, [source("junk", inputs["junk"], 1), source("good", inputs["good"], 2),
                                     source("spam", inputs["spam"], 1)])
    err = error_of(shardsmith("mix", str(recipe), "--out", str(tmp_path / "out")))
    assert "2 source(s) have no documents left" in err and "on_empty: skip" in err
    assert "source 'junk': read 7 documents, kept 0" in err and "source 'spam': read 5 documents, kept 0" in err
    assert "too_few_chars 7" in err and "too_few_chars 5" in err and "'good'" not in err
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()


def test_on_empty_skip_renormalises_and_says_so(inputs, tmp_path):
    # the mix's policy, and a per-source override of an `error` mix
    for fields, junk_extra in (({"on_empty": "skip"}, {}), ({}, {"on_empty": "skip"})):
        recipe = write_recipe(tmp_path, [source("good", inputs["good"], 0.5), source("more", inputs["more"], 0.25),
                                         source("junk", inputs["junk"], 0.25, **junk_extra)], **fields)
        out = tmp_path / f"out-{len(fields)}"
        r = shardsmith("mix", str(recipe), "--out", str(out))
        assert r.returncode == 0, r.stderr[-3000:]
        m = ShardManifest.load(out)
        by = {s.name: s for s in m.sources}
        assert by["junk"].skipped.startswith("empty after filtering: read 7 documents, kept 0")
        assert by["junk"].documents == 0 and by["junk"].share_requested == 0.25 and by["junk"].share_planned == 0
        assert by["good"].share_planned == pytest.approx(2 / 3) and by["more"].share_planned == pytest.approx(1 / 3)
        for name in ("good", "more"):
            assert abs(by[name].share_realized - by[name].share_planned) < 0.02
        assert m.filters["junk"][-1].kept == 0  # it was read and filtered: its counts are in the manifest
        assert "junk" in r.stdout and "skipped" in r.stdout


def test_all_sources_empty_is_an_error_even_with_skip(inputs, tmp_path):
    recipe = write_recipe(tmp_path, [source("junk", inputs["junk"], 1), source("spam", inputs["spam"], 1)],
                          on_empty="skip")
    err = error_of(shardsmith("mix", str(recipe), "--out", str(tmp_path / "out")))
    assert "every source is empty" in err and "'junk'" in err and "'spam'" in err


def test_bad_on_empty_and_write_text_values_name_the_field(inputs, tmp_path):
    recipe = write_recipe(tmp_path, [source("good", inputs["good"], 1)], on_empty="ignore")
    err = error_of(shardsmith("mix", str(recipe), "--out", str(tmp_path / "out")))
    assert "field 'on_empty': Input should be 'error' or 'skip'" in err
    recipe = write_recipe(tmp_path, [source("good", inputs["good"], 1)], write_text="csv")
    err = error_of(shardsmith("mix", str(recipe), "--out", str(tmp_path / "out")))
    assert "field 'write_text': Input should be 'none' or 'parquet'" in err


# ------------------------------------------------------------------------------------------- §4 limit


def test_limit_reads_exactly_n_documents_whatever_the_tasks(inputs, tmp_path):
    """Two input files, tasks=2: datatrove's per-task limit would read up to 2 x 45; the mix reads the first 45
    documents in file order, the same ones as with one task."""
    from shardsmith.pipelines.mixer import build_mix
    from shardsmith.recipes import load_recipe
    from shardsmith.schemas.mix_recipe import MixRecipe

    folder = tmp_path / "two-files"
    jsonl(folder / "a.jsonl", F.documents(30, seed=3), "a")
    jsonl(folder / "b.jsonl", F.documents(30, seed=4), "b")
    kept = {}
    for tasks in (1, 2):
        recipe = write_recipe(tmp_path, [{"name": "web", "kind": "generic", "paths": [str(folder)], "weight": 1,
                                          "filters": "none", "limit": 45}], tasks=tasks)
        out = tmp_path / f"out-{tasks}"
        build_mix(load_recipe(MixRecipe, str(recipe)), out, progress=False, keep_work=True)
        m = ShardManifest.load(out)
        assert m.filters["web"][0].read == 45 and m.sources[0].documents_available == 45
        ledger = sorted((out / ".work" / "ledger" / "web").glob("*.parquet"))
        import polars as pl

        kept[tasks] = sorted(pl.concat([pl.read_parquet(f) for f in ledger])["id"].to_list())
    assert kept[1] == kept[2] == sorted([f"a-{i}" for i in range(30)] + [f"b-{i}" for i in range(15)])


def test_limit_must_be_minus_one_or_more(inputs, tmp_path):
    recipe = write_recipe(tmp_path, [{**source("good", inputs["good"], 1), "limit": -5}])
    err = error_of(shardsmith("mix", str(recipe), "--out", str(tmp_path / "out")))
    assert "sources.0.limit" in err
