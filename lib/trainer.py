"""The training loop every notebook uses, for fine-tuning and pretraining alike.

`fit` is model-agnostic (minGPT style): it takes a model whose forward returns
`.loss`, a function giving each epoch's batches, and an `evaluate` function,
and owns everything about *how* to optimise: parameter groups and schedule
(`lib.optim`), gradient accumulation, clipping after backward, bf16 autocast,
periodic evaluation, early stopping that restores the best weights, a per-step
log, and a clear error when the loss turns NaN.

`finetune` wraps it for sequence classification: tokenisation, dynamic padding
with length-grouped batches, accuracy / macro-F1 / confusion matrix
(scikit-learn) and test-set predictions.

Several GPUs: this loop is single-process. The same model, groups and schedule
run data-parallel through `accelerate launch` (wrap model, optimizer and
loaders with `Accelerator.prepare`, call `accelerator.backward(loss)`) or
`torchrun` with `DistributedDataParallel` and a `DistributedSampler`; the
per-device batch then multiplies by the number of processes, so keep
`batch_size × grad_accum × processes` equal to the single-device batch.
"""
from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import datasets
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding, PreTrainedModel, PreTrainedTokenizerBase, set_seed
from transformers.trainer_pt_utils import LengthGroupedSampler

from lib.optim import build_optimizer, build_scheduler, group_lrs, is_bias_or_norm, param_groups

NORM_EVERY = 8
"""Log weight norms after the first optimizer step, every this many, and after the last: ~0.1 s each for MiniLM on this CPU."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


TRUNCATIONS = ("head", "tail", "head+tail")


@dataclass
class TrainConfig:
    """Fine-tuning hyperparameters; the defaults are the workbook's baseline
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
    bf16: bool | None = None  # None: on where the hardware has native bf16 (see `bf16_supported`)
    device: str = "auto"
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.bf16 is None:  # resolved here, so a run's stored config says which precision it used
            self.bf16 = bf16_supported(pick_device(self.device))
        checks = {
            "batch_size ≥ 1": self.batch_size >= 1,
            "grad_accum ≥ 1": self.grad_accum >= 1,
            "epochs > 0": self.epochs > 0,
            "max_steps ≥ 1 (or None)": self.max_steps is None or self.max_steps >= 1,
            "max_grad_norm > 0 (or None)": self.max_grad_norm is None or self.max_grad_norm > 0,
            "max_length ≥ 8": self.max_length >= 8,
            f"truncation in {TRUNCATIONS}": self.truncation in TRUNCATIONS,
            "eval_every ≥ 1 (or None)": self.eval_every is None or self.eval_every >= 1,
        }
        broken = [k for k, ok in checks.items() if not ok]
        if broken:
            raise ValueError(f"Impossible TrainConfig: need {', '.join(broken)}; got {self}.")


