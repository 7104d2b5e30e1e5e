"""`shardsmith inspect`: what is in a shard set — manifest table, decoded sample documents, a chart of the mix."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from shardsmith.pipelines.shards import split_files
from shardsmith.schemas.manifest import ShardManifest


def summary_table(shard_dir: str | os.PathLike) -> str:
    m = ShardManifest.load(shard_dir)
    lines = [
        f"{m.kind} '{m.name}'  shardsmith {m.version}  seed {m.seed}  created {m.created_at}",
        f"tokenizer {m.tokenizer.name}  vocab {m.tokenizer.vocab_size}  {m.dtype}  sha256 {m.tokenizer.sha256[:12]}…"
        f"  eos {m.tokenizer.eos_token!r}",
    ]
    for split, info in m.splits.items():
        extra = f"  loss tokens {info.loss_tokens:,}" if info.loss_tokens is not None else ""
        lines.append(f"{split:<11} {info.documents:>9,} docs {info.tokens:>12,} tokens in {len(info.files)} files{extra}")
    if m.pair_layout:
        lines.append(f"pairs: {m.pairs}  layout {m.pair_layout}")
    if m.sources:
        lines.append("")
        lines.append(f"{'source':<22}{'asked':>8}{'realized':>10}{'docs':>9}{'tokens':>12}{'epochs':>8}{'kept/read':>16}")
        for s in m.sources:
            steps = m.filters.get(s.name, [])
            kept_read = f"{steps[-1].kept:,}/{steps[0].read:,}" if steps else "-"
            lines.append(
                f"{s.name:<22}{s.share_requested:>8.1%}{s.share_realized:>10.2%}{s.documents:>9,}"
                f"{s.tokens:>12,}{s.epochs:>8.2f}{kept_read:>16}"
            )
    if m.filters:
        lines.append("")
        lines.append("filter steps (read -> kept, top drop reasons):")
        for source, steps in m.filters.items():
            for st in steps[1:]:
                top = ", ".join(f"{r} {n}" for r, n in sorted(st.reasons.items(), key=lambda x: -x[1])[:3])
                lines.append(f"  {source:<20} {st.step:<18} {st.read:>8,} -> {st.kept:>8,}  {top}")
    return "\n".join(lines)


def sample_documents(shard_dir: str | os.PathLike, n: int, split: str = "train", seed: int = 0):
    """n random documents as (file, index, tokens, loss) without reading whole files; in a preference set, n random
    pairs as their two documents (chosen, then rejected)."""
    m = ShardManifest.load(shard_dir)
    files = split_files(shard_dir, split, m.token_size)
    counts = np.array([len(f.doc_ends) for f in files])
    total = int(counts.sum())
    if total == 0:
        return []
    rng = np.random.default_rng(seed)
    if m.pair_layout:
        pairs = rng.choice(total // 2, size=min(n, total // 2), replace=False)
        picks = [d for p in sorted(int(x) for x in pairs) for d in (2 * p, 2 * p + 1)]
    else:
        picks = sorted(int(x) for x in rng.choice(total, size=min(n, total), replace=False))
    offsets = np.cumsum(counts) - counts
    out = []
    for p in picks:
        fi = int(np.searchsorted(offsets, p, side="right") - 1)
        f, di = files[fi], p - int(offsets[fi])
        ends = f.doc_ends
        start = int(ends[di - 1]) if di else 0
        end = int(ends[di])
        loss = f.loss
        out.append((f.path.name, di, np.asarray(f.tokens[start:end]), None if loss is None else np.asarray(loss[start:end])))
    return out


def chart_mix(shard_dir: str | os.PathLike, png: str | os.PathLike) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = ShardManifest.load(shard_dir)
    names = [s.name for s in m.sources]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(names) + 2), 4))
    ax.bar(x - 0.2, [100 * s.share_requested for s in m.sources], 0.4, label="requested")
    ax.bar(x + 0.2, [100 * s.share_realized for s in m.sources], 0.4, label="realized")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("% of tokens")
    ax.set_title(f"{m.name}: {sum(s.tokens for s in m.sources):,} tokens")
    ax.legend()
    fig.tight_layout()
    png = Path(png)
    tmp = png.with_name(f".{png.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, png)
    return png


def loss_segments(tokens: np.ndarray, loss: np.ndarray) -> list[tuple[bool, np.ndarray]]:
    """The document cut where the loss mask changes: (carries loss?, tokens) runs in order — prompt pieces (no loss)
    and answer pieces (loss) of a block, turn by turn."""
    if len(tokens) == 0:
        return []
    cuts = np.flatnonzero(np.diff(loss.astype(np.int8))) + 1
    bounds = [0, *cuts.tolist(), len(tokens)]
    return [(bool(loss[a]), tokens[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def _print_document(tok, tokens: np.ndarray, loss: np.ndarray | None, limit: int = 800) -> None:
    if loss is None:
        text = tok.decode(tokens.tolist())
        print(text[:limit] + ("…" if len(text) > limit else ""))
        return
    print(f"[loss on {int(loss.sum())}/{len(loss)} tokens]")
    for trained, piece in loss_segments(tokens, loss):
        text = tok.decode(piece.tolist())
        label = "answer" if trained else "prompt"
        print(f"  {label} ({len(piece)} tokens): {text[:limit]!r}" + ("…" if len(text) > limit else ""))


def inspect_shards(shard_dir: str, samples: int = 3, split: str = "train", seed: int = 0, chart: str | None = None):
    """Print the manifest table and ``samples`` decoded documents; a loss-masked document (a block) is shown as its
    prompt and answer pieces apart, so what the model is trained to say is visible at a glance."""
    from transformers import AutoTokenizer

    print(summary_table(shard_dir))
    tok = AutoTokenizer.from_pretrained(str(Path(shard_dir) / "tokenizer"))
    pairs = bool(ShardManifest.load(shard_dir).pair_layout)
    for k, (name, idx, tokens, loss) in enumerate(sample_documents(shard_dir, samples, split, seed)):
        side = (" (chosen)" if k % 2 == 0 else " (rejected)") if pairs else ""
        print(f"\n--- {split}/{name} doc {idx}{side}: {len(tokens)} tokens")
        _print_document(tok, tokens, loss)
    if ShardManifest.load(shard_dir).sources:
        png = chart_mix(shard_dir, chart or Path(shard_dir) / "mix.png")
        print(f"\nmix chart: {png}")
