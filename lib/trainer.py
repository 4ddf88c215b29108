"""The training loop every run uses, for fine-tuning and pretraining alike.

`fit` knows no task (minGPT style): it takes a model whose forward returns
`.loss`, a function giving each epoch's batches, and an `evaluate` function,
and owns everything about *how* to optimise: parameter groups and schedule
(`lib.optim`), gradient accumulation, clipping after backward, bf16 autocast,
periodic evaluation, early stopping that restores the best weights, a per-step
log, and a clear error when the loss turns NaN. Tasks live elsewhere:
classification in `lib.classify`, MLM + NSP in `lib.mlm`; the configuration
in `lib.train_config`; what is measured beside the loss (per-group rates,
update sizes, weight norms) in `lib.probes`, which `fit` calls at fixed
points of each step.

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
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import pandas as pd
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs, GradientAccumulationPlugin
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import set_seed

from lib import parallel, probes
from lib.device import pick_device
from lib.optim import build_optimizer, build_scheduler, group_lrs, param_groups
from lib.paths import TENSORBOARD_DIR
from lib.train_config import ConfigError, TrainConfig, check_warmup, num_update_steps


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def to_device(batch: dict, device: torch.device) -> dict:
    """Move every tensor of a batch to `device`."""
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


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

    def evaluate(self, model: torch.nn.Module, evaluate: Callable[[torch.nn.Module], dict[str, float]],
                 step: int) -> dict[str, float]:
        """Evaluate now, keep the weights if they are the best so far; the metrics as `val_*` log columns."""
        metrics = evaluate(model)
        self.update(model, metrics, step)
        return {f"val_{k}": v for k, v in metrics.items()}

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
            log_with=cfg.log_with, project_dir=str(TENSORBOARD_DIR) if cfg.log_with else None,
        )
    except ValueError as err:  # a launched run asking for another precision than the launch's first run
        raise ConfigError(f"{err} (TrainConfig.bf16={cfg.bf16!r}: every run of one launch must share it)") from None
    return accelerator


def _hparams(cfg: TrainConfig) -> dict:
    """The config as a tracker's hyperparameters (scalars and strings only: TensorBoard takes no None)."""
    return {k: v for k, v in asdict(cfg).items() if isinstance(v, (int, float, str, bool))}


def _place(model: torch.nn.Module, cfg: TrainConfig, accelerator: Accelerator) -> torch.device:
    """Move the model to the run's device, with that device's fast-math settings."""
    device = pick_device(cfg.device) if parallel.world_size() == 1 else accelerator.device
    model.to(device)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # tiny Adam moments turn subnormal and slow CPU steps up to 7x
    elif device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores (Ampere and later)
        torch.backends.cudnn.allow_tf32 = True
    return device


def _forward_backward(model: torch.nn.Module, batch: dict, accelerator: Accelerator) -> dict:
    """One micro-batch: forward (Accelerate's autocast under bf16), backward of loss / grad_accum."""
    out = model(**batch)
    loss = out.loss
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"The loss became {loss.item()}")
    accelerator.backward(loss)
    return {"loss": loss.item()} | (getattr(out, "logs", None) or {})  # e.g. MLM and NSP parts of the loss


def _update(accelerator, optimizer, scheduler, params: list, cfg: TrainConfig, micro: list[dict],
            hooks: list[probes.Probe]) -> dict:
    """Clip the accumulated gradient (after backward; the logged norm is pre-clipping), step, and log:
    the mean loss of the micro-batches, the gradient norm, and what the probes measure around the step."""
    grad_norm = accelerator.clip_grad_norm_(params, cfg.max_grad_norm or float("inf"))
    row = {k: sum(m.get(k, 0.0) for m in micro) / cfg.grad_accum for k in micro[0]}
    row = {"loss": row.pop("loss"), "grad_norm": float(grad_norm)} | row
    for probe in hooks:
        probe.before_update(row)
    optimizer.step()
    for probe in hooks:
        probe.after_update(row)
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


