"""The structure filter's `leading_assistant: drop | trim` on ShareGPT fragments: real FastChat conversations cut the
way scraped ShareGPT dumps are (the opening user turn lost), and synthetic rows for the system-prompt and
nothing-left cases."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import need_data
from test_builders_helpers import build_recipe, load_manifest, write_jsonl

from shardsmith.builders.filters import check_structure
from shardsmith.builders.writer import inspect_documents
from shardsmith.recipes import RecipeError
from shardsmith.schemas.block_recipe import StructureFilter
from shardsmith.schemas.records import Conversation, Message


def _recipe(path: str, leading_assistant: str | None) -> dict:
    structure = {} if leading_assistant is None else {"leading_assistant": leading_assistant}
    return {"kind": "sft", "name": "frag", "tokenizer": {"name": "gpt2"}, "template": "chatml",
            "validation": {"fraction": 0}, "filters": {"dedup": None, "structure": structure},
            "sources": [{"name": "sharegpt", "paths": [path], "shape": "sharegpt"}]}


def _documents(out) -> Counter:
    return Counter(d["text"] for d in inspect_documents(out))


@pytest.fixture(scope="module")
def fastchat(tmp_path_factory):
    """FastChat's 500 real conversations, and the same 500 with the opening user turn cut off (fragments)."""
    root = need_data("sft_sharegpt_fastchat_dummy")
    rows = json.loads((root / "sft_sharegpt_fastchat_dummy" / "dummy_conversation.json").read_text())
    tmp = tmp_path_factory.mktemp("fastchat")
    fragments = [{"id": f"{r['id']}-frag", "conversations": r["conversations"][1:]} for r in rows]
    write_jsonl(tmp / "data" / "mixed.jsonl", rows + fragments)
    return tmp, rows


def test_real_sharegpt_fragments_are_dropped_by_default(fastchat):
    tmp, rows = fastchat
    out = build_recipe(tmp, _recipe("data/mixed.jsonl", None), name="default.yaml")
    counts = load_manifest(out)["counts"]["sharegpt"]
    assert counts == {"read": 2 * len(rows), "kept": len(rows), "dropped": {"starts_with_assistant": len(rows)}}


def test_real_sharegpt_fragments_trimmed_like_fastchat(fastchat):
    """trim == FastChat's rule: the fragment minus its leading reply, built from that reference input directly."""
    tmp, rows = fastchat
    out = build_recipe(tmp, _recipe("data/mixed.jsonl", "trim"), name="trim.yaml")
    counts = load_manifest(out)["counts"]["sharegpt"]
    rest = [r["conversations"][2:] for r in rows if len(r["conversations"]) > 2]
    nothing_left = len(rows) - len(rest)  # a one-reply fragment: no assistant turn is left after the trim
    assert len(rest) == 333 and nothing_left == 167  # the sample's 2-, 4- and 6-turn conversations
    assert counts == {"read": 2 * len(rows), "kept": len(rows) + len(rest), "dropped": {"no_assistant": nothing_left},
                      "trimmed": {"leading_assistant": len(rest)}}
    write_jsonl(tmp / "data" / "reference.jsonl",
                rows + [{"id": f"ref{i}", "conversations": c} for i, c in enumerate(rest)])
    reference = build_recipe(tmp, _recipe("data/reference.jsonl", None), name="reference.yaml")
    assert load_manifest(reference)["counts"]["sharegpt"]["dropped"] == {}
    assert _documents(out) == _documents(reference)


def _conv(*turns: tuple[str, str]) -> Conversation:
    return Conversation(messages=[Message(role=r, content=c) for r, c in turns], source="s", id="x")


TRIM = StructureFilter(leading_assistant="trim")


def test_trim_keeps_the_system_prompt_and_removes_every_leading_reply():
    conv = _conv(("system", "Be brief."), ("assistant", "…and that is all."), ("assistant", "Anything else?"),
                 ("user", "Name a primary color."), ("assistant", "Red."))
    checked = check_structure(conv, TRIM)
    assert [(m.role, m.content) for m in checked.conv.messages] == [
        ("system", "Be brief."), ("user", "Name a primary color."), ("assistant", "Red.")]
    assert checked.trimmed == ("leading_assistant",) and checked.reason is None
    dropped = check_structure(conv, StructureFilter())
    assert (dropped.conv, dropped.reason) == (None, "starts_with_assistant")


def test_trim_that_leaves_no_reply_is_a_drop_with_a_reason():
    checked = check_structure(_conv(("assistant", "Sure."), ("user", "Thanks!")), TRIM)
    assert checked.conv is None and checked.reason == "no_assistant"
    assert "after trimming 1 leading assistant turn" in checked.detail
    checked = check_structure(_conv(("assistant", "Sure."), ("user", "And 2+2?"), ("assistant", "4"),
                                    ("user", "Thanks!")), StructureFilter(leading_assistant="trim"))
    assert checked.reason == "ends_with_user" and "after trimming" in checked.detail
    both = check_structure(_conv(("assistant", "Sure."), ("user", "And 2+2?"), ("assistant", "4"),
                                 ("user", "Thanks!")), StructureFilter(leading_assistant="trim",
                                                                       drop_ends_with_user=False))
    assert [m.content for m in both.conv.messages] == ["And 2+2?", "4"]
    assert both.trimmed == ("leading_assistant", "trailing_user")


def test_trim_per_source_and_counted_in_the_manifest(tmp_path):
    rows = [
        {"conversations": [{"from": "gpt", "value": "…so that is the plan."}, {"from": "human", "value": "Why?"},
                           {"from": "gpt", "value": "Because it is cheaper."}]},
        {"conversations": [{"from": "system", "value": "You are terse."}, {"from": "gpt", "value": "Hi."},
                           {"from": "human", "value": "Capital of France?"}, {"from": "gpt", "value": "Paris."}]},
        {"conversations": [{"from": "gpt", "value": "Only a reply."}]},
        {"conversations": [{"from": "human", "value": "Hello"}, {"from": "gpt", "value": "Hi there."}]},
    ]
    write_jsonl(tmp_path / "a.jsonl", rows)
    write_jsonl(tmp_path / "b.jsonl", rows)
    recipe = {"kind": "sft", "name": "lead", "tokenizer": {"name": "gpt2"}, "template": "chatml",
              "validation": {"fraction": 0}, "filters": {"dedup": None},
              "sources": [{"name": "a", "paths": ["a.jsonl"]},
                          {"name": "b", "paths": ["b.jsonl"], "filters": {"structure": {"leading_assistant": "trim"}}}]}
    m = load_manifest(build_recipe(tmp_path, recipe))
    assert m["counts"]["a"] == {"read": 4, "kept": 1, "dropped": {"starts_with_assistant": 3}}
    assert m["counts"]["b"] == {"read": 4, "kept": 3, "dropped": {"no_assistant": 1},
                                "trimmed": {"leading_assistant": 2}}
    texts = [d["text"] for d in inspect_documents(tmp_path / "recipe_out")]
    system_doc = next(t for t in texts if "You are terse." in t)
    assert "Hi." not in system_doc and system_doc.index("You are terse.") < system_doc.index("Capital of France?")


def test_bad_leading_assistant_value_names_the_field(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"instruction": "x", "output": "y"}])
    recipe = _recipe("a.jsonl", "keep")
    with pytest.raises(RecipeError, match=r"(?s)recipe\.yaml.*field 'filters\.structure\.leading_assistant': "
                                          r"Input should be 'drop' or 'trim'"):
        build_recipe(tmp_path, recipe)
