"""Build-level tests of the block kinds mcq, cot and repair (builders/kinds.py): each shipped recipe under
recipes/blocks/ builds (at test scale, through ``build(recipe, out, overrides)`` like ``shardsmith build --set``);
the written documents are decoded back (``writer.inspect_documents``) and checked literally, loss on the answer
only, and the manifest's counts add up. Then the kind-specific promises, each on every written document: Steel's
CoT never states the answer before its explanation, shuffled options keep the answer, repair counts are exact or
the build fails naming every short source, ``on_error`` drops or stops cleanly, ``validation.count`` is exact.

WanJuan exam has no public sample here: the rows below are written in its documented shape (q_type, q_main,
option_a..option_e, std_ans, answer, answer_detail) with the cases Steel's notebook handles: ``故选…`` tails, a
short explanation (non-CoT fallback), a 略 answer, an empty option, a missing std_ans.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import REPO, need_data

from shardsmith.builders import mcq
from shardsmith.builders.block import BuildError
from shardsmith.builders.build import build, load_block_recipe
from shardsmith.builders.importers import _RecordDrop
from shardsmith.builders.kinds import KINDS, read_sources
from shardsmith.builders.templates import render, resolve_template
from shardsmith.builders.writer import inspect_documents
from shardsmith.recipes import RecipeError
from shardsmith.schemas.manifest import ShardManifest
from shardsmith.schemas.records import McqQuestion

BLOCKS = REPO / "recipes" / "blocks"
GPT2 = "tokenizer.name=gpt2"  # the Steel recipes name Qwen's tokenizer; GPT-2 loads 4x faster and keeps <|im_end|>
CHATML = re.compile(r"<\|im_start\|>user\n(.*)<\|im_end\|>\n<\|im_start\|>assistant\n(.*)<\|im_end\|>", re.S)

PURE_WHY = ("A、空气中含有氮气、氧气等多种物质，属于混合物；B、蒸馏水只由水一种物质组成，属于纯净物；C、矿泉水中含有水和多种矿物质，"
            "属于混合物；D、食醋中含有醋酸和水，属于混合物。")
MULTI_WHY = "铁和铜都是金属，能导电；塑料和橡胶是绝缘体，不能导电。"
LONG_WHY = "第一步，仔细阅读题干，找出已知条件和所求问题。" * 40  # > 767 GPT-2 tokens: too_long_tokens


def _wj(q_main: str, options: list[str], std_ans, detail: str, q_type: str = "单选题") -> dict:
    row = {"q_type": q_type, "q_main": q_main, "std_ans": std_ans, "answer": std_ans, "answer_detail": detail,
           "grade": "初中", "major": "化学", "keypoint": ""}
    return {**row, **{f"option_{k}": v for k, v in zip("abcde", [*options, "", "", "", "", ""][:5])}}


WANJUAN = [
    _wj("下列物质中，属于纯净物的是（ ）", ["空气", "蒸馏水", "矿泉水", "食醋"], "B", PURE_WHY + "故选B。\n【点评】本题考查纯净物和混合物的判别。"),
    _wj("下列属于化学变化的是", ["冰雪融化", "纸张燃烧", "酒精挥发", "铁丝弯曲"], "B", "纸张燃烧。"),  # short: non-CoT form
    _wj("下列仪器中，可以直接加热的是", ["试管", "烧杯", "量筒", ""], "A",  # empty option_d: three options shown
        "试管可以直接加热；烧杯加热时需要垫石棉网；量筒不能加热。故选A"),
    _wj("水的化学式是", ["H2O", "CO2", "O2", "NaCl"], None, "水由氢元素和氧元素组成，化学式为H2O。"),  # missing std_ans
    _wj("计算题：求溶液的质量分数", ["5%", "10%", "15%", "20%"], "B", "解：过程略，代入公式即可。故选B"),  # 略: dropped
    _wj("下列物质能导电的是", ["铁", "塑料", "铜", "橡胶"], "A、C", MULTI_WHY + "故选AC", q_type="多选题"),
    _wj("下列说法正确的是", ["甲", "乙", "丙", ""], "D", "只有丁的说法符合题意，其余三项均不正确。"),  # D is the empty option
    _wj("下列变化属于物理变化的是", ["蜡烛燃烧", "铁锅生锈", "水结成冰", "食物腐败"], "", "水结成冰只是状态改变，没有新物质生成。"),  # empty
    _wj("下列关于实验步骤的说法正确的是", ["先检查气密性", "先装药品", "先加热", "先收集气体"], "A", LONG_WHY + "故选A"),
    _wj("下列物质中，属于纯净物的是（ ）", ["空气", "蒸馏水", "矿泉水", "食醋"], "B", PURE_WHY + "故选B。\n【点评】本题考查纯净物和混合物的判别。"),
]
BAD_ROWS = {"missing_answer": 2, "omitted_answer": 1, "answer_not_in_options": 1}  # rows 3, 7; 4; 6
ARC_LIMIT = 20


@pytest.fixture(scope="module")
def wanjuan(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wanjuan") / "exam.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in WANJUAN), encoding="utf-8")
    return path


def build_shipped(name: str, out: Path, overrides: list[str], wanjuan: Path | None = None) -> Path:
    """``shardsmith build recipes/blocks/NAME.yaml --out OUT --set tokenizer.name=gpt2 --set ...``."""
    with pytest.MonkeyPatch.context() as mp:
        if wanjuan is not None:
            mp.setenv("WANJUAN_EXAM", str(wanjuan))
        return build(str(BLOCKS / f"{name}.yaml"), str(out), [GPT2, *overrides])


@functools.cache
def decoded(out: Path) -> dict[str, list[dict]]:
    """Every written document of each split, decoded once per build."""
    return {split: inspect_documents(out, split) for split in ("train", "validation")}


def documents(out: Path) -> list[dict]:
    """Every written document of both splits."""
    return decoded(out)["train"] + decoded(out)["validation"]


def chatml(doc: dict) -> tuple[str, str]:
    """(user prompt, assistant reply) of a document in Qwen's ChatML, checking the loss is exactly on the reply."""
    m = CHATML.fullmatch(doc["text"].removeprefix("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"))
    assert m, doc["text"][:200]
    assert doc["loss_runs"] == [m.group(2) + "<|im_end|>"], doc["loss_runs"]  # the template end is the EOS
    return m.group(1), m.group(2)


