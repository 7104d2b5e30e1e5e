"""Strict answer forms (FF_3.13 stage 6 "surgical" output discipline) and the checkers that score a response.

One registry row per form: ``FORMS[name]`` is a spec class (a strict pydantic model whose fields are the form's
options).  A spec gives

- ``instruction()`` — the sentence appended to a prompt that asks for this form;
- ``target(expected)`` — the canonical strict answer a builder writes as the training target;
- ``check(response, expected=None) -> Verdict(ok, why)`` — whether a response is in the strict form and, when
  ``expected`` is given, whether it is also the right answer.

The contract is shared: builders (``builders/surgical.py``) write ``target(...)`` and must pass ``check``; the
evaluation scores generations with :func:`score` / :func:`score_item` from the metadata the builder stored
(``{"form": name, "spec": {...}, "expected": ...}``).  This module imports nothing from builders, pipelines or
trainer, so the trainer side can import it.

Whitespace around the whole response is ignored (a generation usually ends in a newline); everything else is strict:
a checker accepts the form and rejects near misses ("Yes, because ...", "(B)", "Answer: B", a preamble line before a
list, "42 apples").

==============  ====================================================  ==========================================
form            strict form                                           ``expected`` (optional)
==============  ====================================================  ==========================================
yes_no          ``Yes`` or ``No``, case per ``case``, final period     ``"Yes"`` / ``"No"`` (or a bool)
                per ``final_period``
single_letter   exactly one of ``letters``, nothing else               the right letter
exact_n_list    exactly ``n`` lines ``1. item`` / ``- item`` (per      the accepted items: every listed item must
                ``marker``), distinct items, no preamble/epilogue      be one of them (normalised)
numeric_only    one number: digits, optional ``-`` and decimals,       a number (compared by value)
                ``,`` thousands groups only if ``thousands``
==============  ====================================================  ==========================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Literal, NamedTuple

from pydantic import Field, ValidationError, field_validator

from shardsmith.schemas.common import Strict


class Verdict(NamedTuple):
    """A checker's answer: ``ok`` and, either way, a short human-readable reason (``"ok"`` when it passes)."""

    ok: bool
    why: str


class Score(NamedTuple):
    """What the evaluation records per generation: form compliance and, when an answer was expected, correctness.

    ``correct`` is ``None`` when no ``expected`` was given; it is ``False`` whenever the form fails.
    """

    form_ok: bool
    correct: bool | None
    why: str

    @property
    def ok(self) -> bool:
        return self.form_ok and self.correct is not False


OK = Verdict(True, "ok")


def _no(why: str) -> Verdict:
    return Verdict(False, why)


def _show(text: str, limit: int = 60) -> str:
    """A response quoted for a reason string, shortened so reasons stay one line."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def normalise_item(text: str) -> str:
    """How list items are compared: case-folded, whitespace collapsed, a final period dropped."""
    return " ".join(text.split()).casefold().rstrip(".").rstrip()


class FormSpec(Strict):
    """Base of every form: subclasses set ``name`` and implement the three parts of the contract."""

    model_config = Strict.model_config | {"frozen": True}
    name: ClassVar[str]

    def instruction(self) -> str:
        raise NotImplementedError

    def target(self, expected: Any) -> str:
        raise NotImplementedError

    def check_form(self, text: str) -> Verdict:
        """``text`` is the response with outer whitespace removed."""
        raise NotImplementedError

    def check_answer(self, text: str, expected: Any) -> Verdict:
        """Called only on a response that passed :meth:`check_form`."""
        raise NotImplementedError

    def check(self, response: str, expected: Any = None) -> Verdict:
        text = response.strip()
        verdict = self.check_form(text)
        if not verdict.ok or expected is None:
            return verdict
        return self.check_answer(text, expected)


# --- yes / no -----------------------------------------------------------------------------------------------------
_YES_NO_CASES = {"title": ("Yes", "No"), "lower": ("yes", "no"), "upper": ("YES", "NO")}


def yes_no_word(value: str | bool) -> str:
    """``True`` / ``"yes"`` / ``"Yes."`` -> ``"Yes"``; the same for No; anything else raises ValueError."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    word = str(value).strip().rstrip(".").casefold()
    if word not in ("yes", "no"):
        raise ValueError(f"yes_no: expected must be Yes or No, got {value!r}")
    return word.capitalize()


