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


def build(recipe: Path, out: Path, **kw) -> ShardManifest:
    """Build in this process (no interpreter start-up); returns the manifest."""
    from shardsmith.pipelines.mixer import build_mix
    from shardsmith.recipes import load_recipe
    from shardsmith.schemas.mix_recipe import MixRecipe

    build_mix(load_recipe(MixRecipe, str(recipe)), out, progress=False, **kw)
    return ShardManifest.load(out)


def recipe_error(recipe: Path) -> str:
    from shardsmith.recipes import RecipeError, load_recipe
    from shardsmith.schemas.mix_recipe import MixRecipe

    with pytest.raises(RecipeError) as err:
        load_recipe(MixRecipe, str(recipe))
    return str(err.value)


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


@pytest.mark.parametrize("where", ["mix", "source"])
def test_on_empty_skip_renormalises_and_says_so(inputs, tmp_path, where):
    """`on_empty: skip` for the whole mix, or on the one source in a mix whose policy is `error`."""
    fields, junk_extra = ({"on_empty": "skip"}, {}) if where == "mix" else ({}, {"on_empty": "skip"})
    recipe = write_recipe(tmp_path, [source("good", inputs["good"], 0.5), source("more", inputs["more"], 0.25),
                                     source("junk", inputs["junk"], 0.25, **junk_extra)], **fields)
    if where == "mix":  # through the CLI once: the skip is printed
        r = shardsmith("mix", str(recipe), "--out", str(tmp_path / "out"))
        assert r.returncode == 0, r.stderr[-3000:]
        assert "junk" in r.stdout and "skipped" in r.stderr + r.stdout
        m = ShardManifest.load(tmp_path / "out")
    else:
        m = build(recipe, tmp_path / "out")
    by = {s.name: s for s in m.sources}
    assert by["junk"].skipped.startswith("empty after filtering: read 7 documents, kept 0")
    assert by["junk"].documents == 0 and by["junk"].share_requested == 0.25 and by["junk"].share_planned == 0
    assert by["good"].share_planned == pytest.approx(2 / 3) and by["more"].share_planned == pytest.approx(1 / 3)
    for name in ("good", "more"):
        assert abs(by[name].share_realized - by[name].share_planned) < 0.02
    assert m.filters["junk"][-1].kept == 0  # it was read and filtered: its counts are in the manifest


def test_all_sources_empty_is_an_error_even_with_skip(inputs, tmp_path):
    from shardsmith.pipelines.mixer import MixError

    recipe = write_recipe(tmp_path, [source("junk", inputs["junk"], 1), source("spam", inputs["spam"], 1)],
                          on_empty="skip")
    with pytest.raises(MixError) as exc:
        build(recipe, tmp_path / "out")
    err = str(exc.value)
    assert "every source is empty" in err and "'junk'" in err and "'spam'" in err


def test_bad_on_empty_and_write_text_values_name_the_field(inputs, tmp_path):
    err = recipe_error(write_recipe(tmp_path, [source("good", inputs["good"], 1)], on_empty="ignore"))
    assert "field 'on_empty': Input should be 'error' or 'skip'" in err
    err = recipe_error(write_recipe(tmp_path, [source("good", inputs["good"], 1)], write_text="csv"))
    assert "field 'write_text': Input should be 'none' or 'parquet'" in err


# ------------------------------------------------------------------------------------------- §4 limit


def test_limit_reads_exactly_n_documents_whatever_the_tasks(inputs, tmp_path):
    """Two input files, tasks=2: datatrove's per-task limit would read up to 2 x 45; the mix reads the first 45
    documents in file order, the same ones as with one task."""
    import polars as pl

    folder = tmp_path / "two-files"
    jsonl(folder / "a.jsonl", F.documents(30, seed=3), "a")
    jsonl(folder / "b.jsonl", F.documents(30, seed=4), "b")
    kept = {}
    for tasks in (1, 2):
        recipe = write_recipe(tmp_path, [{"name": "web", "kind": "generic", "paths": [str(folder)], "weight": 1,
                                          "filters": "none", "limit": 45}], tasks=tasks)
        out = tmp_path / f"out-{tasks}"
        m = build(recipe, out, keep_work=True)
        assert m.filters["web"][0].read == 45 and m.sources[0].documents_available == 45
        ledger = sorted((out / ".work" / "ledger" / "web").glob("*.parquet"))
        kept[tasks] = sorted(pl.concat([pl.read_parquet(f) for f in ledger])["id"].to_list())
    assert kept[1] == kept[2] == sorted([f"a-{i}" for i in range(30)] + [f"b-{i}" for i in range(15)])


def test_limit_must_be_minus_one_or_more(inputs, tmp_path):
    err = recipe_error(write_recipe(tmp_path, [{**source("good", inputs["good"], 1), "limit": -5}]))
    assert "field 'sources.0.limit'" in err


# ------------------------------------------------------------------------------------------- §3 the finished set

