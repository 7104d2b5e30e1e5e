"""Benchmark decontamination (issue 11 §2): real test items from ../shared/data planted verbatim, lightly edited and
embedded in real web documents are caught; real FineWeb/C4/SkyPile/WanJuan documents are not (the false-positive
rate is printed); a block built from an SFT set that carries an MMLU question reports it; a mix drops a planted
document with its benchmark and item; no benchmarks is said loudly, an opt-out is recorded.

The index of these tests is built once per module from a subset of the benchmark files (build time), through the
recipe's ``decontaminate.files``; ``scripts/bench_decontam.py`` runs the full set.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from pathlib import Path

import pytest
import yaml
from conftest import need_data
from datatrove.utils.text import simplify_text
from shardsmith.builders.benchmarks import item_texts, read_records
from shardsmith.pipelines.decontam import ENV_BENCHMARKS, ensure_index, normalize, part_windows, resolve_benchmarks
from shardsmith.schemas.decontam import DecontamSpec
from shardsmith.schemas.manifest import ShardManifest
from shardsmith.schemas.records import CotExample, McqQuestion

MCQ = ("mcq_mmlu", "mcq_arc", "mcq_truthfulqa", "mcq_gsm8k", "mcq_hellaswag_olmes", "mcq_cmmlu", "mcq_ceval")
WEB = ("web_fineweb_edu_text_llm_scored", "web_c4_demo_llamafactory", "web_c4_en_olmo_fixture", "zh_skypile_sample",
       "zh_wanjuan1_text_sample")
SUBSET = {  # benchmark -> files under its folder (a few subjects each: the index builds in seconds)
    "mmlu": [f"test/{s}_test.csv" for s in ("anatomy", "astronomy", "college_biology", "high_school_geography",
                                            "world_religions", "marketing", "miscellaneous")],
    "arc": ["ARC-Challenge/validation/data-00000-of-00001.arrow"],
    "truthfulqa": ["TruthfulQA.csv"],
    "gsm8k": ["test.jsonl"],
    "hellaswag_olmes": ["hellaswag_val_rc_5shot_requests.jsonl.gz"],
    "cmmlu": [f"test/{s}.csv" for s in ("chinese_history", "chinese_civil_service_exam", "high_school_politics",
                                        "marxist_theory", "chinese_literature", "jurisprudence")],
    "ceval": [f"val/{s}_val.csv" for s in ("high_school_history", "modern_chinese_history", "law", "physician",
                                           "high_school_chinese", "civil_servant", "accountant",
                                           "teacher_qualification")],
}
EN, ZH = ("mmlu", "arc", "truthfulqa", "gsm8k", "hellaswag_olmes"), ("cmmlu", "ceval")


def subset_files(root: Path) -> list[dict]:
    return [{"name": b, "paths": [str(root / f"mcq_{b}" / f) for f in files]} for b, files in SUBSET.items()]


@pytest.fixture(scope="module")
def data() -> Path:
    return need_data(*MCQ, *WEB, "sft_rasbt_ch07")


@pytest.fixture(scope="module")
def index(data, tmp_path_factory):
    spec = DecontamSpec(files=subset_files(data))
    return ensure_index(resolve_benchmarks(spec), tmp_path_factory.mktemp("decontam") / "index")


# ---------------------------------------------------------------------------------------------------------------
# planting real items


def render(rec) -> str:
    """A test item as a training set or a web page would carry it."""
    if isinstance(rec, CotExample):
        return f"Question: {rec.question}\nAnswer: {rec.rationale}\n#### {rec.answer}"
    opts = "\n".join(f"{k}. {v}" for k, v in rec.options.items())
    return f"{rec.question}\n{opts}\nAnswer: {rec.answer}"


def edit(text: str, rng: random.Random) -> str:
    """Light edits: case, punctuation, whitespace (what normalisation is meant to absorb)."""
    text = rng.choice([str.upper, str.lower, str.title])(text)
    text = text.replace(",", "").replace(". ", "! ").replace("？", "?").replace("，", ", ").replace("。", ". ")
    return "  ".join(text.split(" ")).replace("\n", " \n\n ")


def embed(text: str, host: str) -> str:
    """``text`` in the middle of a real web document, between two of its paragraphs."""
    paras = host.split("\n")
    mid = len(paras) // 2
    return "\n".join(paras[:mid] + [text] + paras[mid:])


def read_jsonl(path: Path, field: str = "text") -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)[field] for line in f if line.strip()]


@pytest.fixture(scope="module")
def web(data) -> dict[str, list[str]]:
    """Real web documents: English (FineWeb-Edu, C4) and Chinese (SkyPile, WanJuan)."""
    csv.field_size_limit(1 << 30)
    with open(data / WEB[0] / "training_data.csv", encoding="utf-8") as f:
        fineweb = [r["text"] for r in csv.DictReader(f)]
    c4 = read_jsonl(data / WEB[1] / "c4_demo.jsonl") + [t for p in sorted((data / WEB[2]).glob("*.gz"))
                                                         for t in read_jsonl(p)]
    skypile = [t for p in sorted((data / WEB[3]).glob("*.jsonl")) for t in read_jsonl(p)]
    wanjuan = [t for p in sorted((data / WEB[4]).glob("*.jsonl")) for t in read_jsonl(p, "content")]
    return {"fineweb": fineweb, "c4": c4, "skypile": skypile, "wanjuan": wanjuan}


def checkable(rec) -> bool:
    """Whether the index holds any part of the item (a number series such as '4，4，6，12，30，____' normalises to
    zeros only: such items are counted as too_short in the manifest, not planted here)."""
    spec = DecontamSpec()
    return any(part_windows(t, spec.ngram, spec.min_ngram)[0].size for t in item_texts(rec))


def planted(data: Path, benchmarks: tuple[str, ...], per: int, seed: int) -> list[tuple[str, str, str]]:
    """(benchmark, item id, rendered text) of ``per`` checkable items drawn from each benchmark of the subset."""
    sets = {b: [data / f"mcq_{b}" / f for f in SUBSET[b]] for b in benchmarks}
    by_bench: dict[str, list] = {}
    for bench, item_id, rec in read_records(sets):
        if isinstance(rec, (McqQuestion, CotExample)) and checkable(rec):
            by_bench.setdefault(bench, []).append((bench, item_id, render(rec)))
    rng = random.Random(seed)
    return [x for b in benchmarks for x in rng.sample(by_bench[b], per)]


@pytest.mark.parametrize("lang,benchmarks,per,hosts", [("en", EN, 16, ("fineweb", "c4")),
                                                       ("zh", ZH, 30, ("skypile", "wanjuan"))])
def test_planted_items_are_caught_verbatim_edited_and_embedded(data, index, web, lang, benchmarks, per, hosts):
    rng = random.Random(7)
    hosts = [d for h in hosts for d in web[h]]
    caught, total, misses = 0, 0, []
    for bench, item_id, text in planted(data, benchmarks, per, seed=11):
        for variant, doc in (("verbatim", text), ("edited", edit(text, rng)),
                             ("embedded", embed(edit(text, rng), rng.choice(hosts)))):
            hit = index.match(doc)
            total += 1
            if hit is not None and hit.benchmark == bench:
                caught += 1
            else:
                misses.append((variant, bench, item_id, hit))
    print(f"\n{lang}: planted {total} ({total // 3} items x verbatim/edited/embedded), caught {caught}")
    assert not misses, misses[:5]


def test_real_web_documents_are_not_flagged(index, web):
    """Real FineWeb-Edu, C4, SkyPile and WanJuan pages share common phrases (slogans, dates, famous lines) with
    test items, not the items: none reaches min_overlap of an item's part."""
    rates = {}
    for name, docs in web.items():
        hits = [(i, h) for i, d in enumerate(docs) if (h := index.match(d)) is not None]
        rates[name] = (len(hits), len(docs))
        assert not hits, (name, hits[:3])
    total = sum(n for _, n in rates.values())
    print("\nfalse positives: " + ", ".join(f"{k} {h}/{n}" for k, (h, n) in rates.items())
          + f"; all {sum(h for h, _ in rates.values())}/{total:,} = {0 / total:.2%}")