class YesNoSpec(FormSpec):
    name: ClassVar[str] = "yes_no"

    case: Literal["title", "lower", "upper", "any"] = Field(
        "title", description="title: Yes/No only; lower: yes/no; upper: YES/NO; any: any letter case")
    final_period: Literal["optional", "forbidden", "required"] = "optional"

    def _words(self) -> tuple[str, str]:
        return _YES_NO_CASES.get(self.case, _YES_NO_CASES["title"])

    def instruction(self) -> str:
        yes, no = self._words()
        period = {"optional": "", "forbidden": ", without a period",
                  "required": ", followed by a period"}[self.final_period]
        return f'Answer with only "{yes}" or "{no}"{period}.'

    def target(self, expected: str | bool) -> str:
        yes, no = self._words()
        word = yes if yes_no_word(expected) == "Yes" else no
        return word + ("." if self.final_period == "required" else "")

    def check_form(self, text: str) -> Verdict:
        word, period = (text[:-1], True) if text.endswith(".") else (text, False)
        if period and self.final_period == "forbidden":
            return _no(f"final period not allowed: {_show(text)}")
        if not period and self.final_period == "required":
            return _no(f"final period required: {_show(text)}")
        if word.casefold() not in ("yes", "no"):
            return _no(f"not exactly Yes or No: {_show(text)}")
        if self.case != "any" and word not in self._words():
            return _no(f"wrong case for case={self.case}: {_show(text)}")
        return OK

    def check_answer(self, text: str, expected: str | bool) -> Verdict:
        got, want = yes_no_word(text), yes_no_word(expected)
        return OK if got == want else _no(f"answered {got}, expected {want}")


# --- single letter ------------------------------------------------------------------------------------------------
class SingleLetterSpec(FormSpec):
    name: ClassVar[str] = "single_letter"

    letters: tuple[str, ...] = Field(("A", "B", "C", "D"), description="the allowed letters, upper case, in order")
    case: Literal["exact", "any"] = Field("exact", description="any: a lower-case letter also passes")

    @field_validator("letters")
    @classmethod
    def _letters(cls, letters: tuple[str, ...]) -> tuple[str, ...]:
        if not letters:
            raise ValueError("letters: at least one letter")
        bad = [x for x in letters if len(x) != 1 or not x.isalpha() or not x.isupper()]
        if bad:
            raise ValueError(f"letters: each must be one upper-case letter, got {bad}")
        if len(set(letters)) != len(letters):
            raise ValueError(f"letters: repeated letter in {list(letters)}")
        return letters

    def instruction(self) -> str:
        choices = self.letters[0] if len(self.letters) == 1 else \
            ", ".join(self.letters[:-1]) + " or " + self.letters[-1]
        return f"Answer with only the letter of the correct option ({choices})."

    def target(self, expected: str) -> str:
        if expected not in self.letters:
            raise ValueError(f"single_letter: expected {expected!r} is not among letters {list(self.letters)}")
        return expected

    def check_form(self, text: str) -> Verdict:
        if len(text) != 1 or not text.isalpha():
            return _no(f"not a single letter: {_show(text)}")
        letter = text.upper() if self.case == "any" else text
        if letter not in self.letters:
            return _no(f"{text!r} is not one of {''.join(self.letters)}")
        return OK

    def check_answer(self, text: str, expected: str) -> Verdict:
        got = text.upper() if self.case == "any" else text
        return OK if got == expected else _no(f"answered {got}, expected {expected}")


