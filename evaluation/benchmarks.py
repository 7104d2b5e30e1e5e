"""Benchmarks: where their local files live, how their items are read, and the prompts each item is scored with.

Files are parsed by the builders' importers (``builders/mcq.py`` for MMLU in both CSV forms, CMMLU, C-Eval, ARC,
HellaSwag original and OLMES request form, TruthfulQA; ``builders/cot.py`` for GSM8K), so a file the SFT builders
read is read the same way here. A record the importer drops (answer out of range, empty option, ...) is an error:
an evaluation must not silently score fewer items than the file holds.

Prompt forms (one :class:`ChoiceForm` per way an item is scored; the few-shot examples use the same form):

* ``letter`` (MMLU, CMMLU, C-Eval, ARC): lm-evaluation-harness's MMLU prompt ``{question}\\nA. {a}\\nB. {b}...\\n
  Answer:`` (``答案：`` for the Chinese sets, as lm-eval's CMMLU), continuations `` A``, `` B`` ...; MMLU has lm-eval's
  description line ``The following are multiple choice questions (with answers) about {subject}.``
* ``text`` (the same sets, TruthfulQA MC1, HellaSwag): the cloze form ``Question: {question}\\nAnswer:`` (``问题：`` /
  ``答案：``; TruthfulQA ``Q: `` / ``A:``; HellaSwag the context alone) with each full option as the continuation.
  Its ``_norm`` metric divides each log-likelihood by the option's length in characters (lm-eval's ``acc_norm``).
* GSM8K: ``Question: {question}\\nAnswer:`` then greedy generation; the answer is the number after ``####``.
* ``truth_list`` (the FF TRUTH-list bench, ``truth_list.py``): ``Q: {question}\\nA:`` (TruthfulQA) or a file's own
  prompt, greedy generation to the end of the line, scored against the item's accepted and FALSE answers.
* ``surgical`` (format compliance, ``format_bench.py``): the surgical block's strict-form prompts as a user turn,
  greedy generation, scored by the form's checker from ``schemas/answer_forms.py``.

Few-shot examples: MMLU / CMMLU / C-Eval take the first K rows of the subject's ``dev`` file (lm-eval's
``first_n`` sampler); GSM8K the first K of ``train``; ARC, HellaSwag, TruthfulQA and the TRUTH list the first K
other items of the evaluated split (their only local split); the format bench takes none.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shardsmith.builders.cot import read_cot_examples
from shardsmith.builders.importers import ImportShapeError
from shardsmith.builders.mcq import expand_mcq_paths, import_questions
from shardsmith.schemas.records import CotExample, Drop, McqQuestion

from . import format_bench, truth_list
from .domains import CEVAL_DOMAINS, CMMLU_DOMAINS, CMMLU_EXTRA_DOMAINS, MMLU_DOMAINS

ENV_BENCHMARKS = "SHARDSMITH_BENCHMARKS"
FEWSHOT_DELIMITER = "\n\n"


class EvalError(ValueError):
    """Bad evaluation input (benchmark file, model folder, settings); the message names what and where."""


@dataclass(frozen=True)
class ChoiceForm:
    """One way of scoring a multiple-choice item: a context, and one continuation per option."""

    context: str
    continuations: list[str]
    options: list[str]  # the option strings whose lengths normalise (``acc_*_norm``)


@dataclass(frozen=True)
class EvalItem:
    """One benchmark item: ``forms`` for log-likelihood scoring, or ``prompt`` for generation (GSM8K, TRUTH list,
    format bench; ``chat``: the prompt is a user turn, wrapped in the model's chat template when it has one)."""

    bench: str
    id: str
    subject: str | None
    gold: Any  # option index; GSM8K's final number; {accepted, rejected}; {form, spec, expected}
    forms: dict[str, ChoiceForm] = field(default_factory=dict)
    prompt: str | None = None
    chat: bool = False


@dataclass(frozen=True)
class Labels:
    """The words of a benchmark's prompts (English or Chinese sets)."""

    question: str = "Question: "
    answer: str = "Answer:"


EN, ZH = Labels(), Labels("问题：", "答案：")


@dataclass(frozen=True)
class Benchmark:
    """A registry row. ``splits`` maps a split name to its file or folder under ``folder``; ``derived_splits`` maps a
    split name to a function ``(root, limit) -> records`` for splits built from other benchmarks' files (the format
    bench); ``fewshot_split`` is where few-shot examples come from (None: other items of the evaluated split).
    ``extra_domains``: groups that overlap the ``domains`` partition (CMMLU's China specific), reported beside it;
    ``group_label``: the results.json key of the per-subject rows (the format bench's subjects are its forms)."""

    name: str
    folder: str
    splits: dict[str, str]
    default_split: str
    kind: str  # a key of ITEM_BUILDERS
    primary: str  # the headline metric
    fewshot_split: str | None = None
    labels: Labels = EN
    domains: dict[str, tuple[str, ...]] | None = None
    description: str | None = None  # few-shot header; {subject} is filled with the subject's words
    extra_domains: dict[str, tuple[str, ...]] | None = None
    group_label: str = "subjects"
    derived_splits: dict[str, Callable] = field(default_factory=dict)


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("mmlu", "mcq_mmlu", {"test": "test", "dev": "dev"}, "test", "mcq", "acc_letter", "dev",
              domains=MMLU_DOMAINS,
              description="The following are multiple choice questions (with answers) about {subject}.\n\n"),
    Benchmark("cmmlu", "mcq_cmmlu", {"test": "test", "dev": "dev"}, "test", "mcq", "acc_letter", "dev", ZH,
              domains=CMMLU_DOMAINS, extra_domains=CMMLU_EXTRA_DOMAINS),
    Benchmark("ceval", "mcq_ceval", {"val": "val", "dev": "dev"}, "val", "mcq", "acc_letter", "dev", ZH,
              domains=CEVAL_DOMAINS),
    Benchmark("arc_easy", "mcq_arc", {"validation": "ARC-Easy/validation"}, "validation", "mcq", "acc_text"),
    Benchmark("arc_challenge", "mcq_arc", {"validation": "ARC-Challenge/validation"}, "validation", "mcq",
              "acc_text"),
    Benchmark("hellaswag", "mcq_hellaswag_olmes", {"validation": "."}, "validation", "continuation",
              "acc_text_norm"),
    Benchmark("truthfulqa", "mcq_truthfulqa", {"validation": "TruthfulQA.csv"}, "validation", "truthfulqa",
              "acc_text"),
    Benchmark("gsm8k", "mcq_gsm8k", {"test": "test.jsonl", "train": "train.jsonl"}, "test", "gsm8k",
              "exact_match", "train"),
    Benchmark("truth_list", ".", {"validation": "mcq_truthfulqa/TruthfulQA.csv", "custom": "truth_list"},
              "validation", "truth_list", "truth_match", group_label="categories"),
    Benchmark("surgical", ".", {"custom": "surgical"}, "validation", "surgical", "format_ok", group_label="forms",
              derived_splits={"validation": format_bench.default_items, "block": format_bench.block_items}),
)}


