"""Source readers: every kind on its real sample (counts from shared/data/PROVENANCE.md), strict errors on small
files written here, sharding/limit/id stability, WARC extraction, hf_hub construction."""

from __future__ import annotations

import csv
import gzip
import json
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

from shardsmith.pipelines.readers import CheckedTrafilatura, SourceError, SourceFileNotFoundError
from shardsmith.pipelines.sources import (
    build_extractor,
    build_reader,
    count_input_files,
    iter_documents,
    list_input_files,
)
from shardsmith.schemas.mix_recipe import SourceSpec


def spec(name: str, kind: str, *paths, **kw) -> SourceSpec:
    return SourceSpec(name=name, kind=kind, paths=[str(p) for p in paths], weight=1, **kw)


def read(source: SourceSpec, **kw) -> list:
    return list(iter_documents(source, **kw))


def check_common(docs, source: SourceSpec, count: int) -> None:
    assert len(docs) == count
    assert all(d.text.strip() for d in docs), "a real sample document came out empty"
    ids = [d.id for d in docs]
    assert len(set(ids)) == len(ids), "ids are not unique"
    assert all(d.metadata["source"] == source.name and d.metadata["kind"] == source.kind for d in docs)
    assert all(os.path.isabs(d.metadata["file_path"]) for d in docs)


def jsonl(path: Path, rows: list) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ real samples, en


@pytest.mark.realdata
def test_fineweb_csv_export(shared_data):
    root = shared_data("web_fineweb_edu_text_llm_scored")
    s = spec("fwedu", "fineweb", root / "web_fineweb_edu_text_llm_scored" / "training_data.csv")
    docs = read(s)
    check_common(docs, s, 150)
    first = docs[0]
    assert first.id == "fwedu/training_data.csv/0"
    assert first.text.startswith("The Independent Jane\nFor all the love, romance and scandal in Jane Austen")
    assert first.metadata["score"] == 4.0 and first.metadata["decision"] == "KEEP"  # csv strings -> numbers
    assert Counter(d.metadata["decision"] for d in docs) == {"KEEP": 134, "DISCARD": 16}


def test_fineweb_parquet_keeps_fineweb_fields(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"text": f"document {i} " * 20, "id": f"<urn:uuid:{i:08d}>", "url": f"https://e.org/{i}",
         "dump": "CC-MAIN-2024-10", "language_score": 0.93, "score": 3.25, "int_score": 3, "token_count": 41}
        for i in range(5)
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "000.parquet")
    docs = read(spec("fw", "fineweb", tmp_path))
    assert [d.id for d in docs] == [r["id"] for r in rows]
    m = docs[2].metadata
    assert (m["url"], m["dump"], m["language_score"], m["score"], m["int_score"]) == (
        "https://e.org/2", "CC-MAIN-2024-10", 0.93, 3.25, 3)


@pytest.mark.realdata
def test_c4_gzip_shards(shared_data):
    root = shared_data("web_c4_en_olmo_fixture") / "web_c4_en_olmo_fixture"
    s = spec("c4", "c4", root)
    assert count_input_files(s) == 3
    docs = read(s)
    check_common(docs, s, 30)  # 3 files x 10
    assert docs[0].id == "c4/c4-sample.01.json.gz/0"
    assert docs[0].metadata["url"] == "https://www.kentlive.news/news/sevenoaks-mum-who-died-after-2582402"
    assert docs[0].metadata["date"] == "2019-04-21T18:54:04Z"
    assert docs[0].text.startswith("The woman who died after falling from a bridge over the A21")
    assert all(d.metadata["url"].startswith("http") for d in docs)


@pytest.mark.realdata
def test_c4_text_only_jsonl(shared_data):
    root = shared_data("web_c4_demo_llamafactory")
    s = spec("c4demo", "c4", root / "web_c4_demo_llamafactory" / "c4_demo.jsonl")
    docs = read(s)
    check_common(docs, s, 300)
    assert docs[0].text.startswith("Don’t think you need all the bells and whistles?")
    assert docs[299].id == "c4demo/c4_demo.jsonl/299"


