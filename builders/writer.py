"""The one writer every block kind shares: tokenizer + template context, split, tokenize (datatrove, with loss
masks), attribute tokens to sources, rejected records, reports, manifest — into a temp folder renamed at the end.

Output (the shard contract of ``schemas/manifest.py``)::

    DIR/train/train_00000_unshuffled.ds(.index,.loss)     documents in a seeded random order
    DIR/validation/validation_00000_unshuffled.ds(...)
    DIR/tokenizer/                                        the resolved tokenizer incl. the template's special tokens
    DIR/rejected/<source>.jsonl.gz                        every dropped record with step, reason, detail
    DIR/reports/language_disagreements.jsonl              language decisions that contradict the declared language
    DIR/reports/documents.jsonl                           kinds with ``document_report`` (surgical): per document,
                                                          in on-disk order, its split, index, source, id, metadata
    DIR/manifest.json                                     written last

Everything is built in ``DIR.parent/.DIR.building-<pid>`` and renamed onto ``DIR`` at the end (an existing ``DIR`` is
moved aside first and removed after), so a crash never leaves a folder that looks complete.

Shuffle: documents are shuffled here with the recipe seed and handed to datatrove with ``shuffle=False``, so the
order on disk is known and tokens can be attributed to sources. Pairs stay adjacent (chosen first).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shardsmith.pipelines.shards import new_manifest
from shardsmith.schemas.block_recipe import SftBlockRecipe, TemplateDef
from shardsmith.schemas.common import TokenizerSpec
from shardsmith.schemas.manifest import ShardManifest, SourceInfo
from shardsmith.schemas.records import Conversation

from .block import BuildError, Item, SourceBooks, held_out_per_source
from .encode import DocEncoder, EncodedDoc
from .templates import Rendered, resolve_template, template_info


@dataclass
class BlockContext:
    """What every step and the writer share: the recipe's tokenizer with the template's markers added as special
    tokens (one id each, checked), the template, and where relative paths resolve."""

    recipe: SftBlockRecipe
    base: Path
    template: TemplateDef
    tok: Any  # pipelines.tokenizers.ResolvedTokenizer
    tokenizer: Any  # tokenizers.Tokenizer (the encoder's: loaded once, EOS post-processor set)
    special_ids: dict[str, int] = field(default_factory=dict)
    encoder: DocEncoder | None = None

    @property
    def eos(self) -> str | None:
        return self.tok.eos_token

    @staticmethod
    def specs(recipe: SftBlockRecipe, base: Path) -> tuple[TemplateDef, TokenizerSpec]:
        """The template and the tokenizer spec with its markers, checked without loading anything (a recipe error
        before the sources are read; the tokenizer itself loads later, :meth:`resolve`)."""
        tpl = resolve_template(recipe.template, base)
        specials = list(dict.fromkeys(list(recipe.tokenizer.add_special_tokens) + list(tpl.special_tokens)))
        spec = TokenizerSpec(name=recipe.tokenizer.name, eos_token=recipe.tokenizer.eos_token,
                             add_special_tokens=specials, train=recipe.tokenizer.train)
        if spec.train is not None:
            raise BuildError("a block cannot train its tokenizer; point tokenizer.name at the pretraining tokenizer")
        return tpl, spec

    @classmethod
    def resolve(cls, recipe: SftBlockRecipe, base: Path) -> BlockContext:
        from shardsmith.pipelines.tokenizers import resolve_tokenizer

        tpl, spec = cls.specs(recipe, base)
        tok = resolve_tokenizer(spec)
        encoder = DocEncoder(tok.tokenizer_json, tok.eos_token, loaded=tok.take_loaded())
        tk = encoder.tokenizer
        special_ids = {}
        for s in tpl.special_tokens:
            ids = tk.encode(s, add_special_tokens=False).ids
            if len(ids) != 1:
                raise BuildError(f"template '{tpl.name}': marker {s!r} encodes to {len(ids)} ids {ids}, expected one")
            special_ids[s] = ids[0]
        return cls(recipe, base, tpl, tok, tk, special_ids, encoder)


def split_items(items: dict[str, list[Item]], recipe: SftBlockRecipe) -> dict[str, list[Item]]:
    """Seeded shuffle, then the first ``fraction`` (at least ``min_documents`` when possible) is validation.

    ``validation.count``: exactly that many; with source ``count``s, each source gives its share
    (:func:`~shardsmith.builders.block.held_out_per_source`), so every source has exactly ``count`` training rows.
    """
    per_source = held_out_per_source(recipe)
    if per_source is not None:
        return _split_per_source(items, per_source, recipe.seed)
    flat = [it for lst in items.values() for it in lst]
    order = list(range(len(flat)))
    random.Random(recipe.seed).shuffle(order)
    frac, count = recipe.validation.fraction, recipe.validation.count
    if count is not None:
        if count >= len(flat):
            raise BuildError(f"validation.count {count}: only {len(flat)} rows were kept, none would be left to train on")
        n_val = count
    else:
        n_val = int(round(len(order) * frac)) if frac > 0 else 0
        if frac > 0 and len(order) >= 2:
            n_val = max(n_val, min(recipe.validation.min_documents, len(order) - 1))
    return {"validation": [flat[i] for i in order[:n_val]], "train": [flat[i] for i in order[n_val:]]}


def _split_per_source(items: dict[str, list[Item]], held_out: dict[str, int], seed: int) -> dict[str, list[Item]]:
    """Each source's first ``held_out[name]`` rows of a seeded shuffle go to validation; each split is then
    shuffled as a whole (seeded), so the order on disk mixes sources."""
    splits: dict[str, list[Item]] = {"validation": [], "train": []}
    for name, lst in items.items():
        order = list(range(len(lst)))
        random.Random(f"{seed}:{name}:split").shuffle(order)
        splits["validation"] += [lst[i] for i in order[: held_out[name]]]
        splits["train"] += [lst[i] for i in order[held_out[name]:]]
    for split, lst in splits.items():
        random.Random(f"{seed}:{split}").shuffle(lst)
    return splits


@dataclass
class BlockWrite:
    """What the writer needs beyond the items: the books, the manifest's kind-specific parts."""

    kind: str  # manifest kind: sft | preference | ...
    books: dict[str, SourceBooks]
    counts: dict[str, Any]
    language_report: dict[str, Any]
    disagreements: list[dict]
    recipe_dict: dict | None = None
    source_kind: str = "sft"  # manifest sources[].kind prefix: <source_kind>:<shape>
    split_by: str = "conversation"
    extra: dict[str, Any] = field(default_factory=dict)  # more manifest fields (pair layout, ...)
    # split_by "pair": items are pairs, the manifest also counts pairs per split
    template_extra: dict[str, Any] = field(default_factory=dict)
    document_report: bool = False  # reports/documents.jsonl: each document's metadata (e.g. a surgical answer key)
    before_manifest: Callable[[], None] = lambda: None  # work that must end before the manifest (language labels)


