"""Block kinds, one registry row each (like LLaMA-Factory's ``register_template``): which family reads a source,
which importer options the recipe adds, which steps the kind runs beyond the shared ones. ``build_block`` is the
whole build: read sources (+ self-cognition rows) -> steps -> ``builders/writer.py``.

Shared steps, in order: (pair checks) -> structure -> length (chars) -> language -> dedup -> (a kind's middle
steps) -> decontam (``decontam_step.py``) -> (pii when ``pii: true``: ``pii_step.py``) -> render -> length (tokens)
-> sample -> exact count; then the writer writes the set. Every kept conversation gets a language label for the
manifest: from the language filter, or from fastText in forked children started as sources are read
(``LanguageLabels``).

A preference block runs the same steps on pairs: each filter judges both ``prompt + chosen`` and ``prompt +
rejected`` and keeps the pair only if both pass; a kept pair is written as two adjacent documents, chosen first
(``manifest.pair_layout``), and the split holds whole pairs.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from shardsmith.recipes import RecipeError
from shardsmith.schemas.block_recipe import PreferenceBlockRecipe, SftBlockRecipe, SftSource, SurgicalSource
from shardsmith.schemas.manifest import PAIR_LAYOUT

from . import cot, importers, mcq, self_cognition, surgical
from .block import (
    BlockStep,
    BuildError,
    Family,
    Item,
    SourceBooks,
    VisitMore,
    VisitOrder,
    check_counts,
    read_source,
    run_steps,
)
from .block_steps import (
    CharLengthStep,
    CountStep,
    DedupStep,
    LanguageStep,
    PairStep,
    RenderStep,
    SampleStep,
    StructureStep,
    TokenLengthStep,
    count_target,
)
from .decontam_step import DecontamStep
from .forked import Forked
from .writer import BlockContext, BlockWrite, write_block

# ----------------------------------------------------------------------------------------------------------------
# families: how a source's files become records


def _mcq_cot(record: dict, shape: str, *, source: str, rec_id: str, options: dict | None = None,
             label_field: str | None = None):
    """An MCQ with an explanation as a CoT conversation (C-Eval, WanJuan): the explanation is the rationale."""
    options = options or {}
    return [cot.cot_conversation(cot.mcq_cot_example(q, mcq_answer=options.get("mcq_answer", "option")),
                                 options.get("answer_format", cot.TINYCOT))
            for q in mcq.convert_question(record, shape, source=source, rec_id=rec_id)]


SFT = Family("sft", importers.SFT_SHAPES)
MCQ = Family("mcq", mcq.MCQ_SHAPESET, mcq.iter_mcq_file, mcq.expand_mcq_paths)
COT = Family("cot", cot.COT_SHAPESET, lambda path, shape, lazy=False: cot.iter_cot_file(path, lazy),
             functools.partial(importers.expand_paths, suffixes=(*importers.READ_SUFFIXES, ".tsv")))
MCQ_COT = Family("mcq_cot", importers.ShapeSet("MCQ with explanations", mcq.MCQ_SHAPES, mcq.MCQ_REQUIRED,
                                               mcq.detect_mcq_shape, mcq.canonical_mcq_shape, _mcq_cot),
                 mcq.iter_mcq_file, mcq.expand_mcq_paths)


def _surgical(record: dict, shape: str, *, source: str, rec_id: str, options: dict | None = None,
              label_field: str | None = None):
    """A record in its source's strict answer form (``builders/surgical.py``); one it cannot use is a counted drop."""
    return [surgical.rewrite(r, options) for r in surgical.records_of(record, shape, source=source, rec_id=rec_id)]


def _read_as(family: Family, name: str, convert: Callable) -> Family:
    """``family``'s files and shapes, each record converted by ``convert``."""
    return dataclasses.replace(family, name=name, shapes=dataclasses.replace(family.shapes, convert=convert))


SURGICAL_MCQ, SURGICAL_COT = _read_as(MCQ, "surgical_mcq", _surgical), _read_as(COT, "surgical_cot", _surgical)


def _preference() -> Family:
    from .pairs import PAIR_SHAPESET

    return Family("preference", PAIR_SHAPESET)


def _has_shape(family: Family, shape: str) -> bool:
    try:
        return family.shapes.canonical(shape) in family.shapes.shapes
    except ValueError:
        return False


