"""Document dedup inside the mix: exact (normalised-text hash) and MinHash (datatrove's stages), after filtering and
before counting, within a source and across the sources of one mix.

Every phase is a datatrove executor with its own logging dir (completions: a re-run skips finished tasks):

    sign      per source: reader + DocumentIndex (id, exact hash) + FastMinhashSignature   -> .work/dedup/<group>/
    buckets   datatrove MinhashDedupBuckets, one task per bucket                           (duplicate pairs)
    cluster   datatrove MinhashDedupCluster with cluster ids, one task                     (connected components)
    resolve   DuplicateResolver, one task: who keeps each exact group / MinHash cluster    -> remove/<file>.parquet
    filter    per source: reader + DuplicateFilter (rejects -> rejected/<source>/dedup/)   -> .work/deduped/<source>
    sentences optional, per source: datatrove SentenceDedup (signature, find, filter)       -> .work/dedup/spans/<source>

The sources of a group (the whole mix, or one source with ``scope: source``) write into one signature folder under
*global file ids*: the sources sorted by the recipe's keep rule, each source's filtered files numbered after the
previous source's. A source's task ``r`` reads its filtered file ``r`` (one file per task), so ``(file id, position in
file)`` names a document in every phase, and "the first member by (file id, position)" is the document the keep rule
keeps. datatrove's own cluster stage keeps the root of its union-find (union by size), which is neither the recipe's
choice nor recorded with the removed document; so its cluster ids are read and the keeper chosen here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.text import TextNormConfig, simplify_text

from shardsmith.pipelines.rejected import RejectedJsonlWriter, RejectedRecordAdapter
from shardsmith.schemas.dedup import DedupSpec
from shardsmith.schemas.mix_recipe import SourceSpec

__all__ = [
    "DEDUP_STEP", "SPAN_STEP", "DedupMember", "Deduplicator", "DocumentIndex", "DuplicateFilter", "DuplicateResolver",
    "dedup_groups", "dedup_mix", "exact_key", "local_executor", "minhash_config", "not_deduplicated",
]

DEDUP_STEP = "dedup"
SPAN_STEP = "dedup_spans"
# kinds whose sources get sentence-span dedup when `dedup.sentences.enabled` and `sources` is unset
WEB_KINDS = ("fineweb", "c4", "dolma", "dclm", "warc")
# kind -> why its documents are not deduplicated by the mix
EXEMPT_KINDS = {
    "block": "kind block: deduplicated by its block builder, which keeps deliberate repeats (self-cognition copies)",
}
# "exact": the same text up to letter case and runs of whitespace (numbers and punctuation count)
EXACT_NORM = TextNormConfig(
    lowercase=True, norm_whitespace=True, remove_punctuation=False, norm_unicode_diacritics=False,
    norm_numbers=False, norm_weekdays=False, norm_monthnames=False,
)


def exact_key(text: str) -> str:
    """128-bit hash (hex) of the case- and whitespace-normalised text."""
    from xxhash import xxh3_128_hexdigest

    return xxh3_128_hexdigest(simplify_text(text, EXACT_NORM).encode("utf-8"))


def _write_parquet(folder, name: str, table) -> None:
    """Temp name, then rename: a task killed midway never leaves a file that looks complete."""
    import pyarrow.parquet as pq

    tmp = f".{name}.tmp-{os.getpid()}"
    with folder.open(tmp, "wb") as f:
        pq.write_table(table, f)
    folder.mv(tmp, name)


@dataclass(frozen=True)
class DedupMember:
    """One source of a dedup group: its files are global file ids ``offset .. offset + files - 1``."""

    name: str
    language: str
    offset: int
    files: int


def keep_priority(spec: DedupSpec, sources: list[SourceSpec]) -> list[SourceSpec]:
    """``sources`` best first under the recipe's keep rule (recipe order breaks tier ties)."""
    position = {s.name: i for i, s in enumerate(sources)}
    if spec.keep == "tier":
        return sorted(sources, key=lambda s: (spec.tier_order.index(s.tier), position[s.name]))
    return sorted(sources, key=lambda s: position[s.name])


