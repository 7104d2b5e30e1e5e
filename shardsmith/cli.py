"""The `shardsmith` command: one verb per thing users do (mix, build, train, self-teach, inspect, summary,
decontam-report, tokenizer, demo)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shardsmith import __version__

REPO_RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def _quiet_logs(verbose: bool) -> None:
    """datatrove logs every task through loguru at INFO; users see our progress bars unless --verbose."""
    from loguru import logger

    if verbose:
        os.environ["SHARDSMITH_VERBOSE"] = "1"  # read when shardsmith.pipelines is imported (here and in workers)
    logger.remove()
    logger.add(sys.stderr, level="INFO" if verbose else "WARNING")


def _add_common(p: argparse.ArgumentParser, out_required: bool = True) -> None:
    p.add_argument("--out", required=out_required, help="output folder")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a recipe field (repeatable); values are YAML")
    p.add_argument("-v", "--verbose", action="store_true", help="show datatrove's per-task logs")


def _add_keep_work(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep-work", action="store_true",
                   help="keep OUT/.work (filtered text, token files, logs) after the set is finished, for debugging")


def cmd_mix(args) -> int:
    from shardsmith.pipelines.inspect import summary_table
    from shardsmith.pipelines.mixer import describe_plan, run_mix

    if args.dry_run:
        from shardsmith.recipes import load_recipe
        from shardsmith.schemas.mix_recipe import MixRecipe

        print(describe_plan(load_recipe(MixRecipe, args.recipe, args.overrides), args.out))
        return 0
    path = run_mix(args.recipe, args.out, args.overrides, force=args.force, keep_work=args.keep_work)
    if isinstance(path, str):  # a URL: the set was built in a staging folder and uploaded (pipelines/publish.py)
        print(f"shard set: {path.rsplit('/', 1)[0]}")
        return 0
    print(summary_table(path.parent))
    print(f"\nshard set: {path.parent}")
    return 0


def cmd_demo(args) -> int:
    from shardsmith.pipelines.inspect import summary_table
    from shardsmith.pipelines.mixer import run_mix
    from shardsmith.demo.mix_corpus import write_sample_corpus

    out = Path(args.out).resolve()
    sample = out / "sample"
    write_sample_corpus(sample)
    os.environ["SHARDSMITH_SAMPLE"] = str(sample)
    recipe = args.recipe or str(REPO_RECIPES / "mix" / "demo.yaml")
    path = run_mix(recipe, str(out / "mix"), args.overrides, force=args.force, keep_work=args.keep_work)
    print(summary_table(path.parent))
    print(f"\nsample corpus: {sample}\nshard set: {path.parent}")
    return 0


def cmd_build(args) -> int:
    from shardsmith.builders.build import build

    path = build(args.recipe, args.out, args.overrides)
    print(f"shard set: {path}")
    return 0


def cmd_train(args) -> int:
    from shardsmith.recipes import RecipeError, load_recipe_dict
    from shardsmith.trainer.runner import train

    if "self_teach" in load_recipe_dict(args.recipe, args.overrides):
        raise RecipeError(f"{args.recipe}: a self-teaching recipe (it has self_teach:); run it with "
                          f"`shardsmith self-teach {args.recipe} --out DIR`")
    train(args.recipe, args.out, args.overrides, stage=args.stage, resume=args.resume)
    return 0


def cmd_self_teach(args) -> int:
    from shardsmith.selfteach import self_teach

    infos = self_teach(args.recipe, args.out, args.overrides)
    for info in infos:
        print(f"round {info['round']}: accuracy {info['accuracy']:.3f} ({info['correct']}/{info['generations']}), "
              f"{info['pairs']} pairs -> {info['weights']}")
    return 0


def cmd_generate(args) -> int:
    from shardsmith.summary import complete

    for prompt, text in complete(args.model, args.prompt, args.template, args.max_new_tokens):
        print(f"--- {prompt!r}\n{text}\n")
    return 0


def cmd_merge(args) -> int:
    from shardsmith.trainer.merge import MergeError, merge_folders, moving_average

    if (args.t is None) == (args.decay is None):
        raise MergeError("give --t (two checkpoints) or --decay (a moving average over two or more), not both")
    if args.t is not None:
        if len(args.models) != 2:
            raise MergeError(f"--t merges exactly two checkpoints; {len(args.models)} given (use --decay for more)")
        record = merge_folders(args.models[0], args.models[1], args.t, args.out, args.method)
    else:
        record = moving_average(args.models, args.decay, args.out, args.method)
    print(f"merged ({record['method']}, t={record['t']}) into {args.out}: digest {record['digest'][:16]}…, "
          f"{len(record['colinear_tensors'])} colinear tensors interpolated linearly")
    return 0


def cmd_eval(args) -> int:
    from shardsmith.evaluation import evaluate, markdown_table

    benches = [b.strip() for b in args.bench.split(",") if b.strip()]
    results = evaluate(args.model, benches, args.shots, args.out, split=args.split, data=args.data, limit=args.limit,
                       batch_size=args.batch_size, device=args.device, dtype=args.dtype,
                       max_new_tokens=args.max_new_tokens)
    print(markdown_table(results["benchmarks"]))
    return 0


def cmd_inspect(args) -> int:
    from shardsmith.pipelines.inspect import inspect_shards

    inspect_shards(args.dir, samples=args.samples, split=args.split, seed=args.seed, chart=args.chart)
    return 0


def cmd_summary(args) -> int:
    from shardsmith.summary import collect, render, stage_completions

    summary = collect(args.dir)
    completions = stage_completions(summary, args.prompt, args.template, args.max_new_tokens) if args.prompt else None
    print(render(summary, completions, args.template))
    return 0


def cmd_decontam_report(args) -> int:
    from shardsmith.pipelines.decontam import format_report
    from shardsmith.schemas.manifest import ShardManifest

    print(format_report(ShardManifest.load(args.dir).decontamination, args.dir))
    return 0


def cmd_tokenizer_train(args) -> int:
    from shardsmith.pipelines.tokenizers import train_bpe_from_files
    from shardsmith.schemas.common import TokenizerTrainSpec

    spec = TokenizerTrainSpec(vocab_size=args.vocab_size, special_tokens=args.special_tokens,
                              max_documents=args.max_documents)
    tok = train_bpe_from_files(args.inputs, spec, name=args.name, out_folder=Path(args.out), text_field=args.text_field)
    print(f"tokenizer {tok.name}: vocab {tok.vocab_size}, sha256 {tok.sha256()[:16]}…, saved to {tok.folder}")
    return 0


def cmd_tokenizer_show(args) -> int:
    from shardsmith.pipelines.tokenizers import resolve_tokenizer
    from shardsmith.schemas.common import TokenizerSpec

    tok = resolve_tokenizer(TokenizerSpec(name=args.name))
    enc = tok.load().encode(args.text)
    print(f"{tok.name}: vocab {tok.vocab_size} ({tok.dtype}), eos {tok.eos_token!r}={tok.eos_id}, folder {tok.folder}")
    print(enc.ids)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shardsmith", description=__doc__)
    parser.add_argument("--version", action="version", version=f"shardsmith {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("mix", help="filter sources and mix them by weight into tokenized shards")
    p.add_argument("recipe")
    _add_common(p)
    p.add_argument("--force", action="store_true", help="discard an earlier (partial) build in --out")
    _add_keep_work(p)
    p.add_argument("--dry-run", action="store_true",
                   help="print the phases, the executor, tasks and files per task; read and write nothing")
    p.set_defaults(func=cmd_mix)

    p = sub.add_parser("demo", help="write the embedded sample corpus and mix it (recipes/mix/demo.yaml)")
    p.add_argument("--recipe", default=None)
    _add_common(p)
    p.add_argument("--force", action="store_true")
    _add_keep_work(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("build", help="build a block (SFT, ...) from a block recipe")
    p.add_argument("recipe")
    _add_common(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("train", help="train the stages of a training recipe on built shard sets")
    p.add_argument("recipe")
    _add_common(p)
    p.add_argument("--stage", default=None, help="run only this stage")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("self-teach", help="Memphis-CoT self-teaching rounds: generate, check, pair, train, average "
                       "(a re-run skips finished rounds)")
    p.add_argument("recipe")
    _add_common(p)
    p.set_defaults(func=cmd_self_teach)

    p = sub.add_parser("generate", help="greedy completions from an HF-format model folder")
    p.add_argument("model")
    p.add_argument("--prompt", action="append", required=True)
    p.add_argument("--max-new-tokens", type=int, default=40)
    p.add_argument("--template", help="wrap each prompt as one user turn of this chat template (t1b, chatml, ...)")
    p.set_defaults(func=cmd_generate, verbose=False)

    p = sub.add_parser("merge", help="SLERP / linear merge of HF checkpoints (A at t=0, B at t=1), or a moving average")
    p.add_argument("models", nargs="+", help="HF model folders: A B with --t, or the rounds in order with --decay")
    p.add_argument("--t", type=float, default=None, help="weight of B (mergekit convention)")
    p.add_argument("--decay", type=float, default=None,
                   help="moving average: avg = merge(avg, next, t = 1 - decay) over the folders in order")
    p.add_argument("--method", choices=["slerp", "linear"], default="slerp")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_merge, verbose=False)

    p = sub.add_parser("eval", help="score an HF-format model folder on local benchmark files")
    p.add_argument("model", help="HF-format causal LM folder (a trainer export, any HF checkpoint)")
    p.add_argument("--bench", required=True, help="comma-separated: mmlu,cmmlu,ceval,arc_easy,arc_challenge,"
                                                  "hellaswag,truthfulqa,gsm8k,truth_list,surgical")
    p.add_argument("--shots", type=int, default=0)
    p.add_argument("--split", default=None, help="default: each benchmark's test split (mmlu: test, ceval: val); "
                   "truth_list: validation|custom, surgical: validation|block|custom")
    p.add_argument("--data", default=None,
                   help="folder holding mcq_* benchmark folders (default $SHARDSMITH_BENCHMARKS)")
    p.add_argument("--limit", type=int, default=None, help="at most N items per benchmark file (per subject)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--max-new-tokens", type=int, default=256, help="generation length (gsm8k, truth_list, surgical)")
    p.add_argument("--out", required=True, help="writes results.json and items.jsonl; re-run to resume")
    p.set_defaults(func=cmd_eval, verbose=False)

    p = sub.add_parser("inspect", help="print a shard set's manifest, decode sample documents, chart the mix")
    p.add_argument("dir")
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--split", default="train")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chart", default=None, help="PNG path (default DIR/mix.png)")
    p.set_defaults(func=cmd_inspect, verbose=False)

    p = sub.add_parser("summary", help="where every output of a run folder is, data and training tables, completions")
    p.add_argument("dir", help="a folder holding shard sets and/or a training run (make demo's out/demo)")
    p.add_argument("--prompt", action="append", default=[],
                   help="also show each stage's greedy completion of this prompt (repeatable)")
    p.add_argument("--template", help="wrap each prompt as one user turn of this chat template (t1b, chatml, ...)")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.set_defaults(func=cmd_summary, verbose=False)

    p = sub.add_parser("decontam-report", help="the benchmarks a shard set was checked against and the hits per "
                       "source and benchmark (or why it was not checked)")
    p.add_argument("dir", help="a shard set folder")
    p.set_defaults(func=cmd_decontam_report, verbose=False)

    p = sub.add_parser("tokenizer", help="train or show tokenizers")
    tsub = p.add_subparsers(dest="tok_command", required=True)
    t = tsub.add_parser("train", help="train a byte-level BPE on jsonl/parquet/txt files")
    t.add_argument("inputs", nargs="+")
    t.add_argument("--out", required=True)
    t.add_argument("--name", default="bpe")
    t.add_argument("--vocab-size", type=int, default=8192)
    t.add_argument("--special-tokens", nargs="*", default=["<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>"])
    t.add_argument("--text-field", default="text")
    t.add_argument("--max-documents", type=int, default=None)
    t.set_defaults(func=cmd_tokenizer_train, verbose=False)
    t = tsub.add_parser("show", help="resolve a tokenizer by name and encode a text")
    t.add_argument("name")
    t.add_argument("--text", default="Hello world, the quick brown fox.")
    t.set_defaults(func=cmd_tokenizer_show, verbose=False)
    return parser


def _loaded_errors() -> tuple[type, ...]:
    """Bad-input errors of modules a command has imported (a MixError can only come from a loaded mixer): looked up
    after the fact so that commands which never mix (eval, train, ...) do not pay for importing the pipelines."""
    mixer = sys.modules.get("shardsmith.pipelines.mixer")
    return (mixer.MixError,) if mixer else ()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_logs(getattr(args, "verbose", False))
    from shardsmith.recipes import RecipeError

    known = (RecipeError, FileNotFoundError, PermissionError, ValueError)
    try:
        return args.func(args)
    except Exception as err:
        if not isinstance(err, known + _loaded_errors()):
            raise
        print(f"shardsmith {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