def test_normalisation_is_datatrove_simplify_text(web):
    """``normalize`` is datatrove's ``simplify_text`` (default config) step for step, only faster."""
    docs = web["c4"][:200] + web["skypile"][:200] + ["Ångström café naïve 3,5 über — ≠ ①"]
    assert [normalize(d) for d in docs] == [simplify_text(d) for d in docs]


# ---------------------------------------------------------------------------------------------------------------
# blocks and mixes


def build_block(tmp: Path, name: str, source: dict, decontaminate=None) -> Path:
    """Build a one-source SFT block in-process (``shardsmith build``'s code path)."""
    from shardsmith.builders.build import build

    recipe = {"kind": "sft", "name": name, "tokenizer": {"name": "gpt2"}, "validation": {"fraction": 0},
              "sources": [source]}
    if decontaminate is not None:
        recipe["decontaminate"] = decontaminate
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    return build(str(path), str(tmp / f"{name}_out"))


def test_sft_block_from_rasbt_reports_and_drops_its_mmlu_question(data, tmp_path, capsys):
    """sft_rasbt_ch07 carries MMLU miscellaneous_test #503 ("What is the capital of New Zealand?"): the block's
    manifest names it, its drop carries the item, `shardsmith decontam-report` prints it; flag keeps it."""
    from shardsmith.cli import main

    rasbt = {"name": "rasbt", "paths": [str(data / "sft_rasbt_ch07" / "instruction-data.json")], "limit": 400}
    mmlu = {"files": [{"name": "mmlu", "paths": [str(data / "mcq_mmlu" / "test" / "miscellaneous_test.csv")]}]}
    out = build_block(tmp_path, "rasbt", rasbt, mmlu)
    man = ShardManifest.load(out)
    rep = man.decontamination
    assert rep.status == "checked" and [b.name for b in rep.benchmarks] == ["mmlu"]
    assert rep.checked == {"rasbt": 400} and rep.hits == {"rasbt": {"mmlu": 1}}
    assert rep.examples[0].item == "miscellaneous_test.csv:503" and rep.examples[0].ngram.startswith("what is the")
    assert man.counts["rasbt"]["dropped"]["contaminated_mmlu"] == 1
    drops = [json.loads(line) for line in gzip.open(out / "rejected" / "rasbt.jsonl.gz", "rt")]
    assert [d["detail"] for d in drops if d["reason"] == "contaminated_mmlu"][0].startswith(
        "mmlu item miscellaneous_test.csv:503")
    capsys.readouterr()
    assert main(["decontam-report", str(out)]) == 0
    report = capsys.readouterr().out
    assert "CHECKED" in report and "miscellaneous_test.csv:503" in report
    print("\n" + report)

    flagged = ShardManifest.load(build_block(tmp_path, "rasbt_flag", rasbt, {**mmlu, "action": "flag"}))
    assert flagged.decontamination.hits == {"rasbt": {"mmlu": 1}}
    assert "contaminated_mmlu" not in flagged.counts["rasbt"]["dropped"]
    assert flagged.counts["rasbt"]["kept"] == man.counts["rasbt"]["kept"] + 1


