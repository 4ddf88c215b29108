"""The training loop every run uses, for fine-tuning and pretraining alike.

`fit` knows no task (minGPT style): it takes a model whose forward returns
`.loss`, a function giving each epoch's batches, and an `evaluate` function,
and owns everything about *how* to optimise: parameter groups and schedule
(`lib.optim`), gradient accumulation, clipping after backward, bf16 autocast,
periodic evaluation, early stopping that restores the best weights, a per-step
log, and a clear error when the loss turns NaN. Tasks live elsewhere:
classification in `lib.classify`, MLM + NSP in `lib.mlm`.

Several processes: `fit` runs on Hugging Face Accelerate. Model, optimizer,
scheduler and loaders go through `Accelerator.prepare`, the backward through
`accelerator.backward`, accumulation through `accelerator.accumulate`,
clipping through `accelerator.clip_grad_norm_` and bf16 through its mixed
precision. Launched as N processes (`accelerate launch --num_processes N`),
each takes 1/N of every batch (`split_batches`), so the global batch, the
number of optimizer steps and the schedule are those of one process; the
logged loss is the mean over processes. In one process it trains exactly as a
plain PyTorch loop would (same numbers, bit for bit, tested).
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs, GradientAccumulationPlugin
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import set_seed

from lib import parallel
from lib.device import bf16_supported, check_device, pick_device
from lib.optim import (
    OPTIMIZERS,
    SCHEDULES,
    build_optimizer,
    build_scheduler,
    group_lrs,
    is_bias_or_norm,
    param_groups,
    warmup_steps_for,
)

NORM_EVERY = 8
EARLY_STEPS = 20
"""For the first steps fit also logs `update/<group>`, the size ‖Δθ‖ of each parameter group's update:
what warmup keeps small while the new head is random (notebook 03)."""
"""Log weight norms after the first optimizer step, every this many, and after the last: ~0.1 s each for MiniLM."""

TRUNCATIONS = ("head", "tail", "head+tail")
MAX_SEED = 2**32 - 1  # numpy's seed range


class ConfigError(ValueError):
    """An impossible configuration, raised when the config is built (before anything trains)."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainConfig:
    """Training hyperparameters; the defaults are the workbook's baseline
    (AdamW, lr 2e-5, weight decay 0.01, 10% linear warmup, clip 1.0, early stopping)."""

    lr: float = 2e-5
    weight_decay: float = 0.01
    exclude_bias_and_norm: bool = True
    xi: float = 1.0
    head_lr: float | None = None
    optimizer: str = "adamw"
    schedule: str = "linear"
    warmup_ratio: float = 0.1
    warmup_steps: int | None = None
    epochs: float = 3.0
    max_steps: int | None = None
    batch_size: int = 32
    grad_accum: int = 1
    max_grad_norm: float | None = 1.0
    max_length: int = 128
    truncation: str = "head"  # texts over max_length keep their "head", "tail" or "head+tail" (Sun et al. 2019)
    eval_every: int | None = None  # optimizer steps; None: once per epoch
    patience: int | None = 3  # evaluations without improvement; None: never stop early
    metric: str = "accuracy"  # validation metric for best weights; "*loss" means lower is better
    group_by_length: bool = True
    eval_batch_size: int = 128
    bf16: bool | None = None  # None ("auto"): on where the hardware has native bf16 (`lib.device.bf16_supported`)
    device: str = "auto"
    seed: int = 0
    progress: bool = True

    @property
    def use_bf16(self) -> bool:
        """The precision this machine runs: the request, or for None whether the hardware has native bf16.

        The request (not its resolution) is part of a run's identity, so a stored run replays on any
        machine; the record's `precision` and `env.json` say what the machine that made it used."""
        return bf16_supported(pick_device(self.device)) if self.bf16 is None else bool(self.bf16)

    def __post_init__(self) -> None:
        _check_types(self)
        check_device(self.device)
        rules = {
            "lr must be > 0": self.lr > 0,
            "head_lr must be > 0 (or None for lr)": self.head_lr is None or self.head_lr > 0,
            "xi (layer-wise decay ξ) must lie in (0, 1]; 1 means no decay": 0 < self.xi <= 1,
            "weight_decay must be ≥ 0": self.weight_decay >= 0,
            f"optimizer must be one of {OPTIMIZERS}": self.optimizer in OPTIMIZERS,
            f"schedule must be one of {SCHEDULES}": self.schedule in SCHEDULES,
            "warmup_ratio must lie in [0, 1)": 0 <= self.warmup_ratio < 1,
            "warmup_steps must be ≥ 0 (or None)": self.warmup_steps is None or self.warmup_steps >= 0,
            "batch_size must be ≥ 1": self.batch_size >= 1,
            "grad_accum must be ≥ 1": self.grad_accum >= 1,
            "epochs must be > 0": self.epochs > 0,
            "max_steps must be ≥ 1 (or None)": self.max_steps is None or self.max_steps >= 1,
            "max_grad_norm must be > 0 (or None: no clipping)": self.max_grad_norm is None or self.max_grad_norm > 0,
            "max_length must be ≥ 8": self.max_length >= 8,
            f"truncation must be one of {TRUNCATIONS}": self.truncation in TRUNCATIONS,
            "eval_every must be ≥ 1 (or None: once per epoch)": self.eval_every is None or self.eval_every >= 1,
            "patience must be ≥ 1 (or None: never stop early)": self.patience is None or self.patience >= 1,
            "eval_batch_size must be ≥ 1": self.eval_batch_size >= 1,
            f"seed must lie in 0..{MAX_SEED} (numpy's range)": 0 <= self.seed <= MAX_SEED,
        }
        broken = [rule for rule, ok in rules.items() if not ok]
        if broken:
            raise ConfigError(f"Impossible TrainConfig: {'; '.join(broken)}.")
        if self.max_steps is not None:
            check_warmup(self, self.max_steps)


