"""Chain-of-thought importers and the TinyCoT format (Memphis-CoT): question -> rationale -> answer.

Every importer returns a :class:`CotExample` (question, rationale, short final answer); :func:`cot_conversation`
turns one into the :class:`Conversation` that the built-in ``tinycot`` template renders as::

    ### User:\\n{question}\\n\\n### Rationale:\\n{rationale}\\n\\n### Answer:\\n{answer}

(the user piece carries no loss; the rationale and the answer do). :func:`parse_tinycot` reads a generated response
back into (rationale, answer) for evaluation and self-teaching.

==========  ===============================================================  =====================================
shape       fields                                                           seen in
==========  ===============================================================  =====================================
gsm8k       question, answer (solution lines, then ``#### <final>``)         openai/grade-school-math (also the
                                                                             Socratic variant)
aqua_rat    question, options ``["A)...", ...]``, rationale, correct         google-deepmind/AQuA (JSON lines)
flan_cot    question, answer, rationale (TSV rows, no header, in that order) google-research/FLAN v2 cot_data
==========  ===============================================================  =====================================

Multiple-choice answers (AQuA, FLAN's AQuA and QASC, whose answers are ``(C)``) are written as the option line the
question shows, ``(C) 1120`` (``options.mcq_answer: option``, the default) so that the answer both names the letter
a checker compares and states the value the rationale derived; ``mcq_answer: letter`` writes the bare letter ``C``.
Either way ``metadata.answer_letter`` holds the letter. The question shows its options the way FLAN's AQuA file
does: ``{question}\\nOptions:\\n(A) ...\\n(B) ...``.

Drops (counted by reason, like every importer's): ``no_rationale``, ``no_answer``, ``malformed_row`` (a TSV row
without exactly three fields, an option without its ``X)`` letter, a field that is not text),
``answer_not_in_options`` (the key names a letter the question does not offer) and ``answer_in_rationale_head``
(the rationale's first line announces an option letter before any reasoning: ``Answer = D. 130 miles``,
``the answer is D``, ``Correct Answer: (E)`` -- 37 rows of FLAN's AQuA file and 1 of AQuA-RAT dev; a CoT target
must reason first and answer last, and some of these heads even name a wrong letter).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shardsmith.schemas.records import Conversation, CotExample, Drop, McqQuestion, Message

from .importers import FormatRule, ShapeSet, _RecordDrop, import_records, iter_raw, iter_text_lines

COT_SHAPES = ("gsm8k", "aqua_rat", "flan_cot")
COT_ALIASES = {"aqua": "aqua_rat", "flan": "flan_cot", "gsm8k_socratic": "gsm8k"}
COT_REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "gsm8k": (("question", "answer"),),
    "aqua_rat": (("question", "options", "rationale", "correct"),),
    "flan_cot": (("question", "answer", "rationale"),),
}
TSV_FIELDS = ("question", "answer", "rationale")  # FLAN v2 cot_data/*.tsv column order (no header)
ANSWER_HEADER = "### Answer:"
TINYCOT = "tinycot"

_CALCULATOR = re.compile(r"<<[^<>]*>>")
_ESCAPED_NEWLINE = re.compile(r"\\{1,2}n")
_OPTION_LINE = re.compile(r"^(?:- )?\(([A-Z])\) ?(.*)$")  # FLAN: "(A) 300" (AQuA), "- (A) DNA" (QASC)
_AQUA_OPTION = re.compile(r"^([A-Z])\)\s*(.*)$", re.S)  # AQuA-RAT: "A)32400"
_LETTER_ANSWER = re.compile(r"^\(([A-Z])\)$")  # FLAN: "(C)"
_ANSWER_HEAD = re.compile(
    r"^(?:(?i:the\s+)?(?i:correct\s+)?(?i:answer|ans|option)\s*(?i:is|=|:|-)?\s*\(?[A-Z]\)?(?=[\s.,:;=)]|$)"
    r"|\(?[A-Z]\)\s)"
)


# ----------------------------------------------------------------------------------------------------------------
# field helpers


def _field(record: dict, name: str) -> str:
    """A text field, stripped; a non-text value is a malformed row (counted), not a crash."""
    value = record.get(name)
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _RecordDrop("malformed_row", f"field '{name}' holds {type(value).__name__}, expected text")
    return value.strip()


def _require(question: str, rationale: str, answer: str) -> None:
    if not question:
        raise _RecordDrop("malformed_row", "empty question")
    if not rationale:
        raise _RecordDrop("no_rationale", "the rationale is empty")
    if not answer:
        raise _RecordDrop("no_answer", "the final answer is empty")


def _check_rationale_head(rationale: str) -> None:
    head = rationale.lstrip().split("\n", 1)[0]
    if _ANSWER_HEAD.match(head):
        raise FormatRule("answer_in_rationale_head", f"the rationale opens with the answer: {head[:60]!r}")


def _mcq_answer(letter: str, options: dict[str, str], style: str) -> str:
    """The answer of a multiple-choice question: the displayed option line, or the bare letter."""
    if letter not in options:
        raise _RecordDrop("answer_not_in_options", f"answer '{letter}' is not among options {', '.join(options)}")
    if style == "letter":
        return letter
    if style != "option":
        raise ValueError(f"options.mcq_answer must be 'option' or 'letter', not '{style}'")
    return f"({letter}) {options[letter]}".rstrip()


def _options_block(options: dict[str, str]) -> str:
    return "Options:\n" + "\n".join(f"({k}) {v}".rstrip() for k, v in options.items())


# ----------------------------------------------------------------------------------------------------------------
# importers: one raw record -> CotExample (raise _RecordDrop to drop it with a reason)


def strip_calculator_annotations(text: str) -> str:
    """Remove GSM8K's calculator annotations: ``48/2 = <<48/2=24>>24`` -> ``48/2 = 24``.

    Why: the ``<<expr=result>>`` spans are markup for the calculator tool the GSM8K authors used at sampling time
    (they tell a calculator to compute ``expr`` and insert ``result``); the sentence already states the result
    right after the ``>>``. Kept, they would teach a model to emit a tool syntax that nothing executes at inference,
    and they double every computed number; removed, the rationale reads as the plain worked solution.
    """
    return _CALCULATOR.sub("", text)


def gsm8k_example(record: dict, *, source: str, rec_id: str, options: dict | None = None) -> CotExample:
    """GSM8K ``{question, answer}``: the answer is the solution lines, then ``#### <final>`` on the last line.

    rationale = the solution lines without calculator annotations; answer = the ``####`` value with its thousands
    commas removed (``#### 1,000`` -> ``1000``), i.e. the number as GSM8K's own answer key compares it.
    """
    question, solution = _field(record, "question"), _field(record, "answer")
    head, marker, final = solution.rpartition("####")
    if not marker:
        raise _RecordDrop("no_answer", "the solution has no '#### <answer>' line")
    rationale = strip_calculator_annotations(head).strip()
    answer = final.strip().replace(",", "")
    _require(question, rationale, answer)
    return CotExample(question=question, rationale=rationale, answer=answer, source=source, id=rec_id)


def _aqua_options(raw: Any) -> dict[str, str]:
    if not isinstance(raw, list) or not raw:
        raise _RecordDrop("malformed_row", f"'options' must be a non-empty list, found {type(raw).__name__}")
    options: dict[str, str] = {}
    for i, opt in enumerate(raw):
        m = _AQUA_OPTION.match(opt.strip()) if isinstance(opt, str) else None
        if m is None:
            raise _RecordDrop("malformed_row", f"options[{i}] = {opt!r} does not start with a letter and ')'")
        options[m.group(1)] = m.group(2).strip()
    return options


def aqua_rat_example(record: dict, *, source: str, rec_id: str, options: dict | None = None) -> CotExample:
    """AQuA-RAT ``{question, options, rationale, correct}``; the question is shown with its options (FLAN layout)."""
    choices = _aqua_options(record.get("options"))
    question, rationale = _field(record, "question"), _field(record, "rationale")
    letter = _field(record, "correct").upper()
    _require(question, rationale, letter)
    _check_rationale_head(rationale)
    answer = _mcq_answer(letter, choices, (options or {}).get("mcq_answer", "option"))
    return CotExample(question=f"{question}\n{_options_block(choices)}", rationale=rationale, answer=answer,
                      source=source, id=rec_id, metadata={"answer_letter": letter})


def unescape_flan(text: str) -> str:
    r"""FLAN's TSV files write each line break as the two characters ``\n`` (a few AQuA rows as ``\\n``)."""
    return _ESCAPED_NEWLINE.sub("\n", text)


def question_options(question: str) -> dict[str, str]:
    """The lettered options a FLAN question lists after its ``Options:`` line (``(A) 300`` or ``- (A) DNA``)."""
    _, marker, tail = question.rpartition("Options:")
    if not marker:
        return {}
    found = (_OPTION_LINE.match(line.strip()) for line in tail.split("\n"))
    return {m.group(1): m.group(2).strip() for m in found if m}


def flan_cot_example(record: dict, *, source: str, rec_id: str, options: dict | None = None) -> CotExample:
    """FLAN v2 CoT ``question \\t answer \\t rationale``; answers ``(C)`` become option answers like AQuA's."""
    question, answer, rationale = (unescape_flan(_field(record, f)).strip() for f in TSV_FIELDS)
    _require(question, rationale, answer)
    meta: dict[str, Any] = {}
    letter = _LETTER_ANSWER.match(answer)
    if letter:
        _check_rationale_head(rationale)
        meta["answer_letter"] = letter.group(1)
        answer = _mcq_answer(letter.group(1), question_options(question), (options or {}).get("mcq_answer", "option"))
    return CotExample(question=question, rationale=rationale, answer=answer, source=source, id=rec_id, metadata=meta)


def mcq_cot_example(q: McqQuestion, *, mcq_answer: str = "option") -> CotExample:
    """An MCQ with a worked explanation (C-Eval, WanJuan ``answer_detail``) as a CoT example, options shown like
    AQuA's; a question without an explanation is a ``no_rationale`` drop."""
    rationale = (q.explanation or "").strip()
    _require(q.question.strip(), rationale, q.answer)
    _check_rationale_head(rationale)
    return CotExample(question=f"{q.question.strip()}\n{_options_block(q.options)}", rationale=rationale,
                      answer=_mcq_answer(q.answer, q.options, mcq_answer), source=q.source, id=q.id,
                      metadata={"answer_letter": q.answer})


COT_IMPORTERS = {"gsm8k": gsm8k_example, "aqua_rat": aqua_rat_example, "flan_cot": flan_cot_example}


# ----------------------------------------------------------------------------------------------------------------
# TinyCoT rendering and parsing


ANSWER_FORMATS = {
    "tinycot": "{rationale}\n\n" + ANSWER_HEADER + "\n{answer}",  # the template's assistant piece adds ### Rationale:
    "answer_line": "{rationale}\nAnswer: {answer}",  # chat templates with no rationale header (FF repair Block D)
}


def cot_conversation(ex: CotExample, answer_format: str = TINYCOT) -> Conversation:
    """The conversation the ``tinycot`` template renders as ``### User: / ### Rationale: / ### Answer:``.

    The assistant turn is ``{rationale}\\n\\n### Answer:\\n{answer}`` (the template's assistant piece supplies the
    ``### Rationale:`` header), so loss covers the rationale, the answer header and the answer. ``answer_line``
    writes ``{rationale}\\nAnswer: {answer}`` instead: the answer always comes after the rationale.
    """
    reply = ANSWER_FORMATS[answer_format].format(rationale=ex.rationale, answer=ex.answer)
    meta = {**ex.metadata, "answer": ex.answer, "format": answer_format}
    return Conversation(messages=[Message(role="user", content=ex.question), Message(role="assistant", content=reply)],
                        source=ex.source, id=ex.id, metadata=meta)


_HEADER_LINE = re.compile(r"(?m)^### ")
_ANSWER_LINE = re.compile(r"(?m)^### Answer:")
_RATIONALE_LINE = re.compile(r"(?m)^### Rationale:")


def parse_tinycot(text: str) -> tuple[str, str] | None:
    """(rationale, answer) from a TinyCoT response, or None when it lacks either (Memphis discards those).

    ``text`` is either the generated continuation of ``### Rationale:\\n`` or a whole rendered document (then
    everything up to the first ``### Rationale:`` line is skipped). The answer is what follows the first
    ``### Answer:`` line header, up to the next ``### `` block header (a model that goes on to write another turn);
    the rationale is what precedes it. Invalid: no ``### Answer:`` header at a line start, an empty rationale or
    answer, or a ``### `` block header inside the rationale.
    """
    rat = _RATIONALE_LINE.search(text)
    if rat:
        text = text[rat.end():]
    ans = _ANSWER_LINE.search(text)
    if ans is None:
        return None
    rationale, tail = text[: ans.start()].strip(), text[ans.end():]
    nxt = _HEADER_LINE.search(tail)
    answer = (tail[: nxt.start()] if nxt else tail).strip()
    if not rationale or not answer or _HEADER_LINE.search(rationale):
        return None
    return rationale, answer


# ----------------------------------------------------------------------------------------------------------------
# the importer machinery (builders.importers.import_records drives it)


def canonical_cot_shape(shape: str) -> str:
    shape = COT_ALIASES.get(shape, shape)
    if shape != "auto" and shape not in COT_SHAPES:
        raise ValueError(f"unknown CoT shape '{shape}' (known: auto, {', '.join(COT_SHAPES)}, "
                         f"aliases {sorted(COT_ALIASES)})")
    return shape


def detect_cot_shape(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    keys = set(record)
    if {"options", "correct", "rationale"} <= keys:
        return "aqua_rat"
    if {"question", "answer", "rationale"} <= keys:
        return "flan_cot"
    if {"question", "answer"} <= keys and "####" in str(record["answer"]):
        return "gsm8k"
    return None


def convert_cot_example(record: dict, shape: str, *, source: str, rec_id: str, options: dict | None = None,
                        label_field: str | None = None) -> list[CotExample]:
    """One raw record -> [CotExample]; raises _RecordDrop (counted) for a record without rationale or answer."""
    return [COT_IMPORTERS[shape](record, source=source, rec_id=rec_id, options=options)]


def convert_cot(record: dict, shape: str, *, source: str, rec_id: str, options: dict | None = None,
                label_field: str | None = None) -> list[Conversation]:
    """One raw record -> [Conversation] in TinyCoT form (``options.answer_format``: another answer layout)."""
    fmt = (options or {}).get("answer_format", TINYCOT)
    return [cot_conversation(ex, fmt) for ex in convert_cot_example(record, shape, source=source, rec_id=rec_id,
                                                                    options=options)]


COT_SHAPESET = ShapeSet("CoT", COT_SHAPES, COT_REQUIRED, detect_cot_shape, canonical_cot_shape, convert_cot)
COT_EXAMPLE_SHAPESET = ShapeSet("CoT", COT_SHAPES, COT_REQUIRED, detect_cot_shape, canonical_cot_shape,
                                convert_cot_example)


def iter_tsv(path: Path, fields: tuple[str, ...] = TSV_FIELDS) -> Iterator[tuple[int, Any]]:
    """(line index, {field: text}) for a header-less TSV; a bad line is yielded as a ``_RecordDrop``.

    FLAN's files quote nothing (a field may start with ``"``), so lines are split on tabs, not parsed as CSV.
    """
    with open(path, "rb") as fh:
        for i, text in iter_text_lines(fh):
            if isinstance(text, _RecordDrop):
                yield i, text
                continue
            cells = text.split("\t")
            if len(cells) != len(fields):
                yield i, _RecordDrop("malformed_row", f"line {i + 1}: {len(cells)} tab-separated fields, expected "
                                                      f"{len(fields)} ({', '.join(fields)})")
                continue
            yield i, dict(zip(fields, cells))


def iter_cot_file(path: str | os.PathLike, lazy: bool = False) -> Iterator[tuple[int, Any]]:
    """Raw records of one CoT file: ``.tsv`` by :func:`iter_tsv`, everything else by ``importers.iter_raw``."""
    path = Path(path)
    yield from iter_tsv(path) if path.name.lower().endswith(".tsv") else iter_raw(path, lazy)


def _import(path: str | os.PathLike, shapes: ShapeSet, *, source: str, shape: str, **kw) -> Iterator[Any]:
    path = Path(path)
    yield from import_records(iter_cot_file(path), where=str(path), source=source, shape=shape, shapes=shapes,
                              id_prefix=kw.pop("id_prefix", path.name), **kw)


def import_cot_file(path: str | os.PathLike, *, source: str, shape: str = "auto",
                    **kw) -> Iterator[Conversation | Drop]:
    """TinyCoT conversations and counted drops of one file (kwargs as ``importers.import_records``)."""
    yield from _import(path, COT_SHAPESET, source=source, shape=shape, **kw)


def read_cot_examples(path: str | os.PathLike, *, source: str, shape: str = "auto",
                      **kw) -> Iterator[CotExample | Drop]:
    """The structured examples (and drops) of one file, for evaluation and self-teaching (no format applied)."""
    yield from _import(path, COT_EXAMPLE_SHAPESET, source=source, shape=shape, **kw)


__all__ = [
    "COT_EXAMPLE_SHAPESET", "COT_IMPORTERS", "COT_SHAPES", "COT_SHAPESET", "aqua_rat_example", "cot_conversation",
    "flan_cot_example", "gsm8k_example", "import_cot_file", "iter_cot_file", "iter_tsv", "mcq_cot_example",
    "parse_tinycot", "question_options", "read_cot_examples", "strip_calculator_annotations", "unescape_flan",
]
