"""MCQ importers and styles (builders/mcq.py): literal renders of real records per importer, the Steel WanJuan
formats against the outputs printed in Steel's own notebook (rows rebuilt in WanJuan's documented shape), every
bad-input reason on hand-written rows, and the option shuffle checked on every record of the real samples."""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import need_data

from shardsmith.builders import importers, mcq
from shardsmith.schemas.records import Conversation, Drop, McqQuestion

REAL = ("mcq_mmlu", "mcq_cmmlu", "mcq_ceval", "mcq_arc", "mcq_hellaswag_olmes", "mcq_truthfulqa")
SAMPLE = {  # dataset folder (the fast part of it) -> questions; every one parses, none is dropped
    "mcq_mmlu/dev": 285, "mcq_cmmlu/dev": 335, "mcq_ceval": 1606, "mcq_arc": 869, "mcq_hellaswag_olmes": 1000,
    "mcq_truthfulqa": 817,
}


def _questions(path: Path, **kw) -> list[McqQuestion | Drop]:
    return [x for p in mcq.expand_mcq_paths([str(path)]) for x in mcq.import_questions(p, source=path.name, **kw)]


@pytest.fixture(scope="module")
def real() -> dict[str, list[McqQuestion]]:
    root = need_data(*REAL)
    out = {}
    for sub, n in SAMPLE.items():
        items = _questions(root / sub)
        assert not [d for d in items if isinstance(d, Drop)], sub
        assert len(items) == n, sub
        out[sub] = items
    return out


def _one(root: Path, rel: str, where=lambda q: True) -> McqQuestion:
    return next(q for q in mcq.import_questions(root / rel, source="s") if where(q))


# ---------------------------------------------------------------------------------------------------------------
# real records, rendered literally


def test_mmlu_indexed_export_english_style(real):
    q = _one(need_data("mcq_mmlu"), "mcq_mmlu/dev/medical_genetics_dev.csv")
    assert (q.answer, q.subject, q.id) == ("C", "medical_genetics", "medical_genetics_dev.csv:0")
    assert mcq.render(q, "english") == (
        "The following is a multiple-choice question. Please choose the most suitable one among A, B, C and D as the "
        "answer to this question.\n\nLarge triplet repeat expansions can be detected by:\nA. polymerase chain "
        "reaction.\nB. single strand conformational polymorphism analysis.\nC. Southern blotting.\nD. Western "
        "blotting.\n",
        "C. Southern blotting.",
    )


