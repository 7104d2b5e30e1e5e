"""Default chains on raw crawl (issue 9 §1): the normalize step, the categorised spam filter, link farms, and the
real-data guard (the new default chains drop at most 1 % more of each real sample than the old ones).

The spam pages below are written for these tests to the shape of pages found on CC-MAIN-2024-26 (adult-video
listing pages with a category bar, gambling pages served as HTML numeric entities, web directories of bare domains,
spam titles over an ordinary page, fake-document ads); they are not copies of real pages.
"""

from __future__ import annotations

import html
import pickle
import random

import pytest
from conftest import need_data
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.formatters.base import BaseFormatter
from pydantic import ValidationError

from shardsmith.pipelines.filter_chains import DEFAULT_CHAINS, build_filter_steps
from shardsmith.pipelines.filter_steps import ALLOWED_PARAMS
from shardsmith.pipelines.normalize import NormalizeFormatter
from shardsmith.pipelines.sources import iter_documents
from shardsmith.pipelines.spam import CATEGORIES, LexiconMatcher, SpamFilter, is_url_token, load_lexicon
from shardsmith.schemas.mix_recipe import SourceSpec


def src(name="s", language="en", filters="default", **kw) -> SourceSpec:
    return SourceSpec(name=name, kind="generic", paths=["unused"], weight=1.0, language=language, filters=filters, **kw)


def decide(steps, doc: Document):
    """(step name, reason, detail) of the first step that drops a copy of ``doc``, or None when kept."""
    doc = Document(text=doc.text, id=doc.id, metadata=dict(doc.metadata))
    for name, step in steps:
        if isinstance(step, BaseFormatter):
            doc.text = step.format(doc.text)
            continue
        result = step.filter(doc)
        if result is not True:
            return name, result[1] if isinstance(result, tuple) else None, doc.metadata.get("filter_detail")
    return None


def entities(text: str) -> str:
    """Non-ASCII characters as HTML numeric entities, as some crawled pages carry their Chinese text."""
    return "".join(c if c.isascii() else f"&#{ord(c)};" for c in text)


# ------------------------------------------------------------------------------------------------ spam pages -----

ZH_ADULT_TITLE = "日韩无码AV在线观看_国产自拍偷拍视频_免费成人影院"
ZH_ADULT_LISTING = f"""{ZH_ADULT_TITLE}
首页 国产自拍 日韩无码 欧美性爱 制服丝袜 巨乳美女 人妻熟女 中文字幕 三级伦理 成人动漫
本站每天更新最新的成人视频，所有影片均可免费在线观看，无需注册，手机和电脑都能流畅播放。
今日推荐：
国产自拍：身材火辣的少妇在家中自拍，完整版高清在线观看，时长二十八分钟。
日韩无码：最新作品，清纯女优首次出演，中文字幕版本已经上线。
欧美性爱：金发美女与男友的周末，画质清晰，支持手机在线播放。
制服丝袜：空姐制服诱惑系列第十二部，丝袜美腿控的福利，更新于昨天晚上。
人妻熟女：邻家人妻的秘密生活，剧情精彩，评分九点二分，播放超过十万次。
巨乳美女：性感模特的私人写真视频，高清无码，点击即可观看。
热门标签：偷拍自拍 激情视频 AV女优 成人电影 伦理片
温馨提示：本站内容仅供十八岁以上的成年人观看，未满十八岁请立即离开。请记住本站最新地址，收藏本站以免迷路。"""

ZH_GAMBLING_TITLE = "澳门新葡京娱乐城_真人百家乐_注册送38元彩金"
ZH_GAMBLING = f"""{ZH_GAMBLING_TITLE}
澳门新葡京官方网站欢迎您！本平台提供真人百家乐、时时彩、北京赛车、老虎机等上百种游戏，玩法多样，赔率最高。
新会员首存一百元即送一百元彩金，每日返水无上限，提款五分钟到账，支持银行卡、支付宝和微信充值。
立即注册，开启您的财富之旅。平台由国际博彩公司运营，资金安全有保障，信誉第一，二十四小时在线客服为您服务。
最新优惠：周末存款优惠活动火热进行中，邀请好友注册再送八十八元。"""

