"""`TrainConfig`: how a run trains, as one dataclass whose defaults are the workbook's baseline recipe.

It lives apart from the loop (as Hugging Face keeps `training_args.py` apart
from `trainer.py`): every spec, grid and command line builds one, and an
impossible value fails here, when the config is built, before anything trains.
`lib.trainer.fit` reads it; `lib.optim` turns its rates into parameter groups.
"""

from __future__ import annotations

import importlib.util
import math
import numbers
from dataclasses import dataclass

from lib.device import bf16_supported, check_device, pick_device
from lib.optim import OPTIMIZERS, SCHEDULES, warmup_steps_for

TRUNCATIONS = ("head", "tail", "head+tail")
TRACKERS = ("tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive", "trackio", "swanlab")
"""Accelerate's experiment trackers (`log_with`); TensorBoard is the one the workbook installs and tests."""
MAX_SEED = 2**32 - 1  # numpy's seed range


class ConfigError(ValueError):
    """An impossible configuration, raised when the config is built (before anything trains)."""


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
    adam_beta2: float = 0.999  # the second-moment decay; budget pretraining recipes use 0.98 (RoBERTa, Cramming)
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
    log_with: str | None = None  # "tensorboard" (or another Accelerate tracker): live curves; not part of a run's id

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
            "adam_beta2 must lie in [0, 1)": 0 <= self.adam_beta2 < 1,
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
            f"log_with must be one of {TRACKERS} (or None)": self.log_with is None or self.log_with in TRACKERS,
        }
        broken = [rule for rule, ok in rules.items() if not ok]
        if broken:
            raise ConfigError(f"Impossible TrainConfig: {'; '.join(broken)}.")
        if self.max_steps is not None:
            check_warmup(self, self.max_steps)
        if self.log_with is not None and importlib.util.find_spec(self.log_with) is None:
            raise ConfigError(f"log_with={self.log_with!r}, but {self.log_with} is not installed: pip install "
                              f"{self.log_with}, or use log_with='tensorboard' (installed with the workbook).")


_REAL = ("lr", "weight_decay", "xi", "head_lr", "adam_beta2", "warmup_ratio", "epochs", "max_grad_norm")
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
_TEXT = ("optimizer", "schedule", "truncation", "metric", "device", "log_with")
_BOOL = ("exclude_bias_and_norm", "group_by_length", "progress", "bf16")  # bf16 may also be None ("auto")
_OPTIONAL = ("head_lr", "warmup_steps", "max_steps", "max_grad_norm", "eval_every", "patience", "log_with")  # None ok


def _check_types(cfg: TrainConfig) -> None:
    """A string where a number belongs (lr="1e-4") fails here, naming the field and the fix."""
    for name in _BOOL:
        value = getattr(cfg, name)
        if not isinstance(value, bool) and not (name == "bf16" and value is None):
            raise ConfigError(f"{name} must be True or False, got {value!r}; "
                              f"e.g. {name}={getattr(TrainConfig, name)!r}.")
    for name in _REAL + _WHOLE + _TEXT:
        value = getattr(cfg, name)
        if value is None and name in _OPTIONAL:
            continue
        if name in _REAL and isinstance(value, numbers.Real) and not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r}; "
                              f"e.g. {name}={getattr(TrainConfig, name)!r}.")
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
