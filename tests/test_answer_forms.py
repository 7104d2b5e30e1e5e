"""Strict answer-form checkers (schemas/answer_forms.py): each accepts its strict form and rejects near misses."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shardsmith.schemas.answer_forms import (
    FORMS,
    ExactNListSpec,
    FormError,
    NumericOnlySpec,
    SingleLetterSpec,
    YesNoSpec,
    check,
    parse_spec,
    plain_number,
    score,
    score_item,
    spec_dict,
)


def _verdicts(spec, cases):
    """(response, checker's ok, why) for each case, so a failing assert shows every mismatch at once."""
    return [(resp, *check(resp, spec)) for resp, _ in cases]


def _assert_cases(spec, cases):
    got = _verdicts(spec, cases)
    wrong = [(resp, ok, why) for (resp, ok, why), (_, want) in zip(got, cases) if ok != want]
    assert not wrong, wrong
    assert all(why for _, _, why in got)


YES_NO_TITLE = [
    ("Yes", True), ("No", True), ("Yes.", True), ("No.", True), (" Yes\n", True),
    ("yes", False), ("YES", False), ("Yes, because it is.", False), ("Yes because", False), ("Yes!", False),
    ("Yes..", False), ("Yes No", False), ("Y", False), ("Yeah", False), ("Answer: Yes", False), ("", False),
    ("Yes.\nIt is.", False), ("No, it is not", False),
]


def test_yes_no_title_case_accepts_yes_no_and_rejects_near_misses():
    _assert_cases(YesNoSpec(), YES_NO_TITLE)


@pytest.mark.parametrize("case,accepted,rejected", [
    ("lower", ["yes", "no."], ["Yes", "NO"]),
    ("upper", ["YES", "NO."], ["Yes", "no"]),
    ("any", ["yes", "YES.", "No", "nO"], ["yes, sure", "y"]),
])
def test_yes_no_case_rule(case, accepted, rejected):
    _assert_cases(YesNoSpec(case=case), [(r, True) for r in accepted] + [(r, False) for r in rejected])


def test_yes_no_final_period_rule_and_expected_answer():
    _assert_cases(YesNoSpec(final_period="forbidden"), [("Yes", True), ("Yes.", False)])
    _assert_cases(YesNoSpec(final_period="required"), [("No.", True), ("No", False)])
    spec = YesNoSpec(case="lower")
    assert check("yes.", spec, "Yes").ok and check("yes", spec, True).ok
    assert check("no", spec, "Yes") == (False, "answered No, expected Yes")
    assert spec.target("Yes") == "yes" and YesNoSpec(final_period="required").target(False) == "No."


def test_single_letter_accepts_one_allowed_letter_only():
    cases = [("B", True), (" B\n", True), ("D", True),
             ("B.", False), ("(B)", False), ("Answer: B", False), ("B) Paris", False), ("b", False),
             ("E", False), ("BC", False), ("B C", False), ("", False), ("1", False), ("The answer is B", False)]
    _assert_cases(SingleLetterSpec(), cases)
    _assert_cases(SingleLetterSpec(case="any"), [("b", True), ("e", False)])
    _assert_cases(SingleLetterSpec(letters=("A", "B", "C", "D", "E")), [("E", True), ("F", False)])
    assert check("C", SingleLetterSpec(), "B") == (False, "answered C, expected B")
    assert check("b", SingleLetterSpec(case="any"), "B").ok


def test_single_letter_spec_validates_letters():
    for bad in [(), ("a",), ("AB",), ("A", "A"), ("1",)]:
        with pytest.raises(ValueError, match="letters"):
            SingleLetterSpec(letters=bad)
    with pytest.raises(ValueError, match="not among letters"):
        SingleLetterSpec().target("E")


NUMBERED_3 = [
    ("1. Paris\n2. Lyon\n3. Nice", True),
    ("1. Paris\n2. Lyon\n3. Nice\n", True),
    ("1. Paris\r\n2. Lyon\r\n3. Nice", True),
    ("1. Paris\n2. Lyon", False),                                  # 2 items, asked for 3
    ("1. Paris\n2. Lyon\n3. Nice\n4. Lille", False),               # 4 items
    ("Here are three cities:\n1. Paris\n2. Lyon\n3. Nice", False),  # preamble line
    ("1. Paris\n2. Lyon\n3. Nice\nHope this helps!", False),       # epilogue line
    ("1. Paris\n\n2. Lyon\n3. Nice", False),                       # blank line inside
    ("1. Paris\n3. Lyon\n4. Nice", False),                         # numbering skips
    ("1) Paris\n2) Lyon\n3) Nice", False),                         # other marker
    ("- Paris\n- Lyon\n- Nice", False),                            # bullets, numbered asked
    ("1. Paris\n- Lyon\n3. Nice", False),                          # inconsistent marker
    ("1.Paris\n2.Lyon\n3.Nice", False),                            # no space after marker
    ("1. Paris\n2.  Lyon\n3. Nice", False),                        # two spaces
    ("1. Paris\n2. Paris\n3. Nice", False),                        # repeated item
    ("1. Paris, Lyon, Nice", False),                               # one line
    ("Paris\nLyon\nNice", False),                                  # no markers
]


def test_exact_n_list_numbered():
    _assert_cases(ExactNListSpec(n=3), NUMBERED_3)
    verdicts = dict((r, why) for r, _, why in _verdicts(ExactNListSpec(n=3), NUMBERED_3))
    assert verdicts["1. Paris\n2. Lyon"] == "2 items, expected exactly 3"
    assert verdicts["Here are three cities:\n1. Paris\n2. Lyon\n3. Nice"].startswith("line 1 is not a '1.' item")
    assert verdicts["1. Paris\n3. Lyon\n4. Nice"] == "line 2 numbered 3., expected 2."


def test_exact_n_list_dash_marker_and_expected_items():
    spec = ExactNListSpec(n=2, marker="-")
    _assert_cases(spec, [("- Paris\n- Lyon", True), ("1. Paris\n2. Lyon", False), ("* Paris\n* Lyon", False),
                         ("- Paris\n- Lyon\n- Nice", False), ("Cities:\n- Paris\n- Lyon", False)])
    accepted = ["Paris.", "Lyon", "Nice"]
    assert check("- paris\n- Nice.", spec, accepted).ok
    assert not check("- Paris\n- Berlin", spec, accepted).ok
    assert spec.target(["Paris", "Lyon"]) == "- Paris\n- Lyon"
    assert ExactNListSpec(n=2).target(["Paris", "Lyon"]) == "1. Paris\n2. Lyon"
    with pytest.raises(ValueError, match="3 items given for n=2"):
        spec.target(["a", "b", "c"])


NUMERIC = [
    ("42", True), (" 42\n", True), ("-7", True), ("3.5", True), ("0", True), ("1000000", True),
    ("42 apples", False), ("about 42", False), ("4 2", False), ("$42", False), ("42.", False), ("+42", False),
    ("42%", False), ("forty-two", False), ("The answer is 42", False), ("42\n43", False), ("1,000", False),
    ("", False), ("4.2.1", False), (".5", False), ("1e3", False),
]


def test_numeric_only_accepts_a_number_and_rejects_near_misses():
    _assert_cases(NumericOnlySpec(), NUMERIC)


def test_numeric_only_spec_options_and_expected_value():
    _assert_cases(NumericOnlySpec(thousands=True), [("1,000", True), ("12,345,678.5", True), ("1000", True),
                                                     ("1,00", False), ("1,0000", False), (",100", False)])
    _assert_cases(NumericOnlySpec(decimals=False, negative=False), [("12", True), ("1.5", False), ("-3", False)])
    spec = NumericOnlySpec(thousands=True)
    assert check("1,200", spec, "1200").ok and check("1200", spec, 1200).ok and check("0.50", spec, "0.5").ok
    assert check("18", NumericOnlySpec(), Decimal("18.0")).ok
    assert check("19", NumericOnlySpec(), "18") == (False, "answered 19, expected 18")
    assert [plain_number(x) for x in ("1,200", "-0", "2.50", 7, 0.1)] == ["1200", "0", "2.5", "7", "0.1"]
    with pytest.raises(ValueError, match="cannot be written"):
        NumericOnlySpec(negative=False).target("-3")


def test_instructions_are_fixed_sentences():
    assert YesNoSpec().instruction() == 'Answer with only "Yes" or "No".'
    assert YesNoSpec(case="lower", final_period="forbidden").instruction() == \
        'Answer with only "yes" or "no", without a period.'
    assert SingleLetterSpec().instruction() == "Answer with only the letter of the correct option (A, B, C or D)."
    assert ExactNListSpec(n=3).instruction() == \
        "Answer with exactly 3 items, one per line, numbered 1., 2., ..., and nothing else."
    assert ExactNListSpec(n=2, marker="-").instruction() == \
        'Answer with exactly 2 items, one per line, each starting with "- ", and nothing else.'
    assert NumericOnlySpec().instruction() == "Answer with only the number, without units, symbols or words."


def test_score_reads_specs_as_stored_and_reports_form_and_correctness_apart():
    assert set(FORMS) == {"yes_no", "single_letter", "exact_n_list", "numeric_only"}
    meta = {"form": "exact_n_list", "spec": spec_dict(ExactNListSpec(n=2)), "expected": ["Paris", "Lyon", "Nice"]}
    assert score_item("1. Nice\n2. Paris", meta) == (True, True, "ok")
    assert score_item("1. Nice\n2. Rome", meta)[:2] == (True, False)
    assert score_item("Sure:\n1. Nice\n2. Paris", meta)[:2] == (False, False)
    assert score("B", "single_letter", {"letters": ["A", "B"]}) == (True, None, "ok")
    assert score("B.", "single_letter").ok is False and score("Yes", "yes_no", None, "No").ok is False
    assert score("7", "numeric_only", {"thousands": True}, "7").ok
    with pytest.raises(FormError, match="unknown answer form 'essay'"):
        score("x", "essay")
    with pytest.raises(FormError, match="form 'exact_n_list': spec field n"):
        parse_spec("exact_n_list", {"n": 0})
    with pytest.raises(FormError, match="spec field colour"):
        parse_spec("yes_no", {"colour": "red"})
    for name, cls in FORMS.items():  # defaults round-trip through the stored dict
        spec = cls(n=2) if cls is ExactNListSpec else cls()
        assert parse_spec(name, spec_dict(spec)) == spec