def _cot_family(src: SftSource) -> Family:
    return MCQ_COT if _has_shape(MCQ, src.shape) else COT


def _any_family(src: SftSource) -> Family:
    """Repair blocks mix families: the source's ``shape`` says which (an MCQ, CoT or SFT shape)."""
    return next((f for f in (MCQ, COT) if _has_shape(f, src.shape)), SFT)


def _surgical_family(src: SftSource) -> Family:
    return SURGICAL_MCQ if _has_shape(MCQ, src.shape) else SURGICAL_COT


def _surgical_options(recipe, src: SurgicalSource) -> dict:
    try:
        return surgical.source_options(src.form, src.spec, src.answer, recipe.seed, src.shape)
    except ValueError as err:
        raise RecipeError(f"source {src.name}: {err}") from None


def _mcq_options(recipe, src: SftSource) -> dict:
    try:
        return mcq.check_mcq_options({"style": recipe.style, "shuffle_options": recipe.shuffle_options,
                                      "seed": recipe.seed, **src.options})
    except ValueError as err:
        raise RecipeError(f"source {src.name}: {err}") from None


def _cot_options(recipe, src: SftSource) -> dict:
    return {"answer_format": recipe.answer_format, "mcq_answer": recipe.mcq_answer, **src.options}


def _any_options(recipe, src: SftSource) -> dict:
    family = _any_family(src)
    return _mcq_options(recipe, src) if family is MCQ else _cot_options(recipe, src) if family is COT else src.options


def _distill_steps(recipe, ctx: BlockContext, out: Path) -> list[BlockStep]:
    """Pool, then teacher; an hf teacher's cache sits next to the output (``OUT.teacher-cache.jsonl``) so a rerun
    of a failed or interrupted build generates only what is missing."""
    from .distill import PoolStep, TeacherStep, make_teacher

    cache = out.parent / f"{out.name}.teacher-cache.jsonl"
    teacher = make_teacher(recipe.teacher, template=ctx.template, cache=cache, base=ctx.base)
    return [PoolStep(recipe.pool), TeacherStep(teacher, fail_on_silence=recipe.on_error == "fail")]


# A first pass judges a source's records in its seeded order until 1.1 x its target + 16 of them survived import
# (VisitOrder): the later filters drop a few rows (on the samples at most 3 of 160), each record judged costs as much
# as tokenizing several documents; a source left short is judged further in another pass (more_visit).
VISIT_MARGIN, VISIT_EXTRA = Fraction(11, 10), 16  # a Fraction: 1.1 * 390 is 429.00000000000006 in floats


def count_visit(recipe: SftBlockRecipe, src: SftSource) -> tuple[str, int] | None:
    """A source with ``count``: read in the order seeded by recipe seed and source name, toward its target."""
    target = count_target(recipe, src)
    return None if target is None else (f"{recipe.seed}:{src.name}:count", target)


def pool_visit(recipe, src: SftSource) -> tuple[str, int] | None:
    """A distill source: read in its pool order (``distill.pool_order``), toward its share of the pool."""
    from .distill import pool_seed, pool_targets

    target = pool_targets(recipe.pool).get(src.name)
    return None if target is None else (pool_seed(recipe.pool.seed, src.name), target)


# ----------------------------------------------------------------------------------------------------------------
# kinds


@dataclass(frozen=True)
class BlockKind:
    """One row per block kind: the family that reads each source, the importer options, extra steps."""

    name: str
    family: Callable[[SftSource], Family]
    options: Callable[[SftBlockRecipe, SftSource], dict] = lambda recipe, src: src.options
    pairs: bool = False  # items are preference pairs (PairStep first, pairs counted per split)
    steps_first: Callable[[SftBlockRecipe], list[BlockStep]] = lambda recipe: []
    # steps between dedup and render: (recipe, context, output folder) -> steps
    steps_middle: Callable[[SftBlockRecipe, BlockContext, Path], list[BlockStep]] = lambda recipe, ctx, out: []
    source_kind: str = "sft"  # the manifest's sources[].kind is "<source_kind>:<shape>"
    document_report: bool = False  # reports/documents.jsonl: each document's metadata (an answer key to score)
    # sources that keep a fixed number of rows: (order seed, rows) -> read in that order, a prefix judged first
    visit: Callable[[SftBlockRecipe, SftSource], tuple[str, int] | None] = count_visit
    # the manifest's labels computed from import on, beside the build (LanguageLabels); False: at the end, on the final
    # text (a distill teacher replaces the answers; labelling at import would label texts the block never holds)
    labels_at_import: bool = True