# ----------------------------------------------------------------------------------------------------------------
# locating and reading files


def benchmarks_root(data: str | os.PathLike | None) -> Path:
    """``--data``, else ``$SHARDSMITH_BENCHMARKS``: a folder holding ``mcq_*`` folders like ``../shared/data``.
    The variable may list several comma-separated entries (decontamination reads them all, hub names too); the
    evaluators read the first local folder among them."""
    entries = [r.strip() for r in os.environ.get(ENV_BENCHMARKS, "").split(",")]
    local = [r for r in entries if r and not r.startswith("hf:")]
    root = data or (local[0] if local else None)
    if not root:
        raise EvalError(f"no benchmark folder: pass --data DIR or set {ENV_BENCHMARKS} "
                        "(a folder holding mcq_mmlu/, ...)")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise EvalError(f"benchmark folder {root} does not exist")
    return root


def get_benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise EvalError(f"unknown benchmark '{name}' (known: {', '.join(BENCHMARKS)})")
    return BENCHMARKS[name]


def _check_split(bench: Benchmark, split: str) -> None:
    if split not in bench.splits and split not in bench.derived_splits:
        raise EvalError(f"{bench.name}: no split '{split}' (local splits: "
                        f"{', '.join([*bench.splits, *bench.derived_splits])})")


