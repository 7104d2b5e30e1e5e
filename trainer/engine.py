"""The DeepSpeed wrapper: distributed setup, the generated DeepSpeed config, token-weighted accumulation,
block-causal masks for packed rows, atomic checkpoints.

Loss normalisation: every micro-batch's loss is a *sum* over its loss-carrying tokens divided by the number of
loss-carrying tokens in the whole global batch (all ranks, all micro-batches), times the data-parallel world size
(DeepSpeed averages gradients over ranks), and backward runs with ``scale_wrt_gas=False``. The optimizer step then
sees exactly the gradient of the global token-mean loss, however the tokens fall across micro-batches and ranks.
Pair objectives (DPO, rank) do the same with pairs in place of tokens (the unit of ``units``): the step's gradient
is that of the mean over every pair of the global batch. What a loss is, what it averages over and which metrics it
reports is the objective's (``trainer/objectives.py``); the engine never branches on an objective's name.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
from shardsmith.schemas.train_recipe import EngineSpec, OptimizerSpec, StageSpec
from shardsmith.trainer.objectives import objective_for


class EngineError(ValueError):
    """Training cannot go on (non-finite loss, no loss tokens, bad engine config): printed as one line by the CLI."""


# ---------------------------------------------------------------------------------------------------------------
# distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_distributed() -> tuple[int, int, int]:
    """Initialise torch.distributed through DeepSpeed (gloo on CPU, nccl on CUDA); (rank, world, local_rank)."""
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        raise EngineError("torch.distributed is not available")
    if not dist.is_initialized():
        if "RANK" not in os.environ:  # a plain `python` / in-process call: a world of one
            os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_SIZE="1")
            os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
            os.environ["MASTER_PORT"] = str(_free_port())
        import deepspeed

        backend = "nccl" if torch.cuda.is_available() else "gloo"
        deepspeed.init_distributed(dist_backend=backend, verbose=False)
        _unlink_shm_buffer(dist.get_rank())
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    return rank, world, local


def _unlink_shm_buffer(rank: int) -> None:
    """Remove this rank's name of DeepSpeed's CPU shared-memory allreduce buffer once every rank has mapped it.

    Why: DeepSpeed's shm_comm (``csrc/cpu/comm/shm.cpp``) creates ``/dev/shm/deepspeed_allreduce_buffer_<uid>_<addr>
    _<port>_<rank>`` (67 MB) at init and never unlinks it, so every training process leaves one behind (GBs after a
    test suite, until a worker is killed for memory). ``shm_initialize`` returns only after mapping every rank's
    buffer; after the barrier no rank opens a name again, and an unlinked segment lives on while mapped, so the
    memory is freed when the last process exits, killed or not."""
    import torch.distributed as dist

    name = f"deepspeed_allreduce_buffer_{os.getuid()}_{os.environ.get('MASTER_ADDR')}_{os.environ.get('MASTER_PORT')}"
    if dist.get_world_size() > 1:
        dist.barrier()
    (Path("/dev/shm") / f"{name}_{rank}").unlink(missing_ok=True)  # absent: no shm_comm (GPU, ranks not all local)


def device():
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# glibc's mallopt parameters (malloc.h); 1 GiB for both
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _KEEP_BYTES = -1, -3, 1 << 30


def keep_freed_memory() -> bool:
    """Make this process's heap keep the memory a training step frees, for the next step to reuse (True when set).

    On CPU every activation, logit and gradient tensor is a plain malloc/free. glibc hands freed memory back to the
    kernel (blocks above its dynamic mmap threshold, at most 32 MiB, and any free heap top above twice that), so the
    next micro-batch faults the same pages in again, zero-filled by the kernel: measured on tiny-gpt2 KD steps at
    seq_len 128 (scripts/bench_train_objectives.py), 2-23 K minor page faults and up to ~45 ms of system time per
    ~130 ms step, their number following the heap's layout (which tensor happens to sit on top) more than the
    step's work. With blocks up to 1 GiB served from the heap and up to 1 GiB of free heap kept mapped, a step
    reuses the previous steps' pages (0 faults per step there), as CUDA's caching allocator keeps device memory.
    The price is resident memory: it stays at the heap's high-water mark, which fragmentation can put above a step's
    peak until the pattern settles (a 64 MiB block allocated, filled and freed in a loop settles after five rounds,
    the heap then ~320 MiB). Process-wide and permanent; a no-op outside Linux/glibc."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # this process's C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # musl and others export a mallopt that ignores both and returns 0
    return bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES)) & bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES))


