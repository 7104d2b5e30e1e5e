"""Training objectives as objects: one registry row per objective (torchtitan's loss components, OLMo-core's
``TrainModule``: the loop and the engine stay objective-agnostic).

An objective states what it reads (``reads``: windows, packed rows or pairs; the recipe's contract, taken from
``schemas.train_recipe.OBJECTIVE_ROWS``), which frozen model it needs (``prepare``: DPO's reference, KD's teacher),
its loss as a *sum* over the micro-batch's units with their count (``loss_sum``; ``units`` are loss-carrying tokens or
pairs) and its metrics (``metric_prefix``, ``val_metrics``). The engine sums, normalises by the global count of units
and never branches on an objective's name, so gradient accumulation and data parallelism never re-weight examples.

Adding an objective: a row in ``OBJECTIVE_ROWS`` (and, when it has settings, their pydantic class) in the schema, and
one ``Objective`` subclass here decorated with ``@register``.
"""

from __future__ import annotations

from pathlib import Path

IGNORE = -100


# ---------------------------------------------------------------------------------------------------------------
# loss formulas (pure functions of tensors; the tests check them against hand computation)


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


def rank_losses(score_chosen, score_rejected, weight: float):
    """Memphis-CoT's loss per pair, PRO-style (supertrainer2000's ``pro.py`` for one chosen and one rejected answer):

        loss = -s_c + weight · softplus(s_r - s_c)

    with s = (sum of log p over the answer's tokens) / (their count), the length-normalised sequence log-prob; -s_c
    is the chosen answer's mean token cross-entropy. No reference model."""
    import torch.nn.functional as F

    return -score_chosen + weight * F.softplus(score_rejected - score_chosen)


def kd_token_losses(student_logits, teacher_logits, labels, temperature: float, alpha: float):
    """Logit distillation per loss-carrying token (Hinton et al. 2015), returned as (loss, kl, ce), each 1-D:

        loss = alpha · T² · KL(p_teacher^T || p_student^T) + (1 - alpha) · CE(student, label)
        p^T  = softmax(logits / T);  KL(p || q) = sum_v p_v (log p_v - log q_v)

    T² keeps the KL term's gradient on the scale of the CE term's as T changes. The KL runs over the vocabulary rows
    both models have (a padded embedding's extra rows are never a target); the CE over the student's full head."""
    rows = loss_rows(labels)
    return kd_row_losses(take_rows(student_logits, rows), take_rows(teacher_logits, rows),
                         labels.reshape(-1)[rows], temperature, alpha)


def loss_rows(labels):
    """Flat indices (into the B·L positions) of the loss-carrying tokens, ascending."""
    return (labels.reshape(-1) != IGNORE).nonzero().squeeze(1)


def take_rows(logits, rows):
    """The (len(rows), V) logits of those positions as fp32. ``index_select``, not a boolean mask: the same values,
    and its backward scatters the gradient rows into the (B·L, V) zeros with ``index_add`` (a boolean index's
    backward is an accumulating ``index_put``, about twice as slow on CPU)."""
    return logits.reshape(-1, logits.shape[-1]).index_select(0, rows).float()


