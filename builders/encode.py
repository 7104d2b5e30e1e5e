"""Tokenize a block's documents once: datatrove's encoding and loss masks, without its executor.

A block used to be tokenized twice (the token-length filter, then datatrove's ``DocumentTokenizer`` run through a
``LocalPipelineExecutor``, which reloaded the tokenizer per split and left ``.work/`` logs in the block). Here the
writer's exact encoding is computed once and kept on the item:

* :class:`DocEncoder` holds datatrove's own ``DocumentTokenizer`` (as ``pipelines.shards.tokenizer_step`` sets it up) for its
  configured tokenizer (the EOS post-processor); its loss masks are ``get_loss_values``'s, computed as bytes
  (:func:`loss_mask`); what it hands back is byte for byte what ``DocumentTokenizer.write_unshuffled`` writes. The
  shards are then written with datatrove's ``TokenizedFile`` (``builders/writer.py``). Only the loop around those is
  here: datatrove has no call that encodes without writing.
* :func:`byte_bound` lets the token-length filter skip tokenizing a text that cannot be too long: with a byte-level
  BPE tokenizer every token covers at least one UTF-8 byte of the (normalized) text, so ``bytes <= limit`` proves
  ``tokens <= limit``. Tokenizers where that does not hold (other models, prefix spaces, other normalizers) get no
  bound and are always tokenized.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shardsmith.schemas.records import Conversation

from .templates import Rendered

BATCH = 1000  # documents per encode_batch: the writer's batch size before (pipelines.shards.tokenizer_step)


@dataclass(frozen=True)
class EncodedDoc:
    """One document as written: token bytes (little-endian, ``token_size`` each) and loss bytes (0/1 per token).
    ``rendered`` is the very object encoded: the writer reuses an encoding only for that object."""

    rendered: Rendered
    tokens: bytes
    loss: bytes
    n_ids: int  # the encoding's length (EOS included) before datatrove crops a final no-loss section


class DocEncoder:
    """datatrove's ``DocumentTokenizer`` encoding (tokenizer loaded once, EOS appended, loss mask from
    ``no_loss_ranges``) for documents in memory."""

    def __init__(self, tokenizer_json: str | Path, eos_token: str, loaded=None):
        """``loaded``: ``tokenizer_json`` already loaded (``ResolvedTokenizer.take_loaded``); this encoder takes it
        over and sets datatrove's EOS post-processor on it instead of parsing the file again."""
        from datatrove.pipeline.tokens import DocumentTokenizer
        from tokenizers.processors import TemplateProcessing

        # The step never runs: it configures the tokenizer and computes loss masks exactly as when it writes.
        # object.__new__ skips PipelineStep.__new__'s dependency check, which scans every installed distribution's
        # metadata (~0.3 s) to confirm `tokenizers`, imported already.
        self.step = object.__new__(DocumentTokenizer)
        self.step.__init__(str(Path(tokenizer_json).parent), str(tokenizer_json), eos_token=eos_token,
                           save_loss_metadata=True, shuffle_documents=False)
        if loaded is not None:  # PipelineStepWithTokenizer.tokenizer's configuration, on the loaded object
            loaded.post_processor = TemplateProcessing(
                single="$A <EOS>", special_tokens=[("<EOS>", loaded.token_to_id(eos_token))], pair=None)
            self.step.__dict__["tokenizer"] = loaded  # the slot of its cached_property
        self.tokenizer = self.step.tokenizer
        self.token_size = self.step.token_size
        self.dtype = np.dtype("<u4" if self.token_size == 4 else "<u2")
        self.bound = byte_bound(self.tokenizer)
        self.waiting: list[Callable[[], Any]] = []  # calls for the next encode's first wait (then forgotten)

    def encode(self, docs: list[tuple[Conversation, Rendered]]) -> list[EncodedDoc]:
        return list(self.iter_encode(docs))

    def iter_encode(self, docs: list[tuple[Conversation, Rendered]],
                    idle: Iterable[Callable[[], Any]] = ()) -> Iterator[EncodedDoc]:
        """Each document's encoding, in order. Batches of ``BATCH``: the next batch's ``encode_batch`` (Rust, GIL
        released) runs in a second thread while this one turns the previous batch into bytes and loss masks
        (Python), so the cores do not idle between batches. One call per split: a call per batch would wait for
        each batch's encoding before starting the next. ``idle`` (and ``waiting``, emptied): calls made while the
        first batch encodes (this thread has nothing else to do then), before the first document is handed back."""
        from concurrent.futures import ThreadPoolExecutor

        batches = [docs[i: i + BATCH] for i in range(0, len(docs), BATCH)]
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._encode_batch, batches[0]) if batches else None
            jobs, self.waiting = [*idle, *self.waiting], []
            for job in jobs:
                job()
            for k, batch in enumerate(batches):
                encoded = pending.result()
                if k + 1 < len(batches):
                    pending = pool.submit(self._encode_batch, batches[k + 1])
                for (c, r), e in zip(batch, encoded):
                    yield self._one(c, r, e)

    def _encode_batch(self, batch: list[tuple[Conversation, Rendered]]) -> list:
        return self.tokenizer.encode_batch([r.doc_text for _, r in batch])

    def _one(self, conv: Conversation, r: Rendered, encoding) -> EncodedDoc:
        ids = encoding.ids  # a new Python list on every access: read once
        loss = loss_mask(len(ids), r.no_loss, encoding.char_to_token)
        tokens = ids[: len(loss)] if len(loss) < len(ids) else ids  # datatrove crops a final section without loss
        return EncodedDoc(r, np.asarray(tokens, dtype=self.dtype).tobytes(), bytes(loss), len(ids))


