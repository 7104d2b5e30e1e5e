"""Loss-aware memory-mapped readers over built shard sets, window sampling and document packing.

Reads only what a builder wrote: ``manifest.json`` (dtype, tokenizer), ``SPLIT/*.ds`` (tokens), ``*.ds.index``
(uint64 cumulative document ends) and ``*.ds.loss`` (one byte per token, 1 = carries loss).

Row layout (numpy, one row = ``seq_len`` positions):

* ``input_ids``     token ids
* ``labels``        the next token, or -100 where it carries no loss: its ``.ds.loss`` byte is 0 (the mask is shifted
                    with the labels: mask[i+1] governs predicting token i+1), it lies across a document boundary
                    (document-masked rows), or it is padding
* ``position_ids``  restart at 0 for every document in document-masked rows, else 0..L-1
* ``segment_ids``   the document's index within the row (padding: -1 - position, so pads only see themselves);
                    the engine turns these into a block-causal attention mask

Preference sets (``manifest.pair_layout``) are read as pairs of adjacent documents (chosen, rejected): a batch of n
pairs has 2n rows, the n chosen completions first, each row one document, right-padded (no packing, no mask needed:
a causal row never sees its padding).

Order is a pure function of (seed, step): the global batch of step s is rows s·G .. s·G+G-1 (G = world ×
micro × accumulation) and rank r takes a contiguous block of them, so ranks read disjoint rows and a resumed run
reads exactly what an uninterrupted one would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from shardsmith.schemas.manifest import PAIR_LAYOUT, ShardManifest

IGNORE = -100
_DTYPES = {2: np.uint16, 4: np.uint32}


class DataError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------------------------
# one shard set, one split


@dataclass
class SplitReader:
    """Every file of one split of one shard set, memory-mapped and checked against the manifest."""

    root: Path
    split: str
    manifest: ShardManifest
    tokens: list[np.ndarray] = field(default_factory=list)
    ends: list[np.ndarray] = field(default_factory=list)
    loss: list[np.ndarray | None] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, root: str | Path, split: str = "train", manifest: ShardManifest | None = None) -> SplitReader:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{root}: shard set folder does not exist")
        try:
            manifest = manifest or ShardManifest.load(root)
        except FileNotFoundError as err:
            raise DataError(str(err)) from None
        info = manifest.splits.get(split)
        reader = cls(root, split, manifest)
        if info is None:
            return reader
        dtype = _DTYPES[manifest.token_size]
        for f in info.files:
            ds = root / f.path
            idx, lss = Path(f"{ds}.index"), Path(f"{ds}.loss")
            for p in (ds, idx) + ((lss,) if f.loss else ()):
                if not p.is_file():
                    raise DataError(f"{root}: shard file {p.relative_to(root)} listed in manifest.json is missing")
            size = ds.stat().st_size
            if size != f.tokens * manifest.token_size:
                raise DataError(
                    f"{ds}: {size} bytes but the manifest says {f.tokens} tokens of {manifest.token_size} bytes"
                )
            toks = np.memmap(ds, dtype=dtype, mode="r") if size else np.zeros(0, dtype)
            ends = np.memmap(idx, dtype=np.uint64, mode="r") if idx.stat().st_size else np.zeros(0, np.uint64)
            if len(ends) != f.documents or (len(ends) and int(ends[-1]) != f.tokens):
                raise DataError(f"{idx}: index does not match the manifest ({len(ends)} documents)")
            mask = None
            if f.loss:
                mask = np.memmap(lss, dtype=np.uint8, mode="r")
                if len(mask) != f.tokens:
                    raise DataError(f"{lss}: {len(mask)} mask bytes for {f.tokens} tokens")
            reader.tokens.append(toks)
            reader.ends.append(ends)
            reader.loss.append(mask)
            reader.names.append(f.path)
        return reader

    @property
    def n_tokens(self) -> int:
        return sum(len(t) for t in self.tokens)

    def doc_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(file index, start, end) of every document, in file order."""
        fi, st, en = [], [], []
        for i, ends in enumerate(self.ends):
            e = np.asarray(ends, dtype=np.int64)
            s = np.concatenate([[0], e[:-1]]) if len(e) else e
            fi.append(np.full(len(e), i, np.int32))
            st.append(s)
            en.append(e)
        if not fi:
            return np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(fi), np.concatenate(st), np.concatenate(en)