ZH_FAKE_DOCUMENTS = """全国办证刻章_代开发票_诚信服务
本公司专业代办各类证件，包括毕业证、学位证、身份证、驾驶证、资格证等，办理毕业证三天出证，可以上网查询。
同时提供刻章服务，公章、财务章、合同章当天取货。另外代开发票，代开增值税专用发票和普通发票，税点低，可以先验票后付款。
我们承诺：保密、快捷、安全，全国各地均可办理，质量保证，老客户介绍新客户还有优惠。
需要的朋友请联系微信或者拨打办证电话，二十四小时有人接听，欢迎来电咨询。"""

EN_FAKE_DOCUMENTS = """Buy Fake Diplomas, Fake IDs and Real Passports Online
We are a team of professionals who produce high quality documents for customers all over the world. You can buy a
diploma from any university, with a transcript that matches the degree. We also make scannable fake ID cards for all
states, with holograms and barcodes that pass every check. Our real passports are registered in the database, so you
can travel with them without any problem. Orders are shipped in discreet packaging within five working days, and we
offer a full refund if you are not satisfied. Contact our support team today and tell us which documents you need."""

ORDINARY_PAGE = """Growing tomatoes in a small garden is easier than many people think. Start with a sunny spot that gets at
least six hours of direct light each day, and prepare the soil with plenty of compost a few weeks before planting.
Young plants should go into the ground after the last frost, when the nights are warm enough for them to keep growing.
Water deeply once or twice a week rather than a little every day, because deep watering encourages the roots to grow
down into the cooler soil. A layer of straw or dry leaves around the stems keeps the moisture in and stops the lower
leaves from touching wet earth, which is how many fungal diseases begin. Tall varieties need a stake or a cage, and it
helps to tie the main stem loosely as it grows. Pinch out the small shoots that appear between the stem and the leaf
branches if you want larger fruit. Most gardeners start picking about two months after planting. Leave the fruit on
the plant until it is fully coloured and slightly soft, and it will taste far better than anything from a shop."""

EN_SPAM_TITLE = "Free Porn Videos - XXX Sex Tube - Hot MILF Cams"


def link_farm(seed: int = 7, domains: int = 240) -> str:
    """A web directory: a title, then lines of site names and bare domains."""
    rng = random.Random(seed)
    parts = "bj sh gz sz cd hz wh nj xa cq".split()
    words = "banjia zhuangxiu hunsha ershoufang lvyou jiazheng jiaoyu zufang qiche jiancai".split()
    tlds = "com cn net com.cn top xyz cc".split()
    names = "搬家公司电话 装修报价大全 婚纱摄影工作室 二手房出售信息 旅游攻略推荐 家政服务公司 教育培训机构".split()
    lines = ["2024最新网址大全_实用网站导航_好站推荐"]
    for i in range(0, domains, 6):
        row = []
        for _ in range(6):
            row += [rng.choice(names), f"{rng.choice(parts)}{rng.choice(words)[:4]}{rng.randint(1, 99)}.{rng.choice(tlds)}"]
        lines.append(" ".join(row))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- topical (keep) -----

EN_GAMBLING_NEWS = """Government confirms ban on gambling adverts during live sport
Ministers have confirmed that adverts for betting firms will be banned during live sports broadcasts from next year,
after a consultation that drew more than ten thousand responses from clubs, charities and the public.
The ban covers television and radio adverts shown before the evening watershed, and it extends to sponsorship
messages that promote online casino games or free spins offers. Campaigners said the rules were long overdue. One
charity said children were seeing hundreds of gambling adverts every season, and that sports betting had become part
of how young fans talk about football. The industry body said its members would comply, but argued that most
customers bet responsibly and that the ban could push players towards unlicensed sites. Figures published alongside
the decision show that the number of people seeking treatment for gambling problems rose by a fifth last year.
Doctors told the consultation that many patients had started with small stakes on their phones. The new rules will be
reviewed after two years. Clubs will still be allowed to carry sponsors' names on their shirts until the end of
existing contracts, although several clubs have already said they will not renew their deals. Opposition politicians
welcomed the decision but said it did not go far enough, and called for limits on stakes and on how quickly players
can make deposits. The minister said further measures would be considered once the effect of the ban was known."""

