"""Sequence classification on top of the task-agnostic `lib.trainer.fit`.

Tokenisation (with head / tail / head+tail truncation), dynamic padding with
length-grouped batches, predictions in the split's order, accuracy / macro-F1 /
confusion matrix (scikit-learn), and `train_classifier`, which ties them
together and returns everything a run stores. The fine-tuning *run* (its spec,
the baseline recipe, the command line) is `lib.finetune`.

Two hooks keep other objectives out of this module: `train_columns` adds
per-example columns to the training batches, and `wrap` wraps the model that
`fit` trains, so another objective can be trained through the same loop
(notebook 08's distillation loss reads a column of soft targets).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import datasets
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding, PreTrainedModel, PreTrainedTokenizerBase, set_seed
from transformers.trainer_pt_utils import LengthGroupedSampler

from lib import parallel
from lib.train_config import TRUNCATIONS, ConfigError, TrainConfig
from lib.trainer import fit, to_device

METRICS = ("accuracy", "macro_f1", "loss")
"""What `evaluate` reports on the validation split: `TrainConfig.metric` must be one of them."""


def encoder(tokenizer: PreTrainedTokenizerBase, max_length: int, truncation: str = "head") -> Callable[[dict], dict]:
    """batch {"text": [...], ["text_pair": [...]]} → token ids, cut as `tokenize` says (training and `lib.predict`
    must cut a long text the same way)."""
    if truncation not in TRUNCATIONS:
        raise ConfigError(f"Unknown truncation {truncation!r}; choose one of {TRUNCATIONS}.")

    def encode(batch: dict) -> dict:
        if "text_pair" in batch:  # sentence pairs: trim the longer text first (truncation="head" only)
            return tokenizer(batch["text"], batch["text_pair"], truncation="longest_first", max_length=max_length)
        if truncation == "head":
            return tokenizer(batch["text"], truncation=True, max_length=max_length)
        enc = tokenizer(batch["text"], truncation=False)
        budget = max_length - 2  # room left beside [CLS] and [SEP]
        head = budget // 4 if truncation == "head+tail" else 0
        for k in list(enc.keys()):
            enc[k] = [v if len(v) <= max_length else v[: 1 + head] + v[len(v) - 1 - (budget - head) :] for v in enc[k]]
        return enc

    return encode


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
    if truncation != "head" and "text_pair" in dsd["train"].column_names:
        raise ConfigError(f"truncation={truncation!r} is for single texts; sentence pairs use 'head' (longest first).")
    datasets.disable_progress_bars()  # a second of work; the training bar is the one to watch
    key = f"{tokenizer.name_or_path}|{len(tokenizer)}|{max_length}|{truncation}"
    encode = encoder(tokenizer, max_length, truncation)
    out = {}
    for split, ds in dsd.items():
        fingerprint = hashlib.sha1(f"{ds._fingerprint}|{key}".encode()).hexdigest()[:16]
        drop = [c for c in ds.column_names if c != "label"]
        out[split] = ds.map(encode, batched=True, remove_columns=drop, new_fingerprint=fingerprint)
    return datasets.DatasetDict(out).rename_column("label", "labels")


def make_loader(
    ds: datasets.Dataset, tokenizer, batch_size: int, order: torch.Generator | None, group_by_length: bool
) -> DataLoader:
    """Dynamic padding; for training (`order` given), length-grouped shuffled batches (less padding).

    `order` is the run's one shuffling generator: each epoch draws its order from where the previous
    left off, so epoch 1 of seed s is not epoch 0 of seed s + 1 (as a seed + epoch scheme would make it).

    Every column of `ds` goes into the batches (token ids, labels and any
    per-example training column a caller added).
    """
    collate = DataCollatorWithPadding(tokenizer)
    rows = tensor_rows(ds)
    pin = torch.cuda.is_available()  # page-locked batches copy to a GPU faster
    if order is None:
        return DataLoader(rows, batch_size=batch_size, collate_fn=collate, pin_memory=pin)
    if group_by_length:
        sampler = LengthGroupedSampler(batch_size, lengths=[len(r["input_ids"]) for r in rows], generator=order)
        return DataLoader(rows, batch_size=batch_size, sampler=sampler, collate_fn=collate, pin_memory=pin)
    return DataLoader(rows, batch_size=batch_size, shuffle=True, generator=order, collate_fn=collate, pin_memory=pin)


def tensor_rows(ds: datasets.Dataset) -> list[dict[str, torch.Tensor]]:
    """Every example of `ds` as a dict of tensors, formatted in one pass: a DataLoader indexing the Arrow data set
    formats each example again on every access, ~15% of a small model's fine-tuning step on a CPU. The same
    tensors, values and dtypes, as the per-example access gives, so batches (and results) do not change."""
    columns = ds.with_format("torch", columns=list(ds.column_names))[:]
    return [{k: v[i] for k, v in columns.items()} for i in range(len(ds))]


def epoch_loaders(ds: datasets.Dataset, tokenizer, cfg: TrainConfig) -> Callable[[int], DataLoader]:
    """epoch → that epoch's training loader. One shuffling generator, seeded once per run, serves every
    epoch, so seeds share no batch order (with `seed + epoch` seeds, epoch 1 of seed s was epoch 0 of s + 1)."""
    order = torch.Generator().manual_seed(cfg.seed)

    def loader(epoch: int) -> DataLoader:
        return make_loader(ds, tokenizer, cfg.batch_size, order, cfg.group_by_length)

    return loader


@torch.no_grad()
def predict(
    model: PreTrainedModel,
    ds: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int = 128,
    bf16: bool = False,
) -> tuple[np.ndarray, np.ndarray, float]:
    """(logits, labels, mean loss) over a tokenized split, in evaluation mode, in the split's order.

    Batches are cut from length-sorted examples, so each pads only to
    similar lengths: about half the padded tokens, and half the time on a CPU.
    """
    model.eval()
    device = next(model.parameters()).device
    order = np.argsort([len(x) for x in ds["input_ids"]], kind="stable")
    mine = parallel.share(order)  # several processes: each predicts every N-th example, then all gather
    logits, labels, losses = [], [], []
    for batch in make_loader(ds.select(mine), tokenizer, batch_size, None, False):
        batch = to_device(batch, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(**batch)
        logits.append(out.logits.float().cpu())
        labels.append(batch["labels"].cpu())
        losses.append(out.loss.item() * len(batch["labels"]))
    mine_logits = torch.cat(logits).numpy() if logits else np.zeros((0, model.config.num_labels), np.float32)
    mine_labels = torch.cat(labels).numpy() if labels else np.zeros(0, np.int64)
    pieces = parallel.gather((mine, mine_logits, mine_labels, losses))
    back = np.argsort(np.concatenate([p[0] for p in pieces]))  # undo the sort (and the split)
    y = np.concatenate([p[2] for p in pieces])[back]
    all_losses = [loss for p in pieces for loss in p[3]]
    return np.concatenate([p[1] for p in pieces])[back], y, float(sum(all_losses) / max(1, len(y)))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 (every class counts the same, whatever its size)."""
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