# --- exact-N list -------------------------------------------------------------------------------------------------
class ExactNListSpec(FormSpec):
    name: ClassVar[str] = "exact_n_list"

    n: int = Field(..., ge=1, le=100, description="how many items, exactly")
    marker: Literal["1.", "-", "*"] = Field("1.", description='"1.": numbered 1., 2., ...; "-" / "*": bullets')

    def _prefix(self, k: int) -> str:
        return f"{k}. " if self.marker == "1." else f"{self.marker} "

    def instruction(self) -> str:
        if self.marker == "1.":
            how = "numbered 1., 2., ..." if self.n > 1 else 'numbered "1."'
        else:
            how = f'each starting with "{self.marker} "'
        noun = "item" if self.n == 1 else "items"
        return f"Answer with exactly {self.n} {noun}, one per line, {how}, and nothing else."

    def target(self, expected: Iterable[str]) -> str:
        items = list(expected)
        if len(items) != self.n:
            raise ValueError(f"exact_n_list: {len(items)} items given for n={self.n}")
        return "\n".join(self._prefix(k) + item for k, item in enumerate(items, 1))

    def items(self, text: str) -> list[str]:
        """The item texts of a response that passed :meth:`check_form` (markers removed)."""
        return [line.rstrip()[len(self._prefix(k)):] for k, line in enumerate(text.split("\n"), 1)]

    def check_form(self, text: str) -> Verdict:
        lines = [line.rstrip() for line in text.split("\n")]
        for k, line in enumerate(lines, 1):
            verdict = self._check_line(k, line)
            if not verdict.ok:
                return verdict
        if len(lines) != self.n:
            return _no(f"{len(lines)} items, expected exactly {self.n}")
        seen = [normalise_item(item) for item in self.items(text)]
        if len(set(seen)) != len(seen):
            return _no("repeated item")
        return OK

    def _check_line(self, k: int, line: str) -> Verdict:
        if not line:
            return _no(f"line {k} is blank")
        prefix = self._prefix(k)
        if not line.startswith(prefix):
            if self.marker == "1." and re.match(r"\d+\. ", line):
                return _no(f"line {k} numbered {line.split()[0]}, expected {prefix.strip()}")
            return _no(f"line {k} is not a {prefix.strip()!r} item (preamble or epilogue?): {_show(line)}")
        if line[len(prefix)].isspace():
            return _no(f"line {k}: one space, then the item, after {prefix.strip()!r}: {_show(line)}")
        return OK

    def check_answer(self, text: str, expected: Iterable[str]) -> Verdict:
        accepted = {normalise_item(x) for x in expected}
        for k, item in enumerate(self.items(text), 1):
            if normalise_item(item) not in accepted:
                return _no(f"item {k} is not an accepted answer: {_show(item)}")
        return OK


# --- numeric only -------------------------------------------------------------------------------------------------
_DIGITS = r"\d+"
_GROUPED = r"\d{1,3}(?:,\d{3})+"


def parse_number(text: str | int | float | Decimal) -> Decimal:
    """A number written as digits (optional ``-``, decimals, ``,`` thousands groups) -> Decimal; else ValueError."""
    if isinstance(text, (int, Decimal)):
        return Decimal(text)
    if isinstance(text, float):
        return Decimal(repr(text))
    s = str(text).strip()
    if not re.fullmatch(rf"-?(?:{_GROUPED}|{_DIGITS})(?:\.\d+)?", s):
        raise ValueError(f"not a plain number: {s!r}")
    try:
        return Decimal(s.replace(",", ""))
    except InvalidOperation as err:  # unreachable with the pattern above; kept for a clear message
        raise ValueError(f"not a plain number: {s!r}") from err


def plain_number(value: str | int | float | Decimal) -> str:
    """The canonical way a target writes a number: no separators, no exponent, no trailing decimal zeros."""
    number = parse_number(value)
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


