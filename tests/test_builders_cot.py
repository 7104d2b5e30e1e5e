"""CoT importers and the TinyCoT format (builders/cot.py): real records rendered to the character, every drop reason,
parse_tinycot on valid and near-miss responses, and the whole GSM8K test file checked against its own answer key."""

from __future__ import annotations

import itertools
import json

import pytest

from shardsmith.builders.cot import (
    COT_SHAPESET,
    cot_conversation,
    detect_cot_shape,
    import_cot_file,
    iter_cot_file,
    mcq_cot_example,
    parse_tinycot,
    read_cot_examples,
    strip_calculator_annotations,
)
from shardsmith.builders.importers import ImportShapeError, _RecordDrop, import_records
from shardsmith.builders.templates import chat_prompt, render, resolve_template
from shardsmith.schemas.records import CotExample, Drop, McqQuestion

from conftest import need_data

TINYCOT = resolve_template("tinycot")


def _rendered(relpath: str, n: int, **kw) -> list[str]:
    root = need_data(relpath.split("/")[0])
    return [render(c, TINYCOT).text for c in itertools.islice(import_cot_file(root / relpath, source="s", **kw), n)]


# ----------------------------------------------------------------------------------------------------------------
# real records, rendered exactly


def test_gsm8k_renders_tinycot_without_calculator_annotations():
    assert _rendered("mcq_gsm8k/test.jsonl", 2) == [
        "### User:\nJanet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins "
        "for her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh "
        "duck egg. How much in dollars does she make every day at the farmers' market?\n\n### Rationale:\nJanet "
        "sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day at the farmer’s market.\n\n### "
        "Answer:\n18",
        "### User:\nA robe takes 2 bolts of blue fiber and half that much white fiber.  How many bolts in total does "
        "it take?\n\n### Rationale:\nIt takes 2/2=1 bolt of white fiber\nSo the total amount of fabric is 2+1=3 "
        "bolts of fabric\n\n### Answer:\n3",
    ]


def test_aqua_rat_shows_options_and_answers_with_the_option_line():
    dev = _rendered("cot_aqua_rat/dev.json", 1)
    test = _rendered("cot_aqua_rat/test.json", 2)[1:]
    assert dev + test == [
        "### User:\nThree birds are flying at a fast rate of 900 kilometers per hour. What is their speed in miles "
        "per minute? [1km = 0.6 miles]\nOptions:\n(A) 32400\n(B) 6000\n(C) 600\n(D) 60000\n(E) 10\n\n### "
        "Rationale:\nTo calculate the equivalent of miles in a kilometer\n0.6 kilometers = 1 mile\n900 kilometers = "
        "(0.6)*900 = 540 miles\nIn 1 hour there are 60 minutes\nSpeed in miles/minutes = 60 * 540 = 32400\nCorrect "
        "answer - A\n\n### Answer:\n(A) 32400",
        "### User:\nThe original price of an item is discounted 22%. A customer buys the item at this discounted "
        "price using a $20-off coupon. There is no tax on the item, and this was the only item the customer bought. "
        "If the customer paid $1.90 more than half the original price of the item, what was the original price of "
        "the item?\nOptions:\n(A) $61\n(B) $65\n(C) $67.40\n(D) $70\n(E) $78.20\n\n### Rationale:\nLet x be the "
        "original price of the item\nDiscounted price = 0.78x\nPayment made by the customer after using the $20 "
        "coupon = 0.78x - 20\n0.78x - 20 = x/2 + 1.9\nx = 78.20\nAnswer: E\n\n### Answer:\n(E) $78.20",
    ]
    letter = _rendered("cot_aqua_rat/dev.json", 1, options={"mcq_answer": "letter"})[0]
    assert letter.endswith("Correct answer - A\n\n### Answer:\nA")


def test_flan_cot_tsv_unescapes_newlines_and_expands_letter_answers():
    assert _rendered("cot_flan_v2/aqua_train.tsv", 1) + _rendered("cot_flan_v2/qasc_train.tsv", 1) + _rendered(
        "cot_flan_v2/strategyqa_train.tsv", 2
    ) == [
        "### User:\nRs. 5600 is divided into three parts A, B and C. How much A is more than C if their ratio is "
        "1/7:1/7:1/14?\nOptions:\n(A) 300\n(B) 992\n(C) 1120\n(D) 552\n(E) 312\n\n### Rationale:\n1/7:1/7:1/14 = "
        "2:2:1\n1/5*5600 = 1120\n2240-1120 = 1120\n\n### Answer:\n(C) 1120",
        "### User:\nWhat is the process by which living things give rise to offspring?\nOptions:\n- (A) DNA\n- (B) "
        "photosynthesis\n- (C) bird\n- (D) sex\n- (E) subtraction\n- (F) gametes\n- (G) eggs\n- (H) ovum\n\n### "
        "Rationale:\nReproduction is the process by which living things give rise to offspring. Sex equals "
        "reproduction. Sex is the process by which living things give rise to offspring.\n\n### Answer:\n(D) sex",
        "### User:\nAre more people today related to Genghis Khan than Julius Caesar?\n\n### Rationale:\nJulius "
        "Caesar had three children. Genghis Khan had sixteen children. Modern geneticists have determined thatout of "
        "every 200 men today has DNA that can be traced to Genghis Khan.\n\n### Answer:\nyes",
        "### User:\nCould the members of The Police perform lawful arrests?\n\n### Rationale:\nThe members of The "
        "Police were musicians, not law enforcement officers. Only law enforcement officers can perform lawful "
        "arrests.\n\n### Answer:\nno",
    ]


