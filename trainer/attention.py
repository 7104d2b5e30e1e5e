"""Per-document attention for packed rows without the dense L×L block-causal mask (``engine.attention``).

Packed rows hold several documents; a token may attend only to earlier tokens of its own document. Three exact ways:

* ``dense``  — the (B, 1, L, L) mask of ``engine.block_causal_mask`` handed to the model's own attention (SDPA /
  eager): O(L²) memory per row and attention over the whole row.
* ``flex``   — PyTorch FlexAttention with a ``BlockMask`` built from the segment ids by ``create_block_mask``
  (compiled on CUDA, so only the block table is ever stored; the kernel skips empty blocks). torch 2.13 runs
  FlexAttention's *forward* on CPU but has no backward there ("FlexAttention does not support backward on CPU"), so
  ``flex`` trains on CUDA only.
* ``varlen`` — the documents as variable-length sequences (``cu_seqlens`` over the flattened batch): on CUDA in
  bf16/fp16 ``torch.nn.attention.varlen.varlen_attn`` (FlashAttention's varlen kernel), elsewhere documents bucketed by
  length, one causal SDPA call per bucket (``_bucketed_documents``). Never an L×L mask; work within 2x of the sum of
  squared document lengths instead of L² per row.
* ``auto``   — ``flex`` on CUDA, ``varlen`` on CPU (the fastest exact path that trains there).

The model keeps its HF implementation for everything else: the function below is registered with transformers'
``AttentionInterface`` (and a mask function that builds no mask) under ``shardsmith_packed``; it runs FlexAttention when
handed ``packed_block_mask`` (a ``BlockMask``: GPT-2's forward refuses one as ``attention_mask``), the varlen path when
handed ``packed_cu_seqlens``, and plain causal SDPA otherwise (rows without documents: clm windows, DPO rows, whose
padding comes after every real token). Hand-written because transformers' own ``flex_attention`` implementation
always compiles (minutes on CPU), its packed-sequence detection builds the dense mask for SDPA, and its flash varlen
path needs the flash-attn package; the kernels are PyTorch's (FlexAttention, varlen_attn, SDPA ``is_causal``).
"""

from __future__ import annotations

import numpy as np

IMPLEMENTATION = "shardsmith_packed"
KINDS = ("dense", "flex", "varlen", "auto")


class AttentionError(ValueError):
    """An attention kind that cannot run here (one line for the CLI)."""


def resolve(kind: str, training: bool = True) -> str:
    """``auto`` -> flex on CUDA, varlen on CPU; refuses flex training on CPU (no FlexAttention backward there)."""
    import torch

    if kind not in KINDS:
        raise AttentionError(f"engine.attention: '{kind}' is not one of {', '.join(KINDS)}")
    cuda = torch.cuda.is_available()
    if kind == "auto":
        return "flex" if cuda else "varlen"
    if kind == "flex" and training and not cuda:
        raise AttentionError("engine.attention: flex cannot train on CPU (torch has no FlexAttention backward there); "
                             "use varlen, dense or auto")
    return kind


def use_packed_attention(model) -> None:
    """Route the model's attention through ``shardsmith_packed`` (registered on first use)."""
    register()
    model.config._attn_implementation = IMPLEMENTATION


def model_inputs(segment_ids: np.ndarray, kind: str, device, dtype, sdpa: bool = True) -> dict:
    """The keyword arguments that make the model attend per document, for ``kind`` in dense | flex | varlen."""
    import torch

    if kind == "dense":
        from shardsmith.trainer.engine import block_causal_mask

        seg = torch.from_numpy(segment_ids).to(device)
        return {"attention_mask": block_causal_mask(seg, torch.bool if sdpa else dtype)}
    if kind == "flex":
        return {"packed_block_mask": block_mask(torch.from_numpy(segment_ids).to(device))}
    cu, longest = doc_bounds(segment_ids)
    return {"packed_cu_seqlens": torch.from_numpy(cu).to(device), "packed_max_len": longest}