def test_benchmarks_from_env_none_said_loudly_and_opt_out_recorded(data, tmp_path, monkeypatch, capfd):
    """No `decontaminate.benchmarks`: $SHARDSMITH_BENCHMARKS (a folder of mcq_* folders) is used; without it the
    build warns and the manifest says not_checked; `decontaminate: false` is recorded as opted_out."""
    bench_root = tmp_path / "benchmarks"
    bench_root.mkdir()
    (bench_root / "mcq_truthfulqa").symlink_to(data / "mcq_truthfulqa")
    src = {"name": "rasbt", "paths": [str(data / "sft_rasbt_ch07" / "instruction-data.json")], "limit": 30}

    monkeypatch.setenv(ENV_BENCHMARKS, str(bench_root))
    rep = ShardManifest.load(build_block(tmp_path, "env", src)).decontamination
    assert rep.status == "checked" and [b.name for b in rep.benchmarks] == ["truthfulqa"]
    assert ENV_BENCHMARKS in rep.note and rep.checked == {"rasbt": 30}
    rep = ShardManifest.load(build_block(tmp_path, "optout", src, False)).decontamination
    assert rep.status == "opted_out" and rep.benchmarks == [] and rep.checked == {}

    monkeypatch.delenv(ENV_BENCHMARKS)
    capfd.readouterr()
    rep = ShardManifest.load(build_block(tmp_path, "none", src)).decontamination
    assert rep.status == "not_checked" and "NOT checked" in rep.note
    assert "NOT checked for benchmark contamination" in capfd.readouterr().err


@pytest.mark.parametrize("action", ["drop", "flag"])
def test_mix_drops_a_planted_document_with_benchmark_and_item(data, index, web, tmp_path, action):
    """A mix source holding real C4 pages and two with a GSM8K and a CMMLU item embedded: the two are rejected under
    rejected/<source>/decontam/ with benchmark and item (``flag``: kept, and recorded under flagged/); the manifest
    counts them per source and benchmark either way."""
    from shardsmith.pipelines.mixer import build_mix
    from shardsmith.recipes import load_recipe
    from shardsmith.schemas.mix_recipe import MixRecipe

    items = planted(data, ("gsm8k",), 1, seed=3) + planted(data, ("cmmlu",), 1, seed=3)
    docs = web["c4"][:40] + [embed(text, web["c4"][50 + i]) for i, (_, _, text) in enumerate(items)]
    src = tmp_path / "web.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs)))
    recipe = {"name": "m", "tokenizer": {"name": "gpt2"}, "validation_fraction": 0,
              "sources": [{"name": "web", "kind": "generic", "paths": [str(src)], "weight": 1, "filters": "none"}],
              "decontaminate": {"files": subset_files(data), "index": str(index.folder),  # the module's: reused
                                "action": action}}
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = build_mix(load_recipe(MixRecipe, str(path)), tmp_path / "out", progress=False).parent
    rep = ShardManifest.load(out).decontamination
    assert rep.checked == {"web": 42} and rep.hits == {"web": {"cmmlu": 1, "gsm8k": 1}}
    assert sorted((e.benchmark, e.item) for e in rep.examples) == sorted((b, i) for b, i, _ in items)
    assert sorted(e.id for e in rep.examples) == ["d40", "d41"]
    assert not (out.parent / "out.decontam-index").exists()  # `index:` keeps it where the recipe says
    assert ShardManifest.load(out).decontamination.index == str(index.folder)
    step = next(st for st in ShardManifest.load(out).filters["web"] if st.step == "decontam")
    recorded = out / ("rejected" if action == "drop" else "flagged") / "web" / "decontam"
    ids = sorted(json.loads(line)["id"] for f in recorded.glob("*.jsonl.gz") for line in gzip.open(f, "rt"))
    assert ids == ["d40", "d41"]
    assert (step.read, step.dropped) == (42, 2 if action == "drop" else 0)