OUTPUTS_RECIPE = """
name: outputs
seed: 11
tokenizer:
  name: outputs-bpe
  eos_token: "<|endoftext|>"
  train: {vocab_size: 512, special_tokens: ["<|endoftext|>"]}
budget_tokens: 120000
validation_fraction: 0.1
write_text: parquet
sources:
  - {name: web,  kind: fineweb,   language: en, weight: 0.6, filters: none, limit: 120, paths: ["SAMPLE/web/*.parquet"]}
  - {name: wiki, kind: wikipedia, language: en, weight: 0.2, filters: none, limit: 12,  paths: ["SAMPLE/wiki/*.jsonl"]}
  - {name: zh,   kind: skypile,   language: zh, weight: 0.2, filters: none, limit: 40,  paths: ["SAMPLE/zh/*.jsonl"]}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The embedded sample corpus mixed into a small set with a text export; `wiki` is upsampled (~2 epochs)."""
    from shardsmith.demo.mix_corpus import write_sample_corpus

    root = tmp_path_factory.mktemp("outputs")
    write_sample_corpus(root / "sample")
    recipe = root / "recipe.yaml"
    recipe.write_text(OUTPUTS_RECIPE.replace("SAMPLE", str(root / "sample")))
    build(recipe, root / "set")
    return root / "set"


def test_finished_set_is_exactly_what_the_manifest_lists(built):
    m = ShardManifest.load(built)
    on_disk = {p.relative_to(built).as_posix(): p.stat().st_size for p in built.rglob("*") if p.is_file()}
    listed = {f.path: f.bytes for f in m.files}
    assert on_disk == {**listed, MANIFEST_NAME: (built / MANIFEST_NAME).stat().st_size}
    assert not (built / ".work").exists()
    # rejected/: the sample's duplicates, removed by the mix's default dedup (rejected/<source>/dedup/)
    assert {p.split("/")[0] for p in listed} == {"tokenizer", "train", "validation", "text", "rejected"}
    shards = {f.path for s in m.splits.values() for f in s.files}
    assert shards and shards <= set(listed) and {t.path for t in m.text_files} <= set(listed)


def test_ds_metadata_names_the_sets_own_tokenizer(built):
    m = ShardManifest.load(built)
    metas = sorted(built.glob("*/*.ds.metadata"))
    assert metas
    for meta in metas:
        name, size = meta.read_text().splitlines()[0].split("|")
        assert (name, int(size)) == ("tokenizer/tokenizer.json", m.token_size)
        assert (built / name).is_file()


def test_text_export_loads_with_datasets_and_matches_the_shards(built):
    """One row per kept document of its split; `copies` adds up to the shards' documents per source and per split,
    and re-tokenizing the rows gives each source's token count."""
    import datasets
    from tokenizers import Tokenizer

    m = ShardManifest.load(built)
    ds = datasets.load_dataset("parquet", data_dir=str(built / "text"))
    assert set(ds) == {"train", "validation"}
    tok = Tokenizer.from_file(str(built / "tokenizer" / "tokenizer.json"))
    docs, tokens = {}, {}
    for split, rows in ds.items():
        assert set(rows["split"]) == {split}
        assert sum(rows["copies"]) == m.splits[split].documents
        for row in rows:
            n = len(tok.encode(row["text"]).ids) + 1  # + EOS
            docs[row["source"]] = docs.get(row["source"], 0) + row["copies"]
            tokens[row["source"]] = tokens.get(row["source"], 0) + n * row["copies"]
            assert json.loads(row["metadata"])["kind"] in ("fineweb", "wikipedia", "skypile")
    by = {s.name: s for s in m.sources}
    assert docs == {n: s.documents for n, s in by.items()}
    assert tokens == {n: s.tokens for n, s in by.items()}
    ids = [i for rows in ds.values() for i in rows["id"]]
    assert len(ids) == len(set(ids))  # each document once, whatever its copies
    wiki = [r for rows in ds.values() for r in rows if r["source"] == "wiki"]
    assert by["wiki"].epochs > 1 and len(wiki) == by["wiki"].documents_available  # upsampled: every article used
    assert max(r["copies"] for r in wiki) == by["wiki"].full_epochs + 1 < by["wiki"].documents
    assert all(r["url"] for rows in ds.values() for r in rows if r["source"] == "web")
    assert sum(t.documents for t in m.text_files) == len(ids)


def test_copied_set_reads_in_datatrove_and_trains(built, tmp_path):
    from datatrove.utils.dataset import DatatroveFolderDataset

    from shardsmith.trainer.runner import train

    original, copy = tmp_path / "original", tmp_path / "elsewhere" / "copy"
    shutil.copytree(built, original)
    shutil.copytree(original, copy)
    shutil.rmtree(original)
    m = ShardManifest.load(copy)
    seq = 64
    ds = DatatroveFolderDataset(str(copy / "train"), seq_len=seq, token_size=m.token_size)
    assert len(ds) == m.splits["train"].tokens // (seq + 1)
    assert int(ds[0]["input_ids"].max()) < m.tokenizer.vocab_size

    out = tmp_path / "runs"
    train(str(REPO / "recipes" / "train" / "demo.yaml"), str(out), stage="pretrain", overrides=[
        "engine.precision=fp32", "model.preset=tiny-gpt2", f"stages.pretrain.data.sets.0.path={copy}",
        "stages.pretrain.max_steps=3", "stages.pretrain.seq_len=64", "stages.pretrain.micro_batch_size=4",
        "stages.pretrain.save_every=3", "stages.pretrain.eval_every=3", "stages.pretrain.log_every=1",
        "stages.pretrain.data.val_rows=4",
    ])
    rows = [json.loads(x) for x in (out / "pretrain" / "metrics.jsonl").read_text().splitlines() if x.strip()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 3 and all(0 < x < 20 for x in losses)
