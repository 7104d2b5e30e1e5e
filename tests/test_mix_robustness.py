"""Mix builds survive a kill (resume gives the same shards) and refuse bad input with one clear error."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from shardsmith.schemas.manifest import MANIFEST_NAME


def shardsmith(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "shardsmith.cli", *args], capture_output=True, text=True,
                          env=env, **kw)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from shardsmith.demo.mix_corpus import write_sample_corpus

    dest = tmp_path_factory.mktemp("sample") / "corpus"
    write_sample_corpus(dest)
    return dest


def demo_env(sample):
    return {**os.environ, "SHARDSMITH_SAMPLE": str(sample)}


def shard_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for split in ("train", "validation")
            for p in sorted((out / split).glob("*.ds*")) if not p.name.endswith(".metadata")}


def test_killed_build_resumes_to_identical_shards(sample, tmp_path):
    recipe = str(REPO / "recipes" / "mix" / "demo.yaml")
    env = demo_env(sample)
    reference = tmp_path / "reference"
    r = shardsmith("mix", recipe, "--out", str(reference), env=env)
    assert r.returncode == 0, r.stderr[-3000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "shardsmith.cli", "mix", recipe, "--out", str(killed)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    # kill it once the first source is filtered and the build is somewhere in the middle
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if list((killed / ".work" / "logs" / "filter").glob("*/completions/*")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / MANIFEST_NAME).exists()

    r = shardsmith("mix", recipe, "--out", str(killed), env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = json.loads((reference / MANIFEST_NAME).read_text()), json.loads((killed / MANIFEST_NAME).read_text())
    assert [(s["name"], s["documents"], s["tokens"]) for s in a["sources"]] == \
           [(s["name"], s["documents"], s["tokens"]) for s in b["sources"]]
    assert a["filters"] == b["filters"]
    assert shard_bytes(reference) == shard_bytes(killed)  # same documents, same order, none twice
    assert not (reference / ".work").exists() and not (killed / ".work").exists()  # finished: intermediates gone


def test_rerun_of_finished_build_is_a_no_op_and_other_recipe_is_refused(sample, tmp_path):
    recipe = str(REPO / "recipes" / "mix" / "demo.yaml")
    env = demo_env(sample)
    out = tmp_path / "o"
    assert shardsmith("mix", recipe, "--out", str(out), "--set", "budget_tokens=50000", env=env).returncode == 0
    before = (out / MANIFEST_NAME).read_text()
    assert not (out / ".work").exists()  # the recipe's fingerprint is read from manifest.json alone
    assert shardsmith("mix", recipe, "--out", str(out), "--set", "budget_tokens=50000", env=env).returncode == 0
    assert (out / MANIFEST_NAME).read_text() == before
    r = shardsmith("mix", recipe, "--out", str(out), "--set", "budget_tokens=60000", env=env)
    assert r.returncode == 2 and "another recipe" in r.stderr and "--force" in r.stderr


# ---------------------------------------------------------------------------------------------- bad input


def recipe_file(tmp_path: Path, sources: str, extra: str = "") -> Path:
    p = tmp_path / "recipe.yaml"
    p.write_text(f"name: bad\nseed: 1\ntokenizer: {{name: gpt2}}\n{extra}sources:\n{sources}")
    return p


GOOD_DOC = ("The river valley was settled by farmers who grew wheat and barley along the banks. "
            "Over the centuries the town built bridges, mills and a market square that still stands today. ") * 4


def jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def run_bad(tmp_path, sources, extra=""):
    out = tmp_path / "out"
    r = shardsmith("mix", str(recipe_file(tmp_path, sources, extra)), "--out", str(out))
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert not (out / MANIFEST_NAME).exists()
    error = r.stderr[r.stderr.index("shardsmith mix: error:"):]  # one error, after any log lines
    assert "Traceback" not in error
    return error


def test_malformed_json_line_names_file_and_line(tmp_path):
    f = jsonl(tmp_path / "web.jsonl", [{"text": GOOD_DOC}, {"text": GOOD_DOC + " x"}, '{"text": "broken'])
    err = run_bad(tmp_path, f"  - {{name: web, kind: generic, weight: 1, paths: ['{f}']}}\n")
    assert "web.jsonl" in err and "line 3" in err


def test_missing_text_field_names_the_field(tmp_path):
    f = jsonl(tmp_path / "c4.jsonl", [{"text": GOOD_DOC}, {"body": GOOD_DOC}])
    err = run_bad(tmp_path, f"  - {{name: c4, kind: c4, weight: 1, paths: ['{f}']}}\n")
    assert "c4.jsonl" in err and "text" in err and "line 2" in err


def test_unknown_kind_and_bad_weights_fail_before_work(tmp_path):
    f = jsonl(tmp_path / "a.jsonl", [{"text": GOOD_DOC}])
    err = run_bad(tmp_path, f"  - {{name: a, kind: tiktok, weight: 1, paths: ['{f}']}}\n")
    assert "field 'sources.0.kind'" in err
    err = run_bad(tmp_path, f"  - {{name: a, kind: generic, weight: -1, paths: ['{f}']}}\n")
    assert "field 'sources.0.weight'" in err
    err = run_bad(tmp_path, f"  - {{name: a, kind: generic, weight: 0, paths: ['{f}']}}\n")
    assert "all source weights are zero" in err
    assert not (tmp_path / "out" / ".work").exists()  # refused before any work started


def test_missing_unreadable_and_empty_sources(tmp_path):
    err = run_bad(tmp_path, f"  - {{name: a, kind: generic, weight: 1, paths: ['{tmp_path}/nothing/*.jsonl']}}\n")
    assert "source 'a'" in err and "nothing" in err
    broken = tmp_path / "broken.jsonl"
    broken.symlink_to(tmp_path / "does-not-exist.jsonl")
    err = run_bad(tmp_path, f"  - {{name: a, kind: generic, weight: 1, paths: ['{broken}']}}\n")
    assert "broken.jsonl" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    err = run_bad(tmp_path, f"  - {{name: a, kind: generic, weight: 1, paths: ['{empty}']}}\n")
    assert "source 'a'" in err and "0 documents" in err


def test_gzip_inputs_read(tmp_path):
    """Compressed C4-style input goes through the same strict reader."""
    f = tmp_path / "c4.json.gz"
    with gzip.open(f, "wt") as fh:
        fh.write(json.dumps({"text": GOOD_DOC, "url": "https://example.org/a", "timestamp": "2019-04-20"}) + "\n")
        fh.write('{"text": \n')
    err = run_bad(tmp_path, f"  - {{name: c4, kind: c4, weight: 1, paths: ['{f}']}}\n")
    assert "c4.json.gz" in err and "line 2" in err