def split_files(bench: Benchmark, root: Path, split: str) -> list[Path]:
    """The data files of one split, sorted (metadata files beside Arrow data left out)."""
    _check_split(bench, split)
    where = root / bench.folder / bench.splits[split]
    if not where.exists():
        raise EvalError(f"{bench.name}: {where} does not exist (split '{split}' under {root})")
    try:
        return expand_mcq_paths([str(where)])
    except FileNotFoundError as err:
        raise EvalError(f"{bench.name}: {err}") from None


def _checked(records, path: Path) -> list:
    """The importer's records of one file; a Drop (answer out of range, empty option ...) or a shape error is an
    EvalError naming the file and the record."""
    out = []
    try:
        for rec in records:
            if isinstance(rec, Drop):
                raise EvalError(f"{rec.detail or path} ({rec.reason})")
            out.append(rec)
    except ImportShapeError as err:
        raise EvalError(str(err)) from None
    return out


def read_questions(bench: Benchmark, path: Path) -> list[McqQuestion]:
    return _checked(import_questions(path, source=bench.name), path)


def read_gsm8k(bench: Benchmark, path: Path) -> list[CotExample]:
    return _checked(read_cot_examples(path, source=bench.name, shape="gsm8k"), path)


def read_truth_list(bench: Benchmark, path: Path) -> list[truth_list.TruthItem]:
    try:
        return truth_list.read_truth_items(path, source=bench.name)
    except (truth_list.TruthListError, ImportShapeError) as err:
        raise EvalError(str(err)) from None


def read_form_items(bench: Benchmark, path: Path) -> list[format_bench.FormItem]:
    try:
        return format_bench.read_form_items(path)
    except (format_bench.FormBenchError, ImportShapeError) as err:
        raise EvalError(str(err)) from None


READERS: dict[str, Callable[[Benchmark, Path], list]] = {
    "mcq": read_questions, "continuation": read_questions, "truthfulqa": read_questions, "gsm8k": read_gsm8k,
    "truth_list": read_truth_list, "surgical": read_form_items}
"""How each benchmark kind reads one file of a split."""


# ----------------------------------------------------------------------------------------------------------------
# prompts


def _subject_words(subject: str | None) -> str:
    return (subject or "").replace("_", " ")


def letter_question(q: McqQuestion, labels: Labels) -> str:
    body = "".join(f"\n{letter}. {text}" for letter, text in q.options.items())
    return f"{q.question.strip()}{body}\n{labels.answer}"


def cloze_question(q: McqQuestion, labels: Labels) -> str:
    return f"{labels.question}{q.question.strip()}\n{labels.answer}"


def _with_shots(header: str, shots: list[str], question: str) -> str:
    return header + "".join(s + FEWSHOT_DELIMITER for s in shots) + question


def _gold(q: McqQuestion) -> int:
    return list(q.options).index(q.answer)


def _choice_form(context: str, options: list[str]) -> ChoiceForm:
    return ChoiceForm(context, [" " + o for o in options], options)


def mcq_item(bench: Benchmark, q: McqQuestion, shots: list[McqQuestion]) -> EvalItem:
    """MMLU-like item: the ``letter`` and ``text`` forms."""
    header = bench.description.format(subject=_subject_words(q.subject)) if bench.description else ""
    lab = bench.labels
    letter_shots = [f"{letter_question(s, lab)} {s.answer}" for s in shots]
    text_shots = [f"{cloze_question(s, lab)} {s.answer_text}" for s in shots]
    forms = {
        "letter": _choice_form(_with_shots(header, letter_shots, letter_question(q, lab)), list(q.options)),
        "text": _choice_form(_with_shots("", text_shots, cloze_question(q, lab)), list(q.options.values())),
    }
    return EvalItem(bench.name, q.id, q.subject, _gold(q), forms)


def continuation_item(bench: Benchmark, q: McqQuestion, shots: list[McqQuestion]) -> EvalItem:
    """HellaSwag: the context, then each ending (OLMES ``query`` is lm-eval's preprocessed ``query``)."""
    context = _with_shots("", [f"{s.question} {s.answer_text}" for s in shots], q.question)
    return EvalItem(bench.name, q.id, q.subject, _gold(q), {"text": _choice_form(context, list(q.options.values()))})


def truthfulqa_item(bench: Benchmark, q: McqQuestion, shots: list[McqQuestion]) -> EvalItem:
    """TruthfulQA MC1: ``Q: {question}\\nA:`` then each answer (best answer first, i.e. gold 0)."""
    context = _with_shots("", [f"Q: {s.question}\nA: {s.answer_text}" for s in shots], f"Q: {q.question}\nA:")
    return EvalItem(bench.name, q.id, q.subject, _gold(q), {"text": _choice_form(context, list(q.options.values()))})