def assert_counts_add_up(out: Path) -> dict:
    """read = kept + dropped per source, kept = train + validation per source and in the splits; the manifest."""
    man = ShardManifest.load(out)
    m = json.loads((out / "manifest.json").read_text())
    per_source = m["split_rule"]["per_source"]
    for name, c in m["counts"].items():
        assert c["read"] == c["kept"] + sum(c["dropped"].values()), name
        assert c["kept"] == sum(per_source.get(name, {}).values()), name
    for split in ("train", "validation"):
        assert man.splits[split].documents == sum(s[split] for s in per_source.values()), split
        assert len(decoded(out)[split]) == man.splits[split].documents, split
    return m


# ---------------------------------------------------------------------------------------------------------------
# steel-mcq: Steel-LLM's non-CoT exam form


@pytest.fixture(scope="module")
def steel_mcq(tmp_path_factory, wanjuan) -> Path:
    need_data("mcq_arc")
    return build_shipped("steel-mcq", tmp_path_factory.mktemp("steel") / "out",
                         [f"sources.english_choice.limit={ARC_LIMIT}"], wanjuan)


def test_steel_mcq_builds_literal_wanjuan_and_arc_documents(steel_mcq):
    pairs = dict(chatml(d) for d in documents(steel_mcq))
    assert pairs["以下是一道单选题:\n下列物质中，属于纯净物的是（ ）\nA. 空气\nB. 蒸馏水\nC. 矿泉水\nD. 食醋\n请给出答案。\n"] == (
        "B。" + PURE_WHY + "故选B。\n【点评】本题考查纯净物和混合物的判别。")
    # the empty option_d is not shown; a 多选题 keeps its letters, sorted, and Steel's fixed 单选题 header
    assert pairs["以下是一道单选题:\n下列仪器中，可以直接加热的是\nA. 试管\nB. 烧杯\nC. 量筒\n请给出答案。\n"] == (
        "A。试管可以直接加热；烧杯加热时需要垫石棉网；量筒不能加热。故选A")
    assert pairs["以下是一道单选题:\n下列物质能导电的是\nA. 铁\nB. 塑料\nC. 铜\nD. 橡胶\n请给出答案。\n"] == "AC。" + MULTI_WHY + "故选AC"
    assert pairs["以下是一道单选题:\n下列属于化学变化的是\nA. 冰雪融化\nB. 纸张燃烧\nC. 酒精挥发\nD. 铁丝弯曲\n请给出答案。\n"] == "B。纸张燃烧。"
    arc = ("The following is a multiple-choice question. Please choose the most suitable one among A, B, C and D as "
           "the answer to this question.\n\nA human CANNOT survive the loss of which of the following?\n"
           "A. The appendix\nB. The liver\nC. A lung\nD. A kidney\n")
    assert pairs[arc] == "B. The liver"
    assert len(pairs) == 4 + ARC_LIMIT