def write_block(out_dir: str | os.PathLike, items: dict[str, list[Item]], ctx: BlockContext, w: BlockWrite,
                timings: dict) -> Path:
    """Split, tokenize and write the set with its manifest; returns the shard folder (atomic: temp, then rename)."""
    t0 = time.perf_counter()
    out = Path(out_dir).resolve()
    recipe = ctx.recipe
    all_items = [it for lst in items.values() for it in lst]
    splits = split_items(items, recipe)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.building-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir()
    try:
        # files that need no tokens: written while the first batch is being encoded (the cores are busy, this
        # thread would only wait)
        idle = [lambda: ctx.tok.copy_to(tmp / "tokenizer"),
                lambda: _write_rejected(tmp, w.books, recipe.write_rejected),
                lambda: _write_reports(tmp, w.disagreements, splits if w.document_report else None)]
        tally = _Tally()
        largest = max(splits, key=lambda k: len(splits[k]))  # its first batch takes longest: room for the idle work
        for split, lst in splits.items():
            folder = tmp / split
            folder.mkdir()
            if lst:
                write_split(lst, folder, ctx.encoder, idle if split == largest else [])
                tally.attribute(folder, split, [d for it in lst for d in it.documents()], ctx.tok.token_size)
        t0 = _tick(timings, "tokenize", t0)
        w.before_manifest()
        manifest = _manifest(items, all_items, splits, ctx, w, tally)
        from shardsmith.pipelines.shards import finalize

        finalize(tmp, manifest)
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _tick(timings, "write", t0)
    return out


def _tick(timings: dict, name: str, t0: float) -> float:
    t1 = time.perf_counter()
    timings[name] = timings.get(name, 0.0) + (t1 - t0)
    return t1