def check_objective(readers: list[SplitReader], objective: str) -> None:
    """Pair objectives (the schema's ``OBJECTIVE_ROWS`` with reads ``pairs``: DPO, rank) read preference sets only,
    and nothing else reads them (they hold rejected answers)."""
    from shardsmith.schemas.train_recipe import OBJECTIVE_ROWS

    pair_objectives = [k for k, row in OBJECTIVE_ROWS.items() if row.reads == "pairs"]
    wants_pairs = OBJECTIVE_ROWS[objective].reads == "pairs"
    for r in readers:
        layout = r.manifest.pair_layout
        if wants_pairs and layout != PAIR_LAYOUT:
            raise DataError(f"{r.root}: a '{r.manifest.kind}' set, not a preference set (no pair_layout "
                            f"{PAIR_LAYOUT!r} in its manifest); the {objective} objective needs pairs (block kind: "
                            "preference)")
        if not wants_pairs and layout is not None:
            also = f" (and {', '.join(pair_objectives[1:])})" if len(pair_objectives) > 1 else ""
            raise DataError(f"{r.root}: a preference set (chosen and rejected answers); only the "
                            f"{pair_objectives[0]} objective reads it{also}, not '{objective}'")
        n = sum(len(e) for e in r.ends)
        if layout is not None and n % 2:
            raise DataError(f"{r.root}/{r.split}: {n} documents, an odd number, in a set of pairs")


def open_sets(paths: list[str], split: str) -> list[SplitReader]:
    """Open the same split of several shard sets and check they share one tokenizer."""
    readers = [SplitReader.open(p, split) for p in paths]
    shas = {r.manifest.tokenizer.sha256 for r in readers}
    if len(shas) > 1:
        detail = ", ".join(f"{r.root}: {r.manifest.tokenizer.name} ({r.manifest.tokenizer.sha256[:12]})" for r in readers)
        raise DataError(f"the stage's shard sets were built with different tokenizers: {detail}")
    return readers


# ---------------------------------------------------------------------------------------------------------------
# row assembly


@dataclass
class Batch:
    input_ids: np.ndarray
    labels: np.ndarray
    position_ids: np.ndarray
    segment_ids: np.ndarray | None
    keys: list = field(default_factory=list)  # what each row read (for checks and debugging)
    pairs: int = 0  # preference batches: rows [0, pairs) are chosen, [pairs, 2·pairs) the matching rejected
    real_tokens: int | None = None  # tokens that are not padding, when segment_ids does not tell

    @property
    def loss_tokens(self) -> int:
        return int((self.labels != IGNORE).sum())

    def __len__(self) -> int:
        return len(self.input_ids)


def _empty(n: int, L: int, pad_id: int, doc_masking: bool):
    ids = np.full((n, L), pad_id, np.int64)
    labels = np.full((n, L), IGNORE, np.int64)
    pos = np.tile(np.arange(L, dtype=np.int64), (n, 1))
    seg = np.tile(-1 - np.arange(L, dtype=np.int32), (n, 1)) if doc_masking else None
    return ids, labels, pos, seg


def window_rows(reader_of, picks, L: int, pad_id: int, doc_masking: bool) -> Batch:
    """``picks``: (set, file, offset) triples; each row reads tokens[offset : offset + L + 1]."""
    n = len(picks)
    ids, labels, pos, seg = _empty(n, L, pad_id, doc_masking)
    for r, (si, fi, off) in enumerate(picks):
        rd = reader_of(si)
        t = np.asarray(rd.tokens[fi][off:off + L + 1], dtype=np.int64)
        ids[r] = t[:-1]
        lab = t[1:].copy()
        mask = rd.loss[fi]
        if mask is not None:
            lab[np.asarray(mask[off + 1:off + L + 1]) == 0] = IGNORE
        if doc_masking:
            ends = rd.ends[fi]
            # documents overlapping the window: positions p (absolute) belong to doc searchsorted(ends, p, 'right')
            absolute = np.arange(off, off + L + 1, dtype=np.uint64)
            doc = np.searchsorted(ends, absolute, side="right").astype(np.int64)
            d_in = doc[:-1]
            lab[doc[1:] != d_in] = IGNORE  # next token is in another document
            seg[r] = (d_in - d_in[0]).astype(np.int32)
            starts = np.flatnonzero(np.diff(d_in, prepend=d_in[0] - 1))
            run = np.arange(L) - np.repeat(starts, np.diff(np.append(starts, L)))
            pos[r] = run
        labels[r] = lab
    return Batch(ids, labels, pos, seg, keys=[(int(a), int(b), int(c)) for a, b, c in picks])


