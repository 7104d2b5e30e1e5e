"""The FF TRUTH-list bench: a prompt, a list of accepted answers (and optionally a FALSE list); greedy generation.

FF_3.13's card (``../shared/seeds/000_4d9fd4106af5dafd.txt``, FF_3.13/README.md, lines 63-73: "Custom 106-prompt
benchmark with strict TRUTH-list scoring", per category: arithmetic, open-ended, person, science, geography, format
compliance; line 199: greedy decoding) publishes neither the matching rule nor the 106 prompts.
``../shared/notes/seeds-code.md`` (§1.1 Evaluation, lines 111-115; §3.4) fixes the rule this module implements:
*each item carries a list of accepted answers (aliases); a response scores iff, after normalisation, it contains or
equals one of them, optionally with a FALSE list that vetoes*.

Exactly, in :func:`truth_match`:

* normalisation (:func:`answer_tokens`): NFKC, case-folded, every run of letters/digits is a token, punctuation
  and whitespace separate tokens, the English articles ``a``/``an``/``the`` are dropped, and each CJK character is a
  token of its own (Chinese has no spaces);
* "contains or equals" is a contiguous run of tokens: ``"Paris"`` matches ``"It is Paris."`` but ``"4"`` does not
  match ``"42"``; an accepted answer that normalises to nothing is ignored;
* the first accepted answer (file order) the response contains is the ``matched`` answer;
* a FALSE answer the response contains vetoes the item, unless it lies inside an accepted answer the response also
  contains (``"not in Paris"`` accepted, ``"in Paris"`` false: a response saying ``"not in Paris"`` is not vetoed).

Inputs (one benchmark row, ``truth_list``, two splits):

* ``validation``: TruthfulQA's CSV (``mcq_truthfulqa/TruthfulQA.csv``): accepted = Best Answer, then Correct Answers
  split on ``;``; FALSE = Incorrect Answers split on ``;`` — both through the surgical builder's
  :func:`~shardsmith.builders.surgical.usable_correct` / ``usable_incorrect`` (TruthfulQA's "I have no comment"
  non-answer is not accepted, except on the 9 rows where it is the only correct answer (questions about fiction);
  an incorrect answer that also appears among the correct ones is not FALSE). Prompt:
  ``Q: {question}\\nA:`` (the MC1 prompt of this package); category: the CSV's Category.
* ``custom``: JSON lines under ``truth_list/`` of the benchmark folder, one item per line:
  ``{"prompt": str, "accepted": [str, ...], "rejected": [str, ...]?, "id": str?, "category": str?}``; the prompt
  is used as written.

Generation stops at the first newline: every accepted answer is one line (TruthfulQA's are short; FF's Block B asks
for answers under 100 characters), and a model that goes on to invent the next ``Q:`` must not score on it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from shardsmith.builders.importers import _RecordDrop
from shardsmith.builders.mcq import iter_mcq_file
from shardsmith.builders.surgical import truthful_row, usable_correct, usable_incorrect

from . import jsonl

STOP = ("\n",)
ARTICLES = frozenset({"a", "an", "the"})
_WORD = re.compile(r"[^\W_]+")
_CJK = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af])")


class TruthListError(ValueError):
    """A TRUTH-list file that cannot be read; the message names the file, the line and the field."""


@dataclass(frozen=True)
class TruthItem:
    id: str
    prompt: str
    accepted: tuple[str, ...]
    rejected: tuple[str, ...] = ()
    category: str | None = None


# --- the rule -----------------------------------------------------------------------------------------------------
def answer_tokens(text: str) -> tuple[str, ...]:
    """The normalised token sequence of an answer or a response (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    tokens = []
    for word in _WORD.findall(text):
        tokens += [t for t in _CJK.split(word) if t]
    return tuple(t for t in tokens if t not in ARTICLES)


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


@dataclass(frozen=True)
class TruthVerdict:
    correct: bool
    matched: str | None  # the first accepted answer the response contains
    vetoed_by: str | None  # the FALSE answer that vetoed it


def truth_match(response: str, accepted: list[str] | tuple[str, ...],
                rejected: list[str] | tuple[str, ...] = ()) -> TruthVerdict:
    """Score one response by the TRUTH-list rule of the module docstring."""
    said = answer_tokens(response)
    hits = [(a, answer_tokens(a)) for a in accepted if _contains(said, answer_tokens(a))]
    veto = next((f for f in rejected if _contains(said, answer_tokens(f))
                 and not any(_contains(tokens, answer_tokens(f)) for _, tokens in hits)), None)
    matched = hits[0][0] if hits else None
    return TruthVerdict(matched is not None and veto is None, matched, veto)


# --- reading ------------------------------------------------------------------------------------------------------
def qa_prompt(question: str) -> str:
    return f"Q: {question.strip()}\nA:"


def read_truth_items(path: Path, source: str) -> list[TruthItem]:
    """The items of one file: TruthfulQA's CSV, or TRUTH-list JSON lines (see the module docstring)."""
    return _read_truthfulqa(path, source) if path.name.lower().endswith(".csv") else _read_jsonl(path)


TRUTHFULQA_COLUMNS = ("Question", "Best Answer", "Correct Answers", "Incorrect Answers")


def _read_truthfulqa(path: Path, source: str) -> list[TruthItem]:
    items = []
    for i, rec in iter_mcq_file(path, shape="truthfulqa"):
        if isinstance(rec, _RecordDrop):
            raise TruthListError(f"{path}: {rec.detail}")
        missing = [c for c in TRUTHFULQA_COLUMNS if c not in rec]
        if missing:
            raise TruthListError(f"{path}: row {i + 1}: no field '{missing[0]}' (TruthfulQA's columns: "
                                 f"{', '.join(TRUTHFULQA_COLUMNS)})")
        try:
            row = truthful_row(rec, source=source, rec_id=f"{source}/{i}")
        except _RecordDrop as err:  # NotRewritable and the importer's field errors
            raise TruthListError(f"{path}: row {i + 1}: {err.detail}") from None
        accepted = usable_correct(row) or [row.best_answer]  # 9 fiction rows: "I have no comment" is the answer
        items.append(TruthItem(row.id, qa_prompt(row.question), tuple(accepted), tuple(usable_incorrect(row)),
                               row.category))
    return items


def _string_list(value, where: str, field: str, required: bool) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value) or \
            (required and not any(x.strip() for x in value)):
        raise TruthListError(f"{where}: field '{field}' must be a list of strings"
                             + (" holding at least one answer" if required else ""))
    return tuple(x for x in value if x.strip())


