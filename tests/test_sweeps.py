"""Benchmark sweeps and champion selection (issue 12 item 2).

The selection rule, its guards and the paired statistics run on planted ``results.json`` / ``items.jsonl`` files
(results computed from the planted items by the evaluator's own ``summarise``); one tiny two-stage run scores three
checkpoints through the real ``shardsmith eval`` subprocess and hands the champion on via ``init_from: previous``."""

from __future__ import annotations

import json
import random

import pytest
import trainer_fixtures as F
from conftest import need_data

from shardsmith.cli import main as cli_main
from shardsmith.recipes import RecipeError, load_recipe
from shardsmith.schemas.train_recipe import (EVAL_BENCHMARK_FILES, EVAL_FEWSHOT_SPLIT, SelectSpec, StageSpec,
                                             TrainRecipe)
from shardsmith.trainer import selection as S

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# subject -> MMLU macro-domain (lm-eval's groups); 40 planted items each
SUBJECTS = {"anatomy": "stem", "high_school_world_history": "humanities", "sociology": "social_sciences",
            "marketing": "other"}
PER_SUBJECT = 40
DOMAINS = [f"mmlu/{d}" for d in SUBJECTS.values()]


def plant(folder, right: dict[str, int]):
    """An eval folder where the first ``right[subject]`` items of each subject are answered correctly (nested sets:
    a checkpoint with more right items gets every item a weaker one got, so discordant pairs go one way)."""
    from shardsmith.evaluation.run import summarise

    rows = []
    for subject, n_right in right.items():
        for i in range(PER_SUBJECT):
            choice = 0 if i < n_right else 1 + i % 3
            lls = [-2.0 - abs(k - choice) for k in range(4)]
            rows.append({"benchmark": "mmlu", "id": f"{subject}-{i}", "subject": subject, "gold": 0,
                         "chosen": {"letter": choice, "text": choice, "text_norm": choice},
                         "loglikelihood": {"letter": lls, "text": lls}})
    folder.mkdir(parents=True)
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "results.json").write_text(json.dumps({"benchmarks": summarise(rows, ["mmlu"])}))
    return folder


