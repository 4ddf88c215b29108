"""Our groups and schedule, handed to transformers.Trainer, give the same
per-group learning rate at every step as our own trainer."""

from __future__ import annotations

import math

import datasets
import pytest
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from lib.optim import build_optimizer, build_scheduler, param_groups
from lib.train_config import TrainConfig
from lib.trainer import fit

from .conftest import tiny_config


class LRRecorder(TrainerCallback):
    """Reads each group's rate before the optimizer step, as our trainer logs it."""

    def __init__(self):
        self.rows = []

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        self.rows.append({g["name"]: g["lr"] for g in optimizer.param_groups})


def test_per_group_lr_sequence_matches_transformers_trainer(tmp_path):
    from transformers import BertForSequenceClassification

    steps, batch = 20, 4
    cfg = TrainConfig(
        lr=1e-3,
        xi=0.8,
        head_lr=5e-3,
        warmup_ratio=0.2,
        schedule="linear",
        max_steps=steps,
        batch_size=batch,
        progress=False,
        eval_every=None,
        patience=None,
    )
    g = torch.Generator().manual_seed(0)
    rows = [
        {"input_ids": torch.randint(5, 100, (10,), generator=g).tolist(), "labels": int(i % 2)}
        for i in range(steps * batch)
    ]

    torch.manual_seed(0)
    ours_model = BertForSequenceClassification(tiny_config(layers=4))

    def batches(epoch):
        for i in range(0, len(rows), batch):
            chunk = rows[i : i + batch]
            yield {
                "input_ids": torch.tensor([r["input_ids"] for r in chunk]),
                "labels": torch.tensor([r["labels"] for r in chunk]),
            }

    ours = fit(ours_model, batches, math.ceil(len(rows) / batch), None, cfg).history

    torch.manual_seed(0)
    hf_model = BertForSequenceClassification(tiny_config(layers=4))
    groups = param_groups(hf_model, cfg.lr, cfg.weight_decay, cfg.xi, cfg.head_lr)
    opt = build_optimizer(groups)
    sched = build_scheduler(opt, cfg.schedule, steps, cfg.warmup_ratio)
    recorder = LRRecorder()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=steps,
        per_device_train_batch_size=batch,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    Trainer(
        model=hf_model,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        optimizers=(opt, sched),
        callbacks=[recorder],
    ).train()

    assert len(recorder.rows) == steps
    for step, theirs in enumerate(recorder.rows):
        for name, lr in theirs.items():
            assert ours.loc[step, f"lr/{name}"] == pytest.approx(lr, rel=1e-12, abs=1e-15), (step, name)
    assert ours["lr/head"].max() == pytest.approx(5e-3)
    assert ours["lr/embeddings"].max() == pytest.approx(1e-3 * 0.8**4)
