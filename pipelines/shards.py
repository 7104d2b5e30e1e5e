"""The shard contract in code: datatrove's tokenizer/merger configured safely, and a plain reader.

Writing goes through datatrove's ``DocumentTokenizer`` and ``DocumentTokenizerMerger`` (never a second format).
Their 0.10.1 defaults are traps, so every argument that matters is explicit here: the EOS token (default: none),
the shuffle seed (default: unseeded), and ``save_loss_metadata`` on *both* tokenizer and merger (the merger
silently drops ``.ds.loss`` otherwise).

Reading is hand-written on purpose: datatrove's ``DatatroveFolderDataset`` reads neither ``.ds.loss`` nor the
token width, and yields fixed windows rather than documents.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shardsmith.schemas.manifest import MANIFEST_NAME, SetFile, ShardFile, ShardManifest, SplitInfo

SPLITS = ("train", "validation")
_DTYPES = {2: np.uint16, 4: np.uint32}


def dtype_for_vocab(vocab_size: int) -> tuple[str, int]:
    """uint16 while every id fits in 16 bits, else uint32 (the rule datatrove applies too)."""
    return ("uint16", 2) if vocab_size <= 65536 else ("uint32", 4)


def tokenizer_step(
    output_folder: str | os.PathLike,
    tokenizer_json: str | os.PathLike,
    eos_token: str,
    *,
    seed: int,
    loss_masks: bool = False,
    save_filename: str | None = None,
    max_tokens_per_file: int | None = None,
    shuffle: bool = True,
    batch_size: int = 1000,
):
    """A datatrove DocumentTokenizer with every trap-prone argument set.

    ``batch_size`` bounds memory: datatrove's default (10,000 documents per ``encode_batch``) holds every
    ``Encoding`` of the batch at once, which made peak memory grow with the input up to that size.
    """
    from datatrove.pipeline.tokens import DocumentTokenizer

    if not eos_token:
        raise ValueError("an EOS token is required: without one datatrove concatenates documents with no separator")
    return DocumentTokenizer(
        output_folder=str(output_folder),
        tokenizer_name_or_path=str(tokenizer_json),
        eos_token=eos_token,
        save_filename=save_filename,
        save_loss_metadata=loss_masks,
        max_tokens_per_file=max_tokens_per_file,
        seed=seed,
        shuffle_documents=shuffle,
        batch_size=batch_size,
    )


def merge_step(
    input_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    *,
    save_filename: str,
    seed: int,
    loss_masks: bool,
    max_tokens_per_file: int | None = None,
    shuffle: bool = True,
):
    """A datatrove DocumentTokenizerMerger (world_size must be 1) that keeps loss masks."""
    from datatrove.pipeline.tokens import DocumentTokenizerMerger

    return DocumentTokenizerMerger(
        input_folder=str(input_folder),
        output_folder=str(output_folder),
        save_filename=save_filename,
        max_tokens_per_file=int(max_tokens_per_file or 100e9),
        shuffle=shuffle,
        seed=seed,
        save_loss_metadata=loss_masks,
    )


# --------------------------------------------------------------------------------------------------------------
# reading


@dataclass(frozen=True)
class TokenFile:
    """One `.ds` file with its index (and loss mask), memory-mapped."""

    path: Path  # the .ds path
    token_size: int

    @property
    def tokens(self) -> np.ndarray:
        if self.path.stat().st_size % self.token_size:
            raise ValueError(f"{self.path}: size is not a multiple of token_size {self.token_size}")
        return np.memmap(self.path, dtype=_DTYPES[self.token_size], mode="r")

    @property
    def doc_ends(self) -> np.ndarray:
        index = Path(f"{self.path}.index")
        if not index.is_file():
            raise FileNotFoundError(f"{index}: missing document index for {self.path.name}")
        if index.stat().st_size == 0:
            return np.zeros(0, dtype=np.uint64)
        return np.memmap(index, dtype=np.uint64, mode="r")

    @property
    def has_loss(self) -> bool:
        return Path(f"{self.path}.loss").is_file()

    @property
    def loss(self) -> np.ndarray | None:
        if not self.has_loss:
            return None
        return np.memmap(f"{self.path}.loss", dtype=np.uint8, mode="r")

    def documents(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        tokens, ends, loss = self.tokens, self.doc_ends, self.loss
        start = 0
        for end in ends:
            end = int(end)
            yield np.asarray(tokens[start:end]), (None if loss is None else np.asarray(loss[start:end]))
            start = end


def split_files(shard_dir: str | os.PathLike, split: str, token_size: int) -> list[TokenFile]:
    folder = Path(shard_dir) / split
    if not folder.is_dir():
        return []
    return [TokenFile(p, token_size) for p in sorted(folder.glob("*.ds"))]


def iter_documents(shard_dir: str | os.PathLike, split: str = "train") -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Every document of a split as (token ids, loss mask or None), in file order."""
    manifest = ShardManifest.load(shard_dir)
    for f in split_files(shard_dir, split, manifest.token_size):
        yield from f.documents()


