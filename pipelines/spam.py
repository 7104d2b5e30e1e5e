"""Spam pages, by category: a Chinese + English lexicon (adult, gambling, fake_documents, grey_market) and a
link-farm rule.

Anchors: C4's bad-words filter (datatrove ``C4BadWordsFilter``: the LDNOOBW list, any single hit drops the page)
and data-juicer's ``flagged_words_filter`` (share of flagged words, default max 0.045).  Any-hit dropping removes
every news story about a gambling ban and every medical page about porn addiction; a ratio alone misses a short
spam title on a long page.  Here, per category:

* **page**: at least ``min_distinct`` *different* phrases of the category, covering at least ``min_ratio`` of the
  page's non-space characters (spam piles up different lures densely; a topical article repeats one or two);
* **title**: the title alone holds ``title_min_distinct`` different phrases (a title says what the page is; spam
  titles injected into an ordinary page are caught here).  The title is ``metadata["title"]``, else the text's
  first line when it is at most ``title_max_chars`` long and more lines follow;
* **stuffing**: one or two phrases repeated until they make up ``stuffing_ratio`` of the page
  (``stuffing_min_occurrences`` times at least).

Link farms (a title, then hundreds of bare domains) have a rule of their own: at least ``link_farm_min_urls``
URL/domain tokens that are at least ``link_farm_min_share`` of the page's tokens (whitespace- and
CJK-punctuation-separated).  A domain is a dotted name whose last label is a top-level domain of the public-suffix
list tldextract ships (no network).

Drop reasons name the category: ``spam_adult``, ``spam_gambling``, ``spam_fake_documents``, ``spam_grey_market``,
``spam_link_farm`` (datatrove stats ``dropped_spam_<category>``); the measured values go to
``metadata["filter_detail"]`` for the rejected-documents writer.

The lexicons are package data, ``shardsmith/assets/spam/<category>.txt`` (one phrase per line, ``#`` comments):
curators extend or review them without touching code, ``lexicon_dir`` swaps in a folder of their own in the same
layout (the LDNOOBW lists are plain word lists too), and the diff of a lexicon change reads as a list of phrases.
"""

from __future__ import annotations

import dataclasses
import functools
import pkgutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import regex
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

from .zh_filters import DETAIL_KEY, non_space_chars

CATEGORIES: tuple[str, ...] = ("adult", "gambling", "fake_documents", "grey_market")
LINK_FARM = "link_farm"
ALL_CATEGORIES: tuple[str, ...] = (*CATEGORIES, LINK_FARM)