def gsm8k_prompt(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def gsm8k_item(bench: Benchmark, ex: CotExample, shots: list[CotExample]) -> EvalItem:
    shot_text = [f"{gsm8k_prompt(s.question)} {s.rationale}\n#### {s.answer}" for s in shots]
    return EvalItem(bench.name, ex.id, None, ex.answer, prompt=_with_shots("", shot_text, gsm8k_prompt(ex.question)))


def truth_list_item(bench: Benchmark, t: truth_list.TruthItem, shots: list[truth_list.TruthItem]) -> EvalItem:
    """TRUTH list: the prompt (few-shot: other items' prompts, each followed by its first accepted answer)."""
    shot_text = [f"{s.prompt} {s.accepted[0]}" for s in shots]
    return EvalItem(bench.name, t.id, t.category, {"accepted": list(t.accepted), "rejected": list(t.rejected)},
                    prompt=_with_shots("", shot_text, t.prompt))


def surgical_item(bench: Benchmark, f: format_bench.FormItem, shots: list) -> EvalItem:
    """Format bench: the strict-form prompt (a user turn, or a block's templated prompt); no few-shot examples."""
    return EvalItem(bench.name, f.id, f.form, {"form": f.form, "spec": f.spec, "expected": f.expected},
                    prompt=f.prompt, chat=f.chat)


ITEM_BUILDERS: dict[str, Callable] = {"mcq": mcq_item, "continuation": continuation_item,
                                      "truthfulqa": truthfulqa_item, "gsm8k": gsm8k_item,
                                      "truth_list": truth_list_item, "surgical": surgical_item}


# ----------------------------------------------------------------------------------------------------------------
# items of a split


def _read(bench: Benchmark, path: Path) -> list:
    return READERS[bench.kind](bench, path)


def _split_records(bench: Benchmark, root: Path, split: str, limit: int | None) -> list[tuple[list, int | None]]:
    """(records, how many of them to score) per file of a split; a derived split is one list, already cut to
    ``limit`` per source file. The whole file stays available for same-split few-shot examples."""
    _check_split(bench, split)
    if split in bench.derived_splits:
        try:
            return [(bench.derived_splits[split](root, limit), None)]
        except (format_bench.FormBenchError, ImportShapeError, ValueError) as err:
            raise EvalError(f"{bench.name}: {err}") from None
    return [(_read(bench, path), limit) for path in split_files(bench, root, split)]


def _fewshot_pool(bench: Benchmark, root: Path, shots: int) -> dict[str | None, list] | None:
    """{subject: examples} from the few-shot split (GSM8K: one pool under None); None: use the evaluated split."""
    if shots == 0 or bench.fewshot_split is None:
        return None
    pool: dict[str | None, list] = {}
    for path in split_files(bench, root, bench.fewshot_split):
        for rec in _read(bench, path):
            pool.setdefault(getattr(rec, "subject", None), []).append(rec)
    return pool


def _shots_for(rec, shots: int, pool: dict | None, same_split: list) -> list:
    if shots == 0:
        return []
    if pool is not None:
        return pool.get(getattr(rec, "subject", None), [])[:shots]
    return [r for r in same_split if r.id != rec.id][:shots]


def load_items(name: str, *, data: str | os.PathLike | None = None, split: str | None = None, shots: int = 0,
               limit: int | None = None) -> list[EvalItem]:
    """Every item of one benchmark split, prompts built. ``limit``: at most that many items from each file
    (MMLU / CMMLU / C-Eval have one file per subject, so it is a per-subject limit, like lm-eval's ``--limit``)."""
    bench = get_benchmark(name)
    root = benchmarks_root(data)
    if shots < 0:
        raise EvalError(f"--shots must be >= 0, not {shots}")
    pool = _fewshot_pool(bench, root, shots)
    items: list[EvalItem] = []
    for records, cut in _split_records(bench, root, split or bench.default_split, limit):
        for rec in records[:cut]:
            items.append(ITEM_BUILDERS[bench.kind](bench, rec, _shots_for(rec, shots, pool, records)))
    if not items:
        raise EvalError(f"{name}: the split holds no items")
    return items
