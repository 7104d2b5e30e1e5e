"""Surgical rewrites (FF_3.13 stage 6): structured records -> prompts whose targets are in a strict answer form.

FF_3.13's stage 6 trained on 3,000 items of output discipline: yes/no answers, single-letter MCQ, exact-N lists and
numeric-only answers.  Each rewriter here takes a record the importers already produce and returns a
:class:`Conversation` whose user turn is the question plus the form's instruction and whose assistant turn is the
strict target, with ``metadata = {"form": name, "spec": {...}, "expected": ...}`` — exactly what
:func:`shardsmith.schemas.answer_forms.score_item` reads back to score a generation.

===================  =================  =======================================================================
record (shape)       form               target / expected
===================  =================  =======================================================================
McqQuestion (any     single_letter      the answer letter; letters = the question's own option letters
MCQ shape but
truthfulqa)
CotExample (gsm8k,   numeric_only       the final answer as plain digits (``1,200`` -> ``1200``)
any CoT shape)
TruthfulRow          yes_no             (question, a correct answer) -> Yes, or (question, a seeded incorrect
(truthfulqa)                            answer) -> No: the source's ``answer`` says which
TruthfulRow          exact_n_list       ``n`` distinct correct answers (best answer first); expected = every
(truthfulqa)                            usable correct answer, so a generation listing other true ones passes
===================  =================  =======================================================================

A block of these is ``kind: surgical`` (``builders/kinds.py``): each source reads one shape, names its ``form`` and
spec, and :func:`rewrite` is the conversion step of its ShapeSet. Every target is checked by its own form's checker
before it is returned; a target that fails is a bug in this module and raises :class:`TargetBug`.  A record that
cannot be rewritten (no numeric answer, too few correct answers, answer letter not among the options ...) raises
:class:`NotRewritable` with a short ``reason`` key — an importer drop, counted per reason in the block's manifest.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict

from shardsmith.schemas.answer_forms import (
    ExactNListSpec,
    FormError,
    FormSpec,
    NumericOnlySpec,
    SingleLetterSpec,
    YesNoSpec,
    normalise_item,
    parse_number,
    parse_spec,
    plain_number,
    spec_dict,
    yes_no_word,
)
from shardsmith.schemas.records import Conversation, CotExample, McqQuestion, Message

from . import cot, mcq
from .importers import FormatRule

NO_COMMENT = frozenset({"i have no comment", "no comment"})
"""TruthfulQA's non-answer: 'correct' under its scoring, but not an answer to list or to call correct."""


class TruthfulRow(BaseModel):
    """A TruthfulQA-style row: a question, its best answer, and lists of correct and incorrect answers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str
    best_answer: str
    correct_answers: list[str]
    incorrect_answers: list[str]
    category: str | None = None
    source: str
    id: str


class NotRewritable(FormatRule):
    """A record this form cannot use; ``reason`` is the short key the block counts the drop under."""


class TargetBug(RuntimeError):
    """A target this module wrote fails its own form's checker (never expected; always a bug)."""


# --- which records a form reads -----------------------------------------------------------------------------------
FORM_READS = {"single_letter": "mcq", "numeric_only": "cot", "yes_no": "truthfulqa", "exact_n_list": "truthfulqa"}
"""The record each form rewrites: an MCQ question, a CoT example, or a TruthfulQA row (its answer lists)."""


def record_kind(shape: str) -> str:
    """``truthfulqa``, ``mcq`` or ``cot``: what a source of ``shape`` yields; ValueError for another shape."""
    if shape in mcq.MCQ_ALIASES or shape in mcq.MCQ_SHAPES:
        return "truthfulqa" if mcq.canonical_mcq_shape(shape) == "truthfulqa" else "mcq"
    if shape in cot.COT_ALIASES or shape in cot.COT_SHAPES:
        return "cot"
    raise ValueError(f"shape {shape!r} is neither an MCQ shape ({', '.join(mcq.MCQ_SHAPES)}) nor a CoT shape "
                     f"({', '.join(cot.COT_SHAPES)})")