EN_PORN_ADDICTION = """Compulsive sexual behaviour: what doctors know about porn addiction
Many people who ask their doctor about porn addiction are worried that their habits have got out of control. Doctors
do not all agree on whether compulsive use of pornography should be called an addiction, but the international
classification of diseases now lists compulsive sexual behaviour disorder as a condition that can be diagnosed.
People with the condition describe spending many hours a day watching porn, failing repeatedly to cut down, and
carrying on despite problems at work or in their relationships. Some feel intense shame, which makes them less likely
to ask for help. Treatment usually starts with talking therapy. Cognitive behavioural therapy helps people notice the
situations and feelings that lead to the behaviour and plan different responses. Group programmes and couples therapy
can also help. In some cases doctors prescribe medicines that are normally used for depression, because low mood and
anxiety often come with the condition. Researchers say more studies are needed, since most of the evidence comes from
small groups of patients. Anyone who is worried about their use of porn can speak to their doctor in confidence."""

ZH_GAMBLING_NEWS = """警方破获一起特大跨境网络赌博案
记者从市公安局获悉，警方近日成功破获一起特大跨境网络赌博案，抓获犯罪嫌疑人三十二名，冻结涉案资金八千余万元。
据办案民警介绍，该团伙以境外网络赌场为依托，在国内发展代理，通过社交软件拉人进群，诱导群众参与百家乐、六合彩等赌博活动。
为了逃避打击，团伙成员频繁更换收款账户，并利用他人身份开设银行卡转移资金。今年三月，警方在工作中发现线索，随即成立专案组开展调查。
经过四个多月的侦查，专案组摸清了团伙的组织结构和资金流向，并于七月中旬在多地同时收网。目前，案件正在进一步审理中。
警方提醒广大市民，网络赌博没有赢家，所谓的高额回报都是诱饵，一旦陷入往往血本无归。如发现相关线索，请及时向公安机关举报。"""


# --------------------------------------------------------------------------------------------------- tests -----


@pytest.fixture(scope="module")
def chains():
    return {lang: build_filter_steps(src(name=f"web_{lang}", language=lang), None) for lang in ("en", "zh")}


def test_default_chains_start_with_normalize_and_carry_url_and_spam():
    for lang in ("en", "zh"):
        chain = DEFAULT_CHAINS[lang]
        assert chain[0] == "normalize"
        assert chain.index("normalize") < chain.index("language") < chain.index("url") < chain.index("spam")
    assert DEFAULT_CHAINS["zh"].index("opencc_t2s") < DEFAULT_CHAINS["zh"].index("language")


def test_normalize_unescapes_entities_and_fixes_mojibake():
    fmt = NormalizeFormatter()
    assert fmt.format("&#21313;&#22823;&#32593;站 a &amp; b &lt;3 <p>") == "十大网站 a & b <3 <p>"  # a `<` is present
    assert fmt.format("cafÃ© dÃ©jÃ  vu") == "café déjà vu"  # UTF-8 read as Latin-1
    assert fmt.format("ﬁnancial e\u0301t\u00e9") == "financial été"  # ligature, NFC
    assert fmt.format("line one\r\nline two\rthree") == "line one\nline two\nthree"
    assert fmt.format("\x1b[31mred\x1b[0m") == "red"
    kept = "全角标点，（一）：“引号”①㎡ and ‘curly’ quotes"  # NFKC / width fixes would rewrite these
    assert fmt.format(kept) == kept
    assert fmt.format("this&not that") == "this&not that"  # no `;`: not an entity
    with pytest.raises(ValueError, match="normalization"):
        NormalizeFormatter(normalization="NFX")
    with pytest.raises(ValueError, match="fix_line_breaks"):
        NormalizeFormatter(fix_line_breaks="yes")


def test_normalize_counts_changed_documents():
    fmt = NormalizeFormatter()
    docs = [Document(text="&#21313;&#22823;", id="1"), Document(text="plain", id="2")]
    out = list(fmt.run(iter(docs)))
    assert [d.text for d in out] == ["十大", "plain"]
    assert fmt.stats["changed"].total == 1 and fmt.stats["total"].total == 2


