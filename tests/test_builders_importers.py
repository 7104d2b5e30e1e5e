"""Importers on every real sample shape, Infinity-Instruct on rows in its documented shape, and bad input:
mixed shapes / unknown shapes / non-UTF-8 give clear errors; bad records are counted drops with a reason."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest
from conftest import need_data
from test_builders_helpers import build_recipe, load_manifest, write_jsonl

from shardsmith.builders.importers import ImportShapeError, detect_shape, import_file
from shardsmith.recipes import RecipeError
from shardsmith.schemas.records import Conversation, Drop

REAL = [  # dataset, file, shape, records, assistant turns
    ("sft_zh_belle", "train_2M_CN_sample.json", "alpaca", 1000, 1000),
    ("sft_zh_belle", "train_3.5M_CN_sample.json", "sharegpt", 1000, 1460),
    ("sft_zh_firefly", "firefly-train-1.1M_sample.jsonl", "firefly", 1000, 1000),
    ("sft_alpaca_zh_demo", "alpaca_zh_demo.json", "alpaca", 1000, 1000),
    ("sft_zh_better_ruozhiba", "ruozhiba_qa.json", "alpaca", 1475, 1475),
    ("sft_alpaca_en_demo", "alpaca_en_demo.json", "alpaca", 999, 999),
    ("sft_oasst1_en_pairs", "oasst1_en_instruction_response_pairs.json", "alpaca", 2447, 2447),
    ("sft_alpaca_original_fixture", "alpaca.json", "alpaca", 23, 23),
    ("sft_alpaca_original_fixture", "dolly.json", "dolly", 12, 12),
    ("sft_alpaca_original_fixture", "seed_tasks.jsonl", "seed_tasks", 175, None),
    ("sft_rasbt_ch07", "instruction-data.json", "alpaca", 1100, 1100),
    ("sft_self_cognition_emollm", "self_cognition_EmoLLM.json", "alpaca", 85, 85),
    ("sft_sharegpt_fastchat_dummy", "dummy_conversation.json", "sharegpt", 500, 1000),
]


@pytest.mark.parametrize("ds,fname,shape,n,n_assistant", REAL)
def test_real_shapes(ds, fname, shape, n, n_assistant):
    root = need_data(ds)
    path = root / ds / fname
    items = list(import_file(path, source=ds))
    convs = [c for c in items if isinstance(c, Conversation)]
    assert not [d for d in items if isinstance(d, Drop)]
    if shape != "seed_tasks":
        assert len(convs) == n
        assert sum(c.n_assistant for c in convs) == n_assistant
    else:
        assert len(convs) >= n
    for c in convs[:50]:
        roles = [m.role for m in c.messages]
        assert roles[0] == "user" and roles[-1] == "assistant"
        assert all(m.content == m.content.strip() for m in c.messages)


def test_real_field_mapping():
    root = need_data("sft_zh_firefly", "sft_alpaca_original_fixture", "sft_zh_belle")
    c = next(import_file(root / "sft_zh_firefly/firefly-train-1.1M_sample.jsonl", source="f"))
    assert c.metadata["kind"] == "NLI" and c.messages[0].content.startswith("自然语言推理") and c.messages[1].content == "中立"
    d = next(import_file(root / "sft_alpaca_original_fixture/dolly.json", source="d"))
    assert d.messages[0].content.startswith("When did Virgin Australia start operating?\n\nVirgin Australia")
    b = next(import_file(root / "sft_zh_belle/train_3.5M_CN_sample.json", source="b"))
    assert [m.role for m in b.messages][:2] == ["user", "assistant"] and b.id


def test_alpaca_input_join_and_history(tmp_path):
    p = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Translate", "input": "hello", "output": "你好",
                                              "history": [["q0", "a0"]], "system": "S"}])
    c = next(import_file(p, source="a", options={"input_join": "\n\n"}))
    assert [(m.role, m.content) for m in c.messages] == [("system", "S"), ("user", "q0"), ("assistant", "a0"),
                                                         ("user", "Translate\n\nhello"), ("assistant", "你好")]


def test_infinity_instruct_documented_shape(tmp_path):
    rows = [
        {"id": "1", "conversations": [{"from": "human", "value": "什么是机器学习？"}, {"from": "gpt", "value": "机器学习是人工智能的一个分支。"}],
         "label": {"ability_en": ["knowledge"], "ability_zh": ["知识"]}, "langdetect": "zh-cn", "source": "Subjective"},
        {"id": "2", "conversations": [{"from": "human", "value": "What is machine learning?"}, {"from": "gpt", "value": "A branch of AI."}],
         "label": {"ability_en": ["knowledge"]}, "langdetect": "en", "source": "Subjective"},
        {"id": "3", "conversations": [{"from": "human", "value": "What does 你好 mean in English?"}, {"from": "gpt", "value": "It means hello."}],
         "label": {}, "langdetect": "zh-cn", "source": "x"},
        {"id": "4", "conversations": [{"from": "human", "value": "請介紹台北。"}, {"from": "gpt", "value": "台北是台灣的首都。"}],
         "label": {}, "langdetect": "zh-tw", "source": "x"},
    ]
    p = write_jsonl(tmp_path / "inf.jsonl", rows)
    convs = list(import_file(p, source="inf"))
    assert detect_shape(rows[0]) == "infinity"
    assert [c.label_lang for c in convs] == ["zh-cn", "en", "zh-cn", "zh-tw"]
    assert convs[0].metadata["label"]["ability_zh"] == ["知识"] and convs[0].id == "1"
    # Steel: keep langdetect == zh-cn by the label; the report counts label vs fastText disagreements
    out = build_recipe(tmp_path, {
        "kind": "sft", "name": "inf", "tokenizer": {"name": "gpt2"}, "template": "qwen", "validation": {"fraction": 0},
        "filters": {"language": {"keep": ["zh"], "by": "label", "label_values": ["zh-cn"]}},
        "sources": [{"name": "inf", "paths": ["inf.jsonl"], "language": "zh"}]})
    m = load_manifest(out)
    assert m["counts"]["inf"] == {"read": 4, "kept": 2, "dropped": {"language:en": 1, "language_label:zh-tw": 1}}
    agree = m["language_report"]["label_vs_fasttext"]
    assert agree["agree"] + agree.get("disagree", 0) == 4 and agree.get("disagree", 0) >= 1  # row 3 is English text
    assert any(e["id"] == "3" for e in agree["examples"])


def test_mixed_shapes_in_one_file_is_an_error(tmp_path):
    p = write_jsonl(tmp_path / "mixed.jsonl", [{"instruction": "a", "output": "b"},
                                                {"conversations": [{"from": "human", "value": "x"}], "id": 7}])
    with pytest.raises(ImportShapeError) as e:
        list(import_file(p, source="m"))
    msg = str(e.value)
    assert "mixed.jsonl" in msg and "record 1" in msg and "conversations, id" in msg and "alpaca" in msg


def test_unknown_shape_names_file_record_fields(tmp_path):
    p = write_jsonl(tmp_path / "u.jsonl", [{"foo": 1, "bar": "x"}])
    with pytest.raises(ImportShapeError, match=r"u\.jsonl: record 0: unknown SFT shape; fields found: bar, foo"):
        list(import_file(p, source="u"))


def test_non_utf8(tmp_path):
    good = json.dumps({"instruction": "你好", "output": "你好！"}, ensure_ascii=False).encode()
    (tmp_path / "bad.jsonl").write_bytes(good + b"\n" + "{\"instruction\": \"caf\xe9\", \"output\": \"x\"}".encode("latin-1") + b"\n" + good + b"\n")
    items = list(import_file(tmp_path / "bad.jsonl", source="b"))
    drops = [d for d in items if isinstance(d, Drop)]
    assert len(items) == 3 and len(drops) == 1 and drops[0].reason == "invalid_utf8" and "line 2" in drops[0].detail
    (tmp_path / "bad.json").write_bytes(b"[" + "{\"instruction\": \"caf\xe9\", \"output\": \"x\"}".encode("latin-1") + b"]")
    with pytest.raises(ImportShapeError, match=r"bad\.json: not UTF-8"):
        list(import_file(tmp_path / "bad.json", source="b"))


def test_bad_records_are_counted_drops(tmp_path):
    rows = [
        {"conversations": [{"from": "human", "value": "Hello there"}, {"from": "gpt", "value": "Hi! How can I help?"}]},
        {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}, {"from": "human", "value": "and?"}]},
        {"conversations": [{"from": "human", "value": "Q2"}, {"from": "gpt", "value": "   "}]},
        {"conversations": [{"from": "human", "value": "Q3"}, {"from": "function_call", "value": "{}"}]},
        {"conversations": [{"from": "gpt", "value": "I start"}, {"from": "human", "value": "ok"}, {"from": "gpt", "value": "fine"}]},
        {"conversations": [{"from": "human", "value": "code?"}, {"from": "gpt", "value": "```python\nprint(1)\n"}]},
        {"conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}, {"from": "gpt", "value": "c"}]},
    ]
    write_jsonl(tmp_path / "s.jsonl", rows)
    with gzip.open(tmp_path / "s2.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write('{"instruction": "x", "output": "y"}\n{not json}\n')
    out = build_recipe(tmp_path, {"kind": "sft", "name": "bad", "tokenizer": {"name": "gpt2"}, "template": "chatml",
                                  "validation": {"fraction": 0}, "filters": {"dedup": None},
                                  "sources": [{"name": "s", "paths": ["s.jsonl"]}, {"name": "s2", "paths": ["s2.jsonl.gz"]}]})
    m = load_manifest(out)
    assert m["counts"]["s"] == {"read": 7, "kept": 1, "dropped": {
        "bad_turn_order": 1, "empty_turn": 1, "ends_with_user": 1, "starts_with_assistant": 1, "truncated": 1,
        "unsupported_role": 1}}
    assert m["counts"]["s2"] == {"read": 2, "kept": 1, "dropped": {"invalid_json": 1}}
    rejected = [json.loads(x) for x in gzip.open(out / "rejected" / "s.jsonl.gz", "rt", encoding="utf-8")]
    assert Counter(r["reason"] for r in rejected) == Counter(m["counts"]["s"]["dropped"])
    assert all(r.get("detail") for r in rejected)


def test_recipe_errors_name_file_and_field(tmp_path):
    (tmp_path / "r.yaml").write_text("kind: sft\nname: x\nsources:\n  - {name: a, paths: [a.json], shapee: alpaca}\n")
    from shardsmith.builders.build import build

    with pytest.raises(RecipeError, match=r"(?s)r\.yaml.*sources\.0\.shapee"):
        build(str(tmp_path / "r.yaml"), str(tmp_path / "o"))
    (tmp_path / "k.yaml").write_text("kind: quiz\nname: x\n")
    with pytest.raises(RecipeError, match=r"k\.yaml: field 'kind': unknown block kind 'quiz'"):
        build(str(tmp_path / "k.yaml"), str(tmp_path / "o"))
    (tmp_path / "m.yaml").write_text("kind: mcq\nname: x\nsources: [{name: a, paths: [a.csv]}]\n")
    with pytest.raises(RecipeError, match=r"(?s)m\.yaml.*field 'style': Field required"):  # each kind its own model
        build(str(tmp_path / "m.yaml"), str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_lazy_json_lines_load_to_what_eager_reading_yields(tmp_path):
    """A source read in a visit order keeps its JSON lines unparsed until visited (``iter_raw(lazy=True)``); loaded,
    each is what eager reading yields: the record, or the same invalid_json / invalid_utf8 drop naming its line."""
    from shardsmith.builders.importers import RawLine, _RecordDrop, iter_raw

    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"instruction": "x", "output": "y"}\n\n{not json}\n{"a": [1, 2.5, null]}\n\xff\xfe bad\n'
                     b'{"instruction": "z", "output": "\\u00e9"}')
    eager = list(iter_raw(path))
    lazy = list(iter_raw(path, lazy=True))
    assert [i for i, _ in eager] == [i for i, _ in lazy] == [0, 2, 3, 4, 5]
    assert sum(isinstance(r, RawLine) for _, r in lazy) == 4  # the non-UTF-8 line is a drop at once

    def plain(r):
        r = r.load() if isinstance(r, RawLine) else r
        return (type(r).__name__, r.reason, str(r)) if isinstance(r, _RecordDrop) else r

    assert [plain(r) for _, r in lazy] == [plain(r) for _, r in eager]
    assert plain(eager[1][1])[:2] == ("_RecordDrop", "invalid_json")
