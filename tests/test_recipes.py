"""Recipe loading: ${ENV} interpolation, --set overrides, errors that name the file and the field."""

import pytest

from shardsmith.recipes import RecipeError, load_recipe
from shardsmith.schemas.mix_recipe import MixRecipe

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
