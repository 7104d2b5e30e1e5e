"""Issue 14: a mix's inputs and output on any fsspec filesystem, through datatrove's ``DataFolder``.

- S3 for real, offline: moto's S3 server on localhost (``moto[s3]``), reached through ``s3fs`` with fsspec's own
  configuration (``FSSPEC_S3_ENDPOINT_URL``, inherited by every process of the build). A small mix reads its sources
  from ``s3://`` (a glob, a file, two folders) and writes its set to ``s3://``; the files equal a local build's.
- ``hf://``: no network here. The path reaches datatrove's ``get_datafolder`` unchanged (an ``HfFileSystem`` on the
  dataset's path), and listing it in offline mode is a one-line error that names the source and the Hub URL asked.
"""

from __future__ import annotations

import json
import logging
import os

import pytest
from conftest import output_contents

from shardsmith.cli import main as cli_main
from shardsmith.pipelines.mixer import run_mix
from shardsmith.pipelines.publish import staging_folder

RECIPE = """\
name: fsspec-mini
seed: 11
tokenizer: {name: gpt2}
validation_fraction: 0.05
workers: 1
dedup: {enabled: false}
decontaminate: {enabled: false}
sources:
  - {name: web, kind: fineweb, language: en, weight: 0.5, filters: none, limit: 200,
     paths: ["${SHARDSMITH_SAMPLE}/web/*.parquet"]}
  - {name: wiki, kind: wikipedia, language: en, weight: 0.2, filters: none,
     paths: ["${SHARDSMITH_SAMPLE}/wiki/enwiki-sample.jsonl"]}
  - {name: c4, kind: c4, language: en, weight: 0.2, filters: none, limit: 100, paths: ["${SHARDSMITH_SAMPLE}/c4"]}
  - {name: news, kind: news_folder, language: en, weight: 0.1, filters: none, paths: ["${SHARDSMITH_SAMPLE}/news"]}
"""


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server with bucket ``bkt`` holding the demo sample corpus under ``sample/``; yields its s3fs."""
    pytest.importorskip("s3fs", reason="s3fs (dev extra) is not installed")
    server_mod = pytest.importorskip("moto.server", reason="moto[s3] (dev extra) is not installed")
    import fsspec.config
    import s3fs

    from shardsmith.demo.mix_corpus import write_sample_corpus

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "FSSPEC_S3_ENDPOINT_URL": f"http://{host}:{port}",  # read by fsspec at import: the build's subprocesses
           "SHARDSMITH_STAGE": str(tmp_path_factory.mktemp("stage"))}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    fsspec.config.conf.setdefault("s3", {})["endpoint_url"] = env["FSSPEC_S3_ENDPOINT_URL"]  # this process
    try:
        fs = s3fs.S3FileSystem()
        fs.mkdir("bkt")
        sample = tmp_path_factory.mktemp("sample")
        write_sample_corpus(sample)
        fs.put(f"{sample}/", "bkt/sample/", recursive=True)
        yield fs, sample
    finally:
        fsspec.config.conf["s3"].pop("endpoint_url", None)
        s3fs.S3FileSystem.clear_instance_cache()
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        server.stop()


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    path = tmp_path_factory.mktemp("recipe") / "fsspec-mini.yaml"
    path.write_text(RECIPE)
    return path


@pytest.fixture(scope="module")
def local_and_s3(s3, recipe, tmp_path_factory):
    """The mix built twice: local sample -> local folder, and s3://bkt/sample -> s3://bkt/out (then downloaded)."""
    fs, sample = s3
    root = tmp_path_factory.mktemp("builds")
    os.environ["SHARDSMITH_SAMPLE"] = str(sample)
    run_mix(str(recipe), str(root / "local"))
    os.environ["SHARDSMITH_SAMPLE"] = "s3://bkt/sample"
    try:
        manifest_url = run_mix(str(recipe), "s3://bkt/out")
    finally:
        os.environ.pop("SHARDSMITH_SAMPLE", None)
    fs.get("bkt/out/", f"{root / 'from_s3'}/", recursive=True)
    return root / "local", root / "from_s3", manifest_url, sample