def test_steel_mcq_counts_add_up_and_drop_reasons_are_counted(steel_mcq):
    m = assert_counts_add_up(steel_mcq)
    assert m["counts"]["wanjuan_exam"] == {"read": 10, "kept": 4, "dropped": {
        **BAD_ROWS, "too_long_tokens": 1, "duplicate": 1}}
    assert m["counts"]["english_choice"] == {"read": ARC_LIMIT, "kept": ARC_LIMIT, "dropped": {}}
    assert m["kind"] == "mcq" and [s["kind"] for s in m["sources"]] == ["mcq:wanjuan", "mcq:arc"]
    with gzip.open(steel_mcq / "rejected" / "wanjuan_exam.jsonl.gz", "rt", encoding="utf-8") as f:
        rejected = [json.loads(x) for x in f]
    assert Counter(r["reason"] for r in rejected) == Counter(m["counts"]["wanjuan_exam"]["dropped"])
    missing = next(r for r in rejected if r["id"] == "exam.jsonl:3")
    assert (missing["reason"], missing["step"]) == ("missing_answer", "import")
    assert missing["detail"].endswith("exam.jsonl: record 3: field 'std_ans' is empty")


def test_on_error_drop_counts_bad_rows_and_fail_stops_naming_the_record(steel_mcq, wanjuan, tmp_path, capsys):
    """``on_error: drop`` (the default, the fixture's build) counts each bad row by reason; ``fail`` stops at the
    first one with a one-line error naming the file, the record and the reason, and leaves nothing at --out."""
    dropped = json.loads((steel_mcq / "manifest.json").read_text())["counts"]["wanjuan_exam"]["dropped"]
    assert {k: dropped[k] for k in BAD_ROWS} == BAD_ROWS
    from shardsmith.cli import main

    out = tmp_path / "failed"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANJUAN_EXAM", str(wanjuan))
        mp.setattr("shardsmith.cli._quiet_logs", lambda verbose: None)  # leave loguru's handlers to the session
        rc = main(["build", str(BLOCKS / "steel-mcq.yaml"), "--out", str(out), "--set", GPT2,
                   "--set", "on_error=fail"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err, err
    assert err == (f"shardsmith build: error: source wanjuan_exam: {wanjuan}: record 3: field 'std_ans' is empty "
                   "(missing_answer; on_error: fail)")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_on_error_fail_stops_on_bad_input_only_a_format_rule_stays_a_counted_drop(tmp_path):
    """Steel drops outputs holding 略 by its own rule: under ``on_error: fail`` that row is still a counted drop
    (step ``format``), while a row with no ``std_ans`` key at all is bad input (step ``import``)."""
    need_data("mcq_arc")
    good = [r for r in WANJUAN if r["std_ans"] and r["q_main"] != "下列说法正确的是"]  # valid input + the 略 row
    path = tmp_path / "exam.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in good), encoding="utf-8")
    out = build_shipped("steel-mcq", tmp_path / "fail", ["on_error=fail", "sources.english_choice.limit=4"], path)
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"]["wanjuan_exam"]["dropped"]["omitted_answer"] == 1
    rejected = [json.loads(x) for x in gzip.open(out / "rejected" / "wanjuan_exam.jsonl.gz", "rt")]
    assert {(r["reason"], r["step"]) for r in rejected} >= {("omitted_answer", "format")}
    no_key = {k: v for k, v in WANJUAN[1].items() if k != "std_ans"}  # the key is absent, not empty
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [no_key, *good]), encoding="utf-8")
    out = build_shipped("steel-mcq", tmp_path / "drop", ["sources.english_choice.limit=4"], path)
    dropped = json.loads((out / "manifest.json").read_text())["counts"]["wanjuan_exam"]["dropped"]
    assert dropped["missing_answer"] == 1 and dropped["omitted_answer"] == 1


