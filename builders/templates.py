"""Chat templates, exact to the character, and rendering with no-loss character ranges.

Built-ins (``template: NAME`` in a block recipe):

- ``ff``      FF_3.13:  ``### System:\\nYou are FF-LLM, a helpful assistant.\\n### Instruction:\\n{q}\\n### Response:\\n{a}``
- ``t1b``     Transformer-1B-Chat: ``<|user|>\\n{q}\\n<|end|>\\n<|assistant|>\\n{a}\\n<|end|>``
- ``fgpt``    fgpt (Phi-3 style): ``<|user|>{q}<|assistant|>{a}<|endoftext|>``
- ``memphis`` Memphis-CoT dialog: ``### User:\\n{q}\\n\\n### Assistant:\\n{a}`` (blank line between blocks, the seed
  lost its newlines; ``memphis_compact`` uses single newlines)
- ``tinycot`` Memphis-CoT TinyCoT: ``### User:\\n{q}\\n\\n### Rationale:\\n{r}\\n\\n### Answer:\\n{a}`` (the reply is
  ``{r}\\n\\n### Answer:\\n{a}``, built by ``builders.cot.cot_conversation``; loss on rationale and answer)
- ``chatml``  ``<|im_start|>user\\n{q}<|im_end|>\\n<|im_start|>assistant\\n{a}<|im_end|>``
- ``qwen``    ChatML with the default system ``You are a helpful assistant.`` (Steel via LLaMA-Factory ``qwen``)
- ``alpaca_rasbt`` rasbt ch07: ``Below is an instruction ...\\n\\n### Instruction:\\n{q}\\n\\n### Response:\\n{a}``

or ``template: {path: my.yaml}`` / an inline mapping: a :class:`TemplateDef`.

Loss: the renderer returns the document text and its **no-loss** character ranges — everything except the
assistant replies and the text after ``{content}`` in the assistant piece (the end marker). Multi-turn: every
assistant turn carries loss.

EOS: datatrove appends the tokenizer's EOS token after every document. That EOS **carries loss** (the model learns
to stop; datatrove gives it no character offsets, so it cannot be masked through ``no_loss_ranges``). When the
template's last assistant piece itself ends with the EOS token (fgpt: ``<|endoftext|>``), the renderer leaves that
final EOS out of the document text so that datatrove's appended one is the template's end marker — the token
sequence is then exactly the template, with no doubled EOS. Documents always end inside a loss span, so datatrove's
"drop a trailing no-loss span" rule never fires.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from shardsmith.schemas.block_recipe import TemplateDef, TemplateRef
from shardsmith.schemas.records import Conversation

BUILTIN: dict[str, TemplateDef] = {
    "ff": TemplateDef(
        name="ff",
        description="FF_3.13 Alpaca-style prompt, verbatim from the card (single newlines, no ### Input)",
        system="### System:\n{content}",
        default_system="You are FF-LLM, a helpful assistant.",
        user="### Instruction:\n{content}",
        assistant="### Response:\n{content}",
        separator="\n",
    ),
    "t1b": TemplateDef(
        name="t1b",
        description="Transformer-1B-Chat card template; <|user|> <|assistant|> <|end|> are single tokens",
        user="<|user|>\n{content}\n<|end|>",
        assistant="<|assistant|>\n{content}\n<|end|>",
        separator="\n",
        special_tokens=["<|user|>", "<|assistant|>", "<|end|>"],
    ),
    "fgpt": TemplateDef(
        name="fgpt",
        description="fgpt Phi-3 style, 1 turn, no system: GPT-2 + <|user|>=50257, <|assistant|>=50258",
        user="<|user|>{content}",
        assistant="<|assistant|>{content}<|endoftext|>",
        special_tokens=["<|user|>", "<|assistant|>"],
        max_turns=1,
    ),
    "memphis": TemplateDef(
        name="memphis",
        description="Memphis-CoT dialog format (### User: / ### Assistant:, blank line between blocks)",
        user="### User:\n{content}",
        assistant="### Assistant:\n{content}",
        separator="\n\n",
    ),
    "memphis_compact": TemplateDef(
        name="memphis_compact",
        description="Memphis-CoT dialog format with single newlines between blocks",
        user="### User:\n{content}",
        assistant="### Assistant:\n{content}",
        separator="\n",
    ),
    "tinycot": TemplateDef(
        name="tinycot",
        description="Memphis-CoT TinyCoT format: the assistant turn is '{rationale}\\n\\n### Answer:\\n{answer}' "
        "(builders.cot.cot_conversation), rendered after '### Rationale:' (blank line between blocks)",
        user="### User:\n{content}",
        assistant="### Rationale:\n{content}",
        separator="\n\n",
    ),
    "chatml": TemplateDef(
        name="chatml",
        system="<|im_start|>system\n{content}<|im_end|>",
        user="<|im_start|>user\n{content}<|im_end|>",
        assistant="<|im_start|>assistant\n{content}<|im_end|>",
        separator="\n",
        special_tokens=["<|im_start|>", "<|im_end|>"],
    ),
    "qwen": TemplateDef(
        name="qwen",
        description="ChatML with Qwen's default system prompt (Steel-LLM trained through LLaMA-Factory 'qwen')",
        system="<|im_start|>system\n{content}<|im_end|>",
        default_system="You are a helpful assistant.",
        user="<|im_start|>user\n{content}<|im_end|>",
        assistant="<|im_start|>assistant\n{content}<|im_end|>",
        separator="\n",
        special_tokens=["<|im_start|>", "<|im_end|>"],
    ),
    "alpaca_rasbt": TemplateDef(
        name="alpaca_rasbt",
        description="rasbt LLMs-from-scratch ch07 Alpaca prompt (set options.input_join: \"\\n\\n### Input:\\n\")",
        system="{content}",
        default_system=(
            "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        ),
        user="### Instruction:\n{content}",
        assistant="### Response:\n{content}",
        separator="\n\n",
    ),
}


class TemplateError(ValueError):
    pass


def resolve_template(spec: str | TemplateRef | TemplateDef | dict, base: str | os.PathLike | None = None) -> TemplateDef:
    if isinstance(spec, TemplateDef):
        return spec
    if isinstance(spec, dict):
        return TemplateDef.model_validate(spec) if "path" not in spec else resolve_template(TemplateRef(**spec), base)
    if isinstance(spec, TemplateRef):
        p = Path(spec.path)
        if not p.is_absolute() and base is not None:
            p = Path(base) / p
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except OSError as err:
            raise TemplateError(f"{p}: cannot read template: {err.strerror or err}") from None
        try:
            return TemplateDef.model_validate(data)
        except Exception as err:  # pydantic ValidationError -> message naming the file
            raise TemplateError(f"{p}: invalid template: {err}") from None
    if spec not in BUILTIN:
        raise TemplateError(f"unknown template '{spec}' (built-in: {', '.join(BUILTIN)}; or {{path: file.yaml}})")
    return BUILTIN[spec]


@dataclass
class Rendered:
    text: str  # the full template text, exactly as the seed writes it
    doc_text: str  # what is tokenized (text, minus a final EOS that datatrove appends itself)
    no_loss: list[tuple[int, int]]  # character ranges of doc_text without loss
    loss: list[tuple[int, int]] = field(default_factory=list)  # the complement, for inspection
    eos_from_tokenizer: bool = False  # True when doc_text dropped the template's final EOS


class RenderError(ValueError):
    """A conversation the template cannot render (reason is a drop key)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def _piece(fmt: str) -> tuple[str, str]:
    head, tail = fmt.split("{content}")
    return head, tail


