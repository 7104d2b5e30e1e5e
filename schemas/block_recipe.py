"""Block recipes: ``shardsmith build RECIPE.yaml`` — a recipe names its ``kind`` and is validated by that kind's model.

Kinds: ``sft`` (conversations), ``preference`` (prompt + chosen + rejected pairs for DPO), ``mcq``, ``cot``,
``repair``, ``distill`` and ``surgical``. A kind is a model here (one row in ``BLOCK_KINDS``) and one row in ``builders/kinds.py``.

An SFT block::

    kind: sft
    name: steel-sft
    seed: 666
    tokenizer: {name: qwen, eos_token: "<|im_end|>"}
    template: qwen                      # a built-in name, {path: my_template.yaml}, or an inline TemplateDef
    validation: {fraction: 0.01}
    filters:                            # applied to every source unless the source overrides a key
      language: {keep: [zh], by: label, label_values: [zh-cn]}
      length: {max_tokens: 767}
      dedup: {exact: true, near: false}
    sources:
      - {name: infinity, paths: [${INFINITY_DIR}], shape: infinity, language: zh}
      - {name: ruozhiba, paths: [ruozhiba_qa.json], language: zh}
    self_cognition: {name: Steel-LLM, author: zhanshijinwat, templates: [emollm]}
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .answer_forms import FORMS, parse_spec
from .common import Strict, TokenizerSpec
from .decontam import DecontamSpec
from .distill import PoolSpec, TeacherSpec


class TemplateDef(Strict):
    """A chat template as data. Every piece is literal text; ``{content}`` marks where the message goes.

    Loss: everything is no-loss except, in each assistant piece, ``{content}`` and the text after it (the end
    marker). Rendering: ``prefix`` + for each message its piece, with ``separator`` after every message but the
    last (no loss).
    """

    name: str
    prefix: str = Field("", description="start of every document (no loss)")
    system: str | None = Field(None, description="system piece, e.g. '### System:\\n{content}\\n'; null: no slot")
    default_system: str | None = Field(None, description="system text used when the conversation has none")
    system_fallback: Literal["prepend_user", "drop", "error"] = Field(
        "prepend_user", description="template without a system slot and a conversation with a system message"
    )
    system_join: str = "\n\n"
    user: str = Field(description="user piece, e.g. '<|user|>\\n{content}\\n<|end|>'")
    assistant: str = Field(description="assistant piece; text after {content} is the end marker and carries loss")
    separator: str = Field("", description="between consecutive messages (no loss)")
    special_tokens: list[str] = Field(default_factory=list, description="markers added to the tokenizer, one id each")
    max_turns: int | None = Field(None, ge=1, description="assistant turns allowed (fgpt: 1); more -> dropped")
    description: str | None = None

    @field_validator("user", "assistant")
    @classmethod
    def _has_content(cls, v: str) -> str:
        if v.count("{content}") != 1:
            raise ValueError("must contain {content} exactly once")
        return v

    @field_validator("system")
    @classmethod
    def _system_content(cls, v: str | None) -> str | None:
        if v is not None and v.count("{content}") != 1:
            raise ValueError("must contain {content} exactly once")
        return v


class TemplateRef(Strict):
    path: str = Field(description="a YAML file holding a TemplateDef; relative to the recipe")


class LanguageFilter(Strict):
    keep: list[str] = Field(description="ISO 639-1 codes to keep, e.g. [zh]")
    by: Literal["fasttext", "label", "label_or_fasttext"] = Field(
        "fasttext",
        description="fasttext: lid.176 on user+assistant text; label: the dataset's own language label; "
        "label_or_fasttext: the label when a record has one, else fastText. fastText runs on labelled records "
        "too (for the agreement report) unless by=label and report_agreement=false",
    )
    min_confidence: float = Field(0.5, ge=0, le=1, description="a turn below it counts as 'unknown'")
    rule: Literal["char_share", "every_turn"] = Field(
        "char_share",
        description="char_share: characters of turns detected in `keep` / all characters >= min_share; "
        "every_turn: every user and assistant turn must be detected in `keep`",
    )
    min_share: float = Field(0.5, ge=0, le=1)
    roles: list[Literal["user", "assistant", "system"]] = Field(default_factory=lambda: ["user", "assistant"])
    min_turn_chars: int = Field(
        0, ge=0, description="every_turn: turns shorter than this (after stripping) are not judged"
    )
    ignore_unknown: bool = Field(
        True, description="char_share: turns detected below min_confidence (code, mixed lines) leave the denominator"
    )
    script_fallback: float | None = Field(
        0.5,
        description="a low-confidence turn whose Han characters are at least this share of its letters counts as zh "
        "(fastText is unsure on classical Chinese, poems and short mixed lines); null: off",
    )
    label_values: list[str] | None = Field(
        None, description="label mode: raw label values kept (Steel: [zh-cn]); default: label's prefix in `keep`"
    )
    report_agreement: bool = True


class LengthFilter(Strict):
    max_chars_user: int | None = Field(None, ge=1, description="each user turn (fgpt: 999, i.e. < 1000)")
    max_chars_assistant: int | None = Field(None, ge=1, description="each assistant turn")
    max_chars_total: int | None = Field(None, ge=1, description="all turns' content together")
    min_chars_assistant: int = Field(1, ge=0, description="assistant turns shorter than this are 'empty_turn'")
    max_tokens: int | None = Field(None, ge=1, description="tokens with the target tokenizer (Steel: 767, i.e. < 768)")
    count_tokens_of: Literal["content", "rendered"] = Field(
        "content", description="content: the turns' text concatenated (Steel); rendered: the templated document"
    )
    max_turns: int | None = Field(None, ge=1, description="assistant turns per conversation")


class DedupFilter(Strict):
    exact: bool = Field(True, description="normalised-text hash over all turns (NFKC, case, whitespace, punctuation)")
    near: bool = Field(False, description="MinHash LSH over character shingles")
    threshold: float = Field(0.85, gt=0, le=1, description="near: estimated Jaccard to call a duplicate")
    num_perm: int = Field(128, ge=16, le=1024)
    shingle: int = Field(5, ge=1, le=32, description="characters per shingle (works for Chinese too)")
    scope: Literal["global", "source"] = Field("global", description="across all sources (first kept) or per source")


class StructureFilter(Strict):
    drop_ends_with_user: bool = Field(True, description="false: trim the trailing user turn(s) instead")
    drop_truncated: bool = Field(True, description="assistant turn with an unclosed ``` fence")
    require_alternation: bool = True
    leading_assistant: Literal["drop", "trim"] = Field(
        "drop",
        description="a conversation whose first turn (after the system prompt) is the assistant's, as ShareGPT "
        "fragments are: drop it (LLaMA-Factory; reason starts_with_assistant), or trim the leading assistant turn(s) "
        "and keep the rest if it is still a valid conversation (FastChat; counted as trimmed in the manifest)",
    )


class Filters(Strict):
    structure: StructureFilter = Field(default_factory=StructureFilter)
    language: LanguageFilter | None = None
    length: LengthFilter = Field(default_factory=LengthFilter)
    dedup: DedupFilter | None = Field(default_factory=DedupFilter)


class SourceOverrides(Strict):
    """Per-source filter keys; a key given here replaces the block-level one for this source."""

    structure: StructureFilter | None = None
    language: LanguageFilter | Literal["none"] | None = None
    length: LengthFilter | None = None


class SftSource(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    paths: list[str] = Field(default_factory=list, description="files, folders or globs; relative to the recipe")
    hf: dict[str, str] | None = Field(None, description="{dataset, config, split}: an HF hub dataset, streamed")
    shape: str = Field("auto", description="see builders/importers.py; auto detects per file")
    language: str | None = Field(None, description="the source's declared language; the truth for precision/recall")
    id_field: str | None = None
    label_field: str | None = Field(None, description="the dataset's own language label (infinity: langdetect)")
    options: dict[str, Any] = Field(default_factory=dict, description="importer options: input_join, strip, ...")
    system: str | None = Field(None, description="system message added to every conversation of this source")
    limit: int | None = Field(None, ge=1, description="read at most this many records (the first N)")
    sample: int | None = Field(None, ge=1, description="keep at most N after filtering (seeded sample)")
    sample_rate: float | None = Field(None, gt=0, le=1, description="keep this share after filtering (Steel 70/340)")
    count: int | None = Field(
        None, ge=1, description="exactly this many training rows after filtering, or the build fails naming the "
        "source and the shortfall (FF repair blocks: 10,714 / 929 / 3,562). Which rows: the first that pass every "
        "filter in the source's records shuffled by seed and source name; the build judges a prefix of that order "
        "(2 x the rows + 64) and reads on only when it falls short (builders.block.VisitOrder)"
    )
    filters: SourceOverrides = Field(default_factory=SourceOverrides)

    @model_validator(mode="after")
    def _where(self) -> "SftSource":
        if not self.paths and not self.hf:
            raise ValueError("a source needs `paths` or `hf`")
        if self.hf and "dataset" not in self.hf:
            raise ValueError("`hf` needs a `dataset` key")
        if self.count is not None and (self.sample is not None or self.sample_rate is not None):
            raise ValueError("`count` is an exact number; it cannot be combined with `sample` or `sample_rate`")
        return self


class SelfCognition(Strict):
    name: str = Field(description="the model's name, substituted into the templates")
    author: str = Field(description="the maker, substituted into the templates")
    role_zh: str = Field("人工智能助手", description="replaces EmoLLM's 中文领域心理健康助手 / 心理咨询师")
    role_en: str = Field("AI assistant", description="replaces EmoLLM's 'psychological counselor'")
    templates: list[str] = Field(
        default_factory=lambda: ["builtin"],
        description="builtin (zh+en, shipped), emollm / identity (the files under `data_dir`), or paths to files",
    )
    data_dir: str | None = Field(None, description="folder holding sft_self_cognition_* (default $SHARDSMITH_DATA)")
    languages: list[str] = Field(default_factory=lambda: ["zh", "en"])
    repeat: int = Field(1, ge=1, le=100, description="copies of each row (self-cognition sets are tiny)")
    source_name: str = "self_cognition"


class Validation(Strict):
    fraction: float = Field(0.02, ge=0, lt=1, description="conversations held out (seeded, by conversation)")
    min_documents: int = Field(1, ge=0, description="at least this many when fraction > 0 and enough are kept")
    count: int | None = Field(
        None, ge=1, description="exactly this many held out (replaces `fraction`); with source `count`s it is drawn "
        "from the sources in proportion to their counts, on top of them (FF repair: 801 beside 15,205 training rows)"
    )


class SftBlockRecipe(Strict):
    kind: Literal["sft"]
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    seed: int = 42
    tokenizer: TokenizerSpec = Field(default_factory=TokenizerSpec)
    template: str | TemplateRef | TemplateDef = "chatml"
    filters: Filters = Field(default_factory=Filters)
    sources: list[SftSource] = Field(default_factory=list)
    self_cognition: SelfCognition | None = None
    validation: Validation = Field(default_factory=Validation)
    write_rejected: bool = Field(True, description="DIR/rejected/<source>.jsonl.gz: every drop with its reason")
    loss: Literal["assistant", "all"] = Field(
        "assistant", description="assistant: loss on the replies (+ end markers) only (T1B, Memphis, Steel); all: on "
        "every token, prompt included (fgpt's and rasbt's main collate)"
    )
    decontaminate: DecontamSpec = Field(
        default_factory=DecontamSpec, description="benchmark decontamination (schemas/decontam.py); on by default, "
        "`false` opts out"
    )
    on_error: Literal["drop", "fail"] = Field(
        "drop", description="a record the importer cannot use (missing answer key, empty option, malformed row): drop "
        "it with a counted reason, or stop the build naming the file, record and reason"
    )
    pii: bool = Field(
        False, description="replace e-mail and public IPv4/IPv6 addresses in every message (the mixes' pii step, "
        "pipelines/pii.py) before rendering; replacements counted per source in the manifest's filters"
    )

    @model_validator(mode="after")
    def _sources(self) -> "SftBlockRecipe":
        if not self.sources and not self.self_cognition:
            raise ValueError("an SFT block needs at least one source or self_cognition")
        names = [s.name for s in self.sources] + ([self.self_cognition.source_name] if self.self_cognition else [])
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"source names must be unique: {', '.join(dup)}")
        counted = [s.name for s in self.sources if s.count is not None]
        exact_split = self.validation.count is not None and len(counted) == len(names)
        if counted and not exact_split and (self.validation.fraction > 0 or self.validation.count is not None):
            raise ValueError(f"`count` on {', '.join(counted)} promises exact training rows: hold out with "
                             "`validation.count` and a `count` on every source, or set `validation.fraction: 0`")
        return self


class PairFilter(Strict):
    """Checks only a pair has: both completions are filtered like SFT conversations as well."""

    drop_identical: bool = Field(True, description="chosen == rejected after whitespace normalisation")
    min_score_gap: float | None = Field(
        None, ge=0, description="drop pairs whose score_chosen - score_rejected is below this (UltraFeedback ties)"
    )
    score_fields: tuple[str, str] = Field(
        ("score_chosen", "score_rejected"), description="where the scores are: record or metadata keys"
    )


class PreferenceBlockRecipe(SftBlockRecipe):
    """A preference (DPO) block: the SFT block's sources, filters, template and split, applied to pairs.

    Each kept pair becomes two adjacent documents, chosen then rejected, with loss only on the completion; the
    validation split holds whole pairs. Sources use the preference shapes of ``builders/pairs.py``.
    """

    kind: Literal["preference"]  # type: ignore[assignment]
    pairs: PairFilter = Field(default_factory=PairFilter)

    @model_validator(mode="after")
    def _no_self_cognition(self) -> "PreferenceBlockRecipe":
        if self.self_cognition is not None:
            raise ValueError("self_cognition rows have no rejected answer; put them in an SFT block")
        if self.loss != "assistant":
            raise ValueError("loss: a preference block scores the answers only (the prompt is shared by both sides)")
        return self


class McqBlockRecipe(SftBlockRecipe):
    """Multiple-choice questions (``builders/mcq.py`` shapes: mmlu, mmlu_indexed, cmmlu, ceval, arc, hellaswag,
    hellaswag_olmes, truthfulqa, wanjuan) rendered in one ``style`` as user prompt -> assistant answer."""

    kind: Literal["mcq"]  # type: ignore[assignment]
    style: str = Field(description="steel, steel_cot, cmmlu_answer, english, answer_letter, letter_explanation, "
                       "sentence_completion (builders/mcq.py STYLES); a source's options.style overrides it")
    shuffle_options: bool = Field(False, description="permute each question's options (seeded by seed + id) and "
                                  "remap the answer letter")
    self_cognition: None = None


class CotBlockRecipe(SftBlockRecipe):
    """Question -> rationale -> answer (``builders/cot.py``): GSM8K, AQuA-RAT, FLAN CoT, and MCQ sources whose
    explanations become the rationale (C-Eval, WanJuan)."""

    kind: Literal["cot"]  # type: ignore[assignment]
    template: str | TemplateRef | TemplateDef = "tinycot"
    answer_format: Literal["tinycot", "answer_line"] = Field(
        "tinycot", description="tinycot: '{rationale}\\n\\n### Answer:\\n{answer}' (Memphis-CoT); answer_line: "
        "'{rationale}\\nAnswer: {answer}' (for chat templates without a rationale header)"
    )
    mcq_answer: Literal["option", "letter"] = Field(
        "option", description="multiple-choice answers as the option line '(C) 1120' or the bare letter"
    )
    self_cognition: None = None


class MixedSourcesRecipe(SftBlockRecipe):
    """A block whose sources mix families: each source's ``shape`` says which (an MCQ shape is rendered in ``style``,
    a CoT shape writes the rationale then ``answer_format``, any SFT shape is taken as is)."""

    style: str = Field("answer_letter", description="how MCQ sources are rendered (see McqBlockRecipe.style)")
    shuffle_options: bool = False
    answer_format: Literal["tinycot", "answer_line"] = "answer_line"
    mcq_answer: Literal["option", "letter"] = "option"
    self_cognition: None = None


class RepairBlockRecipe(MixedSourcesRecipe):
    """Knowledge repair (FF_3.13 stage 7): blocks of MCQ (A), short factual answers (B) and numeric micro-reasoning
    (D), each a source with an exact ``count``, plus an exact held-out ``validation.count``. Factual answers: an MCQ
    source with ``options.style: answer_text`` (TruthfulQA's best answer), bounded by ``max_chars_assistant``."""

    kind: Literal["repair"]  # type: ignore[assignment]

    @model_validator(mode="after")
    def _exact(self) -> "RepairBlockRecipe":
        missing = [s.name for s in self.sources if s.count is None]
        if missing:
            raise ValueError(f"a repair block states the count of every block: no `count` on {', '.join(missing)}")
        if self.validation.count is None:
            raise ValueError("a repair block holds out an exact number of rows: set `validation.count`")
        return self


class DistillBlockRecipe(MixedSourcesRecipe):
    """Sequence-level distillation (FF_3.13 stage 4): a question pool drawn from the sources by ``pool.shares``
    (exact counts), each question answered by the ``teacher`` (a file of outputs, or a local HF model run here);
    the sources' own answers are dropped. Then rendered and written like an SFT block."""

    kind: Literal["distill"]  # type: ignore[assignment]
    pool: PoolSpec
    teacher: TeacherSpec

    @model_validator(mode="after")
    def _shares_name_sources(self) -> "DistillBlockRecipe":
        names = [s.name for s in self.sources]
        unknown = [k for k in self.pool.shares if k not in names]
        unshared = [n for n in names if n not in self.pool.shares]
        if unknown or unshared:
            raise ValueError("pool.shares must name every source once: "
                             + "; ".join(([f"no source {', '.join(unknown)}"] if unknown else [])
                                         + ([f"no share for {', '.join(unshared)}"] if unshared else [])))
        return self


class SurgicalSource(SftSource):
    """A source of a surgical block: one shape read, one answer form written, an exact ``count``."""

    form: str = Field(description="the strict answer form of its targets: yes_no, single_letter, exact_n_list, "
                      "numeric_only (schemas/answer_forms.py FORMS)")
    spec: dict[str, Any] = Field(
        default_factory=dict, description="the form's options (answer_forms spec fields, e.g. {n: 3, marker: '1.'} "
        "for exact_n_list, {thousands: false} for numeric_only); single_letter takes its letters from each question"
    )
    answer: Literal["Yes", "No"] | None = Field(
        None, description="yes_no only: Yes proposes a correct answer, No an incorrect one (two sources with equal "
        "counts make the balanced half/half block)"
    )

    @field_validator("answer", mode="before")
    @classmethod
    def _yaml_bool(cls, answer: Any) -> Any:
        """YAML 1.1 reads an unquoted ``Yes`` / ``No`` as true / false."""
        return {True: "Yes", False: "No"}.get(answer, answer) if isinstance(answer, bool) else answer

    @field_validator("form")
    @classmethod
    def _form(cls, form: str) -> str:
        if form not in FORMS:
            raise ValueError(f"unknown answer form {form!r}; known: {', '.join(FORMS)}")
        return form

    @field_validator("spec")
    @classmethod
    def _spec(cls, spec: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        form = info.data.get("form")
        if form is None:  # the form itself failed; its error is reported
            return spec
        if form == "single_letter" and "letters" in spec:
            raise ValueError("single_letter: the allowed letters are each question's own options; drop `letters`")
        parse_spec(form, spec)  # FormError (a ValueError) names the form and the spec field
        return spec

    @model_validator(mode="after")
    def _answer(self) -> "SurgicalSource":
        if self.form == "yes_no" and self.answer is None:
            raise ValueError("form yes_no needs `answer: Yes` or `answer: No` (one polarity per source)")
        if self.form != "yes_no" and self.answer is not None:
            raise ValueError(f"`answer` is for form yes_no only, not {self.form}")
        if self.count is None:
            raise ValueError("a surgical source states its exact `count`")
        return self


class SurgicalBlockRecipe(SftBlockRecipe):
    """Output discipline (FF_3.13 stage 6): targets rewritten to a strict answer form (``builders/surgical.py``).

    Each source reads one shape (an MCQ shape -> single_letter, a CoT shape such as gsm8k -> numeric_only, truthfulqa
    -> yes_no or exact_n_list), names its ``form`` and ``spec`` and an exact ``count``. yes_no is balanced: the
    ``answer: Yes`` sources' counts must equal the ``answer: No`` ones'. The split keeps the counts exact: set
    ``validation.count`` (drawn from the sources in proportion to their counts, on top of them) or
    ``validation.fraction: 0``. Every kept item's ``{form, spec, expected}`` is written to
    ``reports/documents.jsonl`` (one row per document, in on-disk order) so its answer can be scored.
    """

    kind: Literal["surgical"]  # type: ignore[assignment]
    sources: list[SurgicalSource] = Field(min_length=1)  # type: ignore[assignment]
    self_cognition: None = None

    @model_validator(mode="after")
    def _balanced(self) -> "SurgicalBlockRecipe":
        side = {want: sum(s.count for s in self.sources if s.answer == want) for want in ("Yes", "No")}
        if side["Yes"] != side["No"]:
            raise ValueError(f"yes_no must be balanced: answer Yes sources count {side['Yes']}, answer No sources "
                             f"count {side['No']}")
        return self


BLOCK_KINDS: dict[str, type[Strict]] = {
    "sft": SftBlockRecipe,
    "preference": PreferenceBlockRecipe,
    "mcq": McqBlockRecipe,
    "cot": CotBlockRecipe,
    "repair": RepairBlockRecipe,
    "distill": DistillBlockRecipe,
    "surgical": SurgicalBlockRecipe,
}
BlockRecipe = Union[  # noqa: UP007
    SftBlockRecipe, PreferenceBlockRecipe, McqBlockRecipe, CotBlockRecipe, RepairBlockRecipe, DistillBlockRecipe,
    SurgicalBlockRecipe,
]