_REAL = ("lr", "weight_decay", "xi", "head_lr", "warmup_ratio", "epochs", "max_grad_norm")
_WHOLE = (
    "warmup_steps",
    "max_steps",
    "batch_size",
    "grad_accum",
    "max_length",
    "eval_every",
    "patience",
    "eval_batch_size",
    "seed",
)
_TEXT = ("optimizer", "schedule", "truncation", "metric", "device")
_OPTIONAL = ("head_lr", "warmup_steps", "max_steps", "max_grad_norm", "eval_every", "patience")  # None allowed


def _check_types(cfg: TrainConfig) -> None:
    """A string where a number belongs (lr="1e-4") fails here, naming the field and the fix."""
    for name in _REAL + _WHOLE + _TEXT:
        value = getattr(cfg, name)
        if value is None and name in _OPTIONAL:
            continue
        if name in _TEXT:
            ok, want = isinstance(value, str), "a string"
        elif name in _WHOLE:
            ok, want = isinstance(value, numbers.Integral) and not isinstance(value, bool), "a whole number"
        else:
            ok, want = isinstance(value, numbers.Real) and not isinstance(value, bool), "a number"
        if not ok:
            raise ConfigError(f"{name} must be {want}, got {value!r}; e.g. {name}={getattr(TrainConfig, name)!r}.")


def check_warmup(cfg: TrainConfig, total_steps: int) -> int:
    """Warmup steps of a run of `total_steps`; an error if warmup would outlast the run."""
    warmup = warmup_steps_for(total_steps, cfg.warmup_ratio, cfg.warmup_steps)
    if warmup > total_steps:
        raise ConfigError(
            f"warmup_steps={warmup} is longer than the run ({total_steps} optimizer steps): the rate would never "
            f"reach lr={cfg.lr}. Use warmup_ratio (a fraction of the run) or fewer warmup_steps."
        )
    return warmup


def num_update_steps(batches_per_epoch: int, cfg: TrainConfig) -> int:
    """Optimizer steps of a run: `max_steps` if set, else epochs × updates per epoch."""
    if cfg.max_steps is not None:
        return cfg.max_steps
    return max(1, math.ceil(cfg.epochs * math.ceil(batches_per_epoch / cfg.grad_accum)))


