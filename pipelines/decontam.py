"""Benchmark decontamination: an n-gram index of test items, built once per benchmark set, and a datatrove step that
checks every document against it.

Why not datatrove's ``NGramsDecontIndexer`` / ``NGramsDecontFilter``: the indexer reads its tasks through lighteval
from the hub (neither installed nor reachable offline) and the filter splits each document into words with spaCy
(~6 ms a page) and calls any single n-gram shared with a task contamination, which on real Chinese pages flags
dates, slogans and famous lines (this index under that rule, 13 characters: 21 of 1,000 SkyPile pages). Reused
from datatrove: its normalisation (``simplify_text``, reproduced exactly by :func:`normalize`, faster), ``BaseFilter`` (counts, rejected writer) and
the indexer's idea of indexing the windows that span question and answer. Ours, because no library does it offline:
the word split (a Chinese character is one word), a vectorised polynomial rolling hash over per-word xxh3 values, a
bitmap prefilter and a sorted ``uint64`` array looked up with ``numpy.searchsorted``, and the overlap rule below.

**Words** (:func:`words`): ``simplify_text``, then every CJK character is a word and every other whitespace-free run
is a word; single latin letters are dropped on both sides, so option labels (``A.``, ``(b)``) neither break a window
nor have to match (the article ``a`` goes too, in items and documents alike).

**Parts and overlap**: a test item has parts (question + options, the question alone, question + answer, the
explanation: ``builders/benchmarks.py``); a part of at least ``ngram`` words gives all its ``ngram``-windows, a
shorter one of at least ``min_ngram`` words (numbers not counted) is one window, matched whole. A document holds an
item when it holds at least ``min_overlap`` (default half) of one part's windows: a planted item, edited or embedded,
holds all of them; a page that merely shares a phrase with a long question holds a few. A short question matched
whole that two items share ("which of the following is true") is boilerplate and is left out.

**Index** (:class:`NgramIndex`, a folder written once under a temp name, reused while the benchmark files, their
sizes and mtimes and the parameters are unchanged): the arrays are memory-mapped, so every worker shares one copy in
the page cache and memory does not grow with the input, which is streamed through the step.

**Benchmarks** (:func:`resolve_benchmarks`): the recipe's ``decontaminate.benchmarks`` (+ ``files``), else
``$SHARDSMITH_BENCHMARKS``, else nothing — and then the build logs a warning and the manifest says ``not_checked``.
An entry may name a hub split (``hf:cais/mmlu:all@test``, :mod:`.hub_benchmarks`), fetched once into a local cache.
Reading the benchmark files reuses the MCQ/CoT/SFT importers of ``builders/`` (``builders/benchmarks.py``), imported
lazily when an index is built, the way ``pipelines/block_source.py`` builds blocks: the parsing has one home.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import regex
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils.logging import logger
from datatrove.utils.text import NUMBERS_PATTERN, PUNCTUATION, WHITESPACE_PATTERN
from xxhash import xxh3_64_intdigest

from shardsmith.schemas.decontam import BenchmarkInfo, DecontamHit, DecontamReport, DecontamSpec

from .hub_benchmarks import fetch_hub_benchmark, is_hub_name
from .zh_filters import DETAIL_KEY

ENV_BENCHMARKS = "SHARDSMITH_BENCHMARKS"
BENCHMARK_PREFIX = "mcq_"  # ../shared/data: mcq_mmlu, mcq_cmmlu, ... ; the name is what follows
INDEX_VERSION = 2
# datatrove's ``simplify_text`` with its default config, step for step, with two steps done in C instead of Python:
# punctuation (``str.translate`` with a dict) and diacritics (a per-character loop) — they were most of the time
_PUNCT = re.compile("[" + re.escape(PUNCTUATION) + "]")
_MARKS = regex.compile(r"\p{Mn}+")
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\s{_CJK}]{{2,}}|[^\sa-z{_CJK}]")
_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier of the rolling hash (2^64 / golden ratio)
META_KEY = "decontam"  # document metadata: {benchmark, item, ngram}


# ---------------------------------------------------------------------------------------------------------------
# words and window hashes


def strip_marks(text: str) -> str:
    """datatrove's diacritics step (NFD, then drop every Mn character), as one regex pass; ASCII passes untouched."""
    return text if text.isascii() else _MARKS.sub("", unicodedata.normalize("NFD", text))