def kd_row_losses(s, t, target, temperature: float, alpha: float):
    """``kd_token_losses`` on logits already cut to the loss-carrying tokens: s (student) and t (teacher) are
    (tokens, vocab) fp32, ``target`` their labels."""
    import torch.nn.functional as F

    ce = F.cross_entropy(s, target, reduction="none")
    s_kl, t_kl = s, t
    if s.shape[-1] != t.shape[-1]:  # slice only then: a slice's backward writes a full-size zero gradient
        v = min(s.shape[-1], t.shape[-1])
        s_kl, t_kl = s[:, :v], t[:, :v]
    log_q = F.log_softmax(s_kl / temperature, dim=-1)
    log_p = F.log_softmax(t_kl / temperature, dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    return alpha * temperature**2 * kl + (1 - alpha) * ce, kl, ce


def metric_sums(**sums) -> dict[str, float]:
    """A micro-batch's metric sums (0-d tensors) as floats, with one device sync for all of them."""
    import torch

    return dict(zip(sums, torch.stack(list(sums.values())).detach().tolist()))


# ---------------------------------------------------------------------------------------------------------------
# the registry


class Objective:
    """One objective bound to one stage. Subclasses set ``name`` and implement ``loss_sum``."""

    name = ""
    metric_prefix = ""  # train metrics are logged as f"{metric_prefix}{key}" (per unit)
    val_metrics: tuple[str, ...] = ()  # of those, the keys also reported on validation rows as f"val_{prefix}{key}"

    def __init__(self, stage):
        from shardsmith.schemas.train_recipe import OBJECTIVE_ROWS

        self.stage = stage
        row = OBJECTIVE_ROWS[self.name]
        self.reads = row.reads
        self.cfg = getattr(stage, row.settings) if row.settings else None

    def prepare(self, eng, model) -> None:
        """Build what the objective needs besides the trained model (frozen copies), before DeepSpeed wraps it."""

    def preflight(self, readers) -> None:
        """Checks that need only the recipe and the opened shard sets (run before any model is built)."""

    def units(self, batch) -> int:
        """What the loss is averaged over: pairs, or loss-carrying tokens."""
        return batch.pairs if self.reads == "pairs" else batch.loss_tokens

    def loss_sum(self, eng, batch, train: bool, noise_key: tuple | None):
        """(sum of the loss over the micro-batch's units, their count, metric sums keyed without the prefix)."""
        raise NotImplementedError

    def step_metrics(self, units: float, sums: dict[str, float]) -> dict:
        out = {"pairs": int(units)} if self.reads == "pairs" else {}
        out.update({f"{self.metric_prefix}{k}": v / units for k, v in sums.items()})
        return out

    def val_stats(self, units: float, sums: dict[str, float]) -> dict:
        return {f"val_{self.metric_prefix}{k}": v / units for k, v in sums.items() if k in self.val_metrics}


OBJECTIVES: dict[str, type[Objective]] = {}


def register(cls: type[Objective]) -> type[Objective]:
    OBJECTIVES[cls.name] = cls
    return cls


def objective_for(stage) -> Objective:
    return OBJECTIVES[stage.objective](stage)


def preflight_objective(stage, readers) -> None:
    """The set-kind contract (``data.check_objective``) and the objective's own checks, before any work."""
    from shardsmith.trainer.data import check_objective

    check_objective(readers, stage.objective)
    objective_for(stage).preflight(readers)


@register
class CLM(Objective):
    """Next-token cross-entropy on every loss-carrying token."""

    name = "clm"

    def loss_sum(self, eng, batch, train, noise_key):
        logits, labels = eng.forward(batch, train, noise_key)
        per_tok = token_losses(logits, labels, self.name, self.stage.mixce_ratio)
        return per_tok.sum(), int((labels != IGNORE).sum()), {}


@register
class SFT(CLM):
    """The same cross-entropy on packed rows whose prompts carry no loss."""

    name = "sft"


@register
class MixCE(CLM):
    """``token_losses``' mixce: eta·NLL + (1 - eta)·sg(p)·NLL."""

    name = "mixce"


@register
class DPO(Objective):
    """Direct Preference Optimization against a frozen reference (``dpo.reference``), per pair."""

    name = "dpo"
    metric_prefix = "dpo_"
    val_metrics = ("accuracy", "margin")

    def prepare(self, eng, model) -> None:
        self.reference = eng.frozen_model(self.cfg.reference, model, f"stages.{self.stage.name}.dpo.reference")

    def loss_sum(self, eng, batch, train, noise_key):
        """Policy and reference sequence log-probs of both sides of every pair -> summed DPO loss and metrics."""
        cfg, n = self.cfg, batch.pairs
        logits, labels = eng.forward(batch, train, noise_key)
        logp, count = sequence_logps(logits, labels)
        ref_logp, _ = sequence_logps(eng.frozen_logits(self.reference, batch), labels)
        if cfg.logp == "mean":
            logp, ref_logp = logp / count.clamp(min=1), ref_logp / count.clamp(min=1)
        loss, r_c, r_r = dpo_losses(logp[:n], logp[n:], ref_logp[:n], ref_logp[n:], cfg.beta, cfg.loss_type,
                                    cfg.label_smoothing)
        nll = -(logp[:n] if cfg.logp == "mean" else logp[:n] / count[:n].clamp(min=1))
        if cfg.sft_weight:
            loss = loss + cfg.sft_weight * nll
        return loss.sum(), n, metric_sums(accuracy=(r_c > r_r).float().sum(), margin=(r_c - r_r).sum(),
                                          reward_chosen=r_c.sum(), reward_rejected=r_r.sum(), logp_chosen=logp[:n].sum(),
                                          logp_rejected=logp[n:].sum(), nll_chosen=nll.sum())


@register
class Rank(Objective):
    """Memphis-CoT's ranking loss plus CE on the chosen answer (``rank_losses``), per pair; no reference model."""

    name = "rank"
    metric_prefix = "rank_"
    val_metrics = ("accuracy", "margin")

    def loss_sum(self, eng, batch, train, noise_key):
        n = batch.pairs
        logits, labels = eng.forward(batch, train, noise_key)
        logp, count = sequence_logps(logits, labels)
        score = logp / count.clamp(min=1)
        sc, sr = score[:n], score[n:]
        loss = rank_losses(sc, sr, self.cfg.weight)
        return loss.sum(), n, metric_sums(accuracy=(sc > sr).float().sum(), margin=(sc - sr).sum(),
                                          nll_chosen=-sc.sum(), score_rejected=sr.sum())


@register
class KD(Objective):
    """Logit distillation from a local teacher (``kd_token_losses``) on the stage's packed rows and loss masks."""

    name = "kd"
    metric_prefix = "kd_"
    val_metrics = ("kl", "ce")

    def preflight(self, readers) -> None:
        check_teacher_tokenizer(Path(self.cfg.teacher), readers[0].root, readers[0].manifest,
                                f"stages.{self.stage.name}.kd.teacher")

    def prepare(self, eng, model) -> None:
        self.teacher = eng.frozen_model(self.cfg.teacher, model, f"stages.{self.stage.name}.kd.teacher")

    def loss_sum(self, eng, batch, train, noise_key):
        """``kd_token_losses``, with each model's full (B, L, V) logits dropped as soon as their loss-carrying rows
        are taken: the teacher's forward and the loss then run without the student's full logits alive, which
        keeps the step's peak memory (and the fresh pages the allocator faults in for it) below the plain form's."""
        logits, labels = eng.forward(batch, train, noise_key)
        rows = loss_rows(labels)
        student = take_rows(logits, rows)
        del logits
        teacher = take_rows(eng.frozen_logits(self.teacher, batch), rows)
        loss, kl, ce = kd_row_losses(student, teacher, labels.reshape(-1)[rows], self.cfg.temperature,
                                     self.cfg.alpha)
        return loss.sum(), len(rows), metric_sums(kl=kl.sum(), ce=ce.sum())


def check_teacher_tokenizer(folder: Path, shard_dir: Path, manifest, where: str) -> None:
    """A teacher must score the student's token ids: its folder's tokenizer has the shard set's vocabulary, id for id.
    Raises ValueError (one line)."""
    from shardsmith.trainer.models import _vocab_of_folder

    if not (folder / "config.json").is_file():
        raise ValueError(f"{where}: '{folder}' is not an HF model folder (no config.json there)")
    theirs, ours = _vocab_of_folder(folder), _vocab_of_folder(shard_dir / manifest.tokenizer.path)
    if theirs is None:
        raise ValueError(f"{where}: {folder} has no tokenizer.json; distillation needs the teacher's tokenizer to "
                         f"equal the shard set's ('{manifest.tokenizer.name}')")
    if ours is not None and theirs != ours:
        bad = sorted(set(theirs.items()) ^ set(ours.items()))
        raise ValueError(f"{where}: {folder}'s tokenizer differs from the shard set's ('{manifest.tokenizer.name}'): "
                         f"{len(bad)} (token, id) entries differ (e.g. {bad[:2]!r}); distill with the same tokenizer")