def barrier():
    import torch.distributed as dist

    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_initialized() else 1


def all_sum(values: list[float]) -> list[float]:
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device() if dist.get_backend() == "nccl" else "cpu")
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
    return t.tolist()


# ---------------------------------------------------------------------------------------------------------------
# config


def resolve_precision(spec: EngineSpec) -> str:
    import torch

    if spec.precision == "auto":
        return "bf16" if torch.cuda.is_available() else "fp32"
    return spec.precision


def fit_global_batch(stage: StageSpec, spec: EngineSpec, world: int) -> StageSpec:
    """The stage as each of ``world`` processes runs it. ``engine.batch: global`` keeps micro_batch_size x
    grad_accum as the global batch: every rank takes 1/world of it, in micro-batches of the largest size <= the
    recipe's that divides the share, accumulating the rest. Data order depends on the global batch only (rows
    s·G .. s·G+G-1 at step s), so 1, 2 or 3 processes read the same rows per step and follow the same loss curve."""
    if spec.batch == "per_rank":
        return stage
    rows = stage.micro_batch_size * stage.grad_accum
    if rows % world:
        raise EngineError(
            f"stages.{stage.name}: the global batch of {rows} rows (micro_batch_size {stage.micro_batch_size} x "
            f"grad_accum {stage.grad_accum}, engine.batch: global) cannot be split evenly over {world} processes; "
            f"run on a world size that divides {rows}"
        )
    share = rows // world
    micro = max(d for d in range(1, min(stage.micro_batch_size, share) + 1) if share % d == 0)
    return stage.model_copy(update={"micro_batch_size": micro, "grad_accum": share // micro})


def deepspeed_config(stage: StageSpec, spec: EngineSpec) -> dict:
    precision = resolve_precision(spec)
    cfg: dict = {
        "train_micro_batch_size_per_gpu": stage.micro_batch_size,
        "gradient_accumulation_steps": stage.grad_accum,
        # ZeRO-0 in fp32 hands the step to the plain torch optimizer: the engine clips itself (and so learns the
        # norm in the same pass); every other path clips inside DeepSpeed and reports the norm
        "gradient_clipping": 0.0 if _plain_path(spec) else stage.optimizer.grad_clip,
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
        "zero_optimization": {"stage": spec.zero_stage},
    }
    if spec.zero_stage > 0:
        cfg["zero_optimization"].update(
            overlap_comm=spec.overlap_comm, contiguous_gradients=True, reduce_scatter=True,
            reduce_bucket_size=spec.reduce_bucket_size, allgather_bucket_size=spec.allgather_bucket_size,
        )
        if spec.offload_optimizer:
            cfg["zero_optimization"]["offload_optimizer"] = {"device": "cpu"}
        if spec.zero_stage == 3:
            cfg["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] = True
    if precision == "bf16":
        cfg["bf16"] = {"enabled": True}
        if spec.zero_stage > 0:
            # ZeRO keeps fp32 gradient partitions. Without ZeRO, DeepSpeed 0.19 refuses bf16 weights with fp32
            # gradient accumulation ("unsupported mix"); its ZeRO-0 bf16 path (fp32 master weights, gradients
            # accumulated in bf16 on the module) needs grad_accum_dtype left at the model's dtype
            cfg["data_types"] = {"grad_accum_dtype": "fp32"}
    elif precision == "fp16":
        cfg["fp16"] = {"enabled": True, "initial_scale_power": 16}
    if spec.config_file:
        p = Path(spec.config_file)
        if not p.is_file():
            raise EngineError(f"engine.config_file {p}: not found")
        _deep_update(cfg, json.loads(p.read_text()))
    _deep_update(cfg, spec.config)
    cfg.pop("train_batch_size", None)  # derived by DeepSpeed from micro x accumulation x world
    return cfg


def _plain_path(spec: EngineSpec) -> bool:
    return spec.zero_stage == 0 and resolve_precision(spec) == "fp32" and "gradient_clipping" not in spec.config


def _deep_update(base: dict, extra: dict) -> None:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = v


def param_groups(model, weight_decay: float):
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model, o: OptimizerSpec, spec: EngineSpec):
    """Muon + AdamW for ``kind: muon`` (``muon_with_adamw``); else AdamW over ``param_groups``: torch's, or
    DeepSpeed's CPU Adam in AdamW mode when the optimizer is offloaded.

    ZeRO-Offload steps the optimizer on the CPU copy of the weights and refuses any optimizer but
    ``DeepSpeedCPUAdam``; with ``adamw_mode=True`` that is the same update as ``torch.optim.AdamW`` (decoupled
    weight decay, bias correction), so offloading changes where the step runs, not the numbers. Its C++ op is
    JIT-compiled on first use (minutes) and cached in ``$TORCH_EXTENSIONS_DIR`` (default ~/.cache/torch_extensions).
    """
    import torch

    if o.kind == "muon":
        if spec.zero_stage != 0 or resolve_precision(spec) != "fp32" or spec.offload_optimizer:
            raise EngineError(f"optimizer.kind muon needs engine.zero_stage 0 and precision fp32 (got ZeRO-"
                              f"{spec.zero_stage}, {resolve_precision(spec)}): ZeRO and DeepSpeed's mixed-precision "
                              "optimizers hand the optimizer flat 1-D partitions, and Muon orthogonalises matrices")
        return muon_with_adamw(model, o)
    groups = param_groups(model, o.weight_decay)
    if spec.offload_optimizer:
        return _cpu_adam(groups, o)
    fused = {"fused": True} if torch.cuda.is_available() else {}
    return torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps, **fused)


def muon_split(model) -> tuple[list, list, list]:
    """(Muon, AdamW with decay, AdamW without decay) parameters, fgpt's split: Muon takes the 2-D weight matrices of
    the blocks; embeddings (token and position tables) and the LM head (tied or not) stay on AdamW, with decay, and
    norms and biases (1-D) on AdamW without decay."""
    import torch

    tables = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    head = model.get_output_embeddings()
    if head is not None:
        tables.add(id(head.weight))
    muon, decay, no_decay = [], [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.dim() == 2 and id(p) not in tables:
            muon.append(p)
        else:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return muon, decay, no_decay


def muon_with_adamw(model, o: OptimizerSpec):
    """One torch optimizer for DeepSpeed (a client optimizer; ZeRO-0 fp32 steps it as is and checkpoints its
    ``state_dict``): ``torch.optim.Muon`` over ``muon_split``'s matrices, ``torch.optim.AdamW`` over the rest.

    Written here because DeepSpeed takes one optimizer and torch ships no Muon+AdamW pair: the outer optimizer owns the
    param groups and the state (so ``state_dict`` / ``load_state_dict``, the lr the schedule sets, and DeepSpeed's
    checkpoints are the standard ones) and steps the two torch optimizers over its own groups and state. Muon groups
    carry ``lr_scale`` = muon_lr / lr, which the engine applies to the schedule's lr."""
    import torch

    class _MuonWithAdamW(torch.optim.Optimizer):
        def __init__(self, muon_params, decay, no_decay):
            self._muon = torch.optim.Muon(muon_params, lr=o.muon_lr, momentum=o.muon_momentum,
                                          weight_decay=o.weight_decay)
            self._adamw = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay},
                                             {"params": no_decay, "weight_decay": 0.0}],
                                            lr=o.lr, betas=tuple(o.betas), eps=o.eps)
            for g in self._muon.param_groups:
                g.update(algo="muon", lr_scale=o.muon_lr / o.lr)
            for g in self._adamw.param_groups:
                g.update(algo="adamw", lr_scale=1.0)
            groups = [g for g in self._muon.param_groups + self._adamw.param_groups if g["params"]]
            super().__init__(groups, {})
            self._link()

        def _link(self):
            """Point the inner optimizers at this one's groups and state (again after ``load_state_dict``)."""
            self._muon.param_groups = [g for g in self.param_groups if g["algo"] == "muon"]
            self._adamw.param_groups = [g for g in self.param_groups if g["algo"] == "adamw"]
            self._muon.state = self._adamw.state = self.state

        def load_state_dict(self, state_dict):
            super().load_state_dict(state_dict)
            self._link()

        @torch.no_grad()
        def step(self, closure=None):
            loss = closure() if closure is not None else None
            self._muon.step()
            self._adamw.step()
            return loss

    return _MuonWithAdamW(*muon_split(model))


