"""Build small real shard sets for the trainer tests: a byte-level BPE trained here, datatrove's DocumentTokenizer
(via ``shardsmith.pipelines.shards.tokenizer_step``), and a manifest written by ``finalize``."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

EOS = "<|endoftext|>"
WORLD_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_SIZE", "MASTER_ADDR", "MASTER_PORT")


def child_env(**extra) -> dict:
    """The environment for a child process that trains: the test's interpreter first on PATH (as in an activated
    venv, so `torchrun` / `deepspeed` / `python` in the launch scripts are this environment's), one OpenMP thread,
    and no RANK/MASTER_PORT...: in-process runs of the parent set those, and a child must start its own world."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for k in WORLD_VARS:
        env.pop(k, None)
    return {**env, **extra}

def free_port() -> str:
    """A free TCP port on this machine, for a child world's MASTER_PORT."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def train_script(tmp: Path, recipe: Path, out: Path, resume: bool = False) -> Path:
    """A script that trains ``recipe`` into ``out`` in a child process (to be killed, or launched by torchrun)."""
    s = tmp / f"run_{out.name}_{int(resume)}.py"
    s.write_text(textwrap.dedent(f"""
        from shardsmith.trainer.runner import train
        train({str(recipe)!r}, {str(out)!r}, resume={resume})
    """))
    return s


def run_until_killed(recipe: Path, out: Path, tmp: Path, stage: str = "pretrain", tag: str = "step-8") -> None:
    """Train ``recipe`` into ``out`` in a child process slowed by ``SHARDSMITH_TRAIN_STEP_DELAY`` and SIGKILL it just
    after ``stage``'s checkpoint ``tag`` is the latest (mid-step). Same threading as an in-process run (same
    reduction order), so a resumed run can be compared with an uninterrupted one to 1e-5."""
    import torch

    # the in-process run's intra-op threads (one under pytest-xdist, else torch's default), so the child reduces in
    # the same order: Muon's Newton-Schulz steps turn a different order into 1e-4 loss differences
    env = child_env(SHARDSMITH_TRAIN_STEP_DELAY="0.25", OMP_NUM_THREADS=str(torch.get_num_threads()))
    log_path = tmp / f"{out.name}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, str(train_script(tmp, recipe, out))], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.time() + 240
            latest = out / stage / "ckpt" / "latest"
            while time.time() < deadline and proc.poll() is None:
                if latest.is_file() and latest.read_text().strip() == tag:
                    break
                time.sleep(0.05)
            assert proc.poll() is None, "run ended before it could be killed: " + log_path.read_text()[-3000:]
            time.sleep(0.3)  # land mid-step, after the checkpoint
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)


_SUBJ = ["the cat", "a dog", "the old man", "my sister", "the robot", "a small bird", "the teacher", "our team"]
_VERB = ["sees", "likes", "builds", "finds", "paints", "carries", "follows", "opens"]
_OBJ = ["the red box", "a green door", "the long road", "a bright star", "the wooden chair", "a quiet lake"]
_TAIL = ["today.", "every morning.", "in the park.", "before dinner.", "with great care.", "again and again."]


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(_SUBJ)} {rng.choice(_VERB)} {rng.choice(_OBJ)} {rng.choice(_TAIL)}" for _ in range(n)]


def documents(n_docs: int, seed: int = 0, per_doc: tuple[int, int] = (3, 12)) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(sentences(rng.randint(*per_doc), seed=seed * 100003 + i)) for i in range(n_docs)]


def qa_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Prompt/answer pairs with a learnable mapping (the answer repeats the object in capitals)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s, v, o = rng.choice(_SUBJ), rng.choice(_VERB), rng.choice(_OBJ)
        out.append((f"Q: what does {s} {v}?\nA:", f" {s} {v} {o.upper()}."))
    return out


def build_tokenizer(folder: Path, vocab_size: int = 384, extra_special: tuple[str, ...] = ()) -> Path:
    """A byte-level BPE saved as an AutoTokenizer-loadable folder; returns the folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    folder = Path(folder)
    if (folder / "tokenizer.json").is_file():
        return folder
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS, *extra_special], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = documents(200, seed=99) + [p + a for p, a in qa_pairs(200, seed=99)]
    tok.train_from_iterator(corpus, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=EOS)
    fast.save_pretrained(folder)
    return folder


