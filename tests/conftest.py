"""Shared fixtures. Real data lives in $SHARDSMITH_DATA (default ../shared/data): tests that need it skip
with a reason when it is absent, except under CI=true, where a missing dataset is a failure."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest-xdist worker per core: each worker's torch (and the trainer subprocesses it starts)
    # gets one intra-op thread, instead of every process spinning one thread per core against the others.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# Builds decontaminate against $SHARDSMITH_BENCHMARKS when a recipe names no benchmarks: a developer's setting must not
# change what the tests build (tests that need it set it themselves).
os.environ.pop("SHARDSMITH_BENCHMARKS", None)


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


def assert_shipped_mix_built(recipe_path: Path, out: Path) -> None:
    """A shipped mix recipe's finished set: every source kept documents and was filtered by the chain
    ``filters: default`` names for its kind (tests/test_shipped_recipes.py; reused where a test builds the recipe)."""
    from shardsmith.pipelines.filter_chains import default_chain_name
    from shardsmith.recipes import load_recipe
    from shardsmith.schemas.manifest import ShardManifest
    from shardsmith.schemas.mix_recipe import MixRecipe

    recipe, manifest = load_recipe(MixRecipe, recipe_path), ShardManifest.load(out)
    assert manifest.kind == "mix" and manifest.splits["train"].tokens > 0
    for spec, info in zip(recipe.sources, manifest.sources, strict=True):
        # every source keeps documents (a tiny budget may still give a long-article source 0 whole documents)
        assert info.name == spec.name and info.documents_available > 0, info
        expected = "none" if spec.filters == "none" else default_chain_name(spec.kind)
        assert info.filter_chain == expected, (spec.name, info.filter_chain)
        if spec.filters != "none":
            counts = manifest.filters[spec.name]
            assert counts and counts[0].read > 0 and counts[-1].kept > 0, (spec.name, counts)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a shared 2-core box: one intra-op thread trains ~3x faster than two that wait on each other
    (use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def output_contents(folder: Path) -> dict[str, bytes]:
    """Every file of a finished shard set (``.work`` aside: the set is what the manifest lists), as bytes; the two
    timings a build writes are left out: the manifest's ``created_at``, and the write time in each gzip header
    (``rejected/*.jsonl.gz`` are compared decompressed). Shards, indexes, tokenizer and text exports: raw bytes."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_file() or ".work" in rel.parts:
            continue
        data = p.read_bytes()
        if p.suffix == ".gz":
            data = gzip.decompress(data)
        elif rel.as_posix() == "manifest.json":
            manifest = json.loads(data)
            manifest.pop("created_at")
            data = json.dumps(manifest, sort_keys=True).encode()
        out[rel.as_posix()] = data
    return out


def assert_same_shards(a: Path, b: Path) -> None:
    left, right = output_contents(a), output_contents(b)
    assert left.keys() == right.keys() and any(k.endswith(".ds") for k in left)
    assert [k for k in left if left[k] != right[k]] == []