def pick_device(device: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU, unless a device is named."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def bf16_supported(device: torch.device) -> bool:
    """Native bf16 matmuls: CUDA with bf16, or a CPU with AMX / AVX512-BF16.

    Measured on this workbook's 2-core AMX CPU (results/benchmarks.md): bf16
    autocast fine-tunes MiniLM 1.2-1.7x faster at the same accuracy
    (+0.0 ± 0.2 points over 3 seeds); CPUs without native bf16 only emulate it.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
        except AttributeError:  # private helpers; absent in other torch versions
            return False
    return False


def num_update_steps(batches_per_epoch: int, cfg: TrainConfig) -> int:
    """Optimizer steps of a run: `max_steps` if set, else epochs × updates per epoch."""
    if cfg.max_steps is not None:
        return cfg.max_steps
    return max(1, math.ceil(cfg.epochs * math.ceil(batches_per_epoch / cfg.grad_accum)))


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


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


def _better(metric: str, new: float, best: float | None) -> bool:
    if best is None:
        return True
    return new < best if metric.endswith("loss") else new > best


@dataclass
class FitResult:
    """What `fit` returns: the per-step history and the best evaluation."""

    history: pd.DataFrame
    best_metrics: dict[str, float]
    best_step: int
    steps: int
    seconds: float
    stopped_early: bool


def fit(
    model: torch.nn.Module,
    batches: Callable[[int], Iterable[dict]],
    batches_per_epoch: int,
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None,
    cfg: TrainConfig,
    groups: list[dict] | None = None,
    on_step: Callable[[dict], None] | None = None,
) -> FitResult:
    """Train `model` in place and leave it holding the best evaluated weights.

    `batches(epoch)` yields dicts of tensors that `model(**batch)` accepts and
    that carry labels (so the output has `.loss`; an output's optional `.logs`
    dict of floats, e.g. MLM and NSP losses, is logged per step too). `evaluate(model)` returns
    metrics (prefixed `val_` in the history); `cfg.metric` picks the best.
    `groups` overrides the parameter groups built from `cfg` (pitfalls notebook).
    `on_step(row)` sees each logged row (the single callback).
    """
    device = pick_device(cfg.device)
    model.to(device)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # tiny Adam moments turn subnormal and slow CPU steps up to 7x
    set_seed(cfg.seed)
    if groups is None:
        groups = param_groups(model, cfg.lr, cfg.weight_decay, cfg.xi, cfg.head_lr, cfg.exclude_bias_and_norm)
    optimizer = build_optimizer(groups, cfg.optimizer)
    total = num_update_steps(batches_per_epoch, cfg)
    scheduler = build_scheduler(optimizer, cfg.schedule, total, cfg.warmup_ratio, cfg.warmup_steps)
    eval_every = cfg.eval_every or max(1, math.ceil(batches_per_epoch / cfg.grad_accum))
    params = [p for g in groups for p in g["params"]]
    weight_stats = WeightStats(groups)

    rows: list[dict] = []
    best, best_state, best_step, bad_evals = None, None, 0, 0
    best_metrics: dict[str, float] = {}
    step, epoch, micro, stopped = 0, 0, 0, False
    loss_sum, tokens, extra = 0.0, 0, {}
    start = time.perf_counter()
    bar = tqdm(total=total, desc="train", disable=not cfg.progress, leave=False)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    while step < total and not stopped:
        for batch in batches(epoch):
            batch = _to(batch, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                out = model(**batch)
            loss = out.loss
            for k, v in (getattr(out, "logs", None) or {}).items():  # e.g. MLM and NSP parts of the loss
                extra[k] = extra.get(k, 0.0) + v / cfg.grad_accum
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"The loss became {loss.item()} at step {step} (epoch {epoch}, lr {group_lrs(optimizer)}). "
                    "Lower the learning rate, keep gradient clipping on, or check the inputs for bad labels."
                )
            (loss / cfg.grad_accum).backward()
            loss_sum += loss.item()
            if "attention_mask" in batch:
                tokens += int(batch["attention_mask"].sum())
            micro += 1
            if micro % cfg.grad_accum:
                continue
            # Clip after backward, on the accumulated gradient; the returned norm is pre-clipping.
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm or float("inf"))
            row = {"step": step, "epoch": epoch, "loss": loss_sum / cfg.grad_accum, "grad_norm": float(grad_norm)} | extra
            row |= {f"lr/{name}": lr for name, lr in group_lrs(optimizer).items()}
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            loss_sum, extra = 0.0, {}
            row["tokens"], row["seconds"] = tokens, time.perf_counter() - start
            if step == 1 or step % NORM_EVERY == 0 or step == total:
                row |= weight_stats()
            if evaluate is not None and (step % eval_every == 0 or step == total):
                metrics = evaluate(model)
                model.train()
                row |= {f"val_{k}": v for k, v in metrics.items()}
                if _better(cfg.metric, metrics[cfg.metric], best):
                    best, best_step, bad_evals, best_metrics = metrics[cfg.metric], step, 0, metrics
                    best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                else:
                    bad_evals += 1
                    stopped = cfg.patience is not None and bad_evals >= cfg.patience
            rows.append(row)
            if on_step is not None:
                on_step(row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}")
            if step >= total or stopped:
                break
        epoch += 1
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)  # early stopping keeps the best weights, not the last
    return FitResult(pd.DataFrame(rows), best_metrics, best_step, step, time.perf_counter() - start, stopped)


# ----------------------------------------------------------------- fine-tuning
def tokenize(
    dsd: datasets.DatasetDict, tokenizer: PreTrainedTokenizerBase, max_length: int, truncation: str = "head"
) -> datasets.DatasetDict:
    """Token ids without padding (the collator pads each batch to its longest).

    Texts longer than `max_length` tokens keep their first tokens ("head"),
    their last ("tail"), or the first quarter and the last three quarters of
    the budget ("head+tail", Sun et al. 2019's 128 + 382 of 510); [CLS] and
    [SEP] are always kept.

    Each split gets an explicit fingerprint: letting `datasets` hash the
    tokenizer for its cache key costs about 1 s per split, more than the
    tokenisation itself, and these in-memory splits are never cached anyway.
    """
    if truncation not in TRUNCATIONS:
        raise ValueError(f"Unknown truncation {truncation!r}; choose one of {TRUNCATIONS}.")
    datasets.disable_progress_bars()  # a second of work; the training bar is the one to watch
    key = f"{tokenizer.name_or_path}|{len(tokenizer)}|{max_length}|{truncation}"

    def encode(batch: dict) -> dict:
        if truncation == "head":
            return tokenizer(batch["text"], truncation=True, max_length=max_length)
        enc = tokenizer(batch["text"], truncation=False)
        budget = max_length - 2  # room left beside [CLS] and [SEP]
        head = budget // 4 if truncation == "head+tail" else 0
        for k in list(enc.keys()):
            enc[k] = [v if len(v) <= max_length else v[: 1 + head] + v[len(v) - 1 - (budget - head) :] for v in enc[k]]
        return enc

    out = {}
    for split, ds in dsd.items():
        fingerprint = hashlib.sha1(f"{ds._fingerprint}|{key}".encode()).hexdigest()[:16]
        out[split] = ds.map(encode, batched=True, remove_columns=["text"], new_fingerprint=fingerprint)
    return datasets.DatasetDict(out).rename_column("label", "labels")


def make_loader(ds: datasets.Dataset, tokenizer, batch_size: int, shuffle_seed: int | None, group_by_length: bool) -> DataLoader:
    """Dynamic padding; for training, length-grouped shuffled batches (less padding)."""
    collate = DataCollatorWithPadding(tokenizer)
    cols = [c for c in ("input_ids", "token_type_ids", "attention_mask", "labels", "teacher_logits") if c in ds.column_names]
    ds = ds.with_format("torch", columns=cols)
    if shuffle_seed is None:
        return DataLoader(ds, batch_size=batch_size, collate_fn=collate)
    gen = torch.Generator().manual_seed(shuffle_seed)
    if group_by_length:
        sampler = LengthGroupedSampler(batch_size, lengths=[len(x) for x in ds["input_ids"]], generator=gen)
        return DataLoader(ds, batch_size=batch_size, sampler=sampler, collate_fn=collate)
    return DataLoader(ds, batch_size=batch_size, shuffle=True, generator=gen, collate_fn=collate)


@torch.no_grad()
def predict(
    model: PreTrainedModel, ds: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, batch_size: int = 128, bf16: bool = False
) -> tuple[np.ndarray, np.ndarray, float]:
    """(logits, labels, mean loss) over a tokenized split, in evaluation mode, in the split's order.

    Batches are cut from length-sorted examples, so each pads only to
    similar lengths: about half the padded tokens, and half the time on a CPU.
    """
    model.eval()
    device = next(model.parameters()).device
    order = np.argsort([len(x) for x in ds["input_ids"]], kind="stable")
    logits, labels, losses = [], [], []
    for batch in make_loader(ds.select(order), tokenizer, batch_size, None, False):
        batch = _to(batch, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(**batch)
        logits.append(out.logits.float().cpu())
        labels.append(batch["labels"].cpu())
        losses.append(out.loss.item() * len(batch["labels"]))
    back = np.argsort(order)  # undo the sort
    y = torch.cat(labels).numpy()[back]
    return torch.cat(logits).numpy()[back], y, float(sum(losses) / max(1, len(y)))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 (every class counts the same, whatever its size)."""
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


@dataclass
class TrainResult:
    """What a fine-tuning run returns (and `lib.results` stores)."""

    history: pd.DataFrame
    metrics: dict[str, float]
    confusion: np.ndarray
    predictions: pd.DataFrame
    label_names: list[str]
    config: dict = field(default_factory=dict)


def finetune(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    dsd: datasets.DatasetDict,
    cfg: TrainConfig | None = None,
    groups: list[dict] | None = None,
    teacher_logits: np.ndarray | None = None,
    temperature: float = 2.0,
    alpha: float = 0.5,
) -> TrainResult:
    """Fine-tune a sequence classifier on `dsd` (train / validation / test).

    Picks the best weights on validation, then reports test accuracy, macro-F1,
    the confusion matrix and every test prediction. With `teacher_logits` (one
    row per training example) the loss is knowledge distillation instead of
    plain cross-entropy (`lib.distill.DistillationLoss`, notebook 08).
    """
    cfg = cfg or TrainConfig()
    names = list(dsd["train"].features["label"].names)
    if model.config.num_labels != len(names):
        raise ValueError(f"The model has {model.config.num_labels} outputs but the data has {len(names)} classes {names}.")
    tok = tokenize(dsd, tokenizer, cfg.max_length, cfg.truncation)
    trained = model
    if teacher_logits is not None:
        from lib.distill import DistillationLoss

        if len(teacher_logits) != len(tok["train"]):
            raise ValueError(f"{len(teacher_logits)} rows of teacher logits for {len(tok['train'])} training examples.")
        tok["train"] = tok["train"].add_column("teacher_logits", np.asarray(teacher_logits, dtype=np.float32).tolist())
        trained = DistillationLoss(model, temperature, alpha)
    train_loader = lambda epoch: make_loader(tok["train"], tokenizer, cfg.batch_size, cfg.seed + epoch, cfg.group_by_length)

    def evaluate(m: PreTrainedModel) -> dict[str, float]:
        logits, y, loss = predict(m, tok["validation"], tokenizer, cfg.eval_batch_size, cfg.bf16)
        return classification_metrics(y, logits.argmax(-1)) | {"loss": loss}

    set_seed(cfg.seed)
    n_batches = math.ceil(len(tok["train"]) / cfg.batch_size)
    fitted = fit(trained, train_loader, n_batches, lambda _: evaluate(model), cfg, groups=groups)

    test_start = time.perf_counter()
    logits, y, test_loss = predict(model, tok["test"], tokenizer, cfg.eval_batch_size, cfg.bf16)
    pred = logits.argmax(-1)
    probs = torch.softmax(torch.from_numpy(logits), -1).numpy()
    metrics = {f"test_{k}": v for k, v in classification_metrics(y, pred).items()}
    metrics |= {f"best_val_{k}": v for k, v in fitted.best_metrics.items()}
    metrics |= {
        "test_loss": test_loss,
        "test_majority": float(np.bincount(y, minlength=len(names)).max() / max(1, len(y))),  # a run at or below it failed
        "best_step": fitted.best_step,
        "steps": fitted.steps,
        "stopped_early": fitted.stopped_early,
        "train_seconds": round(fitted.seconds, 2),
        "test_seconds": round(time.perf_counter() - test_start, 2),
        "train_tokens_per_s": round(float(fitted.history["tokens"].iloc[-1]) / fitted.seconds, 1),
    }
    predictions = pd.DataFrame(
        {
            "text": list(dsd["test"]["text"]),
            "label": [names[i] for i in y],
            "pred": [names[i] for i in pred],
            "confidence": probs.max(-1).round(4),
        }
    )
    cm = confusion_matrix(y, pred, labels=list(range(len(names))))
    return TrainResult(fitted.history, metrics, cm, predictions, names, asdict(cfg))