@pytest.mark.parametrize(
    "name, lang, text, metadata, reason",
    [
        ("zh_adult_listing", "zh", ZH_ADULT_LISTING, {"title": ZH_ADULT_TITLE}, "spam_adult"),
        ("zh_adult_listing_no_title", "zh", ZH_ADULT_LISTING, {}, "spam_adult"),
        ("zh_gambling_entities", "zh", entities(ZH_GAMBLING), {"url": "http://www.xpj8868.com/"}, "spam_gambling"),
        ("zh_fake_documents", "zh", ZH_FAKE_DOCUMENTS, {}, "spam_fake_documents"),
        ("zh_link_farm", "zh", link_farm(), {}, "spam_link_farm"),
        ("en_spam_title_metadata", "en", ORDINARY_PAGE, {"title": EN_SPAM_TITLE}, "spam_adult"),
        ("en_spam_title_first_line", "en", f"{EN_SPAM_TITLE}\n\n{ORDINARY_PAGE}", {}, "spam_adult"),
        ("en_fake_documents", "en", EN_FAKE_DOCUMENTS, {}, "spam_fake_documents"),
    ],
)
def test_default_chain_drops_spam_with_its_category(chains, name, lang, text, metadata, reason):
    verdict = decide(chains[lang], Document(text=text, id=name, metadata=dict(metadata)))
    assert verdict is not None and verdict[:2] == ("spam", reason), verdict


def test_entity_encoded_page_needed_normalize(chains):
    """Without the normalize step language ID sees ASCII entities: the old chain dropped the page as non-Chinese
    (for the wrong reason, and a Chinese page with entities would never reach the Chinese rules)."""
    doc = Document(text=entities(ZH_GAMBLING), id="g")
    no_normalize = [(n, s) for n, s in chains["zh"] if n != "normalize"]
    assert decide(no_normalize, doc)[0] == "language"


@pytest.mark.parametrize(
    "name, lang, text",
    [
        ("en_gambling_ban_news", "en", EN_GAMBLING_NEWS),
        ("en_porn_addiction_article", "en", EN_PORN_ADDICTION),
        ("zh_gambling_bust_news", "zh", ZH_GAMBLING_NEWS),
        ("en_ordinary_page", "en", ORDINARY_PAGE),
    ],
)
def test_topical_articles_are_kept(chains, name, lang, text):
    spam = dict(chains[lang])["spam"]
    hits = spam.category_hits(text, spam.title_of(Document(text=text, id=name)))
    if name != "en_ordinary_page":  # the guard is real: the article does contain the category's phrases
        assert max(len(h.distinct) for h in hits.values()) >= 1 and sum(h.occurrences for h in hits.values()) >= 2
    assert decide(chains[lang], Document(text=text, id=name)) is None


def test_spam_filter_rules_and_detail():
    f = SpamFilter()
    # a spam title over an ordinary page: the title rule
    doc = Document(text=ORDINARY_PAGE, id="t", metadata={"title": EN_SPAM_TITLE})
    assert f.filter(doc) == (False, "spam_adult")
    assert "in the title" in doc.metadata["filter_detail"] and "xxx" in doc.metadata["filter_detail"]
    # one phrase in a title (a headline) is not enough
    assert f.filter(Document(text=ORDINARY_PAGE, id="h", metadata={"title": "Porn addiction: what doctors say"}))
    # stuffing: one phrase repeated until it is a tenth of the page
    stuffed = "代开发票 " * 6 + "欢迎咨询，价格优惠，全国服务。" * 2
    assert f.filter(Document(text=stuffed, id="s")) == (False, "spam_fake_documents")
    # whole words for ASCII phrases, substrings for Chinese
    matcher = LexiconMatcher({"adult": ["porn", "xxx", "av女优"]})
    assert matcher.matches("pornography xxxx jav女优 PORN av女优") == [("adult", "porn"), ("adult", "av女优")]