def packed_rows(reader_of, rows, L: int, pad_id: int, doc_masking: bool) -> Batch:
    """``rows``: for each row, a list of (set, file, start, end) documents placed one after another."""
    n = len(rows)
    ids, labels, pos, seg = _empty(n, L, pad_id, doc_masking)
    keys = []
    for r, docs in enumerate(rows):
        at = 0
        for k, (si, fi, s, e) in enumerate(docs):
            rd = reader_of(si)
            e = min(e, s + L - at)  # truncate a document that does not fit (only ever the first of a row)
            m = e - s
            if m <= 0:
                continue
            t = np.asarray(rd.tokens[fi][s:e], dtype=np.int64)
            ids[r, at:at + m] = t
            lab = np.full(m, IGNORE, np.int64)
            lab[:-1] = t[1:]
            mask = rd.loss[fi]
            if mask is not None:
                lab[:-1][np.asarray(mask[s + 1:e]) == 0] = IGNORE
            labels[r, at:at + m] = lab
            if doc_masking:
                pos[r, at:at + m] = np.arange(m)
                seg[r, at:at + m] = k
            at += m
        keys.append(tuple((int(si), int(fi), int(s)) for si, fi, s, _ in docs))
    return Batch(ids, labels, pos, seg, keys=keys)


def _prompt_len(mask: np.ndarray | None, n: int) -> int:
    """Tokens before the first loss-carrying one (the rendered prompt)."""
    if mask is None:
        return 0
    hit = np.flatnonzero(np.asarray(mask) != 0)
    return int(hit[0]) if len(hit) else n


def pair_rows(reader_of, pairs, L: int, pad_id: int) -> Batch:
    """``pairs``: (set, file_c, start_c, end_c, file_r, start_r, end_r); rows = the chosen docs, then the rejected.

    Both sides must share their prompt (the tokens before the first loss token; the last one may differ where a
    tokenizer merges across the prompt/answer boundary): a mismatch means the pairing on disk is broken."""
    n = len(pairs)
    docs = [(si, fc, sc, ec) for si, fc, sc, ec, *_ in pairs] + [(si, fr, sr, er) for si, *_, fr, sr, er in pairs]
    width = max(1, min(L, max(e - s for _, _, s, e in docs)))
    ids, labels, pos, _ = _empty(2 * n, width, pad_id, False)
    real = 0
    prompts = []
    for r, (si, fi, s, e) in enumerate(docs):
        rd = reader_of(si)
        e2 = min(e, s + L)
        m = e2 - s
        t = np.asarray(rd.tokens[fi][s:e2], dtype=np.int64)
        ids[r, :m] = t
        mask = rd.loss[fi]
        doc_mask = None if mask is None else np.asarray(mask[s:e2])
        lab = np.full(m, IGNORE, np.int64)
        lab[:-1] = t[1:]
        if doc_mask is not None:
            lab[:-1][doc_mask[1:] == 0] = IGNORE
        labels[r, :m] = lab
        real += m
        k = _prompt_len(doc_mask, m)
        prompts.append(t[:k])
    for i, (si, fc, sc, *_rest) in enumerate(pairs):
        a, b = prompts[i], prompts[n + i]
        k = min(len(a), len(b))
        if abs(len(a) - len(b)) > 1 or not np.array_equal(a[: max(k - 1, 0)], b[: max(k - 1, 0)]):
            rd = reader_of(si)
            raise DataError(f"{rd.root}/{rd.names[fc]}: the pair at token {sc} has different prompts on its chosen and "
                            "rejected sides; the set's pairing (adjacent documents, chosen first) is broken")
        if not (labels[i] != IGNORE).any() or not (labels[n + i] != IGNORE).any():
            rd = reader_of(si)
            raise DataError(f"{rd.root}/{rd.names[fc]}: the pair at token {sc} has a side without loss tokens "
                            f"(seq_len {L} cuts its answer off, or the set has no loss mask)")
    keys = [tuple(int(x) for x in p[:3]) for p in pairs]
    return Batch(ids, labels, pos, None, keys=keys, pairs=n, real_tokens=real)


# ---------------------------------------------------------------------------------------------------------------
# samplers: global row id -> what to read


