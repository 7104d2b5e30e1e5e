"""The training recipe: a model, an engine configuration and an ordered list of stages.

Each stage reads built shard sets only (folders with ``manifest.json``), names its objective, its data with weights,
its hyper-parameters and where its weights come from (``init_from``). Stages hand each other plain HF weights.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, get_args

from pydantic import Field, field_validator, model_validator
from shardsmith.schemas.common import Strict, given, repeated


class ObjectiveRow(NamedTuple):
    """What the recipe needs to know of an objective (its behaviour lives in ``trainer/objectives.py``).

    reads: the rows it trains on by default (windows: fixed-length token windows; packed: whole documents packed into
    rows; pairs: preference sets, one completion per row, never packed); settings: the stage field holding its
    settings (None: it has none)."""

    reads: Literal["windows", "packed", "pairs"]
    settings: str | None = None


OBJECTIVE_ROWS: dict[str, ObjectiveRow] = {
    "clm": ObjectiveRow("windows"),
    "sft": ObjectiveRow("packed"),
    "mixce": ObjectiveRow("packed"),
    "dpo": ObjectiveRow("pairs", "dpo"),
    "rank": ObjectiveRow("pairs", "rank"),
    "kd": ObjectiveRow("packed", "kd"),
}
Objective = Literal["clm", "sft", "mixce", "dpo", "rank", "kd"]
IMPLEMENTED_OBJECTIVES = tuple(OBJECTIVE_ROWS)
assert set(get_args(Objective)) == set(OBJECTIVE_ROWS), "every objective of the literal has a row"


class ModelSpec(Strict):
    """The architecture a stage builds when it starts from scratch (``init_from: scratch``)."""

    preset: str | None = Field("tiny-gpt2", description="a name from shardsmith.trainer.models.PRESETS")
    path: str | None = Field(None, description="a local HF folder whose config (not weights) is used instead")
    config: dict[str, Any] = Field(default_factory=dict, description="overrides of the preset's config keys")
    pad_vocab_to_multiple_of: int = Field(1, ge=1, description="round the embedding rows up (64 helps GPUs)")
    attn_implementation: Literal["sdpa", "eager"] = "sdpa"

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if not self.preset and not self.path:
            raise ValueError("give a preset or a path")
        if self.path and self.preset and given(self, "preset"):
            raise ValueError("model.preset and model.path both given: path's config is used, preset ignored; give one")
        return self


class DataSet(Strict):
    path: str = Field(description="a shard-set folder (has manifest.json)")
    weight: float = Field(1.0, gt=0)


class DataSpec(Strict):
    sets: list[DataSet] = Field(min_length=1)
    sampling: Literal["random", "epoch"] | None = Field(
        None,
        description="random: windows/rows drawn with replacement, a pure function of (seed, step) (fgpt's sampling); "
        "epoch: a shuffled order per epoch. Default: random for clm, epoch for sft/mixce",
    )
    packing: bool | None = Field(
        None, description="pack whole documents into rows (default: on for sft/mixce, off for clm windows)"
    )
    document_masking: bool | None = Field(
        None,
        description="no attention across documents in a row, positions restart per document "
        "(default: on for packed rows, off for clm windows)",
    )
    validation_split: str = "validation"
    val_rows: int = Field(32, ge=0, description="fixed validation rows (taken once, same every evaluation)")


class OptimizerSpec(Strict):
    name: Literal["adamw"] = "adamw"
    kind: Literal["adamw", "muon"] = Field(
        "adamw", description="adamw: AdamW on every weight; muon: torch.optim.Muon on the 2-D weight matrices of the "
        "blocks, AdamW (lr, betas, eps, weight_decay below) on embeddings, the LM head, norms and biases (fgpt's "
        "split); muon needs engine zero_stage 0 and precision fp32 (ZeRO and DeepSpeed's mixed-precision optimizers "
        "hand the optimizer flat 1-D partitions, and Muon orthogonalises whole matrices)",
    )
    muon_lr: float = Field(0.02, gt=0, description="kind muon: Muon's peak lr (fgpt: 0.03); the schedule scales it "
                           "like lr")
    muon_momentum: float = Field(0.95, ge=0, lt=1, description="kind muon: Muon's (Nesterov) momentum")
    lr: float = Field(3e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = Field(0.1, ge=0)
    grad_clip: float = Field(1.0, ge=0, description="0 disables clipping")

    @model_validator(mode="after")
    def _muon_keys(self) -> OptimizerSpec:
        if self.kind != "muon" and (extra := given(self, "muon_lr", "muon_momentum")):
            raise ValueError(f"optimizer.{extra[0]} applies to kind muon only (kind is '{self.kind}')")
        return self


class ScheduleSpec(Strict):
    kind: Literal["cosine", "wsd", "constant", "linear"] = "cosine"
    warmup_steps: int | None = Field(None, ge=0)
    warmup_ratio: float | None = Field(None, ge=0, le=1)
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="floor of cosine/linear/wsd decay, as a fraction of lr")
    decay_ratio: float = Field(0.2, ge=0, le=1, description="wsd: fraction of steps in the final decay")
    decay_shape: Literal["linear", "sqrt", "cosine"] = Field("linear", description="wsd decay shape")

    @model_validator(mode="after")
    def _one_warmup(self) -> ScheduleSpec:
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError("give warmup_steps or warmup_ratio, not both")
        inert = {"constant": ("min_lr_ratio", "decay_ratio", "decay_shape"), "cosine": ("decay_ratio", "decay_shape"),
                 "linear": ("decay_ratio", "decay_shape"), "wsd": ()}[self.kind]
        if extra := given(self, *inert):
            raise ValueError(f"schedule.{extra[0]} does nothing for kind '{self.kind}' (remove it)")
        return self


class EngineSpec(Strict):
    """How DeepSpeed is configured. The JSON is generated from these fields; ``config_file`` may override keys."""

    zero_stage: int = Field(2, ge=0, le=3)
    precision: Literal["bf16", "fp16", "fp32", "auto"] = Field(
        "auto", description="auto: bf16 on CUDA, fp32 on CPU"
    )
    overlap_comm: bool = False
    reduce_bucket_size: int = Field(int(5e8), ge=1)
    allgather_bucket_size: int = Field(int(5e8), ge=1)
    offload_optimizer: bool = False
    attention: Literal["dense", "flex", "varlen", "auto"] = Field(
        "auto",
        description="packed rows' per-document attention: dense (an L×L block-causal mask), flex (FlexAttention block "
        "mask; trains on CUDA only), varlen (documents as variable-length sequences: FlashAttention varlen on CUDA in "
        "bf16/fp16, one SDPA call per document otherwise); auto: flex on CUDA, varlen on CPU",
    )
    batch: Literal["per_rank", "global"] = Field(
        "per_rank",
        description="per_rank: a stage's micro_batch_size x grad_accum is each process's share (global batch = that x "
        "world size); global: it is the global batch at any world size: each process takes 1/world of it, the "
        "micro-batch kept when it divides that share (else its largest divisor below), accumulation derived; an "
        "error when the world size does not divide it",
    )
    compile: bool = Field(False, description="torch.compile the model through DeepSpeed's engine.compile (GPU "
                                             "throughput; the first steps pay the compilation)")
    activation_checkpointing: bool = Field(
        False, description="recompute activations in backward for every stage (a stage's gradient_checkpointing "
        "turns it on for that stage alone): less memory for longer rows or larger micro-batches")
    config_file: str | None = Field(None, description="a DeepSpeed JSON whose keys override the generated ones")
    config: dict[str, Any] = Field(default_factory=dict, description="inline DeepSpeed keys, applied last")

    @model_validator(mode="after")
    def _zero_only(self) -> EngineSpec:
        """ZeRO-0 has no partitioned optimizer to offload and no buckets: these keys would be dropped silently."""
        if self.zero_stage == 0:
            if extra := given(self, "overlap_comm", "reduce_bucket_size", "allgather_bucket_size"):
                raise ValueError(f"engine.{extra[0]} applies to ZeRO stages 1-3 only (zero_stage is 0)")
            if self.offload_optimizer:
                raise ValueError("engine.offload_optimizer needs zero_stage 1, 2 or 3 (ZeRO-Offload)")
        return self


class DPOSpec(Strict):
    """Direct Preference Optimization over a preference set (pairs of adjacent documents, chosen first)."""

    beta: float = Field(0.1, gt=0, description="strength of the KL anchor to the reference (T1B, Steel: 0.1)")
    loss_type: Literal["sigmoid", "ipo", "hinge"] = Field(
        "sigmoid", description="sigmoid: DPO (Rafailov et al.); ipo: (margin - 1/(2 beta))^2; hinge: SLiC"
    )
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="sigmoid only: conservative DPO (cDPO) noise rate")
    logp: Literal["sum", "mean"] = Field(
        "sum", description="sequence log-prob of a completion: sum over its tokens (TRL) or their mean (rasbt ch07)"
    )
    sft_weight: float = Field(
        0.0, ge=0, description="adds weight x mean NLL of the chosen completion (RPO / LLaMA-Factory pref_ftx)"
    )
    reference: str = Field(
        "init", description="init: a frozen copy of the weights the stage starts from; or a local HF folder"
    )

    @model_validator(mode="after")
    def _smoothing_is_sigmoid_only(self) -> DPOSpec:
        if self.label_smoothing and self.loss_type != "sigmoid":
            raise ValueError(f"dpo.label_smoothing applies to loss_type sigmoid only (cDPO); '{self.loss_type}' "
                             "ignores it (remove it or use sigmoid)")
        return self


class RankSpec(Strict):
    """Memphis-CoT's ranking loss over a preference set, per pair: -s_c + weight · softplus(s_r - s_c), with s the
    length-normalised log-prob of an answer (mean over its tokens) and -s_c the chosen answer's mean cross-entropy.
    No reference model."""

    weight: float = Field(0.25, ge=0, description="weight of the rank term beside the chosen answer's CE "
                          "(Memphis-CoT: 0.25)")


class KDSpec(Strict):
    """Logit distillation from a local teacher on the stage's packed rows and loss masks, per loss token:
    alpha · T² · KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) · CE(student, label)."""

    teacher: str = Field(description="a local HF model folder whose tokenizer equals the shard set's (checked before "
                         "any work); frozen, eval mode, in the training precision")
    temperature: float = Field(2.0, gt=0, description="T: both distributions are softened by T; the KL term is "
                               "scaled by T² so its gradient keeps the CE term's scale")
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the KL term; 1 - alpha weighs the CE on the labels")


class LoraSpec(Strict):
    """LoRA adapters through peft (Hu et al. 2021): the stage trains only B (r x out) and A (in x r) per targeted
    module, the update being B·A·(alpha/r); checkpoints hold the adapters, ``hf/<tag>`` the merged weights and
    ``hf/<tag>-adapter`` the adapter alone (peft's format)."""

    r: int = Field(8, ge=1, description="rank of the update")
    alpha: float = Field(16.0, gt=0, description="the update is scaled by alpha / r")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the adapter's input (training only)")
    targets: list[str] | None = Field(
        None, min_length=1, description="module names that get adapters (peft target_modules, e.g. [c_attn, c_proj] "
        "for GPT-2, [q_proj, v_proj] for LLaMA); default: peft's choice for the architecture",
    )


class MergeSpec(Strict):
    """After training, blend the stage's final weights (the base, t=0) with another checkpoint (t=1), mergekit's
    convention; the blend (``hf/merged``) is what ``previous`` / ``stage:NAME`` hand to later stages. FF_3.13: SLERP
    t=0.10 toward its parent; Memphis-CoT's moving average: t=0.99 toward the previous round's weights."""

    toward: str = Field(
        "parent", description="parent (the weights the stage started from) | stage:NAME[/step-N] | a local HF folder"
    )
    t: float = Field(ge=0, le=1, description="weight of `toward` in the blend")
    method: Literal["slerp", "linear"] = "slerp"


# What ``shardsmith eval`` reads, per benchmark: (folder under the benchmark root, {split: file or folder under it},
# default split). A copy of evaluation/benchmarks.py's BENCHMARKS rows (the trainer checks an ``eval:`` section before
# any work and must not import evaluation/, which imports builders/); tests/test_sweeps.py checks the two agree.
EVAL_BENCHMARK_FILES: dict[str, tuple[str, dict[str, str], str]] = {
    "mmlu": ("mcq_mmlu", {"test": "test", "dev": "dev"}, "test"),
    "cmmlu": ("mcq_cmmlu", {"test": "test", "dev": "dev"}, "test"),
    "ceval": ("mcq_ceval", {"val": "val", "dev": "dev"}, "val"),
    "arc_easy": ("mcq_arc", {"validation": "ARC-Easy/validation"}, "validation"),
    "arc_challenge": ("mcq_arc", {"validation": "ARC-Challenge/validation"}, "validation"),
    "hellaswag": ("mcq_hellaswag_olmes", {"validation": "."}, "validation"),
    "truthfulqa": ("mcq_truthfulqa", {"validation": "TruthfulQA.csv"}, "validation"),
    "gsm8k": ("mcq_gsm8k", {"test": "test.jsonl", "train": "train.jsonl"}, "test"),
    "truth_list": (".", {"validation": "mcq_truthfulqa/TruthfulQA.csv", "custom": "truth_list"}, "validation"),
    "surgical": (".", {"custom": "surgical"}, "validation"),
}
# the split few-shot examples come from (None: other items of the evaluated split), as in evaluation's registry
EVAL_FEWSHOT_SPLIT = {"mmlu": "dev", "cmmlu": "dev", "ceval": "dev", "gsm8k": "train"}


class EvalSpec(Strict):
    """Benchmark sweep of a stage: the start weights (step 0), every ``every`` steps and the last step are exported
    to HF and scored by ``shardsmith eval`` (a subprocess: the trainer does not import evaluation/) into
    ``OUT/<stage>/eval/step-N/``."""

    benchmarks: list[str] = Field(min_length=1, description="names known to `shardsmith eval` (mmlu, cmmlu, ...)")
    data: str | None = Field(None, description="a folder holding mcq_* folders; default $SHARDSMITH_BENCHMARKS")
    split: str | None = Field(None, description="default: each benchmark's own (mmlu test, ceval val, ...)")
    shots: int = Field(0, ge=0)
    every: int | None = Field(None, ge=1, description="score every N steps (default: the stage's save_every)")
    limit: int | None = Field(None, ge=1, description="at most N items per benchmark file (per subject)")
    batch_size: int = Field(32, ge=1)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"

    @field_validator("benchmarks")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        for n in names:
            if n not in EVAL_BENCHMARK_FILES:
                raise ValueError(f"unknown benchmark '{n}' (known: {', '.join(EVAL_BENCHMARK_FILES)})")
        if dup := repeated(names):
            raise ValueError(f"benchmark named twice: {', '.join(dup)}")
        return names

    @model_validator(mode="after")
    def _split_exists(self) -> EvalSpec:
        for n in self.benchmarks if self.split else ():
            if self.split not in EVAL_BENCHMARK_FILES[n][1]:
                raise ValueError(f"split '{self.split}': {n} has no such split "
                                 f"(its splits: {', '.join(EVAL_BENCHMARK_FILES[n][1])})")
        return self


def metric_benchmark(metric: str) -> str:
    """``mmlu`` of a metric reference ``BENCH[/DOMAIN-OR-SUBJECT][@METRIC]`` (e.g. ``mmlu/stem``,
    ``hellaswag@acc_text``)."""
    return metric.split("@")[0].split("/")[0]


class GuardSpec(Strict):
    """Reject a candidate when more than ``max_failing`` of ``metrics`` sit below the stage's start (step 0) by more
    than ``max_drop_pp`` percentage points (FF_3.13: a +0.12 pp MMLU checkpoint that regressed weak domains)."""

    metrics: list[str] = Field(min_length=1, description="metric references, e.g. mmlu/stem, mmlu/humanities")
    max_drop_pp: float = Field(0.0, ge=0, description="allowed drop below the start, in percentage points")
    max_failing: int = Field(0, ge=0, description="how many of `metrics` may exceed the drop")


class SelectSpec(Strict):
    """Which scored checkpoint the stage hands on (its champion): the best ``metric`` among the candidates that pass
    every guard. ``init_from: previous`` / ``stage:NAME`` of a later stage then start from it, and a ``merge`` step
    blends it."""

    metric: str = Field(description="BENCH[/DOMAIN-OR-SUBJECT][@METRIC], e.g. mmlu, mmlu/stem, hellaswag")
    mode: Literal["max", "min"] = "max"
    guards: list[GuardSpec] = Field(default_factory=list)
    include_start: bool = Field(False, description="the start weights (step 0) may win too")
    fallback: Literal["start", "final"] = Field(
        "start", description="the handoff when no candidate passes the guards: the start weights or the last step")
    alpha: float = Field(0.05, gt=0, lt=1, description="paired tests: p >= alpha is reported as within noise")


class StageSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    objective: Objective = "clm"
    data: DataSpec
    init_from: str | None = Field(
        None,
        description="scratch | previous | stage:NAME[/step-N] | a local HF folder; "
        "default: scratch for the first stage, previous otherwise",
    )
    seq_len: int = Field(256, ge=8)
    micro_batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1)
    epochs: float | None = Field(None, gt=0)
    stop_at_step: int | None = Field(None, ge=1, description="early stop: end the stage here (schedule unchanged)")
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    engine: EngineSpec | None = Field(None, description="defaults to the recipe's engine")
    save_every: int | None = Field(None, ge=1, description="DeepSpeed checkpoint + HF export every N steps")
    eval_every: int | None = Field(None, ge=1)
    log_every: int = Field(1, ge=1)
    keep_checkpoints: int | None = Field(2, ge=1, description="DeepSpeed checkpoints kept (HF exports are all kept)")
    seed: int | None = Field(None, description="defaults to the recipe's seed")
    neftune_alpha: float | None = Field(None, gt=0)
    mixce_ratio: float = Field(1.0, ge=0, le=1, description="mixce: eta (1 = plain MLE)")
    freeze_embeddings: bool = False
    gradient_checkpointing: bool = False
    export_dtype: Literal["auto", "bf16", "fp32", "fp16"] = "auto"
    dpo: DPOSpec | None = None
    rank: RankSpec | None = Field(None, description="objective rank: its settings (default weight 0.25)")
    kd: KDSpec | None = Field(None, description="objective kd: the teacher, temperature and alpha")
    lora: LoraSpec | None = Field(None, description="train LoRA adapters instead of the weights (any objective)")
    merge: MergeSpec | None = None
    eval: EvalSpec | None = Field(None, description="benchmark sweep over the stage's checkpoints")
    select: SelectSpec | None = Field(None, description="champion rule over the sweep (needs eval)")

    @model_validator(mode="after")
    def _length(self) -> StageSpec:
        if (self.max_steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of max_steps or epochs")
        if self.stop_at_step is not None and self.max_steps is not None and self.stop_at_step > self.max_steps:
            raise ValueError("stop_at_step is after max_steps")
        return self

    @model_validator(mode="after")
    def _objective_settings(self) -> StageSpec:
        """Each objective's settings block belongs to it alone; pair objectives read unpacked rows, no token options."""
        row = OBJECTIVE_ROWS[self.objective]
        for other in OBJECTIVE_ROWS.values():
            field = other.settings
            if field and field != row.settings and getattr(self, field) is not None:
                raise ValueError(f"`{field}` settings given but the objective is '{self.objective}'")
        if row.settings and getattr(self, row.settings) is None:
            settings_cls = type(self).model_fields[row.settings].annotation.__args__[0]
            if any(f.is_required() for f in settings_cls.model_fields.values()):
                raise ValueError(f"objective {self.objective} needs its `{row.settings}` settings "
                                 f"({', '.join(k for k, f in settings_cls.model_fields.items() if f.is_required())})")
            setattr(self, row.settings, settings_cls())
        if row.reads == "pairs" and self.data.packing:
            raise ValueError(f"{self.objective} rows are never packed: each row is one completion "
                             "(remove data.packing)")
        if row.reads == "pairs" and (self.neftune_alpha or self.mixce_ratio != 1.0):
            raise ValueError(f"neftune_alpha and mixce_ratio are token-objective settings; a {self.objective} stage "
                             "ignores them")
        if self.objective != "mixce" and self.mixce_ratio != 1.0:
            raise ValueError(f"mixce_ratio applies to objective mixce only; '{self.objective}' ignores it")
        return self

    @model_validator(mode="after")
    def _checkpoint_keys(self) -> StageSpec:
        if given(self, "keep_checkpoints") and self.save_every is None:
            raise ValueError("keep_checkpoints does nothing without save_every (no checkpoints are written)")
        return self

    @model_validator(mode="after")
    def _sweep(self) -> StageSpec:
        if self.eval is not None and self.eval.every is None and self.save_every is None:
            raise ValueError("eval needs eval.every or save_every (the steps whose checkpoints are scored)")
        if self.select is None:
            return self
        if self.eval is None:
            raise ValueError("select needs an eval section (the scores it selects by)")
        refs = [("select.metric", self.select.metric)] + [
            (f"select.guards.{i}.metrics", m) for i, g in enumerate(self.select.guards) for m in g.metrics]
        for where, ref in refs:
            if metric_benchmark(ref) not in self.eval.benchmarks:
                raise ValueError(f"{where}: '{ref}' names benchmark '{metric_benchmark(ref)}', which eval does not "
                                 f"score (eval.benchmarks: {', '.join(self.eval.benchmarks)})")
        return self

    @property
    def reads(self) -> str:
        return OBJECTIVE_ROWS[self.objective].reads

    @property
    def sampling(self) -> str:
        return self.data.sampling or ("random" if self.reads == "windows" else "epoch")

    @property
    def packing(self) -> bool:
        if self.reads == "pairs":
            return False
        return self.data.packing if self.data.packing is not None else self.reads == "packed"

    @property
    def document_masking(self) -> bool:
        return self.data.document_masking if self.data.document_masking is not None else self.packing


class TrainRecipe(Strict):
    name: str
    seed: int = 1234
    model: ModelSpec = Field(default_factory=ModelSpec)
    engine: EngineSpec = Field(default_factory=EngineSpec)
    stages: list[StageSpec] = Field(min_length=1)
    notes: str | None = None

    @field_validator("stages")
    @classmethod
    def _unique(cls, stages: list[StageSpec]) -> list[StageSpec]:
        dup = repeated([s.name for s in stages])
        if dup:
            raise ValueError(f"stage names must be unique: {', '.join(dup)}")
        return stages

    @model_validator(mode="after")
    def _chain(self) -> TrainRecipe:
        names = [s.name for s in self.stages]
        for i, s in enumerate(self.stages):
            src = s.init_from
            if i == 0 and src == "previous":
                raise ValueError(f"stages.{s.name}.init_from: the first stage has no previous stage")
            if src and src.startswith("stage:"):
                ref = src[len("stage:"):].split("/")[0]
                if ref not in names[:i]:
                    raise ValueError(f"stages.{s.name}.init_from: '{ref}' is not an earlier stage")
            if s.merge is None:
                continue
            toward = s.merge.toward
            if toward == "parent" and (src == "scratch" or (i == 0 and not src)):
                raise ValueError(f"stages.{s.name}.merge.toward: 'parent' needs a stage that starts from a checkpoint "
                                 "(this one starts from scratch)")
            if toward.startswith("stage:") and toward[len("stage:"):].split("/")[0] not in names[:i]:
                raise ValueError(f"stages.{s.name}.merge.toward: '{toward}' is not an earlier stage")
        return self

    def stage(self, name: str) -> StageSpec:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage named '{name}' (stages: {', '.join(s.name for s in self.stages)})")