def _write_rejected(tmp: Path, books: dict[str, SourceBooks], enabled: bool) -> None:
    if not enabled:
        return
    rej = tmp / "rejected"
    rej.mkdir()
    for name, bk in books.items():
        if bk.drops:
            with gzip.open(rej / f"{name}.jsonl.gz", "wt", encoding="utf-8") as f:
                for d in bk.drops:
                    f.write(d.model_dump_json(exclude_none=True) + "\n")


def _write_reports(tmp: Path, disagreements: list[dict], splits: dict[str, list[Item]] | None = None) -> None:
    reports = tmp / "reports"
    reports.mkdir()
    with open(reports / "language_disagreements.jsonl", "w", encoding="utf-8") as f:
        for d in disagreements:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    if splits is None:
        return
    with open(reports / "documents.jsonl", "w", encoding="utf-8") as f:
        for split, lst in splits.items():
            for index, (conv, _) in enumerate(d for it in lst for d in it.documents()):
                row = {"split": split, "index": index, "source": conv.source, "id": conv.id, "metadata": conv.metadata}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _manifest(items: dict[str, list[Item]], all_items: list[Item], splits: dict[str, list[Item]], ctx: BlockContext,
              w: BlockWrite, tally: _Tally) -> ShardManifest:
    recipe = ctx.recipe
    total_kept = len(all_items)
    total_tokens = sum(tally.tokens.values()) or 1
    sources = []
    for name, bk in w.books.items():
        sources.append(SourceInfo(
            name=name,
            kind=w.source_kind if bk.src is None else f"{w.source_kind}:{bk.src.shape}",
            weight_requested=1.0,
            share_requested=round(len(items[name]) / total_kept, 6),
            share_realized=round(tally.tokens[name] / total_tokens, 6),
            documents=tally.docs[name],
            tokens=tally.tokens[name],
            epochs=1.0,
            documents_available=len(items[name]),
            tokens_available=tally.tokens[name],
            paths=bk.paths,
            declared_language=bk.declared,
            loss_tokens=tally.loss[name],
        ))
    languages = Counter(it.conv.lang or "unknown" for it in all_items)
    extra = dict(w.extra)
    if w.split_by == "pair":
        extra["pairs"] = {s: len(v) for s, v in splits.items()}
    return new_manifest(
        w.kind,
        recipe.name,
        recipe.seed,
        ctx.tok,
        loss_masks=True,
        sources=sources,
        filters={name: bk.steps for name, bk in w.books.items()},
        template={**template_info(ctx.template, ctx.eos, ctx.special_ids), **w.template_extra},
        counts=w.counts,
        languages=dict(languages.most_common()),
        recipe=w.recipe_dict if w.recipe_dict is not None else recipe.model_dump(mode="json"),
        language_report=w.language_report,
        split_rule=_split_rule(recipe, w.split_by, splits),
        **extra,
    )


def _split_rule(recipe: SftBlockRecipe, split_by: str, splits: dict[str, list[Item]]) -> dict[str, Any]:
    """How the split was drawn, and what each source gave each split (conversations, or pairs)."""
    rule: dict[str, Any] = {"by": split_by, "seed": recipe.seed, "validation_fraction": recipe.validation.fraction}
    if recipe.validation.count is not None:
        rule["validation_count"] = recipe.validation.count
    per_source: dict[str, dict[str, int]] = {}
    for split, lst in splits.items():
        for it in lst:
            per_source.setdefault(it.conv.source, {"train": 0, "validation": 0})[split] += 1
    rule["per_source"] = per_source
    return rule


def write_split(items: list[Item], folder: Path, encoder: DocEncoder, idle: list[Callable[[], Any]] = ()) -> None:
    """The split's documents, in order, into ``<split>_00000_unshuffled.ds`` (+ ``.index``, ``.loss``,
    ``.metadata``) with datatrove's ``TokenizedFile``: what ``DocumentTokenizer(shuffle_documents=False)`` writes.

    A document the token-length step encoded is written from that encoding; the others are encoded here, a batch at
    a time. One file per split: datatrove caps file sizes only when it shuffles, and a block keeps its order (pairs
    adjacent). ``idle``: work run while the first batch encodes (``DocEncoder.iter_encode``).
    """
    from datatrove.pipeline.tokens.tokenizer import TokenizedFile, get_output_filename

    out = TokenizedFile(str(folder), get_output_filename(folder.name, 0, "unshuffled"), save_index=True,
                        save_loss_metadata=True, tokenizer_name_or_path=str(encoder.step.tokenizer_name_or_path),
                        save_final_metadata=True, token_size=encoder.token_size)
    docs = [(d, e) for it in items for d, e in zip(it.documents(), it.encoded or [None] * len(it.documents()))]
    for doc in _encoded(docs, encoder, idle):
        out.write_bytes(doc.tokens)
        out.write_loss_bytes(doc.loss)
    out.close()