def test_spam_filter_params_and_errors():
    f = SpamFilter(categories=["gambling"], thresholds={"gambling": {"min_distinct": 99, "title_min_distinct": 9, "stuffing_ratio": 1.0}})
    assert f.filter(Document(text=ZH_GAMBLING, id="g")) is True
    assert f.filter(Document(text=ZH_ADULT_LISTING, id="a")) is True  # adult not selected
    assert f.filter(Document(text=link_farm(), id="l")) is True  # link_farm not selected
    extra = SpamFilter(extra_phrases={"grey_market": ["widget hack", "widget cheat", "widget bot"]})
    page = "Get the widget hack, the widget cheat and the widget bot here. " * 3
    assert extra.filter(Document(text=page, id="x")) == (False, "spam_grey_market")
    with pytest.raises(ValueError, match="unknown category 'porn'"):
        SpamFilter(categories=["porn"])
    with pytest.raises(ValueError, match=r"thresholds.adult.*unknown key 'max_hits'"):
        SpamFilter(thresholds={"adult": {"max_hits": 2}})
    with pytest.raises(ValueError, match=r"thresholds.adult.*min_ratio"):
        SpamFilter(thresholds={"adult": {"min_ratio": 3}})
    with pytest.raises(ValueError, match="`thresholds` must be a mapping"):
        SpamFilter(thresholds=["adult"])
    with pytest.raises(ValueError, match="`categories` must be a list"):
        SpamFilter(categories="adult")
    with pytest.raises(ValueError, match="`extra_phrases.adult` must be a list"):
        SpamFilter(extra_phrases={"adult": "porn"})
    with pytest.raises(ValueError, match="link_farm_min_share"):
        SpamFilter(link_farm_min_share=0)
    with pytest.raises(FileNotFoundError, match="adult.txt"):
        SpamFilter(lexicon_dir="/nonexistent")
    restored = pickle.loads(pickle.dumps(SpamFilter()))
    assert restored.filter(Document(text=ZH_ADULT_LISTING, id="p")) == (False, "spam_adult")


def test_recipe_params_reach_the_steps():
    spec = src(
        filters=[
            {"step": "normalize", "uncurl_quotes": True},
            {"step": "spam", "categories": ["adult"], "thresholds": {"adult": {"min_distinct": 2}}},
        ]
    )
    (_, normalize), (_, spam) = build_filter_steps(spec, None)
    assert normalize.format("“quoted”") == '"quoted"'
    assert list(spam.rules) == ["adult"] and spam.rules["adult"].min_distinct == 2 and not spam.link_farm
    assert {"unescape_html", "normalization", "fix_latin_ligatures"} <= ALLOWED_PARAMS["normalize"]
    assert {"categories", "thresholds", "extra_phrases", "lexicon_dir"} <= ALLOWED_PARAMS["spam"]
    with pytest.raises(ValueError, match=r"source 's', filter step 'spam': unknown param 'max_hits'"):
        build_filter_steps(src(filters=[{"step": "spam", "max_hits": 3}]), None)
    with pytest.raises(ValueError, match=r"filter step 'spam': `categories`: unknown category 'casino'"):
        build_filter_steps(src(filters=[{"step": "spam", "categories": ["casino"]}]), None)
    with pytest.raises(ValidationError):
        src(filters=["spamm"])


def test_lexicons_are_clean():
    lexicon = load_lexicon()
    assert set(lexicon) == set(CATEGORIES) and all(len(p) >= 25 for p in lexicon.values())
    for category, phrases in lexicon.items():
        assert len(phrases) == len(set(phrases)), category
        others = {p for c, ps in lexicon.items() if c != category for p in ps}
        assert not set(phrases) & others, (category, set(phrases) & others)
    # topic words a news story uses are deliberately absent; substrings of everyday words too
    every = {p for ps in lexicon.values() for p in ps}
    assert not every & {"gambling", "赌博", "色情", "下注", "快三", "pornography", "casino", "av"}


def test_url_tokens():
    assert all(map(is_url_token, ["example.com", "www.a.b", "https://x.org/p?q=1", "sh-banjia12.com.cn", "(foo.xyz)"]))
    assert not any(map(is_url_token, ["e.g.", "Mr.Smith", "3.14", "file.exe", "v1.2.3", "end."]))