def weighted_copies(table: np.ndarray, weights, rng) -> np.ndarray:
    """The rows of every set (column 0 = set index), each set's repeated int(w) times plus a seeded share frac(w):
    how a weight above or below 1 turns into whole epochs and a sample, the same for windows, documents and pairs."""
    parts = []
    for si, w in enumerate(weights):
        mine = table[table[:, 0] == si]
        whole, frac = int(w), float(w) - int(w)
        parts.extend([mine] * whole)
        if frac > 0:
            parts.append(mine[rng.random(len(mine)) < frac])
    return np.concatenate(parts)


class WindowSampler:
    """Windows of ``L + 1`` tokens. random: drawn per step from (seed, step); epoch: a shuffled tiling per epoch."""

    def __init__(self, readers: list[SplitReader], weights: list[float], L: int, seed: int, mode: str):
        self.readers, self.L, self.seed, self.mode = readers, L, seed, mode
        w = np.asarray(weights, np.float64)
        self.p_set = w / w.sum()
        self.file_ok, self.file_p = [], []
        for rd in readers:
            sizes = np.array([max(len(t) - L, 0) for t in rd.tokens], np.float64)
            if sizes.sum() == 0:
                raise DataError(f"{rd.root}/{rd.split}: no file holds {L + 1} tokens (seq_len {L} too long)")
            self.file_p.append(sizes / sizes.sum())
        if mode == "epoch":
            tiles = []
            for si, rd in enumerate(readers):
                for fi, t in enumerate(rd.tokens):
                    n = (len(t) - 1) // L
                    if n > 0:
                        tiles.append(np.stack([np.full(n, si), np.full(n, fi), np.arange(n) * L], 1))
            self.tiles = np.concatenate(tiles).astype(np.int64)
            self._weights = w
            self._epochs: dict[int, np.ndarray] = {}

    def rows_per_epoch(self) -> int:
        if self.mode == "epoch":
            if not hasattr(self, "_n0"):
                self._n0 = len(self._epoch(0))
            return self._n0
        return sum(rd.n_tokens for rd in self.readers) // self.L

    def _epoch(self, e: int) -> np.ndarray:
        if e not in self._epochs:
            rng = np.random.default_rng([self.seed, 7, e])
            order = weighted_copies(self.tiles, self._weights, rng)
            if len(self._epochs) > 2:
                self._epochs.pop(next(iter(self._epochs)))
            self._epochs[e] = order[rng.permutation(len(order))]
        return self._epochs[e]

    def picks(self, step: int, lo: int, hi: int, G: int) -> list[tuple[int, int, int]]:
        """Rows lo..hi-1 of the global batch (size G) of ``step``."""
        if self.mode == "random":
            rng = np.random.default_rng([self.seed, 11, step])
            sets = rng.choice(len(self.readers), size=G, p=self.p_set)
            u_file, u_off = rng.random(G), rng.random(G)
            out = []
            for j in range(lo, hi):
                si = int(sets[j])
                fi = int(np.searchsorted(np.cumsum(self.file_p[si]), u_file[j], side="right"))
                fi = min(fi, len(self.file_p[si]) - 1)
                span = len(self.readers[si].tokens[fi]) - self.L
                out.append((si, fi, int(u_off[j] * span)))
            return out
        n = self.rows_per_epoch()
        out = []
        for j in range(lo, hi):
            g = step * G + j
            e, i = divmod(g, n)
            tiles = self._epoch(e)
            si, fi, off = tiles[i % len(tiles)]
            out.append((int(si), int(fi), int(off)))
        return out


class _EpochSampler:
    """Samplers over whole documents: a seeded order per epoch (built by ``_make_epoch``, a few epochs cached), read
    in sequence (mode ``epoch``) or drawn per step from epoch 0 (mode ``random``)."""

    SALT_EPOCH = SALT_STEP = 0

    def __init__(self, readers: list[SplitReader], weights: list[float], L: int, seed: int, mode: str,
                 shuffle: bool = True):
        self.readers, self.L, self.seed, self.mode, self.shuffle = readers, L, seed, mode, shuffle
        self.weights = np.asarray(weights, np.float64)
        self._cache: dict[int, list] = {}

    def documents(self) -> np.ndarray:
        """(set, file, start, end) of every document of every set, in file order."""
        tabs = [np.stack([np.full(len(fi), si), fi, s, e], 1).astype(np.int64)
                for si, rd in enumerate(self.readers) for fi, s, e in [rd.doc_table()]]
        return np.concatenate(tabs) if tabs else np.zeros((0, 4), np.int64)

    def _make_epoch(self, rng) -> list:
        raise NotImplementedError

    def epoch(self, e: int) -> list:
        if e not in self._cache:
            if len(self._cache) > 2:
                self._cache.pop(next(iter(self._cache)))
            self._cache[e] = self._make_epoch(np.random.default_rng([self.seed, self.SALT_EPOCH, e]))
        return self._cache[e]

    def rows_per_epoch(self) -> int:
        if not hasattr(self, "_n0"):
            self._n0 = len(self.epoch(0))
        return self._n0

    def picks(self, step: int, lo: int, hi: int, G: int) -> list:
        if self.mode == "random":
            rows = self.epoch(0)
            idx = np.random.default_rng([self.seed, self.SALT_STEP, step]).integers(0, len(rows), size=G)
            return [rows[int(idx[j])] for j in range(lo, hi)]
        n = self.rows_per_epoch()
        out = []
        for j in range(lo, hi):
            e, i = divmod(step * G + j, n)
            rows = self.epoch(e)
            out.append(rows[i % len(rows)])
        return out