def _counts(stem, hum, soc, other):
    return dict(zip(SUBJECTS, (stem, hum, soc, other)))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Start 42/160; step-2 45 (passes); step-4 46, the best MMLU, but humanities -5 pp; final 43."""
    root = tmp_path_factory.mktemp("planted")
    plan = [(0, "step-0", _counts(10, 12, 10, 10)), (2, "step-2", _counts(12, 12, 11, 10)),
            (4, "step-4", _counts(14, 10, 11, 11)), (6, "final", _counts(11, 12, 10, 10))]
    return [S.Scored(step, tag, plant(root / f"step-{step}", counts)) for step, tag, counts in plan]


def _rule(**kw) -> SelectSpec:
    return SelectSpec(metric="mmlu", guards=[{"metrics": DOMAINS, "max_drop_pp": 1.0}], **kw)


def test_guard_rejects_the_best_headline_checkpoint_that_regresses_a_domain(planted, tmp_path):
    report = S.select_champion(_rule(), planted)
    rows = {r["tag"]: r for r in report["candidates"]}
    assert rows["step-4"]["value_pp"] == pytest.approx(100 * 46 / 160)  # the best MMLU of the sweep
    assert not rows["step-4"]["passed"] and rows["step-4"]["guards"][0]["failing"] == ["mmlu/humanities"]
    assert rows["step-4"]["guards"][0]["drops_pp"]["mmlu/humanities"] == pytest.approx(5.0)
    assert report["champion"]["tag"] == "step-2" and report["champion"]["value_pp"] == pytest.approx(28.125)
    assert "rejected by a guard despite a better metric: step-4" in report["champion"]["reason"]
    assert not rows["step-0"]["eligible"]  # the start is the guards' baseline, not a candidate (include_start)

    # without the guard the headline alone picks step-4
    assert S.select_champion(SelectSpec(metric="mmlu"), planted)["champion"]["tag"] == "step-4"
    # a guard that tolerates one failing domain lets it through
    loose = SelectSpec(metric="mmlu", guards=[{"metrics": DOMAINS, "max_drop_pp": 1.0, "max_failing": 1}])
    assert S.select_champion(loose, planted)["champion"]["tag"] == "step-4"
    wide = SelectSpec(metric="mmlu", guards=[{"metrics": DOMAINS, "max_drop_pp": 6.0}])  # tolerates the 5 pp drop
    assert S.select_champion(wide, planted)["champion"]["tag"] == "step-4"
    # select on a domain: stem is best at step-4 too; the guard on humanities still rejects it
    stem = SelectSpec(metric="mmlu/stem", guards=[{"metrics": ["mmlu/humanities"], "max_drop_pp": 0}])
    assert S.select_champion(stem, planted)["champion"]["tag"] == "step-2"

    S.write_sweep("planted", planted, report, tmp_path)
    table = (tmp_path / "sweep.md").read_text()
    assert "| 2 ★ | step-2 | 28.12 |" in table
    assert "| 4 | step-4 | 28.75 |" in table and "FAIL: mmlu/humanities -5.00pp" in table
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "selection.json").read_text())["champion"]["tag"] == "step-2"


def test_leads_of_two_and_three_items_are_within_noise(planted):
    report = S.select_champion(_rule(), planted)
    comp = {c["against"]: c for c in report["comparisons"]}
    # nested sets: step-2 is right on 2 items final misses and never the reverse -> p = 2 * 0.5^2
    assert (comp["runner-up"]["tag"], comp["runner-up"]["first_only"], comp["runner-up"]["second_only"]) == \
        ("final", 2, 0)
    assert comp["runner-up"]["p_mcnemar"] == 0.5 and comp["runner-up"]["verdict"] == "within noise"
    assert comp["start"]["p_mcnemar"] == 0.25 and comp["start"]["verdict"] == "within noise"
    assert comp["start"]["diff_pp"] == pytest.approx(100 * 3 / 160) and comp["start"]["n"] == 160
    assert "within noise" in report["champion"]["reason"]


def test_no_candidate_passes_the_guards_hands_on_the_start(planted):
    strict = SelectSpec(metric="mmlu", guards=[{"metrics": ["mmlu/humanities", "mmlu/other"], "max_drop_pp": 0,
                                                "max_failing": 0}], fallback="start")
    assert S.select_champion(strict, planted[:3])["champion"]["tag"] == "step-2"
    report = S.select_champion(strict, [planted[0], planted[2]])  # only step-4, which drops humanities
    assert report["champion"]["tag"] == "step-0" and "no candidate passed the guards" in report["champion"]["reason"]
    final = SelectSpec(metric="mmlu", guards=strict.guards, fallback="final")
    assert S.select_champion(final, [planted[0], planted[2]])["champion"]["tag"] == "step-4"


def test_mode_min_and_include_start(planted):
    assert S.select_champion(SelectSpec(metric="mmlu", mode="min"), planted)["champion"]["tag"] == "final"
    report = S.select_champion(SelectSpec(metric="mmlu", mode="min", include_start=True), planted)
    assert report["champion"]["tag"] == "step-0" and report["candidates"][0]["eligible"]
    assert [c["against"] for c in report["comparisons"]] == ["runner-up"]  # the start is the champion itself
    # with include_start and max the start (42 right) loses to step-2 (45) as before
    assert S.select_champion(_rule(include_start=True), planted)["champion"]["tag"] == "step-2"


def test_a_rule_naming_a_domain_the_results_lack_fails_in_one_line(planted):
    with pytest.raises(S.SelectionError, match=r"mmlu has no domain or subject 'stme' \(domains: humanities"):
        S.check_metrics(SelectSpec(metric="mmlu/stme"), planted[0].folder)
    assert S.metric_value(S.read_results(planted[0].folder), "mmlu/anatomy") == pytest.approx(10 / 40)


# ----------------------------------------------------------------------------------------------------------------
# paired statistics


def test_exact_mcnemar_hand_checked():
    # two-sided: 2 * P(Binomial(n, 1/2) <= min(b, c))
    assert S.mcnemar_exact(1, 9) == 2 * (1 + 10) / 2 ** 10 == 0.021484375
    assert S.mcnemar_exact(3, 5) == 2 * (1 + 8 + 28 + 56) / 2 ** 8 == 0.7265625
    assert S.mcnemar_exact(20, 1) == 2 * (1 + 21) / 2 ** 21
    assert S.mcnemar_exact(4, 4) == 1.0 and S.mcnemar_exact(0, 0) == 1.0
    stats = pytest.importorskip("scipy.stats")
    for b, c in [(1, 9), (3, 5), (0, 7), (12, 30), (50, 71)]:
        assert S.mcnemar_exact(b, c) == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-12)


def test_paired_test_within_noise_by_chance_and_significant_for_a_clear_difference():
    rng = random.Random(7)
    ids = [str(i) for i in range(400)]
    same_a = {i: rng.random() < 0.3 for i in ids}  # two checkpoints, the same accuracy, independent draws
    same_b = {i: rng.random() < 0.3 for i in ids}
    noise = S.paired_compare(same_a, same_b, alpha=0.05)
    assert noise["verdict"] == "within noise" and noise["p_mcnemar"] >= 0.05
    assert noise["ci95_pp"][0] <= 0 <= noise["ci95_pp"][1]

    better = {i: int(i) < 30 for i in ids[:50]}  # 20 items only the better one gets, 1 the other way
    worse = {i: int(i) < 10 or int(i) == 49 for i in ids[:50]}
    clear = S.paired_compare(better, worse, alpha=0.05)
    assert (clear["first_only"], clear["second_only"]) == (20, 1)
    assert clear["p_mcnemar"] == 2 * 22 / 2 ** 21 and clear["verdict"] == "significant"
    assert clear["diff_pp"] == pytest.approx(38.0) and clear["ci95_pp"][0] > 0
    assert S.paired_compare(better, worse, alpha=1e-5)["verdict"] == "within noise"  # p = 2.1e-5 >= alpha


def test_item_correctness_per_metric():
    row = {"benchmark": "hellaswag", "id": "1", "subject": None, "gold": 2, "chosen": {"text": 1, "text_norm": 2}}
    assert S.row_correct(row, "acc_text_norm") and not S.row_correct(row, "acc_text")
    gsm = {"benchmark": "gsm8k", "id": "1", "subject": None, "gold": "72", "chosen": {"answer": "72.0"}}
    assert S.row_correct(gsm, "exact_match")
    hits, scope = S.item_hits([row], "hellaswag@acc_text", "acc_text_norm")
    assert hits == {"1": False} and scope == "all hellaswag items"


# ----------------------------------------------------------------------------------------------------------------
# the recipe side


def test_benchmark_file_table_matches_the_evaluators_registry():
    from shardsmith.evaluation import BENCHMARKS

    assert {n: (b.folder, b.splits, b.default_split) for n, b in BENCHMARKS.items()} == EVAL_BENCHMARK_FILES
    assert {n: b.fewshot_split for n, b in BENCHMARKS.items() if b.fewshot_split} == EVAL_FEWSHOT_SPLIT


def test_eval_section_reaches_the_eval_command(tmp_path):
    """Every eval field is passed to `shardsmith eval` (whose own tests show what each flag does)."""
    from shardsmith.schemas.train_recipe import EvalSpec
    from shardsmith.trainer.hooks import eval_command

    spec = EvalSpec(benchmarks=["ceval", "cmmlu"], data="/b", split="dev", shots=3, limit=7, batch_size=5,
                    dtype="bfloat16")
    cmd = eval_command(tmp_path / "hf", tmp_path / "ev", spec)
    assert cmd[1:5] == ["-m", "shardsmith.cli", "eval", str(tmp_path / "hf")]
    flags = dict(zip(cmd[5::2], cmd[6::2]))
    assert flags == {"--bench": "ceval,cmmlu", "--shots": "3", "--out": str(tmp_path / "ev"), "--batch-size": "5",
                     "--dtype": "bfloat16", "--data": "/b", "--split": "dev", "--limit": "7"}
    plain = eval_command(tmp_path / "hf", tmp_path / "ev", EvalSpec(benchmarks=["mmlu"]))
    assert "--data" not in plain and "--split" not in plain and "--limit" not in plain  # the evaluator's defaults


def test_an_evaluator_failure_is_one_line_naming_stage_and_checkpoint(tmp_path):
    import eval_fixtures as EF
    from shardsmith.schemas.train_recipe import EvalSpec
    from shardsmith.trainer.hooks import SweepError, score_checkpoint

    bench = EF.bench_folder(need_data("mcq_mmlu"), tmp_path / "bench", {"mcq_mmlu": ["test/anatomy_test.csv"]})
    spec = EvalSpec(benchmarks=["mmlu"], data=str(bench), limit=1)
    with pytest.raises(SweepError) as err:
        score_checkpoint(tmp_path / "hf" / "step-2", tmp_path / "ev", spec, "stages.s.eval")
    assert str(err.value) == (f"stages.s.eval: shardsmith eval on {tmp_path / 'hf' / 'step-2'} failed (exit 2): "
                              f"shardsmith eval: error: {tmp_path / 'hf' / 'step-2'}: not an HF model folder "
                              "(no config.json)")


STAGE = {"name": "s", "objective": "sft", "data": {"sets": [{"path": "x"}]}, "max_steps": 4, "save_every": 2}


@pytest.mark.parametrize("extra, message", [
    ({"eval": {"benchmarks": ["mmlu", "mmlu_pro"]}}, "unknown benchmark 'mmlu_pro' (known: mmlu, cmmlu"),
    ({"eval": {"benchmarks": ["ceval"], "split": "test"}}, "ceval has no such split (its splits: val, dev)"),
    ({"select": {"metric": "mmlu"}}, "select needs an eval section"),
    ({"eval": {"benchmarks": ["mmlu"]}, "select": {"metric": "cmmlu/stem"}},
     "select.metric: 'cmmlu/stem' names benchmark 'cmmlu', which eval does not score"),
    ({"eval": {"benchmarks": ["mmlu"]}, "save_every": None}, "eval needs eval.every or save_every"),
])
def test_bad_eval_sections_are_refused_by_the_schema(extra, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        StageSpec(**{**STAGE, **extra})


def test_shipped_sweeps_find_their_benchmark_files_in_shared_data():
    """FF_3.13's repair, Steel's SFT and fgpt's pretrain sweeps pass the recipe check on ../shared/data's layout."""
    from conftest import REPO

    from shardsmith.trainer.stages import check_eval_files

    shared = need_data("mcq_mmlu", "mcq_ceval", "mcq_cmmlu", "mcq_hellaswag_olmes")
    swept = {}
    for name in ("ff313", "steel", "fgpt"):
        recipe = load_recipe(TrainRecipe, REPO / "recipes" / "train" / f"{name}.yaml")
        for s in recipe.stages:
            if s.eval is not None:
                check_eval_files(s.model_copy(update={"eval": s.eval.model_copy(update={"data": str(shared)})}))
                swept[f"{name}.{s.name}"] = (s.eval.benchmarks, s.eval.every, s.select.metric if s.select else None)
    assert swept == {"ff313.repair": (["mmlu"], 50, "mmlu"), "steel.sft": (["ceval", "cmmlu"], 3000, "ceval"),
                     "fgpt.pretrain": (["hellaswag"], 10000, None)}
    repair = load_recipe(TrainRecipe, REPO / "recipes" / "train" / "ff313.yaml").stage("repair")
    assert (repair.merge.t, repair.merge.method, repair.merge.toward) == (0.1, "slerp", "parent")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    tok = F.build_tokenizer(root / "tok")
    return root, F.sft_set(root / "sft", tok, n_train=64, n_val=4)


def _recipe(root, sft, bench, eval_extra: str = "") -> str:
    path = root / "sweep.yaml"
    path.write_text(f"""