KINDS: dict[str, BlockKind] = {
    "sft": BlockKind("sft", lambda src: SFT),
    "preference": BlockKind("preference", lambda src: _preference(), pairs=True,
                            steps_first=lambda recipe: [PairStep(recipe.pairs)]),
    "mcq": BlockKind("mcq", lambda src: MCQ, _mcq_options, source_kind="mcq"),
    "cot": BlockKind("cot", _cot_family, _cot_options, source_kind="cot"),
    "repair": BlockKind("repair", _any_family, _any_options, source_kind="repair"),
    "distill": BlockKind("distill", _any_family, _any_options, steps_middle=_distill_steps, source_kind="distill",
                         visit=pool_visit, labels_at_import=False),
    "surgical": BlockKind("surgical", _surgical_family, _surgical_options, source_kind="surgical",
                          document_report=True),
}


def conversation_steps(recipe: SftBlockRecipe, ctx: BlockContext, language: LanguageStep,
                       middle: list[BlockStep] = ()) -> list[BlockStep]:
    """The filters every conversation block runs, in order; a kind's ``middle`` steps run after dedup."""
    steps: list[BlockStep] = [StructureStep(), CharLengthStep(), language]
    if recipe.filters.dedup is not None:
        steps.append(DedupStep(recipe.filters.dedup, recipe.seed))
    steps += middle
    if recipe.pii:  # after every filter (and the teacher), on what is rendered
        from .pii_step import PiiBlockStep

        steps.append(PiiBlockStep())
    steps += [RenderStep(ctx.template, ctx.eos, loss_on_all=recipe.loss == "all"), TokenLengthStep(ctx.encoder),
              SampleStep(recipe.seed), CountStep(recipe)]
    return steps


def visit_order(kind: BlockKind, recipe: SftBlockRecipe, src: SftSource,
                scale: dict[str, float]) -> VisitOrder | None:
    """How a source that keeps a fixed number of rows is read (``block.VisitOrder``): in the kind's seeded order; a
    first pass judges records until ``VISIT_MARGIN x target + VISIT_EXTRA`` survived import (on the samples every
    such source's survivors fill its target from that); ``scale``: sources a pass left short, their goal multiplied
    (inf: every record). None: read in file order."""
    seed_target = kind.visit(recipe, src)
    if seed_target is None:
        return None
    seed, target = seed_target
    factor = scale.get(src.name, 1.0)
    if math.isinf(factor):
        return VisitOrder(seed)
    return VisitOrder(seed, math.ceil(VISIT_MARGIN * target * Fraction(factor)) + VISIT_EXTRA)


def more_visit(scale: dict[str, float], short: dict[str, tuple[int, int]]) -> dict[str, float]:
    """``scale`` after a pass left ``short`` (name -> survivors needed, survivors found): each such source's goal
    grows by the shortfall's ratio and a tenth (all records when none survived); the next pass may still fall short,
    then it grows again, until the source is read whole."""
    out = dict(scale)
    for name, (need, found) in short.items():
        out[name] = math.inf if found == 0 else out.get(name, 1.0) * need / found * 1.1
    return out


def read_sources(recipe: SftBlockRecipe, kind: BlockKind, base: Path, scale: dict[str, float] | None = None,
                 on_source: Callable[[list[Item], SourceBooks], None] | None = None) -> tuple[dict, dict]:
    """(items, books) per source name, in recipe order; self-cognition rows last. ``on_source`` is called with
    each source's items as soon as they are read (``LanguageLabels.add``; self-cognition rows carry a language)."""
    items: dict[str, list[Item]] = {}
    books: dict[str, SourceBooks] = {}
    options = {src.name: kind.options(recipe, src) for src in recipe.sources}  # recipe errors before any reading
    for src in recipe.sources:
        bk = books[src.name] = SourceBooks.for_source(src.name, src, recipe.filters, recipe.write_rejected)
        items[src.name] = read_source(src, base, bk, kind.family(src), options[src.name],
                                      fail_on_drop=recipe.on_error == "fail",
                                      order=visit_order(kind, recipe, src, scale or {}))
        if on_source is not None:
            on_source(items[src.name], bk)
    sc = getattr(recipe, "self_cognition", None)
    if sc:
        bk = books[sc.source_name] = SourceBooks.for_source(sc.source_name, None, recipe.filters, recipe.write_rejected)
        convs = self_cognition.generate(sc, base)
        bk.read = len(convs)
        bk.step("import", bk.read, len(convs), {})
        items[sc.source_name] = [Item(c, copy=int(c.id.rsplit("#", 1)[1]) if "#" in c.id else 0) for c in convs]
    return items, books