def to_device(batch: dict, device: torch.device) -> dict:
    """Move every tensor of a batch to `device`."""
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


# ------------------------------------------------------------- what fit logs
class WeightStats:
    """L2 norms of a run's weights, split the way weight decay splits them.

    `norm/matrices` (weight matrices and embeddings), `norm/bias_and_norm`
    (biases and LayerNorm gains) and `norm/moved` = ‖θ − θ₀‖, the distance
    travelled from the starting (pretrained) weights: weight decay pulls on
    the first two, fine-tuning shows up in the third (notebook 04).
    """

    def __init__(self, groups: list[dict]):
        named = [(n, p) for g in groups for n, p in zip(g.get("param_names", [""] * len(g["params"])), g["params"])]
        self.kinds = {
            "matrices": [p for n, p in named if not is_bias_or_norm(n)],
            "bias_and_norm": [p for n, p in named if is_bias_or_norm(n)],
        }
        self.params = [p for _, p in named]
        self.start = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def __call__(self) -> dict[str, float]:
        out = {f"norm/{k}": _norm(ps) for k, ps in self.kinds.items() if ps}
        out["norm/moved"] = _norm(torch._foreach_sub([p.detach() for p in self.params], self.start))
        return out


def _norm(tensors: list[torch.Tensor]) -> float:
    return float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm([t.float() for t in tensors]))))


class KeepBest:
    """Evaluate-and-keep-best: the best weights so far (on the CPU) and the early-stopping count."""

    def __init__(self, metric: str, patience: int | None):
        self.metric, self.patience = metric, patience
        self.best: float | None = None
        self.metrics: dict[str, float] = {}
        self.step, self.bad, self.state, self.stop = 0, 0, None, False

    def update(self, model: torch.nn.Module, metrics: dict[str, float], step: int) -> None:
        if self.metric not in metrics:
            raise ConfigError(f"metric={self.metric!r} is not among the evaluated metrics {sorted(metrics)}.")
        value = metrics[self.metric]
        lower = self.metric.endswith("loss")
        if self.best is None or (value < self.best if lower else value > self.best):
            self.best, self.metrics, self.step, self.bad = value, metrics, step, 0
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            self.bad += 1
            self.stop = self.patience is not None and self.bad >= self.patience

    def restore(self, model: torch.nn.Module) -> None:
        """Early stopping keeps the best weights, not the last."""
        if self.state is not None:
            model.load_state_dict(self.state)


@dataclass
class FitResult:
    """What `fit` returns: the per-step history and the best evaluation."""

    history: pd.DataFrame
    best_metrics: dict[str, float]
    best_step: int
    steps: int
    seconds: float
    stopped_early: bool
    diverged: bool = False


# ------------------------------------------------------------------ the loop
def make_accelerator(cfg: TrainConfig) -> Accelerator:
    """The run's `Accelerator`: its precision is the config's (not the launcher's), placement is ours.

    Accelerate keeps one process-wide state; in one process a run whose precision or device differs from
    the last one's (a notebook comparing bf16 with fp32) starts it afresh. Under a launcher all processes
    share it, so every run of one launch must ask for the same precision.
    """
    if parallel.world_size() > 1 and cfg.batch_size % parallel.world_size():
        raise ConfigError(f"batch_size={cfg.batch_size} must be a multiple of the {parallel.world_size()} processes, "
                          "which each take an equal share of every batch.")
    precision = "bf16" if cfg.use_bf16 else "no"
    if parallel.world_size() == 1:
        device = pick_device(cfg.device)
        state = AcceleratorState._shared_state
        if state and (state.get("_mixed_precision") != precision or state.get("device") != device):
            AcceleratorState._reset_state(reset_partial_state=True)
    else:
        device = None
        parallel.rank()  # join the launcher's process group (on CPUs too)
    try:
        accelerator = Accelerator(
            cpu=device.type == "cpu" if device is not None else parallel.on_cpu(),
            mixed_precision=precision,
            # each process takes its share of every batch: the global batch and the steps stay those of one process
            # (Accelerate 1.x ignores a bare `split_batches=True`; it must come through the DataLoaderConfiguration)
            dataloader_config=DataLoaderConfiguration(split_batches=True),
            device_placement=False,  # `fit` moves the model and batches itself (the device the config names)
            gradient_accumulation_plugin=GradientAccumulationPlugin(
                num_steps=cfg.grad_accum, sync_with_dataloader=False),  # accumulation runs on across epochs
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],  # e.g. MLM-only pooler
        )
    except ValueError as err:  # a launched run asking for another precision than the launch's first run
        raise ConfigError(f"{err} (TrainConfig.bf16={cfg.bf16!r}: every run of one launch must share it)") from None
    return accelerator