# ---------------------------------------------------------------------------------------------------------------
# recipe fields, on a tiny index (no data needed)

LONG = ("the committee decided that the ancient lighthouse on the northern cliff should be restored before the "
        "winter storms arrive next year")  # 21 words: nine 13-grams
SHORT = "which river flows through the old capital city"  # 8 words


def tiny_index(tmp: Path, **spec) -> "NgramIndex":  # noqa: F821
    from shardsmith.pipelines.decontam import NgramIndex, TestItem

    s = DecontamSpec(**spec)
    items = [TestItem("quiz", "q:0", (LONG,)), TestItem("quiz", "q:1", (SHORT,))]
    return NgramIndex.build(items, tmp / f"idx-{s.ngram}-{s.min_ngram}-{s.min_overlap}", ngram=s.ngram,
                            min_ngram=s.min_ngram, min_overlap=s.min_overlap, fingerprint="t")


def test_ngram_min_ngram_and_min_overlap_shape_what_is_caught(tmp_path):
    words = LONG.split()
    half = "Some unrelated intro. " + " ".join(words[:13]) + " and then something else entirely."
    index = tiny_index(tmp_path)
    assert index.match(f"Intro text. {LONG.upper()}!").item == "q:0"
    assert index.match(half) is None  # 1 of the part's 9 13-grams: below min_overlap 0.5
    assert tiny_index(tmp_path, min_overlap=0.1).match(half).overlap == pytest.approx(1 / 9)
    assert index.match(f"So: {SHORT}?").item == "q:1"  # 8 words >= min_ngram 7: matched whole
    assert tiny_index(tmp_path, min_ngram=9).match(f"So: {SHORT}?") is None  # too short to check
    assert [b.too_short for b in tiny_index(tmp_path, min_ngram=9).benchmarks] == [1]
    longer = tiny_index(tmp_path, ngram=22, min_ngram=22)  # LONG (21 words) no longer fits a window
    assert longer.match(LONG) is None and longer.benchmarks[0].too_short == 2


def test_benchmark_paths_resolve_names_skip_train_and_fail_in_one_line(data, tmp_path):
    plan = resolve_benchmarks(DecontamSpec(benchmarks=[str(data)]))
    assert set(plan.sets) == {"arc", "ceval", "cmmlu", "gsm8k", "hellaswag_olmes", "mmlu", "truthfulqa"}
    assert [p.name for p in plan.sets["gsm8k"]] == ["test.jsonl", "test_socratic.jsonl"]  # train.jsonl is no test
    one = resolve_benchmarks(DecontamSpec(benchmarks=[str(data / "mcq_truthfulqa")]))
    assert list(one.sets) == ["truthfulqa"]
    with pytest.raises(FileNotFoundError, match="benchmark path nowhere not found"):
        resolve_benchmarks(DecontamSpec(benchmarks=["nowhere"]), base=tmp_path)
    user = tmp_path / "mine.jsonl"
    user.write_text(json.dumps({"instruction": SHORT, "output": "the Thames"}) + "\n")
    spec = DecontamSpec(files=[{"name": "mine", "paths": [str(user)]}])
    mine = ensure_index(resolve_benchmarks(spec), tmp_path / "i1")
    assert mine.match(f"Q: {SHORT} A: the Thames").item == "mine.jsonl:0"
    forced = DecontamSpec(files=[{"name": "mine", "paths": [str(user)], "shape": "mmlu"}])
    with pytest.raises(ValueError, match="shape 'mmlu'"):
        ensure_index(resolve_benchmarks(forced), tmp_path / "i2")
