"""FF_3.13's later stages from their own recipes, in miniature: the distill block (a teacher this project trained
answers the pooled questions), the surgical block and the repair block are built from recipes/blocks/ff-*.yaml on
the real samples, then recipes/train/ff313.yaml's distill -> surgical -> repair stages train on them, each stage
starting from the one before. Counts are shrunk with --set; everything else is the shipped recipes'."""

from __future__ import annotations

import json

import pytest
import trainer_fixtures as F
from conftest import REPO, need_data

from shardsmith.builders.build import build
from shardsmith.builders.writer import inspect_documents
from shardsmith.schemas.answer_forms import score_item
from shardsmith.trainer.runner import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")
BLOCKS = REPO / "recipes" / "blocks"
SURGICAL_COUNTS = {"single_letter_mmlu": 4, "single_letter_arc": 4, "numeric_only_gsm8k": 8, "yes_no_yes": 4,
                   "yes_no_no": 4, "exact_2_list": 4, "exact_3_list": 4}


def _manifest(folder) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _build_blocks(tmp_path, teacher, tok) -> dict:
    common = [f"tokenizer.name={tok}"]
    distill = build(str(BLOCKS / "ff-distill.yaml"), str(tmp_path / "distill"), common + [
        f"teacher.path={teacher}", "teacher.max_new_tokens=12", "pool.total=40", "validation.fraction=0.1",
        *[f"sources.{s}.limit=40" for s in ("hellaswag", "openhermes", "mmlu", "math", "gsm8k", "arc", "truthfulqa")],
    ])
    surgical = build(str(BLOCKS / "ff-surgical.yaml"), str(tmp_path / "surgical"), common + [
        "validation.count=8", *[f"sources.{s}.count={n}" for s, n in SURGICAL_COUNTS.items()],
        *[f"sources.{s}.limit=120" for s in SURGICAL_COUNTS],
    ])
    repair = build(str(BLOCKS / "ff-repair.yaml"), str(tmp_path / "repair"), common + [
        "sources.block_a_mcq.count=20", "sources.block_b_factual.count=6", "sources.block_d_numeric.count=10",
        "validation.count=4", "sources.block_a_mcq.limit=60", "sources.block_d_numeric.limit=40",
    ])
    return {"distill": distill, "surgical": surgical, "repair": repair}


def test_ff313_distill_surgical_repair_stages_on_blocks_from_their_recipes(tmp_path, monkeypatch):
    shared = need_data("mcq_hellaswag_olmes", "sft_alpaca_en_demo", "mcq_mmlu", "cot_aqua_rat", "mcq_gsm8k", "mcq_arc",
              "mcq_truthfulqa")
    teacher = F.tiny_ff_model(tmp_path / "teacher")
    blocks = _build_blocks(tmp_path, teacher, teacher.parent.parent.parent.parent / "tok")

    man = {k: _manifest(v) for k, v in blocks.items()}
    pool = {c["source"]: c["taken"] for c in man["distill"]["distill_pool"]["sources"]}
    assert pool == {"hellaswag": 15, "openhermes": 11, "mmlu": 5, "math": 5, "gsm8k": 3, "arc": 1, "truthfulqa": 0}
    assert man["distill"]["teacher"]["kind"] == "hf" and man["distill"]["teacher"]["generated"] > 0
    counts = man["distill"]["counts"]
    for c in counts.values():  # every record read is kept, or dropped with a reason
        assert c["read"] == c["kept"] + sum(c["dropped"].values())
    reasons = {r for c in counts.values() for r in c["dropped"]}
    # prompts longer than the tiny teacher's 128 positions and answers that are only EOS are counted, not fatal
    assert {"not_in_pool", "too_long_for_teacher", "empty_teacher_output"} <= reasons
    assert man["distill"]["teacher"]["generated"] == sum(c["kept"] for c in counts.values()) + sum(
        c["dropped"].get("empty_teacher_output", 0) for c in counts.values())
    for d in inspect_documents(blocks["distill"]):  # the teacher's words are what carries loss
        assert d["text"].startswith("### System:\nYou are FF-LLM") and d["loss_runs"]

    per_source = man["surgical"]["split_rule"]["per_source"]
    assert {s: v["train"] for s, v in per_source.items()} == SURGICAL_COUNTS
    answers = [json.loads(x) for x in (blocks["surgical"] / "reports" / "documents.jsonl").read_text().splitlines()]
    docs = inspect_documents(blocks["surgical"], "train")
    key = [a for a in answers if a["split"] == "train"]
    for d, a in zip(docs, key, strict=True):  # every target passes its own form's checker
        reply = "".join(d["loss_runs"]).removesuffix("<|endoftext|>")
        assert score_item(reply, a["metadata"]).ok, (reply, a)
    repair_split = man["repair"]["split_rule"]["per_source"]
    assert {s: v["train"] for s, v in repair_split.items()} == {"block_a_mcq": 20, "block_b_factual": 6,
                                                                "block_d_numeric": 10}
    assert sum(v["validation"] for v in repair_split.values()) == 4

    for var, stage in (("FF_DISTILL", "distill"), ("FF_SURGICAL", "surgical"), ("FF_REPAIR", "repair")):
        monkeypatch.setenv(var, str(blocks[stage]))
    out = tmp_path / "runs"
    small = ["engine.precision=fp32", f"stages.distill.init_from={teacher}"]
    for stage in ("distill", "surgical", "repair"):
        small += [f"stages.{stage}.seq_len=512", f"stages.{stage}.micro_batch_size=4", f"stages.{stage}.grad_accum=1",
                  f"stages.{stage}.save_every=2", f"stages.{stage}.eval_every=2", f"stages.{stage}.data.val_rows=2"]
    small += ["stages.distill.epochs=0.2", "stages.surgical.epochs=0.2", "stages.repair.stop_at_step=4",
              # the repair sweep scores the start and step 4 on one MMLU item per subject (57 items)
              f"stages.repair.eval.data={shared}", "stages.repair.eval.limit=1", "stages.repair.eval.every=4"]
    for stage in ("distill", "surgical", "repair"):
        train(str(REPO / "recipes" / "train" / "ff313.yaml"), str(out), overrides=small, stage=stage)
    info = {s: json.loads((out / s / "stage.json").read_text()) for s in ("distill", "surgical", "repair")}
    assert info["surgical"]["init_digest"] == info["distill"]["final_digest"]
    assert info["repair"]["init_digest"] == info["surgical"]["final_digest"]
    assert info["repair"]["steps_done"] == 4 < info["repair"]["total_steps"]  # early stop (the card: step 200)
    assert (out / "repair" / "hf" / "final" / "model.safetensors").is_file()
    # the recipe's MMLU rule picked a champion (the last step, or the start when the domain guard rejects it), and the
    # t=0.10 SLERP toward the parent blends that champion; the blend is what the stage hands on
    sel, merge = info["repair"]["selection"], info["repair"]["merge"]
    assert sel["champion"]["tag"] in ("final", "step-0") and [c["step"] for c in sel["candidates"]] == [0, 4]
    assert merge["base"] == f"hf/{sel['champion']['tag']}" and merge["t"] == 0.1
    assert info["repair"]["handoff"] == "merged"
    assert merge["b"] == str(out / "surgical" / "hf" / "final")
    assert "★" in (out / "repair" / "eval" / "sweep.md").read_text()