# ---------------------------------------------------------------------------------------------------------------
# steel-mcq-cot: the explanation first, then 答案为X


def wanjuan_questions() -> dict[str, McqQuestion]:
    """The WanJuan rows that parse, re-parsed with ``mcq.parse_question``, by question text."""
    out = {}
    for i, row in enumerate(WANJUAN):
        try:
            q = mcq.parse_question(row, "wanjuan", source="wj", rec_id=str(i))
        except _RecordDrop:
            continue
        out[q.question] = q
    return out


@pytest.fixture(scope="module")
def steel_cot(tmp_path_factory, wanjuan) -> Path:
    need_data("mcq_arc")
    return build_shipped("steel-mcq-cot", tmp_path_factory.mktemp("steelcot") / "out",
                         [f"sources.english_choice.limit={ARC_LIMIT}"], wanjuan)


def test_steel_mcq_cot_never_states_the_answer_before_the_explanation(steel_cot):
    """On every written document: a CoT prompt's reply is the source's explanation with ``故选…`` cut, then
    ``答案为X`` once, at the end; every other WanJuan document is a question Steel's rule sends to the non-CoT form."""
    m = assert_counts_add_up(steel_cot)
    assert m["counts"]["wanjuan_exam"]["dropped"] == {**BAD_ROWS, "too_long_tokens": 1, "duplicate": 1}
    questions = wanjuan_questions()
    forms = Counter()
    for doc in documents(steel_cot):
        prompt, reply = chatml(doc)
        if prompt.startswith("The following is a multiple-choice question."):
            forms["english"] += 1
            continue
        q = questions[prompt.split("\n")[1]]
        if prompt.endswith("请先给出解释再给出答案。\n"):
            forms["cot"] += 1
            body = re.sub(r"故选.*", "", q.explanation, flags=re.S)
            assert reply == body + f"答案为{q.answer}" and body.strip(), reply
            assert "答案为" not in body and "故选" not in body and not re.match(r"\s*[A-E]+\s*。", reply), reply
        else:
            forms["fallback"] += 1
            assert mcq.steel_cot_is_fallback(q) and reply == f"{q.answer}。{q.explanation}", reply
    assert forms == {"english": ARC_LIMIT, "cot": 3, "fallback": 1}
    pairs = dict(chatml(d) for d in documents(steel_cot))
    assert pairs["以下是一道单选题:\n下列物质中，属于纯净物的是（ ）\nA. 空气\nB. 蒸馏水\nC. 矿泉水\nD. 食醋\n请先给出解释再给出答案。\n"] == (
        PURE_WHY + "答案为B")  # 故选B and the 点评 after it removed
    assert pairs["以下是一道多选题:\n下列物质能导电的是\nA. 铁\nB. 塑料\nC. 铜\nD. 橡胶\n请先给出解释再给出答案。\n"] == MULTI_WHY + "答案为AC"


# ---------------------------------------------------------------------------------------------------------------
# shuffle_options and validation.count (steel-mcq with both set)


OPTION_LINE = re.compile(r"([A-E])\. (.*)")
SHUFFLED_VALIDATION = 5


def arc_questions(limit: int) -> dict[str, list[McqQuestion]]:
    """The first ``limit`` ARC records the recipe reads, re-parsed with ``mcq.parse_question``, by question text."""
    paths = mcq.expand_mcq_paths([str(need_data("mcq_arc") / "mcq_arc")])
    out: dict[str, list[McqQuestion]] = {}
    records = ((p, i, r) for p in paths for i, r in mcq.iter_mcq_file(p, "arc"))
    for n, (p, i, r) in enumerate(records):
        if n == limit:
            break
        q = mcq.parse_question(r, "arc", source="arc", rec_id=f"{p.name}:{i}")
        out.setdefault(q.question, []).append(q)
    return out