def test_sources_and_output_on_s3_build_the_local_bytes(local_and_s3, s3):
    local, from_s3, manifest_url, sample = local_and_s3
    assert manifest_url == "s3://bkt/out/manifest.json"
    left, right = output_contents(local), output_contents(from_s3)
    assert left.keys() == right.keys() and any(k.endswith(".ds") for k in left)
    assert [k for k in left if k != "manifest.json" and left[k] != right[k]] == []  # shards, indexes, tokenizer
    # the manifest records the recipe as built: the same but for where its sources were (and so its sha256)
    local_m, s3_m = json.loads(left["manifest.json"]), json.loads(right["manifest.json"].replace(
        b"s3://bkt/sample", str(sample).encode()))
    assert local_m.pop("recipe_sha256") != s3_m.pop("recipe_sha256")
    assert local_m == s3_m
    # every source was read from S3 (4 sources: a glob, a file, two folders), and the staging folder is gone
    assert [p for s in json.loads(right["manifest.json"])["recipe"]["sources"] for p in s["paths"]] == [
        "s3://bkt/sample/web/*.parquet", "s3://bkt/sample/wiki/enwiki-sample.jsonl", "s3://bkt/sample/c4",
        "s3://bkt/sample/news"]
    assert staging_folder("s3://bkt/out").parent.is_dir() and not staging_folder("s3://bkt/out").exists()


def test_a_finished_url_is_kept_and_force_replaces_its_files(local_and_s3, s3, recipe, tmp_path):
    """Re-running the same recipe on a URL holding its set uploads nothing; another recipe there needs --force,
    which uploads the new set (manifest last) and deletes the files the old set had and the new one has not."""
    fs, sample = s3
    fs.pipe("bkt/out/train/stale-00099.ds", b"old")  # a file no set of this recipe has
    os.environ["SHARDSMITH_SAMPLE"] = "s3://bkt/sample"
    try:
        assert run_mix(str(recipe), "s3://bkt/out") == "s3://bkt/out/manifest.json"
        assert fs.exists("bkt/out/train/stale-00099.ds")  # nothing was built or uploaded
        assert cli_main(["mix", str(recipe), "--out", "s3://bkt/out", "--set", "seed=12"]) == 2
        run_mix(str(recipe), "s3://bkt/out", overrides=["seed=12"], force=True)
    finally:
        os.environ.pop("SHARDSMITH_SAMPLE", None)
    fs.invalidate_cache()
    assert not fs.exists("bkt/out/train/stale-00099.ds")
    assert json.loads(fs.cat("bkt/out/manifest.json"))["recipe"]["seed"] == 12


def test_dry_run_to_a_url_lists_s3_inputs_and_writes_nothing(s3, recipe, capsys, monkeypatch):
    fs, _ = s3
    monkeypatch.setenv("SHARDSMITH_SAMPLE", "s3://bkt/sample")
    assert cli_main(["mix", str(recipe), "--out", "s3://bkt/dry", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "-> s3://bkt/dry (built in " in text and "then uploaded)" in text
    assert "filter/news" in text and not fs.exists("bkt/dry")


def test_hf_paths_reach_datafolder_unchanged_and_fail_offline_in_one_line(monkeypatch):
    import huggingface_hub.constants
    from datatrove.io import get_datafolder
    from huggingface_hub import HfFileSystem

    from shardsmith.pipelines.sources import SourceError, list_input_files
    from shardsmith.schemas.mix_recipe import SourceSpec

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # the Hub client's own offline switch
    folder = get_datafolder("hf://datasets/HuggingFaceFW/fineweb-edu/sample/10BT")
    assert isinstance(folder.fs, HfFileSystem) and folder.path == "datasets/HuggingFaceFW/fineweb-edu/sample/10BT"
    source = SourceSpec(name="edu", kind="fineweb", language="en", weight=1, filters="none",
                        paths=["hf://datasets/HuggingFaceFW/fineweb-edu/sample/10BT/*.parquet"])
    with pytest.raises(SourceError) as err:
        list_input_files(source)
    message = str(err.value)
    assert "\n" not in message and message.startswith(
        "source 'edu': cannot list or read 'hf://datasets/HuggingFaceFW/fineweb-edu/sample/10BT/*.parquet'")
    assert "huggingface.co/api/datasets/HuggingFaceFW/fineweb-edu" in message  # the path went to the Hub as is
