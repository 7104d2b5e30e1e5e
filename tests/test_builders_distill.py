"""Distillation: the question pool by source shares (real SFT records), the file teacher's drops and errors, and the
hf teacher on a model this project's trainer trained (greedy == plain ``transformers`` generate, cache resume)."""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import need_data

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trainer_fixtures as F
from shardsmith.builders.distill import (
    EMPTY_OUTPUT, NO_OUTPUT, FileTeacher, HfTeacher, PoolError, TeacherError, make_teacher, plan_counts, plan_pool,
    prompt_text, share_counts,
)
from shardsmith.builders.importers import import_file
from shardsmith.builders.templates import chat_prompt, render, resolve_template
from shardsmith.schemas.distill import DistillSpec, FileTeacherSpec, HfTeacherSpec
from shardsmith.schemas.records import Conversation, Drop, Message

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FF_SHARES = {"hellaswag": 37, "openhermes": 28, "mmlu": 14, "math": 12, "gsm8k": 7, "arc": 2, "truthfulqa": 1}
FF = resolve_template("ff")


# ---------------------------------------------------------------------------------------------------------------
# the pool


def test_share_counts_round_by_largest_remainder_to_the_exact_total():
    assert share_counts({"a": 0.5, "b": 0.3, "c": 0.2}, 7) == {"a": 4, "b": 2, "c": 1}  # 3.5 2.1 1.4 -> +1 to a
    assert share_counts({"a": 1, "b": 1, "c": 1}, 10) == {"a": 4, "b": 3, "c": 3}  # a tie goes to the first listed
    counts = share_counts(FF_SHARES, 108_779)  # the card's shares sum to 101 %: normalized
    assert sum(counts.values()) == 108_779
    quotas = {k: Fraction(v * 108_779, 101) for k, v in FF_SHARES.items()}
    assert all(int(quotas[k]) <= counts[k] <= int(quotas[k]) + 1 for k in counts)
    rounded_up = {k for k in counts if counts[k] > int(quotas[k])}
    rest = 108_779 - sum(int(q) for q in quotas.values())
    assert rounded_up == set(sorted(quotas, key=lambda k: quotas[k] - int(quotas[k]), reverse=True)[:rest])
    assert counts["hellaswag"] == 39_850 and counts["truthfulqa"] == 1_077  # 39,849.73 and 1,077.02


@pytest.fixture(scope="module")
def pools():
    root = need_data("sft_alpaca_en_demo", "sft_oasst1_en_pairs", "sft_rasbt_ch07")
    files = {"alpaca": root / "sft_alpaca_en_demo" / "alpaca_en_demo.json",
             "oasst1": root / "sft_oasst1_en_pairs" / "oasst1_en_instruction_response_pairs.json",
             "rasbt": root / "sft_rasbt_ch07" / "instruction-examples.json"}
    out = {}
    for name, path in files.items():
        out[name] = [r for r in import_file(path, source=name) if isinstance(r, Conversation)]
    return out


def test_plan_pool_draws_exact_counts_of_questions_without_answers(pools):
    shares = {"alpaca": 0.5, "oasst1": 0.3, "rasbt": 0.2}
    pool = plan_pool(pools, shares, 200, seed=1)
    assert [sum(q.source == s for q in pool) for s in shares] == [100, 60, 40]
    originals = {(c.source, c.id): c for cs in pools.values() for c in cs}
    assert len({q.id for q in pool}) == 200
    for q in pool:
        full = originals[(q.source, q.id)]
        assert q.messages[-1].role == "user" and q.n_assistant == 0
        assert full.messages[: len(q.messages)] == q.messages and full.messages[-1].role == "assistant"
    assert [q.id for q in plan_pool(pools, shares, 200, seed=1)] == [q.id for q in pool]  # reproducible
    assert [q.id for q in plan_pool(pools, shares, 200, seed=2)] != [q.id for q in pool]


