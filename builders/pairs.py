"""Preference-pair importers: every prompt / chosen / rejected shape -> :class:`PreferencePair`.

==================  ================================================================  ============================
shape               fields                                                            seen in
==================  ================================================================  ============================
sharegpt_pairs      conversations: [{from, value}] (the prompt), chosen: {from, value},  LLaMA-Factory dpo_*_demo,
                    rejected: {from, value}  [, system]                                Steel-LLM's DPO data
prompt_pairs        prompt, chosen, rejected: each text or [{role, content}]; chosen /  UltraFeedback (binarized,
                    rejected lists may repeat the prompt (TRL's implicit prompt)       cleaned), TRL, Argilla
alpaca_pairs        instruction [, input, system], chosen, rejected (output ignored)   rasbt ch07 DPO data
==================  ================================================================  ============================

Scores (numeric ``*score*`` / ``*rating*`` fields at the top level or inside ``metadata``: ``score_chosen``,
UltraFeedback's ``chosen-rating``) are kept in the pair's
metadata so the builder can drop near-ties. Malformed records raise :class:`ImportShapeError` naming the file and
record; an unmappable role is a counted drop, like in the SFT importers (which own the file reading and the shape
dispatch: this module only adds the pair shapes).
"""

from __future__ import annotations

from typing import Any

from shardsmith.schemas.records import Message, PreferencePair

from .importers import ShapeSet, _map_from, _RecordDrop, _text

PAIR_SHAPES = ("sharegpt_pairs", "prompt_pairs", "alpaca_pairs")
PAIR_ALIASES = {"llamafactory": "sharegpt_pairs", "ultrafeedback": "prompt_pairs", "trl": "prompt_pairs",
                "rasbt": "alpaca_pairs"}
PAIR_REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "sharegpt_pairs": (("conversations", "chosen", "rejected"),),
    "prompt_pairs": (("chosen", "rejected"),),
    "alpaca_pairs": (("instruction", "chosen", "rejected"),),
}


def canonical_pair_shape(shape: str) -> str:
    shape = PAIR_ALIASES.get(shape, shape)
    if shape != "auto" and shape not in PAIR_SHAPES:
        raise ValueError(f"unknown preference shape '{shape}' (known: auto, {', '.join(PAIR_SHAPES)}, "
                         f"aliases {sorted(PAIR_ALIASES)})")
    return shape


def detect_pair_shape(record: Any) -> str | None:
    if not isinstance(record, dict) or not {"chosen", "rejected"} <= set(record):
        return None
    if "conversations" in record:
        return "sharegpt_pairs"
    if "instruction" in record:
        return "alpaca_pairs"
    return "prompt_pairs"


def _turn(value: Any, field: str) -> tuple[str, str]:
    """One ShareGPT ``{from, value}`` or OpenAI ``{role, content}`` turn."""
    if isinstance(value, dict):
        role = value.get("from", value.get("role"))
        content = value.get("value", value.get("content"))
        if role is None or content is None:
            raise TypeError(f"field '{field}' must have from/value or role/content")
        return _map_from(role, field), _text(content, field)
    raise TypeError(f"field '{field}' holds {type(value).__name__}, expected a turn object")


def _turns(value: Any, field: str) -> list[tuple[str, str]]:
    """Text (one assistant turn), a turn object, or a list of turn objects."""
    if isinstance(value, str):
        return [("assistant", value)]
    if isinstance(value, dict):
        return [_turn(value, field)]
    if isinstance(value, list):
        return [_turn(t, f"{field}[{i}]") for i, t in enumerate(value)]
    raise TypeError(f"field '{field}' holds {type(value).__name__}, expected text or turns")


def _sharegpt_pairs(r: dict, o: dict):
    conv = r.get("conversations")
    if not isinstance(conv, list):
        raise TypeError("field 'conversations' must be a list of {from, value}")
    prompt = [("system", _text(r["system"], "system"))] if r.get("system") else []
    prompt += [_turn(t, f"conversations[{i}]") for i, t in enumerate(conv)]
    return prompt, _turns(r["chosen"], "chosen"), _turns(r["rejected"], "rejected")


def _prompt_pairs(r: dict, o: dict):
    chosen, rejected = _turns(r["chosen"], "chosen"), _turns(r["rejected"], "rejected")
    p = r.get("prompt")
    if p is None:  # implicit prompt: the longest shared prefix of the two message lists
        k = 0
        while k < min(len(chosen), len(rejected)) - 1 and chosen[k] == rejected[k]:
            k += 1
        return chosen[:k], chosen[k:], rejected[k:]
    prompt = [("user", p)] if isinstance(p, str) else _turns(p, "prompt")
    if isinstance(p, str) and r.get("system"):
        prompt.insert(0, ("system", _text(r["system"], "system")))
    for name, lst in (("chosen", chosen), ("rejected", rejected)):
        if len(lst) > len(prompt) and [c for _, c in lst[: len(prompt)]] == [c for _, c in prompt]:
            del lst[: len(prompt)]  # the completion repeats the prompt turns (TRL conversational format)
        elif lst and lst[0][0] == "user" and len(lst) > 1:
            raise TypeError(f"field '{name}' starts with a user turn that is not the prompt")
    return prompt, chosen, rejected


def _alpaca_pairs(r: dict, o: dict):
    q = _text(r.get("instruction"), "instruction")
    inp = _text(r.get("input"), "input")
    if inp.strip():
        q = q + o.get("input_join", "\n") + inp if q.strip() else inp
    prompt = [("system", _text(r["system"], "system"))] if r.get("system") else []
    return prompt + [("user", q)], _turns(r["chosen"], "chosen"), _turns(r["rejected"], "rejected")


PAIR_CONVERTERS = {"sharegpt_pairs": _sharegpt_pairs, "prompt_pairs": _prompt_pairs, "alpaca_pairs": _alpaca_pairs}


def _scores(r: dict) -> dict:
    """Numeric score / rating fields, top level or inside ``metadata`` (``score_chosen``, ``chosen-rating``, ...)."""
    out = {}
    nested = r.get("metadata") if isinstance(r.get("metadata"), dict) else {}
    for where in (nested, r):
        for k, v in where.items():
            if ("score" in k or "rating" in k) and isinstance(v, (int, float)) and not isinstance(v, bool):
                out[k] = float(v)
    return out


def convert_pair(record: dict, shape: str, *, source: str, rec_id: str, options: dict | None = None,
                 label_field: str | None = None) -> list[PreferencePair]:
    options = options or {}
    prompt, chosen, rejected = PAIR_CONVERTERS[shape](record, options)
    strip = options.get("strip", True)

    def msgs(pairs):
        return [Message(role=role, content=c.strip() if strip else c) for role, c in pairs]

    if not prompt or prompt[-1][0] != "user":
        raise _RecordDrop("bad_prompt", "the prompt does not end with a user turn")
    for name, lst in (("chosen", chosen), ("rejected", rejected)):
        if not lst or lst[-1][0] != "assistant":
            raise _RecordDrop("bad_completion", f"'{name}' does not end with an assistant turn")
    label = str(record[label_field]) if label_field and record.get(label_field) is not None else None
    meta = _scores(record)
    return [PreferencePair(prompt=msgs(prompt), chosen=msgs(chosen), rejected=msgs(rejected), source=source,
                           id=rec_id, label_lang=label, metadata=meta)]


PAIR_SHAPESET = ShapeSet("preference", PAIR_SHAPES, PAIR_REQUIRED, detect_pair_shape, canonical_pair_shape,
                         convert_pair)