@dataclass(frozen=True)
class CategoryRule:
    """Thresholds for one lexicon category (see the module docstring for the three rules)."""

    min_distinct: int = 3
    min_ratio: float = 0.05
    title_min_distinct: int = 2
    stuffing_ratio: float = 0.1
    stuffing_min_occurrences: int = 5

    def __post_init__(self):
        for name in ("min_distinct", "title_min_distinct", "stuffing_min_occurrences"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be an integer >= 1, got {getattr(self, name)!r}")
        for name in ("min_ratio", "stuffing_ratio"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"`{name}` must be a number in [0, 1], got {value!r}")


# Written spam pages (tests/test_spam_filters.py) put 6-25 % of their characters into 3-18 distinct phrases; news
# stories and medical articles about the same subjects reach 3 distinct phrases at 1.5-3.5 %.  Fake-document
# phrases are more specific (办假证, fake diploma): two different ones at 3 % already make an ad.
DEFAULT_RULES: dict[str, CategoryRule] = {
    "adult": CategoryRule(),
    "gambling": CategoryRule(),
    "fake_documents": CategoryRule(min_distinct=2, min_ratio=0.03),
    "grey_market": CategoryRule(),
}


# --------------------------------------------------------------------------------------------------------------------
# Lexicons
# --------------------------------------------------------------------------------------------------------------------


def default_lexicon_dir() -> Path:
    return Path(str(resources.files("shardsmith") / "assets" / "spam"))


def read_phrases(path: Path) -> list[str]:
    """Phrases of one lexicon file: one per line, lower-cased and stripped; blank lines and ``#`` comments skipped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [p for p in (line.split("#", 1)[0].strip().lower() for line in lines) if p]


def load_lexicon(directory: str | Path | None = None, categories: Iterable[str] = CATEGORIES) -> dict[str, list[str]]:
    """``{category: phrases}`` from ``<directory>/<category>.txt`` (default: the shipped lexicons)."""
    folder = Path(directory) if directory else default_lexicon_dir()
    out = {}
    for category in categories:
        path = folder / f"{category}.txt"
        if not path.is_file():
            raise FileNotFoundError(f"spam lexicon {path} not found (one file per category: {', '.join(CATEGORIES)})")
        out[category] = read_phrases(path)
    return out


def all_phrases(directory: str | Path | None = None) -> list[str]:
    """Every phrase of every category, sorted, without duplicates."""
    return sorted({p for phrases in load_lexicon(directory).values() for p in phrases})


class LexiconMatcher:
    """Finds lexicon phrases in text: Aho-Corasick over the lower-cased text, leftmost-longest, non-overlapping.

    A phrase whose first (last) character is an ASCII letter or digit only matches where the text's character
    before (after) it is not one: ``porn`` misses ``pornography``; CJK phrases match anywhere.
    """

    def __init__(self, lexicon: Mapping[str, Iterable[str]]):
        self.lexicon = {category: sorted(set(phrases)) for category, phrases in lexicon.items()}
        self._automaton = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_automaton"] = None
        return state

    def automaton(self):
        if self._automaton is None:
            import ahocorasick

            automaton = ahocorasick.Automaton()
            for category, phrases in self.lexicon.items():
                for phrase in phrases:
                    automaton.add_word(phrase, (category, phrase))
            automaton.make_automaton()
            self._automaton = automaton
        return self._automaton

    def matches(self, text: str) -> list[tuple[str, str]]:
        """``(category, phrase)`` for each occurrence, in text order."""
        lowered = text.lower()
        if not lowered or not self.lexicon or not any(self.lexicon.values()):
            return []
        found = []
        for end, (category, phrase) in self.automaton().iter_long(lowered):
            start = end - len(phrase) + 1
            if _ascii_word(phrase[0]) and start > 0 and _ascii_word(lowered[start - 1]):
                continue
            if _ascii_word(phrase[-1]) and end + 1 < len(lowered) and _ascii_word(lowered[end + 1]):
                continue
            found.append((category, phrase))
        return found


def _ascii_word(char: str) -> bool:
    return char.isascii() and char.isalnum()


# --------------------------------------------------------------------------------------------------------------------
# Link farms
# --------------------------------------------------------------------------------------------------------------------

# token separators: whitespace, and the punctuation Chinese pages separate link lists and clauses with
_TOKEN_SPLIT = regex.compile(r"[\s，、。；;｜|·•]+")
_STRIP = "()[]{}<>\"'“”‘’「」『』【】《》,.:!?！？："
_URL = regex.compile(r"(?:https?|ftp)://\S+|www\.\S+", regex.IGNORECASE)
_DOMAIN = regex.compile(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+([a-z]{2,63}|xn--[a-z0-9-]+)(?::\d+)?(?:/\S*)?")


@functools.lru_cache(maxsize=1)
def top_level_domains() -> frozenset[str]:
    """Last labels of the public-suffix list snapshot bundled with tldextract (``com``, ``cn``, ``xyz`` ...)."""
    data = pkgutil.get_data("tldextract", ".tld_set_snapshot")
    if data is None:  # pragma: no cover - tldextract always ships it
        raise FileNotFoundError("tldextract's .tld_set_snapshot is missing")
    tlds = set()
    for line in data.decode("utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("//"):
            tlds.add(line.rsplit(".", 1)[-1].lstrip("*!").lower())
    return frozenset(tlds)


def is_url_token(token: str) -> bool:
    """A URL (``http://...``, ``www....``) or a bare domain name with a real top-level domain."""
    token = token.strip(_STRIP).lower()
    if not token:
        return False
    if _URL.fullmatch(token):
        return True
    match = _DOMAIN.fullmatch(token)
    return bool(match) and match.group(1) in top_level_domains()


def url_token_counts(text: str) -> tuple[int, int]:
    """(URL/domain tokens, all tokens) of ``text``.

    Only tokens holding ``.`` or ``:`` are tested: a URL needs ``://`` or ``www.`` and a domain a dot, so
    :func:`is_url_token` is False for every other token (most of a page's words).
    """
    tokens = [t for t in _TOKEN_SPLIT.split(text) if t]
    return sum(map(is_url_token, [t for t in tokens if "." in t or ":" in t])), len(tokens)


# --------------------------------------------------------------------------------------------------------------------
# The filter
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryHits:
    """What one category's phrases matched on a page: occurrences and distinct phrases in the text and title."""

    occurrences: int
    distinct: tuple[str, ...]
    title_distinct: tuple[str, ...]
    ratio: float


class SpamFilter(BaseFilter):
    """Drops spam pages with a reason naming the category: ``spam_adult``, ``spam_gambling``,
    ``spam_fake_documents``, ``spam_grey_market``, ``spam_link_farm`` (rules: module docstring).

    Params: ``categories`` (which of ``adult, gambling, fake_documents, grey_market, link_farm`` to apply; default
    all), ``thresholds`` (``{category: {min_distinct, min_ratio, title_min_distinct, stuffing_ratio,
    stuffing_min_occurrences}}`` overriding :data:`DEFAULT_RULES`), ``extra_phrases`` (``{category: [phrases]}``
    added to the lexicon), ``lexicon_dir`` (a folder of ``<category>.txt`` replacing the shipped lexicons),
    ``title_max_chars``, ``link_farm_min_urls``, ``link_farm_min_share``.
    """

    name = "🚫 Spam (categorised)"

    def __init__(
        self,
        categories: Iterable[str] | None = None,
        thresholds: Mapping[str, Mapping[str, Any]] | None = None,
        extra_phrases: Mapping[str, Iterable[str]] | None = None,
        lexicon_dir: str | None = None,
        title_max_chars: int = 200,
        link_farm_min_urls: int = 20,
        link_farm_min_share: float = 0.3,
        exclusion_writer: DiskWriter | None = None,
    ):
        super().__init__(exclusion_writer)
        chosen = _check_categories("categories", ALL_CATEGORIES if categories is None else categories)
        lexicon_categories = [c for c in CATEGORIES if c in chosen]
        self.rules = _rules(thresholds or {}, lexicon_categories)
        self.matcher = LexiconMatcher(_lexicon(lexicon_dir, lexicon_categories, extra_phrases or {}))
        self.link_farm = LINK_FARM in chosen
        if not isinstance(link_farm_min_urls, int) or link_farm_min_urls < 1:
            raise ValueError(f"`link_farm_min_urls` must be an integer >= 1, got {link_farm_min_urls!r}")
        if not isinstance(link_farm_min_share, (int, float)) or not 0.0 < link_farm_min_share <= 1.0:
            raise ValueError(f"`link_farm_min_share` must be a number in (0, 1], got {link_farm_min_share!r}")
        if not isinstance(title_max_chars, int) or title_max_chars < 0:
            raise ValueError(f"`title_max_chars` must be an integer >= 0, got {title_max_chars!r}")
        self.link_farm_min_urls = link_farm_min_urls
        self.link_farm_min_share = float(link_farm_min_share)
        self.title_max_chars = title_max_chars

    def title_of(self, doc: Document) -> str:
        """``metadata["title"]``, else a short first line followed by more text, else ``""``."""
        title = doc.metadata.get("title")
        if isinstance(title, str) and title.strip():
            return title
        first, newline, rest = doc.text.strip().partition("\n")
        return first if newline and rest.strip() and len(first) <= self.title_max_chars else ""

    def category_hits(self, text: str, title: str) -> dict[str, CategoryHits]:
        """Per category with any match: its :class:`CategoryHits` on this page."""
        body = self.matcher.matches(text)
        in_title = self.matcher.matches(title) if title else []
        chars = max(non_space_chars(text), 1)
        out = {}
        for category in {c for c, _ in body + in_title}:
            phrases = [p for c, p in body if c == category]
            out[category] = CategoryHits(
                occurrences=len(phrases),
                distinct=tuple(dict.fromkeys(p for c, p in in_title + body if c == category)),
                title_distinct=tuple(dict.fromkeys(p for c, p in in_title if c == category)),
                ratio=sum(non_space_chars(p) for p in phrases) / chars,
            )
        return out

    def verdict(self, doc: Document) -> tuple[str, str] | None:
        """``(category, detail)`` of the rule that marks ``doc`` as spam, or None."""
        hits = self.category_hits(doc.text, self.title_of(doc))
        fired = []
        for category, h in hits.items():
            rule = self.rules[category]
            why = _which_rule(rule, h)
            if why:
                fired.append((h.ratio, category, f"{category}: {why}; phrases: {', '.join(h.distinct[:8])}"))
        if fired:
            _, category, detail = max(fired)
            return category, detail
        if self.link_farm and doc.text.count(".") >= self.link_farm_min_urls:  # every URL/domain holds a dot
            urls, tokens = url_token_counts(doc.text)
            if urls >= self.link_farm_min_urls and urls >= self.link_farm_min_share * tokens:
                return LINK_FARM, f"link_farm: {urls} of {tokens} tokens are URLs/domains"
        return None

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        found = self.verdict(doc)
        if found is None:
            return True
        category, detail = found
        doc.metadata[DETAIL_KEY] = detail
        return False, f"spam_{category}"


def _which_rule(rule: CategoryRule, h: CategoryHits) -> str | None:
    if len(h.title_distinct) >= rule.title_min_distinct:
        return f"{len(h.title_distinct)} distinct phrases in the title (min {rule.title_min_distinct})"
    if len(h.distinct) >= rule.min_distinct and h.ratio >= rule.min_ratio:
        return (
            f"{len(h.distinct)} distinct phrases (min {rule.min_distinct}) covering {h.ratio:.3f} of the "
            f"characters (min {rule.min_ratio})"
        )
    if h.occurrences >= rule.stuffing_min_occurrences and h.ratio >= rule.stuffing_ratio:
        return f"{h.occurrences} occurrences covering {h.ratio:.3f} of the characters (min {rule.stuffing_ratio})"
    return None


def _check_categories(what: str, names: Iterable[str], allowed: tuple[str, ...] = ALL_CATEGORIES) -> list[str]:
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise ValueError(f"`{what}` must be a list of categories, got {names!r}")
    names = list(names)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"`{what}`: unknown category {', '.join(map(repr, unknown))}; known: {', '.join(allowed)}")
    return names


def _check_mapping(what: str, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise ValueError(f"`{what}` must be a mapping with category keys, got {value!r}")
    _check_categories(what, value, CATEGORIES)


def _rules(overrides: Mapping[str, Mapping[str, Any]], categories: list[str]) -> dict[str, CategoryRule]:
    _check_mapping("thresholds", overrides)
    fields = {f.name for f in dataclasses.fields(CategoryRule)}
    rules = {}
    for category in categories:
        change = overrides.get(category) or {}
        if not isinstance(change, Mapping):
            raise ValueError(f"`thresholds.{category}` must be a mapping of threshold names to values, got {change!r}")
        unknown = sorted(set(change) - fields)
        if unknown:
            raise ValueError(
                f"`thresholds.{category}`: unknown key {', '.join(map(repr, unknown))}; known: {', '.join(sorted(fields))}"
            )
        try:
            rules[category] = dataclasses.replace(DEFAULT_RULES[category], **change)
        except ValueError as e:
            raise ValueError(f"`thresholds.{category}`: {e}") from e
    return rules


def _lexicon(
    directory: str | None, categories: list[str], extra: Mapping[str, Iterable[str]]
) -> dict[str, list[str]]:
    _check_mapping("extra_phrases", extra)
    lexicon = load_lexicon(directory, categories)
    for category, phrases in extra.items():
        if isinstance(phrases, str):
            raise ValueError(f"`extra_phrases.{category}` must be a list of phrases, got the string {phrases!r}")
        if category in lexicon:
            lexicon[category] += [p.strip().lower() for p in phrases if p and p.strip()]
    return lexicon