def _diverged(err: TrainingDiverged, step: int, epoch: int, optimizer) -> TrainingDiverged:
    return TrainingDiverged(f"{err} at step {step} (epoch {epoch}, lr {group_lrs(optimizer)}). Lower the learning "
                            "rate, keep gradient clipping on, or check the inputs for bad labels.")


def fit(
    model: torch.nn.Module,
    batches: Callable[[int], Iterable[dict]],
    batches_per_epoch: int,
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None,
    cfg: TrainConfig,
    groups: list[dict] | None = None,
    on_step: Callable[[dict], None] | None = None,
    stop_on_divergence: bool = False,
    hooks: list[probes.Probe] | None = None,
) -> FitResult:
    """Train `model` in place and leave it holding the best evaluated weights.

    `batches(epoch)` yields dicts of tensors that `model(**batch)` accepts and that carry labels (so the
    output has `.loss`; an output's optional `.logs` dict of floats, e.g. MLM and NSP losses, is logged per
    step too); a torch DataLoader is split across processes when several train together. `evaluate(model)`
    returns metrics (prefixed `val_` in the history); `cfg.metric` picks the best. `groups` overrides the
    parameter groups built from `cfg` (pitfalls notebook); `hooks` the probes (default `probes.standard`,
    [] for none). `on_step(row)` sees each logged row. A NaN loss raises `TrainingDiverged`, or with
    `stop_on_divergence` ends the run there (a sweep records it as a failed run).
    """
    accelerator = make_accelerator(cfg)
    device = _place(model, cfg, accelerator)
    set_seed(cfg.seed)
    groups = groups or param_groups(model, cfg.lr, cfg.weight_decay, cfg.xi, cfg.head_lr, cfg.exclude_bias_and_norm)
    total = num_update_steps(batches_per_epoch, cfg)
    check_warmup(cfg, total)
    optimizer = build_optimizer(groups, cfg.optimizer, betas=(0.9, cfg.adam_beta2))
    scheduler = build_scheduler(optimizer, cfg.schedule, total, cfg.warmup_ratio, cfg.warmup_steps)
    trained, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    hooks = probes.standard(optimizer, groups, total) if hooks is None else hooks
    eval_every = cfg.eval_every or max(1, math.ceil(batches_per_epoch / cfg.grad_accum))
    params, keep = [p for g in groups for p in g["params"]], KeepBest(cfg.metric, cfg.patience)
    rows, micro, step, epoch, tokens, diverged = [], [], 0, 0, 0, False
    start = time.perf_counter()
    bar = tqdm(total=total, desc="train", disable=not cfg.progress or not parallel.is_main(), leave=False)
    if cfg.log_with:  # live curves: tensorboard --logdir tensorboard/
        accelerator.init_trackers(f"live/{time.strftime('%Y%m%d-%H%M%S')}-seed{cfg.seed}", config=_hparams(cfg))
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
                    raise _diverged(err, step, epoch, optimizer) from None
                diverged = True
                break
            tokens += int(batch["attention_mask"].sum()) if "attention_mask" in batch else 0
            if not accelerator.sync_gradients:
                continue
            row = {"step": step, "epoch": epoch} | _update(accelerator, optimizer, scheduler, params, cfg, micro, hooks)
            micro, step = [], step + 1
            row |= {"tokens": tokens, "seconds": time.perf_counter() - start}
            row = _over_processes(row) if parallel.world_size() > 1 else row
            for probe in hooks:
                probe.after_step(step, row)
            if evaluate is not None and (step % eval_every == 0 or step == total):
                row |= keep.evaluate(model, evaluate, step)
                trained.train()
            rows.append(row)
            if cfg.log_with:
                accelerator.log({k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "step"}, step)
            if on_step is not None:
                on_step(row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}")
            if step >= total or keep.stop:
                break
        epoch += 1
    bar.close()
    if cfg.log_with:
        accelerator.end_training()
    accelerator.unwrap_model(trained, keep_fp32_wrapper=False)  # undo Accelerate's autocast around forward
    keep.restore(model)
    return FitResult(pd.DataFrame(rows), keep.metrics, keep.step, step, time.perf_counter() - start, keep.stop,
                     diverged)
