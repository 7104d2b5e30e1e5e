"""Block-recipe fields, one setting against the other: each test shows what a field changes.

The filters, templates, importers and self-cognition are called directly on small in-memory conversations; the fields
only ``build_sft`` reads (token length, sampling, split, dedup scope, rejected files, file size) share one pair of
small builds; the mix's file size cap and recorded-only source fields one pair of small mixes. The language tests
run the real fastText model (lid.176) that the builders use.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import yaml
from test_builders_helpers import build_recipe, load_manifest, write_jsonl

from shardsmith.builders import importers, self_cognition
from shardsmith.builders.dedup import Deduper, normalize_text
from shardsmith.builders.filters import LanguageJudge, check_chars, check_structure
from shardsmith.builders.pairs import PAIR_SHAPESET
from shardsmith.builders.block import Item, source_filters
from shardsmith.builders.block_steps import pair_check
from shardsmith.builders.templates import render
from shardsmith.pipelines.lid import detect_language
from shardsmith.pipelines.shards import split_files
from shardsmith.schemas.block_recipe import (
    DedupFilter,
    Filters,
    LanguageFilter,
    LengthFilter,
    PairFilter,
    SelfCognition,
    SftBlockRecipe,
    SftSource,
    StructureFilter,
    TemplateDef,
)
from shardsmith.schemas.manifest import ShardManifest
from shardsmith.schemas.records import Conversation, Message


def conv(*turns: tuple[str, str], label: str | None = None, cid: str = "x") -> Conversation:
    return Conversation(messages=[Message(role=r, content=c) for r, c in turns], source="s", id=cid, label_lang=label)


def qa(question: str, answer: str, **kw) -> Conversation:
    return conv(("user", question), ("assistant", answer), **kw)


# ---------------------------------------------------------------------------------------------------------------
# templates

PLAIN = {"name": "plain", "user": "U: {content}", "assistant": "A: {content}"}
NO_SYSTEM_SLOT = qa("Hi", "Hello").model_copy(
    update={"messages": [Message(role="system", content="Be brief.")] + qa("Hi", "Hello").messages})


def test_template_prefix_and_separator_are_no_loss_text_around_the_messages():
    plain = render(qa("Hi", "Hello"), TemplateDef(**PLAIN))
    dressed = render(qa("Hi", "Hello"), TemplateDef(**PLAIN, prefix="<doc>", separator=" | "))
    assert (plain.text, dressed.text) == ("U: HiA: Hello", "<doc>U: Hi | A: Hello")
    assert dressed.loss == [(len("<doc>U: Hi | A: "), len(dressed.text))]  # prefix + separator carry no loss


def test_template_default_system_fills_a_missing_system_message():
    with_slot = {**PLAIN, "system": "S: {content}\n"}
    assert render(qa("Hi", "Hello"), TemplateDef(**with_slot)).text == "U: HiA: Hello"
    assert render(qa("Hi", "Hello"), TemplateDef(**with_slot, default_system="Be kind.")).text == \
        "S: Be kind.\nU: HiA: Hello"
    own = qa("Hi", "Hello").model_copy(update={"messages": [Message(role="system", content="Mine.")]
                                               + qa("Hi", "Hello").messages})
    assert render(own, TemplateDef(**with_slot, default_system="Be kind.")).text == "S: Mine.\nU: HiA: Hello"


def test_template_system_fallback_and_join_without_a_system_slot():
    from shardsmith.builders.templates import RenderError

    prepend = render(NO_SYSTEM_SLOT, TemplateDef(**PLAIN))
    joined = render(NO_SYSTEM_SLOT, TemplateDef(**PLAIN, system_join=" // "))
    dropped = render(NO_SYSTEM_SLOT, TemplateDef(**PLAIN, system_fallback="drop"))
    assert prepend.text == "U: Be brief.\n\nHiA: Hello"  # default prepend_user, default join "\n\n"
    assert joined.text == "U: Be brief. // HiA: Hello"
    assert dropped.text == "U: HiA: Hello"
    try:
        render(NO_SYSTEM_SLOT, TemplateDef(**PLAIN, system_fallback="error"))
    except RenderError as err:
        assert err.reason == "system_unsupported"
    else:
        raise AssertionError("system_fallback: error rendered a system message the template cannot hold")


# ---------------------------------------------------------------------------------------------------------------
# structure


def reason(c: Conversation, **spec) -> str | None:
    return check_structure(c, StructureFilter(**spec)).reason


def test_drop_ends_with_user_false_trims_the_trailing_user_turn():
    c = conv(("user", "Hi"), ("assistant", "Hello"), ("user", "And?"))
    assert reason(c) == "ends_with_user"
    kept = check_structure(c, StructureFilter(drop_ends_with_user=False))
    assert [m.content for m in kept.conv.messages] == ["Hi", "Hello"] and kept.trimmed == ("trailing_user",)


def test_drop_truncated_drops_an_unclosed_code_fence():
    c = qa("Code?", "```python\nprint(1)")
    assert reason(c) == "truncated"
    assert reason(c, drop_truncated=False) is None
    assert reason(qa("Code?", "```python\nprint(1)\n```")) is None


def test_require_alternation_drops_two_user_turns_in_a_row():
    c = conv(("user", "Hi"), ("user", "Are you there?"), ("assistant", "Yes"))
    assert reason(c) == "bad_turn_order"
    assert reason(c, require_alternation=False) is None


# ---------------------------------------------------------------------------------------------------------------
# length (characters)


def chars(c: Conversation, **spec) -> str | None:
    return check_chars(c, LengthFilter(**spec))[0]


def test_character_limits_per_role_and_in_total():
    c = qa("12345", "1234567890")
    assert chars(c) is None
    assert (chars(c, max_chars_user=4), chars(c, max_chars_user=5)) == ("too_long_chars", None)
    assert (chars(c, max_chars_assistant=9), chars(c, max_chars_assistant=10)) == ("too_long_chars", None)
    assert (chars(c, max_chars_total=14), chars(c, max_chars_total=15)) == ("too_long_chars", None)
    assert (chars(c, min_chars_assistant=11), chars(c, min_chars_assistant=10)) == ("empty_turn", None)


def test_source_length_override_replaces_the_block_length_filter():
    block = Filters(length=LengthFilter(max_chars_user=100))
    strict = SftSource(name="strict", paths=["x"], filters={"length": {"max_chars_user": 3}})
    plain = SftSource(name="plain", paths=["x"])
    c = qa("12345", "ok")
    assert chars(c, **source_filters(block, plain)[2].model_dump()) is None
    assert chars(c, **source_filters(block, strict)[2].model_dump()) == "too_long_chars"


# ---------------------------------------------------------------------------------------------------------------
# language (the real fastText model)

ENGLISH = "Hello there, how are you doing today?"
CODE = "x = 1; y = 2"  # fastText: en, below 0.6
POEM = "床前明月光，疑是地上霜"  # classical Chinese: fastText says 'it' with low confidence


def judge(c: Conversation, **spec):
    return LanguageJudge(LanguageFilter(**spec)).judge([c])[0]


def test_min_confidence_turns_an_unsure_detection_into_unknown():
    (lang, score), = detect_language([ENGLISH])
    assert lang == "en"
    c = qa(ENGLISH, ENGLISH)
    assert judge(c, keep=["en"], min_confidence=score - 0.01).keep
    unsure = judge(c, keep=["en"], min_confidence=score + 0.01)
    assert (unsure.keep, unsure.reason) == (False, "language:unknown")


def test_script_fallback_counts_low_confidence_han_text_as_chinese():
    (lang, score), = detect_language([POEM])
    assert lang != "zh" and score < 0.5  # fastText alone would not keep it
    c = qa(POEM, POEM)
    assert judge(c, keep=["zh"]).keep  # default script_fallback 0.5
    off = judge(c, keep=["zh"], script_fallback=None)
    assert (off.keep, off.reason) == (False, "language:unknown")


def test_ignore_unknown_takes_unsure_turns_out_of_the_share():
    (_, code_score), (_, english_score) = detect_language([CODE, ENGLISH])
    threshold = (code_score + english_score) / 2  # the code turn is unknown, the English one is not
    c = qa(ENGLISH, CODE)
    spec = {"keep": ["en"], "min_confidence": threshold, "min_share": 0.9}
    assert judge(c, **spec).share == 1.0 and judge(c, **spec).keep
    counted = judge(c, **spec, ignore_unknown=False)
    assert counted.share == len(ENGLISH) / (len(ENGLISH) + len(CODE)) and not counted.keep


def test_min_turn_chars_leaves_short_turns_unjudged_under_every_turn():
    assert detect_language(["Danke"])[0][0] == "de"
    c = conv(("user", ENGLISH), ("assistant", "Danke"))
    spec = {"keep": ["en"], "rule": "every_turn", "min_confidence": 0.0}
    assert judge(c, **spec).reason == "language:de"
    assert judge(c, **spec, min_turn_chars=6).keep


def test_report_agreement_false_skips_fasttext_under_by_label():
    c = qa(ENGLISH, ENGLISH, label="zh-cn")
    reported = judge(c, keep=["zh"], by="label")
    silent = judge(c, keep=["zh"], by="label", report_agreement=False)
    assert reported.keep and silent.keep  # the label decides either way
    assert (reported.fasttext_lang, silent.fasttext_lang) == ("en", None)
    assert reported.turns and not silent.turns


# ---------------------------------------------------------------------------------------------------------------
# dedup


def second_is_duplicate(first: Conversation, second: Conversation, **spec) -> tuple[str, str] | None:
    dd = Deduper(DedupFilter(**spec), seed=42)
    assert dd.check(first) is None
    return dd.check(second)


def test_shingle_length_decides_what_counts_as_near_duplicate():
    """Length-1 shingles are the character set: a reversed text shares it exactly, 5-character ones do not."""
    text = "abcdefghijklmnopqrstuvwxyz"
    a, b = qa("q", text, cid="a"), qa("q", text[::-1], cid="b")
    assert second_is_duplicate(a, b, exact=False, near=True, shingle=1)[0] == "near_duplicate"
    assert second_is_duplicate(a, b, exact=False, near=True, shingle=5) is None


def test_num_perm_sets_the_minhash_precision():
    """A pair whose true 5-shingle Jaccard (0.63) is below the 0.7 threshold: 16 permutations estimate it above,
    1024 follow the truth."""
    base = "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat near the door"
    other = "The quick brown fox jumps over the lazy dog while the cat sleeps on extra extra"
    shingles = [{t[i:i + 5] for i in range(len(t) - 4)} for t in (normalize_text("q " + base),
                                                                  normalize_text("q " + other))]
    assert len(shingles[0] & shingles[1]) / len(shingles[0] | shingles[1]) < 0.7
    a, b = qa("q", base, cid="a"), qa("q", other, cid="b")
    spec = {"exact": False, "near": True, "threshold": 0.7}
    assert second_is_duplicate(a, b, **spec, num_perm=16)[0] == "near_duplicate"
    assert second_is_duplicate(a, b, **spec, num_perm=1024) is None
    assert len(Deduper(DedupFilter(**spec, num_perm=16))._minhash(base).hashvalues) == 16


# ---------------------------------------------------------------------------------------------------------------
# importers, pairs, self-cognition


def imported(records: list[dict], **kw) -> list[Conversation]:
    return list(importers.import_records(enumerate(records), where="mem.jsonl", source="s", shape="alpaca", **kw))


def test_id_field_and_label_field_are_read_from_the_record():
    rows = [{"instruction": "Hi", "output": "Hello", "uid": "u-7", "lang": "en-us"}]
    default, = imported(rows)
    named, = imported(rows, id_field="uid", label_field="lang")
    assert (default.id, default.label_lang) == ("mem.jsonl:0", None)
    assert (named.id, named.label_lang) == ("u-7", "en-us")


def test_score_fields_name_where_min_score_gap_reads_the_scores():
    row = {"prompt": "2+2?", "chosen": "4", "rejected": "5", "rating_good": 9, "rating_bad": 2}
    pair, = importers.import_records(enumerate([row]), where="mem.jsonl", source="s", shapes=PAIR_SHAPESET)
    item = Item(pair.conversation("chosen"), rejected=pair.conversation("rejected"))
    assert pair_check(item, PairFilter(min_score_gap=1))[0] == "no_scores"
    assert pair_check(item, PairFilter(min_score_gap=1, score_fields=("rating_good", "rating_bad"))) is None
    assert pair_check(item, PairFilter(min_score_gap=8, score_fields=("rating_good", "rating_bad")))[0] == \
        "small_score_gap"


def test_self_cognition_roles_and_source_name():
    spec = SelfCognition(name="Zed", author="Lab", role_zh="编程助手", role_en="coding helper",
                         source_name="identity_rows")
    rows = self_cognition.generate(spec)
    replies = " ".join(c.messages[-1].content for c in rows)
    assert "编程助手" in replies and "coding helper" in replies
    default = " ".join(c.messages[-1].content for c in self_cognition.generate(SelfCognition(name="Zed", author="L")))
    assert "编程助手" not in default and "人工智能助手" in default and "AI assistant" in default
    assert {c.source for c in rows} == {"identity_rows"}


# ---------------------------------------------------------------------------------------------------------------
# fields only build_sft reads: two small builds (3 s), every option on in one and off (defaults) in the other

QA_TEMPLATE = {"name": "qa", "user": "Q: {content}\n", "assistant": "A: {content}\n"}
MID = ("Summarise the plot of a short story about a lighthouse keeper in two sentences.",
       "A keeper tends a remote light through a long winter storm. A ship he saves brings him his first letter.")


def _rows() -> tuple[list[dict], list[dict]]:
    """Three conversations both token-length sources read, and ten distinct ones for the sampled source."""
    shared = [{"instruction": "Hi", "output": "Hello"}, {"instruction": "Name a colour.", "output": "Red."},
              {"instruction": MID[0], "output": MID[1]}]
    many = [{"instruction": f"What is {i} plus {i}?", "output": f"{2 * i}."} for i in range(10)]
    return shared, many


def _block_recipe(options_on: bool, max_tokens: int) -> dict:
    """Sources: `content` and `rendered` read the same three rows (dedup scope decides whether the second copy
    survives), `sampled` ten more. With options on, `content`/`rendered` cap tokens at ``max_tokens``, counted on
    the content or on the rendered document."""
    def source(name: str, path: str, **extra) -> dict:
        return {"name": name, "paths": [path], "shape": "alpaca", "filters": {"language": "none"}, **extra}

    on = options_on
    cap = {"max_tokens": max_tokens}
    return {
        "kind": "sft", "name": "fields-on" if on else "fields-off", "tokenizer": {"name": "gpt2"},
        **({"description": "every build-time option set"} if on else {}),
        "template": {**QA_TEMPLATE, **({"description": "question / answer lines"} if on else {})},
        "validation": {"fraction": 0.01, **({"min_documents": 4} if on else {})},
        "filters": {"dedup": {"scope": "source" if on else "global"}},
        "sources": [
            source("content", "shared.jsonl", **({"filters": {"language": "none", "length": cap}} if on else {})),
            source("rendered", "shared.jsonl", **({"filters": {"language": "none", "length": {
                **cap, "count_tokens_of": "rendered"}}} if on else {})),
            source("sampled", "many.jsonl", **({"sample_rate": 0.5} if on else {})),
        ],
        **({} if on else {"write_rejected": False}),
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(manifest, folder) of the build with every option on, and of the one with the defaults; and the token cap."""
    from shardsmith.pipelines.tokenizers import resolve_tokenizer
    from shardsmith.schemas.common import TokenizerSpec

    tmp = tmp_path_factory.mktemp("fields")
    shared, many = _rows()
    write_jsonl(tmp / "shared.jsonl", shared)
    write_jsonl(tmp / "many.jsonl", many)
    tk = resolve_tokenizer(TokenizerSpec(name="gpt2")).load()
    cap = len(tk.encode("".join(MID), add_special_tokens=False).ids)  # MID's content fits exactly
    out = {}
    for on in (True, False):
        folder = build_recipe(tmp, _block_recipe(on, cap), name=f"{'on' if on else 'off'}.yaml")
        out[on] = (load_manifest(folder), folder)
    return out