def _forward_backward(model: torch.nn.Module, batch: dict, accelerator: Accelerator) -> dict:
    """One micro-batch: forward (Accelerate's autocast under bf16), backward of loss / grad_accum."""
    out = model(**batch)
    loss = out.loss
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"The loss became {loss.item()}")
    accelerator.backward(loss)
    return {"loss": loss.item()} | (getattr(out, "logs", None) or {})  # e.g. MLM and NSP parts of the loss


def _update(accelerator, optimizer, scheduler, params: list, cfg: TrainConfig, micro: list[dict],
            before: list[list[torch.Tensor]] | None) -> dict:
    """Clip the accumulated gradient (after backward; the logged norm is pre-clipping), step, and log
    (with `before`, one buffer per parameter, also each group's update size)."""
    grad_norm = accelerator.clip_grad_norm_(params, cfg.max_grad_norm or float("inf"))
    row = {k: sum(m.get(k, 0.0) for m in micro) / cfg.grad_accum for k in micro[0]}
    row = {"loss": row.pop("loss"), "grad_norm": float(grad_norm)} | row
    row |= {f"lr/{name}": lr for name, lr in group_lrs(optimizer).items()}
    if before is not None:
        groups = [[p.detach() for p in g["params"]] for g in optimizer.param_groups]
        for old, now in zip(before, groups):
            if old:
                torch._foreach_copy_(old, now)
    optimizer.step()
    if before is not None:
        squares: dict[str, float] = {}
        for i, (g, old, now) in enumerate(zip(optimizer.param_groups, before, groups)):
            if old:
                torch._foreach_sub_(old, now)  # old - new: the update, in place (no fresh 90 MB per step)
            name = g.get("name", f"group{i}")
            squares[name] = squares.get(name, 0.0) + sum(float(n) ** 2 for n in torch._foreach_norm(old))
        row |= {f"update/{name}": math.sqrt(v) for name, v in squares.items()}
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return row


def _over_processes(row: dict) -> dict:
    """One exchange per step: each logged float is the mean over processes (losses, accuracies; the gradient
    norm and rates agree anyway), the token count their sum; step and epoch are everyone's."""
    rows = parallel.gather(row)
    return {k: sum(r[k] for r in rows) if k == "tokens"
            else sum(r[k] for r in rows) / len(rows) if isinstance(v, float) else v for k, v in row.items()}


def _prepared(accelerator: Accelerator, loader: Iterable[dict]) -> Iterable[dict]:
    """A DataLoader through Accelerate (split across processes); any other iterable as it is, in one process."""
    if isinstance(loader, DataLoader):
        return accelerator.prepare_data_loader(loader)
    if parallel.world_size() > 1:
        raise ConfigError("Several processes split batches through a torch DataLoader; `batches(epoch)` "
                          f"returned a {type(loader).__name__}.")
    return loader


