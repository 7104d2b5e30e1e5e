"""Mix source ``kind: block``: the documents of a built SFT / preference block, decoded back to text.

Steel-LLM put SFT dialogues and WanJuan exam questions into its pretraining corpus as plain text (ChatML markers
kept, ``<|im_end|>`` appended as the document end). A ``block`` source does the same with a block shardsmith built:

- input: ``paths`` = built block folders (manifest.json, tokenizer/, train/ [validation/] ``.ds`` files), or
  ``recipe`` = a block recipe, built first into ``<work_dir>/blocks/<source name>`` (reused when a finished build
  is there, so a resumed mix does not build it twice);
- text (``block_text``): ``template`` (default) decodes each document with the block's own tokenizer, special tokens
  kept, and removes the EOS datatrove appended to it: the rendered conversation exactly as the template writes it
  (minus a final EOS that is the template's own end marker, e.g. ChatML's ``<|im_end|>`` when it is the EOS). The
  mix appends its own tokenizer's EOS to every document, so keeping the block's one would end each document twice;
  with a ``qwen`` block and Steel's tokenizer the mix's document is then Steel's stage-3 text exactly.
  ``template_eos`` keeps it; ``plain`` decodes without the tokenizer's special tokens (markers that are special
  tokens go, plain-text markers such as ``### Response:`` stay);
- ``split``: ``train`` (default: a block's validation split is its held-out SFT evaluation set, which pretraining
  must not see), ``validation`` or ``train+validation``;
- preference blocks (``pair_layout`` adjacent chosen, rejected) give their chosen documents only: a rejected answer
  is text the block says not to learn;
- ids ``<block name>/<split>/<index>``: the 0-based index of the document in that split of the block, in file order
  (the order ``shardsmith inspect`` lists); metadata ``block``, ``block_kind``, ``block_split``, ``block_index``.

A block folder that is missing, is not a finished shard set, is a mix, lacks its tokenizer or a split's files
raises ``SourceError`` in one line naming the source, the field (``paths`` / ``recipe``) and the path.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.readers.base import BaseDiskReader

from shardsmith.pipelines.readers import SourceError, SourceFileNotFoundError, SourceReaderMixin
from shardsmith.pipelines.shards import TokenFile
from shardsmith.schemas.manifest import MANIFEST_NAME, PAIR_LAYOUT, ShardManifest
from shardsmith.schemas.mix_recipe import SourceSpec

DECODE_BATCH = 1000  # documents per tokenizers.decode_batch call


@dataclass(frozen=True)
class Block:
    """A finished block folder and what its manifest says."""

    path: Path
    manifest: ShardManifest

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def chosen_only(self) -> bool:
        return self.manifest.pair_layout == PAIR_LAYOUT

    def files(self, split: str) -> list[Path]:
        """The split's ``.ds`` files, as the manifest lists them."""
        info = self.manifest.splits.get(split)
        return [self.path / f.path for f in info.files] if info else []

    def record(self, splits: tuple[str, ...]) -> dict:
        """What the mix manifest says of this block."""
        m = self.manifest
        documents = {s: m.splits[s].documents for s in splits if s in m.splits}
        return {"path": str(self.path), "name": m.name, "kind": m.kind, "created_at": m.created_at,
                "tokenizer": m.tokenizer.name, "documents": documents}


def _where(source: SourceSpec, field: str, path: str | os.PathLike) -> str:
    return f"source '{source.name}': field '{field}': {path}"


