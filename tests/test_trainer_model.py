"""Model-side checks without DeepSpeed: packing isolation through the real attention path, SFT loss masking,
vocabulary checks against the manifest, presets."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trainer_fixtures as F
from shardsmith.schemas.manifest import ShardManifest
from shardsmith.trainer.data import IGNORE, StageData
from shardsmith.trainer.engine import block_causal_mask
from shardsmith.trainer.models import ModelError, build_config, load_model, new_model
from shardsmith.trainer.objectives import token_losses


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer_model")
    tok = F.build_tokenizer(root / "tok")
    pairs = F.qa_pairs(40, seed=5)
    # same documents, only the prompts' words changed (same token count is not needed: rows are rebuilt)
    prompt_changed = [(p.replace("what does", "tell me what"), a) for p, a in pairs]
    answer_changed = [(p, a.replace(".", "!")) for p, a in pairs]
    return {
        "root": root, "tok": tok,
        "sft": F.sft_set(root / "sft", tok, pairs=pairs, n_val=4),
        "sft_prompt": F.sft_set(root / "sft_prompt", tok, pairs=prompt_changed, n_val=4),
        "sft_answer": F.sft_set(root / "sft_answer", tok, pairs=answer_changed, n_val=4),
    }


def _model(path, preset, attn="sdpa"):
    m = ShardManifest.load(path)
    return new_model(build_config(preset, None, {}, m, 1, attn), seed=0).eval()


def _packed(path, seq_len=160):
    d = StageData([str(path)], [1.0], seq_len=seq_len, seed=1, sampling="epoch", packing=True,
                  document_masking=True, micro=4, accum=1, rank=0, world=1)
    return d.micro_batch(0, 0)


def _logits(model, ids, pos, seg):
    import torch

    with torch.no_grad():  # the mask form the engine passes: boolean for SDPA, additive float for eager
        sdpa = model.config._attn_implementation == "sdpa"
        mask = block_causal_mask(torch.from_numpy(seg), torch.bool if sdpa else torch.float32)
        return model(input_ids=torch.from_numpy(ids), position_ids=torch.from_numpy(pos), attention_mask=mask).logits


@pytest.mark.parametrize("preset,attn", [("tiny-gpt2", "sdpa"), ("tiny-llama", "sdpa"), ("tiny-gpt2", "eager"),
                                         ("tiny-llama", "eager")])
def test_changing_one_packed_document_leaves_the_others_logits_unchanged(sets, preset, attn):
    b = _packed(sets["sft"])
    r = next(i for i, k in enumerate(b.keys) if len(k) >= 3)
    model = _model(sets["sft"], preset, attn)
    seg = b.segment_ids[r:r + 1]
    ids = b.input_ids[r:r + 1].copy()
    base = _logits(model, ids, b.position_ids[r:r + 1], seg)
    # perturb document 1 (the middle one): every token replaced
    victim = seg[0] == 1
    ids2 = ids.copy()
    ids2[0, victim] = (ids2[0, victim] + 7) % 300 + 1
    out = _logits(model, ids2, b.position_ids[r:r + 1], seg)
    others = ~victim
    assert (out[0, victim] - base[0, victim]).abs().max() > 1e-3  # the perturbed document did change
    assert (out[0, others] - base[0, others]).abs().max() < 1e-5  # documents 0 and 2 did not
    # control: without the block mask (plain causal), document 2 *would* change: leakage is detectable here
    import torch

    with torch.no_grad():
        leak_a = model(input_ids=torch.from_numpy(ids)).logits
        leak_b = model(input_ids=torch.from_numpy(ids2)).logits
    after = seg[0] == 2
    assert (leak_a[0, after] - leak_b[0, after]).abs().max() > 1e-4


def _loss(model, ids, labels, pos, seg):
    import torch

    logits = model(input_ids=torch.from_numpy(ids), position_ids=torch.from_numpy(pos),
                   attention_mask=block_causal_mask(torch.from_numpy(seg), torch.float32)).logits
    return token_losses(logits, torch.from_numpy(labels), "sft").sum(), logits


def _altered_copy(src: Path, dst: Path, where_loss: int) -> Path:
    """Copy a shard set and replace every token whose .ds.loss byte == where_loss (0: prompt, 1: answer; the EOS
    is kept) by another id, in the .ds files themselves: same documents, same lengths, other tokens."""
    import shutil

    shutil.copytree(src, dst)
    m = ShardManifest.load(dst)
    for f in (dst / "train").glob("*.ds"):
        toks = np.fromfile(f, dtype=np.uint16)
        loss = np.fromfile(f"{f}.loss", dtype=np.uint8)
        sel = (loss == where_loss) & (toks != m.tokenizer.eos_id)
        toks[sel] = (toks[sel] % 200) + 50
        toks.tofile(f)
    return dst


def test_sft_loss_unchanged_when_prompt_tokens_change_changed_when_answer_tokens_do(sets, tmp_path):
    """The shard files are altered on prompt tokens only, or answer tokens only. The reader yields the same rows
    (same lengths, same seed); with the model's input held fixed, the SFT loss over the labels read from the
    prompt-altered shards equals the original loss exactly, and over the answer-altered shards it differs. The
    gradient reaching prompt positions is exactly zero. (Feeding altered prompts as *input* changes the answers'
    context and so their loss: that is conditioning, not prompt tokens entering the loss.)"""
    import torch

    base_set = Path(sets["sft"])
    pset = _altered_copy(base_set, tmp_path / "prompt_altered", where_loss=0)
    aset = _altered_copy(base_set, tmp_path / "answer_altered", where_loss=1)
    base, pch, ach = (_packed(p, seq_len=128) for p in (base_set, pset, aset))
    assert base.keys == pch.keys == ach.keys
    assert (base.input_ids != pch.input_ids).any() and (base.input_ids != ach.input_ids).any()
    model = _model(base_set, "tiny-gpt2")
    ids, pos, seg = base.input_ids, base.position_ids, base.segment_ids
    l0, logits = _loss(model, ids, base.labels, pos, seg)
    lp, _ = _loss(model, ids, pch.labels, pos, seg)
    la, _ = _loss(model, ids, ach.labels, pos, seg)
    assert float(lp.detach()) == float(l0.detach())
    assert abs(float(la.detach()) - float(l0.detach())) > 1e-2
    logits = logits.detach().requires_grad_(True)
    token_losses(logits, torch.from_numpy(base.labels), "sft").sum().backward()
    masked = torch.from_numpy(base.labels == IGNORE)
    assert logits.grad[masked].abs().max() == 0
    assert logits.grad[~masked].abs().max() > 0


def test_manifest_vocab_mismatch_with_model_is_an_error(sets, tmp_path):
    model = _model(sets["sft"], "tiny-gpt2")
    folder = tmp_path / "m"
    model.save_pretrained(folder)
    # the model's tokenizer is a different BPE (other merges / ids) than the shard set's
    other = F.build_tokenizer(tmp_path / "other_tok", vocab_size=320, extra_special=("<|user|>",))
    for f in other.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    m = ShardManifest.load(sets["sft"])
    with pytest.raises(ModelError, match="vocabulary differs from the model's"):
        load_model(folder, Path(sets["sft"]), m)


def test_added_tokens_resize_embeddings(sets, tmp_path):
    """A shard set whose tokenizer extends the model's (a template token appended) resizes the embeddings."""
    m = ShardManifest.load(sets["sft"])
    model = _model(sets["sft"], "tiny-gpt2")
    folder = tmp_path / "m"
    model.save_pretrained(folder)
    for f in Path(sets["tok"]).iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    from transformers import AutoTokenizer

    ext = tmp_path / "ext_tok"
    t = AutoTokenizer.from_pretrained(sets["tok"])
    t.add_special_tokens({"additional_special_tokens": ["<|user|>"]})
    t.save_pretrained(ext)
    ext_set = F.build_shard_set(tmp_path / "ext_set", ext, ["<|user|> hi there"] * 4)
    em = ShardManifest.load(ext_set)
    assert em.tokenizer.vocab_size == m.tokenizer.vocab_size + 1
    loaded = load_model(folder, ext_set, em)
    assert loaded.get_input_embeddings().num_embeddings == em.tokenizer.vocab_size


def test_preset_vocab_smaller_than_manifest_is_an_error(sets):
    m = ShardManifest.load(sets["sft"])
    with pytest.raises(ModelError, match="smaller than the shard set's tokenizer"):
        build_config("tiny-gpt2", None, {"vocab_size": 100}, m)


def test_seed_presets_have_the_seeds_sizes():
    """Parameter counts of the seeds' architectures (meta device: no memory)."""
    import torch
    from shardsmith.trainer.models import PRESETS, _config_class
    from transformers import AutoModelForCausalLM

    def n(preset, vocab):
        fam, keys = PRESETS[preset]
        cfg = _config_class(fam)(**keys, vocab_size=vocab)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(cfg)
        return sum(p.numel() for p in model.parameters())

    assert n("llama-1.1b", 32003) == 1_105_827_840  # Transformer-1B-Chat card, exactly
    assert abs(n("gpt2-2b", 50257) - 2.02e9) / 2.02e9 < 0.01  # FF_3.13: 2.02B
    assert abs(n("gpt2-712m", 50304) - 712e6) / 712e6 < 0.03  # fgpt: 712M
