"""Agreement with lm-evaluation-harness, run here on the same items: local lm-eval task configs (YAML written into
tmp) over the real MMLU / CMMLU / ARC / HellaSwag samples, lm-eval's HF backend on the same tiny model folder; every
option's log-likelihood within 1e-4 of ours and the same choice on every item (letter and cloze forms, zero- and
one-shot, HellaSwag's length-normalised choice)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import need_data
from eval_fixtures import bench_folder, tiny_model

lm_eval = pytest.importorskip("lm_eval", reason="lm-eval is in the dev extra: pip install -e .[dev]")

LIMIT = 8
# float64 on both sides: in float32 the two sums of 50-token continuations (-600 nats) already differ by ~1e-4 from
# rounding alone (lm-eval sums float32 log-probs with torch, we sum them in Python); float64 leaves only real
# differences (tokenisation, truncation, which positions are scored) above the 1e-4 tolerance.
DTYPE = "float64"
FILES = {"mcq_mmlu": ["test/anatomy_test.csv", "dev/anatomy_dev.csv"], "mcq_cmmlu": ["test/anatomy.csv"],
         "mcq_arc": ["ARC-Easy/validation/data-00000-of-00001.arrow"],
         "mcq_hellaswag_olmes": ["hellaswag_val_rc_5shot_requests.jsonl.gz"]}
MMLU_DESCRIPTION = "The following are multiple choice questions (with answers) about anatomy.\n\n"
ARC_LETTERS = "{% for t in choices.text %}\n{{'ABCDE'[loop.index0]}}. {{t}}{% endfor %}"

# task -> (our benchmark, form, shots, lm-eval config fields)
TASKS = {
    "ss_mmlu_letter": ("mmlu", "letter", 0, dict(
        dataset_path="csv", data="mcq_mmlu/test/anatomy_test.csv", description=MMLU_DESCRIPTION,
        doc_to_text="{{question.strip()}}\nA. {{choice0}}\nB. {{choice1}}\nC. {{choice2}}\nD. {{choice3}}\nAnswer:",
        doc_to_choice=["A", "B", "C", "D"], doc_to_target="{{answer}}")),
    "ss_mmlu_text": ("mmlu", "text", 0, dict(
        dataset_path="csv", data="mcq_mmlu/test/anatomy_test.csv",
        doc_to_text="Question: {{question.strip()}}\nAnswer:",
        doc_to_choice="{{[choice0, choice1, choice2, choice3]}}", doc_to_target="{{answer}}")),
    "ss_cmmlu_letter": ("cmmlu", "letter", 0, dict(
        dataset_path="csv", data="mcq_cmmlu/test/anatomy.csv",
        doc_to_text="{{Question.strip()}}\nA. {{A}}\nB. {{B}}\nC. {{C}}\nD. {{D}}\n答案：",
        doc_to_choice=["A", "B", "C", "D"], doc_to_target="{{['A', 'B', 'C', 'D'].index(Answer)}}")),
    "ss_arc_text": ("arc_easy", "text", 0, dict(
        dataset_path="arrow", data="mcq_arc/ARC-Easy/validation/data-00000-of-00001.arrow",
        doc_to_text="Question: {{question}}\nAnswer:", doc_to_choice="{{choices.text}}",
        doc_to_target="{{choices.label.index(answerKey)}}")),
    "ss_arc_letter": ("arc_easy", "letter", 0, dict(
        dataset_path="arrow", data="mcq_arc/ARC-Easy/validation/data-00000-of-00001.arrow",
        doc_to_text="{{question.strip()}}" + ARC_LETTERS + "\nAnswer:",
        doc_to_choice="{{'ABCDE'[:choices.text|length]|list}}", doc_to_target="{{choices.label.index(answerKey)}}")),
    "ss_hellaswag": ("hellaswag", "text", 0, dict(
        dataset_path="json", data="mcq_hellaswag_olmes/hellaswag_val_rc_5shot_requests.jsonl.gz",
        process_docs="!function ss_utils.first_requests", doc_to_text="{{doc.query}}",
        doc_to_choice="{{doc.choices}}", doc_to_target="{{doc.gold}}")),
    "ss_mmlu_letter_1shot": ("mmlu", "letter", 1, dict(
        dataset_path="csv", data="mcq_mmlu/test/anatomy_test.csv", fewshot="mcq_mmlu/dev/anatomy_dev.csv",
        description=MMLU_DESCRIPTION,
        doc_to_text="{{question.strip()}}\nA. {{choice0}}\nB. {{choice1}}\nC. {{choice2}}\nD. {{choice3}}\nAnswer:",
        doc_to_choice=["A", "B", "C", "D"], doc_to_target="{{answer}}")),
}

UTILS = '''
def first_requests(dataset):
    """OLMES request lines -> one doc per question (the first request; unconditional ids >= 1e6 left out)."""
    return dataset.filter(lambda r: r["idx"] == 0 and r["doc_id"] < 1_000_000)
'''


def _yaml(name: str, fields: dict, bench: Path, cache: Path) -> str:
    fields = dict(fields)
    files = {"test": str(bench / fields.pop("data"))}
    fewshot = fields.pop("fewshot", None)
    if fewshot:
        files["dev"] = str(bench / fewshot)
        fields.update(fewshot_split="dev", fewshot_config={"sampler": "first_n"}, num_fewshot=1)
    process = fields.pop("process_docs", None)
    config = {"task": name, "dataset_path": fields.pop("dataset_path"), "dataset_kwargs": {"data_files": files, "cache_dir": str(cache)},
              "test_split": "test", "output_type": "multiple_choice", **fields,
              "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}]}
    text = json.dumps(config, ensure_ascii=False, indent=1)  # JSON is YAML
    return text if not process else text[:-1] + f',\n "process_docs": {process}\n}}'


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    shared = need_data(*FILES)
    tmp = tmp_path_factory.mktemp("lmeval")
    model = tiny_model(tmp / "model")
    bench = bench_folder(shared, tmp / "bench", FILES)
    tasks = tmp / "tasks"
    tasks.mkdir()
    (tasks / "ss_utils.py").write_text(UTILS)
    for name, (_, _, _, fields) in TASKS.items():
        (tasks / f"{name}.yaml").write_text(_yaml(name, fields, bench, tmp / "hf-datasets"))
    return tmp, model, bench, tasks


def _ours(tmp: Path, model: Path, bench: Path, shots: int) -> dict[tuple[str, str], dict]:
    from shardsmith.evaluation import evaluate

    benches = sorted({name for name, _, k, _ in TASKS.values() if k == shots})
    evaluate(model, benches, shots, tmp / f"ours{shots}", data=bench,
             limit=LIMIT, progress=False, dtype=DTYPE)
    rows = [json.loads(line) for line in (tmp / f"ours{shots}" / "items.jsonl").read_text().splitlines()]
    return rows


def _theirs(model: Path, tasks: Path) -> dict:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=str(model), batch_size=32, device="cpu", dtype=DTYPE)
    manager = TaskManager(include_path=str(tasks), include_defaults=False)  # indexing lm-eval's own tasks takes a minute
    out = simple_evaluate(model=lm, tasks=list(TASKS), task_manager=manager,
                          limit=LIMIT, log_samples=True, num_fewshot=None, bootstrap_iters=0)
    return out["samples"]


def test_same_loglikelihoods_and_choices_as_lm_eval(setup):
    tmp, model, bench, tasks = setup
    ours = {shots: _ours(tmp, model, bench, shots) for shots in (0, 1)}
    theirs = _theirs(model, tasks)
    worst = 0.0
    for task, (name, form, shots, _) in TASKS.items():
        rows = [r for r in ours[shots] if r["benchmark"] == name]
        samples = sorted(theirs[task], key=lambda s: s["doc_id"])
        assert len(rows) == len(samples) == LIMIT, task
        for row, sample in zip(rows, samples):
            their_ll = np.array([resp[0][0] for resp in sample["resps"]])
            our_ll = np.array(row["loglikelihood"][form])
            assert row["gold"] == sample["target"], (task, row["id"])
            np.testing.assert_allclose(our_ll, their_ll, rtol=0, atol=1e-4, err_msg=f"{task} {row['id']}")
            worst = max(worst, float(np.abs(our_ll - their_ll).max()))
            assert (row["chosen"][form] == row["gold"]) == bool(sample["acc"]), (task, row["id"])
            assert row["chosen"][form] == int(np.argmax(their_ll)), (task, row["id"])
            if form == "text":
                assert (row["chosen"]["text_norm"] == row["gold"]) == bool(sample["acc_norm"]), (task, row["id"])
    print(f"largest log-likelihood difference: {worst:.2e}")
    assert worst < 1e-4
