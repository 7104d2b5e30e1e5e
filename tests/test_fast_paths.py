"""Each fast path of the filter chains equals the library it stands in for, on real documents.

* ``NormalizeFormatter.fix`` (ftfy skipped where it cannot change a segment) vs datatrove's ``FTFYFormatter``
  (``ftfy.fix_text``) with the same config;
* ``FastOpenCC`` vs opencc-python-reimplemented's ``OpenCC.convert`` (t2s, tw2s) on simplified and traditional text;
* ``FastGopherQualityFilter`` vs datatrove's ``GopherQualityFilter`` (English and cmn_Hani settings).

Real data comes from $SHARDSMITH_DATA (skips when absent, fails under CI=true).
"""

from __future__ import annotations

import copy
import json

import pytest
from conftest import need_data
from datatrove.data import Document
from datatrove.pipeline.filters import GopherQualityFilter
from datatrove.pipeline.formatters import FTFYFormatter

from shardsmith.pipelines.filter_chains import build_filter_steps
from shardsmith.pipelines.gopher_quality import FastGopherQualityFilter
from shardsmith.pipelines.normalize import NormalizeFormatter, ftfy_triggers
from shardsmith.pipelines.opencc_fast import FastOpenCC
from shardsmith.pipelines.word_tokenizer import SharedWordTokenizer
from shardsmith.schemas.mix_recipe import SourceSpec

pytestmark = pytest.mark.realdata

# ftfy's own examples of what it fixes, and characters each fixer acts on: all must take ftfy's path
MOJIBAKE = [
    "âœ” No problems",
    "&macr;\\_(ã\x83\x84)_/&macr;",
    "Broken text&hellip; it&#x2019;s ﬂubberiﬁc!",
    "sÃ³ and voilÃ le travail",
    "Ã  la carte\nline two",
    "the Mac line\rends and Windows\r\nones\u2028too",
    "\x1b[36;44mcoloured\x1b[0m log",
    "cafe\u0301 (decomposed) and ﬁnancial",
    "ctrl\x00chars\x7f and a BOM \ufeff",
    "doppelt &amp;lt;b&amp;gt; escaped",
    "中文â€œmojibakeâ€\x9d 引号",
]


def _lines(path, key, limit):
    out = []
    with open(path) as f:
        for line in f:
            out.append(json.loads(line)[key])
            if len(out) >= limit:
                break
    return out


@pytest.fixture(scope="module")
def texts():
    root = need_data("web_c4_demo_llamafactory", "web_dclm_quality_annotations", "zh_skypile_sample",
                     "zh_wanjuan1_text_sample")  # fmt: skip
    en = _lines(root / "web_c4_demo_llamafactory" / "c4_demo.jsonl", "text", 120)
    en += _lines(root / "web_dclm_quality_annotations" / "majority_data.jsonl", "text", 120)
    zh = _lines(root / "zh_skypile_sample" / "2021-31_zh_head_0000_sample.jsonl", "text", 80)
    zh += _lines(root / "zh_wanjuan1_text_sample" / "part-010205-a894b46e_sample.jsonl", "content", 80)
    return {"en": en, "zh": zh}


def test_normalize_fast_path_equals_ftfy(texts):
    ours = NormalizeFormatter()
    ref = copy.copy(ours)
    ref.__class__ = FTFYFormatter  # datatrove's own format: ftfy.fix_text with the same config
    docs = texts["en"] + texts["zh"] + MOJIBAKE
    assert [ours.fix(t) for t in docs] == [ref.format(t) for t in docs]
    triggers = ftfy_triggers()
    skipped = [t for t in docs if ours._unchanged(t, triggers)]
    assert len(skipped) > len(docs) / 2  # the fast path is taken for most real documents ...
    assert not any(ours._unchanged(t, triggers) for t in MOJIBAKE)  # ... and never for what ftfy fixes
    assert all(ref.format(t) != t for t in MOJIBAKE)
    auto = NormalizeFormatter(unescape_html="auto")  # ftfy's per-segment "auto" switch, replayed
    auto_ref = copy.copy(auto)
    auto_ref.__class__ = FTFYFormatter
    mixed = "a < b\n&amp; more &lt;\n" + MOJIBAKE[2]
    assert auto.fix(mixed) == auto_ref.format(mixed)


