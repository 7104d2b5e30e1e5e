"""Recipe loading: ${ENV} interpolation, --set overrides, errors that name the file and the field; every shipped
recipe under recipes/ validates with its model."""

import os
import re

import pytest
from conftest import REPO

from shardsmith.builders.build import load_block_recipe
from shardsmith.recipes import RecipeError, load_recipe, load_recipe_dict
from shardsmith.schemas.block_recipe import BLOCK_KINDS
from shardsmith.schemas.mix_recipe import MixRecipe
from shardsmith.schemas.selfteach_recipe import SelfTeachRecipe
from shardsmith.schemas.train_recipe import TrainRecipe

GOOD = """
name: t
seed: 5
budget_tokens: 1000
sources:
  - name: web
    kind: fineweb
    paths: ["${DATA_ROOT}/web/*.parquet"]
    weight: 0.7
  - name: zh
    kind: skypile
    language: zh
    paths: ["${DATA_ROOT:-/nowhere}/zh/*.jsonl"]
    weight: 0.3
    filters: [language, {step: cjk_ratio, min_ratio: 0.5}]
"""


def write(tmp_path, text, name="r.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_env_and_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_ROOT", "/data")
    r = load_recipe(MixRecipe, write(tmp_path, GOOD), ["sources.zh.weight=0.5", "budget_tokens=2000", "seed=9"])
    assert r.sources[0].paths == ["/data/web/*.parquet"]
    assert r.sources[1].paths == ["/data/zh/*.jsonl"]
    assert r.sources[1].weight == 0.5 and r.budget_tokens == 2000 and r.seed == 9
    assert r.sources[1].filters[1].step == "cjk_ratio" and r.sources[1].filters[1].params == {"min_ratio": 0.5}
    assert r.shares() == pytest.approx({"web": 0.7 / 1.2, "zh": 0.5 / 1.2})


def test_missing_env_names_field(tmp_path, monkeypatch):
    monkeypatch.delenv("DATA_ROOT", raising=False)
    with pytest.raises(RecipeError, match=r"r\.yaml: field 'sources\[0\]\.paths\[0\]'.*DATA_ROOT"):
        load_recipe(MixRecipe, write(tmp_path, GOOD))


@pytest.mark.parametrize(
    "override, pattern",
    [
        ("sources.web.weight=-1", r"field 'sources\.0\.weight'"),
        ("sources.web.kind=tiktok", r"field 'sources\.0\.kind'"),
        ("sources.zh.filters.0=nosuchfilter", r"field 'sources\.1\.filters"),
        ("sources.web.colour=red", r"field 'sources\.0\.colour'.*[Ee]xtra"),
    ],
)
def test_bad_fields_are_named(tmp_path, monkeypatch, override, pattern):
    monkeypatch.setenv("DATA_ROOT", "/data")
    with pytest.raises(RecipeError, match=pattern) as err:
        load_recipe(MixRecipe, write(tmp_path, GOOD), [override])
    assert "r.yaml" in str(err.value)


def test_all_zero_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_ROOT", "/data")
    with pytest.raises(RecipeError, match="all source weights are zero"):
        load_recipe(MixRecipe, write(tmp_path, GOOD), ["sources.web.weight=0", "sources.zh.weight=0"])


def test_unknown_override_target_and_bad_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_ROOT", "/data")
    with pytest.raises(RecipeError, match="no item named 'nope'"):
        load_recipe(MixRecipe, write(tmp_path, GOOD), ["sources.nope.weight=1"])
    with pytest.raises(RecipeError, match="invalid YAML"):
        load_recipe(MixRecipe, write(tmp_path, "a: [1, 2", "bad.yaml"))
    with pytest.raises(RecipeError, match="cannot read recipe"):
        load_recipe(MixRecipe, tmp_path / "missing.yaml")


def test_nested_env_default(tmp_path, monkeypatch):
    monkeypatch.setenv("ROOT", "/r")
    monkeypatch.delenv("SPECIFIC", raising=False)
    text = GOOD.replace('"${DATA_ROOT}/web/*.parquet"', '"${SPECIFIC:-${ROOT}/web}/*.parquet"')
    monkeypatch.setenv("DATA_ROOT", "/data")
    assert load_recipe(MixRecipe, write(tmp_path, text)).sources[0].paths == ["/r/web/*.parquet"]
    monkeypatch.setenv("SPECIFIC", "/s")
    assert load_recipe(MixRecipe, write(tmp_path, text)).sources[0].paths == ["/s/*.parquet"]


# ------------------------------------------------------------------------------------ every shipped recipe loads ---

SHIPPED = sorted((REPO / "recipes").glob("*/*.yaml"))


def _required_env(path) -> set[str]:
    """``${NAME}`` references without a ``:-default`` (they must be set for the recipe to load)."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", path.read_text()))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_recipe_validates(path, monkeypatch, tmp_path):
    for name in _required_env(path):
        if name not in os.environ:
            monkeypatch.setenv(name, str(tmp_path / name.lower()))
    kind = path.parent.name
    if kind == "mix":
        recipe = load_recipe(MixRecipe, path)
        assert recipe.sources and all(s.filters != [] for s in recipe.sources)
    elif kind == "train" and "self_teach" in load_recipe_dict(path):  # shardsmith self-teach (selfteach.py)
        recipe = load_recipe(SelfTeachRecipe, path)
        assert recipe.self_teach.rounds and recipe.stage
    elif kind == "train":
        recipe = load_recipe(TrainRecipe, path)
        assert recipe.stages
    else:
        recipe, _ = load_block_recipe(path)
        assert recipe.kind in BLOCK_KINDS


def test_steel_train_reads_the_one_set_steel_zh_builds(monkeypatch):
    """steel-zh.yaml builds ONE mixed set (~80 % zh / 20 % en by weight); steel.yaml pretrains on that set."""
    monkeypatch.setenv("SHARDSMITH_DATA", "/data")
    mix = load_recipe(MixRecipe, REPO / "recipes" / "mix" / "steel-zh.yaml")
    zh_share = sum(share for name, share in mix.shares().items()
                   if next(s for s in mix.sources if s.name == name).language == "zh")  # fmt: skip
    assert zh_share == pytest.approx(0.8)
    train = load_recipe(TrainRecipe, REPO / "recipes" / "train" / "steel.yaml")
    sets = train.stages[0].data.sets
    assert len(sets) == 1 and sets[0].path == "out/steel/pretrain_mix"
