"""One way to build a block: sources are read into items, a list of steps filters them, one writer writes the set.

A step decides, :class:`BlockStep` keeps the books — the shape of datatrove's ``BaseFilter`` (``filter()`` returns
keep or a reason; stats and the drop writer live in ``run``). A step looks at one item (``decide``) or at a source's
items together (``decide_all``: batched fastText, batched tokenization, seeded sampling) and returns, per item,
``None`` (keep) or ``(reason, detail)`` (drop). ``BlockStep.run`` counts read / kept / dropped-by-reason into the
source's :class:`SourceBooks` and records each drop, so a step never counts anything itself.

Steps run step-major (every source through step 1, then step 2, ...), sources in recipe order: a step with shared
state (global dedup: first occurrence in source order wins) sees the sources in that order.

Every block kind (SFT, preference, MCQ, CoT, repair, ...) is: a row in ``builders/kinds.py`` (which
:class:`Family` reads its sources), a list of steps, and ``builders/writer.py``.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from shardsmith.schemas.block_recipe import Filters, LanguageFilter, LengthFilter, SftSource, StructureFilter
from shardsmith.schemas.manifest import StepCount
from shardsmith.schemas.records import Conversation, Drop, Message, PreferencePair

from . import importers
from .importers import ShapeSet
from .templates import Rendered

Verdict = tuple[str, str | None] | None  # None: keep; (reason, detail): drop


class BuildError(ValueError):
    pass


@dataclass
class Item:
    """What flows through the steps: a conversation (a preference pair: prompt + chosen, and prompt + rejected)."""

    conv: Conversation
    rendered: Rendered | None = None
    n_tokens: int | None = None
    copy: int = 0  # > 0: a deliberate repeat (self-cognition ``repeat``), exempt from dedup
    rejected: Conversation | None = None
    rendered_rejected: Rendered | None = None
    encoded: list | None = None  # EncodedDoc per document, when the token-length step already tokenized them

    def convs(self) -> list[Conversation]:
        return [self.conv] if self.rejected is None else [self.conv, self.rejected]

    def documents(self) -> list[tuple[Conversation, Rendered]]:
        docs = [(self.conv, self.rendered)]
        return docs if self.rejected is None else docs + [(self.rejected, self.rendered_rejected)]


def source_filters(block: Filters, src: SftSource | None) -> tuple[StructureFilter, LanguageFilter | None, LengthFilter]:
    """Effective (structure, language or None, length) for a source: its overrides replace the block's keys."""
    structure, language, length = block.structure, block.language, block.length
    if src is None:  # self-cognition: its rows are chosen by SelfCognition.languages, not the block's filter
        language = None
    else:
        o = src.filters
        structure = o.structure or structure
        length = o.length or length
        if o.language == "none":
            language = None
        elif o.language is not None:
            language = o.language
    return structure, language, length


@dataclass
class SourceBooks:
    """One source's accounts: what was read, each step's counts, every drop; plus the source's effective filters."""

    name: str
    src: SftSource | None  # None: generated rows (self-cognition)
    structure: StructureFilter
    language: LanguageFilter | None
    length: LengthFilter
    keep_records: bool = True  # drops carry the conversation (``write_rejected``)
    read: int = 0
    steps: list[StepCount] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    trimmed: Counter = field(default_factory=Counter)  # conversations the structure step trimmed and passed on
    drops: list[Drop] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    unvisited: int = 0  # raw records a count source never converted nor judged (``VisitOrder``)

    @classmethod
    def for_source(cls, name: str, src: SftSource | None, filters: Filters, keep_records: bool) -> SourceBooks:
        structure, language, length = source_filters(filters, src)
        return cls(name, src, structure, language, length, keep_records)

    @property
    def declared(self) -> str | None:
        return self.src.language if self.src is not None else None

    def step(self, name: str, before: int, kept: int, reasons: Counter) -> None:
        self.steps.append(StepCount(step=name, read=before, kept=kept, dropped=before - kept, reasons=dict(reasons)))

    def drop(self, conv: Conversation, step: str, reason: str, detail: str | None, keep_record: bool = True) -> None:
        self.dropped[reason] += 1
        record = conv.model_dump(mode="json") if keep_record and self.keep_records else None
        self.drops.append(Drop(source=conv.source, id=conv.id, reason=reason, step=step, detail=detail, record=record))

    def import_drop(self, drop: Drop) -> None:
        self.dropped[drop.reason] += 1
        self.drops.append(drop)


