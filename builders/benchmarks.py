"""Benchmark test items for decontamination (``pipelines/decontam.py``), read with the block importers themselves:
MCQ files through ``mcq.py``'s parse layer (MMLU, CMMLU, C-Eval, ARC, HellaSwag, TruthfulQA, WanJuan), CoT files
through ``cot.py`` (GSM8K), anything else through the SFT importers (a user's own question/answer file).

Each item becomes a :class:`~shardsmith.pipelines.decontam.TestItem` whose parts are what a contaminated document
would repeat, each judged on its own: question + every option (display order; a document's ``A.`` labels are
invisible to the index), the question alone, question + correct answer(s), the explanation; for CoT the question +
rationale + answer and the question alone; for a conversation all its turns and its user turns. A benchmark
folder's files named ``train*`` are not test items (GSM8K's train.jsonl) and are skipped; a user's files are all
read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from shardsmith.pipelines.decontam import TestItem
from shardsmith.schemas.records import Conversation, CotExample, Drop, McqQuestion

from . import cot, importers, mcq

DATA_SUFFIXES = (*mcq.MCQ_SUFFIXES, ".tsv")


def benchmark_files(*paths: str | os.PathLike, user: bool = False) -> list[Path]:
    """The data files under ``paths`` (sorted; metadata files beside them left out; ``train*`` left out unless
    ``user``). A path that holds none is a one-line error naming it."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise FileNotFoundError(f"decontaminate: benchmark file {p} not found")
        hits = [p] if p.is_file() else sorted(h for h in p.rglob("*") if h.is_file() and h.name.endswith(DATA_SUFFIXES)
                                             and h.name not in mcq.METADATA_FILES)
        hits = [h for h in hits if user or not h.name.lower().startswith("train")]
        if not hits:
            raise FileNotFoundError(f"decontaminate: {p} holds no test file ({'/'.join(DATA_SUFFIXES)})")
        out += hits
    return out


FAMILIES = (("mcq", mcq.canonical_mcq_shape, mcq.detect_mcq_shape), ("cot", cot.canonical_cot_shape,
                                                                     cot.detect_cot_shape),
            ("sft", importers.canonical_shape, importers.detect_shape))


def _family(path: Path, shape: str) -> str:
    """mcq | cot | sft: the family the shape given belongs to, else the one the first record's fields fit."""
    if shape != "auto":
        for family, canonical, _ in FAMILIES:
            try:
                canonical(shape)
                return family
            except ValueError:
                continue
        raise ValueError(f"decontaminate: {path}: unknown shape '{shape}' (an MCQ, CoT or SFT shape)")
    tabular = path.name.lower().endswith((".csv", ".arrow", ".parquet"))
    stream = mcq.iter_mcq_file(path) if tabular else cot.iter_cot_file(path)
    first = next((rec for _, rec in stream if isinstance(rec, dict)), None)
    for family, _, detect in FAMILIES:
        if detect(first) is not None:
            return family
    raise ValueError(f"decontaminate: {path}: the first record fits no MCQ, CoT or SFT shape; fields: "
                     f"{sorted(first) if isinstance(first, dict) else type(first).__name__}")


def _records(path: Path, family: str, name: str, shape: str, prefix: str) -> Iterator:
    kw = {"where": str(path), "source": name, "shape": shape, "id_prefix": prefix}
    if family == "mcq":
        return importers.import_records(mcq.iter_mcq_file(path, shape), shapes=mcq.QUESTION_SHAPESET, **kw)
    if family == "cot":
        return importers.import_records(cot.iter_cot_file(path), shapes=cot.COT_EXAMPLE_SHAPESET, **kw)
    return importers.import_records(importers.iter_raw(path), **kw)


def item_texts(record: McqQuestion | CotExample | Conversation) -> tuple[str, ...]:
    """The parts of one test item that the index cuts into n-grams."""
    if isinstance(record, McqQuestion):
        q = record.question
        answers = " ".join(record.options[a] for a in mcq.answer_letters(record) if a in record.options)
        parts = [f"{q} {' '.join(record.options.values())}", q, f"{q} {answers}"]
        return tuple(parts + ([record.explanation] if record.explanation else []))
    if isinstance(record, CotExample):
        return (f"{record.question} {record.rationale} {record.answer}", record.question)
    return (record.text(sep=" "), record.text("user", sep=" "))


def read_records(sets: dict[str, list[Path]], shapes: dict[str, str] | None = None
                 ) -> Iterator[tuple[str, str, McqQuestion | CotExample | Conversation]]:
    """(benchmark, item id, parsed record) of every test item, in order; an item id is ``<file relative to the
    benchmark's folder>:<row>`` (or the file's own id). Records the importers drop (no answer key, ...) are skipped."""
    for name, files in sets.items():
        shape = (shapes or {}).get(name, "auto")
        root = Path(os.path.commonpath([f.parent for f in files])) if files else None
        for path in files:
            rel = path.relative_to(root).as_posix() if root and path != root else path.name
            for rec in _records(path, _family(path, shape), name, shape, rel):
                if not isinstance(rec, Drop):
                    yield name, rec.id if rec.id.startswith(f"{rel}:") else f"{rel}:{rec.id}", rec


def read_test_items(sets: dict[str, list[Path]], shapes: dict[str, str] | None = None) -> Iterator[TestItem]:
    """Every test item of every benchmark as the index reads it."""
    for name, item_id, rec in read_records(sets, shapes):
        yield TestItem(name, item_id, item_texts(rec))