def test_plan_pool_names_a_short_source_or_takes_all_it_has(pools):
    n = len(pools["rasbt"])
    shares = {"alpaca": 0.5, "oasst1": 0.3, "rasbt": 0.2}
    total = 5 * n + 10  # rasbt's target n + 2
    with pytest.raises(PoolError, match=rf"source 'rasbt' has {n} questions, needs {n + 2} \(short by 2\)"):
        plan_pool(pools, shares, total, seed=0)
    pool = plan_pool(pools, shares, total, seed=0, on_short="take_all")
    counts = {c.source: c for c in plan_counts({k: len(v) for k, v in pools.items()}, shares, total, "take_all")}
    assert counts["rasbt"].shortfall == 2 and counts["rasbt"].taken == n
    assert len(pool) == total - 2 and sum(q.source == "rasbt" for q in pool) == n
    with pytest.raises(PoolError, match="sources without a share: rasbt"):
        plan_pool(pools, {"alpaca": 1, "oasst1": 1}, 10, seed=0)


def test_distill_spec_parses_a_teacher_by_kind():
    spec = DistillSpec.model_validate({"pool": {"total": 108_779, "shares": FF_SHARES},
                                       "teacher": {"kind": "hf", "path": "teachers/big", "max_new_tokens": 64}})
    assert isinstance(spec.teacher, HfTeacherSpec) and spec.teacher.do_sample is False
    with pytest.raises(ValueError, match="exactly one of path"):
        HfTeacherSpec(kind="hf", path="a", hub_id="org/b")


# ---------------------------------------------------------------------------------------------------------------
# teacher `file`


def questions(texts: list[str], source: str = "q") -> list[Conversation]:
    return [Conversation(messages=[Message(role="user", content=t)], source=source, id=f"{source}-{i}")
            for i, t in enumerate(texts)]


def test_file_teacher_answers_by_id_and_counts_its_drops(tmp_path):
    qs = questions(["What is 2+2?", "Name a colour.", "Say hi.", "Capital of France?", "Blank?"])
    rows = [{"id": "q-0", "output": "4", "model": "big-7b", "settings": {"temperature": 0}},
            {"id": "q-1", "output": ""}, {"id": "q-2", "output": None}, {"id": "q-4", "output": " \n"},
            {"id": "q-9", "output": "unused", "model": "big-7b"}]
    path = tmp_path / "outputs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    teacher = make_teacher(FileTeacherSpec(kind="file", path="outputs.jsonl"), base=tmp_path)
    got = teacher.answer(qs)
    assert isinstance(got[0], Conversation) and got[0].messages[-1] == Message(role="assistant", content="4")
    assert got[0].messages[:-1] == qs[0].messages and got[0].metadata == {"teacher": "outputs"}
    assert [(g.reason, g.step) for g in got[1:]] == [(EMPTY_OUTPUT, "teacher")] * 2 + [(NO_OUTPUT, "teacher"),
                                                                                         (EMPTY_OUTPUT, "teacher")]
    assert all(isinstance(g, Drop) and g.record["id"] == q.id for g, q in zip(got[1:], qs[1:]))
    assert teacher.info["rows"] == 5 and teacher.info["models"] == {"big-7b": 2}
    assert teacher.info["settings"] == [{"temperature": 0}]


@pytest.mark.parametrize("line, message", [
    ('{"id": "a", "output": "x"', r"outputs.jsonl:2: not JSON"),
    ('{"output": "x"}', r"outputs.jsonl:2: field 'id' missing"),
    ('{"id": "b"}', r"outputs.jsonl:2: field 'output' missing"),
    ('{"id": "a", "output": "y"}', r"outputs.jsonl:2: id 'a' already given on line 1"),
])
def test_file_teacher_refuses_a_malformed_line_naming_it(tmp_path, line, message):
    (tmp_path / "outputs.jsonl").write_text('{"id": "a", "output": "x"}\n' + line + "\n")
    with pytest.raises(TeacherError, match=message):
        FileTeacher(FileTeacherSpec(kind="file", path=str(tmp_path / "outputs.jsonl")))


# ---------------------------------------------------------------------------------------------------------------
# teacher `hf`: a tiny GPT-2 the project's trainer fine-tunes for a few steps on ff-template Q/A pairs


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    return F.tiny_ff_model(tmp_path_factory.mktemp("distill_teacher"))


QUESTIONS = ["what does the cat sees?", "what does my sister opens?", "Give three tips for staying healthy.",
             "what does a small bird paints?", "x", "what does the robot carries before dinner today?"]


def hf_spec(folder, **kw) -> HfTeacherSpec:
    return HfTeacherSpec(kind="hf", path=str(folder), max_new_tokens=kw.pop("max_new_tokens", 12),
                         batch_size=kw.pop("batch_size", 4), **kw)