def doc_bounds(segment_ids: np.ndarray) -> tuple[np.ndarray, int]:
    """(cu_seqlens over the flattened (B·L) tokens as int32, longest document): a document starts at each row start
    and wherever the segment id changes (each padding position has its own id, so it is a document of one)."""
    B, L = segment_ids.shape
    flat = segment_ids.reshape(-1)
    start = np.ones(B * L, dtype=bool)
    start[1:] = flat[1:] != flat[:-1]
    start[::L] = True
    cu = np.append(np.flatnonzero(start), B * L).astype(np.int32)
    return cu, int(np.diff(cu).max())


def block_mask(segment_ids):
    """FlexAttention ``BlockMask``: q sees kv iff kv <= q and both lie in the same document of the row."""
    from torch.nn.attention.flex_attention import create_block_mask

    def same_document_causal(b, h, q, kv):
        return (segment_ids[b, q] == segment_ids[b, kv]) & (kv <= q)

    B, L = segment_ids.shape
    return create_block_mask(same_document_causal, B, None, L, L, device=segment_ids.device,
                             _compile=segment_ids.is_cuda)


# ---------------------------------------------------------------------------------------------------------------
# the attention function transformers calls (query: (B, H, L, D), key/value: (B, Hkv, L, D)) -> (B, L, H, D)


def packed_attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    import torch.nn.functional as F

    p = dropout if module.training else 0.0
    cu = kwargs.get("packed_cu_seqlens")
    if cu is not None:
        return _varlen(query, key, value, cu, kwargs["packed_max_len"], scaling, p), None
    gqa = query.shape[1] != key.shape[1]
    if kwargs.get("packed_block_mask") is not None:
        out = _flex()(query, key, value, block_mask=kwargs["packed_block_mask"], scale=scaling, enable_gqa=gqa)
    else:  # training rows (q = kv length: causal) or one-token decoding with a cache (every key is in the past)
        q_len, kv_len = query.shape[2], key.shape[2]
        if attention_mask is None and 1 < q_len != kv_len:
            raise NotImplementedError(f"{IMPLEMENTATION}: {q_len} queries over {kv_len} cached keys (load the model "
                                      "with sdpa or eager attention to generate)")
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=p,
                                             is_causal=attention_mask is None and q_len > 1, scale=scaling,
                                             enable_gqa=gqa)
    return out.transpose(1, 2).contiguous(), None


_COMPILED_FLEX = None


def _flex():
    """FlexAttention: compiled once on CUDA (the fused kernel), eager on CPU (a forward-only reference there)."""
    global _COMPILED_FLEX
    import torch
    from torch.nn.attention.flex_attention import flex_attention

    if not torch.cuda.is_available():
        return flex_attention
    if _COMPILED_FLEX is None:
        _COMPILED_FLEX = torch.compile(flex_attention, dynamic=False)
    return _COMPILED_FLEX