def render(conv: Conversation, tpl: TemplateDef, eos_token: str | None = None) -> Rendered:
    """Render a conversation (system? then user/assistant alternating, ending with assistant)."""
    msgs = [(m.role, m.content) for m in conv.messages]
    system = None
    if msgs and msgs[0][0] == "system":
        system = msgs.pop(0)[1]
    if any(r == "system" for r, _ in msgs):
        raise RenderError("bad_turn_order", "a system message after the first turn")
    if system is None:
        system = tpl.default_system
    elif tpl.system is None:
        if tpl.system_fallback == "error":
            raise RenderError("system_unsupported", f"template '{tpl.name}' has no system slot")
        if tpl.system_fallback == "prepend_user" and msgs and msgs[0][0] == "user":
            msgs[0] = ("user", system + tpl.system_join + msgs[0][1])
        system = None
    if tpl.max_turns is not None and sum(r == "assistant" for r, _ in msgs) > tpl.max_turns:
        raise RenderError("too_many_turns", f"template '{tpl.name}' allows {tpl.max_turns} assistant turn(s)")
    if not msgs or msgs[-1][0] != "assistant":
        raise RenderError("ends_with_user", "the conversation does not end with an assistant turn")

    parts: list[tuple[str, bool]] = []  # (text, carries loss)
    if tpl.prefix:
        parts.append((tpl.prefix, False))
    seq: list[tuple[str, str]] = ([("system", system)] if system is not None and tpl.system is not None else []) + msgs
    for i, (role, content) in enumerate(seq):
        if role == "assistant":
            head, tail = _piece(tpl.assistant)
            parts += [(head, False), (content + tail, True)]
        else:
            head, tail = _piece(tpl.system if role == "system" else tpl.user)
            parts.append((head + content + tail, False))
        if i < len(seq) - 1 and tpl.separator:
            parts.append((tpl.separator, False))

    text = "".join(p for p, _ in parts)
    doc_text, from_tok = text, False
    if eos_token and text.endswith(eos_token) and _piece(tpl.assistant)[1].endswith(eos_token):
        doc_text, from_tok = text[: -len(eos_token)], True
    no_loss, loss, pos = [], [], 0
    n = len(doc_text)
    for p, has_loss in parts:
        start, end = pos, min(pos + len(p), n)
        pos += len(p)
        if end <= start:
            continue
        target = loss if has_loss else no_loss
        if target and target[-1][1] == start:
            target[-1] = (target[-1][0], end)
        else:
            target.append((start, end))
    return Rendered(text=text, doc_text=doc_text, no_loss=no_loss, loss=loss, eos_from_tokenizer=from_tok)


def chat_prompt(user: str, tpl: TemplateDef, system: str | None = None) -> str:
    """The text a model trained on ``tpl`` sees before it answers ``user``: the rendered turn + the assistant head."""
    head = _piece(tpl.assistant)[0]
    system = system if system is not None else tpl.default_system
    parts = [tpl.prefix]
    if system is not None and tpl.system is not None:
        parts += [tpl.system.replace("{content}", system), tpl.separator]
    elif system is not None:
        user = system + tpl.system_join + user
    parts += [tpl.user.replace("{content}", user), tpl.separator, head]
    return "".join(parts)


def template_info(tpl: TemplateDef, eos_token: str | None, special_ids: dict[str, int] | None = None) -> dict:
    """What the manifest records about the template."""
    info = tpl.model_dump()
    info["eos_token"] = eos_token
    info["eos_appended"] = True
    info["eos_loss"] = True
    info["eos_is_template_end"] = bool(eos_token and _piece(tpl.assistant)[1].endswith(eos_token))
    info["loss"] = "assistant replies + the assistant piece's end marker + the appended EOS; everything else masked"
    if special_ids is not None:
        info["special_token_ids"] = special_ids
    return info
