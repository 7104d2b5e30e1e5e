"""shardsmith eval on a tiny random model over real benchmark samples: outputs, resume, batching, bad input."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import need_data
from eval_fixtures import BENCH_FILES, bench_folder, tiny_model

ALL = ["mmlu", "cmmlu", "ceval", "arc_easy", "arc_challenge", "hellaswag", "truthfulqa", "gsm8k"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    shared = need_data(*BENCH_FILES)
    tmp = tmp_path_factory.mktemp("eval")
    return tmp, tiny_model(tmp / "model"), bench_folder(shared, tmp / "bench")


@pytest.fixture(scope="module")
def lm(env):
    from shardsmith.evaluation.lm import CausalLM

    return CausalLM(env[1], batch_size=16)


@pytest.fixture(scope="module")
def cli_run(env):
    """One CLI run over every benchmark: 2 items per file, 1 shot, short generations."""
    from shardsmith.cli import main

    tmp, model, bench = env
    out = tmp / "cli"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = main(["eval", str(model), "--bench", ",".join(ALL), "--data", str(bench), "--limit", "2", "--shots", "1",
                   "--max-new-tokens", "8", "--out", str(out)])
    assert rc == 0
    return out, printed.getvalue()


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "items.jsonl").read_text(encoding="utf-8").splitlines()]


def test_cli_writes_results_items_and_table(cli_run):
    cli_run, table = cli_run
    results = json.loads((cli_run / "results.json").read_text())["benchmarks"]
    rows = _rows(cli_run)
    assert sorted(results) == sorted(ALL)
    for name, entry in results.items():
        mine = [r for r in rows if r["benchmark"] == name]
        primary = entry["metrics"][entry["primary"]]
        assert primary["n"] == len(mine) > 0
        assert 0 <= primary["acc"] <= 1 and primary["stderr"] >= 0
    # accuracy is recomputed from the items: the letter choice against the gold index
    mmlu = [r for r in rows if r["benchmark"] == "mmlu"]
    letter_hits = [r["chosen"]["letter"] == r["gold"] for r in mmlu]
    assert results["mmlu"]["metrics"]["acc_letter"]["acc"] == np.mean(letter_hits)
    assert set(results["mmlu"]["domains"]) == {"stem", "humanities"}  # anatomy, high_school_world_history
    assert set(results["mmlu"]["subjects"]) == {"anatomy", "high_school_world_history"}
    assert set(results["cmmlu"]["domains"]) == {"stem"} and set(results["ceval"]["domains"]) == {"other"}
    # every row of a benchmark with macro-domains names the ones it counts in (what champion selection pairs on)
    assert {r["subject"]: r["domains"] for r in mmlu} == {"anatomy": ["stem"], "high_school_world_history": ["humanities"]}
    assert all("domains" not in r for r in rows if r["benchmark"] in ("gsm8k", "hellaswag"))
    row = mmlu[0]
    assert len(row["loglikelihood"]["letter"]) == len(row["loglikelihood"]["text"]) == 4
    assert row["chosen"]["letter"] == int(np.argmax(row["loglikelihood"]["letter"]))
    gsm = [r for r in rows if r["benchmark"] == "gsm8k"]
    assert all(isinstance(r["generated"], str) and r["gold"].lstrip("-").isdigit() for r in gsm)
    assert len([r for r in rows if r["benchmark"] == "hellaswag"]) == 2  # 8 request lines per question -> 1 item
    assert "| mmlu / stem | acc_letter |" in table and "| gsm8k | exact_match |" in table


def test_resume_scores_only_missing_items(env, lm, tmp_path):
    from shardsmith.evaluation import evaluate

    tmp, model, bench = env
    full = evaluate(model, ["mmlu", "truthfulqa"], 0, tmp_path / "a", data=bench, limit=3, progress=False, lm=lm)
    lines = (tmp_path / "a" / "items.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    killed = tmp_path / "b"
    shutil.copytree(tmp_path / "a", killed)
    (killed / "items.jsonl").write_text("".join(lines[:4]) + lines[4][:25], encoding="utf-8")  # torn write

    scored = []

    class Counting:
        def loglikelihoods(self, pairs, progress=None):
            scored.extend(pairs)
            return lm.loglikelihoods(pairs, progress)

    again = evaluate(model, ["mmlu", "truthfulqa"], 0, killed, data=bench, limit=3, progress=False, lm=Counting())
    missing = [json.loads(x) for x in lines[4:]]
    assert len(scored) == sum(4 + 4 if r["benchmark"] == "mmlu" else len(r["loglikelihood"]["text"]) for r in missing)
    assert again["benchmarks"] == full["benchmarks"]
    by_key = {(r["benchmark"], r["id"]): r for r in _rows(killed)}
    assert len(by_key) == len(lines)
    for r in _rows(tmp_path / "a"):
        np.testing.assert_allclose(by_key[(r["benchmark"], r["id"])]["loglikelihood"]["text"],
                                   r["loglikelihood"]["text"], atol=1e-4)
    with pytest.raises(ValueError, match="other settings"):
        evaluate(model, ["mmlu"], 1, killed, data=bench, limit=3, progress=False, lm=lm)


def test_batched_equals_one_by_one(env, lm):
    """Right padding never reaches a real position: padded batches give each item's one-at-a-time values."""
    from shardsmith.evaluation import load_items

    items = load_items("arc_challenge", data=env[2], limit=6) + load_items("cmmlu", data=env[2], limit=2)
    pairs = [(f.context, c) for it in items for f in it.forms.values() for c in f.continuations]
    batched = lm.loglikelihoods(pairs)
    lm.batch_size = 1
    try:
        single = lm.loglikelihoods(pairs)
    finally:
        lm.batch_size = 16
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-4)


