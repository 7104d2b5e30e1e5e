"""The format-compliance bench (``surgical``): the surgical block's strict answer forms, scored by their checkers.

FF_3.13's card reports a "strict format-discipline bench (yes/no, exact-N, single-letter)" at 60 % (``../shared/
seeds/000_4d9fd4106af5dafd.txt`` line 221, and "format compliance 25 (15/25)" in its 106-bench, line 72;
``../shared/notes/seeds-code.md`` lines 116 and §3.4: rule-based checkers per item type, shared with the surgical
builder). Each item is a prompt in one form of ``schemas/answer_forms.py``; the model's
greedy generation is scored by :func:`~shardsmith.schemas.answer_forms.score` — the checker the surgical block's
targets must pass — for (a) ``format_ok``: the response is in the strict form, and (b) ``correct``: it is in the form
and the right answer (items without an ``expected`` answer count in (a) only). results.json has both per form.

Items (two splits):

* ``validation`` (default): the surgical builder's own rewriters (``builders/surgical.py``) over the local benchmark
  files, so prompts, specs and answer keys are exactly those a ``kind: surgical`` block writes: single_letter from
  MMLU test, numeric_only from GSM8K test, yes_no (a proposed correct answer -> Yes, a seeded incorrect one -> No)
  and exact_n_list (n = 3) from TruthfulQA. ``--limit`` applies per file and form. A record a form cannot use
  (TruthfulQA row with fewer than 3 usable correct answers, ...) is left out, as the block drops it.
* ``block``: a built ``kind: surgical`` block at ``surgical_block/`` of the benchmark folder (:func:`block_items`):
  its held-out documents, prompted exactly as the block trains (template included, decoded from its shards), scored
  against its ``reports/documents.jsonl`` answer key.
* ``custom``: JSON lines under ``surgical/`` of the benchmark folder, one item per line: ``{"prompt": str,
  "form": str, "spec": {...}?, "expected": ...?, "id": str?}``, or ``{"prompt": str, "metadata": {"form", "spec",
  "expected"}, "id": str?}`` — a built block's ``reports/documents.jsonl`` row (its answer key) with the prompt added.

Outside ``block``, the prompt is the user turn: a model folder whose tokenizer has a chat template gets it applied (with the generation
prompt); a base model gets the prompt and a newline. Few-shot examples do not apply (the instruction sentence states
the form). Generation stops at a blank line (an exact-N list is several lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shardsmith.builders import surgical
from shardsmith.builders.cot import read_cot_examples
from shardsmith.builders.importers import _RecordDrop, iter_raw
from shardsmith.builders.mcq import expand_mcq_paths, import_questions, iter_mcq_file
from shardsmith.schemas.answer_forms import FormError, parse_spec, score, spec_dict
from shardsmith.schemas.records import Drop

from . import jsonl

STOP = ("\n\n",)
SEED = 0


class FormBenchError(ValueError):
    """A format-bench file that cannot be read; the message names the file, the line and the field."""


@dataclass(frozen=True)
class FormItem:
    id: str
    prompt: str
    form: str
    spec: dict
    expected: Any = None
    chat: bool = True  # False: the prompt already holds the chat template (a built block's documents)


@dataclass(frozen=True)
class FormSource:
    """One default source: a benchmark file or folder under the benchmark root, read as ``shape``, rewritten into
    ``form`` with ``spec`` (and, for yes_no, the ``answer`` every item of the source gets)."""

    path: str
    shape: str
    form: str
    spec: dict | None = None
    answer: str | None = None


FORM_SOURCES = (
    FormSource("mcq_mmlu/test", "mmlu", "single_letter"),
    FormSource("mcq_gsm8k/test.jsonl", "gsm8k", "numeric_only"),
    FormSource("mcq_truthfulqa/TruthfulQA.csv", "truthfulqa", "yes_no", answer="Yes"),
    FormSource("mcq_truthfulqa/TruthfulQA.csv", "truthfulqa", "yes_no", answer="No"),
    FormSource("mcq_truthfulqa/TruthfulQA.csv", "truthfulqa", "exact_n_list", {"n": 3}),
)


# --- default split: the surgical rewriters over the benchmark files -----------------------------------------------
def _records(path: Path, src: FormSource):
    """The structured records of one file that ``src.form`` rewrites (McqQuestion, CotExample, TruthfulRow), read
    by the same importers as the other benchmarks; a record the importer drops is left out, as the block does."""
    kind = surgical.record_kind(src.shape)
    if kind == "mcq":
        yield from (q for q in import_questions(path, source=src.shape) if not isinstance(q, Drop))
    elif kind == "cot":
        yield from (x for x in read_cot_examples(path, source=src.shape, shape=src.shape) if not isinstance(x, Drop))
    else:
        for i, raw in iter_mcq_file(path, shape=src.shape):
            if isinstance(raw, _RecordDrop):
                raise FormBenchError(f"{path}: {raw.detail}")
            try:
                yield surgical.truthful_row(raw, source=src.shape, rec_id=f"{path.stem}/{i}")
            except _RecordDrop:
                continue


def source_items(src: FormSource, root: Path, limit: int | None) -> list[FormItem]:
    """The items one :class:`FormSource` gives, at most ``limit`` per file."""
    where = root / src.path
    if not where.exists():
        raise FormBenchError(f"{where} does not exist (format bench source of {src.form} under {root})")
    options = surgical.source_options(src.form, src.spec, src.answer, SEED, src.shape)
    items: list[FormItem] = []
    for path in expand_mcq_paths([str(where)]):
        mine: list[FormItem] = []
        for record in _records(path, src):
            if limit is not None and len(mine) >= limit:
                break
            try:
                conv = surgical.rewrite(record, options)
            except surgical.NotRewritable:  # too few answers, ...: the block drops it too
                continue
            meta = conv.metadata
            mine.append(FormItem(conv.id, conv.messages[0].content, meta["form"], meta["spec"], meta["expected"]))
        items += mine
    return items


def default_items(root: Path, limit: int | None) -> list[FormItem]:
    return [item for src in FORM_SOURCES for item in source_items(src, root, limit)]


# --- block split: a built surgical block ----------------------------------------------------------------------
BLOCK_FOLDER = "surgical_block"
BLOCK_SPLIT = "validation"


def block_items(root: Path, limit: int | None) -> list[FormItem]:
    """The held-out (``validation``) documents of the built surgical block at ``root/surgical_block`` (a copy or a
    link): each prompt is the document's tokens before its first loss-carrying token — the templated prompt the
    block trains on, decoded with the block's own tokenizer — and its answer key is the ``reports/documents.jsonl``
    row with the same split and index. At most ``limit`` items."""
    from tokenizers import Tokenizer

    from shardsmith.pipelines.shards import split_files
    from shardsmith.schemas.manifest import ShardManifest

    block = root / BLOCK_FOLDER
    report = block / "reports" / "documents.jsonl"
    try:
        manifest = ShardManifest.load(block)
    except (FileNotFoundError, ValueError) as err:
        raise FormBenchError(f"{block}: not a built block ({err})") from None
    if not report.is_file():
        raise FormBenchError(f"{report} does not exist: {block} is not a surgical block (no answer key)")
    keys = [(i, row) for i, row in iter_raw(report) if isinstance(row, dict) and row.get("split") == BLOCK_SPLIT]
    tok = Tokenizer.from_file(str(block / manifest.tokenizer.path / "tokenizer.json"))
    docs = [doc for f in split_files(block, BLOCK_SPLIT, manifest.token_size) for doc in f.documents()]
    if len(keys) != len(docs):
        raise FormBenchError(f"{report}: {len(keys)} {BLOCK_SPLIT} rows for {len(docs)} {BLOCK_SPLIT} documents")
    items = []
    for (line, row), (ids, loss) in list(zip(keys, docs))[:limit]:
        where = f"{report}: line {line + 1}"
        if row.get("index") != len(items) or loss is None or not loss.any():
            raise FormBenchError(f"{where}: field 'index' does not match document {len(items)} of {BLOCK_SPLIT}, "
                                 "or the document has no loss-carrying target")
        prompt = tok.decode([int(t) for t in ids[:int(loss.argmax())]], skip_special_tokens=False)
        items.append(_form_item({"id": row.get("id"), "prompt": prompt, "metadata": row.get("metadata")}, where,
                                f"{BLOCK_SPLIT}/{len(items)}", chat=False))
    return items


# --- custom split: JSON lines ----------------------------------------------------------------------------------
_FIELDS = {"prompt", "form", "spec", "expected", "id", "metadata", "split", "index", "source"}


def read_form_items(path: Path) -> list[FormItem]:
    """Items of one JSON-lines file (see the module docstring); a bad line is a :class:`FormBenchError`."""
    return [_form_item(rec, where, f"{path.stem}/{i}") for i, where, rec in jsonl.records(path, FormBenchError)]


def _form_item(rec: Any, where: str, default_id: str, chat: bool = True) -> FormItem:
    if not isinstance(rec, dict):
        raise FormBenchError(f"{where}: expected an object {{prompt, form, spec?, expected?, id?}}")
    unknown = sorted(set(rec) - _FIELDS)
    if unknown:
        raise FormBenchError(f"{where}: unknown field '{unknown[0]}' (fields: prompt, form, spec, expected, id, or "
                             "prompt and a documents.jsonl row's metadata)")
    if not isinstance(rec.get("prompt"), str) or not rec["prompt"].strip():
        raise FormBenchError(f"{where}: field 'prompt' must be a non-empty string")
    key = rec.get("metadata") if "metadata" in rec else rec
    prefix = "metadata." if "metadata" in rec else ""
    if not isinstance(key, dict) or not isinstance(key.get("form"), str):
        raise FormBenchError(f"{where}: field '{prefix}form' must be a form name")
    if key.get("spec") is not None and not isinstance(key["spec"], dict):
        raise FormBenchError(f"{where}: field '{prefix}spec' must be an object")
    try:
        spec = parse_spec(key["form"], key.get("spec"))
    except FormError as err:
        raise FormBenchError(f"{where}: field '{prefix}form'/'{prefix}spec': {err}") from None
    return FormItem(str(rec.get("id") or default_id), rec["prompt"], key["form"], spec_dict(spec), key.get("expected"),
                    chat)


# --- scoring ------------------------------------------------------------------------------------------------------
def form_verdict(generated: str, gold: dict) -> dict:
    """``{form_ok, correct, why}`` of one generation against an item's ``{form, spec, expected}`` (``correct`` is
    None when no answer is expected). An expected answer the form cannot compare (``expected`` of the wrong kind)
    is reported as the reason, never raised mid-run."""
    try:
        s = score(generated, gold["form"], gold["spec"], gold.get("expected"))
    except (ValueError, TypeError) as err:
        return {"form_ok": False, "correct": False, "why": f"expected answer not comparable: {err}"}
    return {"form_ok": s.form_ok, "correct": s.correct, "why": s.why}


def form_hits(row: dict) -> dict[str, bool]:
    """The metrics of one items.jsonl row: ``format_ok`` always, ``correct`` when the item has an answer key."""
    chosen = row["chosen"]
    hits = {"format_ok": bool(chosen["form_ok"])}
    if chosen["correct"] is not None:
        hits["correct"] = bool(chosen["correct"])
    return hits
