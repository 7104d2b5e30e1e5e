"""The block writer's fast paths write what datatrove's ``DocumentTokenizer`` writes, byte for byte.

Fast paths (``builders/encode.py``): the token-length step's encoding reused by the writer, the byte bound that
skips tokenizing texts that cannot be too long, shards written with datatrove's ``TokenizedFile`` instead of a
``DocumentTokenizer`` run through a ``LocalPipelineExecutor``. The reference here is that executor run itself.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from conftest import need_data

from shardsmith.builders.block import Item, SourceBooks
from shardsmith.builders.block_steps import RenderStep, TokenLengthStep
from shardsmith.builders.encode import DocEncoder, byte_bound
from shardsmith.builders.importers import import_file
from shardsmith.builders.templates import render, resolve_template
from shardsmith.builders.writer import write_split
from shardsmith.pipelines.shards import tokenizer_step
from shardsmith.pipelines.tokenizers import resolve_tokenizer
from shardsmith.schemas.block_recipe import LengthFilter, StructureFilter
from shardsmith.schemas.common import TokenizerSpec
from shardsmith.schemas.records import Conversation, Message

# texts where a byte count could undercount tokens if the bound were wrong: NFC composition exclusions (U+0958
# expands under NFC), a combining mark next to a template marker (NFC runs per piece between added tokens), CJK,
# emoji, control characters, long digit runs
TRICKY = ["\u0958\u0959\u095a" * 5, "e<|end|>\u0301\u0301 caf\u00e9", "中文，标点。" * 7, "🙂🙃" * 9, "\x00\x01\t\r\n" * 4,
          "1234567890" * 12, "a" * 300, " " * 50, ""]


def _encoder(name: str, template: str):
    tpl = resolve_template(template)
    tok = resolve_tokenizer(TokenizerSpec(name=name, add_special_tokens=list(tpl.special_tokens)))
    return tpl, tok, DocEncoder(tok.tokenizer_json, tok.eos_token)


@pytest.fixture(scope="module")
def gpt2():
    return _encoder("gpt2", "t1b")


@pytest.fixture(scope="module")
def conversations() -> list[Conversation]:
    root = need_data("sft_alpaca_en_demo", "sft_alpaca_zh_demo")
    convs = []
    for path in (root / "sft_alpaca_en_demo" / "alpaca_en_demo.json", root / "sft_alpaca_zh_demo" / "alpaca_zh_demo.json"):
        convs += [c for c in import_file(path, source=path.stem) if isinstance(c, Conversation)][:60]
    convs += [Conversation(source="tricky", id=str(i), messages=[Message(role="user", content=t or "?"),
                                                                  Message(role="assistant", content=t or "!")])
              for i, t in enumerate(TRICKY)]
    return convs


def _books(max_tokens: int, count_of: str) -> SourceBooks:
    return SourceBooks("s", None, StructureFilter(), None, LengthFilter(max_tokens=max_tokens, count_tokens_of=count_of))


def _reference(docs: list[tuple[Conversation, object]], folder: Path, tok) -> None:
    """The writer before: datatrove's DocumentTokenizer through a LocalPipelineExecutor."""
    from datatrove.data import Document
    from datatrove.executor import LocalPipelineExecutor

    data = [Document(text=r.doc_text, id=f"{c.source}/{c.id}", metadata={"no_loss_ranges": list(r.no_loss)})
            for c, r in docs]
    step = tokenizer_step(folder, tok.tokenizer_json, tok.eos_token, seed=1, loss_masks=True,
                          save_filename=folder.name, shuffle=False)

    def reader(_=None, rank: int = 0, world_size: int = 1):
        yield from data

    LocalPipelineExecutor(pipeline=[reader, step], tasks=1, workers=1, logging_dir=str(folder.parent / ".work"),
                          skip_completed=False).run()


def test_writer_fast_paths_write_datatrove_s_bytes(tmp_path, gpt2, conversations):
    tpl, tok, enc = gpt2
    items = [Item(c) for c in conversations]
    render_step = RenderStep(tpl, tok.eos_token)
    assert all(render_step.decide(it, None) is None for it in items)
    # a third tokenized by the length step (limit 64: some are too long and carry their counts), a third left to
    # the writer by the byte bound, a third whose rendering changed after it was encoded (the writer re-encodes)
    step = TokenLengthStep(enc)
    verdicts = step.decide_all(items[0::3], _books(64, "rendered"))
    assert any(v is not None for v in verdicts) and all(it.encoded for it in items[0::3])
    assert not [it for it in items[1::3] if step.decide_all([it], _books(10**6, "rendered"))[0] or it.encoded]
    step.decide_all(items[2::3], _books(1, "rendered"))
    for it in items[2::3]:
        it.rendered = dataclasses.replace(it.rendered, no_loss=[])
    fast, ref = tmp_path / "fast" / "train", tmp_path / "ref" / "train"
    fast.mkdir(parents=True)
    write_split(items, fast, enc)
    _reference([d for it in items for d in it.documents()], ref, tok)
    names = sorted(p.name for p in ref.iterdir())
    assert names == sorted(p.name for p in fast.iterdir()) == [
        "train_00000_unshuffled.ds", "train_00000_unshuffled.ds.index", "train_00000_unshuffled.ds.loss",
        "train_00000_unshuffled.ds.metadata"]
    for name in names:
        assert (fast / name).read_bytes() == (ref / name).read_bytes(), name