def _cli_error(capsys, argv) -> str:
    from shardsmith.cli import main

    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 1, err
    last = err.rstrip("\n").splitlines()[-1]  # above it only transformers' loading bar, when a model was loaded
    assert last.startswith("shardsmith eval: error: "), err
    return last


def _bench_with(tmp_path: Path, name: str, text: str, folder: str = "mcq_mmlu/test") -> Path:
    path = tmp_path / "bench" / folder / name
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return tmp_path / "bench"


def test_bad_input_is_one_line(env, tmp_path, capsys):
    tmp, model, bench = env
    unknown = _bench_with(tmp_path / "u", "x.jsonl", '{"prompt": "hello", "reply": "world"}\n', "mcq_hellaswag_olmes")
    err = _cli_error(capsys, ["eval", str(model), "--bench", "hellaswag", "--data", str(unknown),
                              "--out", str(tmp_path / "o1")])
    assert "x.jsonl" in err and "unknown MCQ shape" in err
    short_row = _bench_with(tmp_path / "s", "x_test.csv", "prompt,reply\nhello,world\n")
    err = _cli_error(capsys, ["eval", str(model), "--bench", "mmlu", "--data", str(short_row),
                              "--out", str(tmp_path / "o0")])
    assert "x_test.csv: line 1: 2 fields, expected 6" in err
    out_of_range = _bench_with(tmp_path / "r", "y_test.csv",
                               "question,choice0,choice1,choice2,choice3,answer\nq,a,b,c,d,1\nq2,a,b,c,d,7\n")
    err = _cli_error(capsys, ["eval", str(model), "--bench", "mmlu", "--data", str(out_of_range),
                              "--out", str(tmp_path / "o2")])
    assert "y_test.csv" in err and "record 1" in err and "answer_not_in_options" in err
    small = tiny_model(tmp_path / "small", vocab_size=1000)
    err = _cli_error(capsys, ["eval", str(small), "--bench", "truthfulqa", "--data", str(bench), "--limit", "1",
                              "--out", str(tmp_path / "o3")])
    assert "1000 embedding rows" in err and "50257" in err
    err = _cli_error(capsys, ["eval", str(model), "--bench", "mmlu,nope", "--data", str(bench),
                              "--out", str(tmp_path / "o4")])
    assert "unknown benchmark 'nope'" in err


def test_final_number():
    from shardsmith.evaluation.run import final_number

    assert final_number("so 3 + 4 = 7\n#### 1,007") == "1007"
    assert final_number("#### 2 then #### -3.5") == "-3.5"
    assert final_number("no marker 12") is None


def test_killed_run_resumes_without_rescoring(env, lm, tmp_path):
    """SIGKILL a real run once its first chunk is on disk; the re-run scores exactly the items not yet written."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from shardsmith.evaluation import evaluate

    tmp, model, bench = env
    out = tmp_path / "killed"
    code = ("from shardsmith.evaluation import evaluate; "
            f"evaluate({str(model)!r}, ['truthfulqa'], 0, {str(out)!r}, data={str(bench)!r}, limit=120, "
            "progress=False, chunk_items=4)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, OMP_NUM_THREADS="1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    items = out / "items.jsonl"
    deadline = time.time() + 120
    while proc.poll() is None and not (items.is_file() and items.stat().st_size) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {json.loads(line)["id"] for line in items.read_bytes().decode().splitlines() if line.endswith("}")}
    assert 0 < len(done) < 120, "the run finished (or wrote nothing) before it was killed"

    scored_items = []

    class Counting:
        def loglikelihoods(self, pairs, progress=None):
            scored_items.extend({c for c, _ in pairs})
            return lm.loglikelihoods(pairs, progress)

    evaluate(model, ["truthfulqa"], 0, out, data=bench, limit=120, progress=False, lm=Counting())
    rows = _rows(out)
    assert len(rows) == len({r["id"] for r in rows}) == 120
    assert len(set(scored_items)) == 120 - len(done)  # one context per TruthfulQA item, none of the finished ones
