"""Memphis-CoT's self-teaching loop: ``shardsmith self-teach RECIPE --out OUT`` (``schemas/selfteach_recipe.py``).

Per round r = 1..R, from the round's starting weights (``self_teach.init``, then round r-1's average)::

    OUT/round-<r>/generations.cache.jsonl   every sampled answer as generated (resumable mid-generation)
    OUT/round-<r>/generations.jsonl         per (question, sample): output, parsed answer, verdict vs the gold answer
    OUT/round-<r>/pairs.jsonl               the (correct, incorrect) pairs, prompt_pairs shape
    OUT/round-<r>/pairs-block.yaml          the preference block recipe written for them
    OUT/round-<r>/pairs-block/              the block (builders' writer: shards, manifest.json, tokenizer/)
    OUT/round-<r>/train.yaml, recipe.json   the one-stage train recipe, and the trainer's record of it
    OUT/round-<r>/train/                    the trained stage (hf/final, metrics.jsonl, stage.json)
    OUT/round-<r>/merged/                   the SLERP average of train/hf/final and the starting weights (merge.json)
    OUT/round-<r>/round.json                counts, digests and settings; written last: the round is finished
    OUT/self_teach.json                     the recipe and one line per finished round

A re-run skips every finished round (``round.json`` status done and ``merged/`` present) and continues an unfinished
one: generation from its cache, training through the trainer's own ``--resume``. ``rounds`` may be raised on a
re-run to add rounds; any other change to the recipe is refused (the finished rounds were made under it).

Why a verb of its own and not ``shardsmith train``: the loop generates with the model and builds blocks between
training stages, and the trainer may not import ``builders/`` (nor may builders import the trainer). This module
sits above both, like ``cli.py``: generation and answer checking come from ``builders`` (``distill.HfTeacher``:
batched, left-padded, seeded sampling with a resumable cache; ``cot.parse_tinycot``), the pairs block from
``builders.build`` (a ``kind: preference`` recipe, the one block writer), training from ``trainer.runner.train``
(what ``shardsmith train`` calls) on a generated one-stage recipe, the average from ``trainer.merge.merge_folders``.
Only the pairing rule and the answer comparison are written here: no library pairs Memphis-style and the answer
comparison is the CoT block's own rules (a GSM8K number, an option letter, else the text) put side by side.
"""

from __future__ import annotations

import gc
import json
import os
import random
import re
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from shardsmith.recipes import RecipeError, load_recipe, load_recipe_dict
from shardsmith.schemas.records import Conversation
from shardsmith.schemas.selfteach_recipe import ROUND_STAGE, SelfTeachRecipe, round_stage, round_stage_dict

CORRECT, INCORRECT, INVALID, NOT_GENERATED = "correct", "incorrect", "invalid", "not_generated"
PAIRS_SOURCE = "self_teach"


class SelfTeachError(ValueError):
    """The loop cannot go on (a one-line message naming the round and why)."""


def _log(msg: str) -> None:
    print(f"[shardsmith.self-teach] {msg}", flush=True)


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _atomic_json(path: Path, data: Any) -> None:
    _atomic_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


# ----------------------------------------------------------------------------------------------------------------
# questions: the CoT block's sources, read by its own importers


@dataclass(frozen=True)
class Question:
    """One question of the CoT block: the prompt conversation (user turn, and the source's system message if any)
    and the gold answer the block would train on (``metadata.answer``; ``answer_letter`` for multiple choice)."""

    id: str
    conv: Conversation
    gold: str
    letter: str | None = None


def load_cot_block(recipe: SelfTeachRecipe):
    """(the CoT block recipe, its folder): it must be a ``kind: cot`` block in the TinyCoT answer format, the one
    ``parse_tinycot`` reads back."""
    from shardsmith.builders.build import load_block_recipe

    path = Path(recipe.self_teach.questions.block)
    block, _ = load_block_recipe(path)
    if block.kind != "cot":
        raise RecipeError(f"self_teach.questions.block: {path} is a '{block.kind}' block; a kind: cot block is needed "
                          "(its gold answers and answer parser check the generations)")
    if block.answer_format != "tinycot":
        raise RecipeError(f"self_teach.questions.block: {path} writes answer_format '{block.answer_format}'; the "
                          "loop checks answers with parse_tinycot, which reads the tinycot format")
    wanted = recipe.self_teach.questions.sources
    if wanted is not None:
        names = [s.name for s in block.sources]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise RecipeError(f"self_teach.questions.sources: {', '.join(unknown)} not in {path} "
                              f"(its sources: {', '.join(names)})")
        block = block.model_copy(update={"sources": [s for s in block.sources if s.name in wanted]})
    return block, path.resolve().parent