@dataclass
class TrainResult:
    """What a fine-tuning run returns (and `lib.store` stores)."""

    history: pd.DataFrame
    metrics: dict[str, float]
    confusion: np.ndarray
    predictions: pd.DataFrame
    label_names: list[str]
    config: dict = field(default_factory=dict)


def train_classifier(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    dsd: datasets.DatasetDict,
    cfg: TrainConfig | None = None,
    groups: list[dict] | None = None,
    train_columns: dict[str, np.ndarray] | None = None,
    wrap: Callable[[PreTrainedModel], torch.nn.Module] | None = None,
    stop_on_divergence: bool = False,
    hooks: list | None = None,
) -> TrainResult:
    """Fine-tune a sequence classifier on `dsd` (train / validation / test).

    Picks the best weights on validation, then reports test accuracy, macro-F1,
    the confusion matrix and every test prediction. `train_columns` (one row
    per training example) ride along in the training batches, and `wrap(model)`
    is what `fit` trains, so another objective can read them. `hooks`: `fit`'s probes (default: the standard ones).
    """
    cfg = cfg or TrainConfig()
    if cfg.metric not in METRICS:
        raise ConfigError(f"metric={cfg.metric!r} is not a classification metric; choose one of {METRICS}.")
    names = list(dsd["train"].features["label"].names)
    if model.config.num_labels != len(names):
        raise ValueError(
            f"The model has {model.config.num_labels} outputs but the data has {len(names)} classes {names}."
        )
    tok = tokenize(dsd, tokenizer, cfg.max_length, cfg.truncation)
    for column, values in (train_columns or {}).items():
        if len(values) != len(tok["train"]):
            raise ValueError(f"{len(values)} rows of {column!r} for {len(tok['train'])} training examples.")
        tok["train"] = tok["train"].add_column(column, np.asarray(values, dtype=np.float32).tolist())

    train_loader = epoch_loaders(tok["train"], tokenizer, cfg)

    def evaluate(_: torch.nn.Module) -> dict[str, float]:
        logits, y, loss = predict(model, tok["validation"], tokenizer, cfg.eval_batch_size, cfg.use_bf16)
        return classification_metrics(y, logits.argmax(-1)) | {"loss": loss}

    set_seed(cfg.seed)
    n_batches = math.ceil(len(tok["train"]) / cfg.batch_size)
    trained = wrap(model) if wrap is not None else model
    fitted = fit(trained, train_loader, n_batches, evaluate, cfg, groups=groups, stop_on_divergence=stop_on_divergence,
                 hooks=hooks)

    test_start = time.perf_counter()
    logits, y, test_loss = predict(model, tok["test"], tokenizer, cfg.eval_batch_size, cfg.use_bf16)
    pred = logits.argmax(-1)
    probs = torch.softmax(torch.from_numpy(logits), -1).numpy()
    metrics = {f"test_{k}": v for k, v in classification_metrics(y, pred).items()}
    metrics |= {f"best_val_{k}": v for k, v in fitted.best_metrics.items()}
    metrics |= {
        "test_loss": test_loss,
        "test_majority": float(np.bincount(y, minlength=len(names)).max() / max(1, len(y))),  # at or below: failed
        "best_step": fitted.best_step,
        "steps": fitted.steps,
        "stopped_early": fitted.stopped_early,
        "precision": "bf16" if cfg.use_bf16 else "fp32",  # what this machine ran; the request is in the config
        "train_seconds": round(fitted.seconds, 2),
        "test_seconds": round(time.perf_counter() - test_start, 2),
        "train_tokens_per_s": round(float(fitted.history["tokens"].iloc[-1]) / fitted.seconds, 1)
        if len(fitted.history)
        else 0.0,
    }
    if fitted.diverged:
        metrics["diverged"] = True
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