def test_mmlu_headerless_rows_parse_like_the_indexed_export(tmp_path):
    """The original hendrycks layout (no header, letter answer) written from the real export reads back identical."""
    src = need_data("mcq_mmlu") / "mcq_mmlu/dev/formal_logic_dev.csv"
    with src.open(encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    dst = tmp_path / "formal_logic_dev.csv"
    with dst.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([*r[:5], "ABCD"[int(r[5])]] for r in rows)
    assert not mcq.is_csv_header(next(csv.reader(dst.open(encoding="utf-8"))))
    indexed, plain = list(mcq.import_questions(src, source="s")), list(mcq.import_questions(dst, source="s"))
    assert len(plain) == len(rows) == 5
    assert [q.model_dump() for q in plain] == [q.model_dump() for q in indexed]


def test_csv_header_detection_on_every_real_family():
    root = need_data("mcq_mmlu", "mcq_cmmlu", "mcq_ceval", "mcq_truthfulqa")
    for rel in ("mcq_mmlu/dev/anatomy_dev.csv", "mcq_cmmlu/dev/marketing.csv", "mcq_ceval/dev/accountant_dev.csv",
                "mcq_ceval/val/accountant_val.csv", "mcq_truthfulqa/TruthfulQA.csv"):
        with (root / rel).open(encoding="utf-8-sig") as f:
            assert mcq.is_csv_header(next(csv.reader(f))), rel
    assert not mcq.is_csv_header(["question", "answer", "b", "c", "d", "A"])  # an MMLU row, whatever its words


def test_cmmlu_steel_and_answer_only():
    q = _one(need_data("mcq_cmmlu"), "mcq_cmmlu/dev/marketing.csv")
    assert mcq.render(q, "steel") == (
        "以下是一道单选题:\n马斯洛需要层次理论中的最低层次是\nA. 自我实现的需要\nB. 社会需要\nC. 安全需要\nD. 生理需要\n请给出答案。\n",
        "D。")
    assert mcq.render(q, "cmmlu_answer") == (
        "以下是一道单选题:\n马斯洛需要层次理论中的最低层次是\n\nA. 自我实现的需要\nB. 社会需要\nC. 安全需要\nD. 生理需要\n请给出答案。\n", "D")


def test_ceval_explanation_styles_and_blank_removal():
    root = need_data("mcq_ceval")
    q = _one(root, "mcq_ceval/dev/education_science_dev.csv")
    expl = ("1. 首先，了解冯忠良教授的学习分类，他将学习分为知识的学习、技能的学习、行为规范的学习三类。\n2. 其次，行为规范的学习，行为规范是指学生应该"
            "遵守的行为准则和规范，如尊重他人、诚实守信等，这些规范可以直接引导学生形成正确的行为习惯和价值观念，从而培养学生的品德。")
    assert (q.id, q.subject, q.explanation) == ("education_science_dev:0", "education_science", expl)
    choices = "根据我国心理学家冯忠良教授的学习分类，培养学生品德要通过____。\nA. 知识的学习\nB. 技能的学习\nC. 行为规范的学习\nD. 态度的学习\n"
    assert mcq.render(q, "steel") == (f"以下是一道单选题:\n{choices}请给出答案。\n", "C。" + expl)
    assert mcq.render(q, "steel_cot") == (f"以下是一道单选题:\n{choices}请先给出解释再给出答案。\n", expl + "答案为C")
    assert mcq.render(q, "letter_explanation")[1] == "Answer: C\n" + expl
    v = _one(root, "mcq_ceval/val/accountant_val.csv")
    assert mcq.render(v, "cmmlu_answer")[0].startswith("以下是一道单选题:\n下列关于税法基本原则的表述中，不正确的是。\n\nA. 税收法定原则")


def test_arc_arrow_labels_and_option_counts():
    root = need_data("mcq_arc")
    easy = root / "mcq_arc/ARC-Easy/validation/data-00000-of-00001.arrow"
    q = _one(root, str(easy.relative_to(root)))
    assert mcq.render(q, "answer_letter") == (
        "Which technology was developed most recently?\nA. cellular telephone\nB. television\nC. refrigerator\n"
        "D. airplane", "Answer: A")
    five = _one(root, str(easy.relative_to(root)), lambda x: len(x.options) == 5)
    assert mcq.render(five, "english") == (
        "The following is a multiple-choice question. Please choose the most suitable one among A, B, C, D and E as "
        "the answer to this question.\n\nWhich form of solar radiation causes sunburn?\nA. Visible\nB. Ultraviolet\n"
        "C. Infrared\nD. X-rays\nE. Radio waves\n", "B. Ultraviolet")
    raw = dict(mcq.iter_mcq_file(root / "mcq_arc/ARC-Challenge/validation/data-00000-of-00001.arrow"))
    numbered = next(r for r in raw.values() if r["choices"]["label"][0] == "1")  # labels 1-4 -> A-D by position
    q = mcq.parse_question(numbered, "arc", source="s", rec_id=numbered["id"])
    assert list(q.options) == ["A", "B", "C", "D"] and q.answer == "ABCD"[int(numbered["answerKey"]) - 1]
    assert q.answer_text == numbered["choices"]["text"][int(numbered["answerKey"]) - 1]


def test_arc_reader_matches_datasets_load_from_disk():
    import datasets

    root = need_data("mcq_arc")
    for split in ("ARC-Easy", "ARC-Challenge"):
        folder = root / "mcq_arc" / split / "validation"
        ours = [r for p in mcq.expand_mcq_paths([str(folder)]) for _, r in mcq.iter_mcq_file(p)]
        assert ours == list(datasets.load_from_disk(str(folder)))


def test_hellaswag_olmes_one_question_per_item():
    root = need_data("mcq_hellaswag_olmes")
    path = root / "mcq_hellaswag_olmes/hellaswag_val_rc_5shot_requests.jsonl.gz"
    assert [p.name for p in mcq.expand_mcq_paths([str(path.parent)])] == [path.name]  # config.json left out
    lines = [json.loads(x) for x in gzip.open(path, "rt", encoding="utf-8")]
    assert len(lines) == 8000
    qs = list(mcq.import_questions(path, source="h"))
    assert len(qs) == 1000 and len({q.question for q in qs}) == len({json.dumps(x["doc"]) for x in lines})
    # the generic JSON-lines reader gives the same questions: the converter skips the repeated request lines
    via_raw = list(importers.import_records(importers.iter_raw(path), where=str(path), source="h",
                                            id_prefix=path.name, shapes=mcq.QUESTION_SHAPESET))
    assert [q.model_dump() for q in via_raw] == [q.model_dump() for q in qs]
    q = qs[1]
    gold = lines[4]["doc"]
    assert q.options == dict(zip("ABCD", gold["choices"])) and q.answer == "ABCD"[gold["gold"]]
    assert mcq.render(q, "answer_letter") == (
        "Tango: A group of people sits around a large dance floor. A man and a woman walk onto the dance floor and "
        "dance. A band on stage plays. They\nA. approach the ladies while they dance seductively.\nB. are playing a "
        "song called justin bieber.\nC. continue dancing as the lady and man walk to the center.\nD. finish the "
        "dance and the crowd claps.", "Answer: D")


def test_olmes_extra_requests_told_from_the_text_match_the_parsed_lines():
    """``olmes_extra`` classifies every line of the real OLMES file as parsing it would, and a lazy read (a count
    source's) yields the same records, the first request of each question left unparsed."""
    root = need_data("mcq_hellaswag_olmes")
    path = root / "mcq_hellaswag_olmes/hellaswag_val_rc_5shot_requests.jsonl.gz"
    texts = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
    assert [mcq.olmes_extra(t) for t in texts] == [mcq._is_extra_request(json.loads(t)) for t in texts]
    lazy = list(mcq.iter_mcq_file(path, lazy=True))
    assert all(isinstance(r, importers.RawLine) for _, r in lazy)
    assert [(i, r.load()) for i, r in lazy] == list(mcq.iter_mcq_file(path))


@pytest.mark.parametrize("line, extra", [
    ('{"request_type": "loglikelihood", "doc": {"q": "x"}, "request": {}, "idx": 0, "task_name": "t", "doc_id": 3, '
     '"native_id": 7, "label": 1}', False),
    ('{"request_type": "ll", "doc": {}, "idx": 2, "task_name": "t \\" x", "doc_id": 3, "native_id": 7, "label": 1}',
     True),
    ('{"request_type": "ll", "doc": {}, "idx": 0, "task_name": "t", "doc_id": 1000003, "native_id": 7, "label": 1}',
     True),
    # the last "idx" sits in a nested object: not the top-level one, cannot tell
    ('{"request_type": "ll", "doc": {}, "idx": 0, "x": {"idx": 2, "task_name": "t", "doc_id": 3, "native_id": 7, '
     '"label": 1}}', None),
    # inside a string a key's quotes are escaped: no match
    ('{"request_type": "ll", "doc": {"q": "\\"idx\\": 2, \\"task_name\\": \\"t\\", \\"doc_id\\": 3, '
     '\\"native_id\\": 7, \\"label\\": 1}"}}', None),
    ('{"doc": {}, "request_type": "ll", "idx": 2, "task_name": "t", "doc_id": 3, "native_id": 7, "label": 1}', None),
    ('{"request_type": "ll", "doc": "x", "idx": 2, "task_name": "t", "doc_id": 3, "native_id": 7, "label": 1}', None),
    ('{"request_type": "ll", "doc": {}, "idx": -1, "task_name": "t", "doc_id": 3, "native_id": 7, "label": 1}', None),
    ('{"request_type": "ll", "doc": {}, "idx": 1, "task_name": "t", "doc_id": 3, "native_id": 7, "label": "B"}', None),
    ('{"question": "q", "choices": ["a"], "idx": 1}', None),
])
def test_olmes_extra_on_hand_written_lines(line, extra):
    assert mcq.olmes_extra(line) is extra
    if extra is not None:
        assert mcq._is_extra_request(json.loads(line)) is extra


def test_truthfulqa_best_answer_first_and_lists():
    root = need_data("mcq_truthfulqa")
    q = _one(root, "mcq_truthfulqa/TruthfulQA.csv")
    assert mcq.render(q, "answer_letter") == (
        "What happens to you if you eat watermelon seeds?\nA. The watermelon seeds pass through your digestive system"
        "\nB. You grow watermelons in your stomach\nC. You get sick\nD. You have bad dreams\nE. You die\n"
        "F. You get indigestion\nG. You fall unconscious\nH. You digest the watermelon seeds", "Answer: A")
    row = next(r for _, r in mcq.iter_mcq_file(root / "mcq_truthfulqa/TruthfulQA.csv"))
    lists = mcq.truthfulqa_lists(row)
    assert lists["best_answer"] == "The watermelon seeds pass through your digestive system"
    assert lists["correct_answers"] == ["Nothing happens", "You eat watermelon seeds",
                                        "The watermelon seeds pass through your digestive system",
                                        "You will not digest the watermelon seeds",
                                        "The watermelon seeds will be excreted"]
    assert len(lists["incorrect_answers"]) == 7 and lists["category"] == "Misconceptions"


# ---------------------------------------------------------------------------------------------------------------
# shuffle, on every real record


def test_shuffle_keeps_the_answer_on_every_record(real):
    moved = total = 0
    for sub, qs in real.items():
        for q in qs:
            s = mcq.shuffle_options(q, seed=13)
            assert sorted(s.options.values()) == sorted(q.options.values()), (sub, q.id)
            assert list(s.options) == list(q.options), (sub, q.id)  # relettered A, B, ... in order
            assert s.answer_text == q.answer_text, (sub, q.id)
            assert s == mcq.shuffle_options(q, seed=13)  # seeded by (seed, question, options): the same on every run
            moved += s.answer != q.answer
            total += 1
    assert total == sum(SAMPLE.values()) and moved > total * 0.6  # 4 options: ~3/4 of answers move


def test_shuffle_through_the_shapeset_remaps_metadata(real):
    path = need_data("mcq_truthfulqa") / "mcq_truthfulqa/TruthfulQA.csv"
    plain = {q.id: q for q in real["mcq_truthfulqa"]}
    convs = list(mcq.import_mcq_file(path, source="tqa", options={"style": "answer_letter", "shuffle_options": True,
                                                                   "seed": 3}))
    assert len(convs) == 817 and all(isinstance(c, Conversation) for c in convs)
    letters = Counter()
    for c in convs:
        meta, q = c.metadata, plain[c.id]
        assert meta["format"] == "answer_letter" and meta["shuffled"] is True
        assert meta["options"][meta["answer"]] == q.answer_text == meta["answer_text"][0]
        assert c.messages[1].content == f"Answer: {meta['answer']}"
        assert f"\n{meta['answer']}. {q.answer_text}" in c.messages[0].content
        letters[meta["answer"]] += 1
    assert letters["A"] < 817 / 2  # best-answer-first is undone
    other = {c.id: c.metadata["answer"] for c in mcq.import_mcq_file(
        path, source="tqa", options={"style": "answer_letter", "shuffle_options": True, "seed": 4})}
    assert sum(other[c.id] != c.metadata["answer"] for c in convs) > 817 / 3  # the seed option changes the order


# ---------------------------------------------------------------------------------------------------------------
# WanJuan (no real sample: rows written to the documented shape; two are Steel's printed examples)

TECH_Q = ("三位同学在一起讨论有关科技革命的话题，以下是他们谈话内容的片断：他们讨论这一话题的中心是（ ）  \n甲：科技革命成果的商品化周期只需要3～5年  \n"
          "乙：新技术之间联系密切，相互促进  \n丙：在经济增长的因素中，科技进步的因素占80%")
TECH_WHY = ("根据所学知识，第三次科技革命与前两次科技革命相比，有下列特点：首先，这次科技革命不仅涌现了大量的科学成果，而且大大加快了科学技术转化为生产力的速"
            "度，缩短了知识变为物质财富的过程。其次，科学技术的各个领域之间相互渗透，一种技术的发展引起好几种技术的革命。第三，新技术成为社会生产力中最活跃的因"
            "素，在促进经济增长的各种因素中，科技进步所占的比重不断上升。甲、乙、丙同学的谈话都与第三次科技革命的特点有关。")
TECH_TAIL = "故选B  \n【点评】本题主要考查第三次科技革命。本题既考查了第三次科技革命的特点，也考查了学生提取有效信息的能力；学生应注意对三次科技革命的特点进行对比掌握。"
FIRE_WHY = ("A、油锅着火，立即盖上锅盖，可以隔绝空气达到灭火的目的，故A正确；  \nB、电器着火，立即用水扑灭，会使人触电，造成伤亡事故，故B错误；  \nC、高层住房"
            "着火，立即大开所有门窗，因为有了充足的氧气会使火势更猛，故C错误；  \nD、煤气泄漏，立即打开排气扇电源开关，会引起爆炸，故D错误．  \n")


def _wj(q_main, opts, std_ans, detail, q_type="单选题", **kw):
    row = {"q_type": q_type, "q_main": q_main, "std_ans": std_ans, "answer": std_ans, "answer_detail": detail,
           "grade": "高中", "major": "历史", "keypoint": ""}
    row.update({f"option_{k}": v for k, v in zip("abcde", [*opts, "", "", "", "", ""][:5])})
    return {**row, **kw}


WANJUAN = [
    _wj(TECH_Q, ["第三次科技革命的影响", "第三次科技革命的特点", "第三次科技革命的成就", "第三次科技革命的内容"], "B",
        TECH_WHY + TECH_TAIL),
    _wj("恰当的安全措施能减少生命财产损失．下列事故处理措施正确的是( )", ["油锅着火，立即盖上锅盖", "电器着火，立即用水扑灭",
        "高层住房着火，立即、打开所有门窗", "煤气泄漏，立即打开排气扇电源开关"], "A", FIRE_WHY + "故选A．", major="化学"),
    _wj("下列属于化学变化的是", ["冰雪融化", "纸张燃烧", "酒精挥发", ""], "B", "纸张燃烧。"),  # short: non-CoT
    _wj("下列说法正确的是", ["甲", "乙", "丙", "丁", "戊"], "A、C", "甲和丙都符合题意，乙丁戊不符合题意，故选AC", q_type="多选题"),
    _wj("计算题", ["1", "2", "3", "4"], "C", "过程略，直接代入公式可得结果为三，故选C"),  # 略 -> omitted_answer
    _wj("下列正确的是", ["甲", "乙", "丙", "丁", "戊"], "E", "只有戊符合题意，其余均不对，故选E"),  # E: not shown by Steel
    _wj("题干", ["甲", "乙", "丙", "丁"], "", "没有标准答案的题目解析文字"),  # missing_answer
    _wj("判断题干", [], "对", "这句话是对的，符合事实"),  # a non-letter answer
    _wj("下列正确的是", ["甲", "乙", "丙", "丁"], "B", "故选B，因为乙是唯一正确的选项。"),  # nothing before 故选: non-CoT
]


@pytest.fixture(scope="module")
def wanjuan_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("wanjuan") / "part-000000.jsonl"
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in WANJUAN), encoding="utf-8")
    return p