def check_form_shape(form: str, shape: str) -> None:
    """ValueError unless a source of ``shape`` yields the records ``form`` rewrites (message names both)."""
    got, want = record_kind(shape), FORM_READS[form]
    if got != want:
        shapes = {"mcq": "an MCQ shape other than truthfulqa", "cot": "a CoT shape (gsm8k, ...)",
                  "truthfulqa": "shape truthfulqa"}
        raise ValueError(f"form {form} rewrites {want} records ({shapes[want]}); shape {shape!r} gives {got} records")


def truthful_row(record: dict, *, source: str, rec_id: str) -> TruthfulRow:
    """A raw TruthfulQA CSV row (as ``mcq.iter_mcq_file`` reads it) -> :class:`TruthfulRow`."""
    lists = mcq.truthfulqa_lists(record)
    if not lists["question"].strip():
        raise NotRewritable("malformed_row", "field 'Question' is empty")
    return TruthfulRow(question=lists["question"].strip(), best_answer=lists["best_answer"],
                       correct_answers=lists["correct_answers"], incorrect_answers=lists["incorrect_answers"],
                       category=lists["category"] or None, source=source, id=rec_id)


# --- one item -----------------------------------------------------------------------------------------------------
def form_item(body: str, spec: FormSpec, expected: Any, *, target_value: Any = None, source: str,
              id: str) -> Conversation:
    """The one place an item is assembled: prompt = ``body`` + blank line + instruction; target = the spec's strict
    rendering of ``target_value`` (defaults to ``expected``), verified against ``expected`` by the same checker the
    evaluation uses."""
    target = spec.target(expected if target_value is None else target_value)
    verdict = spec.check(target, expected)
    if not verdict.ok:
        raise TargetBug(f"{source}/{id}: {spec.name} target {target!r} fails its checker: {verdict.why}")
    prompt = f"{body.strip()}\n\n{spec.instruction()}"
    return Conversation(messages=[Message(role="user", content=prompt), Message(role="assistant", content=target)],
                        source=source, id=id,
                        metadata={"form": spec.name, "spec": spec_dict(spec), "expected": expected})


# --- MCQ -> single letter -----------------------------------------------------------------------------------------
def mcq_single_letter(q: McqQuestion, spec: SingleLetterSpec | None = None) -> Conversation:
    """Question and lettered options; target = the answer letter. The allowed letters are the question's own
    (``spec.letters`` is replaced by them); the rest of ``spec`` (``case``) is kept."""
    if q.answer not in q.options:
        raise NotRewritable("answer_not_an_option", f"{q.id}: answer {q.answer!r} not in {list(q.options)}")
    if any(not text.strip() for text in q.options.values()):
        raise NotRewritable("empty_option", f"{q.id}: an option is empty")
    try:
        spec = parse_spec("single_letter", {**spec_dict(spec or SingleLetterSpec()), "letters": list(q.options)})
    except FormError as err:
        raise NotRewritable("bad_option_letters", f"{q.id}: {list(q.options)}") from err
    options = "\n".join(f"{letter}. {text.strip()}" for letter, text in q.options.items())
    return form_item(f"{q.question.strip()}\n{options}", spec, q.answer, source=q.source,
                     id=f"{q.id}:single_letter")


# --- CoT (GSM8K) -> numeric only ----------------------------------------------------------------------------------
def cot_numeric(ex: CotExample, spec: NumericOnlySpec | None = None) -> Conversation:
    """The question alone; target = the final answer as plain digits. The rationale is not used: the point of
    this form is answering with the number only."""
    spec = spec or NumericOnlySpec()
    try:
        expected = plain_number(parse_number(ex.answer))
    except ValueError as err:
        raise NotRewritable("answer_not_numeric", f"{ex.id}: {ex.answer!r}") from err
    if not spec.check(expected).ok:
        raise NotRewritable("answer_outside_spec", f"{ex.id}: {expected} under {spec_dict(spec)}")
    return form_item(ex.question, spec, expected, source=ex.source, id=f"{ex.id}:numeric_only")


# --- TruthfulQA rows -> yes/no and exact-N lists ------------------------------------------------------------------
def _distinct(answers: Iterable[str]) -> list[str]:
    """Usable answers: one line, whitespace collapsed, non-answers and repeats (after normalisation) removed."""
    seen: set[str] = set()
    out = []
    for answer in answers:
        text = " ".join(answer.split())
        key = normalise_item(text)
        if text and key not in NO_COMMENT and key not in seen:
            seen.add(key)
            out.append(text)
    return out


