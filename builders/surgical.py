"""Surgical rewrites (FF_3.13 stage 6): structured records -> prompts whose targets are in a strict answer form.

FF_3.13's stage 6 trained on 3,000 items of output discipline: yes/no answers, single-letter MCQ, exact-N lists and
numeric-only answers.  Each rewriter here takes a record the importers already produce and returns a
:class:`Conversation` whose user turn is the question plus the form's instruction and whose assistant turn is the
strict target, with ``metadata = {"form": name, "spec": {...}, "expected": ...}`` — exactly what
:func:`shardsmith.schemas.answer_forms.score_item` reads back to score a generation.

===================  =================  =======================================================================
record               form               target / expected
===================  =================  =======================================================================
McqQuestion          single_letter      the answer letter; letters = the question's option letters
CotExample (GSM8K)   numeric_only       the final answer as plain digits (``1,200`` -> ``1200``)
TruthfulRow          yes_no             two items per row: (question, a correct answer) -> Yes and
                                        (question, an incorrect answer) -> No, so the pool is balanced
TruthfulRow          exact_n_list       ``n`` distinct correct answers (best answer first); expected = every
                                        usable correct answer, so a generation listing other true ones passes
===================  =================  =======================================================================

:func:`read_truthfulqa` reads TruthfulQA.csv into :class:`TruthfulRow` (no other importer produces that shape).
Every target is checked by its own form's checker before it is returned; a target that fails is a bug in this
module and raises :class:`TargetBug`.  A record that cannot be rewritten (no numeric answer, too few correct
answers, answer letter not among the options ...) raises :class:`NotRewritable` with a short ``reason`` key;
:func:`build_pools` counts those per form.  :func:`plan_surgical` then picks exactly the requested count per form
or fails naming each short form and by how much.
"""

from __future__ import annotations

import csv
import os
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from shardsmith.schemas.answer_forms import (
    FORMS,
    ExactNListSpec,
    FormSpec,
    NumericOnlySpec,
    SingleLetterSpec,
    YesNoSpec,
    normalise_item,
    parse_number,
    plain_number,
    spec_dict,
)
from shardsmith.schemas.records import Conversation, CotExample, McqQuestion, Message

FF_SURGICAL_TOTAL = 3000
"""FF_3.13 stage 6 size (model card). The card does not give the split over the four forms."""

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


TRUTHFULQA_COLUMNS = ("Question", "Best Answer", "Correct Answers", "Incorrect Answers")


def _answers(cell: str | None) -> list[str]:
    """TruthfulQA packs answer lists into one cell, separated by "; "."""
    return [a.strip() for a in (cell or "").split(";") if a.strip()]


def read_truthfulqa(path: str | os.PathLike, source: str = "truthfulqa") -> Iterator[TruthfulRow]:
    """Rows of TruthfulQA.csv (``Type, Category, Question, Best Answer, Correct Answers, Incorrect Answers,
    Source``); ids are ``<file>:<row index>``. A missing column or an empty question / best answer raises
    ValueError naming the file, the CSV line and the field."""
    path = os.fspath(path)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in TRUTHFULQA_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: not a TruthfulQA CSV, missing column(s) {missing}")
        for index, row in enumerate(reader):
            for field in ("Question", "Best Answer"):
                if not (row.get(field) or "").strip():
                    raise ValueError(f"{path}:{reader.line_num}: empty {field!r}")
            yield TruthfulRow(question=row["Question"].strip(), best_answer=row["Best Answer"].strip(),
                              correct_answers=_answers(row["Correct Answers"]),
                              incorrect_answers=_answers(row["Incorrect Answers"]),
                              category=row.get("Category") or None, source=source,
                              id=f"{os.path.basename(path)}:{index}")


class NotRewritable(ValueError):
    """A record this form cannot use; ``reason`` is a short key counted by :func:`build_pools`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class TargetBug(RuntimeError):
    """A target this module wrote fails its own form's checker (never expected; always a bug)."""


class SurgicalShortfall(ValueError):
    """Some form's pool holds fewer usable items than the plan asks for."""


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
def mcq_single_letter(q: McqQuestion, case: str = "exact") -> Conversation:
    """Question and lettered options; target = the answer letter, allowed letters = the question's own."""
    if q.answer not in q.options:
        raise NotRewritable("answer_not_an_option", f"{q.id}: answer {q.answer!r} not in {list(q.options)}")
    if any(not text.strip() for text in q.options.values()):
        raise NotRewritable("empty_option", f"{q.id}: an option is empty")
    try:
        spec = SingleLetterSpec(letters=tuple(q.options), case=case)
    except ValueError as err:
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


def truthful_yes_no(row: TruthfulRow, seed: int = 0, spec: YesNoSpec | None = None) -> list[Conversation]:
    """Two items, balanced by construction: the best usable correct answer -> Yes, a seeded incorrect one -> No."""
    spec = spec or YesNoSpec()
    correct, incorrect = usable_correct(row), usable_incorrect(row)
    if not correct:
        raise NotRewritable("no_correct_answer", row.id)
    if not incorrect:
        raise NotRewritable("no_incorrect_answer", row.id)
    wrong = _rng(seed, row.id, "yes_no").choice(incorrect)
    return [form_item(f"Question: {row.question.strip()}\nProposed answer: {answer}\n"
                      "Is the proposed answer correct?", spec, verdict, source=row.source,
                      id=f"{row.id}:yes_no:{verdict.lower()}")
            for answer, verdict in ((correct[0], "Yes"), (wrong, "No"))]