def open_block(source: SourceSpec, path: str | os.PathLike, field: str = "paths") -> Block:
    """Check that ``path`` is a finished block with the source's splits on disk; one-line ``SourceError`` if not."""
    folder = Path(os.path.expanduser(os.path.expandvars(str(path)))).resolve()
    where = _where(source, field, folder)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise SourceFileNotFoundError(f"{where} {what}; give a built block folder (shardsmith build RECIPE --out DIR)")
    if not (folder / MANIFEST_NAME).is_file():
        raise SourceFileNotFoundError(f"{where} has no {MANIFEST_NAME}: not a built block (or its build did not end)")
    try:
        manifest = ShardManifest.load(folder)
    except ValueError as err:
        raise SourceError(f"{where}: {' '.join(str(err).split())}") from None
    if manifest.kind == "mix":
        raise SourceError(f"{where} is a mix, not a block (a mix's text is its `write_text` export: kind generic)")
    tokenizer = folder / manifest.tokenizer.path / "tokenizer.json"
    if not tokenizer.is_file():
        raise SourceFileNotFoundError(f"{where}: block tokenizer {tokenizer} is missing")
    block = Block(folder, manifest)
    for split in source.block_splits:
        if split not in manifest.splits:
            has = ", ".join(manifest.splits)
            raise SourceError(f"{where}: block '{manifest.name}' has no {split!r} split (has: {has})")
        missing = [f for f in block.files(split) if not f.is_file() or not Path(f"{f}.index").is_file()]
        if missing:
            raise SourceFileNotFoundError(f"{where}: {split} file {missing[0]} (or its .index) is missing")
    return block


def built_block_folder(source: SourceSpec, work_dir: str | os.PathLike) -> Path:
    """Where a ``recipe`` source's block is built: ``<work_dir>/blocks/<source name>``."""
    return Path(work_dir) / "blocks" / source.name


def _recipe_path(source: SourceSpec) -> Path:
    path = Path(os.path.expanduser(os.path.expandvars(source.recipe))).resolve()
    if not path.is_file():
        raise SourceFileNotFoundError(f"{_where(source, 'recipe', path)} does not exist")
    return path


def build_from_recipe(source: SourceSpec, work_dir: str | os.PathLike) -> Path:
    """Build the source's block recipe into the work folder, unless a finished build is already there."""
    from shardsmith.builders.build import build

    out = built_block_folder(source, work_dir)
    if (out / MANIFEST_NAME).is_file():
        return out
    recipe = _recipe_path(source)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        return Path(build(str(recipe), str(out)))
    except (ValueError, OSError) as err:  # RecipeError / BuildError / a missing input: the message names it
        raise SourceError(f"{_where(source, 'recipe', recipe)}: cannot build the block: {err}") from err


def open_blocks(source: SourceSpec, work_dir: str | os.PathLike | None = None) -> list[Block]:
    """The source's blocks, checked; a ``recipe`` source is built first (needs ``work_dir``)."""
    if source.recipe:
        if work_dir is None:
            raise SourceError(f"source '{source.name}': a block recipe is built in the mix's work folder; none given")
        return [open_block(source, build_from_recipe(source, work_dir), "recipe")]
    blocks = [open_block(source, p) for p in source.paths]
    names = [b.name for b in blocks]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SourceError(f"source '{source.name}': field 'paths': two blocks are named {twice[0]!r}; document ids "
                          "(<block name>/<split>/<index>) would collide: give them one source each")
    return blocks


def block_input_files(source: SourceSpec) -> list[str]:
    """What the mix's preflight checks and splits into tasks: the ``.ds`` files of a ``paths`` source, or the
    recipe file of a ``recipe`` source (its block does not exist yet)."""
    if source.recipe:
        return [str(_recipe_path(source))]
    return [str(f) for b in open_blocks(source) for s in source.block_splits for f in b.files(s)]


def block_record(source: SourceSpec, work_dir: str | os.PathLike | None = None) -> dict:
    """The manifest's ``block`` entry for a source: the recipe (if any), split, text mode, and each block read
    (path, name, kind, ...). Never builds or raises: a source that was not read records what its recipe says."""
    folders = [built_block_folder(source, work_dir)] if source.recipe and work_dir else []
    if not source.recipe:
        folders = [Path(os.path.expanduser(os.path.expandvars(p))).resolve() for p in source.paths]
    blocks = []
    for folder in folders:
        try:
            blocks.append(Block(folder, ShardManifest.load(folder)).record(source.block_splits))
        except (FileNotFoundError, ValueError):
            blocks.append({"path": str(folder), "name": None, "kind": None})
    return {"block": {"recipe": source.recipe, "split": source.split, "text": source.block_text, "blocks": blocks}}