@pytest.mark.realdata
def test_dolma_keeps_own_ids_and_nested_metadata(shared_data):
    root = shared_data("web_dolma_cc_en_head") / "web_dolma_cc_en_head"
    s = spec("dolma", "dolma", root)
    docs = read(s)
    check_common(docs, s, 30)  # 10 + 10 + 10 (one of them .json.gz)
    first = docs[0]  # cc_en_head-0091.jsonl, line 1
    assert first.id == "http://100kinvesting.com/2016/11/28/first-teleconference-calls-invoice-factoring/"
    m = first.metadata
    assert m["record_source"] == "common-crawl"
    assert m["url"] == "http://100kinvesting.com/2016/11/28/first-teleconference-calls-invoice-factoring/"
    assert m["language_score"] == 0.95 and m["perplexity"] == 304.6
    assert m["created"] == "2020-03-29T09:04:10Z" and m["added"].startswith("2023-04-07")
    gz = [d for d in docs if d.metadata["file_path"].endswith(".json.gz")]
    assert len(gz) == 10 and gz[0].id == "http://advocatesaz.org/tag/antibiotic-resistant-bacteria/"


@pytest.mark.realdata
def test_dclm_jsonl(shared_data):
    root = shared_data("web_dclm_quality_annotations") / "web_dclm_quality_annotations"
    s = spec("dclm", "dclm", root)
    docs = read(s)
    check_common(docs, s, 281 + 499)
    assert {d.metadata["label"] for d in docs} == {0, 1}
    assert docs[0].text.startswith("Wednesday, July 3, 2013\nSpace - Magic (Discomare 1977)")


@pytest.mark.realdata
def test_wikipedia_lines(shared_data):
    root = shared_data("wiki_en_demo_llamafactory")
    s = spec("wiki", "wikipedia_lines", root / "wiki_en_demo_llamafactory" / "wiki_demo.txt")
    docs = read(s)
    check_common(docs, s, 30)
    assert docs[0].text.startswith("Anarchism is a political philosophy and movement")
    assert docs[1].text.startswith("Autism is a neurodevelopmental disorder")
    assert not any("\n" in d.text for d in docs)


@pytest.mark.realdata
def test_news_folder(shared_data):
    root = shared_data("news_bbc_fulltext") / "news_bbc_fulltext"
    s = spec("bbc", "news_folder", root)
    assert count_input_files(s) == 500
    docs = read(s)
    check_common(docs, s, 500)
    assert Counter(d.metadata["category"] for d in docs) == {
        c: 100 for c in ("business", "entertainment", "politics", "sport", "tech")}
    first = docs[0]
    assert first.id == "bbc/business/001.txt/0"
    assert first.metadata["title"] == "Ad sales boost Time Warner profit"
    assert first.text.startswith("Ad sales boost Time Warner profit\n\nQuarterly profits at US media giant TimeWarner")
    assert first.text == first.text.strip()


# ------------------------------------------------------------------------------------------------ real samples, zh


@pytest.mark.realdata
def test_wikipedia_zh_json_array(shared_data):
    root = shared_data("zh_wikipedia_cn_filtered") / "zh_wikipedia_cn_filtered"
    s = spec("wikizh", "wikipedia_zh", root)
    docs = read(s)
    check_common(docs, s, 250)
    assert docs[0].text.startswith("昭通机场（ZPZT）是位于中国云南昭通的民用机场")
    assert {d.metadata["record_source"] for d in docs} == {"wikipedia.zh2307"}
    assert docs[249].id == "wikizh/wikipedia-cn-20230720-filtered_sample.json/249"


@pytest.mark.realdata
def test_skypile(shared_data):
    root = shared_data("zh_skypile_sample") / "zh_skypile_sample"
    s = spec("sky", "skypile", root)
    docs = read(s)
    check_common(docs, s, 1000)
    assert docs[0].text.startswith("本网讯 8月份以来，各级农业农村部门认真贯彻落实党中央")