def _encoded(docs: list[tuple[tuple[Conversation, Rendered], EncodedDoc | None]],
             encoder: DocEncoder, idle: list[Callable[[], Any]] = ()) -> Iterator[EncodedDoc]:
    """Each document's encoding, in order: the one it carries when made from this very rendering, else a fresh
    one (the fresh ones encoded in one streamed pass)."""
    todo = [d for d, e in docs if e is None or e.rendered is not d[1]]
    fresh = encoder.iter_encode(todo, idle)
    if not todo:
        for job in idle:  # iter_encode would run them on its first document, and there is none
            job()
    for (_, r), e in docs:
        yield e if e is not None and e.rendered is r else next(fresh)


@dataclass
class _Tally:
    """Tokens, documents and loss tokens per source, read back from the files written."""

    tokens: Counter = field(default_factory=Counter)
    docs: Counter = field(default_factory=Counter)
    loss: Counter = field(default_factory=Counter)

    def attribute(self, folder: Path, split: str, lst: list[tuple[Conversation, Rendered]], token_size: int) -> None:
        """Map documents on disk (written in our order) back to sources; check the count matches."""
        from shardsmith.pipelines.shards import split_files

        i = 0
        for f in split_files(folder.parent, split, token_size):
            ends = np.asarray(f.doc_ends, dtype=np.int64)
            if i + len(ends) > len(lst):
                raise BuildError(f"{f.path}: more documents on disk than were written")
            starts = np.concatenate([[0], ends[:-1]]) if len(ends) else ends
            lmask = f.loss
            loss = None
            if lmask is not None:  # loss tokens per document, summed as one array
                csum = np.concatenate([[0], np.cumsum(np.asarray(lmask, dtype=np.int64))])
                loss = (csum[ends] - csum[starts]).tolist()
            for k, (n, conv) in enumerate(zip((ends - starts).tolist(), (d[0] for d in lst[i: i + len(ends)]))):
                self.tokens[conv.source] += n
                self.docs[conv.source] += 1
                if loss is not None:
                    self.loss[conv.source] += loss[k]
            i += len(ends)
        if i != len(lst):
            raise BuildError(f"{folder}: {i} documents on disk, {len(lst)} written")


def _swap_in(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def inspect_documents(shard_dir: str | os.PathLike, split: str = "train", limit: int | None = None) -> list[dict]:
    """Decode documents of a built set: the full text, and the text of each run of loss-carrying tokens.

    ``loss_text`` joins the decoded loss runs with '' — for a correct build it equals the assistant replies, each
    followed by its end marker, then the EOS.
    """
    from tokenizers import Tokenizer

    from shardsmith.pipelines.shards import split_files

    man = ShardManifest.load(shard_dir)
    tk = Tokenizer.from_file(str(Path(shard_dir) / man.tokenizer.path / "tokenizer.json"))
    out = []
    for f in split_files(shard_dir, split, man.token_size):
        for ids, loss in f.documents():
            out.append(_decoded(tk, [int(x) for x in ids], loss))
            if limit is not None and len(out) >= limit:
                return out
    return out


def _decoded(tk, ids: list[int], loss) -> dict:
    runs, cur = [], []
    for t, m in zip(ids, loss if loss is not None else [1] * len(ids)):
        if m:
            cur.append(t)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return {
        "ids": ids,
        "loss": [int(x) for x in loss] if loss is not None else None,
        "text": tk.decode(ids, skip_special_tokens=False),
        "loss_runs": [tk.decode(r, skip_special_tokens=False) for r in runs],
        "no_loss_text": tk.decode([t for t, m in zip(ids, loss) if not m], skip_special_tokens=False)
        if loss is not None else "",
    }