@pytest.mark.parametrize("name,template", [("gpt2", "t1b"), ("qwen", "qwen")])
def test_byte_bound_never_undercounts_and_changes_no_verdict(name, template, conversations):
    tpl, tok, enc = _encoder(name, template)
    assert enc.bound is not None
    texts = [m.content for c in conversations for m in c.messages] + TRICKY
    texts += [unicodedata.normalize("NFD", t) for t in texts[:40]]
    ids = enc.tokenizer.encode_batch(texts, add_special_tokens=False)
    assert all(enc.bound(t) >= len(e.ids) for t, e in zip(texts, ids))
    for count_of in ("rendered", "content"):
        bounded = _lengths(conversations, tpl, tok, enc, count_of)
        plain = _lengths(conversations, tpl, tok, _without_bound(enc), count_of)
        assert bounded[0] == plain[0] and any(bounded[0]) and not all(bounded[0])
        # where the bound decided, nothing was counted; everything counted agrees with the plain count
        assert all(b is None or b == p for b, p in zip(bounded[1], plain[1]))


def _without_bound(enc: DocEncoder) -> DocEncoder:
    plain = object.__new__(DocEncoder)
    plain.__dict__.update(enc.__dict__, bound=None)
    return plain


def _lengths(convs, tpl, tok, enc, count_of):
    items = [Item(c) for c in convs]
    for it in items:
        it.rendered = render(it.conv, tpl, tok.eos_token)
    limit = sorted(len(it.rendered.doc_text) for it in items)[len(items) // 2] // 3  # about half too long
    verdicts = TokenLengthStep(enc).decide_all(items, _books(limit, count_of))
    return [v is None for v in verdicts], [it.n_tokens for it in items]


def test_byte_bound_refuses_tokenizers_it_cannot_bound():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    wordpiece = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    wordpiece.pre_tokenizer = pre_tokenizers.Whitespace()
    assert byte_bound(wordpiece) is None
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)  # "a" -> " a": one more byte than written
    assert byte_bound(bpe) is None
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    assert byte_bound(bpe) is not None
    bpe.normalizer = normalizers.NFKC()  # NFKC can expand a character many-fold
    assert byte_bound(bpe) is None


def test_dedup_ascii_fast_path_equals_the_regex():
    import random

    from shardsmith.builders.dedup import _DROP, normalize_text

    def by_regex(text: str) -> str:
        return _DROP.sub("", unicodedata.normalize("NFKC", text).casefold())

    rng = random.Random(7)
    texts = [chr(c) for c in range(128)] + ["".join(chr(rng.randrange(128)) for _ in range(80)) for _ in range(300)]
    assert [normalize_text(t) for t in texts] == [by_regex(t) for t in texts]


def test_an_encoder_taking_over_the_resolved_tokenizer_encodes_as_one_loading_the_file(gpt2, conversations):
    """The block context hands the tokenizer resolve_tokenizer loaded to its DocEncoder (one load per build); the
    encoder sets datatrove's EOS post-processor on it and must encode exactly as the one that loads the file."""
    tpl, tok, from_file = gpt2
    fresh = resolve_tokenizer(TokenizerSpec(name="gpt2", add_special_tokens=list(tpl.special_tokens)))
    loaded = fresh.take_loaded()
    assert fresh.take_loaded() is not loaded  # handed over once; later callers load their own
    taken = DocEncoder(fresh.tokenizer_json, fresh.eos_token, loaded=loaded)
    assert taken.tokenizer is loaded
    docs = [(c, render(c, tpl, tok.eos_token)) for c in conversations]
    assert [(e.tokens, e.loss, e.n_ids) for e in taken.encode(docs)] == \
        [(e.tokens, e.loss, e.n_ids) for e in from_file.encode(docs)]



@pytest.mark.parametrize("name,template", [("gpt2", "t1b"), ("qwen", "qwen")])
def test_loss_mask_equals_datatrove_s_get_loss_values(name, template, conversations):
    """The writer's loss bytes equal datatrove's get_loss_values (the reference, run on each document): the
    rendered documents' own ranges, plus ranges that start or end past the text (char_to_token None), overlap,
    reach the end (the final section dropped) or come after such a drop."""
    from datatrove.data import Document

    from shardsmith.builders.encode import loss_mask

    tpl, tok, enc = _encoder(name, template)
    checked = 0
    for conv in conversations:
        r = render(conv, tpl, tok.eos_token)
        n = len(r.doc_text)
        extra = [[(0, 3), (n + 5, n + 9)], [(2, n)], [(n, n + 1), (0, 1)], [(1, 4), (3, 8)], [(5, n - 1), (0, 2)]]
        for ranges in [list(r.no_loss)] + extra:
            e = enc.tokenizer.encode(r.doc_text)
            doc = Document(text=r.doc_text, id="d", metadata={"no_loss_ranges": ranges})
            want = np.asarray(enc.step.get_loss_values(doc, e), dtype=bool).tobytes()
            assert bytes(loss_mask(len(e.ids), ranges, e.char_to_token)) == want, (conv.id, ranges)
            checked += 1
    assert checked == 6 * len(conversations)
