"""Forked children (builders/forked.py) and the language ID that runs in them: the same results as in one process,
errors named in the parent, no child left behind."""

from __future__ import annotations

import json
import os

import pytest
from conftest import need_data

from shardsmith.builders.block import Item, SourceBooks
from shardsmith.builders.filters import detect_language
from shardsmith.builders.forked import Forked, ForkedMap, forked_map
from shardsmith.builders.kinds import LanguageLabels, _labels
from shardsmith.schemas.block_recipe import Filters
from shardsmith.schemas.records import Conversation, Message


def _fail(x):
    raise ValueError(f"bad {x}")


def _no_child_left(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_forked_result_error_and_close():
    child = Forked(os.getpid)
    pid = child._pid
    assert child.result() == pid != os.getpid()  # computed in the child
    assert _no_child_left(pid)
    with pytest.raises(RuntimeError, match="forked _fail: ValueError: bad 3"):
        Forked(_fail, 3).result()
    unread = Forked(lambda: list(range(200_000)))  # a result larger than a pipe holds, never read
    pid = unread._pid
    unread.close()
    assert _no_child_left(pid)


def test_without_fork_the_call_runs_here(monkeypatch):
    monkeypatch.setenv("SHARDSMITH_NO_FORK", "1")
    assert Forked(os.getpid).result() == os.getpid()
    assert forked_map(lambda xs: [os.getpid() for _ in xs], list(range(10)), 3) == [os.getpid()] * 10


@pytest.mark.parametrize("n,parts", [(0, 2), (1, 2), (7, 3), (100, 2), (5, 1)])
@pytest.mark.parametrize("weight", [None, lambda x: x % 7, lambda x: 0])
def test_forked_map_keeps_order(n, parts, weight):
    items = list(range(n))
    assert forked_map(lambda xs: [x * x for x in xs], items, parts, weight) == [x * x for x in items]


@pytest.mark.parametrize("n,parts", [(1, 2), (7, 3), (100, 2), (5, 1)])
def test_forked_map_started_now_keeps_order_and_closes(n, parts):
    items = list(range(n))
    started = ForkedMap(lambda xs: [(x * x, os.getpid()) for x in xs], items, parts)
    pids = [child._pid for child in started._children]
    out = started.result()
    assert [y for y, _ in out] == [x * x for x in items] and os.getpid() not in {pid for _, pid in out}
    assert len(pids) == min(parts, n) and all(_no_child_left(pid) for pid in pids)
    unread = ForkedMap(lambda xs: list(range(200_000)), items, parts)
    pids = [child._pid for child in unread._children]
    unread.close()
    assert all(_no_child_left(pid) for pid in pids)


def _nested(xs):
    return ForkedMap(lambda ys: [y + 1 for y in ys], xs, 2).result()


def test_a_child_starts_children_of_its_own_while_its_parent_holds_others():
    """A child closes its copies of the other children's pipes and forgets them: its own children then open pipes
    under those numbers without losing them."""
    held = Forked(lambda: list(range(100_000)))  # a result never read: its pipe stays open in this process
    assert Forked(_nested, list(range(10))).result() == list(range(1, 11))
    held.close()


def test_slices_cost_about_the_same():
    from shardsmith.builders.forked import _even_bounds

    assert _even_bounds([1] * 10, 2) == [0, 5, 10]
    assert _even_bounds([100, 1, 1, 1], 2) == [0, 1, 4]  # the heavy item alone
    assert _even_bounds([1, 1, 1, 1, 100], 2) == [0, 5, 5]  # cannot be split: all in one slice
    costs = [len(t) for t in ("a" * 50, "b" * 10, "c" * 40, "d" * 100)]
    b = _even_bounds(costs, 2)
    assert b == [0, 3, 4] and sum(costs[: b[1]]) == 100 == sum(costs[b[1]:])


def _real_texts() -> list[str]:
    root = need_data("sft_alpaca_zh_demo")
    need_data("sft_alpaca_en_demo")
    rows = []
    for rel in ("sft_alpaca_zh_demo/alpaca_zh_demo.json", "sft_alpaca_en_demo/alpaca_en_demo.json"):
        rows += json.loads((root / rel).read_text(encoding="utf-8"))
    return [r["instruction"] + "\n" + r["output"] for r in rows] + ["", "   ", "12345"]


def test_language_id_split_over_processes_equals_one_process():
    texts = _real_texts()
    one = detect_language(texts, parts=1)
    assert detect_language(texts, parts=2) == one
    assert detect_language(texts, parts=3) == one
    assert {lang for lang, _ in one} >= {"zh", "en"}


def test_language_filter_started_at_import_equals_judging_at_its_step():
    """``LanguageStep.start`` (fastText in children while the build loads its tokenizer) gives the step the
    predictions it would compute itself; a turn changed after the start is predicted at the step."""
    from shardsmith.builders.block_steps import LanguageStep
    from shardsmith.builders.filters import LanguageJudge
    from shardsmith.schemas.block_recipe import LanguageFilter, SftSource

    texts = _real_texts()[:300]
    items = {"s": [Item(Conversation(messages=[Message(role="user", content=t), Message(role="assistant", content=t)],
                                     source="s", id=str(i))) for i, t in enumerate(texts)]}
    src = SftSource(name="s", paths=["unused.json"])
    books = {"s": SourceBooks.for_source("s", src, Filters(language=LanguageFilter(keep=["zh"])), False)}
    step = LanguageStep()
    step.start(items, books)
    assert step._started is not None
    items["s"] = items["s"][50:]  # a step between the start and this one dropped some
    changed = Conversation(messages=[Message(role="user", content="A new question, in English this time."),
                                     Message(role="assistant", content="这是一个中文的回答。")], source="s", id="new")
    items["s"][0] = Item(changed)
    step.prepare(items, books)
    step.run(items["s"], books["s"])  # the changed turns are predicted as the source is judged
    turns = list(dict.fromkeys(LanguageJudge(books["s"].language).turn_texts([it.conv for it in items["s"]])[0]))
    assert "这是一个中文的回答。" in turns and len(turns) == 249 + 2  # user and assistant turns are the same text
    assert [step._predicted[t] for t in turns] == detect_language(turns, parts=1)
    assert step._started is None


def test_manifest_labels_from_the_child_and_for_texts_changed_after_import():
    """Labels started at import (in a child) equal labels computed in this process; a conversation whose text
    changed after import (a teacher's answer) is labelled from its new text."""
    texts = _real_texts()[:300]
    convs = [Conversation(messages=[Message(role="user", content="Q"), Message(role="assistant", content=t)],
                          source="s", id=str(i)) for i, t in enumerate(texts)]
    items = {"s": [Item(c) for c in convs]}
    labels = LanguageLabels()
    labels.add(items["s"], SourceBooks.for_source("s", None, Filters(), False))
    labels.flush()
    assert len(labels._children) == 1
    changed = items["s"][0]
    changed.conv = changed.conv.model_copy(update={"messages": [Message(role="user", content="Q"),
                                                                Message(role="assistant", content="这是一个中文的回答。")]})
    labels.apply(items)
    labels.close()
    want = _labels([it.conv.text("user", "assistant", sep=" ") for it in items["s"]], parts=1)
    assert [it.conv.lang for it in items["s"]] == want
    assert want[0] == "zh"


def test_a_build_split_over_processes_equals_one_built_in_one_process(tmp_path, monkeypatch):
    """Language filter, exact dedup and manifest labels spread over forked children (every batch split, whatever
    its size) write what one process writes: same shards, same manifest counts and languages, same rejects."""
    import gzip

    from test_builders_helpers import build_recipe, load_manifest, write_jsonl

    from shardsmith.builders import block_steps, filters

    root = need_data("sft_alpaca_zh_demo", "sft_alpaca_en_demo")
    zh = json.loads((root / "sft_alpaca_zh_demo/alpaca_zh_demo.json").read_text(encoding="utf-8"))[:150]
    en = json.loads((root / "sft_alpaca_en_demo/alpaca_en_demo.json").read_text(encoding="utf-8"))[:150]
    rows = zh + en + zh[:20] + [{**r, "output": r["output"].upper()} for r in en[:20]]  # exact duplicates
    recipe = {"kind": "sft", "name": "split", "seed": 3, "tokenizer": {"name": "gpt2"}, "template": "t1b",
              "validation": {"fraction": 0.1}, "filters": {"dedup": {"exact": True, "near": False}},
              "sources": [{"name": "filtered", "paths": [str(write_jsonl(tmp_path / "a.jsonl", rows))],
                           "filters": {"language": {"keep": ["zh"]}}},
                          {"name": "labelled", "paths": [str(write_jsonl(tmp_path / "b.jsonl", rows[::-1]))]}]}
    monkeypatch.setattr(filters, "CHARS_PER_PART", 1)
    monkeypatch.setattr(block_steps.DedupStep, "CHARS_PER_PART", 1)
    (tmp_path / "split").mkdir()
    (tmp_path / "one").mkdir()
    split = build_recipe(tmp_path / "split", recipe)
    monkeypatch.setenv("SHARDSMITH_NO_FORK", "1")
    one = build_recipe(tmp_path / "one", recipe)
    a, b = load_manifest(split), load_manifest(one)
    for key in ("counts", "languages", "language_report", "splits"):
        assert a[key] == b[key], key
    assert a["counts"]["filtered"]["dropped"]["language:en"] > 100 and a["counts"]["labelled"]["dropped"]["duplicate"]
    assert set(a["languages"]) >= {"zh", "en"}
    files = sorted(p.relative_to(split) for p in split.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert files == sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert any(f.suffix == ".ds" for f in files)
    for f in files:
        read = (lambda p: gzip.decompress(p.read_bytes())) if f.suffix == ".gz" else (lambda p: p.read_bytes())
        assert read(split / f) == read(one / f), f
