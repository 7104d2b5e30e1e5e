"""JSON-lines benchmark files of the custom splits (``truth_list``, ``surgical``), read with the builders' reader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from shardsmith.builders.importers import _RecordDrop, iter_raw


def records(path: Path, error: type[Exception]) -> Iterator[tuple[int, str, object]]:
    """(line index, "FILE: line N", record) of every line; an unreadable line raises ``error`` naming the file."""
    for i, rec in iter_raw(path):
        if isinstance(rec, _RecordDrop):
            raise error(f"{path}: {rec.detail}")
        yield i, f"{path}: line {i + 1}", rec