class BlockStep:
    """A filter over items. Subclasses set ``name`` and implement ``decide`` (or ``decide_all``); ``run`` keeps books.

    ``applies(books)`` false: the step is skipped for that source and leaves no row in the manifest (a language
    step on a source without a language filter). ``timing``: the key its seconds add to in ``timings``.
    """

    name: str = ""
    timing: str = ""
    keeps_records = True  # a drop of this step carries the conversation (sampling's do not: nothing is wrong)

    def applies(self, books: SourceBooks) -> bool:
        return True

    def decide(self, item: Item, books: SourceBooks) -> Verdict:
        raise NotImplementedError

    def decide_all(self, items: list[Item], books: SourceBooks) -> list[Verdict]:
        return [self.decide(it, books) for it in items]

    def prepare(self, items: dict[str, list[Item]], books: dict[str, SourceBooks]) -> None:
        """Called once before any source goes through the step (a step that plans over all sources)."""

    def close(self) -> None:
        """Called once after every source went through the step (a step that judges the sources together)."""

    def manifest_fields(self) -> dict[str, Any]:
        """What this step adds to the manifest (e.g. the distill pool and teacher); merged at the top level."""
        return {}

    def run(self, items: list[Item], books: SourceBooks) -> list[Item]:
        verdicts = self.decide_all(items, books)
        kept, reasons = [], Counter()
        for it, verdict in zip(items, verdicts, strict=True):
            if verdict is None:
                kept.append(it)
                continue
            reasons[verdict[0]] += 1
            books.drop(it.conv, self.name, verdict[0], verdict[1], self.keeps_records)
        books.step(self.name, len(items), len(kept), reasons)
        return kept


def run_steps(steps: list[BlockStep], items: dict[str, list[Item]], books: dict[str, SourceBooks],
              timings: dict) -> None:
    """Every source through each step in turn (step-major, sources in recipe order); seconds per ``step.timing``."""
    for step in steps:
        t0 = time.perf_counter()
        step.prepare(items, books)
        for name in items:
            if step.applies(books[name]):
                items[name] = step.run(items[name], books[name])
        step.close()
        key = step.timing or step.name
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0


def check_counts(items: dict[str, list[Item]], books: dict[str, SourceBooks]) -> dict[str, Any]:
    """The manifest's ``counts``: read = kept + dropped per source, or an internal error."""
    counts: dict[str, Any] = {}
    for name, bk in books.items():
        kept, dropped = len(items[name]), sum(bk.dropped.values())
        if bk.read != kept + dropped:
            raise BuildError(f"internal: source {name}: read {bk.read} != kept {kept} + dropped {dropped}")
        counts[name] = {"read": bk.read, "kept": kept, "dropped": dict(sorted(bk.dropped.items()))}
        if bk.trimmed:
            counts[name]["trimmed"] = dict(sorted(bk.trimmed.items()))
        if bk.unvisited:  # not part of read: never converted nor judged (``VisitOrder``)
            counts[name]["unvisited"] = bk.unvisited
    return counts


def largest_remainder(total: int, weights: dict[str, float]) -> dict[str, int]:
    """``total`` split over ``weights`` in proportion, summing exactly to ``total``: floors first, the rest to the
    largest remainders (ties to the earlier key). Exact arithmetic, no float drift."""
    fractions = {k: Fraction(w) for k, w in weights.items()}
    norm = sum(fractions.values())
    quotas = {k: f * total / norm for k, f in fractions.items()}
    out = {k: int(q) for k, q in quotas.items()}
    order = sorted(quotas, key=lambda k: (-(quotas[k] - out[k]), list(quotas).index(k)))
    for k in order[: total - sum(out.values())]:
        out[k] += 1
    return out