def test_loss_covers_rationale_and_answer_only():
    ex = CotExample(question="Q?", rationale="step", answer="7", source="s", id="1")
    r = render(cot_conversation(ex), TINYCOT)
    assert r.text == "### User:\nQ?\n\n### Rationale:\nstep\n\n### Answer:\n7"
    assert [r.text[a:b] for a, b in r.loss] == ["step\n\n### Answer:\n7"]
    assert chat_prompt("Q?", TINYCOT) == "### User:\nQ?\n\n### Rationale:\n"
    assert cot_conversation(ex).metadata == {"answer": "7", "format": "tinycot"}


def test_gsm8k_test_file_every_record_answer_and_rationale():
    """Every record of the real GSM8K test file: the rendered answer is its `####` value (commas removed), and no
    calculator annotation survives in the rationale."""
    path = need_data("mcq_gsm8k") / "mcq_gsm8k" / "test.jsonl"
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    out = list(import_cot_file(path, source="gsm8k"))
    assert len(out) == len(raw) == 1319 and not [o for o in out if isinstance(o, Drop)]
    for rec, conv in zip(raw, out):
        text = render(conv, TINYCOT).text
        rationale, answer = parse_tinycot(text)
        assert answer == rec["answer"].split("####")[1].strip().replace(",", "") == conv.metadata["answer"]
        assert "<<" not in rationale and ">>" not in rationale
        assert text.startswith(f"### User:\n{rec['question'].strip()}\n\n### Rationale:\n")


# ----------------------------------------------------------------------------------------------------------------
# drops, on hand-written rows


def _drops(records: list, shape: str) -> list[str]:
    out = import_records(enumerate(records), where="hand", source="s", shape=shape, shapes=COT_SHAPESET)
    return [o.reason if isinstance(o, Drop) else "kept" for o in out]


def test_drop_reasons_gsm8k():
    rows = [
        {"question": "Q", "answer": "a = <<1+1=2>>2\n#### 2"},
        {"question": "Q", "answer": "a = 2 and nothing else"},
        {"question": "Q", "answer": "#### 2"},
        {"question": "Q", "answer": "a = 2\n####  "},
        {"question": "", "answer": "a = 2\n#### 2"},
        {"question": ["Q"], "answer": "a\n#### 2"},
    ]
    assert _drops(rows, "gsm8k") == ["kept", "no_answer", "no_rationale", "no_answer", "malformed_row",
                                     "malformed_row"]


def test_drop_reasons_aqua_rat():
    opts = ["A)1", "B)2"]
    rows = [
        {"question": "Q", "options": opts, "rationale": "1+1\nAnswer B", "correct": "B"},
        {"question": "Q", "options": opts, "rationale": "  ", "correct": "B"},
        {"question": "Q", "options": opts, "rationale": "1+1", "correct": ""},
        {"question": "Q", "options": opts, "rationale": "1+1", "correct": "E"},
        {"question": "Q", "options": ["1", "2"], "rationale": "1+1", "correct": "A"},
        {"question": "Q", "options": "A)1 B)2", "rationale": "1+1", "correct": "A"},
        {"question": "Q", "options": opts, "rationale": "the answer is B\n1+1=2", "correct": "B"},
        {"question": "Q", "options": opts, "rationale": "Answer = B. 2\n1+1=2", "correct": "B"},
        {"question": "Q", "options": opts, "rationale": "Answer is a sum: 1+1=2", "correct": "B"},
    ]
    assert _drops(rows, "aqua_rat") == ["kept", "no_rationale", "no_answer", "answer_not_in_options", "malformed_row",
                                        "malformed_row", "answer_in_rationale_head", "answer_in_rationale_head",
                                        "kept"]


