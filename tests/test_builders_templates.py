"""Templates: rendered text equals the seeds' formats character for character; the built shards carry loss exactly
on the assistant replies + their end marker (+ the EOS datatrove appends), for every template."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer

from shardsmith.builders.templates import BUILTIN, render, resolve_template
from shardsmith.builders.writer import inspect_documents
from shardsmith.pipelines.inspect import loss_segments
from shardsmith.schemas.block_recipe import TemplateRef
from shardsmith.schemas.records import Conversation, Message

from test_builders_helpers import build_recipe, load_manifest, write_jsonl


def conv(*turns: tuple[str, str]) -> Conversation:
    return Conversation(messages=[Message(role=r, content=c) for r, c in turns], source="t", id="1")


ONE = conv(("user", "What is the capital of France?"), ("assistant", "The capital of France is Paris"))
TWO = conv(("user", "Hi"), ("assistant", "Hello!"), ("user", "你好吗？"), ("assistant", "我很好，谢谢。"))

EXPECTED_ONE = {
    # seeds, verbatim (FF card, T1B card, fgpt README, Memphis card, ChatML / Qwen, rasbt ch07)
    "ff": "### System:\nYou are FF-LLM, a helpful assistant.\n### Instruction:\nWhat is the capital of France?\n"
    "### Response:\nThe capital of France is Paris",
    "t1b": "<|user|>\nWhat is the capital of France?\n<|end|>\n<|assistant|>\nThe capital of France is Paris\n<|end|>",
    "fgpt": "<|user|>What is the capital of France?<|assistant|>The capital of France is Paris<|endoftext|>",
    "memphis": "### User:\nWhat is the capital of France?\n\n### Assistant:\nThe capital of France is Paris",
    "memphis_compact": "### User:\nWhat is the capital of France?\n### Assistant:\nThe capital of France is Paris",
    "chatml": "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    "The capital of France is Paris<|im_end|>",
    "qwen": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "What is the capital of France?<|im_end|>\n<|im_start|>assistant\nThe capital of France is Paris<|im_end|>",
    "alpaca_rasbt": "Below is an instruction that describes a task. Write a response that appropriately completes the "
    "request.\n\n### Instruction:\nWhat is the capital of France?\n\n### Response:\nThe capital of France is Paris",
}


@pytest.mark.parametrize("name", sorted(EXPECTED_ONE))
def test_render_matches_seed(name):
    r = render(ONE, BUILTIN[name], eos_token="<|endoftext|>")
    assert r.text == EXPECTED_ONE[name]
    # the FF prompt part is the card's prompt exactly (what the model sees at inference)
    if name == "ff":
        assert r.text.startswith(
            "### System:\nYou are FF-LLM, a helpful assistant.\n### Instruction:\nWhat is the capital of France?\n"
            "### Response:\n"
        )
    # loss spans = exactly the reply + the end marker
    tail = BUILTIN[name].assistant.split("{content}")[1]
    loss_text = "".join(r.text[a:b] for a, b in r.loss)
    if r.eos_from_tokenizer:
        assert r.doc_text + "<|endoftext|>" == r.text
        assert loss_text + "<|endoftext|>" == "The capital of France is Paris" + tail
    else:
        assert loss_text == "The capital of France is Paris" + tail


def test_render_multiturn_t1b_every_assistant_turn_has_loss():
    r = render(TWO, BUILTIN["t1b"])
    assert r.text == ("<|user|>\nHi\n<|end|>\n<|assistant|>\nHello!\n<|end|>\n"
                      "<|user|>\n你好吗？\n<|end|>\n<|assistant|>\n我很好，谢谢。\n<|end|>")
    assert [r.text[a:b] for a, b in r.loss] == ["Hello!\n<|end|>", "我很好，谢谢。\n<|end|>"]
    assert r.no_loss[0][0] == 0 and r.loss[-1][1] == len(r.text)


def test_user_yaml_template(tmp_path):
    (tmp_path / "tpl.yaml").write_text(
        "name: mine\nsystem: '[SYS] {content}'\ndefault_system: Be brief.\nuser: '[U] {content}'\n"
        "assistant: '[A] {content} [/A]'\nseparator: \"\\n\"\n", encoding="utf-8")
    tpl = resolve_template(TemplateRef(path="tpl.yaml"), tmp_path)
    r = render(ONE, tpl)
    assert r.text == "[SYS] Be brief.\n[U] What is the capital of France?\n[A] The capital of France is Paris [/A]"
    assert [r.text[a:b] for a, b in r.loss] == ["The capital of France is Paris [/A]"]


def _expected_runs(tpl_name: str, c: Conversation, eos: str) -> list[str]:
    tail = BUILTIN[tpl_name].assistant.split("{content}")[1]
    runs = [m.content + tail for m in c.messages if m.role == "assistant"]
    if not tail.endswith(eos):
        runs[-1] += eos
    return runs


@pytest.mark.parametrize("name", sorted(EXPECTED_ONE))
def test_built_shard_loss_exactly_on_replies(tmp_path, name):
    rows = [
        {"instruction": "What is the capital of France?", "input": "", "output": "The capital of France is Paris"},
        {"instruction": "把这句话翻译成英文：今天天气很好。", "input": "", "output": "The weather is nice today."},
    ]
    multi = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"},
                               {"from": "human", "value": "你好吗？"}, {"from": "gpt", "value": "我很好，谢谢。"}]}
    write_jsonl(tmp_path / "a.jsonl", rows)
    write_jsonl(tmp_path / "m.jsonl", [multi])
    sources = [{"name": "a", "paths": ["a.jsonl"]}]
    if BUILTIN[name].max_turns is None:
        sources.append({"name": "m", "paths": ["m.jsonl"]})
    out = build_recipe(tmp_path, {"kind": "sft", "name": f"tpl-{name}", "tokenizer": {"name": "gpt2"},
                                  "template": name, "validation": {"fraction": 0}, "sources": sources})
    man = load_manifest(out)
    assert man["kind"] == "sft" and man["loss_masks"] is True and man["template"]["name"] == name
    for marker in BUILTIN[name].special_tokens:  # each marker is one id, recorded in the manifest
        assert marker in man["tokenizer"]["special_tokens"]
        assert man["template"]["special_token_ids"][marker] == man["tokenizer"]["special_tokens"][marker]
    docs = inspect_documents(out, "train")
    expected = {}
    from shardsmith.builders.importers import import_file

    for f in ["a.jsonl"] + (["m.jsonl"] if len(sources) > 1 else []):
        for c in import_file(tmp_path / f, source="x"):
            r = render(c, BUILTIN[name], "<|endoftext|>")
            full = r.text if r.eos_from_tokenizer else r.text + "<|endoftext|>"
            expected[full] = _expected_runs(name, c, "<|endoftext|>")
    assert len(docs) == len(expected)
    tk = Tokenizer.from_file(str(out / "tokenizer" / "tokenizer.json"))
    for d in docs:
        assert d["text"] in expected, d["text"]
        assert d["loss_runs"] == expected[d["text"]]
        assert d["ids"][-1] == man["tokenizer"]["eos_id"] and d["loss"][-1] == 1
        # `shardsmith inspect` shows the same answers apart from the prompt pieces, which hold the rest of the text
        pieces = loss_segments(np.array(d["ids"]), np.array(d["loss"]))
        assert [tk.decode(p.tolist(), skip_special_tokens=False) for trained, p in pieces if trained] == d["loss_runs"]
        assert "".join(tk.decode(p.tolist(), skip_special_tokens=False) for _, p in pieces) == d["text"]


def test_fgpt_token_ids_match_the_seed(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"instruction": "What is the capital of France?", "output": "Paris"}])
    out = build_recipe(tmp_path, {"kind": "sft", "name": "fgpt", "tokenizer": {"name": "gpt2"}, "template": "fgpt",
                                  "validation": {"fraction": 0}, "sources": [{"name": "a", "paths": ["a.jsonl"]}]})
    d = inspect_documents(out)[0]
    assert d["ids"][0] == 50257 and 50258 in d["ids"] and d["ids"][-1] == 50256
    assert d["ids"].count(50256) == 1  # the template's <|endoftext|> is datatrove's EOS, not doubled


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_chat_prompt_is_the_rendered_text_before_the_answer(name):
    """`shardsmith generate --template` prompts a model exactly as its SFT/DPO documents were rendered."""
    from shardsmith.builders.templates import chat_prompt

    tpl = BUILTIN[name]
    conv = Conversation(messages=[Message(role="user", content="What is 2 plus 3?"),
                                  Message(role="assistant", content="2 plus 3 is 5.")], source="t", id="0")
    text = render(conv, tpl).text
    prompt = chat_prompt("What is 2 plus 3?", tpl)
    assert text.startswith(prompt) and text[len(prompt):].startswith("2 plus 3 is 5."), (prompt, text)


def test_loss_all_trains_on_every_token(tmp_path):
    """fgpt / rasbt: the prompt carries loss too; the default keeps it masked."""
    write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Name a colour.", "output": "Blue."}])
    recipe = {"kind": "sft", "name": "all", "tokenizer": {"name": "gpt2"}, "template": "fgpt",
              "validation": {"fraction": 0.0}, "sources": [{"name": "a", "paths": [str(tmp_path / "a.jsonl")]}]}
    masked = inspect_documents(build_recipe(tmp_path, recipe, "masked.yaml"))[0]
    full = inspect_documents(build_recipe(tmp_path, {**recipe, "loss": "all"}, "full.yaml"))[0]
    assert masked["ids"] == full["ids"]
    assert 0 < sum(masked["loss"]) < len(masked["ids"]) and full["loss"] == [1] * len(full["ids"])
    assert load_manifest(tmp_path / "full_out")["template"]["loss"] == "every token (loss: all)"