class LanguageLabels:
    """fastText language of the kept conversations no language filter judged (for the manifest's ``languages``).

    Each source without a language filter is labelled in a forked child (``builders/forked.py``) started as soon as
    the source is read, so the labels are computed on another core while this process reads the next sources,
    filters, renders and tokenizes (fastText holds the GIL: in a thread it stalled the builder's own Python). The
    children run at a lower priority: they label records later steps may drop (a count source's sampling), so they
    yield the cores to the build's own threads and work in the time those leave idle. ``apply`` (the writer calls it
    before the manifest) takes each kept conversation's label by its text; a conversation whose text changed after
    import (PII redaction) or that came without a child (a kind labelled at the end: distill, whose teacher replaces
    the answers) is labelled then, over the cores (``filters.detect_language``). ``seconds``: time spent here
    waiting for or computing labels."""

    MIN_CHARS = 1_000_000  # smaller sources are labelled together: a fork of the builder costs ~10-15 ms

    def __init__(self):
        self.seconds = 0.0
        self._children: list[tuple[list[str], Forked]] = []
        self._pending: list[str] = []
        self._known: dict[str, str] = {}  # labelled in this process before ``apply`` (``label_now``)

    def add(self, items: list[Item], books: SourceBooks) -> None:
        """Label a source's conversations (nothing for a source a language filter judges): in a child started now,
        or with the next sources when this one is small."""
        if books.language is None:
            self._pending += [_label_text(it) for it in items if it.conv.lang is None]
        if sum(map(len, self._pending)) >= self.MIN_CHARS:
            self.flush()

    def flush(self) -> None:
        """Start the child for what is pending (``read_sources`` calls it after the last source)."""
        if self._pending:  # low priority: off the critical path, it uses what the build leaves idle
            self._children.append((self._pending, Forked(_labels, self._pending, 1, nice=10)))
            self._pending = []

    def label_now(self, items: dict[str, list[Item]]) -> None:
        """Label the conversations not labelled yet, here and now: a kind labelled at the end has it done while
        the tokenizer encodes (``DocEncoder.waiting``), for fastText (GIL) runs beside the encoder's Rust threads."""
        texts = [_label_text(it) for lst in items.values() for it in lst if it.conv.lang is None]
        todo = list(dict.fromkeys(t for t in texts if t not in self._known))
        for i in range(0, len(todo), 64):  # fastText keeps the GIL for a call: short calls let the encoder's
            chunk = todo[i: i + 64]  # thread take it between them (it needs it to start and to hand back)
            self._known.update(zip(chunk, _labels(chunk, parts=1)))

    def apply(self, items: dict[str, list[Item]]) -> None:
        t0 = time.perf_counter()
        undecided = [it for lst in items.values() for it in lst if it.conv.lang is None]
        known: dict[str, str] = dict(self._known)
        for texts, child in self._children if undecided else ():
            known.update(zip(texts, child.result(), strict=True))
        texts = [_label_text(it) for it in undecided]
        late = list(dict.fromkeys(t for t in texts if t not in known))
        if late:
            known.update(zip(late, _labels(late)))
        for it, text in zip(undecided, texts):
            it.conv.lang = known[text]  # in place: the documents are written, the build holds the only reference
        self.seconds = time.perf_counter() - t0

    def close(self) -> None:
        for _, child in self._children:
            child.close()


def _label_text(item: Item) -> str:
    # fix_cjk_label looks for kana, hangul and Han characters only: the separator is neither
    return item.conv.text("user", "assistant", sep=" ")


def _labels(texts: list[str], parts: int | None = None) -> list[str]:
    """Each text's manifest label: fastText's (CJK fixed), "unknown" under a 0.3 score."""
    from .filters import detect_language, fix_cjk_label

    return [fix_cjk_label(lg, text) if lg and score >= 0.3 else "unknown"
            for text, (lg, score) in zip(texts, detect_language(texts, parts=parts))]