def shown_question(prompt: str) -> tuple[str, dict[str, str], str]:
    """(question, {letter: option text}, style) of a Steel or English MCQ prompt as written."""
    if prompt.startswith("The following is a multiple-choice question."):
        body, style = prompt.split("\n\n", 1)[1], "english"
    else:
        body, style = re.sub(r"请(先给出解释再)?给出答案。\n$", "", prompt.split("\n", 1)[1]), "steel"
    lines = body.rstrip("\n").split("\n")
    k = len(lines)
    while k and OPTION_LINE.fullmatch(lines[k - 1]):
        k -= 1
    return "\n".join(lines[:k]), dict(OPTION_LINE.fullmatch(x).groups() for x in lines[k:]), style


def answer_letters_of(reply: str, style: str) -> str:
    return reply.split("。", 1)[0] if style == "steel" else reply.split(".", 1)[0]


def assert_answer_kept(question: str, shown: dict[str, str], letters: str, originals: list[McqQuestion]) -> bool:
    """The shown letters point at the original answer's text, the options are the original's; True if relettered."""
    assert letters and set(letters) <= set(shown), (question, letters, shown)
    fits = [q for q in originals if set(shown.values()) <= set(q.options.values())]
    assert fits, question
    for q in fits:
        assert sorted(shown[L] for L in letters) == sorted(q.options[a] for a in q.answer), (question, letters)
    return any(letters != q.answer for q in fits)


@pytest.fixture(scope="module")
def shuffled(tmp_path_factory, wanjuan) -> Path:
    need_data("mcq_arc")
    return build_shipped("steel-mcq", tmp_path_factory.mktemp("shuffled") / "out",
                         [f"sources.english_choice.limit={ARC_LIMIT}",
                          "sources.english_choice.options={style: english, shuffle_options: true}",
                          f"validation.count={SHUFFLED_VALIDATION}"], wanjuan)


def test_shuffle_options_keeps_the_answer_on_every_document(shuffled):
    originals = {k: [v] for k, v in wanjuan_questions().items()} | arc_questions(ARC_LIMIT)
    docs = documents(shuffled)
    moved = 0
    for doc in docs:
        prompt, reply = chatml(doc)
        question, shown, style = shown_question(prompt)
        moved += assert_answer_kept(question, shown, answer_letters_of(reply, style), originals[question])
        if style == "english":
            letter = reply.split(".", 1)[0]
            assert reply == f"{letter}. {shown[letter]}"
    assert len(docs) == 4 + ARC_LIMIT and moved >= len(docs) // 2  # most answers moved, none was lost
    # Steel's styles write WanJuan's explanation ("故选B"): shuffling there would leave its letters stale
    with pytest.raises(RecipeError, match="shuffle_options: style 'steel' writes the dataset's explanation"):
        build_shipped("steel-mcq", shuffled.parent / "refused", ["shuffle_options=true"], wanjuan)


def test_validation_count_holds_out_exactly_n(shuffled, wanjuan, tmp_path):
    m = assert_counts_add_up(shuffled)
    assert m["split_rule"]["validation_count"] == SHUFFLED_VALIDATION
    assert sum(s["validation"] for s in m["split_rule"]["per_source"].values()) == SHUFFLED_VALIDATION
    assert len(decoded(shuffled)["validation"]) == SHUFFLED_VALIDATION
    kept = 4 + 3  # WanJuan rows kept + ARC rows read below
    with pytest.raises(BuildError, match=rf"^validation.count {kept}: only {kept} rows were kept, none would be left "
                                         "to train on$"):
        build_shipped("steel-mcq", tmp_path / "o", ["sources.english_choice.limit=3", f"validation.count={kept}"],
                      wanjuan)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------------
# memphis-cot: TinyCoT from GSM8K, AQuA-RAT, FLAN CoT