def _varlen(query, key, value, cu, max_len: int, scaling, dropout_p: float):
    """Documents as variable-length sequences (bounds ``cu`` over the flattened batch); returns (B, L, H, D)."""
    import torch

    B, H, L, D = query.shape
    gqa = query.shape[1] != key.shape[1]
    if query.is_cuda and query.dtype in (torch.bfloat16, torch.float16) and dropout_p == 0.0:
        from torch.nn.attention.varlen import varlen_attn

        q, k, v = (t.transpose(1, 2).reshape(B * L, t.shape[1], D) for t in (query, key, value))  # (T, heads, D)
        out = varlen_attn(q, k, v, cu, cu, max_len, max_len, scale=scaling, window_size=(-1, 0), enable_gqa=gqa)
        return out.reshape(B, L, H, D)
    q, k, v = (t.transpose(1, 2).reshape(B * L, t.shape[1], D) for t in (query, key, value))
    if gqa:  # SDPA's fused CPU kernel takes equal head counts; O(L) memory, once per layer
        k, v = k.repeat_interleave(H // k.shape[1], dim=1), v.repeat_interleave(H // v.shape[1], dim=1)
    return _bucketed_documents(q, k, v, cu, scaling, dropout_p).reshape(B, L, H, D)


def _bucketed_documents(q, k, v, cu, scaling, dropout_p: float):
    """Causal attention within each document, (T, H, D) in and out.

    Documents are grouped by length into power-of-two buckets; each bucket becomes a (docs, H, longest, D) batch,
    right-padded, and goes through one causal SDPA call: a real query never sees the padding after it, and padded
    queries are dropped, so the result is exact while the kernel count stays at about log2(L) and the work within 2x
    of the sum of squared lengths. One-token documents (padding positions) attend to themselves only: their output is
    their value vector. One gather brings every bucket's rows in and one gather puts the outputs back (autograd then
    scatters each gradient once, not once per bucket)."""
    import torch
    import torch.nn.functional as F

    H, D = q.shape[1:]
    plan = _bucket_plan(cu.cpu().numpy() if hasattr(cu, "cpu") else np.asarray(cu))
    gather = torch.from_numpy(plan["gather"]).to(q.device)
    sizes = [plan["singles"]] + [n * m for n, m in plan["buckets"]]
    # one gather for q, k and v, then split (whose backward is one concatenation; slicing would zero-fill per slice)
    singles, *parts = torch.stack([q, k, v])[:, gather].split(sizes, dim=1)
    outs = [singles[2]]
    for (n, m), part in zip(plan["buckets"], parts):
        qd, kd, vd = part.view(3, n, m, H, D).transpose(2, 3).unbind(0)  # (docs, H, m, D) each
        od = F.scaled_dot_product_attention(qd, kd, vd, dropout_p=dropout_p, is_causal=True, scale=scaling)
        outs.append(od.transpose(1, 2).reshape(n * m, H, D))
    return torch.cat(outs)[torch.from_numpy(plan["back"]).to(q.device)]


def _bucket_plan(cu: np.ndarray) -> dict:
    """Index plan for ``_bucketed_documents``: ``gather`` (token rows: the one-token documents, then each bucket's
    documents right-padded to the bucket's longest by repeating their last token), ``buckets`` [(docs, width)], and
    ``back`` (for every token, its row in the concatenated outputs)."""
    starts, lens = cu[:-1].astype(np.int64), np.diff(cu).astype(np.int64)
    single = lens == 1
    gather, back_pos, back_row = [starts[single]], [starts[single]], [np.arange(int(single.sum()))]
    at, buckets = int(single.sum()), []
    width_class = np.ceil(np.log2(np.maximum(lens, 1))).astype(np.int64)
    for c in np.unique(width_class[~single]):
        sel = (width_class == c) & ~single
        st, ln = starts[sel], lens[sel]
        m = int(ln.max())
        ar = np.arange(m)
        idx = st[:, None] + np.minimum(ar[None, :], ln[:, None] - 1)
        valid = ar[None, :] < ln[:, None]
        gather.append(idx.reshape(-1))
        back_pos.append(idx[valid])
        back_row.append(at + np.flatnonzero(valid.reshape(-1)))
        buckets.append((len(st), m))
        at += len(st) * m
    back = np.empty(int(cu[-1]), np.int64)
    back[np.concatenate(back_pos)] = np.concatenate(back_row)
    return {"gather": np.concatenate(gather), "singles": int(single.sum()), "buckets": buckets, "back": back}


_REGISTERED = False


def register() -> None:
    """Register ``shardsmith_packed`` with transformers (attention function + a mask function that builds no mask:
    the function above knows the causal rule itself)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(IMPLEMENTATION, packed_attention_forward)
    AttentionMaskInterface.register(IMPLEMENTATION, _no_mask)
    _REGISTERED = True


def _no_mask(*args, **kwargs):
    return None