def not_deduplicated(spec: DedupSpec, source: SourceSpec) -> str | None:
    """Why ``source`` is left out of dedup (``dedup.skip_sources``, or a kind in ``EXEMPT_KINDS``), else None."""
    if source.name in spec.skip_sources:
        return "listed in dedup.skip_sources"
    return EXEMPT_KINDS.get(source.kind)


def dedup_groups(spec: DedupSpec, sources: list[SourceSpec], files: dict[str, int]) -> dict[str, list[DedupMember]]:
    """Group name -> members with their global file ids; ``files`` = filtered files per source."""
    chosen = [s for s in keep_priority(spec, sources) if not_deduplicated(spec, s) is None]
    groups = {"mix": chosen} if spec.scope == "mix" else {s.name: [s] for s in chosen}
    out = {}
    for group, members in groups.items():
        offset, placed = 0, []
        for s in members:
            placed.append(DedupMember(s.name, s.language, offset, files[s.name]))
            offset += files[s.name]
        out[group] = placed
    return out


class DocumentIndex(PipelineStep):
    """Pass-through: record (position, id, exact hash) of every document to ``<folder>/<file id>.parquet``."""

    name = "🗂️ Dedup index"
    type = "🫂 - DEDUP"

    def __init__(self, output_folder: DataFolderLike, rank_offset: int = 0):
        super().__init__()
        self.output_folder = get_datafolder(output_folder)
        self.rank_offset = rank_offset

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        import pyarrow as pa

        ids, keys = [], []
        for doc in data:
            with self.track_time():
                ids.append(str(doc.id))
                keys.append(exact_key(doc.text))
                self.stat_update("documents")
            yield doc
        table = pa.table({"doc": pa.array(range(len(ids)), pa.int64()), "id": ids, "exact": keys})
        _write_parquet(self.output_folder, f"{rank + self.rank_offset:05d}.parquet", table)


class DuplicateResolver(PipelineStep):
    """One task: choose the keeper of every exact group and MinHash cluster; write, per global file id, the
    documents to remove with the id and source of the document each duplicates.

    Exact first: of documents with the same exact hash, the first by (file id, position) stays. Then MinHash: of
    the members of a cluster still present, the first stays; the others are near duplicates of it. Memory: one row
    (id, hash) per document of the group.
    """

    name = "⚖️ Dedup resolver"
    type = "🫂 - DEDUP"

    def __init__(self, index_folder: DataFolderLike, clusters_folder: DataFolderLike | None,
                 output_folder: DataFolderLike, members: list[DedupMember], exact: bool):
        super().__init__()
        self.index_folder = get_datafolder(index_folder)
        self.clusters_folder = get_datafolder(clusters_folder) if clusters_folder else None
        self.output_folder = get_datafolder(output_folder)
        self.members = members
        self.exact = exact

    def _documents(self):
        import polars as pl
        import pyarrow.parquet as pq

        frames = []
        for m in self.members:
            for fid in range(m.offset, m.offset + m.files):
                name = f"{fid:05d}.parquet"
                if self.index_folder.exists(name):
                    with self.index_folder.open(name, "rb") as f:
                        table = pl.from_arrow(pq.read_table(f))
                    frames.append(table.with_columns(pl.lit(fid, dtype=pl.Int64).alias("file"), pl.lit(m.name).alias("source")))
        schema = {"doc": pl.Int64, "id": pl.String, "exact": pl.String, "file": pl.Int64, "source": pl.String}
        return pl.concat(frames) if frames else pl.DataFrame(schema=schema)

    def _clusters(self):
        """(file, doc, cluster) of every document in a MinHash cluster (datatrove's ``.clusters`` files)."""
        import polars as pl
        from datatrove.utils.binaryio import read_tuples_from_file

        rows = []
        if self.clusters_folder is not None:
            for name in self.clusters_folder.list_files(glob_pattern="*.clusters"):
                fid = int(Path(name).name.split(".")[0])
                with self.clusters_folder.open(name, "rb") as f:
                    rows += [(fid, d, c) for d, c in read_tuples_from_file(f, "2I", lines_to_buffer=1024)]
        return pl.DataFrame(rows, schema={"file": pl.Int64, "doc": pl.Int64, "cluster": pl.Int64}, orient="row")

    @staticmethod
    def _against_first(df, key: str, kind: str):
        """Rows of ``df`` that are not the first of their ``key`` group, with the first's id and source."""
        import polars as pl

        df = df.sort(["file", "doc"])
        first = df.group_by(key, maintain_order=True).first().select(
            key, pl.col("id").alias("duplicate_of"), pl.col("source").alias("duplicate_source"),
            pl.col("file").alias("_kf"), pl.col("doc").alias("_kd"),
        )
        out = df.join(first, on=key).filter((pl.col("file") != pl.col("_kf")) | (pl.col("doc") != pl.col("_kd")))
        return out.select("file", "doc", "source", "duplicate_of", "duplicate_source", pl.lit(kind).alias("kind"))

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        import polars as pl

        with self.track_time():
            docs = self._documents()
            removed = [self._against_first(docs, "exact", "exact")] if self.exact else []
            gone = removed[0].select("file", "doc") if removed else pl.DataFrame(schema={"file": pl.Int64, "doc": pl.Int64})
            clusters = self._clusters()
            if clusters.height:
                present = clusters.join(gone, on=["file", "doc"], how="anti").join(docs, on=["file", "doc"])
                removed.append(self._against_first(present, "cluster", "near"))
            schema = {"file": pl.Int64, "doc": pl.Int64, "source": pl.String, "duplicate_of": pl.String,
                      "duplicate_source": pl.String, "kind": pl.String}
            removed = pl.concat(removed) if removed else pl.DataFrame(schema=schema)
            for m in self.members:
                for fid in range(m.offset, m.offset + m.files):
                    rows = removed.filter(pl.col("file") == fid).sort("doc").drop("file")
                    _write_parquet(self.output_folder, f"{fid:05d}.parquet", rows.to_arrow())
            for kind, n in removed.group_by("kind").len().iter_rows():
                self.stat_update(kind, value=n)
        return
        yield


