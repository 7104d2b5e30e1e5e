"""Every shipped mix recipe (recipes/mix/*.yaml) builds on the samples, with the named default chains.

Each recipe runs as shipped (``filters: default`` resolved by source kind) with a small token budget and a per-source
document limit (``--set``) (about a minute per recipe on 2 cores: marked slow); the manifest must list every source
with documents kept and the chain it was filtered with (``conftest.assert_shipped_mix_built``).  Three recipes are
built whole by other tests, which make the same check: ``real-sample`` (test_mix_real.py), ``t1b-fineweb-edu``
(test_chain_t1b.py) and ``demo`` (test_cli_demo.py).
"""

from __future__ import annotations

import pytest
from conftest import REPO, assert_shipped_mix_built, need_data

from shardsmith.pipelines.mixer import run_mix
from shardsmith.demo.mix_corpus import write_sample_corpus
from shardsmith.recipes import load_recipe
from shardsmith.schemas.manifest import ShardManifest
from shardsmith.schemas.mix_recipe import MixRecipe

MIX = REPO / "recipes" / "mix"
LIMIT = 60  # documents read per source
BUDGET = {"demo": 30_000, "ff313": 30_000, "steel-zh": 30_000, "real-sample": 40_000, "t1b-fineweb-edu": 30_000}
BUILT_ELSEWHERE = {"real-sample", "t1b-fineweb-edu", "demo"}  # whole, by the tests named in the docstring


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
@pytest.mark.parametrize("name", sorted(set(BUDGET) - BUILT_ELSEWHERE))
def test_shipped_mix_recipe_builds_on_samples(name, sample_env, tmp_path):
    path = MIX / f"{name}.yaml"
    recipe = load_recipe(MixRecipe, path)
    overrides = [f"budget_tokens={BUDGET[name]}"] + [f"sources.{s.name}.limit={LIMIT}" for s in recipe.sources]
    out = run_mix(str(path), str(tmp_path / name), overrides).parent
    assert 0 < sum(s.tokens for s in ShardManifest.load(out).sources) <= BUDGET[name] * 1.05
    assert_shipped_mix_built(path, out)