def truthful_exact_n_list(row: TruthfulRow, n: int, seed: int = 0, marker: str = "1.") -> Conversation:
    """List exactly ``n`` different correct answers: the best one plus ``n - 1`` seeded others."""
    correct = usable_correct(row)
    if len(correct) < n:
        raise NotRewritable("too_few_answers", f"{row.id}: {len(correct)} usable correct answers, n={n}")
    items = [correct[0], *_rng(seed, row.id, "exact_n_list", str(n)).sample(correct[1:], n - 1)]
    spec = ExactNListSpec(n=n, marker=marker)
    body = f"{row.question.strip()}\nGive {n} different correct answers."
    return form_item(body, spec, correct, target_value=items, source=row.source, id=f"{row.id}:exact_n_list:{n}")


# --- pools and the plan -------------------------------------------------------------------------------------------
def _collect(records: Iterable[Any], rewrite: Callable[[Any], Conversation | list[Conversation]],
             pool: list[Conversation], dropped: Counter) -> None:
    for record in records:
        try:
            made = rewrite(record)
        except NotRewritable as err:
            dropped[err.reason] += 1
            continue
        pool.extend(made if isinstance(made, list) else [made])


def build_pools(mcq: Iterable[McqQuestion] = (), cot: Iterable[CotExample] = (), truthful: Iterable[TruthfulRow] = (),
                *, list_sizes: Sequence[int] = (2, 3), list_marker: str = "1.", seed: int = 0,
                yes_no: YesNoSpec | None = None, numeric: NumericOnlySpec | None = None,
                ) -> tuple[dict[str, list[Conversation]], dict[str, Counter]]:
    """Every rewrite of every record, by form, and the records each form could not use (reason -> count).

    ``list_sizes``: one exact-N item per row for each N the row has enough correct answers for (TruthfulQA's 817
    rows give 711 with N=2 and 556 with N=3).
    """
    truthful = list(truthful)
    pools: dict[str, list[Conversation]] = {name: [] for name in FORMS}
    dropped: dict[str, Counter] = {name: Counter() for name in FORMS}
    _collect(mcq, mcq_single_letter, pools["single_letter"], dropped["single_letter"])
    _collect(cot, lambda ex: cot_numeric(ex, numeric), pools["numeric_only"], dropped["numeric_only"])
    _collect(truthful, lambda row: truthful_yes_no(row, seed, yes_no), pools["yes_no"], dropped["yes_no"])
    for n in list_sizes:
        _collect(truthful, lambda row, n=n: truthful_exact_n_list(row, n, seed, list_marker),
                 pools["exact_n_list"], dropped["exact_n_list"])
    return pools, dropped


def split_counts(total: int = FF_SURGICAL_TOTAL, forms: Sequence[str] = tuple(FORMS)) -> dict[str, int]:
    """An even split of ``total`` over ``forms`` (remainder to the first ones) — FF's own split is unpublished."""
    base, extra = divmod(total, len(forms))
    return {form: base + (i < extra) for i, form in enumerate(forms)}


def _strata(form: str, count: int, pool: list[Conversation]) -> list[tuple[str, int, list[Conversation]]]:
    """yes_no is drawn half Yes, half No (Yes gets the odd one); every other form is one stratum."""
    if form != "yes_no":
        return [(form, count, pool)]
    by_answer = {want: [c for c in pool if c.metadata["expected"] == want] for want in ("Yes", "No")}
    return [("yes_no (Yes targets)", count - count // 2, by_answer["Yes"]),
            ("yes_no (No targets)", count // 2, by_answer["No"])]


def _check_pool(form: str, pool: list[Conversation]) -> None:
    wrong = [c.id for c in pool if c.metadata.get("form") != form]
    if wrong:
        raise ValueError(f"pool {form!r} holds items of another form, e.g. {wrong[0]}")
    ids = Counter(c.id for c in pool)
    repeated = [i for i, k in ids.items() if k > 1]
    if repeated:
        raise ValueError(f"pool {form!r} repeats item id {repeated[0]!r}")


def plan_surgical(pools: Mapping[str, list[Conversation]], counts: Mapping[str, int], seed: int = 0
                  ) -> list[Conversation]:
    """Exactly ``counts[form]`` items of each form, drawn without replacement (seeded), in a seeded mixed order.

    Raises :class:`SurgicalShortfall` naming every form (yes_no: every Yes/No half) that has fewer items than asked
    and by how much; ValueError for an unknown form, a negative count, or a pool holding another form's items.
    """
    unknown = [form for form in counts if form not in FORMS]
    if unknown:
        raise ValueError(f"unknown answer form(s) {unknown}; known: {', '.join(FORMS)}")
    negative = [form for form, count in counts.items() if count < 0]
    if negative:
        raise ValueError(f"negative count for {negative}")
    picked, short = [], []
    for form, count in counts.items():
        pool = list(pools.get(form, []))
        _check_pool(form, pool)
        for label, want, stratum in _strata(form, count, pool):
            if len(stratum) < want:
                short.append(f"{label}: {want} asked, {len(stratum)} available, short by {want - len(stratum)}")
            else:
                picked.extend(_rng(seed, label).sample(stratum, want))
    if short:
        raise SurgicalShortfall("surgical plan cannot be met: " + "; ".join(short))
    _rng(seed, "order").shuffle(picked)
    return picked