def describe_split(shard_dir: str | os.PathLike, split: str, token_size: int) -> SplitInfo:
    """Count documents/tokens per file from the files themselves (the manifest reports what is really there)."""
    info = SplitInfo()
    loss_tokens = 0
    any_loss = False
    for f in split_files(shard_dir, split, token_size):
        n_tokens = f.path.stat().st_size // token_size
        ends = f.doc_ends
        if len(ends) and int(ends[-1]) != n_tokens:
            raise ValueError(f"{f.path}: index ends at {int(ends[-1])} but the file holds {n_tokens} tokens")
        if f.has_loss:
            any_loss = True
            loss = f.loss
            if len(loss) != n_tokens:
                raise ValueError(f"{f.path}.loss: {len(loss)} mask bytes for {n_tokens} tokens")
            loss_tokens += int(np.count_nonzero(loss))
        rel = f.path.relative_to(Path(shard_dir)).as_posix()
        info.files.append(ShardFile(path=rel, documents=len(ends), tokens=n_tokens, loss=f.has_loss))
        info.documents += len(ends)
        info.tokens += n_tokens
    info.loss_tokens = loss_tokens if any_loss else None
    return info


def new_manifest(kind: str, name: str, seed: int, tokenizer, **fields) -> ShardManifest:
    """A manifest with what every builder records the same way: version, time, tokenizer, token width."""
    from datetime import datetime, timezone

    from shardsmith import __version__

    return ShardManifest(
        kind=kind,
        name=name,
        version=__version__,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        seed=seed,
        tokenizer=tokenizer.info(),
        dtype=tokenizer.dtype,
        token_size=tokenizer.token_size,
        splits={},
        **fields,
    )


def point_metadata_at_own_tokenizer(shard_dir: str | os.PathLike, manifest: ShardManifest, splits=SPLITS) -> None:
    """Rewrite the first line of every ``.ds.metadata`` to name the set's own tokenizer, relative to DIR.

    datatrove writes there the path the tokenizer was loaded from ("<path>|<token_size>"): a temp or ``.work``
    folder that is gone once the set is finished, copied or moved. datatrove's merger reads the line back only for
    the token size (the part after ``|``) and ``DatatroveFolderDataset`` does not read it, so a relative path
    (``tokenizer/tokenizer.json|2``) keeps both working and names a file that travels with the set.
    """
    first_line = f"{manifest.tokenizer.path}/tokenizer.json|{manifest.token_size}"
    for split in splits:
        for meta in sorted((Path(shard_dir) / split).glob("*.ds.metadata")):
            lines = meta.read_text(encoding="utf-8").splitlines() or [""]
            if lines[0] == first_line:
                continue
            tmp = meta.with_name(f".{meta.name}.tmp-{os.getpid()}")
            tmp.write_text("\n".join([first_line, *lines[1:]]), encoding="utf-8")
            os.replace(tmp, meta)


def list_set_files(shard_dir: str | os.PathLike) -> list[SetFile]:
    """Every file of the set but manifest.json, sorted; hidden names (``.work/``, temp files) are not the set's."""
    root = Path(shard_dir)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if name.startswith(".") or rel == MANIFEST_NAME:
                continue
            found.append(SetFile(path=rel, bytes=path.stat().st_size))
    return sorted(found, key=lambda f: f.path)


def finalize(shard_dir: str | os.PathLike, manifest: ShardManifest, splits: tuple[str, ...] = SPLITS) -> Path:
    """Fill the manifest's split table and file list from the files on disk, then write it (atomically, last)."""
    point_metadata_at_own_tokenizer(shard_dir, manifest, splits)
    manifest.splits = {s: describe_split(shard_dir, s, manifest.token_size) for s in splits}
    manifest.files = list_set_files(shard_dir)
    return manifest.save(shard_dir)