@pytest.fixture(scope="module")
def memphis(tmp_path_factory) -> Path:
    need_data("mcq_gsm8k", "cot_aqua_rat", "cot_flan_v2")
    return build_shipped("memphis-cot", tmp_path_factory.mktemp("memphis") / "out",
                         ["sources.gsm8k.limit=20", "sources.aqua_rat.limit=20", "sources.flan_cot.limit=40"])


def tinycot(text: str, eos: str = "<|endoftext|>") -> tuple[str, str, str]:
    """(question, rationale, answer) of a TinyCoT text."""
    m = re.fullmatch(r"### User:\n(.*?)\n\n### Rationale:\n(.*)\n\n### Answer:\n(.*)" + re.escape(eos), text, re.S)
    assert m, text[:300]
    return m.groups()


def tinycot_doc(doc: dict) -> tuple[str, str, str]:
    """:func:`tinycot` of a written document whose loss is exactly the reply after '### Rationale:' (+ EOS)."""
    assert doc["loss_runs"] == [doc["text"].split("### Rationale:\n", 1)[1]], doc["loss_runs"]
    return tinycot(doc["text"])


def test_memphis_cot_builds_tinycot_documents(memphis):
    from shardsmith.builders.cot import _ANSWER_HEAD, parse_tinycot

    m = assert_counts_add_up(memphis)
    assert {k: (c["read"], c["dropped"]) for k, c in m["counts"].items()} == {
        "gsm8k": (20, {}), "aqua_rat": (20, {}), "flan_cot": (40, {"answer_in_rationale_head": 1})}
    docs = {tinycot_doc(d)[0]: d for d in documents(memphis)}
    assert docs["Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How "
                "many clips did Natalia sell altogether in April and May?"]["text"].split("### Rationale:\n")[1] == (
        "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\n\n"
        "### Answer:\n72<|endoftext|>")  # GSM8K's calculator annotations removed
    aqua = docs["Three birds are flying at a fast rate of 900 kilometers per hour. What is their speed in miles per "
                "minute? [1km = 0.6 miles]\nOptions:\n(A) 32400\n(B) 6000\n(C) 600\n(D) 60000\n(E) 10"]
    assert aqua["text"].endswith("Correct answer - A\n\n### Answer:\n(A) 32400<|endoftext|>")
    for d in docs.values():  # the answer comes after the reasoning, never in its first line
        rationale, answer = parse_tinycot(d["text"].removesuffix("<|endoftext|>"))
        assert (rationale, answer) == tinycot(d["text"])[1:] and not _ANSWER_HEAD.match(rationale.split("\n", 1)[0])


def test_cot_kind_defaults_to_tinycot_and_mcq_answer_letter(tmp_path):
    """A cot recipe without ``template:`` renders TinyCoT; ``mcq_answer: letter`` answers an AQuA question and a
    C-Eval question (an MCQ source: its explanation is the rationale) with the bare letter; ``answer_format:
    answer_line`` ends the reply with ``Answer: X`` instead of the ``### Answer:`` block."""
    root = need_data("cot_aqua_rat", "mcq_ceval")
    (tmp_path / "r.yaml").write_text(f"""kind: cot
name: letters
mcq_answer: letter
sources:
  - {{name: aqua, paths: [{root}/cot_aqua_rat/dev.json], shape: aqua_rat, limit: 3}}
  - {{name: ceval, paths: [{root}/mcq_ceval/dev/accountant_dev.csv], shape: ceval, limit: 2}}
""")
    recipe, _ = load_block_recipe(tmp_path / "r.yaml")
    items, _ = read_sources(recipe, KINDS["cot"], tmp_path)
    template = resolve_template(recipe.template)
    line, _ = load_block_recipe(tmp_path / "r.yaml", ["answer_format=answer_line"])
    line_items = read_sources(line, KINDS["cot"], tmp_path)[0]
    docs = {}
    for it, as_line in zip(items["aqua"] + items["ceval"], line_items["aqua"] + line_items["ceval"], strict=True):
        question, rationale, answer = tinycot(render(it.conv, template).text, eos="")
        docs[question] = (rationale, answer)
        assert as_line.conv.messages[1].content == f"{rationale}\nAnswer: {answer}"
    assert template.name == "tinycot" and len(docs) == 5 and {a for _, a in docs.values()} <= set("ABCDE")
    three_birds = next(v for k, v in docs.items() if k.startswith("Three birds"))
    assert three_birds[1] == "A"
    ceval = next(v for k, v in docs.items() if k.startswith("甲公司是国内一家上市公司"))
    assert ceval == ("1. 乙公司属于甲公司全新的子公司，在启动2016年度预算编制工作时没有可以参考的基数，预算编制者必须根据自己的经验和判断，"
                     "加上对周围环境变化的预期来做预算。因此，乙公司应编制零基预算。", "B")