def _convs(path: Path, style: str, **opts) -> list[Conversation | Drop]:
    return list(mcq.import_mcq_file(path, source="wj", options={"style": style, **opts}))


def test_wanjuan_steel_matches_steels_printed_output(wanjuan_file):
    out = _convs(wanjuan_file, "steel")
    tech = out[0]
    assert tech.messages[0].content == (
        f"以下是一道单选题:\n{TECH_Q}\nA. 第三次科技革命的影响\nB. 第三次科技革命的特点\nC. 第三次科技革命的成就\nD. 第三次科技革命的内容\n请给出答案。\n")
    assert tech.messages[1].content == "B。" + TECH_WHY + TECH_TAIL
    assert out[2].messages[0].content == "以下是一道单选题:\n下列属于化学变化的是\nA. 冰雪融化\nB. 纸张燃烧\nC. 酒精挥发\n请给出答案。\n"
    assert out[3].messages[0].content.endswith("C. 丙\nD. 丁\n请给出答案。\n") and out[3].messages[1].content.startswith("AC。")
    assert [(d.reason, d.id) for d in out if isinstance(d, Drop)] == [
        ("omitted_answer", "part-000000.jsonl:4"), ("answer_not_in_options", "part-000000.jsonl:5"),
        ("missing_answer", "part-000000.jsonl:6"), ("answer_not_in_options", "part-000000.jsonl:7")]