@pytest.mark.realdata
def test_wanjuan_uses_record_ids(shared_data):
    root = shared_data("zh_wanjuan1_text_sample") / "zh_wanjuan1_text_sample"
    s = spec("wanjuan", "wanjuan", root)
    docs = read(s)
    check_common(docs, s, 1000)
    assert docs[0].id == "BkPn-HHxK7EhrSATFv6d"
    assert docs[1].text.startswith("# 声音里的中国丨地处江南，镇江为何成为北方官话嵌入吴语区的方言岛？")


@pytest.mark.realdata
def test_baidu_baike_sections_become_readable_text(shared_data):
    root = shared_data("zh_baidu_baike") / "zh_baidu_baike"
    s = spec("baike", "baidu_baike", root)
    docs = read(s)
    check_common(docs, s, 1000)
    first = docs[0]
    m = first.metadata
    assert m["title"] == "红色食品" and m["url"] == "http://baike.baidu.com/view/0010.htm"
    assert m["tags"][:2] == ["饮食", "食品"]
    assert first.text.startswith("红色食品\n\n红色食品是指食品为红色、橙红色或棕红色的食品。")
    assert "\n\n简介\n红色食品富含番茄红素" in first.text  # section title, then its content
    assert "[{" not in first.text and "'content'" not in first.text


@pytest.mark.realdata
def test_zhihu_parquet_question_and_answer(shared_data):
    root = shared_data("zh_zhihu_kol") / "zh_zhihu_kol"
    s = spec("zhihu", "zhihu", root)
    docs = read(s)
    check_common(docs, s, 1000)
    first = docs[0]
    assert first.id == "914332816"  # METADATA.answer_id
    assert first.text.startswith("怎么说服男朋友买烤箱？\n\nemmmmm，首先想说的是")
    m = first.metadata
    assert m["question_id"] == 357137111 and m["record_source"] == "Zhihu"
    assert m["url"] == "https://www.zhihu.com/question/357137111/answer/914332816"
    assert m["answer_creation_time"] == "2019-11-28T12:01:22.000Z"


# ------------------------------------------------------------------------------------------------ WARC


@pytest.mark.realdata
def test_warc_reader_and_extraction(shared_data):
    root = shared_data("warc_dolma_wget_sample") / "warc_dolma_wget_sample"
    s = spec("warc", "warc", root)
    reader = build_reader(s)
    raw = list(reader.run())
    # PROVENANCE: 22 + 15 response records, all HTML (wget writes no WARC-Identified-Payload-Type; two of them
    # are sniffed as JavaScript by libmagic and would be lost without the Content-Type fallback)
    assert len(raw) == 37
    assert all(d.id.startswith("<urn:uuid:") for d in raw) and len({d.id for d in raw}) == 37
    assert all(d.metadata["url"].startswith("http") and d.metadata["date"].startswith("2024-04-25") for d in raw)
    assert reader.stats["warc_records_skipped"].total == 48 + 34 - 37

    extractor = build_extractor(s)
    assert isinstance(extractor, CheckedTrafilatura)
    docs = list(extractor.run(iter(raw)))
    assert len(docs) >= 0.9 * len(raw), extractor.stats
    assert sum(len(d.text) for d in docs) > 50_000
    assert all("<html" not in d.text.lower() and d.metadata["source"] == "warc" for d in docs)
    stats = extractor.stats
    dropped = stats["dropped"].total
    assert stats["total"].total == 37 and stats["forwarded"].total == len(docs) and dropped == 37 - len(docs)
    by_reason = sum(stats[f"dropped_{r}"].total for r in ("timeout", "broken_process", "clean_error", "empty"))
    assert by_reason == dropped