class NumericOnlySpec(FormSpec):
    name: ClassVar[str] = "numeric_only"

    thousands: bool = Field(False, description='allow "," thousands groups (1,234); plain digits always pass')
    decimals: bool = Field(True, description="allow a decimal part (3.5)")
    negative: bool = Field(True, description='allow a leading "-"')

    def _pattern(self) -> str:
        whole = f"(?:{_GROUPED}|{_DIGITS})" if self.thousands else _DIGITS
        return ("-?" if self.negative else "") + whole + (r"(?:\.\d+)?" if self.decimals else "")

    def instruction(self) -> str:
        extra = "" if self.decimals else " Give a whole number."
        return "Answer with only the number, without units, symbols or words." + extra

    def target(self, expected: str | int | float | Decimal) -> str:
        text = plain_number(expected)
        if not re.fullmatch(self._pattern(), text):
            raise ValueError(f"numeric_only: {text} cannot be written under {self.model_dump()}")
        return text

    def check_form(self, text: str) -> Verdict:
        if re.fullmatch(self._pattern(), text):
            return OK
        if re.fullmatch(rf"-?(?:{_GROUPED}|{_DIGITS})(?:\.\d+)?", text):
            return _no(f"number written in a form the spec does not allow ({self.model_dump()}): {_show(text)}")
        return _no(f"not a number only: {_show(text)}")

    def check_answer(self, text: str, expected: str | int | float | Decimal) -> Verdict:
        got, want = parse_number(text), parse_number(expected)
        return OK if got == want else _no(f"answered {plain_number(got)}, expected {plain_number(want)}")


# --- registry and the evaluation's entry points -------------------------------------------------------------------
FORMS: dict[str, type[FormSpec]] = {cls.name: cls for cls in (YesNoSpec, SingleLetterSpec, ExactNListSpec,
                                                                 NumericOnlySpec)}


class FormError(ValueError):
    """An unknown form name or a spec that does not validate (names the form and the field)."""


def parse_spec(form: str, spec: FormSpec | Mapping[str, Any] | None = None) -> FormSpec:
    """The spec object for ``form`` from a dict (as stored in item metadata), a spec, or ``None`` (defaults)."""
    cls = FORMS.get(form)
    if cls is None:
        raise FormError(f"unknown answer form {form!r}; known: {', '.join(FORMS)}")
    if isinstance(spec, FormSpec):
        if not isinstance(spec, cls):
            raise FormError(f"form {form!r} given a {type(spec).__name__}")
        return spec
    try:
        return cls.model_validate(dict(spec or {}))
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "spec"
        raise FormError(f"form {form!r}: spec field {field}: {first['msg']}") from None


def spec_dict(spec: FormSpec) -> dict[str, Any]:
    """A spec as plain JSON-able data (what builders store in metadata and :func:`parse_spec` reads back)."""
    return spec.model_dump(mode="json")


def check(response: str, spec: FormSpec, expected: Any = None) -> Verdict:
    """Form check (and answer check when ``expected`` is given) of one response against a spec object."""
    return spec.check(response, expected)


def score(response: str, form: str, spec: FormSpec | Mapping[str, Any] | None = None,
          expected: Any = None) -> Score:
    """Score one generation: form compliance, plus correctness when ``expected`` is given (else ``correct=None``)."""
    parsed = parse_spec(form, spec)
    text = response.strip()
    form_verdict = parsed.check_form(text)
    if not form_verdict.ok:
        return Score(False, False if expected is not None else None, form_verdict.why)
    if expected is None:
        return Score(True, None, "ok")
    answer = parsed.check_answer(text, expected)
    return Score(True, answer.ok, answer.why)


def score_item(response: str, metadata: Mapping[str, Any]) -> Score:
    """Score a generation against an item's metadata as the surgical builder writes it (form, spec, expected)."""
    return score(response, metadata["form"], metadata.get("spec"), metadata.get("expected"))