def normalize(text: str) -> str:
    """Exactly datatrove's ``simplify_text(text)`` (default ``TextNormConfig``: lowercase, numbers -> 0, punctuation
    -> space, whitespace, diacritics), faster (tests/test_decontam.py compares the two on real documents)."""
    text = NUMBERS_PATTERN.sub("0", text.lower())
    text = WHITESPACE_PATTERN.sub(" ", _PUNCT.sub(" ", text).strip())
    return strip_marks(text).strip()


def words(text: str) -> list[str]:
    """The words of ``normalize(text)`` (see the module docstring): what the index and the documents are cut into.
    (Whitespace need not be collapsed to be split on: that step of :func:`normalize` is left out here.)"""
    return _WORD.findall(strip_marks(_PUNCT.sub(" ", NUMBERS_PATTERN.sub("0", text.lower()))))


def word_values(ws: list[str]) -> np.ndarray:
    """One stable 64-bit value per word (xxh3; the same in every process, unlike ``hash``)."""
    return np.fromiter(map(xxh3_64_intdigest, ws), dtype=np.uint64, count=len(ws))


def window_hashes(values: np.ndarray, lengths: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(L, hash of every L-word window) for each L in ``lengths`` that fits, shortest first: h_L[i] =
    h_{L-1}[i] * B + v[i + L - 1] (mod 2^64), one vector operation per length."""
    wanted = sorted(set(lengths))
    if not wanted or len(values) < wanted[0]:
        return
    h = values.copy()
    with np.errstate(over="ignore"):
        for length in range(1, min(wanted[-1], len(values)) + 1):
            if length > 1:
                h = h[:-1] * _BASE + values[length - 1:]
            if length in wanted:
                yield length, h


# ---------------------------------------------------------------------------------------------------------------
# test items and the index


@dataclass(frozen=True)
class TestItem:
    """One benchmark test item: its id and the texts a contaminated document would repeat (each cut separately)."""

    benchmark: str
    item_id: str
    texts: tuple[str, ...]


@dataclass
class Hit:
    """A document that holds at least ``min_overlap`` of the n-grams of one part of a test item."""

    benchmark: str
    item: str
    ngram: str  # the first shared window, normalised
    overlap: float  # share of the part's n-grams found in the document

    def detail(self) -> str:
        return f"{self.benchmark} item {self.item}: {self.overlap:.0%} of a part's n-grams, e.g. '{self.ngram}'"


@dataclass
class _Tally:
    """Per-benchmark counts while an index is built."""

    paths: list = field(default_factory=list)
    items: int = 0
    whole: int = 0
    too_short: int = 0
    ngrams: int = 0


def part_windows(text: str, ngram: int, min_ngram: int) -> tuple[np.ndarray, bool]:
    """(distinct window hashes, whole?) of one part: every ``ngram``-window of a long text; a text of
    ``min_ngram``..``ngram - 1`` words (numbers not counted) as one window, whole; a shorter one: none."""
    ws = words(text)
    if len(ws) >= ngram:
        return np.unique(next(window_hashes(word_values(ws), [ngram]))[1]), False
    if len(ws) - ws.count("0") >= min_ngram:
        return next(window_hashes(word_values(ws), [len(ws)]))[1], True
    return np.zeros(0, np.uint64), False


def _root(files: list[Path]) -> Path:
    """The folder the files share (a single file: itself)."""
    return files[0] if len(files) == 1 else Path(os.path.commonpath([f.parent for f in files]))


BITMAP_BITS = 27  # 2^27-bit prefilter (16 MiB): ~1-2 % of a document's windows reach the binary search


@dataclass
class _Parts:
    """The index while it is built: window hashes per part, the item of each part, per-benchmark counts."""

    ngram: int
    min_ngram: int
    chunks: list = field(default_factory=list)
    whole: list = field(default_factory=list)  # per part: matched whole (short)
    part_item: list = field(default_factory=list)
    names: list = field(default_factory=list)
    tally: dict = field(default_factory=dict)

    def add(self, item: TestItem) -> None:
        t = self.tally.setdefault(item.benchmark, _Tally())
        kinds = []
        for text in item.texts:
            hashes, whole = part_windows(text, self.ngram, self.min_ngram)
            if hashes.size:
                self.chunks.append(hashes)
                self.whole.append(whole)
                self.part_item.append(len(self.names))
                kinds.append(whole)
        t.items += 1
        t.whole += bool(kinds) and all(kinds)
        t.too_short += not kinds
        self.names.append((item.benchmark, item.item_id))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hashes sorted, part of each, windows per part). A short question matched whole that two different items
        share ("which of the following is true") is boilerplate, not an item: dropped."""
        sizes = np.array([c.size for c in self.chunks], np.int64)
        hashes = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.uint64)
        part = np.repeat(np.arange(sizes.size, dtype=np.int32), sizes)
        whole = np.repeat(np.array(self.whole, bool), sizes)
        item = np.array(self.part_item, np.int32)[part] if sizes.size else np.zeros(0, np.int32)
        order = np.lexsort((item, hashes))
        hashes, part, whole, item = hashes[order], part[order], whole[order], item[order]
        same_hash = np.zeros(hashes.size, bool)
        same_hash[1:] = hashes[1:] == hashes[:-1]
        other_item = np.zeros(hashes.size, bool)
        other_item[1:] = same_hash[1:] & (item[1:] != item[:-1])
        shared = np.isin(hashes, hashes[other_item]) & whole
        hashes, part, whole = hashes[~shared], part[~shared], whole[~shared]
        return hashes, part, np.bincount(part, minlength=sizes.size).astype(np.int32)