def fit(
    model: torch.nn.Module,
    batches: Callable[[int], Iterable[dict]],
    batches_per_epoch: int,
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None,
    cfg: TrainConfig,
    groups: list[dict] | None = None,
    on_step: Callable[[dict], None] | None = None,
    stop_on_divergence: bool = False,
) -> FitResult:
    """Train `model` in place and leave it holding the best evaluated weights.

    `batches(epoch)` yields dicts of tensors that `model(**batch)` accepts and
    that carry labels (so the output has `.loss`; an output's optional `.logs`
    dict of floats, e.g. MLM and NSP losses, is logged per step too); a torch
    DataLoader is split across processes when several train together.
    `evaluate(model)` returns metrics (prefixed `val_` in the history);
    `cfg.metric` picks the best. `groups` overrides the parameter groups built
    from `cfg` (pitfalls notebook). `on_step(row)` sees each logged row.
    A NaN loss raises `TrainingDiverged`, or with `stop_on_divergence` ends the
    run there (a sweep records it as a failed run).
    """
    accelerator = make_accelerator(cfg)
    device = pick_device(cfg.device) if parallel.world_size() == 1 else accelerator.device
    model.to(device)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # tiny Adam moments turn subnormal and slow CPU steps up to 7x
    elif device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores (Ampere and later)
        torch.backends.cudnn.allow_tf32 = True
    set_seed(cfg.seed)
    groups = groups or param_groups(model, cfg.lr, cfg.weight_decay, cfg.xi, cfg.head_lr, cfg.exclude_bias_and_norm)
    optimizer = build_optimizer(groups, cfg.optimizer)
    total = num_update_steps(batches_per_epoch, cfg)
    check_warmup(cfg, total)
    scheduler = build_scheduler(optimizer, cfg.schedule, total, cfg.warmup_ratio, cfg.warmup_steps)
    trained, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    eval_every = cfg.eval_every or max(1, math.ceil(batches_per_epoch / cfg.grad_accum))
    params = [p for g in groups for p in g["params"]]
    weight_stats, keep = WeightStats(groups), KeepBest(cfg.metric, cfg.patience)
    before = [[torch.empty_like(p) for p in g["params"]] for g in optimizer.param_groups]  # update sizes

    rows: list[dict] = []
    micro: list[dict] = []
    step, epoch, tokens, diverged = 0, 0, 0, False
    start = time.perf_counter()
    bar = tqdm(total=total, desc="train", disable=not cfg.progress or not parallel.is_main(), leave=False)
    trained.train()
    optimizer.zero_grad(set_to_none=True)
    while step < total and not keep.stop and not diverged:
        for batch in _prepared(accelerator, batches(epoch)):
            batch = to_device(batch, device)
            try:
                with accelerator.accumulate(trained):  # no gradient all-reduce until the last micro-batch
                    micro.append(_forward_backward(trained, batch, accelerator))
            except TrainingDiverged as err:
                if not stop_on_divergence:
                    raise TrainingDiverged(
                        f"{err} at step {step} (epoch {epoch}, lr {group_lrs(optimizer)}). Lower the learning rate, "
                        "keep gradient clipping on, or check the inputs for bad labels."
                    ) from None
                diverged = True
                break
            tokens += int(batch["attention_mask"].sum()) if "attention_mask" in batch else 0
            if not accelerator.sync_gradients:
                continue
            row = {"step": step, "epoch": epoch}
            if step == EARLY_STEPS:
                before = None  # update sizes are logged for the first steps only: free the buffers
            row |= _update(accelerator, optimizer, scheduler, params, cfg, micro, before)
            micro, step = [], step + 1
            row |= {"tokens": tokens, "seconds": time.perf_counter() - start}
            if parallel.world_size() > 1:
                row = _over_processes(row)
            if step == 1 or step % NORM_EVERY == 0 or step == total:
                row |= weight_stats()
            if evaluate is not None and (step % eval_every == 0 or step == total):
                metrics = evaluate(model)
                trained.train()
                row |= {f"val_{k}": v for k, v in metrics.items()}
                keep.update(model, metrics, step)
            rows.append(row)
            if on_step is not None:
                on_step(row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}")
            if step >= total or keep.stop:
                break
        epoch += 1
    bar.close()
    accelerator.unwrap_model(trained, keep_fp32_wrapper=False)  # undo Accelerate's autocast around forward
    keep.restore(model)
    seconds = time.perf_counter() - start
    return FitResult(pd.DataFrame(rows), keep.metrics, keep.step, step, seconds, keep.stop, diverged)
