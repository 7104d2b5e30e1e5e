"""Self-cognition (identity) conversations: template sets with the model's name and maker substituted.

Template sets:
- ``builtin``  a small zh + en set shipped here ({{name}}, {{author}}, {{role_zh}}, {{role_en}} placeholders);
- ``emollm``   SmartFlowAI/EmoLLM ``self_cognition_EmoLLM.json`` (the set Steel-LLM used): "EmoLLM" -> name,
               "EmoLLM团队" / "EmoLLM Team" / ``<AUTHOR>`` -> author, "中文领域心理健康助手" / "心理健康助手" /
               "心理咨询师" -> role_zh, "psychological counselor" -> role_en, and the "心理专家 ... 研究咨询经验"
               clause of four rows removed (a domain claim the new assistant cannot make);
- ``identity`` LLaMA-Factory ``identity.json`` ({{name}} / {{author}});
- any other entry is a path to an Alpaca-shaped file using those placeholders.

A substituted row that still contains a placeholder or the original assistant's name is an error (never trained).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from shardsmith.schemas.block_recipe import SelfCognition
from shardsmith.schemas.records import Conversation, Message

from .filters import script_language
from .importers import iter_raw

BUILTIN_ROWS: list[tuple[str, str]] = [
    ("你好", "您好，我是{{name}}，一个由{{author}}开发的{{role_zh}}，很高兴认识您。请问我能为您做些什么？"),
    ("你是谁？", "我是{{name}}，由{{author}}开发的{{role_zh}}。我可以回答问题、提供建议，帮助您完成各种任务。"),
    ("你叫什么名字？", "我的名字是{{name}}，是{{author}}打造的{{role_zh}}。"),
    ("你是由谁开发的？", "我是由{{author}}开发的{{role_zh}}{{name}}。"),
    ("介绍一下你自己", "您好！我是{{name}}，一个由{{author}}训练的{{role_zh}}。我擅长中文和英文的问答、写作与推理，但也可能出错，重要信息请核实。"),
    ("你是ChatGPT吗？", "不是的，我不是OpenAI开发的ChatGPT。我是{{author}}开发的{{name}}。"),
    ("你和GPT-4有什么关系？", "我和GPT-4没有关系。我是{{name}}，一个由{{author}}独立训练的{{role_zh}}。"),
    ("你能做什么？", "作为{{name}}，我可以回答问题、翻译文本、撰写和修改文章、解释概念，并尽力给出有用的建议。"),
    ("hi", "Hello! I am {{name}}, an {{role_en}} developed by {{author}}. How can I help you today?"),
    ("Who are you?", "I am {{name}}, an {{role_en}} developed by {{author}}. How can I assist you today?"),
    ("What is your name?", "My name is {{name}}. I am an {{role_en}} trained by {{author}}."),
    ("Who created you?", "I was created by {{author}}. I am {{name}}, an {{role_en}}."),
    ("Are you ChatGPT?", "No, I am not ChatGPT and I was not made by OpenAI. I am {{name}}, developed by {{author}}."),
    ("Tell me about yourself.", "I am {{name}}, an {{role_en}} built by {{author}}. I can answer questions, write and "
     "explain things in English and Chinese, though I can make mistakes."),
]

EMOLLM_SUBS: list[tuple[str, str]] = [  # order matters: longer phrases first
    ("EmoLLM团队", "{{author}}"),
    ("EmoLLM Team", "{{author}}"),
    ("EmoLLM team", "{{author}}"),
    ("<AUTHOR>", "{{author}}"),
    # the psychology-expert claim some rows add: dropped, it would not be true of the new assistant
    (", 是一个研究过无数具有心理健康问题的病人与心理健康医生对话的心理专家, 在心理方面拥有广博的知识储备和丰富的研究咨询经验", ""),
    ("中文领域心理健康助手", "{{role_zh}}"),
    ("心理健康助手", "{{role_zh}}"),
    ("心理咨询师", "{{role_zh}}"),
    ("an psychological counselor", "an {{role_en}}"),
    ("a psychological counselor", "an {{role_en}}"),
    ("psychological counselor", "{{role_en}}"),
    ("EmoLLM", "{{name}}"),
]
_LEFTOVER = re.compile(r"\{\{\s*\w+\s*\}\}|<AUTHOR>|<NAME>|EmoLLM|Vicuna|LMSYS")


class SelfCognitionError(ValueError):
    pass


def substitute(text: str, spec: SelfCognition, subs: list[tuple[str, str]] = ()) -> str:
    for a, b in subs:
        text = text.replace(a, b)
    values = {"name": spec.name, "author": spec.author, "role_zh": spec.role_zh, "role_en": spec.role_en}
    text = re.sub(r"\{\{\s*(name|author|role_zh|role_en)\s*\}\}", lambda m: values[m.group(1)], text)
    return text


def _data_dir(spec: SelfCognition, base: str | os.PathLike | None) -> Path:
    if spec.data_dir:
        p = Path(spec.data_dir)
        return p if p.is_absolute() or base is None else Path(base) / p
    env = os.environ.get("SHARDSMITH_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def _rows_from_file(path: Path) -> list[tuple[str, str, str]]:
    rows = []
    for i, rec in iter_raw(path):
        if not isinstance(rec, dict) or "instruction" not in rec or "output" not in rec:
            raise SelfCognitionError(f"{path}: record {i}: expected instruction/output fields")
        q = rec["instruction"] + (("\n" + rec["input"]) if rec.get("input") else "")
        rows.append((q, rec["output"], f"{path.name}:{i}"))
    return rows


def generate(spec: SelfCognition, base: str | os.PathLike | None = None) -> list[Conversation]:
    """All identity conversations of the configured template sets, in the configured languages."""
    out: list[Conversation] = []
    for tset in spec.templates:
        if tset == "builtin":
            rows = [(q, a, f"builtin:{i}") for i, (q, a) in enumerate(BUILTIN_ROWS)]
            subs: list[tuple[str, str]] = []
        elif tset == "emollm":
            rows = _rows_from_file(_data_dir(spec, base) / "sft_self_cognition_emollm" / "self_cognition_EmoLLM.json")
            subs = EMOLLM_SUBS
        elif tset == "identity":
            rows = _rows_from_file(_data_dir(spec, base) / "sft_self_cognition_identity" / "identity.json")
            subs = [("<AUTHOR>", "{{author}}")]
        else:
            p = Path(tset)
            p = p if p.is_absolute() or base is None else Path(base) / p
            rows = _rows_from_file(p)
            subs = [("<AUTHOR>", "{{author}}")]
        for q, a, rid in rows:
            q2, a2 = substitute(q, spec, subs), substitute(a, spec, subs)
            for t in (q2, a2):
                left = _LEFTOVER.search(t.replace(spec.name, "").replace(spec.author, ""))
                if left:
                    raise SelfCognitionError(f"self-cognition {tset} {rid}: '{left.group(0)}' left after substitution")
            lang = script_language(q2 + a2)
            if lang not in spec.languages:
                continue
            for k in range(spec.repeat):
                out.append(
                    Conversation(
                        messages=[Message(role="user", content=q2.strip()), Message(role="assistant", content=a2.strip())],
                        source=spec.source_name,
                        id=f"{tset}:{rid}" + (f"#{k}" if spec.repeat > 1 else ""),
                        lang=lang,
                        metadata={"template_set": tset},
                    )
                )
    return out