def test_extractor_counts_drops_by_reason():
    from datatrove.data import Document

    ex = CheckedTrafilatura(timeout=5)
    docs = [Document(text="", id="a"), Document(text="<html><body></body></html>", id="b"),
            Document(text="<html><body><article>" + "<p>A reasonably long paragraph about rivers and towns.</p>" * 5
                          + "</article></body></html>", id="c")]
    out = list(ex.run(iter(docs)))
    assert [d.id for d in out] == ["c"]
    assert ex.stats["dropped_empty"].total == 2 and ex.stats["dropped"].total == 2


def test_missing_lxml_html_clean_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "lxml_html_clean", None)  # import now fails, as when it is not installed
    s = spec("w", "warc", jsonl(tmp_path / "x.warc", []))
    with pytest.raises(SourceError, match="lxml_html_clean"):
        build_extractor(s)


def test_extractor_only_for_warc(tmp_path):
    assert build_extractor(spec("a", "c4", jsonl(tmp_path / "a.jsonl", [{"text": "x"}]))) is None


# ------------------------------------------------------------------------------------------------ tiny fixtures


def test_wikipedia_title_text_jsonl(tmp_path):
    f = jsonl(tmp_path / "enwiki.jsonl", [
        {"id": "12", "url": "https://en.wikipedia.org/wiki?curid=12", "title": "Anarchism", "text": "Anarchism is..."},
        {"id": "25", "url": "https://en.wikipedia.org/wiki?curid=25", "title": "Autism", "text": "Autism is..."},
    ])
    docs = read(spec("wiki", "wikipedia", f))
    assert [d.id for d in docs] == ["12", "25"]
    assert docs[1].metadata["title"] == "Autism" and docs[1].text == "Autism is..."


def test_news_jsonl(tmp_path):
    f = jsonl(tmp_path / "ccnews.jsonl", [
        {"title": "Markets rally", "text": "Stocks rose on Monday.", "date": "2017-01-02", "url": "https://n.com/1",
         "domain": "n.com"},
        {"title": "Rain expected", "text": "Rain expected\n\nForecasters say...", "date": "2017-01-03",
         "url": "https://n.com/2"},
    ])
    docs = read(spec("news", "news_jsonl", f))
    assert docs[0].text == "Markets rally\n\nStocks rose on Monday."
    assert docs[1].text == "Rain expected\n\nForecasters say..."  # title not repeated
    assert docs[0].metadata["title"] == "Markets rally" and docs[0].metadata["date"] == "2017-01-02"
    assert docs[0].metadata["url"] == "https://n.com/1" and docs[0].id == "news/ccnews.jsonl/0"


@pytest.mark.parametrize("layout", ["array", "lines"])
def test_wudao(tmp_path, layout):
    rows = [
        {"id": 0, "uniqueKey": "a1b2", "titleUkey": "t1", "dataType": "博客", "title": "标题一", "content": "正文一。"},
        {"id": 1, "uniqueKey": "c3d4", "titleUkey": "t2", "dataType": "百科", "title": "", "content": "正文二。"},
    ]
    f = tmp_path / "part-0.json"
    if layout == "array":
        f.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    else:
        jsonl(f, rows)
    docs = read(spec("wudao", "wudao", f))
    assert [d.id for d in docs] == ["a1b2", "c3d4"]
    assert docs[0].text == "标题一\n\n正文一。" and docs[1].text == "正文二。"
    assert docs[0].metadata["dataType"] == "博客" and docs[0].metadata["title"] == "标题一"


