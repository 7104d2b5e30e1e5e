"""Weight merging (trainer/merge.py): SLERP and linear per tensor, the moving average, the CLI, and the stage step.
SLERP is checked against mergekit itself (its `run_merge` on the same two tiny models)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shardsmith.cli import main as cli_main
from shardsmith.trainer.merge import MergeError, merge_folders, moving_average, slerp_tensor


def tiny_llama(folder: Path, seed: int, layers: int = 2) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64)
    torch.manual_seed(seed)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("merge")
    return tiny_llama(root / "a", 0), tiny_llama(root / "b", 1)


def weights(folder: Path) -> dict:
    return load_file(folder / "model.safetensors")


@pytest.mark.parametrize("t,side", [(0.0, 0), (1.0, 1)])
def test_slerp_at_the_ends_returns_the_inputs_exactly(pair, tmp_path, t, side):
    out = tmp_path / "m"
    merge_folders(*pair, t, out)
    got, want = weights(out), weights(pair[side])
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_slerp_halfway_between_orthogonal_tensors_keeps_the_norm():
    a = torch.tensor([[3.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 0.0], [0.0, 3.0]])
    mid, colinear = slerp_tensor(0.5, a, b)
    assert not colinear
    assert float(mid.norm()) == pytest.approx(3.0, abs=1e-6)
    assert float((a + b).mul(0.5).norm()) == pytest.approx(3.0 / 2 ** 0.5, abs=1e-6)  # linear would shrink it


def test_colinear_tensors_fall_back_to_linear_and_are_listed(pair, tmp_path):
    c = tmp_path / "c"
    import shutil

    shutil.copytree(pair[0], c)
    w = weights(pair[0])
    w = {k: v * 2 if k.endswith("norm.weight") else v + torch.randn_like(v) for k, v in w.items()}
    from safetensors.torch import save_file

    save_file(w, c / "model.safetensors", metadata={"format": "pt"})
    record = merge_folders(pair[0], c, 0.25, tmp_path / "m")
    norms = sorted(k for k in w if k.endswith("norm.weight"))
    assert record["colinear_tensors"] == norms
    got = weights(tmp_path / "m")
    for k in norms:
        assert torch.allclose(got[k], 0.75 * weights(pair[0])[k] + 0.25 * w[k], atol=1e-6)


def test_slerp_equals_mergekit_on_the_same_models(pair, tmp_path):
    yaml = pytest.importorskip("yaml")
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    a, b = (str(p.resolve()) for p in pair)
    conf = MergeConfiguration.model_validate(yaml.safe_load(
        f"merge_method: slerp\nbase_model: {a}\nmodels: [{{model: {a}}}, {{model: {b}}}]\n"
        "parameters: {t: 0.3}\ndtype: float32\n"))
    run_merge(conf, str(tmp_path / "mk"), options=MergeOptions(copy_tokenizer=False, lazy_unpickle=False))
    record = merge_folders(a, b, 0.3, tmp_path / "ours")
    theirs, ours = weights(tmp_path / "mk"), weights(tmp_path / "ours")
    assert ours.keys() == theirs.keys()
    worst = max(float((ours[k] - theirs[k]).abs().max()) for k in ours)
    print(f"largest difference to mergekit's SLERP over {len(ours)} tensors: {worst:.2e}")
    assert worst <= 1e-6
    # fresh RMSNorm weights are all ones in both models: colinear, so both sides interpolate them linearly
    assert record["colinear_tensors"] == sorted(k for k in ours if k.endswith("norm.weight"))


def test_linear_merge_and_moving_average(pair, tmp_path):
    c = tiny_llama(tmp_path / "c", 2)
    moving_average([*pair, c], 0.75, tmp_path / "avg", method="linear")
    wa, wb, wc, got = weights(pair[0]), weights(pair[1]), weights(c), weights(tmp_path / "avg")
    for k in wa:
        want = 0.75 * (0.75 * wa[k] + 0.25 * wb[k]) + 0.25 * wc[k]
        assert torch.allclose(got[k], want, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # intermediates removed


def test_cli_merges_and_refuses_bad_input_in_one_line(pair, tmp_path, capsys):
    assert cli_main(["merge", str(pair[0]), str(pair[1]), "--t", "0.1", "--out", str(tmp_path / "m")]) == 0
    record = json.loads((tmp_path / "m" / "merge.json").read_text())
    assert record["t"] == 0.1 and record["method"] == "slerp"
    other = tiny_llama(tmp_path / "deeper", 3, layers=3)
    cases = [
        ([str(pair[0]), str(other), "--t", "0.5"], "different tensors"),
        ([str(pair[0]), str(pair[1]), "--t", "1.5"], "must lie in [0, 1]"),
        ([str(pair[0]), str(tmp_path), "--t", "0.5"], "not an HF checkpoint folder"),
        ([str(pair[0]), str(pair[1]), str(other), "--t", "0.5"], "exactly two"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert cli_main(["merge", *args, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()


CHAIN = """
name: merge-chain
seed: 5
model: {preset: tiny-gpt2}
engine: {zero_stage: 0, precision: fp32}
stages:
  - {name: a, data: {sets: [{path: PT}]}, seq_len: 32, micro_batch_size: 2, max_steps: 3, optimizer: {lr: 5.0e-3}}
  - name: b
    data: {sets: [{path: PT}]}
    seq_len: 32
    micro_batch_size: 2
    max_steps: 3
    optimizer: {lr: 5.0e-3}
    merge: {toward: parent, t: 0.25}
  - {name: c, data: {sets: [{path: PT}]}, seq_len: 32, micro_batch_size: 2, max_steps: 1, optimizer: {lr: 1.0e-9}}