# ---------------------------------------------------------------------------------------------------------------
# ff-repair: exact counts per block, or a one-line failure naming every short block


REPAIR_COUNTS = {"block_a_mcq": 700, "block_b_factual": 60, "block_d_numeric": 350}
REPAIR_VALIDATION = 80
REPAIR_LIMITS = ["sources.block_b_factual.limit=150", "sources.block_d_numeric.limit=400"]  # enough, read fast


@pytest.fixture(scope="module")
def repair(tmp_path_factory) -> Path:
    need_data("mcq_arc", "mcq_truthfulqa", "mcq_gsm8k")
    return build_shipped("ff-repair", tmp_path_factory.mktemp("repair") / "out", REPAIR_LIMITS)


def ff(doc: dict) -> tuple[str, str]:
    """(instruction, response) of an FF-template document; the loss is exactly the response + EOS."""
    m = re.fullmatch(r"### System:\nYou are FF-LLM, a helpful assistant.\n### Instruction:\n(.*)\n### Response:\n(.*)"
                     r"<\|endoftext\|>", doc["text"], re.S)
    assert m, doc["text"][:300]
    assert doc["loss_runs"] == [m.group(2) + "<|endoftext|>"]
    return m.groups()


def test_ff_repair_hits_every_count_exactly(repair):
    m = assert_counts_add_up(repair)
    per_source = m["split_rule"]["per_source"]
    assert {k: v["train"] for k, v in per_source.items()} == REPAIR_COUNTS
    assert sum(v["validation"] for v in per_source.values()) == REPAIR_VALIDATION
    assert {k: v["validation"] for k, v in per_source.items()} == {"block_a_mcq": 51, "block_b_factual": 4,
                                                                    "block_d_numeric": 25}  # 80 in proportion
    assert m["counts"]["block_b_factual"]["dropped"] == {"too_long_chars": 3, "over_count": 83}
    pairs = dict(ff(d) for d in documents(repair))
    assert len(pairs) == sum(REPAIR_COUNTS.values()) + REPAIR_VALIDATION
    # three of the rows the seeded reading order keeps (block.VisitOrder), rendered character for character
    assert pairs["Which plant part absorbs minerals?\nA. leaf\nB. root\nC. fruit\nD. flower"] \
        == "Answer: B"  # Block A, style answer_letter
    assert pairs["John writes 20 pages a day.  How long will it take him to write 3 books that are 400 pages each?"] \
        == "He wants to write 3*400=1200 pages\nSo it will take him 1200/20=60 days\nAnswer: 60"  # Block D, answer_line
    assert pairs["Can reindeer really fly?"] == "No, reindeer can't really fly"  # Block B, style answer_text
    factual = [r for q, r in pairs.items() if not re.search(r"\nA\. ", q) and "\nAnswer: " not in r]
    assert len(factual) == 64 and all(0 < len(r) < 100 for r in factual)  # Block B: the best answer, < 100 chars