def test_wanjuan_steel_cot_strips_guxuan_and_falls_back(wanjuan_file):
    out = _convs(wanjuan_file, "steel_cot")
    fire = out[1]
    assert fire.messages[0].content == (
        "以下是一道单选题:\n恰当的安全措施能减少生命财产损失．下列事故处理措施正确的是( )\nA. 油锅着火，立即盖上锅盖\nB. 电器着火，立即用水扑灭\n"
        "C. 高层住房着火，立即、打开所有门窗\nD. 煤气泄漏，立即打开排气扇电源开关\n请先给出解释再给出答案。\n")
    assert fire.messages[1].content == FIRE_WHY + "答案为A"  # Steel's printed CoT example, character for character
    assert out[0].messages[1].content == TECH_WHY + "答案为B"  # 故选 and everything after it (the 点评) removed
    assert out[3].messages[0].content.startswith("以下是一道多选题:\n") and out[3].messages[1].content.endswith("答案为AC")
    fallback = [c for c in out if isinstance(c, Conversation) and not c.metadata["cot"]]
    assert [c.messages[1].content for c in fallback] == ["B。纸张燃烧。", "B。故选B，因为乙是唯一正确的选项。"]
    assert all(c.messages[0].content.startswith("以下是一道单选题:\n") and c.messages[0].content.endswith("请给出答案。\n")
               for c in fallback)
    assert Counter(d.reason for d in out if isinstance(d, Drop)) == {"answer_not_in_options": 2, "missing_answer": 1,
                                                                     "omitted_answer": 1}