"""


def test_a_stage_merge_step_hands_the_blend_to_the_next_stage(tmp_path):
    """Stage b ends with hf/merged = SLERP(b's final, a's final, t=0.25); stage c starts from that blend."""
    import trainer_fixtures as F
    from shardsmith.trainer.runner import train

    pt = F.pretrain_set(tmp_path / "pt", F.build_tokenizer(tmp_path / "tok"), n_train=60, n_val=0)
    recipe = tmp_path / "chain.yaml"
    recipe.write_text(CHAIN.replace("PT", str(pt)))
    out = tmp_path / "run"
    train(str(recipe), str(out))
    b = json.loads((out / "b" / "stage.json").read_text())
    c = json.loads((out / "c" / "stage.json").read_text())
    assert b["handoff"] == "merged" and b["merge"]["t"] == 0.25
    assert b["merge"]["a"] == str(out / "b" / "hf" / "final") and b["merge"]["b"] == str(out / "a" / "hf" / "final")
    assert c["parent"] == str(out / "b" / "hf" / "merged")
    from transformers import AutoModelForCausalLM

    from shardsmith.trainer.export import weights_digest

    merged = AutoModelForCausalLM.from_pretrained(out / "b" / "hf" / "merged").state_dict()
    assert c["init_digest"] == weights_digest(merged) != b["final_digest"]
    merge_folders(out / "b" / "hf" / "final", out / "a" / "hf" / "final", 0.25, tmp_path / "again")
    assert json.loads((tmp_path / "again" / "merge.json").read_text())["digest"] == b["merge"]["digest"]


def test_a_merge_toward_nothing_is_refused_when_the_recipe_is_read(tmp_path):
    from shardsmith.recipes import RecipeError, load_recipe
    from shardsmith.schemas.train_recipe import TrainRecipe

    bad = CHAIN.replace("  - {name: a,", "  - {name: a, merge: {toward: parent, t: 0.5},")
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    with pytest.raises((RecipeError, ValueError), match="merge.toward: 'parent' needs a stage"):
        load_recipe(TrainRecipe, path)
