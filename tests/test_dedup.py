"""Issue 11's dedup must-shows on real samples: near-duplicates (a copy with one paragraph changed) and exact
duplicates under other ids are removed and their originals kept, distinct documents are kept, cross-source
duplicates go by the recipe's keep rule, Chinese too; the mix records it all (manifest, rejected/<source>/dedup/).

The corpus: real C4 documents (two English sources) and real SkyPile documents (Chinese), each source in two files
(two tasks), with planted copies. Each dedup run takes a few seconds (no filters, no tokenizer).
"""

from __future__ import annotations

import gzip
import re
import json
from pathlib import Path

import pytest
from conftest import need_data

from shardsmith.pipelines.dedup import Deduplicator, dedup_groups, dedup_mix, local_executor, minhash_config
from shardsmith.pipelines.mixer import MixBuild, build_mix
from shardsmith.pipelines.minhash_signature import FastMinhashSignature
from shardsmith.schemas.dedup import DedupSpec
from shardsmith.schemas.manifest import ShardManifest
from shardsmith.schemas.mix_recipe import MixRecipe, SourceSpec

C4 = "web_c4_demo_llamafactory/c4_demo.jsonl"
SKYPILE = "zh_skypile_sample/2021-31_zh_head_0000_sample.jsonl"


def real_texts(root: Path, rel: str, n: int) -> list[str]:
    with open(root / rel, encoding="utf-8") as f:
        return [json.loads(line)["text"] for _, line in zip(range(n), f)]


def paragraphs(text: str) -> list[str]:
    return [p for p in text.split("\n") if p.strip()]