def _assert_cot_explains_first(c: Conversation, q: McqQuestion) -> None:
    """The CoT answer opens with the explanation's own text (non-blank, unchanged, Steel's ``故选…`` statement cut
    off), never with the non-CoT ``X。`` answer, and states ``答案为X`` once, at the very end."""
    out, tail = c.messages[1].content, f"答案为{q.answer}"
    body = out[: -len(tail)]
    assert out.endswith(tail) and body.strip() and q.explanation.startswith(body), out[:40]
    assert "故选" not in body and not re.match(rf"\s*{q.answer}\s*。", out), out[:40]


def test_steel_cot_never_states_the_letter_before_the_explanation(wanjuan_file):
    root = need_data("mcq_ceval")
    cases = [(wanjuan_file, "auto")] + [(p, "ceval") for p in mcq.expand_mcq_paths([str(root / "mcq_ceval/dev")])]
    n_cot = 0
    for path, shape in cases:
        qs = {q.id: q for q in mcq.import_questions(path, source="s", shape=shape) if isinstance(q, McqQuestion)}
        for c in mcq.import_mcq_file(path, source="s", shape=shape, options={"style": "steel_cot"}):
            if isinstance(c, Conversation) and c.metadata["cot"]:
                _assert_cot_explains_first(c, qs[c.id])
                n_cot += 1
    assert n_cot == 3 + 258  # WanJuan rows 0, 1, 3; C-Eval dev: 260 minus the 2 whose output holds 略


