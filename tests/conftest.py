"""Shared fixtures. Real data lives in $SHARDSMITH_DATA (default ../shared/data): tests that need it skip
with a reason when it is absent, except under CI=true, where a missing dataset is a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("SHARDSMITH_DATA") or (REPO.parent / "shared" / "data")).resolve()


def need_data(*names: str) -> Path:
    """Return $SHARDSMITH_DATA, or skip (fail under CI=true) when any named dataset folder is missing."""
    root = data_root()
    missing = [n for n in names if not (root / n).exists()] if root.is_dir() else list(names) or [str(root)]
    if missing:
        msg = f"real data missing under SHARDSMITH_DATA={root}: {', '.join(missing)}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return root


@pytest.fixture
def shared_data():
    """Usage: ``root = shared_data('zh_skypile_sample', 'web_c4_demo_llamafactory')``."""
    return need_data
