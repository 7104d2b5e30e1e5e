"""Per-token objectives over next-token labels (-100 = no loss). The engine sums them and normalises by the
global count of loss-carrying tokens, so every objective here returns per-token values, never a mean."""

from __future__ import annotations

IGNORE = -100


def token_losses(logits, labels, objective: str = "clm", mixce_ratio: float = 1.0):
    """Loss of every loss-carrying token (1-D). ``clm`` and ``sft`` are the same cross-entropy (the data decides
    which tokens carry loss); ``mixce`` is eta·NLL + (1 - eta)·sg(p)·NLL with p = exp(-NLL) (MixCE, Zhang et al.
    2023; eta = 1 is plain MLE)."""
    import torch.nn.functional as F

    keep = labels != IGNORE
    if bool(keep.all()):  # pretraining windows: no copy of the (tokens x vocab) logits
        logits, target = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    else:
        logits, target = logits[keep], labels[keep]
    nll = F.cross_entropy(logits.float(), target, reduction="none")
    if objective in ("clm", "sft"):
        return nll
    if objective == "mixce":
        eta = float(mixce_ratio)
        return eta * nll + (1.0 - eta) * (-nll).exp().detach() * nll
    raise NotImplementedError(
        f"objective '{objective}' is not implemented in this trainer yet (implemented: clm, sft, mixce); "
        "DPO needs preference-pair shards, which no builder writes yet"
    )