name: sweep
seed: 3
model: {{preset: tiny-gpt2}}
engine: {{zero_stage: 0, precision: fp32}}
stages:
  - name: sweep
    objective: sft
    init_from: scratch
    data: {{sets: [{{path: {sft}}}], val_rows: 1}}
    seq_len: 128
    micro_batch_size: 4
    max_steps: 4
    optimizer: {{lr: 3.0e-3}}
    eval: {{benchmarks: [mmlu], data: {bench}, every: 2, limit: 3, batch_size: 8{eval_extra}}}
    select: {{metric: mmlu, guards: [{{metrics: [mmlu/stem, mmlu/humanities], max_drop_pp: 50}}]}}
  - name: next
    objective: sft
    init_from: previous
    data: {{sets: [{{path: {sft}}}], val_rows: 1}}
    seq_len: 128
    micro_batch_size: 4
    max_steps: 1
""")
    return str(path)


def test_missing_benchmark_file_is_one_line_at_check_time(tiny, tmp_path, capsys):
    root, sft = tiny
    (tmp_path / "bench" / "mcq_mmlu" / "test").mkdir(parents=True)
    recipe = _recipe(tmp_path, sft, tmp_path / "bench", ", shots: 2")
    assert cli_main(["train", recipe, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"shardsmith train: error: stages.sweep.eval: mmlu split 'dev' needs "
                   f"{tmp_path / 'bench' / 'mcq_mmlu' / 'dev'}, which does not exist")
    assert not (tmp_path / "run" / "sweep").exists()  # nothing trained
    recipe = _recipe(tmp_path, sft, tmp_path / "nowhere")
    assert cli_main(["train", recipe, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"eval.data: benchmark folder {tmp_path / 'nowhere'} does not exist")


def test_unknown_benchmark_fails_when_the_recipe_is_loaded(tmp_path):
    recipe = _recipe(tmp_path, "x", "y")
    with pytest.raises(RecipeError, match=r"stages.0.eval.benchmarks.*unknown benchmark 'mmlux'"):
        load_recipe(TrainRecipe, recipe, ["stages.sweep.eval.benchmarks=[mmlux]"])


def test_a_sweep_scores_checkpoints_and_hands_its_champion_on(tiny, tmp_path):
    """End to end: step 0, step 2 (exported by the sweep: no save_every) and the last step are scored by the
    `shardsmith eval` subprocess; the champion by the rule is the handoff the next stage starts from."""
    import eval_fixtures as EF
    from shardsmith.trainer.runner import train

    shared = need_data("mcq_mmlu")
    root, sft = tiny
    bench = EF.bench_folder(shared, tmp_path / "bench", {"mcq_mmlu": EF.BENCH_FILES["mcq_mmlu"]})
    out = tmp_path / "run"
    train(_recipe(tmp_path, sft, bench), str(out))

    sdir = out / "sweep"
    for step in (0, 2, 4):
        results = json.loads((sdir / "eval" / f"step-{step}" / "results.json").read_text())["benchmarks"]
        assert results["mmlu"]["metrics"]["acc_letter"]["n"] == 6  # 2 subjects x limit 3
        assert len((sdir / "eval" / f"step-{step}" / "items.jsonl").read_text().splitlines()) == 6
    assert (sdir / "hf" / "step-2" / "config.json").is_file() and not (sdir / "ckpt").exists()

    info = json.loads((sdir / "stage.json").read_text())
    acc = {tag: 100 * json.loads((sdir / "eval" / f"step-{st}" / "results.json").read_text())["benchmarks"]["mmlu"]
           ["metrics"]["acc_letter"]["acc"] for st, tag in ((2, "step-2"), (4, "final"))}
    best = max(acc.values())
    expected = next(tag for tag in ("step-2", "final") if acc[tag] == best)  # ties: the earlier step
    assert info["handoff"] == info["selection"]["champion"]["tag"] == expected
    assert {c["against"] for c in info["selection"]["comparisons"]} == {"runner-up", "start"}

    nxt = json.loads((out / "next" / "stage.json").read_text())
    assert nxt["parent"] == str(sdir / "hf" / expected)
    assert nxt["init_digest"] == (sdir / "hf" / expected / "weights.sha256").read_text().strip()
    table = (sdir / "eval" / "sweep.md").read_text()
    assert f"★ | {expected} |" in table and (sdir / "eval" / "sweep.png").is_file()


def test_paired_items_of_a_domain_come_from_the_rows_domains_else_subject_else_all():
    rows = [{"benchmark": "mmlu", "id": str(i), "subject": subj, "gold": 0, "chosen": {"letter": i % 2},
             **({"domains": doms} if doms else {})}
            for i, (subj, doms) in enumerate([("anatomy", ["stem"]), ("virology", ["other", "extra"]),
                                              ("anatomy", ["stem"]), ("law", None)])]
    hits, scope = S.item_hits(rows, "mmlu/stem", "acc_letter")
    assert hits == {"0": True, "2": True} and scope == "mmlu items of stem"
    assert S.item_hits(rows, "mmlu/extra", "acc_letter")[0] == {"1": False}  # an overlapping group counts too
    assert S.item_hits(rows, "mmlu/law", "acc_letter")[0] == {"3": False}  # by subject
    hits, scope = S.item_hits(rows, "mmlu/humanities", "acc_letter")
    assert len(hits) == 4 and "name no domain 'humanities'" in scope