def test_generic_formats_and_fields(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"uid": f"u{i}", "body": f"text {i}", "lang": "en"} for i in range(4)]
    jsonl(tmp_path / "a.jsonl", rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "b.parquet")
    with open(tmp_path / "c.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["uid", "body", "lang"])
        w.writeheader()
        w.writerows(rows)
    (tmp_path / "d.data").write_text((tmp_path / "a.jsonl").read_text())
    for name, fmt in [("a.jsonl", None), ("b.parquet", None), ("c.csv", None), ("d.data", "jsonl")]:
        docs = read(spec("g", "generic", tmp_path / name, text_field="body", id_field="uid", format=fmt))
        assert [(d.id, d.text, d.metadata["lang"]) for d in docs] == [(f"u{i}", f"text {i}", "en") for i in range(4)]
    with pytest.raises(SourceError, match="cannot tell the format"):
        build_reader(spec("g", "generic", tmp_path / "d.data"))
    with pytest.raises(SourceError, match="mixes file formats"):
        build_reader(spec("g", "generic", tmp_path / "a.jsonl", tmp_path / "b.parquet", text_field="body"))
    with pytest.raises(SourceError, match=r"line 1: missing field 'key'"):
        read(spec("g", "generic", tmp_path / "a.jsonl", text_field="body", id_field="key"))


# ------------------------------------------------------------------------------------------------ strictness


def test_malformed_line_names_file_and_line(tmp_path):
    f = jsonl(tmp_path / "web.jsonl", [{"text": "one"}, "", {"text": "three"}, '{"text": "broken'])
    with pytest.raises(SourceError) as err:
        read(spec("web", "c4", f))
    assert str(f) in str(err.value) and "line 4" in str(err.value)  # blank line 2 still counts


def test_missing_text_field_names_field_and_found_fields(tmp_path):
    f = jsonl(tmp_path / "c4.jsonl", [{"text": "fine"}, {"body": "no text here", "url": "u"}])
    with pytest.raises(SourceError) as err:
        read(spec("c4", "c4", f))
    msg = str(err.value)
    assert str(f) in msg and "line 2" in msg and "'text'" in msg and "['body', 'url']" in msg
    g = jsonl(tmp_path / "wj.jsonl", [{"id": "x", "text": "wrong kind"}])
    with pytest.raises(SourceError, match=r"wj\.jsonl, line 1: missing field 'content'"):
        read(spec("wj", "wanjuan", g))


def test_bad_records(tmp_path):
    with pytest.raises(SourceError, match=r"line 2: expected a JSON object, got list"):
        read(spec("a", "skypile", jsonl(tmp_path / "a.jsonl", [{"text": "x"}, [1, 2]])))
    with pytest.raises(SourceError, match=r"line 1: field 'text' is int, expected a string"):
        read(spec("b", "skypile", jsonl(tmp_path / "b.jsonl", [{"text": 5}])))
    arr = tmp_path / "wiki.json"
    arr.write_text('[\n {"completion": "a", "source": "s"},\n {"completion": "b" "source": "s"}\n]')
    with pytest.raises(SourceError, match=r"wiki\.json, line 3 column"):
        read(spec("c", "wikipedia_zh", arr))
    arr.write_text('[{"completion": "a"}, {"text": "b"}]')
    with pytest.raises(SourceError, match=r"record 2 of the JSON array: missing field 'completion'"):
        read(spec("c", "wikipedia_zh", arr))


def test_empty_file_and_empty_text_are_not_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert read(spec("e", "c4", empty)) == []
    f = jsonl(tmp_path / "ws.jsonl", [{"text": "   \n"}, {"text": None}, {"text": "real"}])
    reader = build_reader(spec("ws", "c4", f))
    docs = list(reader.run())
    assert [d.text for d in docs] == ["   \n", "", "real"]  # kept: the filters drop and count them
    assert reader.stats["empty_text"].total == 2


def test_unreadable_and_corrupt_files(tmp_path):
    gz = tmp_path / "c4.json.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(json.dumps({"text": "x" * 5000}) + "\n" + json.dumps({"text": "y" * 5000}) + "\n")
    gz.write_bytes(gz.read_bytes()[:-30])  # truncated stream
    with pytest.raises(SourceError, match=r"cannot read .*c4\.json\.gz"):
        read(spec("c4", "c4", gz))
    bad = tmp_path / "notes.txt"
    bad.write_bytes("Headline\n\nbody caf\xe9".encode("latin-1"))
    with pytest.raises(SourceError, match=r"notes\.txt, line 3: not UTF-8"):
        read(spec("n", "news_folder", bad))
    pq_bad = tmp_path / "z.parquet"
    pq_bad.write_bytes(b"not parquet at all")
    with pytest.raises(SourceError, match=r"cannot read .*z\.parquet"):
        read(spec("z", "zhihu", pq_bad))


def test_csv_strictness(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text('text,score\n"a ""quoted"" text\nover two lines",3\nsecond,4,extra\n')
    with pytest.raises(SourceError, match=r"x\.csv, row 2 \(line 4\): 3 fields, the header has 2"):
        read(spec("x", "fineweb", f))
    f.write_text("body,score\nhello,3\n")
    with pytest.raises(SourceError, match=r"row 1 .*missing field 'text' \(fields found: \['body', 'score'\]\)"):
        read(spec("x", "fineweb", f))
    f.write_text("text,score\n" + '"' + "w " * 100_000 + '",2\n')  # over csv's default 128 KiB field limit
    assert len(read(spec("x", "fineweb", f))[0].text) == 200_000


def test_parquet_missing_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"INSTRUCTION": "q", "ANSWER": "a"}]), tmp_path / "z.parquet")
    with pytest.raises(SourceError, match=r"z\.parquet, row 1: missing field 'RESPONSE' .*'ANSWER', 'INSTRUCTION'"):
        read(spec("z", "zhihu", tmp_path))