def one_paragraph_changed(text: str, other: str) -> str:
    """The text with its middle paragraph replaced by the first paragraph of another real document."""
    paras = paragraphs(text)
    paras[len(paras) // 2] = paragraphs(other)[0]
    return "\n".join(paras)


def exact_variant(text: str) -> str:
    """The same text up to letter case and whitespace (what `exact` treats as the same document)."""
    return "  " + text.upper().replace(" ", "   ").replace("\n", "\n\n") + "\n"


def write_source(folder: Path, docs: list[tuple[str, str]]) -> None:
    """datatrove jsonl.gz, split into two files (two tasks: global file ids must line up across phases)."""
    folder.mkdir(parents=True)
    half = len(docs) // 2
    for i, part in enumerate((docs[:half], docs[half:])):
        with gzip.open(folder / f"{i:05d}.jsonl.gz", "wt", encoding="utf-8") as f:
            for doc_id, text in part:
                f.write(json.dumps({"id": doc_id, "text": text, "metadata": {}}, ensure_ascii=False) + "\n")


def first_long(texts: list[str], start: int, min_paragraphs: int = 20) -> int:
    return next(i for i in range(start, len(texts)) if len(paragraphs(texts[i])) >= min_paragraphs)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = need_data("web_c4_demo_llamafactory", "zh_skypile_sample")
    en, zh = real_texts(root, C4, 120), real_texts(root, SKYPILE, 60)
    near_news, near_cross, near_zh = first_long(en, 5), first_long(en, 25), first_long(zh, 0)
    news = [(f"news-{i}", en[i]) for i in range(60)]
    forum = [(f"forum-{i}", en[i]) for i in range(60, 120)]
    sky = [(f"zh-{i}", zh[i]) for i in range(60)]
    planted = {  # planted id -> (original id, kind)
        "news-near": (f"news-{near_news}", "near"),
        "news-exact": ("news-3", "exact"),
        "forum-copy-exact": ("news-4", "exact"),
        "forum-copy-near": (f"news-{near_cross}", "near"),
        "zh-near": (f"zh-{near_zh}", "near"),
        "zh-exact": ("zh-2", "exact"),
    }
    news[30:30] = [("news-near", one_paragraph_changed(en[near_news], en[70])), ("news-exact", exact_variant(en[3]))]
    forum[10:10] = [("forum-copy-exact", exact_variant(en[4])),
                    ("forum-copy-near", one_paragraph_changed(en[near_cross], en[90]))]
    sky[40:40] = [("zh-near", one_paragraph_changed(zh[near_zh], zh[50])), ("zh-exact", zh[2].replace("\n", "\n\n"))]
    base = tmp_path_factory.mktemp("dedup")
    for name, docs in (("forum", forum), ("news", news), ("zh", sky)):
        write_source(base / "in" / name, docs)
    texts = {i: t for i, t in news + forum + sky}
    for name, docs in (("forum", forum), ("news", news), ("zh", sky)):  # the same, as a mix reads them
        with open(base / f"{name}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in docs)
    return base, planted, texts


# the recipe lists forum first; news is the better tier
SOURCES = [
    SourceSpec(name="forum", kind="generic", paths=["x"], weight=1, tier="low"),
    SourceSpec(name="news", kind="generic", paths=["x"], weight=1, tier="high"),
    SourceSpec(name="zh", kind="generic", paths=["x"], weight=1, language="zh", tier="medium"),
]


def run_dedup(corpus, label: str, **settings):
    base, _, _ = corpus
    spec = DedupSpec(**settings)
    folders = {s.name: base / "in" / s.name for s in SOURCES}
    work = base / label
    dedup = Deduplicator(spec, SOURCES, folders, work / ".work", work / "rejected", local_executor())
    kept_folders = dedup.run()
    kept = {name: {d["id"] for d in read_gz(folder)} for name, folder in kept_folders.items()}
    rejected = {r["id"]: r for name in kept for r in read_gz(work / "rejected" / name / "dedup")}
    return dedup, kept, rejected


def read_gz(folder: Path):
    for path in sorted(folder.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            yield from map(json.loads, f)


def test_planted_near_and_exact_duplicates_go_and_originals_stay(corpus):
    _, planted, texts = corpus
    dedup, kept, rejected = run_dedup(corpus, "tier", keep="tier")
    assert set(rejected) == set(planted), sorted(rejected)  # every distinct real document is kept
    for dup_id, (original, kind) in planted.items():
        record = rejected[dup_id]
        assert (record["duplicate_of"], record["duplicate_kind"]) == (original, kind), record
        assert record["reason"].startswith(f"{kind} duplicate of {original}")
        assert any(original in ids for ids in kept.values())
    all_ids = {i for i in texts}
    assert set().union(*kept.values()) == all_ids - set(planted)
    counts = dedup.counts()
    assert counts["news"] == {"read": 62, "exact": 1, "near": 1, "of_other_sources": 0, "kept": 60}
    assert counts["forum"] == {"read": 62, "exact": 1, "near": 1, "of_other_sources": 2, "kept": 60}
    assert counts["zh"] == {"read": 62, "exact": 1, "near": 1, "of_other_sources": 0, "kept": 60}


def test_keep_order_lets_the_first_listed_source_keep_a_cross_source_duplicate(corpus):
    _, planted, _ = corpus
    _, kept, rejected = run_dedup(corpus, "order", keep="order")
    # forum is listed first: news' originals of the forum copies are now the removed ones
    for copy in ("forum-copy-exact", "forum-copy-near"):
        original = planted[copy][0]
        assert copy in kept["forum"] and original in rejected, (copy, original)
        assert rejected[original]["duplicate_of"] == copy and rejected[original]["duplicate_source"] == "forum"


def test_scope_source_keeps_cross_source_duplicates_and_skip_sources_keeps_a_source_whole(corpus):
    _, planted, _ = corpus
    dedup, kept, rejected = run_dedup(corpus, "scope", scope="source", skip_sources=["zh"])
    assert set(dedup.groups) == {"forum", "news"}
    assert set(rejected) == {"news-near", "news-exact"}
    assert {"forum-copy-exact", "forum-copy-near"} <= kept["forum"]


def test_exact_off_finds_the_exact_copy_as_a_near_duplicate_and_minhash_off_misses_near_ones(corpus):
    _, _, rejected = run_dedup(corpus, "no-exact", exact=False, scope="source")
    assert rejected["news-exact"]["duplicate_kind"] == "near" and rejected["zh-exact"]["duplicate_kind"] == "near"
    _, _, rejected = run_dedup(corpus, "no-minhash", minhash={"enabled": False}, scope="source")
    assert set(rejected) == {"news-exact", "zh-exact"}


def test_keep_tier_orders_sources_by_tier_order_then_recipe_order():
    files = {s.name: 2 for s in SOURCES}
    by_tier = dedup_groups(DedupSpec(keep="tier"), SOURCES, files)["mix"]
    assert [(m.name, m.offset) for m in by_tier] == [("news", 0), ("zh", 2), ("forum", 4)]
    reordered = dedup_groups(DedupSpec(keep="tier", tier_order=["low", "medium", "high"]), SOURCES, files)["mix"]
    assert [m.name for m in reordered] == ["forum", "zh", "news"]
    assert [m.name for m in dedup_groups(DedupSpec(), SOURCES, files)["mix"]] == ["forum", "news", "zh"]


def test_chinese_is_shingled_by_jieba_words_not_by_spaces(corpus):
    """datatrove's `zh` word tokenizer does not segment Chinese; the signature stage uses jieba words
    (datatrove's cmn_Hani), so a Chinese paragraph gives one shingle per word, not one per space-separated run."""
    _, _, texts = corpus
    step = FastMinhashSignature("/nonexistent", minhash_config(DedupSpec()), language="zh")
    text = texts["zh-0"]
    shingles = step.get_shingles(text)
    assert len(shingles) > 4 * (len(text.split()) + 1)
    assert step.split_words("今天天气很好我们去公园") == ["今天天气", "很", "好", "我们", "去", "公园"]


def mix_recipe(base: Path, **dedup) -> MixRecipe:
    sources = [
        {"name": name, "kind": "generic", "id_field": "id", "language": lang, "weight": 1, "tier": tier,
         "filters": "none", "paths": [str(base / f"{name}.jsonl")]}
        for name, lang, tier in (("forum", "en", "low"), ("news", "en", "high"), ("zh", "zh", "medium"))
    ]
    return MixRecipe(name="dedup-mix", tokenizer={"name": "gpt2"}, validation_fraction=0.0, write_text="parquet",
                     sources=sources, dedup=dedup)


def test_mix_drops_duplicates_before_counting_and_records_them(corpus):
    """The whole mix: the shards' text export holds every original and no planted copy, each removed document is in
    rejected/<source>/dedup/ with the id it duplicates, the manifest has the settings, keep order and counts."""
    import pyarrow.parquet as pq

    base, planted, texts = corpus
    out = base / "mix"
    build_mix(mix_recipe(base, keep="tier"), out, progress=False, keep_work=True)
    manifest = ShardManifest.load(out)
    counted = {d["id"] for name in ("forum", "news", "zh") for d in read_gz(out / ".work" / "deduped" / name)}
    assert counted == set(texts) - set(planted)  # what the count / plan / tokenize phases read
    exported = {i for p in (out / "text").rglob("*.parquet") for i in pq.read_table(p, columns=["id"])["id"].to_pylist()}
    assert exported and not exported & set(planted)
    info = manifest.dedup
    assert info["enabled"] and info["settings"]["keep"] == "tier" and info["keep_order"] == ["news", "zh", "forum"]
    assert info["removed"]["forum"] == {"read": 62, "exact": 1, "near": 1, "of_other_sources": 2, "kept": 60}
    for src in manifest.sources:
        last = manifest.filters[src.name][-1]
        assert last.step == "dedup" and last.dropped == 2 and src.documents_available == 60
        assert last.reasons == {"exact_duplicate": 1, "near_duplicate": 1}
    rejected = {r["id"]: r for r in read_gz(out / "rejected" / "forum" / "dedup")}
    assert rejected["forum-copy-near"]["duplicate_of"] == planted["forum-copy-near"][0]


def test_dedup_off_keeps_every_document_and_says_so(corpus, tmp_path):
    base, _, texts = corpus
    build = MixBuild(mix_recipe(base, enabled=False), tmp_path)
    dedup_mix(build)
    assert build.dedup_info == {"enabled": False, "settings": build.recipe.dedup.model_dump(mode="json")}
    assert build.documents == {}  # the filtered documents go on as they are


def test_sentence_span_dedup_cuts_a_repeated_paragraph_from_the_later_document(corpus, tmp_path):
    """C4's span dedup (datatrove SentenceDedup) on one source: a real paragraph of 4+ sentences copied into another
    real document is cut from the copy (the original keeps it); the changed document is listed in
    rejected/<source>/dedup_spans/ with the span marked."""
    _, _, texts = corpus
    original = next(f"news-{i}" for i in range(60) if any(p.count(". ") >= 4 for p in paragraphs(texts[f"news-{i}"])))
    paragraph = max((p for p in paragraphs(texts[original]) if p.count(". ") >= 4), key=len)
    host = texts["news-50"]
    docs = [(f"news-{i}", texts[f"news-{i}"]) for i in range(60) if f"news-{i}" != "news-50"]
    docs.append(("news-50", host + "\n" + paragraph))
    write_source(tmp_path / "in" / "news", docs)
    spec = DedupSpec(sentences={"enabled": True, "sources": ["news"], "n_sentences": 3, "min_doc_words": 10})
    news = [SOURCES[1]]
    dedup = Deduplicator(spec, news, {"news": tmp_path / "in" / "news"}, tmp_path / ".work", tmp_path / "rejected",
                         local_executor())
    kept = {d["id"]: d["text"] for d in read_gz(dedup.run()["news"])}
    assert paragraph not in kept["news-50"] and kept["news-50"].startswith(host[:200])
    assert paragraph in kept[original]
    spans = dedup.counts()["news"]["spans"]
    assert spans["sentences_cut"] >= 3 and spans["dropped"] == 0 and spans["kept"] == 60
    changed = {r["id"]: r for r in read_gz(tmp_path / "rejected" / "news" / "dedup_spans")}
    assert ">>>" in changed["news-50"]["text"]


def test_recipe_refuses_unknown_dedup_sources_and_untiered_sources_under_keep_tier(tmp_path):
    src = [{"name": "a", "kind": "generic", "paths": ["x"], "weight": 1, "tier": "gold"},
           {"name": "b", "kind": "generic", "paths": ["x"], "weight": 1}]
    for dedup, words in (
        ({"skip_sources": ["nope"]}, "dedup.skip_sources: no source named ['nope']"),
        ({"sentences": {"enabled": True, "sources": ["nope"]}}, "dedup.sentences.sources: no source named"),
        ({"keep": "tier"}, "tier is not in tier_order ['high', 'medium', 'low']: a (tier gold), b (tier None)"),
    ):
        with pytest.raises(ValueError, match=re.escape(words)):
            MixRecipe(sources=src, dedup=dedup)
    assert MixRecipe(sources=src, dedup={"keep": "tier", "tier_order": ["gold"], "skip_sources": ["b"]})
