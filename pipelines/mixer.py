"""`shardsmith mix`: sources -> filtered documents -> token counts -> plan -> tokenized, shuffled shards + manifest.

Each phase is a datatrove executor with its own logging dir under ``DIR/.work/logs``; datatrove's completion
markers make a re-run skip finished tasks, and every task rewrites its own output files, so a killed build
resumes without lost or doubled documents. The manifest is written last (temp name, then rename): a folder
without it is not a shard set.

    A filter    reader [+ extractor] + filters (rejects -> DIR/rejected/<source>/<step>/)  -> .work/filtered/<source>
    B count     TokensCounter + ledger (id, tokens)                                          -> .work/ledger/<source>
    C plan      per-source token targets from the weights, seeded selection + upsampling    -> .work/plan/<source>.parquet
    D tokenize  plan replay per split, DocumentTokenizer (EOS, seeded doc shuffle)          -> .work/tok/<split>/
    E merge     DocumentTokenizerMerger per split (seeded interleave)                        -> DIR/<split>/
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import polars as pl
from tqdm.auto import tqdm

from shardsmith.pipelines import shards
from shardsmith.pipelines.stats import rank_stats, step_counts
from shardsmith.recipes import load_recipe
from shardsmith.schemas.manifest import MANIFEST_NAME, SourceInfo, StepCount
from shardsmith.schemas.mix_recipe import MixRecipe, SourceSpec

MAX_TASKS = 64


class MixError(RuntimeError):
    """A mix that cannot be built; the message names the source, file or field."""


def run_mix(recipe_path: str, out_dir: str, overrides: list[str] | None = None, force: bool = False) -> Path:
    recipe = load_recipe(MixRecipe, recipe_path, overrides)
    return build_mix(recipe, out_dir, force=force)


def _fingerprint(recipe: MixRecipe) -> str:
    return hashlib.sha256(recipe.model_dump_json().encode()).hexdigest()


def _executor(pipeline: list, tasks: int, workers: int, logging_dir: Path):
    from datatrove.executor import LocalPipelineExecutor

    return LocalPipelineExecutor(
        pipeline=pipeline, tasks=tasks, workers=min(workers, tasks), logging_dir=str(logging_dir), skip_completed=True
    )


def _completed(logging_dir: Path, tasks: int) -> bool:
    return all((logging_dir / "completions" / f"{r:05d}").exists() for r in range(tasks))


class MixBuild:
    """One build of one recipe into one folder."""

    def __init__(self, recipe: MixRecipe, out_dir: str | os.PathLike):
        self.recipe = recipe
        self.out = Path(out_dir).resolve()
        self.work = self.out / ".work"
        self.logs = self.work / "logs"
        self.shares = recipe.shares()
        self.tokenizer = None
        self.filter_counts: dict[str, list[StepCount]] = {}
        self.kept: dict[str, int] = {}
        self.tasks: dict[str, int] = {}

    # ------------------------------------------------------------------ setup
    def prepare(self, force: bool) -> bool:
        """Returns False when the folder already holds a finished build of this exact recipe."""
        fp = _fingerprint(self.recipe)
        stamp = self.work / "recipe.json"
        manifest = self.out / MANIFEST_NAME
        if manifest.exists() and not force:
            built = json.loads(manifest.read_text()).get("recipe_sha256")
            if built == fp:
                return False
            raise MixError(f"{self.out}: already holds a shard set built from another recipe; use --force to rebuild")
        if stamp.exists() and json.loads(stamp.read_text()).get("sha256") != fp and not force:
            if any(self.logs.glob("**/completions/*")):
                raise MixError(
                    f"{self.out}: holds an unfinished build of a different recipe; use --force to discard it"
                )
            force = True  # the other recipe's build never finished a task: nothing of value to keep
        if force:
            for sub in [".work", "train", "validation", "rejected", "tokenizer", MANIFEST_NAME]:
                p = self.out / sub
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(json.dumps({"sha256": fp, "recipe": self.recipe.model_dump(mode="json")}, indent=1))
        os.replace(tmp, stamp)
        return True

    def preflight(self) -> None:
        """Fail before any work on inputs that cannot be read."""
        from shardsmith.pipelines.sources import list_input_files

        for src in self.recipe.sources:
            if src.kind == "hf_hub":
                self.tasks[src.name] = max(1, self.recipe.tasks or 1)
                continue
            try:
                files = list_input_files(src)
            except (FileNotFoundError, PermissionError, ValueError) as err:
                raise MixError(f"source '{src.name}': {err}") from err
            # A task is datatrove's unit of work and of resume; each one pays the filters' start-up (block
            # lists, models), so by default there are as many tasks as workers, up to the number of files.
            self.tasks[src.name] = self.recipe.tasks or max(1, min(len(files), self.recipe.workers, MAX_TASKS))

    def resolve_tokenizer(self):
        from shardsmith.pipelines.tokenizers import resolve_tokenizer

        if self.recipe.tokenizer.train is None:
            self.tokenizer = resolve_tokenizer(self.recipe.tokenizer)

    # ------------------------------------------------------------------ A: filter
    def filter_source(self, src: SourceSpec) -> None:
        from datatrove.pipeline.writers import JsonlWriter
        from shardsmith.pipelines.filters import build_filter_steps
        from shardsmith.pipelines.sources import build_extractor, build_reader

        steps: list[tuple[str, object]] = [("read", build_reader(src))]
        extractor = build_extractor(src)
        if extractor is not None:
            steps.append(("extract", extractor))
        steps += build_filter_steps(src, str(self.out / "rejected"))
        writer = JsonlWriter(str(self.work / "filtered" / src.name), output_filename="${rank}.jsonl.gz")
        logging_dir = self.logs / "filter" / src.name
        _executor([s for _, s in steps] + [writer], self.tasks[src.name], self.recipe.workers, logging_dir).run()

        stats = rank_stats(logging_dir)
        counts: list[StepCount] = []
        for (name, _), st in zip(steps, stats):
            read, kept, dropped, reasons = step_counts(st)
            if name == "read":
                read = kept = int(st["stats"].get("documents", read))
                dropped, reasons = 0, {}
            counts.append(StepCount(step=name, read=read, kept=kept, dropped=dropped, reasons=reasons))
        self.filter_counts[src.name] = counts
        read_total = counts[0].read
        kept_total = counts[-1].kept
        self.kept[src.name] = kept_total
        if read_total == 0:
            where = src.paths or [src.dataset]
            raise MixError(f"source '{src.name}': read 0 documents from {where} (empty source)")
        if kept_total == 0 and src.weight > 0:
            raise MixError(
                f"source '{src.name}': all {read_total} documents were dropped by the filters "
                f"(see {self.out / 'rejected' / src.name}); lower the thresholds or set its weight to 0"
            )

    # ------------------------------------------------------------------ tokenizer training (optional)
    def train_tokenizer(self) -> None:
        from datatrove.pipeline.readers import JsonlReader
        from shardsmith.pipelines.tokenizers import load_tokenizer_folder, train_bpe

        spec = self.recipe.tokenizer
        folder = self.work / "tokenizer-trained"
        if (folder / "tokenizer.json").exists():
            self.tokenizer = load_tokenizer_folder(folder)
            return
        cap = spec.train.max_documents

        def texts():
            n = 0
            for src in self.recipe.sources:
                if src.weight <= 0:
                    continue
                for doc in JsonlReader(str(self.work / "filtered" / src.name)).run():
                    yield doc.text
                    n += 1
                    if cap and n >= cap:
                        return

        eos = spec.eos_token or spec.train.special_tokens[0]
        self.tokenizer = train_bpe(texts(), spec.train, name=f"{self.recipe.name}-bpe", out_folder=folder, eos_token=eos)

    # ------------------------------------------------------------------ B: count tokens
    def _filtered_tasks(self, src: SourceSpec) -> int:
        return max(1, len(list((self.work / "filtered" / src.name).glob("*.jsonl.gz"))))

    def count_source(self, src: SourceSpec) -> None:
        from datatrove.pipeline.readers import JsonlReader
        from datatrove.pipeline.tokens import TokensCounter
        from shardsmith.pipelines.mix_steps import DocumentLedger

        pipeline = [
            JsonlReader(str(self.work / "filtered" / src.name)),
            TokensCounter(tokenizer_name_or_path=str(self.tokenizer.tokenizer_json), count_eos_token=True, batch_size=1000),
            DocumentLedger(str(self.work / "ledger" / src.name)),
        ]
        _executor(pipeline, self._filtered_tasks(src), self.recipe.workers, self.logs / "count" / src.name).run()

    # ------------------------------------------------------------------ C: plan
    def plan(self) -> dict:
        from shardsmith.pipelines.planner import plan_source, resolve_budget, target_tokens

        ledgers = {}
        for src in self.recipe.sources:
            files = sorted((self.work / "ledger" / src.name).glob("*.parquet"))
            ledgers[src.name] = (
                pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame({"id": [], "tokens": [], "content": []}, schema={"id": pl.String, "tokens": pl.Int64, "content": pl.String})
            )
        available = {n: int(df["tokens"].sum() or 0) for n, df in ledgers.items()}
        budget = resolve_budget(self.recipe.budget_tokens, self.shares, available)
        targets = target_tokens(budget, self.shares)
        summaries = {}
        (self.work / "plan").mkdir(parents=True, exist_ok=True)
        for src in self.recipe.sources:
            table, summary = plan_source(
                ledgers[src.name],
                src.name,
                self.shares[src.name],
                targets[src.name],
                self.recipe.seed,
                self.recipe.validation_fraction,
            )
            path = self.work / "plan" / f"{src.name}.parquet"
            tmp = path.with_suffix(".tmp")
            table.write_parquet(tmp)
            os.replace(tmp, path)
            summaries[src.name] = summary
        return {"budget": budget, "sources": summaries}

    # ------------------------------------------------------------------ D: tokenize
    def tokenize_source(self, src: SourceSpec, split: str, seed: int) -> None:
        from datatrove.pipeline.readers import JsonlReader
        from shardsmith.pipelines.mix_steps import PlanSelector

        pipeline = [
            JsonlReader(str(self.work / "filtered" / src.name)),
            PlanSelector(str(self.work / "plan" / f"{src.name}.parquet"), split),
            shards.tokenizer_step(
                self.work / "tok" / split,
                self.tokenizer.tokenizer_json,
                self.tokenizer.eos_token,
                seed=seed,
                save_filename=src.name,
            ),
        ]
        logging_dir = self.logs / "tokenize" / split / src.name
        _executor(pipeline, self._filtered_tasks(src), self.recipe.workers, logging_dir).run()

    def realized(self, src: SourceSpec) -> tuple[int, int]:
        """(documents, tokens) this source wrote across splits, read from its own token files."""
        pattern = re.compile(rf"^{re.escape(src.name)}_\d{{5}}_.*\.ds$")
        docs = tokens = 0
        for split in shards.SPLITS:
            folder = self.work / "tok" / split
            if not folder.is_dir():
                continue
            for f in folder.iterdir():
                if pattern.match(f.name):
                    tokens += f.stat().st_size // self.tokenizer.token_size
                    docs += Path(f"{f}.index").stat().st_size // 8
        return docs, tokens

    # ------------------------------------------------------------------ E: merge
    def merge(self, split: str, seed: int) -> None:
        src_folder = self.work / "tok" / split
        if not src_folder.is_dir() or not any(src_folder.glob("*.ds")):
            return
        logging_dir = self.logs / "merge" / split
        if _completed(logging_dir, 1):
            return
        dest = self.out / split
        if dest.exists():  # a merge that died midway: redo it whole
            shutil.rmtree(dest)
        step = shards.merge_step(
            src_folder,
            dest,
            save_filename=self.recipe.name,
            seed=seed,
            loss_masks=False,
            max_tokens_per_file=self.recipe.max_tokens_per_file,
        )
        _executor([step], 1, 1, logging_dir).run()

    # ------------------------------------------------------------------ manifest
    def write_manifest(self, plan: dict) -> Path:
        tok = self.tokenizer
        from shardsmith.pipelines.filters import filter_chain_info

        sources = []
        written = {s.name: self.realized(s) for s in self.recipe.sources}
        total_tokens = sum(t for _, t in written.values()) or 1
        for src in self.recipe.sources:
            p = plan["sources"][src.name]
            docs, tokens = written[src.name]
            if tokens != p.planned_tokens:
                raise MixError(
                    f"source '{src.name}': planned {p.planned_tokens} tokens but wrote {tokens}; "
                    "the filtered data changed under the build — rebuild with --force"
                )
            sources.append(
                SourceInfo(
                    name=src.name,
                    kind=src.kind,
                    weight_requested=src.weight,
                    share_requested=self.shares[src.name],
                    share_realized=tokens / total_tokens,
                    documents=docs,
                    tokens=tokens,
                    epochs=p.epochs,
                    full_epochs=p.full_epochs,
                    target_tokens=p.target_tokens,
                    documents_available=p.documents_available,
                    tokens_available=p.tokens_available,
                    paths=src.paths or [src.dataset or ""],
                    language=src.language,
                    tier=src.tier,
                    module=src.module,
                    **filter_chain_info(src),
                )
            )
        tok.copy_to(self.out / "tokenizer")
        manifest = shards.new_manifest(
            "mix",
            self.recipe.name,
            self.recipe.seed,
            tok,
            loss_masks=False,
            sources=sources,
            filters=self.filter_counts,
            budget_tokens=plan["budget"],
            recipe=self.recipe.model_dump(mode="json"),
            recipe_sha256=_fingerprint(self.recipe),
        )
        return shards.finalize(self.out, manifest)


def build_mix(recipe: MixRecipe, out_dir: str | os.PathLike, force: bool = False, progress: bool = True) -> Path:
    """Build (or resume building) a mix; returns the manifest path."""
    build = MixBuild(recipe, out_dir)
    build.preflight()  # unreadable inputs fail before anything is written
    if not build.prepare(force):
        return build.out / MANIFEST_NAME
    build.resolve_tokenizer()
    active = list(recipe.sources)
    n_phases = 3 * len(active) + 3  # filter, count, tokenize per source; plan, merge, manifest
    with tqdm(total=n_phases, desc=f"mix {recipe.name}", unit="phase", disable=not progress) as bar:

        def step(label: str) -> None:
            bar.set_postfix_str(label)

        for src in active:
            step(f"filter {src.name}")
            build.filter_source(src)
            c = build.filter_counts[src.name]
            bar.write(f"  {src.name:<20} read {c[0].read:>8,}  kept {c[-1].kept:>8,}  dropped {c[0].read - c[-1].kept:>8,}")
            bar.update()
        if build.tokenizer is None:
            step("train tokenizer")
            build.train_tokenizer()
        for src in active:
            step(f"count {src.name}")
            build.count_source(src)
            bar.update()
        step("plan")
        plan = build.plan()
        bar.update()
        for i, src in enumerate(active):
            for split in shards.SPLITS:
                step(f"tokenize {src.name}/{split}")
                build.tokenize_source(src, split, seed=recipe.seed + 7919 * (i + 1))
            bar.update()
        for split in shards.SPLITS:
            step(f"merge {split}")
            build.merge(split, seed=recipe.seed)
        bar.update()
        step("manifest")
        path = build.write_manifest(plan)
        bar.update(bar.total - bar.n)
    return path
