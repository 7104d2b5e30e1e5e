"""Chinese-oriented rules that datatrove lacks (all usable for any language), plus an OpenCC t2s formatter.

Every filter returns ``True`` (keep) or ``(False, reason)`` with a short, stable reason (it becomes a datatrove stats
key ``dropped_<reason>``, so it must not contain per-document numbers).  The measured value behind a drop goes to
``doc.metadata["filter_detail"]`` (e.g. ``"cjk ratio 0.12 < 0.30"``); the rejected-documents writer of
``pipelines.filter_chains`` appends it to the reason it writes.  Kept documents get no extra metadata.

Default thresholds (used by the zh chain in ``pipelines.filter_chains``) were checked on the shared SkyPile and WanJuan
samples (1,000 docs each): they remove only the junk tail (menus, markdown-only pages, symbol soup) there.
"""

from __future__ import annotations

import re
from typing import Iterable

import regex
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.formatters.base import BaseFormatter
from datatrove.pipeline.writers.disk_base import DiskWriter

from .opencc_fast import FastOpenCC

DETAIL_KEY = "filter_detail"

_HAN = regex.compile(r"\p{Han}")  # CJK unified ideographs (all extensions) + compatibility ideographs, 〇, 々 ...
_WS = regex.compile(r"\s")
_SYMBOL = regex.compile(r"[\p{P}\p{S}]")  # Unicode punctuation (P*) and symbols (S*): ，。！ # * | ★ ➣ © ...


def non_space_chars(text: str) -> int:
    """Number of non-whitespace characters."""
    return len(text) - len(_WS.findall(text))


def cjk_chars(text: str) -> int:
    return len(_HAN.findall(text))


def symbol_chars(text: str) -> int:
    return len(_SYMBOL.findall(text))


def _drop(doc: Document, reason: str, detail: str) -> tuple[bool, str]:
    doc.metadata[DETAIL_KEY] = detail
    return False, reason


class CJKRatioFilter(BaseFilter):
    """Drop documents whose CJK ideographs are less than ``min_ratio`` of their non-space characters."""

    name = "🀄 CJK ratio"

    def __init__(self, min_ratio: float = 0.3, exclusion_writer: DiskWriter | None = None):
        super().__init__(exclusion_writer)
        if not 0.0 <= min_ratio <= 1.0:
            raise ValueError(f"cjk_ratio min_ratio must be in [0, 1], got {min_ratio}")
        self.min_ratio = min_ratio

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        n = non_space_chars(doc.text)
        if n == 0:
            return _drop(doc, "empty", "no non-space characters")
        ratio = cjk_chars(doc.text) / n
        if ratio < self.min_ratio:
            return _drop(doc, "cjk_ratio_too_low", f"cjk ratio {ratio:.3f} < {self.min_ratio}")
        return True


class MinCharsFilter(BaseFilter):
    """Length in non-whitespace characters (Chinese has no spaces to count words by; also fine for any language).

    Drops documents with fewer than ``min_chars`` or (if set) more than ``max_chars`` non-space characters.
    """

    name = "📏 Length (chars)"

    def __init__(
        self, min_chars: int = 100, max_chars: int | None = None, exclusion_writer: DiskWriter | None = None
    ):
        super().__init__(exclusion_writer)
        if min_chars is not None and min_chars < 0:
            raise ValueError(f"min_chars must be >= 0, got {min_chars}")
        if max_chars is not None and min_chars is not None and max_chars < min_chars:
            raise ValueError(f"max_chars ({max_chars}) must be >= min_chars ({min_chars})")
        self.min_chars = min_chars
        self.max_chars = max_chars

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        n = non_space_chars(doc.text)
        if self.min_chars is not None and n < self.min_chars:
            return _drop(doc, "too_few_chars", f"{n} non-space chars < {self.min_chars}")
        if self.max_chars is not None and n > self.max_chars:
            return _drop(doc, "too_many_chars", f"{n} non-space chars > {self.max_chars}")
        return True


class SymbolRatioFilter(BaseFilter):
    """Drop documents where punctuation + symbols exceed ``max_ratio`` of the non-space characters.

    Normal Chinese prose sits at 0.10-0.18 (，。、 count as punctuation); markdown menus, tables of ``**`` and
    symbol soup go above 0.4.
    """

    name = "🔣 Symbol ratio"

    def __init__(self, max_ratio: float = 0.4, exclusion_writer: DiskWriter | None = None):
        super().__init__(exclusion_writer)
        if not 0.0 <= max_ratio <= 1.0:
            raise ValueError(f"symbol_ratio max_ratio must be in [0, 1], got {max_ratio}")
        self.max_ratio = max_ratio

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        n = non_space_chars(doc.text)
        if n == 0:
            return _drop(doc, "empty", "no non-space characters")
        ratio = symbol_chars(doc.text) / n
        if ratio > self.max_ratio:
            return _drop(doc, "symbol_ratio_too_high", f"symbol ratio {ratio:.3f} > {self.max_ratio}")
        return True


