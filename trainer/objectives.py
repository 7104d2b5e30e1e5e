"""Objectives over next-token labels (-100 = no loss).

Token objectives (clm, sft, mixce) return per-token values; the engine sums them and normalises by the global count
of loss-carrying tokens. DPO returns per-pair values; the engine normalises by the global count of pairs. Neither
returns a mean, so gradient accumulation and data parallelism never re-weight examples."""

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
    raise NotImplementedError(f"objective '{objective}' is not a token objective (token objectives: clm, sft, mixce)")


def sequence_logps(logits, labels):
    """(sum of log p(label) over each row's loss-carrying tokens, their count), both shape (rows,)."""
    import torch.nn.functional as F

    keep = labels != IGNORE
    logp = -F.cross_entropy(logits.float().transpose(1, 2), labels.clamp(min=0), reduction="none")
    return (logp * keep).sum(-1), keep.sum(-1)


def dpo_losses(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta: float, loss_type: str = "sigmoid",
               label_smoothing: float = 0.0):
    """Per-pair DPO loss and the implicit rewards beta·(log pi - log pi_ref) of each side.

    sigmoid: -log sigma(beta·m) (Rafailov et al. 2023), with cDPO label smoothing; ipo: (m - 1/(2·beta))^2 (Azar et
    al. 2023); hinge: max(0, 1 - beta·m) (SLiC); m = (pi_c - ref_c) - (pi_r - ref_r)."""
    import torch.nn.functional as F

    chosen_r = policy_chosen - ref_chosen
    rejected_r = policy_rejected - ref_rejected
    m = chosen_r - rejected_r
    if loss_type == "sigmoid":
        loss = -F.logsigmoid(beta * m) * (1 - label_smoothing) - F.logsigmoid(-beta * m) * label_smoothing
    elif loss_type == "ipo":
        loss = (m - 1 / (2 * beta)) ** 2
    elif loss_type == "hinge":
        loss = F.relu(1 - beta * m)
    else:
        raise ValueError(f"unknown DPO loss_type '{loss_type}' (sigmoid, ipo, hinge)")
    return loss, beta * chosen_r.detach(), beta * rejected_r.detach()