def _cpu_adam(groups, o: OptimizerSpec):
    try:
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        return DeepSpeedCPUAdam(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay,
                                adamw_mode=True)
    except Exception as err:  # no C++ compiler / ninja: the op cannot be built here
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise EngineError(f"engine.offload_optimizer: DeepSpeed's CPU Adam op could not be built here ({first}); "
                          "install a C++ compiler and ninja, or set offload_optimizer: false") from None


# ---------------------------------------------------------------------------------------------------------------
# the engine


class Engine:
    def __init__(self, model, stage: StageSpec, spec: EngineSpec, seed: int):
        import deepspeed

        self.stage, self.spec, self.seed = stage, spec, seed
        self.precision = resolve_precision(spec)
        self.device = device()
        if self.device.type == "cpu":
            keep_freed_memory()  # the step's tensors live in this process's heap: no page faults per step
        # packed attention first: the frozen copies an objective takes (DPO's reference, KD's teacher) attend the same way
        self.attention = self._packed_attention(model, spec)
        self.objective = objective_for(stage)
        self.objective.prepare(self, model)  # frozen reference / teacher: copies taken before DeepSpeed wraps the model
        self.lora = stage.lora
        if self.lora is not None:
            model = with_lora(model, self.lora, spec, f"stages.{stage.name}.lora")
        if stage.gradient_checkpointing or spec.activation_checkpointing:
            enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
            enable()
            model.config.use_cache = False
        if stage.freeze_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
            if model.get_output_embeddings() is not None:
                model.get_output_embeddings().weight.requires_grad_(False)
        opt = build_optimizer(model, stage.optimizer, spec)
        self.config = deepspeed_config(stage, spec)
        self.engine, self.optimizer, _, _ = deepspeed.initialize(model=model, optimizer=opt, config=self.config)
        if spec.zero_stage == 0 and _world_size() == 1:
            # one process: DeepSpeed's gradient all-reduce at each boundary (flatten every gradient, a gloo/nccl
            # call, copy back) is the identity; DeepSpeed skips it the same way when it has no backend
            self.engine.enable_backward_allreduce = False
        if spec.compile:
            self.engine.compile()  # DeepSpeed compiles the wrapped module's forward in place (state-dict keys kept)
        self.model = self.engine.module
        self.neftune_alpha = stage.neftune_alpha
        self._neft_len = None
        self._neft_gen = None
        if self.neftune_alpha:
            self.model.get_input_embeddings().register_forward_hook(self._neftune_hook)

    @staticmethod
    def _packed_attention(model, spec: EngineSpec) -> str:
        """``engine.attention`` resolved (dense | flex | varlen); flex / varlen route the model's attention through
        ``trainer.attention`` so packed rows never build the dense L×L mask."""
        from shardsmith.trainer import attention

        try:
            kind = attention.resolve(spec.attention)
        except attention.AttentionError as err:
            raise EngineError(str(err)) from None
        if kind != "dense":
            attention.use_packed_attention(model)
        return kind

    def frozen_model(self, src: str, model, where: str):
        """A frozen model an objective compares against (DPO's reference, KD's teacher): :func:`load_frozen` with
        this engine's attention, device and precision."""
        return load_frozen(src, model, where, attention_kind=self.attention, device=self.device,
                           precision=self.precision)

    # --- NEFTune: uniform noise alpha / sqrt(L d), L = real tokens of the row, training only -----------------
    def _neftune_hook(self, module, args, output):
        import torch

        if not module.training or self._neft_len is None:
            return output
        d = output.shape[-1]
        # lengths and noise come from the CPU (the noise generator is a CPU one, so a run draws the same noise on any
        # device); both move to the embeddings' device before they meet them
        scale = self.neftune_alpha / torch.sqrt(self._neft_len.to(torch.float32) * d)
        scale = scale.to(output.device, output.dtype)
        noise = torch.rand(output.shape, generator=self._neft_gen, dtype=torch.float32).to(output.device)
        return output + (noise * 2 - 1).to(output.dtype) * scale.view(-1, 1, 1)

    # --- forward -------------------------------------------------------------------------------------------
    @property
    def dtype(self):
        return next(self.model.parameters()).dtype

    def tensors(self, batch):
        """(ids, labels, positions, attention keyword arguments): for packed rows, what makes the model attend per
        document (a dense mask, a FlexAttention block mask or document bounds, per ``engine.attention``)."""
        import torch
        from shardsmith.trainer.attention import model_inputs

        dev = self.device
        ids = torch.from_numpy(batch.input_ids).to(dev)
        labels = torch.from_numpy(batch.labels).to(dev)
        pos = torch.from_numpy(batch.position_ids).to(dev)
        attn = {}
        if batch.segment_ids is not None:
            sdpa = getattr(self.model.config, "_attn_implementation", "sdpa") == "sdpa"
            attn = model_inputs(batch.segment_ids, self.attention, dev, self.dtype, sdpa=sdpa)
        return ids, labels, pos, attn

    def units(self, batch) -> int:
        """What the loss is averaged over: the objective's units (pairs, or loss-carrying tokens)."""
        return self.objective.units(batch)

    def loss_sum(self, batch, train: bool = True, noise_key: tuple | None = None):
        """(sum of the loss over the micro-batch's units, their count, extra metric sums): the objective's."""
        return self.objective.loss_sum(self, batch, train, noise_key)

    def forward(self, batch, train: bool = True, noise_key: tuple | None = None):
        """(logits, labels) of the trained model on ``batch``; NEFTune noise in training, seeded by ``noise_key``."""
        import torch

        ids, labels, pos, attn = self.tensors(batch)
        if train and self.neftune_alpha:
            seg = batch.segment_ids
            real = (seg >= 0).sum(1) if seg is not None else np.full(len(ids), ids.shape[1])
            self._neft_len = torch.from_numpy(np.maximum(real, 1))
            self._neft_gen = torch.Generator().manual_seed(_mix(self.seed, *(noise_key or (0,))))
        try:
            out = self.engine(input_ids=ids, position_ids=pos, use_cache=False, **attn)
        finally:
            self._neft_len = None
        return out.logits, labels

    def frozen_logits(self, model, batch):
        """Logits of a frozen model (``frozen_model``) on the same rows, positions and mask; no graph."""
        import torch

        ids, _, pos, attn = self.tensors(batch)
        with torch.no_grad():
            return model(input_ids=ids, position_ids=pos, use_cache=False, **attn).logits

    # --- one optimizer step ------------------------------------------------------------------------------
    def train_step(self, batches, step: int, lr: float, rank: int, world: int) -> dict:
        import torch

        self.engine.train()
        local = sum(self.units(b) for b in batches)
        real = sum(b.real_tokens if b.real_tokens is not None else
                   int((b.segment_ids >= 0).sum()) if b.segment_ids is not None else b.input_ids.size
                   for b in batches)
        loss_tokens = float(sum(b.loss_tokens for b in batches))
        total_units = all_sum([float(local)])[0]  # the global batch's loss tokens, or pairs
        if total_units == 0:
            raise EngineError(f"step {step}: the global batch has no loss-carrying tokens (all labels masked)")
        for g in self.engine.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)  # Muon's groups: muon_lr / lr
        loss_acc = 0.0
        extra: dict[str, float] = {}
        for m, b in enumerate(batches):
            torch.manual_seed(_mix(self.seed, step, rank, m))  # dropout etc.: a function of (seed, step, rank, micro)
            s, _, st = self.loss_sum(b, train=True, noise_key=(step, rank, m))
            loss = s * (world / total_units)
            self.engine.backward(loss, scale_wrt_gas=False)
            loss_acc += float(s.detach())
            for k, v in st.items():
                extra[k] = extra.get(k, 0.0) + v
            if m == len(batches) - 1:
                manual_norm = self._grad_norm_if_needed()
            self.engine.step()
        keys = sorted(extra)
        loss_sum, real_all, loss_tokens, *sums = all_sum([loss_acc, float(real), loss_tokens] + [extra[k] for k in keys])
        loss = loss_sum / total_units
        if not np.isfinite(loss):
            raise EngineError(f"step {step}: loss is {loss} (non-finite); stopping before any checkpoint of this step")
        norm = self.engine.get_global_grad_norm()
        if norm is None:
            norm = manual_norm
        norm = float(norm) if norm is not None else float("nan")
        out = {"loss": loss, "loss_tokens": int(loss_tokens), "tokens": int(real_all), "grad_norm": norm}
        out.update(self.objective.step_metrics(total_units, dict(zip(keys, sums))))
        return out

    def _grad_norm_if_needed(self):
        """ZeRO-0 fp32: gradients are whole (and all-reduced) on the module here; clip them and return the norm."""
        import torch

        if not _plain_path(self.spec):
            return None
        params = [p for p in self.model.parameters() if p.grad is not None]
        clip = self.stage.optimizer.grad_clip
        if clip > 0:
            return float(torch.nn.utils.clip_grad_norm_(params, clip))
        return float(torch.nn.utils.get_total_norm([p.grad for p in params]))

    @property
    def global_steps(self) -> int:
        return self.engine.global_steps

    def evaluate(self, batches) -> float | None:
        return self.evaluate_stats(batches).get("val_loss")

    def evaluate_stats(self, batches) -> dict:
        """``val_loss`` (per unit: token or pair) and the objective's ``val_metrics`` (e.g. ``val_dpo_accuracy``)."""
        import torch

        if not batches:
            return {}
        self.engine.eval()
        s, n, extra = 0.0, 0, {}
        with torch.no_grad():
            for b in batches:
                ls, cnt, st = self.loss_sum(b, train=False)
                s += float(ls)
                n += cnt
                for k, v in st.items():
                    extra[k] = extra.get(k, 0.0) + v
        self.engine.train()
        keys = sorted(extra)
        s, n, *sums = all_sum([s, float(n)] + [extra[k] for k in keys])
        if not n:
            return {"val_loss": None}
        out = {"val_loss": s / n}
        out.update(self.objective.val_stats(n, dict(zip(keys, sums))))
        return out

    # --- checkpoints: temp tag, then rename (rank 0), `latest` written atomically ------------------------
    def save(self, ckpt_dir: Path, step: int, client_state: dict, keep: int | None = None) -> Path:
        import torch.distributed as dist

        ckpt_dir = Path(ckpt_dir)
        tag, tmp = f"step-{step}", f".tmp-step-{step}"
        rank = dist.get_rank()
        if rank == 0:
            shutil.rmtree(ckpt_dir / tmp, ignore_errors=True)
        barrier()
        self.engine.save_checkpoint(str(ckpt_dir), tag=tmp, client_state=client_state, save_latest=False)
        barrier()
        if rank == 0:
            final = ckpt_dir / tag
            if final.exists():
                shutil.rmtree(final)
            os.replace(ckpt_dir / tmp, final)
            _atomic_write(ckpt_dir / "latest", tag)
            if keep:
                old = sorted((p for p in ckpt_dir.glob("step-*") if p.is_dir()), key=lambda p: int(p.name[5:]))
                for p in old[:-keep]:
                    shutil.rmtree(p, ignore_errors=True)
        barrier()
        return ckpt_dir / tag

    def load(self, ckpt_dir: Path) -> dict:
        tag = latest_tag(ckpt_dir)
        if tag is None:
            raise EngineError(f"{ckpt_dir}: no complete checkpoint to resume from")
        path, client = self.engine.load_checkpoint(str(ckpt_dir), tag=tag, load_optimizer_states=True,
                                                   load_lr_scheduler_states=False)
        if path is None:
            raise EngineError(f"{ckpt_dir}/{tag}: DeepSpeed could not load this checkpoint")
        return client or {}

    def export_state(self):
        """(HF model, its full weights) to export: LoRA adapters merged into the base weights (a merged copy; the
        trained model keeps its adapters), else the trained model itself."""
        if self.lora is None:
            return self.model, self.state_dict_for_export()
        merged = merged_lora_copy(self.model)
        return merged, merged.state_dict()

    def save_adapter(self, dest: Path) -> None:
        """The LoRA adapter alone, in peft's format (``adapter_config.json`` + ``adapter_model.safetensors``),
        temp folder then rename; nothing without LoRA."""
        if self.lora is None:
            return
        dest = Path(dest)
        tmp = dest.with_name(f".tmp-{dest.name}-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.save_pretrained(tmp)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)

    def state_dict_for_export(self):
        """Full weights on rank 0 (ZeRO-3 gathers them); None on other ranks under ZeRO-3."""
        if self.spec.zero_stage == 3:
            return self.engine._zero3_consolidated_16bit_state_dict()
        return self.model.state_dict()


def with_lora(model, lora, spec: EngineSpec, where: str):
    """``model`` wrapped by peft's ``get_peft_model``: base weights frozen, LoRA A/B trainable on ``lora.targets``."""
    from peft import LoraConfig, get_peft_model

    if spec.zero_stage == 3:
        raise EngineError(f"{where}: LoRA runs with engine.zero_stage 0, 1 or 2 (ZeRO-3 partitions the base weights "
                          "the export merges into)")
    cfg = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.targets,
                     task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, cfg)
    except ValueError as err:  # unknown architecture without targets, or targets that match no module
        raise EngineError(f"{where}: {str(err).splitlines()[0]}") from None