def read_questions(recipe: SelfTeachRecipe) -> list[Question]:
    """The block's records as its build reads them (``builders.kinds.read_sources``: paths, shapes, options,
    limits), cut to their question; ``questions.limit``: a seeded sample, kept in source order."""
    from shardsmith.builders.distill import as_question
    from shardsmith.builders.kinds import KINDS, read_sources

    block, base = load_cot_block(recipe)
    items, _ = read_sources(block, KINDS["cot"], base)
    convs = [it.conv for lst in items.values() for it in lst]
    limit = recipe.self_teach.questions.limit
    if limit is not None and limit < len(convs):
        keep = sorted(random.Random(f"{recipe.seed}:questions").sample(range(len(convs)), limit))
        convs = [convs[i] for i in keep]
    out = [Question(id=f"{c.source}/{c.id}", conv=as_question(c), gold=str(c.metadata["answer"]),
                    letter=c.metadata.get("answer_letter")) for c in convs]
    if not out:
        raise SelfTeachError(f"self_teach.questions.block {recipe.self_teach.questions.block}: no question was read")
    return out


# ----------------------------------------------------------------------------------------------------------------
# checking an answer: the CoT block's parser, then the gold answer's own rule


_LEADING_LETTER = re.compile(r"^\(?([A-Z])\)?(?=[\s.,:;]|$)")


def _number(text: str) -> Decimal | None:
    from shardsmith.schemas.answer_forms import parse_number

    try:
        return parse_number(text)
    except ValueError:
        return None


def answer_matches(answer: str, gold: str, letter: str | None = None) -> bool:
    """Does a parsed answer state the gold one? A numeric gold (GSM8K's ``####`` value, commas removed by
    ``builders.cot.gsm8k_example``) is compared as a number (``1,000`` = ``1000`` = ``1000.0``); a multiple-choice
    gold (``answer_letter``) by the option letter the answer opens with (``(C) 1120``, ``C``); any other by its text,
    case and spacing aside."""
    if letter is not None:
        m = _LEADING_LETTER.match(answer.strip())
        return m is not None and m.group(1) == letter
    want = _number(gold)
    if want is not None:
        return _number(answer) == want
    return " ".join(answer.split()).casefold() == " ".join(gold.split()).casefold()


def check(output: str | None, question: Question) -> tuple[str, tuple[str, str] | None]:
    """(verdict, (rationale, answer) or None): ``invalid`` when ``parse_tinycot`` finds no rationale and answer
    (Memphis discards those), ``not_generated`` when there is no output (prompt too long, empty)."""
    from shardsmith.builders.cot import parse_tinycot

    if output is None:
        return NOT_GENERATED, None
    parsed = parse_tinycot(output)
    if parsed is None:
        return INVALID, None
    return (CORRECT if answer_matches(parsed[1], question.gold, question.letter) else INCORRECT), parsed


# ----------------------------------------------------------------------------------------------------------------
# generation: builders.distill.HfTeacher, sampling


def sample_id(question: Question, k: int) -> str:
    return f"{question.id}#{k}"


def teacher_spec(recipe: SelfTeachRecipe, model_dir: Path, seed: int):
    """The generation settings as ``builders.distill``'s ``hf`` teacher takes them (always sampled)."""
    from shardsmith.schemas.distill import HfTeacherSpec

    g = recipe.self_teach.generation
    return HfTeacherSpec(kind="hf", path=str(model_dir), name=model_dir.name, do_sample=True,
                         temperature=g.temperature, top_p=g.top_p, max_new_tokens=g.max_new_tokens, seed=seed,
                         batch_size=g.batch_size, dtype=g.dtype, device=g.device)


def generate(recipe: SelfTeachRecipe, model_dir: Path, questions: list[Question], template, cache: Path,
             seed: int) -> tuple[dict[str, str], dict[str, str]]:
    """(sample id -> generated text, sample id -> why nothing was generated: the teacher's drop reason, e.g. a
    prompt too long for the model). Each question is asked ``samples`` times (ids ``<question>#<k>``), in
    left-padded batches seeded by (seed, the batch's ids); the cache makes an interrupted generation resumable."""
    from shardsmith.builders.distill import HfTeacher

    teacher = HfTeacher(teacher_spec(recipe, model_dir, seed), template, cache, progress=False)
    samples = recipe.self_teach.generation.samples
    asked = [q.conv.model_copy(update={"id": sample_id(q, k)}) for q in questions for k in range(samples)]
    outputs, dropped = {}, {}
    for got in teacher.answer(asked):
        if isinstance(got, Conversation):
            outputs[got.id] = got.messages[-1].content
        else:
            dropped[got.id] = got.reason
    del teacher
    _release_memory()
    return outputs, dropped