def test_unknown_kind(tmp_path):
    f = jsonl(tmp_path / "a.jsonl", [{"text": "x"}])
    bogus = SourceSpec.model_construct(name="a", kind="tiktok", paths=[str(f)], weight=1, limit=-1, format=None)
    with pytest.raises(SourceError, match="unknown kind 'tiktok'"):
        build_reader(bogus)


# ------------------------------------------------------------------------------------------------ file listing


def test_list_input_files(tmp_path, monkeypatch):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ["d/b.jsonl", "d/a.json.gz", "d/sub/c.jsonl", "d/README.md", "d/.hidden.jsonl", "d/_SUCCESS"]:
        (tmp_path / name).write_bytes(b"")
    s = spec("s", "c4", tmp_path / "d")
    assert list_input_files(s) == [str(tmp_path / p) for p in ["d/a.json.gz", "d/b.jsonl", "d/sub/c.jsonl"]]
    assert count_input_files(s) == 3
    monkeypatch.setenv("SHARDSMITH_TEST_ROOT", str(tmp_path))
    g = spec("s", "c4", "${SHARDSMITH_TEST_ROOT}/d/**/*.jsonl", "$SHARDSMITH_TEST_ROOT/d/b.jsonl")
    assert list_input_files(g) == [str(tmp_path / "d/b.jsonl"), str(tmp_path / "d/sub/c.jsonl")]

    for pattern in [tmp_path / "nothing" / "*.jsonl", tmp_path / "missing.jsonl"]:
        with pytest.raises(FileNotFoundError, match=str(pattern).replace("*", r"\*")):
            list_input_files(spec("s", "c4", pattern))
    with pytest.raises(SourceFileNotFoundError, match=r"folder .* matches no input files \(looked for \.txt"):
        list_input_files(spec("s", "news_folder", tmp_path / "d"))
    broken = tmp_path / "broken.jsonl"
    broken.symlink_to(tmp_path / "does-not-exist.jsonl")
    with pytest.raises(FileNotFoundError, match="broken.jsonl"):
        list_input_files(spec("s", "c4", broken))
    with pytest.raises(FileNotFoundError, match="not set"):
        list_input_files(spec("s", "c4", "${SHARDSMITH_UNSET_VAR_XYZ}/a.jsonl"))
    assert list_input_files(SourceSpec(name="h", kind="hf_hub", dataset="x/y", weight=1)) == []


# ------------------------------------------------------------------------------------------------ sharding, limit, ids