class NgramIndex:
    """A built index folder, memory-mapped; :meth:`match` says whether a text holds a test item.

    A test item has parts (question with its options, the question alone, question + answer, explanation:
    ``builders/benchmarks.py``); a document holds an item when it holds at least ``min_overlap`` of one part's
    n-grams — a phrase a document merely shares with a longer part is not enough. Files: ``hashes.npy`` (sorted
    window hashes), ``parts.npy`` (the part of each), ``part_items.npy`` and ``part_sizes.npy`` (each part's item and
    window count), ``bitmap.npy`` (one bit per ``hash >> (64 - BITMAP_BITS)``: a window whose bit is 0 is in no part,
    without a search), ``items.jsonl`` (benchmark, item id) and ``index.json``.
    """

    ARRAYS = ("hashes", "parts", "part_items", "part_sizes", "bitmap")

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.meta = json.loads((self.folder / "index.json").read_text(encoding="utf-8"))
        self.hashes, self.parts, self.part_items, self.part_sizes, self.bitmap = (  # mapped, as plain arrays
            np.asarray(np.load(self.folder / f"{n}.npy", mmap_mode="r")) for n in self.ARRAYS)
        with open(self.folder / "items.jsonl", encoding="utf-8") as f:
            self.names = [tuple(json.loads(line)) for line in f]
        self.lengths = tuple(self.meta["lengths"])
        self.min_overlap = float(self.meta["min_overlap"])

    @property
    def benchmarks(self) -> list[BenchmarkInfo]:
        return [BenchmarkInfo(**b) for b in self.meta["benchmarks"]]

    def _found(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index into ``h``, index row) for every index row that holds a hash of ``h``: a bitmap gather first, a
        binary search only for the few hashes whose bit is set."""
        slot = h >> np.uint64(64 - BITMAP_BITS)
        maybe = np.flatnonzero((self.bitmap[slot >> np.uint64(3)] >> (slot & np.uint64(7)).astype(np.uint8)) & 1)
        if not maybe.size:
            return maybe, maybe
        left = np.searchsorted(self.hashes, h[maybe], "left")
        right = np.searchsorted(self.hashes, h[maybe], "right")
        n = right - left
        rows = np.concatenate([np.arange(a, b) for a, b in zip(left[n > 0], right[n > 0])] or [maybe[:0]])
        return np.repeat(maybe, n), rows

    def match(self, text: str) -> Hit | None:
        """The item part with the largest share of its n-grams in ``text``, if that share reaches ``min_overlap``."""
        ws = words(text)
        if not self.lengths or len(ws) < self.lengths[0]:
            return None
        windows = list(window_hashes(word_values(ws), self.lengths))
        at, rows = self._found(np.concatenate([h for _, h in windows]))  # every length in one pass
        if not rows.size:
            return None
        uniq = np.unique(rows)
        parts, counts = np.unique(self.parts[uniq], return_counts=True)
        share = counts / self.part_sizes[parts]
        best = int(np.argmax(share))
        if share[best] < self.min_overlap:
            return None
        part = parts[best]
        first = int(at[np.flatnonzero(self.parts[rows] == part)[0]])
        for length, h in windows:  # back from the flat position to (length, start)
            if first < h.size:
                break
            first -= h.size
        benchmark, item_id = self.names[int(self.part_items[part])]
        return Hit(benchmark, item_id, " ".join(ws[first:first + length]), float(share[best]))

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, items: Iterable[TestItem], folder: str | os.PathLike, *, ngram: int, min_ngram: int,
              min_overlap: float, fingerprint: str, paths: dict[str, list[Path]] | None = None) -> NgramIndex:
        """Index ``items`` into ``folder`` (written under a temp name, then renamed onto it)."""
        folder = Path(folder)
        acc = _Parts(ngram, min_ngram)
        for item in items:
            acc.add(item)
        hashes, parts, sizes = acc.arrays()
        part_items = np.array(acc.part_item, np.int32)
        bench_of = np.array([list(acc.tally).index(b) for b, _ in acc.names], np.int32)
        per_bench = np.bincount(bench_of[part_items], weights=sizes, minlength=len(acc.tally)) if sizes.size else []
        for t, n in zip(acc.tally.values(), per_bench):
            t.ngrams = int(n)
        for name, ps in (paths or {}).items():
            acc.tally.setdefault(name, _Tally()).paths = list(ps)
        slot = hashes >> np.uint64(64 - BITMAP_BITS)
        bitmap = np.zeros(1 << (BITMAP_BITS - 3), np.uint8)
        np.bitwise_or.at(bitmap, slot >> np.uint64(3), np.left_shift(1, slot & np.uint64(7)).astype(np.uint8))
        meta = {
            "version": INDEX_VERSION, "fingerprint": fingerprint, "ngram": ngram, "min_ngram": min_ngram,
            "min_overlap": min_overlap, "lengths": sorted({ngram, *range(min_ngram, ngram)}),
            "benchmarks": [BenchmarkInfo(name=b, paths=[str(_root(t.paths))] if t.paths else [], files=len(t.paths),
                                         items=t.items, ngrams=t.ngrams, whole_items=t.whole,
                                         too_short=t.too_short).model_dump() for b, t in acc.tally.items()],
        }
        tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        tmp.mkdir(parents=True)
        for name, arr in zip(cls.ARRAYS, (hashes, parts, part_items, sizes, bitmap)):
            np.save(tmp / f"{name}.npy", arr)
        with open(tmp / "items.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(n, ensure_ascii=False) + "\n" for n in acc.names)
        (tmp / "index.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
        return cls(folder)


# ---------------------------------------------------------------------------------------------------------------
# which benchmarks


@dataclass
class BenchmarkPlan:
    """What a build checks: ``sets`` (benchmark name -> files) or a status saying why nothing."""

    status: str  # checked | not_checked | opted_out
    note: str
    spec: DecontamSpec
    sets: dict[str, list[Path]] = field(default_factory=dict)
    shapes: dict[str, str] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Changes when a file, its size or mtime, or an index parameter changes: the index is then rebuilt."""
        params = [INDEX_VERSION, self.spec.ngram, self.spec.min_ngram, self.spec.min_overlap]
        h = hashlib.sha256(json.dumps(params).encode())
        for name, files in sorted(self.sets.items()):
            for p in files:
                st = p.stat()
                h.update(f"{name}\0{self.shapes.get(name, 'auto')}\0{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()


def _benchmark_folders(path: Path) -> dict[str, Path]:
    """A folder of ``mcq_<name>/`` folders -> {name: folder}; a benchmark's own folder or file -> {its name: path}."""
    subs = sorted(p for p in path.iterdir() if p.is_dir() and p.name.startswith(BENCHMARK_PREFIX)) \
        if path.is_dir() else []
    if subs:
        return {p.name[len(BENCHMARK_PREFIX):]: p for p in subs}
    name = path.name.split(".")[0] if path.is_file() else path.name
    return {name.removeprefix(BENCHMARK_PREFIX): path}


def resolve_benchmarks(spec: DecontamSpec | None, base: str | os.PathLike | None = None) -> BenchmarkPlan:
    """The benchmarks a build checks: the recipe's, else ``$SHARDSMITH_BENCHMARKS`` (entries separated by commas),
    else none (said loudly). An entry is a local folder/file or a hub name ``hf:<repo>[:<config>][@<split>]``
    (:mod:`.hub_benchmarks`: fetched once into a local cache). A path that does not exist is a one-line error."""
    from shardsmith.builders.benchmarks import benchmark_files

    spec = spec or DecontamSpec()
    if not spec.enabled:
        return BenchmarkPlan("opted_out", "decontaminate: false in the recipe; nothing was checked", spec)
    base = Path(base) if base else Path.cwd()
    roots, where = spec.benchmarks, "the recipe's decontaminate.benchmarks"
    if roots is None and os.environ.get(ENV_BENCHMARKS):
        env = os.environ[ENV_BENCHMARKS]
        roots, where = [r.strip() for r in env.split(",") if r.strip()], f"${ENV_BENCHMARKS}={env}"
    plan = BenchmarkPlan("checked", "", spec)
    for raw in roots or []:
        if is_hub_name(raw):
            name, file = fetch_hub_benchmark(raw)
            plan.sets[name] = [file]
            continue
        p = Path(os.path.expandvars(os.path.expanduser(raw)))
        p = p if p.is_absolute() else base / p
        if not p.exists():
            raise FileNotFoundError(f"decontaminate: benchmark path {raw} not found ({p})")
        for name, folder in _benchmark_folders(p).items():
            plan.sets[name] = benchmark_files(folder)
    for user in spec.files:
        plan.sets[user.name] = benchmark_files(*[(base / os.path.expanduser(x)) for x in user.paths], user=True)
        plan.shapes[user.name] = user.shape
    if not plan.sets:
        plan.status = "not_checked"
        plan.note = (f"no benchmarks: the recipe has no decontaminate.benchmarks and ${ENV_BENCHMARKS} is unset; "
                     "this build was NOT checked for benchmark contamination")
        logger.warning(f"decontamination: {plan.note}")
    else:
        plan.note = f"benchmarks from {where}" + (" and decontaminate.files" if spec.files else "") \
            if roots else "benchmarks from decontaminate.files"
    return plan


def ensure_index(plan: BenchmarkPlan, folder: str | os.PathLike) -> NgramIndex:
    """The index of ``plan``'s benchmarks in ``folder``: reused when its fingerprint matches, else built once."""
    from shardsmith.builders.benchmarks import read_test_items

    folder = Path(folder)
    fp = plan.fingerprint()
    meta = folder / "index.json"
    if meta.is_file() and json.loads(meta.read_text(encoding="utf-8")).get("fingerprint") == fp:
        return NgramIndex(folder)
    items = read_test_items(plan.sets, plan.shapes)
    return NgramIndex.build(items, folder, ngram=plan.spec.ngram, min_ngram=plan.spec.min_ngram,
                            min_overlap=plan.spec.min_overlap, fingerprint=fp, paths=plan.sets)


def index_folder(spec: DecontamSpec, out: Path, base: Path | None = None) -> Path:
    """Where a build keeps its index: ``decontaminate.index``, else beside the shard set (``<DIR>.decontam-index``)."""
    if spec.index:
        p = Path(os.path.expanduser(spec.index))
        return p if p.is_absolute() else (base or Path.cwd()) / p
    return out.parent / f"{out.name}.decontam-index"


def base_report(plan: BenchmarkPlan, index: NgramIndex | None) -> DecontamReport:
    """The manifest's ``decontamination`` without the counts."""
    if index is None:
        return DecontamReport(status=plan.status, note=plan.note)
    return DecontamReport(status="checked", note=plan.note, action=plan.spec.action, ngram=plan.spec.ngram,
                          min_ngram=plan.spec.min_ngram, min_overlap=plan.spec.min_overlap, index=str(index.folder),
                          benchmarks=index.benchmarks)


# ---------------------------------------------------------------------------------------------------------------
# the datatrove step


class DecontamFilter(BaseFilter):
    """Drops (``action: drop``, reason ``contaminated_<benchmark>``) or flags (``flag``: kept, counted as
    ``flagged_<benchmark>``) each document sharing an n-gram with a test item; the hit (benchmark, item, n-gram)
    goes into ``metadata['decontam']`` and the rejected record's reason. The index is loaded (memory-mapped) on the
    first document of each task."""

    name = "🧪 decontaminate"
    type = "🦠 - DECONT"

    def __init__(self, index_folder: str, action: str = "drop", exclusion_writer=None, flag_writer=None):
        super().__init__(exclusion_writer)
        self.index_folder = str(index_folder)
        self.action = action
        self.flag_writer = flag_writer
        self._index: NgramIndex | None = None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if self._index is None:
            self._index = NgramIndex(self.index_folder)
        hit = self._index.match(doc.text)
        if hit is None:
            return True
        doc.metadata[META_KEY] = {"benchmark": hit.benchmark, "item": hit.item, "ngram": hit.ngram,
                                  "overlap": round(hit.overlap, 3)}
        doc.metadata[DETAIL_KEY] = hit.detail()
        if self.action == "flag":
            self.stat_update(f"flagged_{hit.benchmark}")
            if self.flag_writer is not None:
                self._flags.write(doc, self._rank)
            return True
        return False, f"contaminated_{hit.benchmark}"

    def run(self, data, rank: int = 0, world_size: int = 1):
        if self.flag_writer is None:
            yield from super().run(data, rank, world_size)
            return
        with self.flag_writer as self._flags:
            self._rank = rank
            yield from super().run(data, rank, world_size)


def hits_from_stats(stats: dict) -> dict[str, int]:
    """{benchmark: documents} from a DecontamFilter's summed datatrove stats (drop or flag)."""
    out = {}
    for key, value in stats.items():
        for prefix in ("dropped_contaminated_", "flagged_"):
            if key.startswith(prefix):
                out[key[len(prefix):]] = out.get(key[len(prefix):], 0) + int(value)
    return dict(sorted(out.items()))


def examples_from_records(folder: Path, source: str, limit: int = 5) -> list[DecontamHit]:
    """The first ``limit`` hits written to a rejected/flagged folder (``*.jsonl.gz``)."""
    import gzip

    out: list[DecontamHit] = []
    for path in sorted(folder.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                hit = rec.get("metadata", {}).get(META_KEY)
                if hit:
                    out.append(DecontamHit(source=source, id=str(rec.get("id")), **hit))
                if len(out) >= limit:
                    return out
    return out


class MixDecontamination:
    """A mix's decontamination: resolves the benchmarks at construction (a missing path fails before any work, a
    build without benchmarks warns), builds the index once on the first source, hands each source its step, and
    writes the manifest's report from the steps' stats."""

    STEP = "decontam"

    def __init__(self, spec: DecontamSpec | None, out: Path):
        self.out = out
        self.plan = resolve_benchmarks(spec)
        self.index: NgramIndex | None = None

    def steps(self, source: str, rejected_dir: str) -> list[tuple[str, BaseFilter]]:
        """``[("decontam", step)]`` for one source, or ``[]`` when nothing is checked."""
        from .rejected import RejectedRecordAdapter, rejected_writer

        if self.plan.status != "checked":
            return []
        if self.index is None:
            self.index = ensure_index(self.plan, index_folder(self.plan.spec, self.out))
        adapter = RejectedRecordAdapter(source, self.STEP)
        action = self.plan.spec.action
        drops = rejected_writer(rejected_dir, source, self.STEP, adapter) if action == "drop" else None
        flags = rejected_writer(str(self.out / "flagged"), source, self.STEP, adapter) if action == "flag" else None
        return [(self.STEP, DecontamFilter(str(self.index.folder), action, drops, flags))]

    def report(self, logs: Path, sources: list[str]) -> DecontamReport:
        """The manifest's ``decontamination``: benchmarks, documents checked and hits per source and benchmark."""
        from .stats import rank_stats

        rep = base_report(self.plan, self.index)
        if self.index is None:
            return rep
        folder = "rejected" if self.plan.spec.action == "drop" else "flagged"
        for src in sources:
            stats = rank_stats(logs / "filter" / src)
            step = next((s for s in stats if s["name"].endswith(DecontamFilter.name)), None)
            if step is None:
                continue
            rep.checked[src] = int(step["stats"].get("total", 0))
            rep.hits[src] = hits_from_stats(step["stats"])
            rep.examples += examples_from_records(self.out / folder / src / self.STEP, src)
        return rep


def format_report(rep: DecontamReport | None, where: str = "") -> str:
    """``shardsmith decontam-report``: status, benchmarks, hits per source and benchmark, the first hits."""
    if rep is None:
        return f"{where}: no decontamination record (built before decontamination existed): NOT checked"
    lines = [f"decontamination: {rep.status.upper().replace('_', ' ')} — {rep.note}"]
    if rep.status != "checked":
        return "\n".join(lines)
    lines.append(f"action {rep.action}; {rep.ngram}-grams of normalised words (a CJK character is a word), items of "
                 f"{rep.min_ngram}+ words matched whole; a hit holds >= {rep.min_overlap:.0%} of the n-grams of one "
                 "part of an item")
    lines.append(f"index: {rep.index}")
    lines.append(f"\n{'benchmark':<20}{'files':>7}{'items':>9}{'n-grams':>11}{'whole':>7}{'too short':>11}  path")
    for b in rep.benchmarks:
        lines.append(f"{b.name:<20}{b.files:>7,}{b.items:>9,}{b.ngrams:>11,}{b.whole_items:>7,}{b.too_short:>11,}  "
                     f"{', '.join(b.paths)}")
    names = [b.name for b in rep.benchmarks]
    lines.append(f"\n{'source':<24}{'checked':>9}{'hits':>7}  " + "  ".join(names))
    for src, n in rep.checked.items():
        hits = rep.hits.get(src, {})
        lines.append(f"{src:<24}{n:>9,}{sum(hits.values()):>7,}  "
                     + "  ".join(f"{hits.get(b, 0):>{len(b)},}" for b in names))
    if rep.examples:
        lines.append("\nfirst hits:")
        lines += [f"  {e.source} {e.id} <- {e.benchmark} {e.item} ({e.overlap:.0%}): '{e.ngram}'"
                  for e in rep.examples]
    return "\n".join(lines)
