"""`shardsmith mix`: sources -> filtered documents -> token counts -> plan -> tokenized, shuffled shards + manifest.

Each phase is a datatrove executor with its own logging dir under ``DIR/.work/logs``; datatrove's completion
markers make a re-run skip finished tasks, and every task rewrites its own output files, so a killed build
resumes without lost or doubled documents. The manifest is written last (temp name, then rename): a folder
without it is not a shard set.

    A filter    reader [+ extractor] + filters + decontam (``pipelines/decontam.py``; rejects ->
                DIR/rejected/<source>/<step>/)                                               -> .work/filtered/<source>
                every source is filtered before any is judged empty (``on_empty``: one error naming all, or skip)
    B count     TokensCounter + ledger (id, tokens)                                          -> .work/ledger/<source>
    C plan      per-source token targets from the weights, seeded selection + upsampling    -> .work/plan/<source>.parquet
    D tokenize  plan replay per split [+ text export -> DIR/text/<source>/], DocumentTokenizer -> .work/tok/<split>/
    E merge     DocumentTokenizerMerger per split (seeded interleave)                        -> DIR/<split>/

A source with weight 0 is never read. Once the manifest is written, ``.work/`` (intermediates only) is removed unless
``keep_work``; the manifest's ``files`` then lists the whole set.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path

import polars as pl
from tqdm.auto import tqdm

from shardsmith.pipelines import shards
from shardsmith.pipelines.decontam import MixDecontamination
from shardsmith.pipelines.dedup import dedup_mix
from shardsmith.pipelines.executors import Phase, PhaseError, PhaseRunner
from shardsmith.pipelines.sources import is_url
from shardsmith.pipelines.stats import rank_stats, step_changes, step_counts
from shardsmith.recipes import load_recipe
from shardsmith.schemas.manifest import MANIFEST_NAME, SourceInfo, StepCount, TextFile
from shardsmith.schemas.mix_recipe import MixRecipe, SourceSpec

MAX_TASKS = 64


class MixError(RuntimeError):
    """A mix that cannot be built; the message names the source, file or field."""


def run_mix(
    recipe_path: str, out_dir: str, overrides: list[str] | None = None, force: bool = False, keep_work: bool = False
) -> Path:
    """Build the recipe into ``out_dir``: a local folder (returns the manifest's Path), or a URL on any fsspec
    filesystem (built in a local staging folder, uploaded through datatrove's DataFolder: ``pipelines/publish.py``;
    returns the manifest's URL)."""
    recipe = load_recipe(MixRecipe, recipe_path, overrides)
    if is_url(str(out_dir)):
        from shardsmith.pipelines.publish import build_mix_at_url

        return build_mix_at_url(recipe, str(out_dir), force=force, keep_work=keep_work)
    return build_mix(recipe, out_dir, force=force, keep_work=keep_work)


# Where the phases run changes nothing in what they write: the executor is neither fingerprinted nor recorded, so a
# build resumes under another executor and every executor writes the same bytes.
NOT_RECORDED = {"executor"}


def _fingerprint(recipe: MixRecipe) -> str:
    return hashlib.sha256(recipe.model_dump_json(exclude=NOT_RECORDED).encode()).hexdigest()


def recorded_recipe(recipe: MixRecipe) -> dict:
    """The recipe as the manifest and the work stamp record it (without ``executor``)."""
    return recipe.model_dump(mode="json", exclude=NOT_RECORDED)


def _completed(logging_dir: Path, tasks: int) -> bool:
    return all((logging_dir / "completions" / f"{r:05d}").exists() for r in range(tasks))


class MixBuild:
    """One build of one recipe into one folder."""

    def __init__(self, recipe: MixRecipe, out_dir: str | os.PathLike, dry_run: bool = False):
        self.recipe = recipe
        self.out = Path(out_dir).resolve()
        self.work = self.out / ".work"
        self.logs = self.work / "logs"
        self.shares = recipe.shares()  # requested: over every source of the recipe
        self.read_sources = [s for s in recipe.sources if s.weight > 0]
        self.skipped: dict[str, str] = {s.name: "weight 0: not read" for s in recipe.sources if s.weight <= 0}
        self.tokenizer = None
        self.filter_counts: dict[str, list[StepCount]] = {}
        self.filter_steps: dict[str, list[str]] = {}
        self.kept: dict[str, int] = {}
        self.tasks: dict[str, int] = {}
        self.documents: dict[str, Path] = {}  # a source's documents after filtering, once a later phase rewrote them
        self.dedup_info: dict | None = None
        self.decontam = MixDecontamination(recipe.decontaminate, self.out)  # benchmarks resolved (or warned) here
        self.runner = PhaseRunner(recipe.executor, recipe.workers, self.logs, recipe.name, dry_run=dry_run)
        self.input_files: dict[str, int] = {}  # files per source, as listed by preflight

    @property
    def active(self) -> list[SourceSpec]:
        """The sources that go into the shards: read, and not skipped as empty."""
        return [s for s in self.read_sources if s.name not in self.skipped]

    def documents_folder(self, src: SourceSpec) -> Path:
        """Where the source's kept documents are: ``.work/filtered/<source>`` until dedup rewrites them."""
        return self.documents.get(src.name, self.work / "filtered" / src.name)

    def run_phase(self, pipeline: list, tasks: int, logging_dir: Path, concurrency: int | None = None) -> None:
        """Submit one datatrove phase through the recipe's executor (``pipelines/executors.py``); its results are
        there once ``self.runner.wait()`` returns."""
        self.runner.run(pipeline, tasks, logging_dir, concurrency)

    def planned_shares(self) -> dict[str, float]:
        """Weights renormalised over the active sources (equal to the requested shares when none was skipped)."""
        return self.recipe.shares([s.name for s in self.active])

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
            for sub in [".work", "train", "validation", "rejected", "flagged", "tokenizer", "text", MANIFEST_NAME]:
                p = self.out / sub
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(json.dumps({"sha256": fp, "recipe": recorded_recipe(self.recipe)}, indent=1))
        os.replace(tmp, stamp)
        return True

    def preflight(self) -> None:
        """Fail before any work on inputs that cannot be read."""
        from shardsmith.pipelines.sources import list_input_files

        for src in self.read_sources:
            if src.limit >= 0:
                # datatrove's reader limit is per task: one task reads exactly the first `limit` documents in file
                # order, whatever `tasks` and `workers` say
                self.tasks[src.name] = 1
            if src.kind == "hf_hub":
                self.tasks.setdefault(src.name, max(1, self.recipe.tasks or 1))
                continue
            try:
                files = list_input_files(src)
            except (FileNotFoundError, PermissionError, ValueError) as err:
                named = str(err).startswith(f"source '{src.name}'")  # SourceError messages name it already
                raise MixError(str(err) if named else f"source '{src.name}': {err}") from err
            self.input_files[src.name] = len(files)
            # A task is datatrove's unit of work and of resume; each one pays the filters' start-up (block
            # lists, models), so by default there are as many tasks as workers, up to the number of files.
            self.tasks.setdefault(
                src.name, self.recipe.tasks or max(1, min(len(files), self.recipe.workers, MAX_TASKS))
            )

    def resolve_tokenizer(self):
        from shardsmith.pipelines.tokenizers import resolve_tokenizer

        if self.recipe.tokenizer.train is None:
            self.tokenizer = resolve_tokenizer(self.recipe.tokenizer)

    # ------------------------------------------------------------------ A: filter
    def filter_source(self, src: SourceSpec) -> None:
        """Submit the source's filter phase; ``collect_filter`` reads its counts once the runner waited."""
        from datatrove.pipeline.writers import JsonlWriter
        from shardsmith.pipelines.filter_chains import build_filter_steps
        from shardsmith.pipelines.sources import build_extractor, build_reader

        steps: list[tuple[str, object]] = [("read", build_reader(src, work_dir=str(self.work)))]
        extractor = build_extractor(src)
        if extractor is not None:
            steps.append(("extract", extractor))
        steps += build_filter_steps(src, str(self.out / "rejected"))
        steps += self.decontam.steps(src.name, str(self.out / "rejected"))
        writer = JsonlWriter(str(self.work / "filtered" / src.name), output_filename="${rank}.jsonl.gz")
        self.filter_steps[src.name] = [name for name, _ in steps]
        self.run_phase([s for _, s in steps] + [writer], self.tasks[src.name], self.logs / "filter" / src.name)

    def collect_filter(self, src: SourceSpec) -> None:
        """Per-step counts of the source's finished filter phase (its per-rank stats)."""
        stats = rank_stats(self.logs / "filter" / src.name)
        counts: list[StepCount] = []
        for name, st in zip(self.filter_steps[src.name], stats):
            read, kept, dropped, reasons = step_counts(st)
            if name == "read":
                read = kept = int(st["stats"].get("documents", read))
                dropped, reasons = 0, {}
            counts.append(
                StepCount(step=name, read=read, kept=kept, dropped=dropped, reasons=reasons, **step_changes(st))
            )
        self.filter_counts[src.name] = counts
        self.kept[src.name] = counts[-1].kept

    def why_empty(self, src: SourceSpec) -> str:
        """What was read and the top drop reasons of a source with nothing kept (one line, without its name)."""
        counts = self.filter_counts[src.name]
        read = counts[0].read
        if read == 0:
            return f"read 0 documents from {src.paths or [src.dataset or src.recipe]} (empty input)"
        reasons = Counter()
        for st in counts[1:]:
            reasons.update(st.reasons)
        top = ", ".join(f"{r} {n:,}" for r, n in reasons.most_common(3)) or "no reason recorded"
        rejects = self.out / "rejected" / src.name
        return f"read {read:,} documents, kept 0 (top drop reasons: {top}; rejects in {rejects})"

    def settle_empty_sources(self) -> None:
        """After every source is filtered: one error naming every empty source whose policy is ``error`` (or when
        nothing is left at all); empty sources whose policy is ``skip`` are recorded and left out."""
        empty = [s for s in self.read_sources if self.kept[s.name] == 0]
        if not empty:
            return
        if len(empty) == len(self.read_sources):
            lines = [f"source '{s.name}': {self.why_empty(s)}" for s in empty]
            raise MixError("every source is empty after filtering; nothing to mix:\n  " + "\n  ".join(lines))
        errors = [s for s in empty if self.recipe.on_empty_of(s) == "error"]
        if errors:
            lines = [f"source '{s.name}': {self.why_empty(s)}" for s in errors]
            raise MixError(
                f"{len(errors)} source(s) have no documents left after filtering; loosen their filters, set "
                "`weight: 0` to leave a source out, or `on_empty: skip` to build without empty sources:\n  "
                + "\n  ".join(lines)
            )
        for s in empty:
            self.skipped[s.name] = f"empty after filtering: {self.why_empty(s)}"

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
            for src in self.active:
                for doc in JsonlReader(str(self.documents_folder(src))).run():
                    yield doc.text
                    n += 1
                    if cap and n >= cap:
                        return

        eos = spec.eos_token or spec.train.special_tokens[0]
        self.tokenizer = train_bpe(texts(), spec.train, name=f"{self.recipe.name}-bpe", out_folder=folder, eos_token=eos)

    # ------------------------------------------------------------------ B: count tokens
    def _filtered_tasks(self, src: SourceSpec) -> int:
        return max(1, len(list(self.documents_folder(src).glob("*.jsonl.gz"))))

    def count_source(self, src: SourceSpec) -> None:
        from datatrove.pipeline.readers import JsonlReader
        from datatrove.pipeline.tokens import TokensCounter
        from shardsmith.pipelines.mix_steps import DocumentLedger

        pipeline = [
            JsonlReader(str(self.documents_folder(src))),
            TokensCounter(tokenizer_name_or_path=str(self.tokenizer.tokenizer_json), count_eos_token=True, batch_size=1000),
            DocumentLedger(str(self.work / "ledger" / src.name)),
        ]
        self.run_phase(pipeline, self._filtered_tasks(src), self.logs / "count" / src.name)

    # ------------------------------------------------------------------ C: plan
    def plan(self) -> dict:
        from shardsmith.pipelines.planner import plan_source, resolve_budget, target_tokens

        shares = self.planned_shares()
        ledgers = {}
        for src in self.active:
            files = sorted((self.work / "ledger" / src.name).glob("*.parquet"))
            ledgers[src.name] = (
                pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame({"id": [], "tokens": [], "content": []}, schema={"id": pl.String, "tokens": pl.Int64, "content": pl.String})
            )
        available = {n: int(df["tokens"].sum() or 0) for n, df in ledgers.items()}
        budget = resolve_budget(self.recipe.budget_tokens, shares, available)
        targets = target_tokens(budget, shares)
        summaries = {}
        (self.work / "plan").mkdir(parents=True, exist_ok=True)
        for src in self.active:
            table, summary = plan_source(
                ledgers[src.name],
                src.name,
                shares[src.name],
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
        from shardsmith.pipelines.mix_steps import ExpandCopies, PlanSelector, text_writer

        pipeline = [
            JsonlReader(str(self.documents_folder(src))),
            PlanSelector(str(self.work / "plan" / f"{src.name}.parquet"), split),
        ]
        if self.recipe.write_text == "parquet":
            pipeline.append(text_writer(str(self.out / "text" / src.name), src.name, split))
        pipeline += [
            ExpandCopies(),
            shards.tokenizer_step(
                self.work / "tok" / split,
                self.tokenizer.tokenizer_json,
                self.tokenizer.eos_token,
                seed=seed,
                save_filename=src.name,
            ),
        ]
        self.run_phase(pipeline, self._filtered_tasks(src), self.logs / "tokenize" / split / src.name)

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
        self.run_phase([step], 1, logging_dir, concurrency=1)

    # ------------------------------------------------------------------ manifest
    def write_manifest(self, plan: dict) -> Path:
        tok = self.tokenizer
        sources = []
        written = {s.name: self.realized(s) for s in self.active}
        total_tokens = sum(t for _, t in written.values()) or 1
        planned = self.planned_shares()
        for src in self.recipe.sources:
            if src.name in self.skipped:
                sources.append(self.skipped_info(src))
                continue
            p = plan["sources"][src.name]
            docs, tokens = written[src.name]
            if tokens != p.planned_tokens:
                raise MixError(
                    f"source '{src.name}': planned {p.planned_tokens} tokens but wrote {tokens}; "
                    "the filtered data changed under the build — rebuild with --force"
                )
            sources.append(
                SourceInfo(
                    **self.recorded_fields(src),
                    share_planned=planned[src.name],
                    share_realized=tokens / total_tokens,
                    documents=docs,
                    tokens=tokens,
                    epochs=p.epochs,
                    full_epochs=p.full_epochs,
                    target_tokens=p.target_tokens,
                    documents_available=p.documents_available,
                    tokens_available=p.tokens_available,
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
            recipe=recorded_recipe(self.recipe),
            recipe_sha256=_fingerprint(self.recipe),
            text_files=self.text_files() if self.recipe.write_text == "parquet" else None,
            dedup=self.dedup_info,
            decontamination=self.decontam.report(self.logs, [s.name for s in self.active]),
        )
        return shards.finalize(self.out, manifest)

    def skipped_info(self, src: SourceSpec) -> SourceInfo:
        """A source left out of the set (weight 0, or empty with ``on_empty: skip``): listed with 0 documents."""
        return SourceInfo(
            **self.recorded_fields(src),
            share_planned=0.0,
            share_realized=0.0,
            documents=0,
            tokens=0,
            epochs=0.0,
            skipped=self.skipped[src.name],
        )

    def recorded_fields(self, src: SourceSpec) -> dict:
        """What the manifest says of every source, built or not: its recipe entry and the chain that filtered it."""
        from shardsmith.pipelines.block_source import block_record
        from shardsmith.pipelines.filter_chains import filter_chain_info

        block = block_record(src, self.work) if src.kind == "block" else {}
        return dict(
            name=src.name,
            kind=src.kind,
            weight_requested=src.weight,
            share_requested=self.shares[src.name],
            paths=src.paths or [src.dataset or src.recipe or ""],
            language=src.language,
            tier=src.tier,
            module=src.module,
            **filter_chain_info(src),
            **block,
        )

    def text_files(self) -> list[TextFile]:
        """The text export's files with their row counts and copies, read back from the parquet files."""
        import pyarrow.parquet as pq

        out = []
        for src in self.active:
            for path in sorted((self.out / "text" / src.name).glob("*.parquet")):
                table = pq.read_table(path, columns=["copies"])
                split = path.name.split("-", 1)[0]
                out.append(
                    TextFile(
                        path=path.relative_to(self.out).as_posix(),
                        source=src.name,
                        split=split,
                        documents=table.num_rows,
                        copies=int(sum(table.column("copies").to_pylist())),
                    )
                )
        return out

    def remove_work(self) -> None:
        """Drop the intermediates (filtered text, ledgers, plans, per-source token files, logs): the finished set is
        what the manifest lists. Only ever called once the manifest is written."""
        if (self.out / MANIFEST_NAME).is_file():
            shutil.rmtree(self.work, ignore_errors=True)


def build_mix(
    recipe: MixRecipe,
    out_dir: str | os.PathLike,
    force: bool = False,
    progress: bool = True,
    keep_work: bool = False,
) -> Path:
    """Build (or resume building) a mix; returns the manifest path. ``keep_work`` keeps ``DIR/.work`` (the
    intermediates, for debugging) after the manifest is written; it is not part of the recipe's fingerprint.

    Phases of one kind (every source's filter, count, tokenize; each split's merge) are submitted together; the
    driver waits (``runner.wait``) only where it decides from their results (``pipelines/executors.py``)."""
    build = MixBuild(recipe, out_dir)
    build.preflight()  # unreadable inputs fail before anything is written
    if not build.prepare(force):
        if not keep_work:
            build.remove_work()  # a build killed between its manifest and this clean-up
        return build.out / MANIFEST_NAME
    try:
        return _build_phases(build, keep_work, progress)
    except PhaseError as err:  # a phase's tasks did not all finish: one line naming it and its logs
        raise MixError(str(err)) from None
    finally:
        build.runner.close()


def _build_phases(build: MixBuild, keep_work: bool, progress: bool) -> Path:
    recipe, runner = build.recipe, build.runner
    build.resolve_tokenizer()
    read = build.read_sources
    # the tokenize seed of a source is tied to its place in the recipe, so skipping another source changes nothing
    position = {s.name: i for i, s in enumerate(recipe.sources)}
    n_phases = 3 * len(read) + 4  # filter, count, tokenize per source; dedup, plan, merge, manifest
    with tqdm(total=n_phases, desc=f"mix {recipe.name}", unit="phase", disable=not progress) as bar:

        def step(label: str) -> None:
            bar.set_postfix_str(label)

        step("filter")
        with runner.parallel():
            for src in read:
                build.filter_source(src)
        runner.wait()
        for src in read:
            build.collect_filter(src)
            c = build.filter_counts[src.name]
            bar.write(f"  {src.name:<20} read {c[0].read:>8,}  kept {c[-1].kept:>8,}  dropped {c[0].read - c[-1].kept:>8,}")
            bar.update()
        build.settle_empty_sources()
        step("dedup")
        dedup_mix(build)  # exact + MinHash across the mix (recipe `dedup:`); then a source may be empty
        build.settle_empty_sources()
        bar.update()
        for name, why in build.skipped.items():
            bar.write(f"  {name:<20} skipped: {why}")
        if build.tokenizer is None:
            step("train tokenizer")
            build.train_tokenizer()
        step("count")
        with runner.parallel():
            for src in build.active:
                build.count_source(src)
        runner.wait()
        bar.update(len(build.active))
        step("plan")
        plan = build.plan()
        bar.update()
        step("tokenize")
        with runner.parallel():
            for src in build.active:
                for split in shards.SPLITS:
                    build.tokenize_source(src, split, seed=recipe.seed + 7919 * (position[src.name] + 1))
        runner.wait()
        bar.update(len(build.active))
        step("merge")
        with runner.parallel():
            for split in shards.SPLITS:
                build.merge(split, seed=recipe.seed)
        runner.wait()
        bar.update()
        step("manifest")
        path = build.write_manifest(plan)
        if not keep_work:
            build.remove_work()
        bar.update(bar.total - bar.n)
    return path


# ---------------------------------------------------------------------------------------------------- dry run
def plan_phases(recipe: MixRecipe, out_dir: str | os.PathLike) -> tuple[list, dict[str, str]]:
    """The phases a build of ``recipe`` submits, in order, without reading or writing any document: ``(planned,
    files)`` where ``planned`` is ``PhaseRunner.planned`` (a ``Phase`` per phase, ``None`` where the driver waits, a
    sentence where the driver itself works) and ``files`` says what one task of each phase reads.

    Inputs are listed (preflight), nothing else is touched. Phases after filtering assume one filtered file per
    filter task (the build counts the files it finds, fewer when a task kept nothing); the dedup phases are
    the Deduplicator's own, recorded by a dry-run runner."""
    from shardsmith.pipelines.dedup import Deduplicator

    build = MixBuild(recipe, out_dir, dry_run=True)
    build.preflight()
    runner, read = build.runner, build.read_sources
    files: dict[str, str] = {}
    with runner.parallel():
        for src in read:
            logs = build.logs / "filter" / src.name
            runner.run([], build.tasks[src.name], logs)
            n = build.input_files.get(src.name)
            files[logs.relative_to(build.logs).as_posix()] = (
                "streamed" if n is None else f"{n / build.tasks[src.name]:.3g} input file(s)")
    runner.wait()
    filtered = {s.name: build.tasks[s.name] for s in read}
    if recipe.dedup.enabled:
        folders = {s.name: build.documents_folder(s) for s in read}
        dedup = Deduplicator(recipe.dedup, read, folders, build.work, build.out / "rejected", runner, files=filtered)
        dedup.run()
    if recipe.tokenizer.train is not None:
        runner.planned.append("the driver trains the tokenizer on the kept documents")
    with runner.parallel():
        for src in read:
            logs = build.logs / "count" / src.name
            runner.run([], filtered[src.name], logs)
            files[logs.relative_to(build.logs).as_posix()] = "1 filtered file"
    runner.wait()
    runner.planned.append("the driver plans each source's documents per split from the counts")
    with runner.parallel():
        for src in read:
            for split in shards.SPLITS:
                logs = build.logs / "tokenize" / split / src.name
                runner.run([], filtered[src.name], logs)
                files[logs.relative_to(build.logs).as_posix()] = "1 filtered file"
    runner.wait()
    with runner.parallel():
        for split in shards.SPLITS:
            runner.run([], 1, build.logs / "merge" / split, concurrency=1)
    runner.wait()
    return runner.planned, files


def _names(phases: list[str]) -> str:
    """``a/b/x, a/b/y, a/b/z, a/b/w`` -> ``a/b/* (4)``: a phase after every source's phase of one kind."""
    if len(phases) <= 2:
        return ", ".join(phases) or "-"
    parent = os.path.commonpath(phases)
    return f"{parent}/* ({len(phases)})" if parent else ", ".join(phases)


def _local_ray(recipe: MixRecipe) -> str:
    """The local Ray cluster ``pipelines/executors.py`` starts for ``recipe`` (when none runs in the process)."""
    ex = recipe.executor
    slots = max(recipe.workers, ex.concurrency or 0)
    return (f"(local unless one runs: {slots * ex.cpus_per_task} CPUs, {slots * ex.cpus_per_task * ex.mem_per_cpu_gb}"
            f" GiB; a task asks {ex.cpus_per_task} CPU(s), {ex.cpus_per_task * ex.mem_per_cpu_gb} GiB)")


def describe_plan(recipe: MixRecipe, out_dir: str | os.PathLike) -> str:
    """``shardsmith mix --dry-run``: the executor, then one line per phase (tasks, what a task reads, the phases
    it depends on under slurm) and a line where the driver waits for results."""
    shown = out_dir
    if is_url(str(out_dir)):
        from shardsmith.pipelines.publish import staging_folder

        out_dir = staging_folder(str(out_dir))
        shown = f"{shown} (built in {out_dir}, then uploaded)"
    else:
        shown = Path(out_dir).resolve()
    planned, files = plan_phases(recipe, out_dir)
    ex = recipe.executor
    where = {"local": f"{ex.concurrency or recipe.workers} process(es) on this machine",
             "ray": f"Ray cluster {ex.address or _local_ray(recipe)}",
             "slurm": f"sbatch arrays on partition {ex.partition}, time {ex.time}, {ex.cpus_per_task} CPU(s)/task"}
    lines = [f"mix {recipe.name} -> {shown} (dry run: nothing is read or written)",
             f"executor: {ex.kind}: {where[ex.kind]}", "",
             f"{'phase':<40} {'tasks':>6}  {'each task reads':<22} after (slurm --dependency=afterok)"]
    for phase in planned:
        if phase is None:
            lines.append("  -- the driver waits here for the phases above (it reads their results)")
            continue
        if isinstance(phase, str):
            lines.append(f"  -- {phase}")
            continue
        reads = files.get(phase.name, "")
        after = _names(phase.after)
        lines.append(f"{phase.name:<40} {phase.tasks:>6}  {reads:<22} {after}")
    phases = [p for p in planned if isinstance(p, Phase)]
    lines.append(f"\n{len(phases)} phases, {sum(p.tasks for p in phases)} tasks")
    return "\n".join(lines)