def merged_lora_copy(peft_model):
    """A plain HF model with W + B·A·(alpha/r) in place of every adapted W (peft's ``merge_and_unload`` on a copy)."""
    import copy

    return copy.deepcopy(peft_model).merge_and_unload()


def load_frozen(src: str, model, where: str, *, attention_kind: str, device, precision: str):
    """A frozen model an objective compares against (DPO's reference, KD's teacher): ``init`` = the weights the
    stage starts from (a copy taken before DeepSpeed wraps the model, so ZeRO-3 partitioning never touches it),
    or a local HF folder; in the training precision, eval mode, no gradients. It attends like the trained model
    (``attention_kind``: packed rows per document without the dense mask unless ``dense``)."""
    import copy

    import torch

    if src == "init":
        ref = copy.deepcopy(model)
    else:
        from transformers import AutoModelForCausalLM

        if not (Path(src) / "config.json").is_file():
            raise EngineError(f"{where}: '{src}' is not an HF model folder")
        attn = getattr(model.config, "_attn_implementation", None) or "sdpa"  # the same mask form as the model's
        packed = attention_kind != "dense"  # loaded with SDPA, then routed like the model (an init copy already is)
        ref = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32,
                                                   attn_implementation="sdpa" if packed else attn)
        if ref.get_input_embeddings().num_embeddings != model.get_input_embeddings().num_embeddings:
            raise EngineError(f"{where}: {src} has {ref.get_input_embeddings().num_embeddings} vocabulary rows, "
                              f"the trained model {model.get_input_embeddings().num_embeddings}")
        if packed:
            from shardsmith.trainer import attention

            attention.use_packed_attention(ref)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    ref = ref.to(device=device, dtype=dtype).eval()
    ref.requires_grad_(False)
    return ref


def latest_tag(ckpt_dir: Path) -> str | None:
    f = Path(ckpt_dir) / "latest"
    if not f.is_file():
        return None
    tag = f.read_text().strip()
    return tag if (Path(ckpt_dir) / tag).is_dir() else None


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _mix(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


def block_causal_mask(segment_ids, dtype):
    """(B, 1, L, L) mask: position i sees j iff j <= i and both are in the same document.

    ``dtype=torch.bool`` gives SDPA's boolean form (True = attend, 1 byte per entry); a float dtype gives the
    additive form (0 / finfo.min) that eager attention needs. Padding has its own segment per position, so no
    row is fully masked."""
    import torch

    L = segment_ids.shape[1]
    same = segment_ids[:, :, None] == segment_ids[:, None, :]
    allowed = same & torch.ones(L, L, dtype=torch.bool, device=segment_ids.device).tril()
    if dtype == torch.bool:
        return allowed[:, None]
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segment_ids.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]
