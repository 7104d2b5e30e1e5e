"""Rejected-document records: every dropped document with its reason, as ``rejected/<source>/<step>/*.jsonl.gz``."""

from __future__ import annotations

from types import MethodType

from datatrove.data import Document
from datatrove.pipeline.writers.jsonl import JsonlWriter

from .zh_filters import DETAIL_KEY

__all__ = ["RejectedJsonlWriter", "RejectedRecordAdapter", "rejected_writer"]




class RejectedRecordAdapter:
    """``JsonlWriter`` adapter: ``{"id", "text", "reason", "source", "metadata"}`` for each dropped document.

    ``reason`` is datatrove's ``filter_reason`` (plus the measured value our own filters leave in
    ``metadata["filter_detail"]``).  datatrove's LanguageFilter gives no reason, so one is synthesised from the
    ``language`` / ``language_score`` metadata it sets, e.g. ``language fr (0.93) not in ['en'] (threshold 0.65)``.
    """

    def __init__(self, source: str, step: str, languages: list[str] | None = None, threshold: float | None = None):
        self.source = source
        self.step = step
        self.languages = languages
        self.threshold = threshold

    def language_reason(self, metadata: dict) -> str:
        lang = metadata.get("language")
        if "language_script" in metadata:  # GlotLID: cmn + Hani
            lang = f"{lang}_{metadata['language_script']}"
        score = metadata.get("language_score")
        score_s = f"{score:.2f}" if isinstance(score, (int, float)) else "?"
        if self.languages is not None and lang in self.languages:
            return f"language {lang} ({score_s}) below threshold {self.threshold}"
        return f"language {lang} ({score_s}) not in {self.languages} (threshold {self.threshold})"

    def __call__(self, writer, document: Document) -> dict:
        metadata = dict(document.metadata)
        reason = metadata.pop("filter_reason", None)
        detail = metadata.pop(DETAIL_KEY, None)
        if reason is None:
            reason = self.language_reason(metadata) if self.step == "language" else f"dropped by {self.step}"
        elif detail:
            reason = f"{reason}: {detail}"
        return {
            "id": document.id,
            "text": document.text,
            "reason": reason,
            "source": self.source,
            "metadata": metadata,
        }


class RejectedJsonlWriter(JsonlWriter):
    """A ``JsonlWriter`` with a :class:`RejectedRecordAdapter`, picklable with plain ``pickle`` too.

    datatrove binds ``adapter`` to the writer as a method, which dill/cloudpickle (its executors) handle but the
    standard pickler does not; the bound method is dropped from the state and re-bound on load.
    """

    def __init__(self, output_folder: str, adapter: RejectedRecordAdapter, output_filename: str = "${rank}.jsonl.gz"):
        super().__init__(output_folder, output_filename=output_filename, adapter=adapter)
        self.record_adapter = adapter

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("adapter", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.adapter = MethodType(self.record_adapter, self)


def rejected_writer(rejected_dir: str, source: str, folder: str, adapter: RejectedRecordAdapter) -> JsonlWriter:
    return RejectedJsonlWriter(f"{rejected_dir}/{source}/{folder}", adapter=adapter)