def held_out_per_source(recipe) -> dict[str, int] | None:
    """With ``validation.count`` and source ``count``s: how many of each source are held out (in proportion to the
    counts, on top of them). None when the split is not stratified that way."""
    counts = {s.name: s.count for s in recipe.sources if s.count is not None}
    if recipe.validation.count is None or not counts or len(counts) != len(recipe.sources):
        return None
    return largest_remainder(recipe.validation.count, counts)


# ----------------------------------------------------------------------------------------------------------------
# reading sources


@dataclass(frozen=True)
class Family:
    """A family of source records (SFT conversations, preference pairs, MCQ, CoT): its shapes, how a file is read
    into raw records (``read_file(path, shape, lazy)``: ``lazy`` may leave records unparsed, ``importers.RawLine``)
    and how a source's ``paths`` expand to files."""

    name: str
    shapes: ShapeSet
    read_file: Callable[[Path, str, bool], Iterator[tuple[int, Any]]] = (
        lambda path, shape, lazy=False: importers.iter_raw(path, lazy))
    expand: Callable[..., list[Path]] = importers.expand_paths


def _with_system(record: Conversation | PreferencePair, system: str | None):
    """The source's ``system`` message prepended, unless the record already starts with one."""
    field_name = "prompt" if isinstance(record, PreferencePair) else "messages"
    msgs = getattr(record, field_name)
    if not system or (msgs and msgs[0].role == "system"):
        return record
    return record.model_copy(update={field_name: [Message(role="system", content=system)] + msgs})


def _streams(src: SftSource, base: Path, books: SourceBooks, family: Family,
             lazy: bool = False) -> list[tuple[str, Iterator]]:
    """(where, raw records) per input; every path is resolved before anything is read (a typo fails first)."""
    streams = []
    if src.hf:
        streams.append((f"hf:{src.hf['dataset']}", importers.iter_hf(src.hf["dataset"], src.hf.get("config"),
                                                                     src.hf.get("split", "train"))))
    for p in family.expand(src.paths, base):
        books.paths.append(str(p))
        streams.append((str(p), family.read_file(p, src.shape, lazy)))
    return streams


@dataclass(frozen=True)
class VisitOrder:
    """How a source with an exact ``count`` is read: its raw records in the seeded order ``random.Random(seed)
    .shuffle`` gives, converted and judged in that order only until ``goal`` of them survived import (None: all).

    The selection contract of ``count`` (``CountStep``): the first ``count`` (+ held-out share) records *in this order*
    that pass every filter. Every filter judges a record alone, so judging a prefix of the order keeps exactly the
    rows judging every record would keep — as long as the prefix holds enough survivors; when it does not, the build
    judges a longer prefix, grown by the shortfall (``VisitMore``). Only dedup looks across records: a duplicate
    among records never visited is not seen. Records never visited are never converted either: ``on_error: fail``
    stops only on a bad record it visits. The manifest's ``counts`` give ``read`` (visited) and ``unvisited`` per
    source."""

    seed: str
    goal: int | None = None


class VisitMore(Exception):
    """Internal: these sources' visited prefix had too few survivors for their count; judge more of their records.
    ``sources``: name -> (survivors needed, survivors the prefix gave)."""

    def __init__(self, sources: dict[str, tuple[int, int]]):
        super().__init__(", ".join(sorted(sources)))
        self.sources = sources


def read_source(src: SftSource, base: Path, books: SourceBooks, family: Family, options: dict | None = None,
                fail_on_drop: bool = False, order: VisitOrder | None = None) -> list[Item]:
    """Import a source's records (at most ``limit``); import drops go to the books, the rest become items.

    ``options``: the importer options (default: the source's own). ``fail_on_drop`` (``on_error: fail``): the first
    record of bad input (an import drop) stops the build with its file, record and reason instead of being counted;
    a format's own rules (``FormatRule``, step ``format``) stay counted drops. ``order``: read in that seeded order
    (:class:`VisitOrder`); with ``limit``, the first ``limit`` records of the files, then that order over them.
    """
    kw = {"source": src.name, "shape": src.shape, "options": src.options if options is None else options,
          "id_field": src.id_field, "label_field": src.label_field, "shapes": family.shapes}
    visiting = order is not None and src.limit is None
    streams = _streams(src, base, books, family, lazy=visiting)  # lazy: the unvisited records are never parsed
    if visiting:
        records = _visited_records(streams, books, order, kw)
    else:
        records = (r for where, stream in streams
                   for r in importers.import_records(stream, where=where, id_prefix=_id_prefix(where), **kw))
    out = _items(records, src, books, fail_on_drop)
    if order is not None and src.limit is not None:
        random.Random(order.seed).shuffle(out)
    return out