class DedupRecordAdapter(RejectedRecordAdapter):
    """Rejected record of a duplicate: the usual fields plus ``duplicate_of`` / ``duplicate_source`` (the id and
    source of the document that stays) and ``duplicate_kind`` (exact | near)."""

    def __call__(self, writer, document) -> dict:
        meta = document.metadata
        extra = {k: meta.pop(f"dedup_{k}", None) for k in ("duplicate_of", "duplicate_source", "duplicate_kind")}
        record = super().__call__(writer, document)
        record.update(extra)
        return record


class DuplicateFilter(PipelineStep):
    """Drop the documents the resolver marked in ``<folder>/<rank + rank_offset>.parquet``; the rejected record names
    the document each one duplicates. Reasons: ``exact_duplicate``, ``near_duplicate``."""

    name = "🫂 Dedup filter"
    type = "🫂 - DEDUP"

    def __init__(self, remove_folder: DataFolderLike, rank_offset: int, exclusion_writer=None):
        super().__init__()
        self.remove_folder = get_datafolder(remove_folder)
        self.rank_offset = rank_offset
        self.exclusion_writer = exclusion_writer

    def _removals(self, rank: int) -> dict[int, tuple[str, str, str]]:
        import pyarrow.parquet as pq

        name = f"{rank + self.rank_offset:05d}.parquet"
        with self.remove_folder.open(name, "rb") as f:
            t = pq.read_table(f).to_pydict()
        return {d: (o, s, k) for d, o, s, k in zip(t["doc"], t["duplicate_of"], t["duplicate_source"], t["kind"])}

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from contextlib import nullcontext

        removals = self._removals(rank)
        with self.exclusion_writer if self.exclusion_writer else nullcontext() as writer:
            for idx, doc in enumerate(data):
                self.stat_update("total")
                hit = removals.get(idx)
                if hit is None:
                    self.stat_update("forwarded")
                    yield doc
                    continue
                of, source, kind = hit
                self.stat_update("dropped", f"dropped_{kind}_duplicate")
                if writer is not None:
                    doc.metadata["filter_reason"] = f"{kind} duplicate of {of} (source {source})"
                    doc.metadata.update(dedup_duplicate_of=of, dedup_duplicate_source=source, dedup_duplicate_kind=kind)
                    writer.write(doc, rank)


