"""Model presets (the seeds' architectures and tiny ones for tests) and loading with vocabulary checks.

Vocabulary and special-token ids always come from the shard manifest: a preset's ``vocab_size`` is replaced by the
manifest's (rounded up if asked); a model loaded from an HF folder must agree with the manifest's tokenizer, and its
embeddings are resized when the manifest's tokenizer extends the model's (tokens added for a template).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from shardsmith.schemas.manifest import ShardManifest

_NO_DROPOUT = dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)

# family, config keys. Vocabulary comes from the manifest at build time.
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    # tests / demo
    "tiny-gpt2": ("gpt2", dict(n_layer=2, n_embd=64, n_head=4, n_positions=512, **_NO_DROPOUT)),
    "small-gpt2": ("gpt2", dict(n_layer=4, n_embd=128, n_head=4, n_positions=512, **_NO_DROPOUT)),
    "tiny-llama": (
        "llama",
        dict(num_hidden_layers=2, hidden_size=64, intermediate_size=176, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=512, rope_theta=10000.0, tie_word_embeddings=False),
    ),
    # GPT-2 small 124M (12 layers, 768 hidden, 12 heads, 1024 context, tied embeddings): the nanoGPT baseline
    "gpt2-124m": ("gpt2", dict(n_layer=12, n_embd=768, n_head=12, n_positions=1024, **_NO_DROPOUT)),
    # FF_3.13: GPT-2 2.02B (38 layers, 2048 hidden, 16 heads, 1024 context, tied embeddings)
    "gpt2-2b": ("gpt2", dict(n_layer=38, n_embd=2048, n_head=16, n_positions=1024, **_NO_DROPOUT)),
    # fgpt: GPT-2-large-like 712M (32 layers, 24 heads, d_model 1248, 1024 context; untied head: 725M in HF GPT-2)
    "gpt2-712m": ("gpt2", dict(n_layer=32, n_embd=1248, n_head=24, n_positions=1024, tie_word_embeddings=False,
                              **_NO_DROPOUT)),
    # Transformer-1B-Chat: LLaMA-style 1.1B (22 layers, 2048 hidden, SwiGLU 5504, 32 heads / 8 KV, RoPE 1e4, 2048 ctx)
    "llama-1.1b": (
        "llama",
        dict(num_hidden_layers=22, hidden_size=2048, intermediate_size=5504, num_attention_heads=32,
             num_key_value_heads=8, max_position_embeddings=2048, rope_theta=10000.0, rms_norm_eps=1e-5,
             tie_word_embeddings=False, attention_bias=False, mlp_bias=False),
    ),
}


class ModelError(ValueError):
    pass


def _config_class(family: str):
    from transformers import GPT2Config, LlamaConfig

    return {"gpt2": GPT2Config, "llama": LlamaConfig}[family]


def vocab_rows(vocab_size: int, multiple: int) -> int:
    return int(math.ceil(vocab_size / multiple) * multiple)


def build_config(preset: str | None, path: str | None, overrides: dict, manifest: ShardManifest, pad_multiple: int = 1,
                 attn_implementation: str = "sdpa"):
    """An HF config for a fresh model: preset (or an HF folder's config) + overrides + the manifest's vocabulary."""
    from transformers import AutoConfig

    if path:
        if not Path(path, "config.json").is_file():
            raise ModelError(f"model.path {path}: no config.json")
        config = AutoConfig.from_pretrained(path)
    else:
        if preset not in PRESETS:
            raise ModelError(f"unknown model preset '{preset}' (known: {', '.join(PRESETS)})")
        family, keys = PRESETS[preset]
        config = _config_class(family)(**keys)
    for k, v in (overrides or {}).items():
        if k == "vocab_size":
            continue
        setattr(config, k, v)
    tok = manifest.tokenizer
    wanted = int(overrides.get("vocab_size", 0)) if overrides else 0
    rows = vocab_rows(tok.vocab_size, pad_multiple)
    if wanted and wanted < tok.vocab_size:
        raise ModelError(
            f"model.config.vocab_size={wanted} is smaller than the shard set's tokenizer ({tok.name}: "
            f"{tok.vocab_size} tokens)"
        )
    config.vocab_size = max(rows, wanted)
    if tok.eos_id is not None:
        config.eos_token_id = tok.eos_id
        config.bos_token_id = tok.eos_id
        config.pad_token_id = None
    config._attn_implementation = attn_implementation
    return config


def new_model(config, seed: int):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation=config._attn_implementation,
                                             dtype=torch.float32)
    return model


def _vocab_of_folder(folder: Path) -> dict[str, int] | None:
    tj = folder / "tokenizer.json"
    if not tj.is_file():
        return None
    data = json.loads(tj.read_text(encoding="utf-8"))
    vocab = dict(data.get("model", {}).get("vocab", {}) or {})
    if isinstance(data.get("model", {}).get("vocab"), list):  # unigram: [[piece, score], ...]
        vocab = {p[0]: i for i, p in enumerate(data["model"]["vocab"])}
    for t in data.get("added_tokens", []):
        vocab[t["content"]] = t["id"]
    return vocab


def check_vocab(model_folder: Path, model_rows: int, shard_dir: Path, manifest: ShardManifest) -> int:
    """Return the embedding rows the model needs for this shard set, or raise when the tokenizers disagree."""
    need = manifest.tokenizer.vocab_size
    shard_vocab = _vocab_of_folder(shard_dir / manifest.tokenizer.path)
    model_vocab = _vocab_of_folder(model_folder)
    if shard_vocab is not None and model_vocab is not None:
        bad = [t for t, i in model_vocab.items() if shard_vocab.get(t) != i]
        if bad:
            raise ModelError(
                f"shard set {shard_dir} was built with tokenizer '{manifest.tokenizer.name}' whose vocabulary differs "
                f"from the model's ({model_folder}): {len(bad)} of the model's {len(model_vocab)} tokens have other "
                f"ids or are missing (e.g. {bad[:3]!r}); rebuild the shards with the model's tokenizer"
            )
    elif need > model_rows:
        raise ModelError(
            f"shard set {shard_dir} has a {need}-token vocabulary but the model at {model_folder} has only "
            f"{model_rows} embedding rows and no tokenizer to compare against"
        )
    return max(need, model_rows)


def load_model(folder: str | Path, shard_dir: Path, manifest: ShardManifest, attn_implementation: str = "sdpa"):
    """Load HF weights in fp32, check the vocabulary against the manifest, resize if tokens were added."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder}: not an HF model folder (no config.json)")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation=attn_implementation)
    from shardsmith.trainer.export import weights_digest

    model._shardsmith_loaded_digest = weights_digest(model.state_dict())  # before any resize
    rows = model.get_input_embeddings().num_embeddings
    need = check_vocab(folder, rows, shard_dir, manifest)
    if need > rows:
        model.resize_token_embeddings(need, mean_resizing=True)
    if manifest.tokenizer.eos_id is not None:
        model.config.eos_token_id = manifest.tokenizer.eos_id
    return model


def count_params(model, exclude_embeddings: bool = False) -> int:
    n = sum(p.numel() for p in model.parameters())
    if exclude_embeddings:
        n -= model.get_input_embeddings().weight.numel()
    return n


def flops_per_token(model, seq_len: int) -> float:
    """Training FLOPs per token: 6N (non-embedding matmuls incl. the head) + 12·L·d·T attention (PaLM appendix B)."""
    cfg = model.config
    n_layer = getattr(cfg, "num_hidden_layers", None) or cfg.n_layer
    d = getattr(cfg, "hidden_size", None) or cfg.n_embd
    n = count_params(model)  # a tied embedding is counted once and is used by the head
    if model.get_output_embeddings().weight is not model.get_input_embeddings().weight:
        n -= model.get_input_embeddings().weight.numel()  # an untied input lookup costs no matmul
    return 6.0 * n + 12.0 * n_layer * d * seq_len