@dataclass
class _Clock:
    timings: dict = field(default_factory=dict)
    t0: float = field(default_factory=time.perf_counter)

    def lap(self, name: str) -> None:
        t1 = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + t1 - self.t0
        self.t0 = t1


def build_block(
    recipe: SftBlockRecipe,
    out_dir: str | os.PathLike,
    *,
    recipe_dict: dict | None = None,
    base_dir: str | os.PathLike | None = None,
    timings: dict | None = None,
) -> Path:
    """Build ``recipe`` (any kind in :data:`KINDS`) into ``out_dir``; returns the shard folder."""
    t_all = time.perf_counter()
    clock = _Clock(timings if timings is not None else {})
    base = Path(base_dir) if base_dir else Path.cwd()
    kind = KINDS[recipe.kind]
    items, books, steps, language, labels, ctx = _filter_sources(recipe, kind, base, Path(out_dir).resolve(), clock)
    try:
        counts = check_counts(items, books)
        total_kept = sum(len(v) for v in items.values())
        if total_kept == 0:
            raise BuildError("no conversation survived the filters: " + json.dumps(counts, ensure_ascii=False))
        w = BlockWrite(
            kind=recipe.kind, books=books, counts=counts, language_report=language.report(),
            disagreements=language.disagreements, recipe_dict=recipe_dict, source_kind=kind.source_kind,
            split_by="pair" if kind.pairs else "conversation", document_report=kind.document_report,
            template_extra={"loss": "every token (loss: all)"} if recipe.loss == "all" else {},
            before_manifest=lambda: labels.apply(items),
        )
        for step in steps:
            w.extra.update(step.manifest_fields())
        if isinstance(recipe, PreferenceBlockRecipe):
            w.extra.update({"pair_layout": PAIR_LAYOUT, "pair_filter": recipe.pairs.model_dump(mode="json")})
        clock.t0 = time.perf_counter()
        out = write_block(out_dir, items, ctx, w, clock.timings)
    finally:
        labels.close()
    clock.timings["language_kept"] = labels.seconds  # waiting for the child's labels, or labelling late ones
    clock.timings["total"] = time.perf_counter() - t_all
    clock.timings["conversations_read"] = sum(bk.read for bk in books.values())
    clock.timings["conversations_kept"] = total_kept
    return out


def _filter_sources(recipe: SftBlockRecipe, kind: BlockKind, base: Path, out: Path, clock: _Clock):
    """Read the sources and run the steps: (items, books, steps, language step, labels started at import, context).

    The tokenizer is loaded after the first reading, not before: its load holds the GIL for a tenth of a second or
    more, and the children started by then use the other cores meanwhile (the manifest labels, started while the
    sources were read; the language filter's fastText, started on what was read)."""
    scale: dict[str, float] = {}
    ctx: BlockContext | None = None
    BlockContext.specs(recipe, base)  # a template or tokenizer-spec error before any reading
    while True:  # again while a count source falls short and has records left unjudged (more_visit)
        labels, language = LanguageLabels(), LanguageStep()
        try:
            on_source = labels.add if kind.labels_at_import else None
            items, books = read_sources(recipe, kind, base, scale, on_source=on_source)
            labels.flush()
            language.start(items, books)
            clock.lap("import")
            if ctx is None:
                ctx = BlockContext.resolve(recipe, base)
                clock.lap("tokenizer_resolve")
            if not kind.labels_at_import:  # while the first documents encode, on their final text (after the teacher)
                ctx.encoder.waiting = [functools.partial(labels.label_now, items)]
            middle = kind.steps_middle(recipe, ctx, out)
            middle.append(DecontamStep(recipe.decontaminate, out, base))  # every kind, on by default
            steps = kind.steps_first(recipe) + conversation_steps(recipe, ctx, language, middle)
            run_steps(steps, items, books, clock.timings)
            return items, books, steps, language, labels, ctx
        except VisitMore as more:
            scale = more_visit(scale, more.sources)
            clock.t0 = time.perf_counter()
            labels.close()
            language.close()
            if ctx is not None:
                ctx.encoder.waiting = []
        except BaseException:
            labels.close()
            language.close()
            raise