# ---------------------------------------------------------------------------------------------------- the phases
def minhash_config(spec: DedupSpec):
    """datatrove's ``MinhashConfig`` for the recipe's ``dedup.minhash`` (datatrove's text normalisation and hash)."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig

    mh = spec.minhash
    return MinhashConfig(n_grams=mh.n_grams, num_buckets=mh.num_buckets, hashes_per_bucket=mh.hashes_per_bucket,
                         seed=mh.seed)


def local_executor(workers: int = 1):
    """A ``PhaseRunner`` over datatrove's LocalPipelineExecutor (resumable completions), for a Deduplicator used
    outside a mix build (a build passes its own runner: the recipe's executor)."""
    from shardsmith.pipelines.executors import PhaseRunner
    from shardsmith.schemas.mix_recipe import ExecutorSpec

    return PhaseRunner(ExecutorSpec(kind="local"), workers, Path("/"), "dedup")


class Deduplicator:
    """Dedup the documents of ``sources`` (``folders[name]``: datatrove jsonl.gz files, one task per file) under
    ``work``; kept documents go to ``work/deduped/<source>``, removed ones to ``rejected/<source>/dedup/``.
    ``runner``: a ``pipelines.executors.PhaseRunner`` (the phases chain with its dependencies; ``run`` waits at
    the end). ``files``: filtered files per source when the folders are not written yet (a dry run's plan)."""

    def __init__(self, spec: DedupSpec, sources: list[SourceSpec], folders: dict[str, Path], work: Path,
                 rejected: Path, runner, files: dict[str, int] | None = None):
        self.spec = spec
        self.sources = {s.name: s for s in sources}
        self.left_out = {s.name: why for s in sources if (why := not_deduplicated(spec, s))}
        self.folders = {n: Path(f) for n, f in folders.items()}
        self.work = Path(work) / "dedup"
        self.logs = Path(work) / "logs" / "dedup"
        self.out = Path(work) / "deduped"
        self.rejected = Path(rejected)
        self.runner = runner
        if files is None:
            files = {n: max(1, len(list(f.glob("*.jsonl.gz")))) for n, f in self.folders.items()}
        files = {n: k for n, k in files.items() if n not in self.left_out}
        self.groups = dedup_groups(spec, sources, files)
        sent = spec.sentences
        self.span_sources = set() if not sent.enabled else (
            set(sent.sources) if sent.sources is not None else {s.name for s in sources if s.kind in WEB_KINDS})

    def run(self) -> dict[str, Path]:
        """Run every phase (finished tasks are skipped); returns source -> folder of its kept documents."""
        for group, members in self.groups.items():
            for phase in self.phases(group, members):
                phase()
        self.runner.wait()
        return {m.name: self.kept_folder(m.name) for members in self.groups.values() for m in members}

    def kept_folder(self, name: str) -> Path:
        return self.work / "spans" / name / "kept" if name in self.span_sources else self.out / name

    def phases(self, group: str, members: list[DedupMember]) -> list:
        """The phases of one group in order, as callables named ``sign``, ``buckets``, ``cluster``, ``resolve``,
        ``filter``, ``sentences`` (the benchmark times them one by one)."""
        from functools import partial

        def named(name, fn, *args):
            call = partial(fn, *args)
            call.__name__ = name
            return call

        minhash = [named("buckets", self._buckets, group), named("cluster", self._cluster, group)]
        spans = [m for m in members if m.name in self.span_sources]
        return [
            named("sign", self._sign, group, members),
            *(minhash if self.spec.minhash.enabled else []),
            named("resolve", self._resolve, group, members),
            named("filter", lambda: self._each(self._filter, group, members)),
            *([named("sentences", lambda: self._each(self._spans, group, spans))] if spans else []),
        ]

    def _each(self, phase, group: str, members: list[DedupMember]) -> None:
        """``phase(group, m)`` for every member, side by side (each after the phases before, not after each other)."""
        with self.runner.parallel():
            for m in members:
                phase(group, m)

    def _sign(self, group: str, members: list[DedupMember]) -> None:
        from datatrove.pipeline.readers import JsonlReader

        from shardsmith.pipelines.minhash_signature import FastMinhashSignature

        root = self.work / group
        with self.runner.parallel():
            for m in members:
                pipeline = [JsonlReader(str(self.folders[m.name])), DocumentIndex(str(root / "index"), m.offset)]
                if self.spec.minhash.enabled:
                    pipeline.append(FastMinhashSignature(str(root / "sigs"), minhash_config(self.spec),
                                                         language=m.language, rank_offset=m.offset))
                self.runner.run(pipeline, m.files, self.logs / group / "sign" / m.name)

    def _buckets(self, group: str) -> None:
        from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets

        root, config = self.work / group, minhash_config(self.spec)
        buckets = MinhashDedupBuckets(str(root / "sigs"), str(root / "buckets"), config=config)
        self.runner.run([buckets], config.num_buckets, self.logs / group / "buckets")

    def _cluster(self, group: str) -> None:
        from datatrove.pipeline.dedup.minhash import MinhashDedupCluster

        root = self.work / group
        cluster = MinhashDedupCluster(str(root / "buckets"), str(root / "clusters"), config=minhash_config(self.spec),
                                      save_cluster_id=True)
        self.runner.run([cluster], 1, self.logs / group / "cluster")

    def _resolve(self, group: str, members: list[DedupMember]) -> None:
        root = self.work / group
        clusters = str(root / "clusters") if self.spec.minhash.enabled else None
        resolver = DuplicateResolver(str(root / "index"), clusters, str(root / "remove"), members,
                                     exact=self.spec.exact)
        self.runner.run([resolver], 1, self.logs / group / "resolve")

    def _filter(self, group: str, m: DedupMember) -> None:
        from datatrove.pipeline.readers import JsonlReader
        from datatrove.pipeline.writers import JsonlWriter

        rejected = RejectedJsonlWriter(str(self.rejected / m.name / DEDUP_STEP), DedupRecordAdapter(m.name, DEDUP_STEP))
        pipeline = [
            JsonlReader(str(self.folders[m.name])),
            DuplicateFilter(str(self.work / group / "remove"), m.offset, exclusion_writer=rejected),
            JsonlWriter(str(self.out / m.name), output_filename="${rank}.jsonl.gz"),
        ]
        self.runner.run(pipeline, m.files, self.logs / group / "filter" / m.name)

    def _spans(self, group: str, m: DedupMember) -> None:
        """C4's span dedup within one source, datatrove's SentenceDedup stages on the source's kept documents: a span
        of ``n_sentences`` sentences seen earlier in the source (datatrove's order: the smaller position in a file)
        is cut; a document left with fewer than ``min_doc_words`` words (or 3 sentences) is dropped. The changed and
        dropped documents, with the cut spans marked ``>>> <<<``, go to ``rejected/<source>/dedup_spans/``."""
        from datatrove.pipeline.dedup.sentence_dedup import (
            SentDedupConfig, SentenceDedupFilter, SentenceDedupSignature, SentenceFindDedups,
        )
        from datatrove.pipeline.readers import JsonlReader
        from datatrove.pipeline.writers import JsonlWriter

        from shardsmith.pipelines.minhash_signature import minhash_language

        sent = self.spec.sentences
        config = SentDedupConfig(n_sentences=sent.n_sentences, min_doc_words=sent.min_doc_words)
        language = minhash_language(m.language)
        root, logs, docs = self.work / "spans" / m.name, self.logs / group / "spans" / m.name, self.out / m.name
        # one task per dedup-filter task (datatrove's reader gives task r the r-th file, or none when that task
        # kept nothing), so the count is known before the filter ran (slurm submits it ahead)
        tasks = m.files
        sign = SentenceDedupSignature(str(root / "sigs"), config=config, language=language)
        self.runner.run([JsonlReader(str(docs)), sign], tasks, logs / "sign")
        self.runner.run([SentenceFindDedups(str(root / "sigs"), str(root / "dups"), config=config)], 1, logs / "find")
        adapter = RejectedRecordAdapter(m.name, SPAN_STEP)
        rejected = RejectedJsonlWriter(str(self.rejected / m.name / SPAN_STEP), adapter)
        pipeline = [
            JsonlReader(str(docs)),
            SentenceDedupFilter(str(root / "dups"), config=config, exclusion_writer=rejected, language=language),
            JsonlWriter(str(self.kept_folder(m.name)), output_filename="${rank}.jsonl.gz"),
        ]
        self.runner.run(pipeline, tasks, logs / "filter")

    def span_counts(self, group: str, name: str) -> dict[str, int]:
        """Sentence-span dedup of one source: sentences seen, sentences cut, documents left too short (dropped)."""
        from shardsmith.pipelines.stats import rank_stats

        stats = rank_stats(self.logs / group / "spans" / name / "filter")
        read, written = stats[0]["stats"].get("documents", 0), stats[2]["stats"].get("total", 0)
        return {"sentences": stats[1]["stats"].get("original_sentences", 0),
                "sentences_cut": stats[1]["stats"].get("removed_sentences", 0), "dropped": read - written,
                "kept": written}

    def counts(self) -> dict[str, dict[str, int]]:
        """Per source: documents read, removed as exact / near duplicates, of which duplicates of another source's
        document, kept."""
        import pyarrow.parquet as pq

        from shardsmith.pipelines.stats import rank_stats, step_counts

        out = {}
        for group, members in self.groups.items():
            for m in members:
                read, kept, _, reasons = step_counts(rank_stats(self.logs / group / "filter" / m.name)[1])
                cross = 0
                for fid in range(m.offset, m.offset + m.files):
                    table = pq.read_table(self.work / group / "remove" / f"{fid:05d}.parquet", columns=["duplicate_source"])
                    cross += sum(s != m.name for s in table.column(0).to_pylist())
                out[m.name] = {"read": read, "exact": reasons.get("exact_duplicate", 0),
                               "near": reasons.get("near_duplicate", 0), "of_other_sources": cross, "kept": kept}
                if m.name in self.span_sources:
                    out[m.name]["spans"] = self.span_counts(group, m.name)
        return out

    def info(self) -> dict:
        """What the manifest records: settings, keep order, groups, removals per source."""
        return {
            "enabled": True,
            "settings": self.spec.model_dump(mode="json"),
            "keep_order": [m.name for members in self.groups.values() for m in members],
            "groups": {g: [m.name for m in members] for g, members in self.groups.items()},
            "not_deduplicated": self.left_out,
            "removed": self.counts(),
        }


# ---------------------------------------------------------------------------------------------------- mix phase
def dedup_mix(build) -> None:
    """Deduplicate the active sources of a ``MixBuild`` after filtering: points the build at the kept documents, adds a
    ``dedup`` step to each source's counts and records ``build.dedup_info`` (the manifest's ``dedup``)."""
    from shardsmith.schemas.manifest import StepCount

    spec: DedupSpec = build.recipe.dedup
    if not spec.enabled:
        build.dedup_info = {"enabled": False, "settings": spec.model_dump(mode="json")}
        return
    folders = {s.name: build.documents_folder(s) for s in build.active}
    dedup = Deduplicator(spec, build.active, folders, build.work, build.out / "rejected", build.runner)
    build.documents.update(dedup.run())
    build.dedup_info = dedup.info()
    for name, c in build.dedup_info["removed"].items():
        reasons = {f"{k}_duplicate": c[k] for k in ("exact", "near") if c[k]}
        build.filter_counts[name].append(StepCount(step=DEDUP_STEP, read=c["read"], kept=c["kept"],
                                                   dropped=c["read"] - c["kept"], reasons=reasons))
        build.kept[name] = c["kept"]
        if "spans" in c:
            sp = c["spans"]
            build.filter_counts[name].append(StepCount(
                step=SPAN_STEP, read=c["kept"], kept=sp["kept"], dropped=sp["dropped"],
                reasons={"too_short_after_span_dedup": sp["dropped"]} if sp["dropped"] else {}))
            build.kept[name] = sp["kept"]
