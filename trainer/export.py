"""HF-format export (safetensors + tokenizer + generation config), written to a temporary folder then renamed."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

_DT = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def weights_digest(state_dict) -> str:
    """sha256 over every tensor as fp32 bytes, keys sorted (equal digests = equal weights)."""
    import torch

    h = hashlib.sha256()
    for k in sorted(state_dict):
        t = state_dict[k]
        if not torch.is_tensor(t) or not t.is_floating_point():
            continue
        h.update(k.encode())
        h.update(t.detach().to(torch.float32).cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def export_hf(model, state_dict, dest: str | Path, tokenizer_dir: str | Path, dtype: str, eos_id: int | None) -> str:
    """Save ``model`` (config) with ``state_dict`` cast to ``dtype`` into ``dest`` atomically; returns the digest of
    the saved weights."""
    import torch
    from transformers import GenerationConfig

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".tmp-{dest.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tdtype = getattr(torch, _DT[dtype])
    sd = {k: v.detach().to(tdtype).cpu() for k, v in state_dict.items()}
    digest = weights_digest(sd)
    cfg = model.config
    old = getattr(cfg, "dtype", None)
    cfg.dtype = tdtype
    try:
        model.save_pretrained(tmp, state_dict=sd, safe_serialization=True)
    finally:
        cfg.dtype = old
    for f in Path(tokenizer_dir).iterdir():
        if f.is_file():
            shutil.copy2(f, tmp / f.name)
    if eos_id is not None:
        GenerationConfig(eos_token_id=eos_id, pad_token_id=eos_id, bos_token_id=eos_id, do_sample=False).save_pretrained(tmp)
    (tmp / "weights.sha256").write_text(digest + "\n")
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return digest