def reference_generate(folder, prompts: list[str], batch_size: int, max_new_tokens: int) -> list[str]:
    """Plain transformers: left-padded batches, greedy, new tokens decoded without special tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, padding_side="left")
    tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    out = []
    for i in range(0, len(prompts), batch_size):
        enc = tok(prompts[i:i + batch_size], return_tensors="pt", padding=True)
        with torch.no_grad():
            ids = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                                 pad_token_id=tok.eos_token_id)
        out += [tok.decode(r, skip_special_tokens=True).strip() for r in ids[:, enc["input_ids"].shape[1]:]]
    return out


def test_hf_greedy_is_deterministic_and_equals_plain_generate(teacher_dir, tmp_path):
    qs = questions(QUESTIONS)
    runs = []
    for k in range(2):
        teacher = make_teacher(hf_spec(teacher_dir), template=FF, cache=tmp_path / f"c{k}.jsonl", progress=False)
        runs.append(teacher.answer(qs))
    texts = [g.messages[-1].content if isinstance(g, Conversation) else "" for g in runs[0]]
    assert runs[0] == runs[1]
    prompts = [chat_prompt(q, FF) for q in QUESTIONS]
    assert texts == reference_generate(teacher_dir, prompts, batch_size=4, max_new_tokens=12)
    assert texts == reference_generate(teacher_dir, prompts, batch_size=1, max_new_tokens=12)  # padding is inert
    assert sum(bool(t) for t in texts) >= 3, texts  # a trained model answers most of them
    info = teacher.info
    assert info["generated"] == 6 and info["batches"] == 2 and info["do_sample"] is False
    assert info["path"] == str(teacher_dir.resolve()) and info["transformers"] and info["template"] == "ff"
    assert info["weights"] == (teacher_dir / "weights.sha256").read_text().strip()


def test_hf_cache_resume_generates_only_missing_ids(teacher_dir, tmp_path):
    qs = questions(QUESTIONS)
    cache = tmp_path / "teacher.jsonl"
    first = HfTeacher(hf_spec(teacher_dir), FF, cache, progress=False)
    half = first.answer(qs[:3])
    assert first.stats == {"questions": 3, "from_cache": 0, "generated": 3, "batches": 1}
    with open(cache, "a") as f:  # a run killed while writing: the half line is cut, its id generated again
        f.write('{"id": "q-3", "outp')
    second = HfTeacher(hf_spec(teacher_dir), FF, cache, progress=False)
    model = second._load()[1]
    calls = []
    real_generate = model.generate
    model.generate = lambda **kw: calls.append(kw["input_ids"].shape[0]) or real_generate(**kw)
    full = second.answer(qs)
    assert calls == [3] and second.stats["generated"] == 3 and second.stats["from_cache"] == 3
    assert full[:3] == half
    lines = cache.read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines[1:]] == [q.id for q in qs]  # header + one row per question
    third = HfTeacher(hf_spec(teacher_dir), FF, cache, progress=False)
    assert third.answer(qs) == full and third.stats["generated"] == 0 and third._loaded is None  # no model load
    with pytest.raises(TeacherError, match=r"teacher.jsonl: written with other teacher settings \(differs in: "
                                           r"max_new_tokens\)"):
        HfTeacher(hf_spec(teacher_dir, max_new_tokens=5), FF, cache, progress=False).answer(qs)
    cache.write_text(lines[0] + "\nnot json\n")
    with pytest.raises(TeacherError, match=r"teacher.jsonl:2: not a cache row"):
        HfTeacher(hf_spec(teacher_dir), FF, cache, progress=False).answer(qs)


def test_hf_sampling_is_reproducible_from_its_seed(teacher_dir, tmp_path):
    qs = questions(QUESTIONS[:4])

    def sample(seed: int, cache: str) -> list[str]:
        spec = hf_spec(teacher_dir, do_sample=True, temperature=1.5, top_p=0.95, seed=seed, max_new_tokens=8)
        got = HfTeacher(spec, FF, tmp_path / cache, progress=False).answer(qs)
        return [g.messages[-1].content if isinstance(g, Conversation) else g.reason for g in got]

    first = sample(1, "a.jsonl")
    assert sample(1, "b.jsonl") == first and sample(2, "c.jsonl") != first
    header = json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])["fingerprint"]
    assert (header["temperature"], header["top_p"], header["seed"]) == (1.5, 0.95, 1)


def test_hf_question_the_template_cannot_render_is_dropped_without_loading_the_model(teacher_dir, tmp_path):
    two_turns = Conversation(messages=[Message(role="user", content="Hi"), Message(role="assistant", content="Hey"),
                                       Message(role="user", content="Bye")], source="s", id="t")
    teacher = HfTeacher(hf_spec(teacher_dir), resolve_template("fgpt"), tmp_path / "c.jsonl", progress=False)
    got = teacher.answer([two_turns])
    assert isinstance(got[0], Drop) and got[0].reason == "too_many_turns" and teacher._loaded is None


def test_hf_teacher_that_stops_at_once_is_an_empty_output_drop(teacher_dir, tmp_path):
    """A template whose end marker is the model's first greedy token: generation stops before any text."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(teacher_dir)
    prompt = chat_prompt(QUESTIONS[0], FF)
    first = HfTeacher(hf_spec(teacher_dir, max_new_tokens=1), FF, tmp_path / "a.jsonl", progress=False)
    ids = first._load()[0](prompt, return_tensors="pt")
    import torch

    with torch.no_grad():
        token = int(first._load()[1].generate(**ids, do_sample=False, max_new_tokens=1,
                                              pad_token_id=tok.eos_token_id)[0, -1])
    marker = tok.decode([token])
    tpl = FF.model_copy(update={"name": "ff-stop", "assistant": "### Response:\n{content}" + marker})
    assert tok.encode(marker, add_special_tokens=False) == [token]
    got = HfTeacher(hf_spec(teacher_dir), tpl, tmp_path / "b.jsonl", progress=False).answer(questions(QUESTIONS[:1]))
    assert isinstance(got[0], Drop) and (got[0].reason, got[0].step) == (EMPTY_OUTPUT, "teacher")