class PackedSampler(_EpochSampler):
    """Whole documents packed (next-fit, in a shuffled order per epoch) into rows of ``L`` tokens."""

    SALT_EPOCH, SALT_STEP = 13, 17

    def __init__(self, readers: list[SplitReader], weights: list[float], L: int, seed: int, mode: str,
                 shuffle: bool = True):
        super().__init__(readers, weights, L, seed, mode, shuffle)
        self.docs = self.documents()
        if not len(self.docs):
            raise DataError(f"{', '.join(str(r.root) for r in readers)}: no documents in split '{readers[0].split}'")
        self.truncated = int(((self.docs[:, 3] - self.docs[:, 2]) > L).sum())

    def _make_epoch(self, rng) -> list:
        docs = weighted_copies(self.docs, self.weights, rng)
        if self.shuffle:
            docs = docs[rng.permutation(len(docs))]
        L = self.L
        lengths = np.minimum(docs[:, 3] - docs[:, 2], L)
        rows, cur, used = [], [], 0
        for d, n in zip(docs.tolist(), lengths.tolist()):
            if n <= 0:
                continue
            if used + n > L and cur:
                rows.append(cur)
                cur, used = [], 0
            cur.append(tuple(d))
            used += n
        if cur:
            rows.append(cur)
        return rows


class PairSampler(_EpochSampler):
    """Preference pairs (documents 2i, 2i+1 of a set): a shuffled order per epoch, or drawn per step (random)."""

    SALT_EPOCH, SALT_STEP = 19, 23

    def __init__(self, readers: list[SplitReader], weights: list[float], L: int, seed: int, mode: str,
                 shuffle: bool = True):
        super().__init__(readers, weights, L, seed, mode, shuffle)
        docs = self.documents()
        for si, rd in enumerate(readers):
            n = int((docs[:, 0] == si).sum())
            if n % 2:
                raise DataError(f"{rd.root}/{rd.split}: {n} documents, an odd number, in a set of pairs")
        pairs = np.concatenate([docs[0::2], docs[1::2, 1:]], 1)  # set, file_c, start_c, end_c, file_r, start_r, end_r
        # a pair whose prompt fills the row leaves no answer token to score: it cannot be trained at this seq_len
        fits = self._answer_starts_within(pairs, 1, 2, 3, L) & self._answer_starts_within(pairs, 4, 5, 6, L)
        self.too_long = int((~fits).sum())
        self.pairs = pairs[fits]
        if not len(self.pairs):
            raise DataError(f"{', '.join(str(r.root) for r in readers)}: no pairs in split '{readers[0].split}'"
                            + (f" whose prompt fits seq_len {L} ({self.too_long} do not)" if self.too_long else ""))
        lengths = np.maximum(self.pairs[:, 3] - self.pairs[:, 2], self.pairs[:, 6] - self.pairs[:, 5])
        self.truncated = int((lengths > L).sum())

    def _answer_starts_within(self, pairs: np.ndarray, fcol: int, scol: int, ecol: int, L: int) -> np.ndarray:
        """For the documents at columns (file, start, end): does a loss-carrying token fall in the first L tokens?
        Reads at most L mask bytes per document (a whole-file scan would hold an index of every loss token)."""
        out = np.ones(len(pairs), bool)
        for row, p in enumerate(pairs):
            mask = self.readers[p[0]].loss[p[fcol]]
            if mask is not None:
                s = int(p[scol])
                out[row] = bool(np.any(mask[s:min(int(p[ecol]), s + L)]))
        return out

    def _make_epoch(self, rng) -> list:
        order = weighted_copies(self.pairs, self.weights, rng)
        if self.shuffle:
            order = order[rng.permutation(len(order))]
        return [tuple(int(x) for x in p) for p in order.tolist()]


