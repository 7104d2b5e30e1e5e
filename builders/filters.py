"""SFT filters: structure (empty / misordered / truncated turns), language (fastText or the dataset's label), length.

Every filter returns a decision with a drop ``reason`` (a short key counted in the manifest); nothing is dropped
silently.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from shardsmith.schemas.block_recipe import LanguageFilter, LengthFilter, StructureFilter
from shardsmith.schemas.records import Conversation, Message

from .forked import ForkedMap, forked_map, parts_for

_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_FENCE = re.compile(r"^\s*```", re.M)


# ----------------------------------------------------------------------------------------------------------------
# structure


class StructureCheck(NamedTuple):
    """What the structure filter decided: ``conv`` (possibly trimmed) when it passes, else ``reason`` + ``detail``.

    ``trimmed`` names what was cut from a conversation that passes (``leading_assistant``, ``trailing_user``); the
    builder counts these per source in the manifest."""

    conv: Conversation | None
    reason: str | None = None
    detail: str | None = None
    trimmed: tuple[str, ...] = ()


def _leading_assistant_turns(msgs: list[Message], head: int) -> int:
    """How many assistant turns come first after ``msgs[:head]`` (the optional system prompt)."""
    n = 0
    while head + n < len(msgs) and msgs[head + n].role == "assistant":
        n += 1
    return n


def check_structure(conv: Conversation, spec: StructureFilter) -> StructureCheck:
    """Pass a well-formed conversation (possibly trimmed), or name why it cannot be trained on.

    A conversation that opens with assistant turns (ShareGPT fragments) is dropped as ``starts_with_assistant``, or
    with ``leading_assistant: trim`` loses those turns (FastChat's rule) and is then judged like any other: a rest
    without an assistant turn is dropped as ``no_assistant``."""
    msgs = list(conv.messages)
    for i, m in enumerate(msgs):
        if not m.content.strip():
            return StructureCheck(None, "empty_turn", f"turn {i} ({m.role}) is empty")
    if any(m.role == "system" for m in msgs[1:]):
        return StructureCheck(None, "bad_turn_order", "a system message after the first turn")
    head = 1 if msgs and msgs[0].role == "system" else 0
    trimmed: list[str] = []
    note = ""
    lead = _leading_assistant_turns(msgs, head)
    if lead and spec.leading_assistant == "drop":
        return StructureCheck(None, "starts_with_assistant", "the first turn after the system prompt is the assistant's")
    if lead:
        msgs = msgs[:head] + msgs[head + lead:]
        trimmed.append("leading_assistant")
        note = f" (after trimming {lead} leading assistant turn{'s' if lead > 1 else ''})"
    body = msgs[head:]
    if not any(m.role == "assistant" for m in body):
        return StructureCheck(None, "no_assistant", f"{len(body)} turn(s), none from the assistant{note}")
    if spec.require_alternation:
        for i in range(1, len(body)):
            if body[i].role == body[i - 1].role:
                return StructureCheck(None, "bad_turn_order", f"turns {i - 1} and {i} are both {body[i].role}{note}")
    if body[-1].role != "assistant":
        if spec.drop_ends_with_user:
            return StructureCheck(None, "ends_with_user", f"the last turn is the user's (no reply to train on){note}")
        while msgs and msgs[-1].role != "assistant":
            msgs.pop()
        trimmed.append("trailing_user")
    if spec.drop_truncated:
        for i, m in enumerate(msgs):
            if m.role == "assistant" and len(_FENCE.findall(m.content)) % 2:
                return StructureCheck(None, "truncated", f"turn {i}: an unclosed ``` code fence{note}")
    if trimmed:
        conv = conv.model_copy(update={"messages": msgs})
    return StructureCheck(conv, trimmed=tuple(trimmed))


# ----------------------------------------------------------------------------------------------------------------
# length (characters; tokens are counted in the builder with the target tokenizer)


def check_chars(conv: Conversation, spec: LengthFilter) -> tuple[str | None, str | None]:
    total = 0
    n_assistant = 0
    for i, m in enumerate(conv.messages):
        n = len(m.content)
        total += n
        if m.role == "user" and spec.max_chars_user and n > spec.max_chars_user:
            return "too_long_chars", f"turn {i} (user): {n} > {spec.max_chars_user} characters"
        if m.role == "assistant":
            n_assistant += 1
            if spec.max_chars_assistant and n > spec.max_chars_assistant:
                return "too_long_chars", f"turn {i} (assistant): {n} > {spec.max_chars_assistant} characters"
            if n < spec.min_chars_assistant:
                return "empty_turn", f"turn {i} (assistant): {n} < {spec.min_chars_assistant} characters"
    if spec.max_chars_total and total > spec.max_chars_total:
        return "too_long_chars", f"{total} > {spec.max_chars_total} characters in all turns"
    if spec.max_turns and n_assistant > spec.max_turns:
        return "too_many_turns", f"{n_assistant} assistant turns > {spec.max_turns}"
    return None, None


# ----------------------------------------------------------------------------------------------------------------
# language


def fix_cjk_label(lang: str, text: str) -> str:
    """fastText (lid.176) calls short Chinese 'ja' (and sometimes 'ko'): no kana -> not Japanese, no hangul -> not
    Korean; with Han characters that is Chinese."""
    if lang == "ja" and not _KANA.search(text) and _CJK.search(text):
        return "zh"
    if lang == "ko" and not _HANGUL.search(text) and _CJK.search(text):
        return "zh"
    if lang in ("wuu", "yue", "gan", "lzh") and _CJK.search(text):  # Chinese varieties ft176 separates
        return "zh"
    return lang


def han_share(text: str) -> float:
    """Han characters / (Han + Latin letters); 0 when there are none."""
    han = len(_CJK.findall(text))
    lat = len(_LATIN.findall(text))
    return han / (han + lat) if han + lat else 0.0


def normalize_label(label: str | None) -> str | None:
    """Dataset language labels -> ISO 639-1: ``zh-cn`` -> ``zh``, ``en`` -> ``en``, ``EN_us`` -> ``en``."""
    if label is None:
        return None
    s = str(label).strip().lower().replace("_", "-")
    return s.split("-")[0] or None


@dataclass
class LangDecision:
    keep: bool
    lang: str  # the conversation's language ('unknown' when nothing was detected confidently)
    share: float  # share of judged characters in a kept language
    reason: str | None = None  # language:<lang> when dropped
    detail: str | None = None
    by: str = "fasttext"
    fasttext_lang: str | None = None
    turns: list[tuple[str, str, float, int]] = field(default_factory=list)  # (role, lang, score, chars)


def detect_language(texts: list[str], parts: int | None = None) -> list[tuple[str, float]]:
    """``pipelines.lid.detect_language`` (the bundled ft176 model, the same ``LocalFastTextLID.predict_texts``), with
    the model opened once per process straight from its local file.

    datatrove's ``FastTextLID.model`` first runs ``check_required_dependencies``, which reads the metadata of every
    installed distribution (~0.7 s), then copies the file into its asset cache under an inter-process lock (~0.3 s)
    — protections for executors downloading a remote model. A block build is one process reading a local file, so it
    opens that file with the class datatrove itself uses (``fasttext.FastText._FastText``); predictions are the same
    model's.

    A large batch is split over the usable cores (forked children, ``builders/forked.py``; fastText holds the GIL,
    so threads would take turns): one part per ``CHARS_PER_PART`` characters, at most one per core, or ``parts``.
    The predictions are the same, in the same order."""
    texts = list(texts)
    lid = _block_lid()
    return forked_map(lid.predict_texts, texts, lid_parts(texts) if parts is None else parts, weight=len)


def start_detect_language(texts: list[str]) -> ForkedMap:
    """:func:`detect_language` started now in forked children; ``result()`` gives the same predictions later, while
    this process goes on meanwhile."""
    lid = _block_lid()
    return ForkedMap(lid.predict_texts, texts, lid_parts(texts), weight=len)


CHARS_PER_PART = 200_000  # ~45 ms of fastText; a fork and the result's trip back cost ~10-20 ms


def lid_parts(texts: list[str]) -> int:
    """How many processes ``detect_language`` uses for ``texts``."""
    return parts_for(sum(map(len, texts)), CHARS_PER_PART)


@functools.lru_cache(maxsize=1)
def _block_lid():
    from fasttext.FastText import _FastText

    from shardsmith.pipelines.lid import LocalFastTextLID

    lid = LocalFastTextLID(None)
    lid._model = _FastText(lid.model_path)  # what FastTextLID.model would set, without its checks (see above)
    return lid


class LanguageJudge:
    """Decide per conversation from fastText over the chosen roles' turns, or from the dataset's own label."""

    def __init__(self, spec: LanguageFilter, detect=None):
        self.spec = spec
        self.detect = detect or detect_language
        self.keep = set(spec.keep)

    def turn_texts(self, convs: list[Conversation]) -> tuple[list[str], list[tuple[int, Message]]]:
        """The turns fastText judges (the chosen roles', non-blank) and (conversation index, message) of each."""
        texts, owners = [], []
        for ci, c in enumerate(convs):
            for m in c.messages:
                if m.role in self.spec.roles and m.content.strip():
                    texts.append(m.content)
                    owners.append((ci, m))
        return texts, owners

    def needs_fasttext(self) -> bool:
        return self.spec.by != "label" or self.spec.report_agreement

    def _fasttext(self, convs: list[Conversation]) -> list[LangDecision]:
        spec = self.spec
        texts, owners = self.turn_texts(convs)
        preds = self.detect(texts) if texts else []
        per: list[list[tuple[str, str, float, int]]] = [[] for _ in convs]
        for (ci, m), (lang, score), text in zip(owners, preds, texts):
            lang = fix_cjk_label(lang, text) if lang else ""
            if score < spec.min_confidence or not lang:
                lang = "unknown"
                if spec.script_fallback is not None and han_share(text) >= spec.script_fallback:
                    lang = "zh"
            per[ci].append((m.role, lang, float(score), len(text.strip())))
        out = []
        for ci, turns in enumerate(per):
            chars = Counter()
            for _, lang, _, n in turns:
                chars[lang] += n
            total = (sum(n for lang, n in chars.items() if lang != "unknown") if spec.ignore_unknown
                     else sum(chars.values())) or 1
            known = [(n, lang) for lang, n in chars.items() if lang != "unknown"]
            main = max(known)[1] if known else "unknown"
            share = sum(n for lang, n in chars.items() if lang in self.keep) / total
            if spec.rule == "every_turn":
                judged = [t for t in turns if t[3] >= spec.min_turn_chars
                          and not (spec.ignore_unknown and t[1] == "unknown")]
                bad = [t for t in judged if t[1] not in self.keep]
                keep = bool(judged) and not bad
                why = f"turn(s) detected as {sorted({t[1] for t in bad})}" if bad else None
                if bad:  # name the language that failed, not the conversation's main one
                    main = max((t[3], t[1]) for t in bad)[1]
            else:
                keep = bool(turns) and share >= spec.min_share and (main != "unknown" or not spec.ignore_unknown)
                why = f"{share:.0%} of characters in {sorted(self.keep)} < {spec.min_share:.0%}"
            lang = main
            out.append(
                LangDecision(
                    keep=keep,
                    lang=lang,
                    share=share,
                    reason=None if keep else f"language:{lang}",
                    detail=None if keep else f"{why}; turns: " + ", ".join(f"{r}={l}({s:.2f},{n}ch)" for r, l, s, n in turns),
                    fasttext_lang=lang,
                    turns=turns,
                )
            )
        return out

    def judge(self, convs: list[Conversation]) -> list[LangDecision]:
        spec = self.spec
        ft = self._fasttext(convs) if self.needs_fasttext() else [None] * len(convs)
        if spec.by == "fasttext":
            return ft
        out = []
        for c, f in zip(convs, ft):
            if c.label_lang is None:
                if spec.by == "label_or_fasttext":
                    out.append(f)
                else:
                    out.append(LangDecision(False, "unknown", 0.0, "no_language_label",
                                            "by: label, and the record has no language label", by="label"))
                continue
            norm = normalize_label(c.label_lang) or "unknown"
            keep = (c.label_lang in spec.label_values) if spec.label_values is not None else norm in self.keep
            out.append(
                LangDecision(
                    keep=keep,
                    lang=norm,
                    share=1.0 if keep else 0.0,
                    reason=None if keep else f"language:{norm}" if spec.label_values is None or norm not in self.keep
                    else f"language_label:{c.label_lang}",
                    detail=None if keep else f"label {c.label_lang!r} not in "
                    f"{spec.label_values if spec.label_values is not None else sorted(self.keep)}",
                    by="label",
                    fasttext_lang=f.lang if f else None,
                    turns=f.turns if f else [],
                )
            )
        return out


def script_language(text: str) -> str:
    """A cheap zh/ja/ko/en guess by script (for self-cognition rows): Han without kana/hangul -> zh."""
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    if _CJK.search(text):
        return "zh"
    return "en"


def strip_control(text: str) -> str:
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


__all__ = [
    "LangDecision",
    "LanguageJudge",
    "StructureCheck",
    "Message",
    "check_chars",
    "check_structure",
    "fix_cjk_label",
    "normalize_label",
    "script_language",
]