def test_drop_reasons_flan_tsv(tmp_path):
    q = "Which?\\nOptions:\\n(A) 1\\n(B) 2"
    lines = [
        f"{q}\t(B)\t1+1\\n= 2",
        f"{q}\t(B)\t",
        f"{q}\t\t1+1",
        f"{q}\t(C)\t1+1",
        f"{q}\t(B)",
        f"{q}\t(B)\t1+1\textra",
        f"{q}\t(B)\tCorrect Answer: (B)\\n1+1",
        "Is it?\tno\tNo one says so.",
    ]
    path = tmp_path / "toy_train.tsv"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"Is it?\tyes\t\xff\n")
    got = list(import_cot_file(path, source="s", shape="flan_cot"))
    assert [o.reason if isinstance(o, Drop) else "kept" for o in got] == [
        "kept", "no_rationale", "no_answer", "answer_not_in_options", "malformed_row", "malformed_row",
        "answer_in_rationale_head", "kept", "invalid_utf8"]
    assert render(got[0], TINYCOT).text == (
        "### User:\nWhich?\nOptions:\n(A) 1\n(B) 2\n\n### Rationale:\n1+1\n= 2\n\n### Answer:\n(B) 2")
    assert got[4].detail.endswith("line 5: 2 tab-separated fields, expected 3 (question, answer, rationale)")


def test_shape_detection_and_unknown_shape(tmp_path):
    assert detect_cot_shape({"question": "q", "answer": "a\n#### 1"}) == "gsm8k"
    assert detect_cot_shape({"question": "q", "options": [], "rationale": "r", "correct": "A"}) == "aqua_rat"
    assert detect_cot_shape({"question": "q", "answer": "a", "rationale": "r"}) == "flan_cot"
    path = tmp_path / "x.jsonl"
    path.write_text('{"prompt": "p", "completion": "c"}\n')
    with pytest.raises(ImportShapeError, match=r"x\.jsonl: record 0: unknown CoT shape; fields found: completion"):
        list(import_cot_file(path, source="s"))
    with pytest.raises(ValueError, match="unknown CoT shape 'mmlu'"):
        list(import_cot_file(path, source="s", shape="mmlu"))


def test_read_cot_examples_and_reader(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"question": "Q", "answer": "x = <<3*4=12>>12\n#### 1,200"}) + "\n")
    (ex,) = read_cot_examples(path, source="gsm8k")
    assert ex == CotExample(question="Q", rationale="x = 12", answer="1200", source="gsm8k", id="g.jsonl:0")
    assert list(iter_cot_file(path)) == [(0, {"question": "Q", "answer": "x = <<3*4=12>>12\n#### 1,200"})]
    assert strip_calculator_annotations("$<<9*2=18>>18 and <<a>>") == "$18 and "


# ----------------------------------------------------------------------------------------------------------------
# parse_tinycot


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Janet sells 9 eggs.\n\n### Answer:\n18", ("Janet sells 9 eggs.", "18")),
        ("### User:\nQ?\n\n### Rationale:\nstep 1\nstep 2\n\n### Answer:\n(C) 1120", ("step 1\nstep 2", "(C) 1120")),
        ("r\n### Answer: 5\n\n### User:\nnext question", ("r", "5")),  # a model that goes on writing a new turn
        ("r\n\n### Answer:\n\n", None),  # empty answer
        ("\n\n### Answer:\n18", None),  # empty rationale
        ("### Rationale:\n\n### Answer:\n18", None),
        ("some reasoning, the answer is 18", None),  # no answer header
        ("some reasoning\nAnswer: 18", None),
        ("some reasoning\n## Answer:\n18", None),
        ("some reasoning ### Answer:\n18", None),  # header not at a line start
        ("r\n### User:\nQ\n### Answer:\n18", None),  # a block header inside the rationale
    ],
)
def test_parse_tinycot(text, expected):
    assert parse_tinycot(text) == expected


def test_parse_tinycot_inverts_cot_conversation():
    ex = CotExample(question="Q", rationale="a\n\nb", answer="(B) 2", source="s", id="1")
    assert parse_tinycot(render(cot_conversation(ex), TINYCOT).text) == ("a\n\nb", "(B) 2")


def test_mcq_explanation_as_cot():
    q = McqQuestion(question="2+2?", options={"A": "3", "B": "4"}, answer="B", explanation="2+2 = 4.", source="s",
                    id="7")
    ex = mcq_cot_example(q)
    assert render(cot_conversation(ex), TINYCOT).text == (
        "### User:\n2+2?\nOptions:\n(A) 3\n(B) 4\n\n### Rationale:\n2+2 = 4.\n\n### Answer:\n(B) 4")
    assert mcq_cot_example(q, mcq_answer="letter").answer == "B"
    for bad, reason in ((q.model_copy(update={"explanation": None}), "no_rationale"),
                        (q.model_copy(update={"explanation": "Answer: B. 2+2 = 4"}), "answer_in_rationale_head"),
                        (q.model_copy(update={"answer": "C"}), "answer_not_in_options")):
        with pytest.raises(_RecordDrop) as err:
            mcq_cot_example(bad)
        assert err.value.reason == reason