def test_repair_shortfall_names_every_short_source(tmp_path):
    """Asking more than a block can give fails before anything is written, in one line naming each short block, what
    it had after filtering, what was asked (count + its share of validation.count) and the shortfall."""
    need_data("mcq_arc", "mcq_truthfulqa", "mcq_gsm8k")
    limits = ["sources.block_a_mcq.limit=100", "sources.block_b_factual.limit=50", "sources.block_d_numeric.limit=30"]
    counts = ["sources.block_a_mcq.count=150", "sources.block_b_factual.count=60", "sources.block_d_numeric.count=20"]
    with pytest.raises(BuildError) as err:
        build_shipped("ff-repair", tmp_path / "o", limits + counts)
    # validation.count 80 over the counts 150 / 60 / 20: 52 / 21 / 7 held out; block D (27 of 30 rows) is not short
    m = re.fullmatch(r"exact counts not met: block_a_mcq: 100 rows after filtering, 150 \+ 52 held out asked, short "
                     r"by 102; block_b_factual: (\d+) rows after filtering, 60 \+ 21 held out asked, short by (\d+)",
                     str(err.value))
    assert m and int(m[1]) <= 50 and int(m[2]) == 81 - int(m[1]), str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_repair_options_reach_mcq_and_cot_sources():
    """``shuffle_options``, ``answer_format`` and ``mcq_answer`` of a repair recipe reach its MCQ and CoT sources."""
    root = need_data("mcq_arc", "mcq_gsm8k", "cot_aqua_rat")
    recipe, _ = load_block_recipe(BLOCKS / "ff-repair.yaml", [
        "shuffle_options=true", "answer_format=tinycot", "mcq_answer=letter", "sources.block_a_mcq.limit=40",
        "sources.block_b_factual.limit=2", "sources.block_d_numeric.limit=2",
        f"sources.block_b_factual.paths=[{root}/cot_aqua_rat/dev.json]", "sources.block_b_factual.shape=aqua_rat",
        "sources.block_b_factual.options={}"])
    items, _ = read_sources(recipe, KINDS["repair"], BLOCKS)
    originals = arc_questions(40)
    moved = 0
    for it in items["block_a_mcq"]:
        prompt, reply = (m.content for m in it.conv.messages)
        question, shown = prompt.split("\nA. ", 1)[0], dict(
            OPTION_LINE.fullmatch(x).groups() for x in prompt.split("\n") if OPTION_LINE.fullmatch(x))
        moved += assert_answer_kept(question, shown, reply.removeprefix("Answer: "), originals[question])
    assert len(items["block_a_mcq"]) == 40 and moved >= 20
    replies = {name: [it.conv.messages[1].content for it in items[name]] for name in items}  # in seeded order
    assert any(r.endswith("Correct answer - A\n\n### Answer:\nA") for r in replies["block_b_factual"])
    assert ("Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\n\n"
            "### Answer:\n72") in replies["block_d_numeric"]


@pytest.mark.parametrize("name", ["steel-mcq", "memphis-cot", "ff-repair"])
def test_mcq_cot_and_repair_recipes_refuse_self_cognition(name, monkeypatch):
    monkeypatch.setenv("WANJUAN_EXAM", "unused.jsonl")
    with pytest.raises(RecipeError, match=r"field 'self_cognition': Input should be None"):
        load_block_recipe(BLOCKS / f"{name}.yaml", ["self_cognition={name: X, author: Y}"])


def test_a_template_or_tokenizer_spec_error_stops_the_build_before_any_source_is_read(tmp_path, monkeypatch):
    """The tokenizer loads after the sources are read (its load then overlaps the language-ID children), but the
    recipe's template and tokenizer spec are checked first: a typo there fails before any reading."""
    from shardsmith.builders import block
    from shardsmith.builders.kinds import build_block
    from shardsmith.schemas.block_recipe import SftBlockRecipe

    def no_reading(*args, **kwargs):
        raise AssertionError("a source was read")

    monkeypatch.setattr(block, "read_source", no_reading)
    monkeypatch.setattr("shardsmith.builders.kinds.read_source", no_reading)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"instruction": "q", "output": "a"}\n', encoding="utf-8")
    recipe = {"kind": "sft", "name": "x", "tokenizer": {"name": "gpt2"}, "template": "no-such-template",
              "sources": [{"name": "s", "paths": [str(rows)]}]}
    with pytest.raises(Exception, match="unknown template 'no-such-template'"):
        build_block(SftBlockRecipe.model_validate(recipe), tmp_path / "out")
    recipe = {**recipe, "template": "t1b", "tokenizer": {"name": "gpt2", "train": {"vocab_size": 1000}}}
    with pytest.raises(BuildError, match="a block cannot train its tokenizer"):
        build_block(SftBlockRecipe.model_validate(recipe), tmp_path / "out")
    assert not (tmp_path / "out").exists()