@functools.lru_cache(maxsize=8)
def load_tokenizer(path: str, sha256: str):
    """A block's tokenizer, loaded once per process (GPT-2's takes ~0.7 s); keyed by its hash too, so a block
    rebuilt in place is not decoded with the old one."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(path)


def adapt_block(self, data: dict, path: str, idx: int) -> dict:
    """The reader hands over finished documents: text, id and metadata as they are."""
    return data


class BlockReader(SourceReaderMixin, BaseDiskReader):
    """Reads the ``.ds`` files of one or more blocks (relative to ``data_folder``) and decodes each document.

    Task ``rank`` reads ``files[rank::world_size]``; a document's index within its split is counted across the
    split's files (from the ``.index`` sizes), so ids do not depend on how files are shared between tasks.
    """

    name = "🧱 Block"

    def __init__(self, data_folder, *, files: list[str], source_name: str, source_kind: str, blocks: dict[str, Block],
                 block_text: str, **kwargs):
        super().__init__(data_folder, **kwargs)
        self._init_source(source_name, source_kind, files)
        self.blocks = blocks  # relative block folder ("." for data_folder itself) -> Block
        self.block_text = block_text

    def _tokenizer(self, key: str):
        block = self.blocks[key]  # loaded in the worker: nothing unpicklable travels with the step
        info = block.manifest.tokenizer
        return load_tokenizer(str(block.path / info.path / "tokenizer.json"), info.sha256)

    def _decode(self, key: str, docs: list[list[int]]) -> list[str]:
        tok, eos_id = self._tokenizer(key), self.blocks[key].manifest.tokenizer.eos_id
        if self.block_text == "plain":
            return tok.decode_batch(docs, skip_special_tokens=True)
        if self.block_text == "template":
            docs = [d[:-1] if d and d[-1] == eos_id else d for d in docs]
        return tok.decode_batch(docs, skip_special_tokens=False)

    def read_file(self, filepath: str) -> DocumentsPipeline:
        rel = Path(filepath)
        key, split = str(rel.parent.parent), rel.parent.name
        block = self.blocks[key]
        token_file = TokenFile(Path(self._path(filepath)), block.manifest.token_size)
        first = sum(os.path.getsize(f"{f}.index") // 8 for f in block.files(split) if f.name < rel.name)
        batch: list[tuple[int, list[int]]] = []
        for i, (ids, _) in enumerate(token_file.documents()):
            index = first + i
            if block.chosen_only and index % 2:
                continue
            batch.append((index, ids.tolist()))
            if len(batch) >= DECODE_BATCH:
                yield from self._documents(key, split, filepath, batch)
                batch = []
        yield from self._documents(key, split, filepath, batch)

    def _documents(self, key: str, split: str, filepath: str, batch: list[tuple[int, list[int]]]):
        block = self.blocks[key]
        with self.track_time():
            texts = self._decode(key, [ids for _, ids in batch])
        for (index, _), text in zip(batch, texts):
            yield self.get_document_from_dict({
                "text": text,
                "id": f"{block.name}/{split}/{index}",
                "metadata": {"block": block.name, "block_kind": block.manifest.kind, "block_split": split,
                             "block_index": index},
            }, filepath, index)


def build_block_reader(source: SourceSpec, *, limit: int, work_dir: str | os.PathLike | None = None) -> BlockReader:
    """The reader for a ``block`` source (a ``recipe`` source's block is built first, into ``work_dir``)."""
    blocks = open_blocks(source, work_dir)
    root = Path(os.path.commonpath([str(b.path) for b in blocks]))
    by_key = {os.path.relpath(b.path, root): b for b in blocks}
    files = [os.path.relpath(f, root) for b in blocks for s in source.block_splits for f in b.files(s)]
    return BlockReader(str(root), files=files, source_name=source.name, source_kind=source.kind, blocks=by_key,
                       block_text=source.block_text or "template", limit=limit, adapter=adapt_block)
