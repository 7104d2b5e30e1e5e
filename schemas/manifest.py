"""The shard-set manifest: the one thing a builder hands the trainer besides the token files.

A shard set is a folder:

    DIR/manifest.json                     this model, written last (temp name, then rename)
    DIR/tokenizer/                        tokenizer.json + config (AutoTokenizer.from_pretrained(DIR/tokenizer))
    DIR/train/*.ds, *.ds.index[, *.ds.loss]        datatrove tokenized files
    DIR/validation/*.ds, *.ds.index[, *.ds.loss]
    DIR/rejected/<source>/<step>/*.jsonl.gz       (mixes) every dropped document with its reason
    DIR/text/<source>/<split>-NNNNN.parquet       (mixes with `write_text: parquet`) every kept document's text

`.ds` = raw little-endian token ids (``dtype``), `.ds.index` = uint64 cumulative document end offsets (tokens),
`.ds.loss` = one byte per token (1 = carries loss), `.ds.metadata` = datatrove's "tokenizer|token_size" line (the
tokenizer named as ``tokenizer/tokenizer.json``, relative to DIR) and the token count. A folder without
manifest.json is not a shard set; ``files`` lists every other file of the set, so a copy can be checked whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .decontam import DecontamReport

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "datatrove-ds"
FORMAT_VERSION = 1
PAIR_LAYOUT = "adjacent:chosen,rejected"  # preference sets: pair i = documents 2i (chosen) and 2i + 1 (rejected)


class _Open(BaseModel):
    """Manifests are read by later versions too: tolerate extra keys, keep them."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())


class TokenizerInfo(_Open):
    name: str
    sha256: str = Field(description="sha256 of DIR/tokenizer/tokenizer.json")
    vocab_size: int = Field(description="len(tokenizer) including added tokens")
    eos_token: str | None = None
    eos_id: int | None = None
    special_tokens: dict[str, int] = Field(default_factory=dict, description="added/special tokens and their ids")
    path: str = "tokenizer"


class ShardFile(_Open):
    path: str = Field(description="relative to DIR, without suffix: `train/000_x.ds`")
    documents: int
    tokens: int
    loss: bool = False


class SplitInfo(_Open):
    documents: int = 0
    tokens: int = 0
    loss_tokens: int | None = Field(None, description="tokens whose mask is 1 (sets with .ds.loss)")
    files: list[ShardFile] = Field(default_factory=list)


class SourceInfo(_Open):
    name: str
    kind: str
    weight_requested: float = Field(description="the recipe's weight, as written")
    share_requested: float = Field(description="weight normalised over all sources")
    share_realized: float = Field(description="this source's tokens / all tokens written")
    documents: int = Field(description="documents written (copies from upsampling counted)")
    tokens: int = Field(description="tokens written, EOS included")
    epochs: float = Field(description="tokens written / tokens available after filtering")
    documents_available: int = 0
    tokens_available: int = 0
    paths: list[str] = Field(default_factory=list)
    tier: str | None = None
    module: str | None = None
    share_planned: float | None = Field(
        None, description="share the plan aimed at: weight normalised over the sources built (differs from "
        "share_requested only when sources were skipped)"
    )
    skipped: str | None = Field(None, description="why the source is not in the set (weight 0, empty); else None")
    filter_chain: str | None = Field(None, description="web | encyclopedia | news | none | custom (a step list)")
    word_splitter: str | None = Field(None, description="fineweb2024 | datatrove: the chain's word-level steps")
    pii: bool | None = Field(None, description="e-mail / IP addresses replaced (the chain's `pii` step ran)")


class SetFile(_Open):
    path: str = Field(description="relative to DIR, POSIX separators")
    bytes: int


class TextFile(_Open):
    path: str = Field(description="relative to DIR: text/<source>/<split>-NNNNN.parquet")
    source: str
    split: str
    documents: int = Field(description="rows: each kept document once")
    copies: int = Field(description="sum of the `copies` column: the documents this file contributed to the shards")


class StepCount(_Open):
    step: str
    read: int
    kept: int
    dropped: int
    reasons: dict[str, int] = Field(default_factory=dict)
    changed: int | None = Field(None, description="documents whose text the step rewrote (normalize, pii)")
    replacements: dict[str, int] | None = Field(
        None, description="pii: addresses replaced per kind (email, ipv4, ipv6)"
    )


class ShardManifest(_Open):
    format: Literal["datatrove-ds"] = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    kind: str = Field(description="mix | sft | ... (what built it)")
    name: str
    version: str = Field(description="shardsmith version")
    created_at: str
    seed: int
    tokenizer: TokenizerInfo
    dtype: Literal["uint16", "uint32"]
    token_size: Literal[2, 4]
    loss_masks: bool = False
    splits: dict[str, SplitInfo]
    sources: list[SourceInfo] = Field(default_factory=list)
    filters: dict[str, list[StepCount]] = Field(default_factory=dict, description="per source, per step")
    budget_tokens: int | None = None
    template: dict[str, Any] | None = None
    counts: dict[str, Any] | None = None
    languages: dict[str, int] | None = None
    pair_layout: str | None = Field(
        None, description="preference sets: 'adjacent:chosen,rejected' = pair i is documents 2i (chosen), 2i+1"
    )
    pairs: dict[str, int] | None = Field(None, description="preference sets: pairs per split")
    recipe: dict[str, Any] = Field(default_factory=dict, description="the resolved recipe that built this set")
    text_files: list[TextFile] | None = Field(None, description="mixes with `write_text: parquet`: the text export")
    dedup: dict[str, Any] | None = Field(
        None, description="mixes: the dedup settings, keep order and removals per source (exact, near, of other sources)"
    )
    decontamination: DecontamReport | None = Field(
        None, description="benchmarks checked and hits per source and benchmark, or why nothing was checked"
    )
    files: list[SetFile] = Field(
        default_factory=list, description="every file of the set except manifest.json, sorted by path"
    )

    # --- I/O: the only I/O schemas do --------------------------------------------------------------------
    @classmethod
    def load(cls, shard_dir: str | os.PathLike) -> "ShardManifest":
        path = Path(shard_dir) / MANIFEST_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{shard_dir}: no {MANIFEST_NAME}; not a finished shard set")
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, ValueError) as err:
            raise ValueError(f"{path}: invalid manifest: {err}") from err

    def save(self, shard_dir: str | os.PathLike) -> Path:
        """Write atomically: a crash leaves either the old manifest or none, never half of one."""
        path = Path(shard_dir) / MANIFEST_NAME
        tmp = path.with_name(f".{MANIFEST_NAME}.tmp-{os.getpid()}")
        tmp.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        os.replace(tmp, path)
        return path