# Ad / spam phrases. Chinese: invoices and fake certificates, gambling, porn, grey-market services; English: the
# classic pharma / casino / adult / "make money" spam. Each hit counts once per occurrence; normal articles that
# merely mention one of these (news about a gambling crackdown) stay under the default max_hits.
DEFAULT_SPAM_PHRASES: tuple[str, ...] = (
    # zh: invoices, fake documents
    "代开发票", "开发票", "发票代开", "增值税发票", "办证", "办假证", "代办证件", "假文凭", "代写论文", "论文代写",
    "代考", "枪手代考",
    # zh: gambling
    "六合彩", "时时彩", "北京赛车", "百家乐", "博彩", "网上赌场", "真人赌场", "赌博网站", "老虎机", "娱乐城",
    "澳门威尼斯人", "葡京娱乐", "太阳城娱乐", "体育投注", "彩票投注", "首存", "彩金", "注册送", "下注",
    # zh: porn / adult
    "色情", "裸聊", "一夜情", "约炮", "成人视频", "黄色网站", "援交", "av女优", "激情视频", "催情", "春药",
    # zh: grey market
    "代孕", "私服", "外挂", "刷单", "刷信誉", "信用卡套现", "无抵押贷款", "高仿", "迷药", "窃听器", "针孔摄像",
    "枪支出售", "出售枪", "加微信", "加qq",
    # en
    "viagra", "cialis", "levitra", "online casino", "casino bonus", "slot machine", "poker online", "payday loan",
    "replica watches", "cheap rolex", "porn", "xxx", "sex cam", "escort service", "adult dating", "hot singles",
    "make money online", "earn money fast", "work from home", "weight loss pills", "buy followers",
    "click here to buy", "100% free", "bitcoin doubler",
)


class SpamPhraseFilter(BaseFilter):
    """Drop ad/spam pages: more than ``max_hits`` *distinct* spam phrases, or more than ``max_occurrences``
    occurrences in all (case-insensitive).

    Counting distinct phrases keeps topical articles (a news story saying "viagra" three times, an essay about game
    cheats, "外挂", four times) while spam pages, which pile up different lures, go.  ASCII phrases only match as
    whole words (``porn`` does not hit ``pornography``, ``xxx`` does not hit ``xxxx``); CJK phrases match as
    substrings.  ``extra_phrases`` extends the default list, ``phrases`` replaces it.

    Legacy (recipe step ``spam_phrases``, reason ``spam_phrases``): the default chains use the categorised
    ``spam`` step instead (:class:`shardsmith.pipelines.spam.SpamFilter`: reasons ``spam_adult`` ...).
    """

    name = "🚫 Spam phrases"

    def __init__(
        self,
        phrases: Iterable[str] | None = None,
        max_hits: int = 2,
        max_occurrences: int = 10,
        extra_phrases: Iterable[str] | None = None,
        exclusion_writer: DiskWriter | None = None,
    ):
        super().__init__(exclusion_writer)
        if isinstance(phrases, str) or isinstance(extra_phrases, str):
            raise TypeError("spam_phrases `phrases` / `extra_phrases` must be lists of strings")
        base = list(DEFAULT_SPAM_PHRASES if phrases is None else phrases)
        self.phrases = sorted({p.strip().lower() for p in base + list(extra_phrases or []) if p and p.strip()})
        if not self.phrases:
            raise ValueError("spam_phrases needs at least one phrase")
        if max_hits < 0 or max_occurrences < 0:
            raise ValueError(f"spam_phrases max_hits/max_occurrences must be >= 0, got {max_hits}/{max_occurrences}")
        self.max_hits = max_hits
        self.max_occurrences = max_occurrences
        self._regex = None

    def _pattern(self) -> re.Pattern:
        if self._regex is None:
            parts = []
            for p in sorted(self.phrases, key=len, reverse=True):
                esc = re.escape(p)
                if p.isascii():
                    esc = rf"(?<![0-9a-z]){esc}(?![0-9a-z])"
                parts.append(esc)
            self._regex = re.compile("|".join(parts), re.IGNORECASE)
        return self._regex

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_regex"] = None
        return state

    def hits(self, text: str) -> list[str]:
        """All phrase occurrences, lower-cased, in order."""
        return [m.group(0).lower() for m in self._pattern().finditer(text)]

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        found = self.hits(doc.text)
        distinct = list(dict.fromkeys(found))
        if len(distinct) > self.max_hits or len(found) > self.max_occurrences:
            return _drop(
                doc,
                "spam_phrases",
                f"{len(distinct)} distinct spam phrases (max {self.max_hits}), {len(found)} occurrences "
                f"(max {self.max_occurrences}): {', '.join(distinct[:10])}",
            )
        return True


class OpenCCT2S(BaseFormatter):
    """Traditional -> simplified Chinese with opencc-python-reimplemented's dictionaries and rules, converted by
    :class:`~shardsmith.pipelines.opencc_fast.FastOpenCC` (same output as the package's ``OpenCC.convert``, about
    6x faster).

    fastText's lid.176 labels both scripts ``zh``, so the Chinese chain converts before LID, heuristics and dedup.
    ``config`` may be any OpenCC config shipped with the package (``t2s``, ``tw2s``, ``hk2s``, ``tw2sp``, ...).
    """

    name = "🀄 OpenCC t2s"

    def __init__(self, config: str = "t2s"):
        super().__init__()
        from opencc import OpenCC  # noqa: F401  (fail early when the package is missing)

        self.config = config.removesuffix(".json")
        self._cc = None
        self._fast = None
        self._converter()  # validate the config name now

    def _converter(self):
        if self._cc is None:
            from opencc import OpenCC

            try:
                self._cc = OpenCC(self.config)
            except FileNotFoundError as e:
                raise ValueError(f"unknown OpenCC config {self.config!r} (try 't2s', 'tw2s', 'hk2s')") from e
            # FastOpenCC re-implements this version's rules; any other version converts with the package itself
            self._fast = FastOpenCC(self._cc) if FastOpenCC.usable() else self._cc
        return self._fast

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cc"] = state["_fast"] = None
        return state

    def format(self, text: str) -> str:
        out = self._converter().convert(text)
        if out != text:
            self.stat_update("converted")
        return out
