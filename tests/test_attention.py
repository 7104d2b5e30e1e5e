"""engine.attention: packed rows through FlexAttention's block mask and the varlen (per-document) path give the
dense block-causal mask's logits and gradients, and keep documents isolated, on real packed rows of a shard set."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trainer_fixtures as F
from shardsmith.schemas.manifest import ShardManifest
from shardsmith.trainer import attention as A
from shardsmith.trainer.data import StageData
from shardsmith.trainer.engine import Engine, EngineError, load_frozen
from shardsmith.trainer.models import build_config, new_model


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """Four packed rows of 160 tokens (several documents each, padding at the end of some)."""
    root = tmp_path_factory.mktemp("attention")
    tok = F.build_tokenizer(root / "tok")
    sft = F.sft_set(root / "sft", tok, pairs=F.qa_pairs(40, seed=5), n_val=4)
    data = StageData([str(sft)], [1.0], seq_len=160, seed=1, sampling="epoch", packing=True, document_masking=True,
                     micro=4, accum=1, rank=0, world=1)
    return sft, data.micro_batch(0, 0)


@pytest.fixture(scope="module", params=["tiny-gpt2", "tiny-llama"])
def model(packed, request):
    return new_model(build_config(request.param, None, {}, ShardManifest.load(packed[0]), 1, "sdpa"), seed=0)


def _forward(model, batch, kind, ids=None, grad=False):
    """Logits (and parameter gradients of their sum when ``grad``) with packed attention of ``kind``."""
    import torch

    m = copy.deepcopy(model)
    if kind != "dense":
        A.use_packed_attention(m)
    kw = A.model_inputs(batch.segment_ids, kind, "cpu", torch.float32)
    ids = batch.input_ids if ids is None else ids
    with torch.set_grad_enabled(grad):
        logits = m(input_ids=torch.from_numpy(ids), position_ids=torch.from_numpy(batch.position_ids), **kw).logits
    if not grad:
        return logits, None
    logits.float().pow(2).mean().backward()
    return logits.detach(), {n: p.grad for n, p in m.named_parameters()}


def test_rows_hold_several_documents_and_padding(packed):
    _, b = packed
    docs = [len({int(s) for s in row if s >= 0}) for row in b.segment_ids]
    assert min(docs) >= 2 and (b.segment_ids < 0).any()


def test_flex_and_varlen_logits_equal_the_dense_mask(packed, model):
    _, b = packed
    dense, _ = _forward(model, b, "dense")
    for kind in ("flex", "varlen"):
        out, _ = _forward(model, b, kind)
        assert (out - dense).abs().max() < 1e-5, kind


def test_varlen_gradients_equal_the_dense_mask(packed, model):
    _, b = packed
    _, g_dense = _forward(model, b, "dense", grad=True)
    _, g_var = _forward(model, b, "varlen", grad=True)
    for name, g in g_dense.items():
        scale = float(g.abs().max()) or 1.0
        assert float((g_var[name] - g).abs().max()) / scale < 1e-5, name


@pytest.mark.parametrize("kind", ["flex", "varlen"])
def test_changing_one_packed_document_leaves_the_others_unchanged(packed, model, kind):
    _, b = packed
    r = next(i for i, row in enumerate(b.segment_ids) if len({int(s) for s in row if s >= 0}) >= 3)
    victim = b.segment_ids == 1
    victim[np.arange(len(victim)) != r] = False
    ids2 = b.input_ids.copy()
    ids2[victim] = (ids2[victim] + 7) % 300 + 1
    base, _ = _forward(model, b, kind)
    out, _ = _forward(model, b, kind, ids=ids2)
    v = victim
    assert (out[v] - base[v]).abs().max() > 1e-3  # the perturbed document changed
    assert (out[~v] - base[~v]).abs().max() < 1e-5  # every other document (and row) did not


@pytest.mark.parametrize("kind", ["flex", "varlen"])
def test_a_frozen_teacher_or_reference_attends_like_the_trained_model(packed, model, kind, tmp_path):
    """KD's teacher (an HF folder) and an ``init`` copy get the trained model's packed attention: their logits on
    packed rows equal the dense block-causal mask's, so a teacher never sees across documents."""
    import torch

    _, b = packed
    dense, _ = _forward(model, b, "dense")
    model.save_pretrained(tmp_path / "teacher")
    kw = A.model_inputs(b.segment_ids, kind, "cpu", torch.float32)
    student = copy.deepcopy(model)
    A.use_packed_attention(student)
    for src in (str(tmp_path / "teacher"), "init"):
        frozen = load_frozen(src, student, "kd.teacher", attention_kind=kind, device="cpu", precision="fp32")
        assert not any(p.requires_grad for p in frozen.parameters()) and not frozen.training
        with torch.no_grad():
            out = frozen(input_ids=torch.from_numpy(b.input_ids), position_ids=torch.from_numpy(b.position_ids),
                         **kw).logits
        assert (out - dense).abs().max() < 1e-5, src


def test_doc_bounds_count_each_padding_position_as_its_own_document():
    seg = np.array([[0, 0, 0, 1, 1, -6, -7, -8], [0, 0, 0, 0, 0, 0, 0, 0]])
    cu, longest = A.doc_bounds(seg)
    assert cu.tolist() == [0, 3, 5, 6, 7, 8, 16] and longest == 8


def test_auto_is_varlen_on_cpu_and_flex_cannot_train_here(model):
    import torch
    from shardsmith.schemas.train_recipe import EngineSpec

    if torch.cuda.is_available():
        pytest.skip("CPU-only rule")
    assert A.resolve("auto") == "varlen" and A.resolve("flex", training=False) == "flex"
    with pytest.raises(EngineError, match="flex cannot train on CPU"):
        Engine._packed_attention(model, EngineSpec(attention="flex"))
    m = copy.deepcopy(model)
    assert Engine._packed_attention(m, EngineSpec()) == "varlen" and m.config._attn_implementation == A.IMPLEMENTATION