def test_default_chain_through_executor_writes_categorised_reasons(tmp_path):
    """A real datatrove run: stats count ``dropped_spam_<category>`` and the rejected records name it."""
    from shardsmith.pipelines.rejected import RejectedJsonlWriter  # noqa: F401  (the writers build_filter_steps uses)

    docs = [
        Document(text=ZH_ADULT_LISTING, id="adult"),
        Document(text=entities(ZH_GAMBLING), id="gambling"),
        Document(text=ZH_GAMBLING_NEWS, id="news"),
    ]
    steps = [s for _, s in build_filter_steps(src(name="web_zh", language="zh"), str(tmp_path / "rejected"))]
    executor = LocalPipelineExecutor(
        pipeline=[docs, *steps], tasks=1, workers=1, logging_dir=str(tmp_path / "logs"), skip_completed=False
    )
    stats = executor.run()
    spam_stats = next(s for s in stats.stats if SpamFilter.name in s.name).stats
    assert spam_stats["dropped_spam_adult"].total == 1 and spam_stats["dropped_spam_gambling"].total == 1
    import gzip
    import json

    rows = [json.loads(line) for f in (tmp_path / "rejected" / "web_zh" / "spam").glob("*.jsonl.gz")
            for line in gzip.open(f, "rt")]
    assert sorted(r["id"] for r in rows) == ["adult", "gambling"]
    assert all(r["reason"].startswith(("spam_adult: adult:", "spam_gambling: gambling:")) for r in rows)
    assert "新葡京" in next(r["text"] for r in rows if r["id"] == "gambling")  # written after normalize


# ---------------------------------------------------------------------------------------- real-data guard -----

REAL_SOURCES = {  # name: (kind, language, dataset folder, glob, documents read)
    "skypile": ("skypile", "zh", "zh_skypile_sample", "*.jsonl", 150),
    "wanjuan": ("wanjuan", "zh", "zh_wanjuan1_text_sample", "*.jsonl", 150),
    "c4": ("c4", "en", "web_c4_demo_llamafactory", "c4_demo.jsonl", 150),
    "dclm": ("dclm", "en", "web_dclm_quality_annotations", "majority_data.jsonl", 150),
    "dolma_cc": ("dolma", "en", "web_dolma_cc_en_head", "cc_en_head-*.jsonl", 100),
    "news_bbc": ("news_folder", "en", "news_bbc_fulltext", "", 100),
    "fineweb_edu": ("fineweb", "en", "web_fineweb_edu_text_llm_scored", "training_data.csv", 100),
}  # the first N documents of each (every document of all seven: scripts in the README's measurement)
NORMALIZE = NormalizeFormatter()
# the default chains before issue 9 §1, as explicit lists
OLD_CHAINS = {
    "en": ["language", "url", "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality"],
    "zh": [
        "opencc_t2s", "language", "cjk_ratio", "min_chars", "symbol_ratio", "spam_phrases",
        "gopher_repetition", "gopher_quality", "fineweb_quality",
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def real_decisions():
    """Per real source: [(doc, old verdict, new verdict)], read with the sources.py readers."""
    root = need_data(*(folder for _, _, folder, _, _ in REAL_SOURCES.values()))
    out = {}
    for name, (kind, lang, folder, pattern, limit) in REAL_SOURCES.items():
        path = str(root / folder / pattern) if pattern else str(root / folder)
        spec = SourceSpec(name=name, kind=kind, paths=[path], weight=1.0, language=lang)
        old = build_filter_steps(spec.model_copy(update={"filters": OLD_CHAINS[lang]}), None)
        new = build_filter_steps(spec.model_copy(update={"filters": list(DEFAULT_CHAINS[lang])}), None)
        docs = list(iter_documents(spec, limit=limit))
        out[name] = [(doc, decide(old, doc), decide(new, doc)) for doc in docs]
    return out


@pytest.mark.realdata
def test_new_default_chains_cost_at_most_one_percent_more_real_documents(real_decisions):
    report = []
    for name, rows in real_decisions.items():
        extra = [(doc, new) for doc, old, new in rows if new is not None and old is None]
        regained = sum(1 for _, old, new in rows if old is not None and new is None)
        normalized = sum(1 for doc, _, _ in rows if NORMALIZE.format(doc.text) != doc.text)
        report.append(
            f"{name}: {len(rows)} docs, {len(extra)} extra drops, {regained} no longer dropped, "
            f"{normalized} changed by normalize"
        )
        for doc, (step, reason, detail) in extra:
            report.append(f"  {doc.id} {reason} [{detail}] {doc.text[:120]!r}")
        assert len(rows) >= 20, name
        assert len(extra) <= 0.01 * len(rows), (name, [(d.id, v) for d, v in extra])
    print("\nextra drops of the new default chains:\n" + "\n".join(report))