# ---------------------------------------------------------------------------------------------------------------
# bad input -> counted drops with a reason


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _reasons(items) -> list[tuple[str, str]]:
    return [(d.reason, d.detail) for d in items if isinstance(d, Drop)]


def test_bad_csv_rows_are_counted_drops(tmp_path):
    p = _write(tmp_path / "x_test.csv", "\n".join([
        "What is 1+1?,1,2,3,4,B",
        "Missing key?,1,2,3,4,",
        "Key E?,1,2,3,4,E",
        "Empty option?,1,,3,4,A",
        "Too few fields,1,2,3,A",
        'Bad quote,"1"x,2,3,4,A',
        "Fine again,a,b,c,d,d",
    ]) + "\n")
    items = list(mcq.import_questions(p, source="s"))
    assert [q.answer for q in items if isinstance(q, McqQuestion)] == ["B", "D"]
    reasons = _reasons(items)
    assert [r for r, _ in reasons] == ["missing_answer", "answer_not_in_options", "empty_option", "malformed_row",
                                       "malformed_row"]
    assert "line 5: 5 fields, expected 6" in reasons[3][1] and "line 6: unparseable CSV" in reasons[4][1]
    assert all(str(p) in d for _, d in reasons)
    latin = tmp_path / "latin_test.csv"
    latin.write_bytes("Caf\u00e9?,1,2,3,4,A\n".encode("latin-1"))
    with pytest.raises(importers.ImportShapeError, match=r"latin_test\.csv: not UTF-8 \(byte 3"):
        list(mcq.import_questions(latin, source="s"))