def usable_correct(row: TruthfulRow) -> list[str]:
    """Correct answers a target may state, best answer first."""
    return _distinct([row.best_answer, *row.correct_answers])


def usable_incorrect(row: TruthfulRow) -> list[str]:
    """Incorrect answers that do not also appear among the correct ones (the CSV has a few such overlaps)."""
    correct = {normalise_item(x) for x in row.correct_answers + [row.best_answer]}
    return [x for x in _distinct(row.incorrect_answers) if normalise_item(x) not in correct]


def _rng(seed: int, *key: str) -> random.Random:
    """A per-record generator: the same seed and record give the same choice, whatever else is in the batch."""
    return random.Random(":".join([str(seed), *key]))


def truthful_yes_no(row: TruthfulRow, answer: str | bool, seed: int = 0, spec: YesNoSpec | None = None
                    ) -> Conversation:
    """``answer`` Yes: the best usable correct answer is proposed; No: a seeded usable incorrect one. A block gets
    its Yes/No balance from two sources with equal counts (``SurgicalBlockRecipe`` checks it)."""
    spec = spec or YesNoSpec()
    verdict = yes_no_word(answer)
    pool = usable_correct(row) if verdict == "Yes" else usable_incorrect(row)
    if not pool:
        raise NotRewritable("no_correct_answer" if verdict == "Yes" else "no_incorrect_answer", row.id)
    proposed = pool[0] if verdict == "Yes" else _rng(seed, row.id, "yes_no").choice(pool)
    return form_item(f"Question: {row.question.strip()}\nProposed answer: {proposed}\n"
                     "Is the proposed answer correct?", spec, verdict, source=row.source,
                     id=f"{row.id}:yes_no:{verdict.lower()}")


def truthful_exact_n_list(row: TruthfulRow, spec: ExactNListSpec, seed: int = 0) -> Conversation:
    """List exactly ``spec.n`` different correct answers: the best one plus ``n - 1`` seeded others."""
    n, correct = spec.n, usable_correct(row)
    if len(correct) < n:
        raise NotRewritable("too_few_answers", f"{row.id}: {len(correct)} usable correct answers, n={n}")
    items = [correct[0], *_rng(seed, row.id, "exact_n_list", str(n)).sample(correct[1:], n - 1)]
    body = f"{row.question.strip()}\nGive {n} different correct answers."
    return form_item(body, spec, correct, target_value=items, source=row.source, id=f"{row.id}:exact_n_list:{n}")


# --- the conversion step of a surgical source ---------------------------------------------------------------------
REWRITERS: dict[str, Callable[[Any, FormSpec, str | None, int], Conversation]] = {
    "single_letter": lambda q, spec, answer, seed: mcq_single_letter(q, spec),
    "numeric_only": lambda ex, spec, answer, seed: cot_numeric(ex, spec),
    "yes_no": lambda row, spec, answer, seed: truthful_yes_no(row, answer, seed, spec),
    "exact_n_list": lambda row, spec, answer, seed: truthful_exact_n_list(row, spec, seed),
}


def source_options(form: str, spec: dict | FormSpec | None, answer: str | None, seed: int, shape: str) -> dict:
    """A surgical source's converter options (``{form, spec, answer, seed}``, spec parsed); ValueError when the
    shape cannot feed the form or the spec does not validate (the recipe model checked ``answer``)."""
    check_form_shape(form, shape)
    return {"form": form, "spec": parse_spec(form, spec), "answer": answer, "seed": seed}


def rewrite(record: McqQuestion | CotExample | TruthfulRow, options: dict) -> Conversation:
    """One record -> its strict-form item under a source's :func:`source_options`."""
    return REWRITERS[options["form"]](record, options["spec"], options["answer"], options["seed"])


def records_of(record: dict, shape: str, *, source: str, rec_id: str) -> list[McqQuestion | CotExample | TruthfulRow]:
    """A raw record of a surgical source -> the records its form reads (none for a repeated OLMES request)."""
    kind = record_kind(shape)
    if kind == "truthfulqa":
        return [truthful_row(record, source=source, rec_id=rec_id)]
    if kind == "mcq":
        return mcq.convert_question(record, shape, source=source, rec_id=rec_id)
    return cot.convert_cot_example(record, shape, source=source, rec_id=rec_id)