def _read_jsonl(path: Path) -> list[TruthItem]:
    items = []
    for i, where, rec in jsonl.records(path, TruthListError):
        if not isinstance(rec, dict):
            raise TruthListError(f"{where}: expected an object {{prompt, accepted, rejected?, id?, category?}}")
        unknown = sorted(set(rec) - {"prompt", "accepted", "rejected", "id", "category"})
        if unknown:
            raise TruthListError(f"{where}: unknown field '{unknown[0]}' (fields: prompt, accepted, rejected, id, "
                                 "category)")
        if not isinstance(rec.get("prompt"), str) or not rec["prompt"].strip():
            raise TruthListError(f"{where}: field 'prompt' must be a non-empty string")
        if rec.get("category") is not None and not isinstance(rec["category"], str):
            raise TruthListError(f"{where}: field 'category' must be a string")
        items.append(TruthItem(str(rec.get("id", f"{path.stem}/{i}")), rec["prompt"],
                               _string_list(rec.get("accepted"), where, "accepted", True),
                               _string_list(rec.get("rejected"), where, "rejected", False),
                               rec.get("category")))
    return items


__all__ = ["STOP", "TruthItem", "TruthListError", "TruthVerdict", "answer_tokens", "qa_prompt",
           "read_truth_items", "truth_match"]