def _id_prefix(where: str) -> str:
    return where if where.startswith("hf:") else Path(where).name


def _items(records: Iterator, src: SftSource, books: SourceBooks, fail_on_drop: bool) -> list[Item]:
    out: list[Item] = []
    for record in records:
        if src.limit is not None and books.read >= src.limit:
            break
        books.read += 1
        if isinstance(record, Drop):
            if fail_on_drop and record.step == "import":
                raise BuildError(f"source {src.name}: {record.detail} ({record.reason}; on_error: fail)")
            books.import_drop(record)
            continue
        record = _with_system(record, src.system)
        if isinstance(record, PreferencePair):
            out.append(Item(record.conversation("chosen"), rejected=record.conversation("rejected")))
        else:
            out.append(Item(record))
    books.step("import", books.read, len(out), Counter(books.dropped))
    return out


def _visited_records(streams: list[tuple[str, Iterator]], books: SourceBooks, order: VisitOrder, kw: dict) -> list:
    """Every file's raw records parsed, shuffled by ``order.seed`` over all files, then converted in that order (each
    file's through ``import_records`` as usual: its shape, ids, drops) until ``order.goal`` of them survived import;
    returned in the shuffled order. Converted in parts: the first as large as the goal, each next one sized by the
    share of records that survived so far (a source whose importer drops a third is not read whole, nor judged
    record by record)."""
    raw = [(s, i, rec) for s, (_, stream) in enumerate(streams) for i, rec in stream]
    ranks = list(range(len(raw)))
    random.Random(order.seed).shuffle(ranks)
    out: list = []
    shapes: dict[int, dict] = {}  # per file: the shape its first converted record fixed (import_records' shape_memo)
    done = kept = 0
    while done < len(ranks) and (order.goal is None or kept < order.goal):
        end = len(ranks) if order.goal is None else min(len(ranks), done + _next_part(order.goal, kept, done))
        part = _convert_part([(pos, raw[ranks[pos]]) for pos in range(done, end)], streams, shapes, kw)
        kept += sum(not isinstance(r, Drop) for r in part)
        out += part
        done = end
    books.unvisited = len(raw) - done
    return out


def _next_part(goal: int, kept: int, done: int) -> int:
    """How many more records to convert for ``goal`` survivors, ``kept`` of ``done`` converted so far."""
    if done == 0:
        return goal
    rate = max(kept / done, 0.05)
    return max(16, math.ceil((goal - kept) / rate))


def _convert_part(part: list[tuple[int, tuple[int, int, Any]]], streams: list[tuple[str, Iterator]],
                  shapes: dict[int, dict], kw: dict) -> list:
    """``(position, (file, index, raw record))`` converted, each file's records together; outputs by position."""
    per_stream: dict[int, list[tuple[int, int, Any]]] = {}
    for pos, (s, i, rec) in part:
        per_stream.setdefault(s, []).append((pos, i, rec))
    tagged: list[tuple[int, Any]] = []
    for s in sorted(per_stream):
        where = streams[s][0]
        at = [0]  # the position of the record import_records is converting (it yields a record's outputs in turn)

        def feed(recs=per_stream[s], at=at):
            for pos, i, rec in recs:
                at[0] = pos
                yield i, rec

        tagged += [(at[0], r) for r in importers.import_records(
            feed(), where=where, id_prefix=_id_prefix(where), shape_memo=shapes.setdefault(s, {}), **kw)]
    tagged.sort(key=lambda t: t[0])  # stable: a record's outputs keep their order
    return [r for _, r in tagged]