def _docs(texts, no_loss=None):
    from datatrove.data import Document

    out = []
    for i, t in enumerate(texts):
        meta = {}
        if no_loss is not None and no_loss[i]:
            meta["no_loss_ranges"] = no_loss[i]
        out.append(Document(text=t, id=str(i), metadata=meta))
    return out


def build_shard_set(out: Path, tokenizer_dir: Path, train: list[str], validation: list[str] | None = None,
                    train_no_loss=None, validation_no_loss=None, kind: str = "mix", seed: int = 0,
                    name: str | None = None, shuffle: bool = True, **extra) -> Path:
    """Tokenize with datatrove into OUT/{train,validation}/, copy the tokenizer, write the manifest last."""
    from shardsmith.pipelines.shards import dtype_for_vocab, finalize, tokenizer_step
    from shardsmith.schemas.manifest import ShardManifest, TokenizerInfo
    from transformers import AutoTokenizer

    out = Path(out)
    loss_masks = train_no_loss is not None
    tj = Path(tokenizer_dir) / "tokenizer.json"
    for split, texts, nl in (("train", train, train_no_loss), ("validation", validation, validation_no_loss)):
        if not texts:
            continue
        step = tokenizer_step(out / split, tj, EOS, seed=seed, loss_masks=loss_masks, save_filename=split,
                              shuffle=shuffle)
        step.run(iter(_docs(texts, nl if loss_masks else None)))
    shutil.copytree(tokenizer_dir, out / "tokenizer", dirs_exist_ok=True)
    hf = AutoTokenizer.from_pretrained(out / "tokenizer")
    dtype, size = dtype_for_vocab(len(hf))
    manifest = ShardManifest(
        kind=kind, name=name or out.name, version="test", created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(),
        seed=seed, dtype=dtype, token_size=size, loss_masks=loss_masks, splits={},
        tokenizer=TokenizerInfo(
            name=Path(tokenizer_dir).name, sha256=hashlib.sha256(tj.read_bytes()).hexdigest(), vocab_size=len(hf),
            eos_token=EOS, eos_id=hf.convert_tokens_to_ids(EOS),
            special_tokens={t: hf.convert_tokens_to_ids(t) for t in hf.all_special_tokens},
        ),
        **extra,
    )
    finalize(out, manifest)
    return out


def pretrain_set(out: Path, tokenizer_dir: Path, n_train: int = 300, n_val: int = 30, seed: int = 0) -> Path:
    return build_shard_set(out, tokenizer_dir, documents(n_train, seed=seed), documents(n_val, seed=seed + 1),
                           seed=seed)


def sft_texts(pairs):
    texts = [p + a for p, a in pairs]
    no_loss = [[(0, len(p))] for p, _ in pairs]
    return texts, no_loss


def sft_set(out: Path, tokenizer_dir: Path, n_train: int = 200, n_val: int = 20, seed: int = 0,
            pairs: list[tuple[str, str]] | None = None) -> Path:
    pairs = pairs or qa_pairs(n_train, seed=seed)
    vpairs = qa_pairs(n_val, seed=seed + 1)
    t, nl = sft_texts(pairs)
    vt, vnl = sft_texts(vpairs)
    return build_shard_set(out, tokenizer_dir, t, vt, train_no_loss=nl, validation_no_loss=vnl, kind="sft",
                           seed=seed)