def _c4_files(tmp_path: Path, n_files: int = 5, per_file: int = 4) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        rows = [{"text": f"doc {i}.{j}", "url": f"u{i}.{j}"} for j in range(per_file)]
        jsonl(tmp_path / f"part-{i:02d}.jsonl", rows)
    return tmp_path


def test_rank_sharding_splits_files(tmp_path):
    s = spec("c4", "c4", _c4_files(tmp_path))
    all_ids = {d.id for d in build_reader(s).run()}
    assert len(all_ids) == 20
    for world in (2, 3, 7):
        shards = [[d.id for d in build_reader(s).run(None, rank, world)] for rank in range(world)]
        assert sorted(sum(shards, [])) == sorted(all_ids)  # disjoint and complete
        for rank, ids in enumerate(shards):  # files[rank::world], as datatrove's own get_shard
            assert {i.split("/")[1] for i in ids} == {f"part-{k:02d}.jsonl" for k in range(rank, 5, world)}


def test_limit(tmp_path):
    s = spec("c4", "c4", _c4_files(tmp_path))
    assert len(list(build_reader(s, limit=7).run())) == 7
    capped = spec("c4", "c4", tmp_path, limit=5)
    assert len(list(build_reader(capped).run())) == 5
    assert len(list(build_reader(capped, limit=3).run())) == 3
    assert len(list(build_reader(capped, limit=50).run())) == 5  # the recipe's cap still holds
    # datatrove's limit is per task
    assert sum(len(list(build_reader(s, limit=3).run(None, r, 2))) for r in range(2)) == 6


def test_ids_stable_across_runs_and_new_files(tmp_path):
    s = spec("c4", "c4", _c4_files(tmp_path))
    first = [d.id for d in build_reader(s).run()]
    assert first == [d.id for d in build_reader(s).run()]
    (tmp_path / "zz").mkdir()
    jsonl(tmp_path / "zz" / "new.jsonl", [{"text": "late"}])
    again = [d.id for d in build_reader(s).run()]
    assert again[: len(first)] == first and again[-1] == "c4/zz/new.jsonl/0"


def test_runs_under_datatrove_executor(tmp_path):
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.writers import JsonlWriter

    s = spec("c4", "c4", _c4_files(tmp_path / "in"))
    out, logs = tmp_path / "out", tmp_path / "logs"
    LocalPipelineExecutor([build_reader(s), JsonlWriter(str(out))], tasks=2, workers=1,
                          logging_dir=str(logs)).run()
    written = [json.loads(line) for f in sorted(out.glob("*.jsonl.gz")) for line in gzip.open(f, "rt")]
    assert len(written) == 20 and all(r["metadata"]["source"] == "c4" for r in written)
    stats = json.loads((logs / "stats.json").read_text())
    assert stats[0]["stats"]["documents"]["total"] == 20


# ------------------------------------------------------------------------------------------------ hf_hub


def test_hf_hub_constructs_and_fails_clearly_offline(monkeypatch):
    import datasets.config
    import huggingface_hub.constants

    s = SourceSpec(name="c4hub", kind="hf_hub", dataset="allenai/c4", config="en", split="validation",
                   text_field="text", weight=1)
    reader = build_reader(s, limit=10)
    assert reader.dataset == "allenai/c4" and reader.streaming and reader.limit == 10
    assert reader.dataset_options == {"split": "validation", "name": "en"}
    assert count_input_files(s) == 1
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SourceError, match=r"source 'c4hub': cannot stream Hugging Face dataset 'allenai/c4'"):
        next(iter(reader.run()))


def test_schema_source_kinds_are_the_registry_rows():
    """Adding a kind is one row in pipelines/source_kinds.py plus its name in the schema's `SourceKind` Literal."""
    import typing

    from shardsmith.pipelines.source_kinds import SOURCE_KINDS
    from shardsmith.schemas.mix_recipe import SourceKind

    assert list(typing.get_args(SourceKind)) == list(SOURCE_KINDS)