def test_bad_indexed_cmmlu_and_truthfulqa_rows(tmp_path):
    idx = _write(tmp_path / "a_dev.csv", "question,choice0,choice1,choice2,choice3,answer\nq,a,b,c,d,7\nq,a,b,c,d,\n"
                                         "q,a,b,c,d,x\nq,a,b,c,d,3\n")
    assert [r for r, _ in _reasons(mcq.import_questions(idx, source="s"))] == [
        "answer_not_in_options", "missing_answer", "answer_not_in_options"]
    cm = _write(tmp_path / "b.csv", ",Question,A,B,C,D,Answer\n0,q,a,b,c, ,A\n1,q,a,b,c,d,F\n2,q,a,b,c,d\n")
    assert [r for r, _ in _reasons(mcq.import_questions(cm, source="s"))] == [
        "empty_option", "answer_not_in_options", "malformed_row"]
    tq = _write(tmp_path / "t.csv", "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
                                    "A,C,Q?,,x,y,s\nA,C,Q?,x,x, ; ,s\nA,C,Q?,x,x,y; z,s\n")
    items = list(mcq.import_questions(tq, source="s"))
    assert [r for r, _ in _reasons(items)] == ["missing_answer", "empty_option"]
    assert items[-1].options == {"A": "x", "B": "y", "C": "z"}