def test_prompt_text_is_chat_prompt_and_renders_earlier_turns():
    q = Conversation(messages=[Message(role="user", content="Hi"), Message(role="assistant", content="Hello."),
                               Message(role="user", content="2+2?")], source="s", id="1")
    assert prompt_text(questions(["2+2?"])[0], FF) == chat_prompt("2+2?", FF)
    full = render(q.model_copy(update={"messages": q.messages + [Message(role="assistant", content="4")]}), FF).text
    assert prompt_text(q, FF) + "4" == full
    sys_q = Conversation(messages=[Message(role="system", content="Be brief."), *q.messages[2:]], source="s", id="2")
    assert prompt_text(sys_q, FF) == chat_prompt("2+2?", FF, system="Be brief.")


def test_hf_teacher_refuses_a_folder_without_a_model(tmp_path):
    with pytest.raises(TeacherError, match="no config.json"):
        HfTeacher(hf_spec(tmp_path), FF, tmp_path / "c.jsonl")


def test_teacher_name_system_dtype_device_and_hub_id_take_effect(teacher_dir, tmp_path, monkeypatch):
    import torch

    (tmp_path / "o.jsonl").write_text('{"id": "q-0", "output": "4"}\n')
    named = make_teacher(FileTeacherSpec(kind="file", path="o.jsonl", name="big-7b"), base=tmp_path)
    assert named.info["name"] == "big-7b" and named.answer(questions(["2+2?"]))[0].metadata == {"teacher": "big-7b"}
    spec = hf_spec(teacher_dir, name="tiny", system="Be brief.", dtype="bf16", device="cpu")
    hf = HfTeacher(spec, FF, tmp_path / "c.jsonl", progress=False)
    tok, model, device = hf._load()
    assert model.dtype == torch.bfloat16 and device.type == "cpu"
    assert prompt_text(questions(["2+2?"])[0], FF, spec.system) == chat_prompt("2+2?", FF, system="Be brief.")
    assert hf.info["name"] == "tiny" and (hf.info["dtype"], hf.info["device"], hf.info["system"]) == (
        "bf16", "cpu", "Be brief.")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a hub id is fetched only when named; offline it fails by its name
    hub = HfTeacher(HfTeacherSpec(kind="hf", hub_id="no-org/no-model"), FF, tmp_path / "h.jsonl", progress=False)
    assert hub.info["hub_id"] == "no-org/no-model"
    with pytest.raises(TeacherError, match="teacher.hub_id no-org/no-model: cannot load"):
        hub._load()