def test_token_cap_counts_content_or_the_rendered_document(built):
    """max_tokens drops nothing the content fits; count_tokens_of: rendered adds the template text and the EOS,
    so MID, whose content is exactly the cap, is dropped there only."""
    on, off = built[True][0]["counts"], built[False][0]["counts"]
    assert on["content"] == {"read": 3, "kept": 3, "dropped": {}}
    assert on["rendered"] == {"read": 3, "kept": 2, "dropped": {"too_long_tokens": 1}}
    assert off["content"] == {"read": 3, "kept": 3, "dropped": {}}


def test_dedup_scope_source_keeps_the_same_rows_in_another_source(built):
    on, off = built[True][0]["counts"], built[False][0]["counts"]
    assert off["rendered"] == {"read": 3, "kept": 0, "dropped": {"duplicate": 3}}  # global: `content` had them
    assert "duplicate" not in on["rendered"]["dropped"]


def test_sample_rate_keeps_that_share_after_filtering(built):
    on, off = built[True][0]["counts"], built[False][0]["counts"]
    assert on["sampled"] == {"read": 10, "kept": 5, "dropped": {"sampled_out": 5}}
    assert off["sampled"] == {"read": 10, "kept": 10, "dropped": {}}


def test_min_documents_raises_a_rounded_down_validation_split(built):
    """fraction 0.01 of 10-15 conversations rounds to 0: the split holds min_documents (default 1)."""
    on, off = built[True][0], built[False][0]
    assert (on["splits"]["validation"]["documents"], off["splits"]["validation"]["documents"]) == (4, 1)