# ---------------------------------------------------------------------------------------------------------------
# the stage's view: train batches per (step, micro) and fixed validation rows


class StageData:
    def __init__(self, paths: list[str], weights: list[float], *, seq_len: int, seed: int, sampling: str,
                 packing: bool, document_masking: bool, micro: int, accum: int, rank: int, world: int,
                 val_split: str = "validation", val_rows: int = 32, objective: str = "clm"):
        self.L, self.micro, self.accum, self.rank, self.world = seq_len, micro, accum, rank, world
        self.G = micro * accum * world
        self.packing, self.doc_masking = packing, document_masking
        from shardsmith.schemas.train_recipe import OBJECTIVE_ROWS

        self.pairs = OBJECTIVE_ROWS[objective].reads == "pairs"
        self.train = open_sets(paths, "train")
        check_objective(self.train, objective)
        self.manifest = self.train[0].manifest
        self.pad_id = int(self.manifest.tokenizer.eos_id or 0)
        if any(r.n_tokens == 0 for r in self.train):
            empty = [str(r.root) for r in self.train if r.n_tokens == 0]
            raise DataError(f"no training tokens in {', '.join(empty)}")
        cls = PairSampler if self.pairs else PackedSampler if packing else WindowSampler
        self.sampler = cls(self.train, weights, seq_len, seed, sampling)
        self.val = [r for r in open_sets(paths, val_split) if r.n_tokens > 0]
        self.val_rows = val_rows
        self._val_batch = None

    def _read(self, sets):
        return lambda si: sets[si]

    def rows_per_epoch(self) -> int:
        return self.sampler.rows_per_epoch()

    def steps_for_epochs(self, epochs: float) -> int:
        return max(1, math.ceil(epochs * self.rows_per_epoch() / self.G))

    def micro_batch(self, step: int, m: int) -> Batch:
        lo = self.rank * self.micro * self.accum + m * self.micro
        picks = self.sampler.picks(step, lo, lo + self.micro, self.G)
        if self.pairs:
            return pair_rows(self._read(self.train), picks, self.L, self.pad_id)
        if self.packing:
            return packed_rows(self._read(self.train), picks, self.L, self.pad_id, self.doc_masking)
        return window_rows(self._read(self.train), picks, self.L, self.pad_id, self.doc_masking)

    def step_batches(self, step: int) -> list[Batch]:
        return [self.micro_batch(step, m) for m in range(self.accum)]

    def validation_batches(self) -> list[Batch]:
        """Fixed validation rows (the same every evaluation), this rank's share, in micro-batches."""
        if not self.val or self.val_rows == 0:
            return []
        if self._val_batch is None:
            if self.pairs:
                s = PairSampler(self.val, [1.0] * len(self.val), self.L, 0, "epoch", shuffle=False)
                rows = [tuple(int(x) for x in p) for p in s.pairs[: self.val_rows]]
                mine = rows[self.rank::self.world]
                make = lambda rs: pair_rows(self._read(self.val), rs, self.L, self.pad_id)
            elif self.packing:
                s = PackedSampler(self.val, [1.0] * len(self.val), self.L, 0, "epoch", shuffle=False)
                rows = s.epoch(0)[: self.val_rows]
                mine = rows[self.rank::self.world]
                make = lambda rs: packed_rows(self._read(self.val), rs, self.L, self.pad_id, self.doc_masking)
            else:
                s = WindowSampler(self.val, [1.0] * len(self.val), self.L, 0, "epoch")
                tiles = s.tiles
                take = np.linspace(0, len(tiles) - 1, num=min(self.val_rows, len(tiles))).astype(int)
                rows = [tuple(int(x) for x in tiles[i]) for i in np.unique(take)]
                mine = rows[self.rank::self.world]
                make = lambda rs: window_rows(self._read(self.val), rs, self.L, self.pad_id, self.doc_masking)
            if 0 < len(rows) < self.world:  # a process without a row would skip the validation all-reduce: a hang
                raise DataError(f"validation: {len(rows)} row(s) (data.val_rows {self.val_rows}) for {self.world} "
                                "processes; every process needs one: raise data.val_rows or set it to 0")
            self._val_batch = [make(mine[i:i + self.micro]) for i in range(0, len(mine), self.micro)]
        return self._val_batch