def _release_memory() -> None:
    """The generating model's memory back before the trainer builds its engine (same process, same GPU)."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def checked_rows(questions: list[Question], outputs: dict[str, str], dropped: dict[str, str],
                 samples: int) -> list[dict]:
    """One row per (question, sample) for ``generations.jsonl``."""
    rows = []
    for q in questions:
        for k in range(samples):
            sid = sample_id(q, k)
            verdict, parsed = check(outputs.get(sid), q)
            rows.append({"question": q.id, "sample": k, "gold": q.gold, "answer_letter": q.letter,
                         "output": outputs.get(sid), "verdict": verdict, "not_generated": dropped.get(sid),
                         "rationale": parsed[0] if parsed else None, "answer": parsed[1] if parsed else None})
    return rows


# ----------------------------------------------------------------------------------------------------------------
# pairs -> a preference block through the block writer


def reply(rationale: str, answer: str) -> str:
    """A checked answer as the CoT block writes a reply (``builders.cot.ANSWER_FORMATS['tinycot']``): whatever the
    model wrote after its answer (another ``### `` turn) is not trained on."""
    from shardsmith.builders.cot import ANSWER_FORMATS

    return ANSWER_FORMATS["tinycot"].format(rationale=rationale, answer=answer)


def make_pairs(questions: list[Question], rows: list[dict], max_per_question: int | None) -> list[dict]:
    """Per question, its distinct correct replies (in sample order) zipped with its distinct incorrect ones: each
    reply is used once, extras dropped (Memphis). Records in the ``prompt_pairs`` shape of ``builders/pairs.py``."""
    by_q: dict[str, dict[str, list[dict]]] = {}
    for r in rows:
        if r["verdict"] in (CORRECT, INCORRECT):
            by_q.setdefault(r["question"], {CORRECT: [], INCORRECT: []})[r["verdict"]].append(r)
    pairs = []
    for q in questions:
        sides = by_q.get(q.id)
        if not sides:
            continue
        good, bad = (_distinct(sides[v]) for v in (CORRECT, INCORRECT))
        n = min(len(good), len(bad), max_per_question or len(good))
        for i, (c, w) in enumerate(zip(good[:n], bad[:n])):
            pairs.append({
                "id": f"{q.id}#pair{i}",
                "prompt": [m.model_dump(mode="json") for m in q.conv.messages],
                "chosen": reply(c["rationale"], c["answer"]), "rejected": reply(w["rationale"], w["answer"]),
                "gold": q.gold, "chosen_sample": c["sample"], "rejected_sample": w["sample"],
            })
    return pairs


def _distinct(rows: list[dict]) -> list[dict]:
    seen, out = set(), []
    for r in rows:
        key = " ".join(reply(r["rationale"], r["answer"]).split())
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _absolute(path: str, base: Path) -> str:
    p = Path(os.path.expandvars(os.path.expanduser(path)))
    return str(p if p.is_absolute() else base / p)


def pairs_decontamination(block, base: Path, index: Path) -> dict:
    """The CoT block's ``decontaminate`` for a pairs block written elsewhere: its relative paths made absolute
    (they are relative to the CoT block recipe), and one index for every round (``index``) unless it names one."""
    spec = block.decontaminate.model_dump(mode="json", exclude_unset=True)
    if not block.decontaminate.enabled:
        return spec
    if block.decontaminate.benchmarks is not None:
        spec["benchmarks"] = [_absolute(p, base) for p in block.decontaminate.benchmarks]
    if block.decontaminate.files:
        spec["files"] = [{**f.model_dump(mode="json"), "paths": [_absolute(p, base) for p in f.paths]}
                         for f in block.decontaminate.files]
    spec["index"] = _absolute(block.decontaminate.index, base) if block.decontaminate.index else str(index)
    return spec


def pairs_block_recipe(recipe: SelfTeachRecipe, block, base: Path, template, pairs_file: Path, seed: int,
                       decontam_index: Path) -> dict:
    """The preference block recipe for a round's pairs: the CoT block's tokenizer, template and decontamination;
    no dedup (pairs are distinct by construction) and no language filter; a pair longer than the stage's
    ``seq_len`` (prompt + either reply, rendered) is dropped, not truncated."""
    seq_len = round_stage(recipe.stage, "scratch", "-").seq_len
    return {
        "kind": "preference", "name": f"{recipe.name}-pairs", "seed": seed,
        "tokenizer": block.tokenizer.model_dump(mode="json", exclude_unset=True),
        "template": template.model_dump(mode="json"),
        "validation": {"fraction": recipe.self_teach.pairs.validation_fraction},
        "filters": {"dedup": None, "length": {"max_tokens": seq_len, "count_tokens_of": "rendered"}},
        "decontaminate": pairs_decontamination(block, base, decontam_index),
        "pairs": {"drop_identical": True},
        "sources": [{"name": PAIRS_SOURCE, "paths": [str(pairs_file)], "shape": "prompt_pairs"}],
    }


def build_pairs_block(spec: dict, recipe_file: Path, out: Path) -> Path:
    from shardsmith.builders.build import build

    _atomic_text(recipe_file, yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return build(str(recipe_file), str(out))


# ----------------------------------------------------------------------------------------------------------------
# training and averaging


def train_recipe(recipe: SelfTeachRecipe, r: int, start: Path, block: Path) -> dict:
    """The one-stage train recipe of round ``r``: the recipe's ``stage`` from ``start`` on the round's block."""
    stage = round_stage_dict({"seed": recipe.seed + r, **recipe.stage}, str(start), str(block))
    return {"name": f"{recipe.name}-round-{r}", "seed": recipe.seed + r,
            "model": recipe.model.model_dump(mode="json", exclude_unset=True),
            "engine": recipe.engine.model_dump(mode="json", exclude_unset=True), "stages": [stage]}


def train_round(spec: dict, recipe_file: Path, rdir: Path) -> Path:
    """Train through the trainer's public entry point (``shardsmith train``'s), resuming an interrupted stage;
    returns the stage's final export."""
    from shardsmith.trainer.runner import train

    _atomic_text(recipe_file, yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    train(str(recipe_file), str(rdir), resume=True)
    _release_memory()
    return rdir / ROUND_STAGE / "hf" / "final"


def average(recipe: SelfTeachRecipe, trained: Path, previous: Path, out: Path) -> dict:
    """The round's weights: ``merge_folders(trained, previous, share of previous)``, the share being ``t``
    (``toward: previous``) or ``1 - t`` (``toward: trained``; SLERP and linear are symmetric: slerp(a, b, t) =
    slerp(b, a, 1 - t)). The folder keeps the trained export's files (config, tokenizer, generation config)."""
    from shardsmith.trainer.merge import merge_folders

    m = recipe.self_teach.merge
    share = m.t if m.toward == "previous" else 1.0 - m.t
    record = merge_folders(trained, previous, share, out, m.method)
    return {**record, "toward": m.toward, "recipe_t": m.t, "share_of_previous": share, "share_of_trained": 1.0 - share}


# ----------------------------------------------------------------------------------------------------------------
# the loop


def _fingerprint(recipe: SelfTeachRecipe) -> dict:
    """What finished rounds were made under: the recipe without ``rounds`` (raising it adds rounds)."""
    data = recipe.model_dump(mode="json")
    data["self_teach"].pop("rounds")
    return data


class _Clock:
    """Wall seconds per phase of a round (``round.json`` ``seconds``); a resumed phase counts only this run's time."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.t0 = time.perf_counter()

    def lap(self, name: str) -> None:
        t1 = time.perf_counter()
        self.seconds[name] = round(t1 - self.t0, 3)
        self.t0 = t1


def round_dir(out: Path, r: int) -> Path:
    return out / f"round-{r}"


def round_done(out: Path, r: int) -> bool:
    info = round_dir(out, r) / "round.json"
    return (info.is_file() and json.loads(info.read_text()).get("status") == "done"
            and (round_dir(out, r) / "merged" / "config.json").is_file())


def _check_same_recipe(out: Path, recipe: SelfTeachRecipe) -> None:
    record = out / "self_teach.json"
    if not record.is_file():
        return
    old = json.loads(record.read_text()).get("fingerprint")
    new = _fingerprint(recipe)
    if old != new:
        keys = sorted(k for k in set(old or {}) | set(new) if (old or {}).get(k) != new.get(k))
        raise SelfTeachError(f"{out} holds rounds made with another recipe (differs in: {', '.join(keys)}); "
                             "use another --out")


def run_round(recipe: SelfTeachRecipe, r: int, start: Path, questions: list[Question], out: Path) -> dict:
    """Generate, check, pair, build, train, average: round ``r`` from the weights in ``start``."""
    from shardsmith.builders.templates import resolve_template

    rdir = round_dir(out, r)
    rdir.mkdir(parents=True, exist_ok=True)
    block, base = load_cot_block(recipe)
    template = resolve_template(block.template, base)
    samples = recipe.self_teach.generation.samples
    clock = _Clock()
    _log(f"round {r}: {len(questions)} questions x {samples} samples from {start}")
    outputs, dropped = generate(recipe, start, questions, template, rdir / "generations.cache.jsonl",
                                seed=recipe.seed + r)
    rows = checked_rows(questions, outputs, dropped, samples)
    _atomic_text(rdir / "generations.jsonl", _jsonl(rows))
    counts = {v: sum(row["verdict"] == v for row in rows) for v in (CORRECT, INCORRECT, INVALID, NOT_GENERATED)}
    pairs = make_pairs(questions, rows, recipe.self_teach.pairs.max_per_question)
    clock.lap("generate")
    _log(f"round {r}: {counts[CORRECT]} correct, {counts[INCORRECT]} incorrect, {counts[INVALID]} invalid, "
         f"{counts[NOT_GENERATED]} not generated -> {len(pairs)} pairs")
    if not pairs:
        raise SelfTeachError(f"round {r}: no (correct, incorrect) pair among {len(rows)} generations ({counts}); "
                             f"see {rdir / 'generations.jsonl'}")
    _atomic_text(rdir / "pairs.jsonl", _jsonl(pairs))
    pairs_dir = rdir / "pairs-block"
    if not (pairs_dir / "manifest.json").is_file():
        spec = pairs_block_recipe(recipe, block, base, template, rdir / "pairs.jsonl", seed=recipe.seed + r,
                                  decontam_index=out / "pairs.decontam-index")
        build_pairs_block(spec, rdir / "pairs-block.yaml", pairs_dir)
    clock.lap("build")
    kept = json.loads((pairs_dir / "manifest.json").read_text()).get("pairs") or {}
    trained = train_round(train_recipe(recipe, r, start, pairs_dir), rdir / "train.yaml", rdir)
    clock.lap("train")
    merge = average(recipe, trained, start, rdir / "merged")
    clock.lap("merge")
    info = {"round": r, "status": "done", "start": str(start), "start_digest": merge["b_digest"],
            "questions": len(questions), "samples": samples, "generations": len(rows), **counts,
            "accuracy": counts[CORRECT] / len(rows), "pairs": len(pairs), "pairs_in_block": kept,
            "pairs_block": str(pairs_dir),
            "trained": str(trained), "weights": str(rdir / "merged"), "weights_digest": merge["digest"],
            "merge": merge, "seconds": clock.seconds}
    _atomic_json(rdir / "round.json", info)
    return info


def self_teach(recipe_path: str, out_dir: str, overrides: list[str] | None = None) -> list[dict]:
    """Run (or continue) every round of the recipe into ``out_dir``; returns each round's ``round.json``."""
    recipe = load_recipe(SelfTeachRecipe, recipe_path, overrides)
    out = Path(out_dir)
    init = Path(recipe.self_teach.init)
    if not (init / "config.json").is_file():
        raise RecipeError(f"{recipe_path}: field 'self_teach.init': {init} is not an HF model folder (no config.json)")
    _check_same_recipe(out, recipe)
    questions: list[Question] | None = None  # read when a round is to run
    out.mkdir(parents=True, exist_ok=True)
    record = {"recipe_path": str(recipe_path), "overrides": overrides or [], "fingerprint": _fingerprint(recipe),
              "recipe": load_recipe_dict(recipe_path, overrides), "rounds": []}
    _atomic_json(out / "self_teach.json", record)  # first: a later run with another recipe is refused
    start, infos = init, []
    for r in range(1, recipe.self_teach.rounds + 1):
        rdir = round_dir(out, r)
        if round_done(out, r):
            info = json.loads((rdir / "round.json").read_text())
            _log(f"round {r}: already done, skipped ({info['pairs']} pairs, accuracy {info['accuracy']:.3f})")
        else:
            questions = questions or read_questions(recipe)
            info = run_round(recipe, r, start, questions, out)
        infos.append(info)
        record["rounds"].append({k: info[k] for k in ("round", "accuracy", "pairs", "weights", "weights_digest")})
        _atomic_json(out / "self_teach.json", record)
        start = rdir / "merged"
    _log(f"done: {len(infos)} rounds; final weights {start}")
    return infos