def test_write_rejected_writes_every_drop_with_its_record(built):
    on_dir, off_dir = built[True][1], built[False][1]
    with gzip.open(on_dir / "rejected" / "rendered.jsonl.gz", "rt") as f:
        drops = [json.loads(line) for line in f]
    assert [d["reason"] for d in drops] == ["too_long_tokens"] and drops[0]["record"]["messages"]
    assert not (off_dir / "rejected").exists()


def test_descriptions_are_recorded_in_the_manifest(built):
    on, off = built[True][0], built[False][0]
    assert (on["recipe"]["description"], off["recipe"].get("description")) == ("every build-time option set", None)
    assert (on["template"]["description"], off["template"]["description"]) == ("question / answer lines", None)


# ---------------------------------------------------------------------------------------------------------------
# mix recipe: the merged file size cap, and the fields recorded only


def _mix(folder: Path, docs: Path, capped: bool) -> tuple[ShardManifest, Path]:
    from shardsmith.pipelines.mixer import build_mix
    from shardsmith.recipes import load_recipe
    from shardsmith.schemas.mix_recipe import MixRecipe

    src = {"name": "prose", "kind": "generic", "paths": [str(docs)], "weight": 1,
           "filters": [{"step": "length", "min_chars": 1}], **({"tier": "high", "module": "M1"} if capped else {})}
    recipe = {"name": "mix", "seed": 5, "tokenizer": {"name": "gpt2"}, "validation_fraction": 0.1,
              "sources": [src], "dedup": {"enabled": False},  # the 40 texts differ only in numbers
              **({"max_tokens_per_file": 500} if capped else {})}
    path = folder / f"{'capped' if capped else 'plain'}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    out = folder / path.stem
    build_mix(load_recipe(MixRecipe, str(path)), out, progress=False)
    return ShardManifest.load(out), out


