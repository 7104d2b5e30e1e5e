"""Mix source ``kind: block`` (issue 10 §6): a built block's documents go into a mix as text.

The demo SFT block is built once (``recipes/blocks/demo.yaml`` over ``shardsmith/demo/sft_sample.py``'s sample, t1b template,
GPT-2 + the t1b markers); the reader must give back each conversation exactly as the template renders it, a mix
must weigh it like any source and name it in its manifest, a bad folder fails in one line naming the field and the
path, and ``recipe:`` builds the block inside the mix, then reads it.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from shardsmith.builders.build import build
from shardsmith.demo.sft_sample import CHAT, EN, ZH, write_demo_sample
from shardsmith.builders.templates import BUILTIN, render
from shardsmith.pipelines.block_source import block_input_files
from shardsmith.pipelines.filter_chains import build_filter_steps
from shardsmith.pipelines.shards import split_files
from shardsmith.pipelines.sources import SourceError, iter_documents
from shardsmith.recipes import RecipeError, load_recipe
from shardsmith.schemas.manifest import ShardManifest
from shardsmith.schemas.mix_recipe import MixRecipe, SourceSpec
from shardsmith.schemas.records import Conversation, Message

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trainer_fixtures as F  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEMO_BLOCK = REPO / "recipes" / "blocks" / "demo.yaml"
T1B_MARKERS = ("<|user|>", "<|assistant|>", "<|end|>")
MIX_TOKENIZER = {"name": "gpt2", "add_special_tokens": list(T1B_MARKERS)}  # the block's own tokenizer


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo_data")
    write_demo_sample(folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SFT_DEMO_DATA", str(folder))
        yield folder


@pytest.fixture(scope="module")
def block(demo_data, tmp_path_factory) -> Path:
    return Path(build(str(DEMO_BLOCK), str(tmp_path_factory.mktemp("blocks") / "sft-demo")))


def spec(name: str = "sft", **fields) -> SourceSpec:
    return SourceSpec.model_validate({"name": name, "kind": "block", "weight": 1, **fields})


def read(block: Path, **fields) -> list:
    return list(iter_documents(spec(paths=[str(block)], **fields)))


def conversation(turns, i: int) -> Conversation:
    roles = {"human": "user", "gpt": "assistant"}
    messages = [Message(role=roles.get(r, r), content=c) for r, c in turns]
    return Conversation(messages=messages, source="demo", id=str(i))


def demo_renderings() -> list[str]:
    """The t1b rendering of demo conversations the block keeps (the builder's own renderer is the reference)."""
    convs = [[("user", q), ("assistant", a)] for q, a in ZH + EN] + CHAT[:2]
    return [render(conversation(c, i), BUILTIN["t1b"], "<|endoftext|>").doc_text for i, c in enumerate(convs)]


def mix(folder: Path, sources: list[dict], **fields) -> ShardManifest:
    from shardsmith.pipelines.mixer import build_mix

    recipe = {"name": "m", "seed": 3, "tokenizer": MIX_TOKENIZER, "validation_fraction": 0.1, "write_text": "parquet",
              "sources": sources, **fields}
    path = folder / "recipe.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True))
    build_mix(load_recipe(MixRecipe, str(path)), folder / "out", progress=False, keep_work=True)
    return ShardManifest.load(folder / "out")


def exported(out: Path, source: str) -> list[dict]:
    import pyarrow.parquet as pq

    return [r for f in sorted((out / "text" / source).glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_block_text_is_the_rendered_conversation(block):
    manifest = ShardManifest.load(block)
    docs = read(block, split="train+validation")
    texts = [d.text for d in docs]
    assert len(docs) == manifest.splits["train"].documents + manifest.splits["validation"].documents == 31
    assert ("<|user|>\n什么是机器学习？\n<|end|>\n<|assistant|>\n"
            "机器学习是人工智能的一个分支，它让计算机从数据中学习规律，而不是依靠人工编写的规则。\n<|end|>") in texts
    assert set(demo_renderings()) <= set(texts)
    assert docs[0].id == "sft-demo/train/0" and docs[-1].id == "sft-demo/validation/2"
    assert docs[0].metadata | {"file_path": None} == {
        "block": "sft-demo", "block_kind": "sft", "block_split": "train", "block_index": 0, "source": "sft",
        "kind": "block", "file_path": None}
    # lossless: the decoded text re-encodes with the block's tokenizer to the very ids on disk (EOS appended)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(block / "tokenizer" / "tokenizer.json"))
    on_disk = [ids.tolist() for s in ("train", "validation")
               for f in split_files(block, s, manifest.token_size) for ids, _ in f.documents()]
    assert [tok.encode(t, add_special_tokens=False).ids + [manifest.tokenizer.eos_id] for t in texts] == on_disk
    # the other two text modes
    assert [d.text for d in read(block, split="train+validation", block_text="template_eos")] == [
        t + "<|endoftext|>" for t in texts]
    plain = [d.text for d in read(block, split="train+validation", block_text="plain")]
    stripped = texts
    for marker in T1B_MARKERS:
        stripped = [t.replace(marker, "") for t in stripped]
    assert plain == stripped and "\n什么是机器学习？\n\n\n机器学习是" in "".join(plain)
    # split choice: train (default) or validation alone
    assert [d.id for d in read(block)] == [d.id for d in docs[:28]]
    assert [d.text for d in read(block, split="validation")] == texts[28:]
    # filters: none unless the recipe asks (a block's conversations passed the block's own filters)
    assert build_filter_steps(spec(paths=[str(block)]), None) == []
    explicit = spec(paths=[str(block)], filters=[{"step": "length", "min_chars": 20}])
    assert [n for n, _ in build_filter_steps(explicit, None)] == ["length"]


def test_preference_block_gives_its_chosen_answers_only(tmp_path):
    rows = [{"prompt": f"What is {a} plus {b}?", "chosen": f"{a} plus {b} is {a + b}.", "rejected": "I don't know."}
            for a, b in [(2, 3), (10, 7), (4, 4)]]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({
        "kind": "preference", "name": "pref", "tokenizer": {"name": "gpt2"}, "template": "chatml",
        "validation": {"fraction": 0.0}, "sources": [{"name": "p", "paths": [str(tmp_path / "p.jsonl")]}]}))
    out = Path(build(str(tmp_path / "r.yaml"), str(tmp_path / "pref")))
    docs = read(out)
    assert ShardManifest.load(out).splits["train"].documents == 6
    assert [d.id for d in docs] == ["pref/train/0", "pref/train/2", "pref/train/4"]
    assert sorted(d.text for d in docs) == sorted(
        f"<|im_start|>user\n{r['prompt']}<|im_end|>\n<|im_start|>assistant\n{r['chosen']}<|im_end|>" for r in rows)


@pytest.fixture(scope="module")
def weighted_mix(block, demo_data, tmp_path_factory):
    """The demo block twice: as a built folder (weight 0.25) and as its recipe, built by the mix (0.25), beside
    prose (0.5); tokenized with the block's own tokenizer. One build serves both input forms (a mix costs ~10 s)."""
    root = tmp_path_factory.mktemp("mix")
    prose = root / "prose.jsonl"
    prose.write_text("".join(json.dumps({"id": f"p{i}", "text": t}) + "\n" for i, t in enumerate(F.documents(120, 1))))
    manifest = mix(root, [
        {"name": "sft", "kind": "block", "paths": [str(block)], "weight": 0.25},
        {"name": "sft_recipe", "kind": "block", "recipe": str(DEMO_BLOCK), "weight": 0.25},
        {"name": "prose", "kind": "generic", "paths": [str(prose)], "weight": 0.5,
         "filters": [{"step": "length", "min_chars": 40}]},
    ])
    return root / "out", manifest


def test_mix_weighs_the_block_and_names_it(block, weighted_mix):
    out, manifest = weighted_mix
    info = {s.name: s for s in manifest.sources}["sft"]
    assert info.filter_chain == "none" and info.kind == "block"
    assert info.block == {"recipe": None, "split": "train", "text": "template", "blocks": [{
        "path": str(block), "name": "sft-demo", "kind": "sft", "created_at": ShardManifest.load(block).created_at,
        "tokenizer": "gpt2", "documents": {"train": 28}}]}
    assert abs(info.share_realized - 0.25) < 0.02 and info.documents == info.documents_available == 28
    assert manifest.filters["sft"][0].read == 28  # the block's train split only
    # every block document sits in the mix's shards token for token as the block holds it (same tokenizer)
    block_docs = {tuple(ids.tolist()) for f in split_files(block, "train", 2) for ids, _ in f.documents()}
    user = ShardManifest.load(block).tokenizer.special_tokens["<|user|>"]
    in_mix = [tuple(ids.tolist()) for s in ("train", "validation")
              for f in split_files(out, s, manifest.token_size) for ids, _ in f.documents() if ids[0] == user]
    assert len(in_mix) == 2 * info.documents and set(in_mix) == block_docs
    rows = exported(out, "sft")
    assert sorted(r["id"] for r in rows) == sorted(f"sft-demo/train/{i}" for i in range(28))
    assert json.loads(rows[0]["metadata"])["block"] == "sft-demo"


def test_block_recipe_is_built_in_the_work_folder_then_read(block, weighted_mix):
    out, manifest = weighted_mix
    built = out / ".work" / "blocks" / "sft_recipe"
    info = {s.name: s for s in manifest.sources}["sft_recipe"]
    assert info.paths == [str(DEMO_BLOCK)] and info.block["recipe"] == str(DEMO_BLOCK)
    assert [(b["path"], b["name"], b["kind"]) for b in info.block["blocks"]] == [(str(built), "sft-demo", "sft")]
    assert (built / "manifest.json").is_file() and abs(info.share_realized - 0.25) < 0.02
    # the same recipe and seed build the same block: the mix holds the pre-built block's train text, every document
    texts = sorted(r["text"] for r in exported(out, "sft_recipe"))
    assert texts == sorted(d.text for d in read(block)) and info.documents == 28


def one_line_error(source: dict, field: str, path) -> str:
    with pytest.raises(SourceError) as err:
        block_input_files(spec(**source))
    message = str(err.value)
    assert "\n" not in message and f"field '{field}'" in message and str(path) in message, message
    return message


def test_bad_block_inputs_fail_in_one_line_naming_field_and_path(block, weighted_mix, tmp_path):
    assert "does not exist" in one_line_error({"paths": [str(tmp_path / "nope")]}, "paths", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    assert "no manifest.json" in one_line_error({"paths": [str(tmp_path / "empty")]}, "paths", tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("{not json")
    assert "invalid manifest" in one_line_error({"paths": [str(tmp_path / "bad")]}, "paths", tmp_path / "bad")
    out, _ = weighted_mix
    assert "is a mix, not a block" in one_line_error({"paths": [str(out)]}, "paths", out)
    copy = tmp_path / "copy"
    shutil.copytree(block, copy)
    for f in (copy / "validation").glob("*.ds"):
        f.unlink()
    assert "validation file" in one_line_error({"paths": [str(copy)], "split": "validation"}, "paths", copy)
    assert "two blocks are named 'sft-demo'" in one_line_error({"paths": [str(block), str(copy)]}, "paths", "")
    assert "does not exist" in one_line_error({"recipe": str(tmp_path / "r.yaml")}, "recipe", tmp_path / "r.yaml")
    # through the mix: the source named once, before any work; a block recipe that cannot build names itself
    from shardsmith.pipelines.mixer import MixError, build_mix

    (tmp_path / "r.yaml").write_text(
        "kind: sft\nname: x\ntokenizer: {name: gpt2}\nsources: [{name: a, paths: [no.jsonl]}]\n")
    for source, field in [({"paths": [str(tmp_path / "nope")]}, "paths"),
                          ({"recipe": str(tmp_path / "r.yaml")}, "recipe")]:
        recipe = MixRecipe.model_validate({"sources": [{"name": "s", "kind": "block", "weight": 1, **source}]})
        with pytest.raises((MixError, SourceError)) as err:
            build_mix(recipe, tmp_path / f"out-{field}", progress=False)
        assert str(err.value).startswith(f"source 's': field '{field}': ") and "\n" not in str(err.value), err.value
    assert "cannot build the block: no.jsonl" in str(err.value)
    # recipe-level mistakes name the file and the source
    for source, says in [({"paths": [str(block)], "recipe": "r.yaml"}, "not both"), ({}, "not neither"),
                         ({"paths": [str(block)], "split": "test"}, "`split` must be one of"),
                         ({"kind": "generic", "paths": ["x.jsonl"], "recipe": "r.yaml"}, "applies to kind 'block'"),
                         ({"paths": [str(block)], "block_text": "raw"}, "block_text")]:
        (tmp_path / "m.yaml").write_text(yaml.safe_dump({"sources": [
            {"name": "s", "kind": "block", "weight": 1, **source}]}))
        with pytest.raises(RecipeError, match=rf"(?s)m\.yaml.*sources\.0.*{says}"):
            load_recipe(MixRecipe, tmp_path / "m.yaml")
