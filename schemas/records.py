"""The one conversation record every SFT importer produces and every template renders.

A conversation is an ordered list of messages (``system`` / ``user`` / ``assistant``) plus where it came from
(``source``, ``id``), its language (``lang``: what the language filter decided; ``label_lang``: what the dataset
itself says, e.g. Infinity-Instruct's ``langdetect``) and free ``metadata`` (Firefly's ``kind``, Infinity's
``label`` ...).  Importers build these; nothing downstream reads a dataset's own field names.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    content: str


class Conversation(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    messages: list[Message]
    source: str = Field(description="the recipe's source name")
    id: str = Field(description="stable id: the dataset's own id, else `<file>:<record index>`")
    lang: str | None = Field(None, description="language decided by the language filter (ISO 639-1, e.g. zh, en)")
    label_lang: str | None = Field(None, description="the dataset's own language label, as written (e.g. zh-cn)")
    metadata: dict[str, Any] = Field(default_factory=dict)

    # --- convenience -------------------------------------------------------------------------------------------
    def turns(self, *roles: str) -> list[Message]:
        return [m for m in self.messages if not roles or m.role in roles]

    def text(self, *roles: str, sep: str = "\n") -> str:
        return sep.join(m.content for m in self.turns(*roles))

    @property
    def n_assistant(self) -> int:
        return sum(1 for m in self.messages if m.role == "assistant")


class Drop(BaseModel):
    """A record that did not make it, with the reason (counted in the manifest, written to DIR/rejected/)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    source: str
    id: str
    reason: str = Field(description="short machine key: empty_turn, ends_with_user, language, duplicate, ...")
    step: str = Field(description="import | structure | language | length | dedup | sample")
    detail: str | None = None
    record: dict[str, Any] | None = Field(None, description="the conversation or raw record, when there is one")


class PreferencePair(BaseModel):
    """A prompt with two completions, one preferred (``chosen``) and one not (``rejected``).

    The prompt is the conversation so far (system? user, assistant, ..., user); each completion is the assistant
    message(s) that follow it. Builders render ``prompt + chosen`` and ``prompt + rejected`` with the same template
    and write them as two adjacent documents (chosen first), so the trainer can pair them by position.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    source: str
    id: str
    label_lang: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def conversation(self, which: Literal["chosen", "rejected"]) -> Conversation:
        return Conversation(messages=self.prompt + getattr(self, which), source=self.source, id=self.id,
                            label_lang=self.label_lang, metadata=self.metadata)


class McqQuestion(BaseModel):
    """One multiple-choice question as every MCQ importer returns it, before any output format is applied.

    ``options`` maps letters to option text in display order (A, B, C, ...); ``answer`` is one of its letters.
    Importers (``builders/mcq.py``) fill it; formats, surgical rewrites and repair blocks read it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str
    options: dict[str, str]
    answer: str = Field(description="the correct letter, a key of `options`")
    explanation: str | None = Field(None, description="a worked explanation (C-Eval, WanJuan answer_detail)")
    q_type: str | None = Field(None, description="the dataset's question type (WanJuan: 单选题, ...)")
    subject: str | None = None
    source: str = Field(description="the recipe's source name")
    id: str

    @property
    def answer_text(self) -> str:
        return self.options[self.answer]


class CotExample(BaseModel):
    """A question with a worked rationale and a short final answer (GSM8K, AQuA, FLAN CoT, MCQ explanations)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str
    rationale: str
    answer: str
    source: str
    id: str
    metadata: dict[str, Any] = Field(default_factory=dict)