def test_mix_file_size_cap_and_recorded_tier_and_module(tmp_path):
    texts = [f"Document {i}: " + " ".join(f"word{i}x{j}" for j in range(40)) for i in range(40)]
    docs = tmp_path / "prose.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    (capped, capped_dir), (plain, plain_dir) = _mix(tmp_path, docs, True), _mix(tmp_path, docs, False)
    files = {name: sorted((d / "train").glob("*.ds")) for name, d in (("capped", capped_dir), ("plain", plain_dir))}
    assert len(files["plain"]) == 1 and len(files["capped"]) > 1
    assert sum(f.stat().st_size for f in files["capped"]) == files["plain"][0].stat().st_size  # same tokens
    # datatrove closes a file once it holds more than the cap: every file but the last ends within one document
    ends = split_files(plain_dir, "train", plain.token_size)[0].doc_ends
    longest = int(max(ends[0], *(ends[1:] - ends[:-1])))
    assert all(f.stat().st_size <= (500 + longest) * capped.token_size for f in files["capped"])
    (entry,), (plain_entry,) = capped.sources, plain.sources
    assert (entry.tier, entry.module, plain_entry.tier, plain_entry.module) == ("high", "M1", None, None)


def test_block_recipes_refuse_a_file_size_cap():
    """Blocks write one file per split (datatrove caps files only when it shuffles; a block keeps its order), so
    ``max_tokens_per_file`` is a mix-only field: a block recipe that sets it fails naming it."""
    from shardsmith.recipes import RecipeError, load_recipe

    demo = Path(__file__).resolve().parents[1] / "recipes" / "blocks" / "demo.yaml"
    with pytest.raises(RecipeError, match="field 'max_tokens_per_file': Extra inputs are not permitted"):
        load_recipe(SftBlockRecipe, demo, ["max_tokens_per_file=40"])


def test_the_builders_fasttext_predicts_what_the_pipelines_one_predicts():
    """builders.filters.detect_language opens the bundled model itself (without datatrove's asset copy and
    dependency scan); the reference, pipelines.lid.detect_language, goes through datatrove's FastTextLID.model."""
    from shardsmith.builders.filters import detect_language as builder_detect

    texts = [ENGLISH, CODE, POEM, "Danke", "", "Bonjour à tous, comment allez-vous ?\nBien.", "中文，标点。" * 7]
    assert builder_detect(texts) == detect_language(texts)