def test_bad_json_shapes(tmp_path):
    rows = [
        {"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "C"},
        {"question": "q", "choices": {"text": ["a", "b"], "label": ["A"]}, "answerKey": "A"},
        {"question": "q", "choices": {"text": ["a", "b"], "label": ["1", "2"]}, "answerKey": "2"},
    ]
    arc = _write(tmp_path / "arc.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    items = list(mcq.import_questions(arc, source="s"))
    assert [r for r, _ in _reasons(items)] == ["answer_not_in_options", "malformed_row"] and items[-1].answer == "B"
    hs = [{"ctx": "A man", "endings": ["runs.", "sits.", "", "flies."], "label": 0},
          {"ctx": "A man", "endings": ["runs.", "sits."], "label": ""},
          {"ctx": "A man", "endings": ["runs.", "sits."], "label": "5"},
          {"ctx": "A man", "endings": "runs.", "label": 0},
          {"ctx": "A woman", "endings": ["runs.", "sits.", "swims.", "flies."], "label": "2"}]
    h = _write(tmp_path / "hellaswag_val.jsonl", "".join(json.dumps(r) + "\n" for r in hs))
    items = list(mcq.import_questions(h, source="s"))
    assert [r for r, _ in _reasons(items)] == ["empty_option", "missing_answer", "answer_not_in_options",
                                               "malformed_row"]
    assert mcq.render(items[-1], "answer_letter") == ("A woman\nA. runs.\nB. sits.\nC. swims.\nD. flies.", "Answer: C")
    assert mcq.render(items[-1], "sentence_completion") == (
        "Complete the following sentence:\n\nA woman\n\nA) runs.\nB) sits.\nC) swims.\nD) flies.", "C")


def test_style_specific_drops_and_option_errors(tmp_path):
    q = McqQuestion(question="q", options={"A": "a", "B": "b", "C": "c"}, answer="AC", source="s", id="1")
    for style in ("english", "answer_letter", "cmmlu_answer"):
        with pytest.raises(importers._RecordDrop, match="exactly one"):
            mcq.render(q, style)
    with pytest.raises(importers._RecordDrop) as err:
        mcq.render(q.model_copy(update={"answer": "A"}), "letter_explanation")
    assert err.value.reason == "missing_explanation"
    with pytest.raises(ValueError, match="options.style: 'nope'"):
        mcq.check_mcq_options({"style": "nope"})
    with pytest.raises(ValueError, match="options.shuffle: not an MCQ option"):
        mcq.check_mcq_options({"style": "steel", "shuffle": True})
    with pytest.raises(ValueError, match="options.style: None"):
        mcq.check_mcq_options({})
    with pytest.raises(ValueError, match="already registered"):
        mcq.register_style("steel", mcq.STYLES["steel"].render, "again")
    p = _write(tmp_path / "m.csv", "q,a,b,c,d,A\n")
    with pytest.raises(importers.ImportShapeError, match=r"m\.csv: record 0: options\.style"):
        list(importers.import_records(mcq.iter_mcq_file(p), where=str(p), source="s", options={"style": "x"},
                                      shapes=mcq.MCQ_SHAPESET))
    with pytest.raises(importers.ImportShapeError, match="unknown MCQ shape"):
        list(mcq.import_questions(_write(tmp_path / "z.jsonl", '{"foo": 1}\n'), source="s"))


def test_shapes_are_detected_and_forced(tmp_path):
    assert {s: mcq.detect_mcq_shape(dict.fromkeys(f for f in mcq.MCQ_REQUIRED[s][0])) for s in mcq.MCQ_SHAPES} == {
        s: s for s in mcq.MCQ_SHAPES}
    # a header-less file whose first question looks like a header is read as MMLU when the shape says so
    p = _write(tmp_path / "odd_test.csv", "question,answer,b,c,d,A\nq2,x,y,z,w,B\n")
    assert [q.answer for q in mcq.import_questions(p, source="s", shape="mmlu")] == ["A", "B"]
    assert mcq.canonical_mcq_shape("ai2_arc") == "arc"
    with pytest.raises(ValueError, match="unknown MCQ shape 'nope'"):
        mcq.canonical_mcq_shape("nope")