def test_fast_opencc_equals_opencc(texts):
    from opencc import OpenCC

    simplified = texts["zh"][:30] + texts["zh"][-20:]
    traditional = [OpenCC("s2t").convert(t) for t in texts["zh"][30:50]]  # real text, traditional script
    for config in ("t2s", "tw2s"):
        ref, fast = OpenCC(config), FastOpenCC(OpenCC(config))
        docs = simplified + traditional + ["", "乾隆皇帝", "「一口吃個胖子」——後來，"]
        got = [fast.convert(t) for t in docs]
        assert got == [ref.convert(t) for t in docs]
        assert sum(g != t for g, t in zip(got, docs)) >= 20  # conversions happened


def test_fast_jieba_words_equal_stripped_jieba_cut(texts):
    """_FastJieba.words (with its HMM memo) is datatrove's strip_strings over jieba.cut's pieces."""
    import jieba
    from datatrove.utils.word_tokenizers import strip_strings

    from shardsmith.pipelines.word_tokenizer import _FastJieba

    docs = texts["zh"][:40] + [" a  b\r\n中文 \t\u3000全角\u2028x ", "", "\n\n", "abc 123.5% 你好吗"]
    fast = _FastJieba(jieba.dt)
    for text in docs + docs[:10]:  # the repeats come from the memos
        assert fast.words(text) == strip_strings([x for x in jieba.cut(text, cut_all=False) if x])
    assert fast.hmm  # the HMM memo was used


def test_fast_gopher_quality_equals_datatrove(texts):
    zh_steps = dict(build_filter_steps(SourceSpec(name="zh", kind="generic", paths=["-"], weight=1, language="zh"), None))
    zh_quality = zh_steps["gopher_quality"]
    assert isinstance(zh_quality, FastGopherQualityFilter)
    zh_params = {k: getattr(zh_quality, k) for k in ("min_avg_word_length", "max_avg_word_length",
                 "max_non_alpha_words_ratio", "min_stop_words")}  # fmt: skip
    en, zh = SharedWordTokenizer("en"), SharedWordTokenizer("zh")  # one split per text for both filters: the
    cases = [  # filters' rules are compared here; the tokenizer equals datatrove's (tests/test_filters.py)
        (en, {}, texts["en"][:100]),
        (zh, {**zh_params, "stop_words": sorted(zh_quality.stop_words)}, texts["zh"][:60]),
        (en, {"min_doc_words": 5, "max_avg_word_length": 6, "min_stop_words": 4}, texts["en"][:50]),
    ]
    for language, params, docs in cases:
        ref = GopherQualityFilter(language=language, **params)
        fast = FastGopherQualityFilter(language=language, **params)
        pairs = [(fast.filter(Document(text=t, id="x")), ref.filter(Document(text=t, id="x"))) for t in docs]
        assert [got for got, _ in pairs] == [expected for _, expected in pairs]
        assert len({got if got is True else got[1] for got, _ in pairs}) >= 2  # keeps and drops


def test_url_token_counts_equal_testing_every_token(texts):
    """The link-farm rule tests only tokens with '.' or ':'; the counts equal testing every token."""
    from shardsmith.pipelines.spam import _TOKEN_SPLIT, is_url_token, url_token_counts

    docs = texts["en"] + texts["zh"] + ["see http://localhost/x and ftp://a www.b.example.com c.org d.invalidtld"]
    for text in docs:
        tokens = [t for t in _TOKEN_SPLIT.split(text) if t]
        assert url_token_counts(text) == (sum(map(is_url_token, tokens)), len(tokens))
    assert url_token_counts(docs[-1])[0] == 4