def loss_mask(n_ids: int, no_loss, char_to_token) -> bytearray:
    """datatrove's ``DocumentTokenizer.get_loss_values`` as the bytes it writes (1 = loss, 0 = none): every token
    has loss but those of each ``(start, end)`` character range, and a range reaching the end drops everything from
    its start (the same slices, in the same order, on the same lengths). Why not call it: it builds a ``Document`` and
    a float array per document, a third of the writer's own time on a large block. tests/test_block_encode.py runs
    both on every document of real blocks."""
    loss = bytearray(b"\x01") * n_ids
    for start, end in no_loss:
        t_start, t_end = char_to_token(start), char_to_token(end)
        loss[t_start:t_end] = bytes(len(loss[t_start:t_end]))
        if t_end is None or t_end >= n_ids:
            loss = loss[:t_start]
    return loss


def byte_bound(tokenizer) -> Callable[[str], int] | None:
    """``text -> an upper bound of its token count`` (without special tokens), or None when the tokenizer gives
    none. Holds for BPE over byte-level pre-tokenization without a prefix space (GPT-2, Qwen, DeepSeek): each token
    is one added token (>= 1 byte) or a merge of >= 1 bytes of the normalized text; Split only cuts. Normalizer:
    none, or NFC: the bound is the UTF-8 length of the NFD text, since NFC normalizes each piece between added
    tokens on its own (NFD is per character, so it adds up over pieces) and composing never adds bytes."""
    if type(tokenizer.model).__name__ != "BPE" or tokenizer.pre_tokenizer is None:
        return None
    pre = json.loads(tokenizer.pre_tokenizer.__getstate__())
    parts = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    if not any(p.get("type") == "ByteLevel" for p in parts) or not all(_cuts_only(p) for p in parts):
        return None
    norm = tokenizer.normalizer
    if norm is None:
        return _utf8_len
    if type(norm).__name__ == "NFC":
        return lambda text: len(unicodedata.normalize("NFD", text).encode("utf-8"))
    return None


def _cuts_only(part: dict[str, Any]) -> bool:
    return part.get("type") == "Split" or (part.get("type") == "ByteLevel" and not part.get("add_prefix_space"))


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))
