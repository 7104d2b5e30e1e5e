"""Every shipped mix recipe (recipes/mix/*.yaml) builds on the samples, with the named default chains.

Each recipe runs as shipped (``filters: default`` resolved by source kind) with a small token budget and a per-source
document limit (``--set``) (about 1 minute per recipe on 2 shared cores, real-sample 2.5: marked slow); the manifest
must list every source with documents kept and the chain it was filtered with.
"""

from __future__ import annotations

import pytest
from conftest import REPO, need_data

from shardsmith.pipelines.filters import default_chain_name
from shardsmith.pipelines.mixer import run_mix
from shardsmith.pipelines.sample_corpus import write_sample_corpus
from shardsmith.recipes import load_recipe
from shardsmith.schemas.manifest import ShardManifest
from shardsmith.schemas.mix_recipe import MixRecipe

MIX = REPO / "recipes" / "mix"
LIMIT = 60  # documents read per source
BUDGET = {"demo": 30_000, "ff313": 30_000, "steel-zh": 30_000, "real-sample": 40_000, "t1b-fineweb-edu": 30_000}


def test_every_shipped_mix_recipe_is_covered():
    assert {p.stem for p in MIX.glob("*.yaml")} == set(BUDGET)


@pytest.fixture(scope="module")
def sample_env(tmp_path_factory):
    """$SHARDSMITH_DATA for the real samples, $SHARDSMITH_SAMPLE for the demo's embedded corpus."""
    need_data("web_fineweb_edu_text_llm_scored", "zh_baidu_baike", "wiki_en_demo_llamafactory")
    sample = tmp_path_factory.mktemp("sample")
    write_sample_corpus(sample, seed=0)
    mp = pytest.MonkeyPatch()
    mp.setenv("SHARDSMITH_SAMPLE", str(sample))
    yield
    mp.undo()


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(BUDGET))
def test_shipped_mix_recipe_builds_on_samples(name, sample_env, tmp_path):
    path = MIX / f"{name}.yaml"
    recipe = load_recipe(MixRecipe, path)
    overrides = [f"budget_tokens={BUDGET[name]}"] + [f"sources.{s.name}.limit={LIMIT}" for s in recipe.sources]
    manifest = ShardManifest.load(run_mix(str(path), str(tmp_path / name), overrides).parent)

    assert manifest.kind == "mix" and manifest.splits["train"].tokens > 0
    assert 0 < sum(s.tokens for s in manifest.sources) <= BUDGET[name] * 1.05
    for spec, info in zip(recipe.sources, manifest.sources):
        # every source keeps documents (a tiny budget may still give a long-article source 0 whole documents)
        assert info.name == spec.name and info.documents_available > 0, info
        expected = "none" if spec.filters == "none" else default_chain_name(spec.kind)
        assert info.filter_chain == expected, (spec.name, info.filter_chain)
        if spec.filters != "none":
            counts = manifest.filters[spec.name]
            assert counts and counts[0].read > 0 and counts[-1].kept > 0, (spec.name, counts)