def preference_pairs(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(prompt, chosen, rejected): chosen names the right object in capitals, rejected a wrong one in lower case."""
    rng = random.Random(seed)
    out = []
    for p, a in qa_pairs(n, seed=seed):
        right = next(o for o in _OBJ if o.upper() in a)
        wrong = rng.choice([o for o in _OBJ if o != right])
        out.append((p, a, a.replace(right.upper(), wrong)))
    return out


def preference_set(out: Path, tokenizer_dir: Path, n_train: int = 120, n_val: int = 16, seed: int = 0,
                   pairs: list[tuple[str, str, str]] | None = None) -> Path:
    """Pairs written the way the preference builder writes them: chosen then rejected, adjacent, in order."""
    pairs = pairs or preference_pairs(n_train, seed=seed)
    vpairs = preference_pairs(n_val, seed=seed + 1)

    def flat(ps):
        return sft_texts([(p, x) for p, c, r in ps for x in (c, r)])

    t, nl = flat(pairs)
    vt, vnl = flat(vpairs)
    return build_shard_set(out, tokenizer_dir, t, vt, train_no_loss=nl, validation_no_loss=vnl, kind="preference",
                           seed=seed, shuffle=False, pair_layout="adjacent:chosen,rejected",
                           pairs={"train": len(pairs), "validation": len(vpairs)})


def dpo_recipe(path: Path, pref: Path, *, zero: int = 2, steps: int = 3, lr: float = 1e-3, seed: int = 3) -> Path:
    """A one-stage DPO recipe from scratch (tiny GPT-2, fp32) on a preference set; returns its path."""
    Path(path).write_text(f"""
name: dpo-{Path(path).stem}
seed: {seed}
model: {{preset: tiny-gpt2}}
engine: {{zero_stage: {zero}, precision: fp32}}
stages:
  - name: dpo
    objective: dpo
    init_from: scratch
    data: {{sets: [{{path: {pref}}}]}}
    seq_len: 64
    micro_batch_size: 2
    max_steps: {steps}
    optimizer: {{lr: {lr}}}
""")
    return Path(path)


def sft_recipe(name: str, data, *, seq_len: int, steps: int, lr: str, val_rows: int, extra: str = "") -> str:
    """A one-stage SFT train recipe (tiny-gpt2 from scratch, ZeRO-0, fp32, micro-batch 8) on the block at ``data``;
    ``extra``: more lines of the stage, indented."""
    return f"""
name: {name}
seed: 3
model: {{preset: tiny-gpt2}}
engine: {{zero_stage: 0, precision: fp32}}
stages:
  - name: sft
    objective: sft
    init_from: scratch
    data: {{sets: [{{path: {data}}}], val_rows: {val_rows}}}
    seq_len: {seq_len}
    micro_batch_size: 8
    max_steps: {steps}
    optimizer: {{lr: {lr}}}
{extra}"""


def tiny_ff_model(root: Path, steps: int = 16) -> Path:
    """A tiny GPT-2 this project's trainer fine-tunes on FF-template Q/A pairs (its own 384-token BPE, ZeRO-0, fp32,
    one torch thread advised); returns its ``hf/final`` export — the teacher (and student) of the distill tests."""
    from shardsmith.builders.templates import chat_prompt, resolve_template
    from shardsmith.trainer.runner import train

    ff = resolve_template("ff")
    tok = build_tokenizer(root / "tok")
    pairs = [(chat_prompt(p.removeprefix("Q: ").removesuffix("\nA:"), ff), a) for p, a in qa_pairs(48, seed=5)]
    sft = sft_set(root / "sft", tok, n_train=48, n_val=4, pairs=pairs)
    (root / "teacher.yaml").write_text(sft_recipe("teacher", sft, seq_len=128, steps=steps, lr="3.0e-3", val_rows=1,
                                                  extra="    save_every: null\n    eval_every: null\n"))
    train(str(root / "teacher.yaml"), str(root / "run"))
    return root / "run" / "sft" / "hf" / "final"
