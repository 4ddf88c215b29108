"""`fit` on Accelerate: one process trains exactly as a plain PyTorch loop; two CPU processes (gloo) train one run
with the same global batch, steps and loss, and store it once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import BertForSequenceClassification

from lib.optim import build_optimizer, build_scheduler, param_groups
from lib.paths import ROOT
from lib.store import history_path
from lib.train_config import ConfigError, TrainConfig
from lib.trainer import fit

from .conftest import tiny_config

ACCELERATE = Path(sys.executable).with_name("accelerate")
DATA = ["--data", "data/amazon_review_sentences.csv", "--label-column", "sentiment"]


def _batches(n: int, size: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(5, 100, (size, 12), generator=g), "attention_mask": torch.ones(size, 12,
             dtype=torch.long), "labels": torch.randint(0, 2, (size,), generator=g)} for _ in range(n)]


def test_one_process_trains_bit_for_bit_like_a_plain_pytorch_loop():
    """Accelerate adds nothing in one process: the same groups, optimizer, schedule, accumulation and
    clipping written by hand reach exactly the same weights (so stored runs replay and recompute unchanged)."""
    cfg = TrainConfig(lr=1e-3, epochs=2, batch_size=4, grad_accum=2, max_grad_norm=0.5, bf16=False, progress=False,
                      device="cpu")
    data = _batches(6, 4, 0)
    torch.manual_seed(0)
    ours = BertForSequenceClassification(tiny_config())
    plain = BertForSequenceClassification(tiny_config())
    plain.load_state_dict(ours.state_dict())
    fitted = fit(ours, lambda epoch: data, len(data), None, cfg)

    torch.manual_seed(cfg.seed)
    groups = param_groups(plain, cfg.lr, cfg.weight_decay)
    optimizer = build_optimizer(groups)
    scheduler = build_scheduler(optimizer, "linear", fitted.steps, cfg.warmup_ratio)
    params = [p for g in groups for p in g["params"]]
    plain.train()
    micro = 0
    for _ in range(2):
        for batch in data:
            (plain(**batch).loss / cfg.grad_accum).backward()
            micro += 1
            if micro % cfg.grad_accum == 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
    assert fitted.steps == 6
    for (name, a), b in zip(ours.state_dict().items(), plain.state_dict().values()):
        assert torch.equal(a, b), name


def test_what_cannot_be_split_across_processes_fails_before_anything_trains(monkeypatch):
    """An odd batch for two processes, or batches that are no DataLoader: one clear error, no process group."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    from lib import trainer

    with pytest.raises(ConfigError, match="multiple of the 2 processes"):
        trainer.make_accelerator(TrainConfig(batch_size=5, progress=False))
    with pytest.raises(ConfigError, match="DataLoader"):
        trainer._prepared(None, iter([]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(results: Path, module: str, args: list[str], processes: int) -> None:
    """`python -m module args` in one process, or through `accelerate launch` in `processes` CPU processes."""
    env = os.environ | {"WORKBOOK_RESULTS_DIR": str(results), "WORKBOOK_CHECKPOINT_DIR": str(results / "ckpt"),
                        "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    if processes == 1:
        cmd = [sys.executable, "-m", module, *args]
    else:  # without MPI, `--cpu --num_processes 2` starts one process: torchrun (--multi_gpu) starts them on CPUs
        cmd = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
               "--main_process_port", str(_free_port()), "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", module, *args]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]


def _stored(results: Path, experiment: str) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """The one run folder and the CSV of `experiment`, asserting there is exactly one of each."""
    folders = [p.parent for p in (results / "runs" / experiment).glob("*/metrics.json")]
    assert len(folders) == 1, folders
    table = pd.read_csv(results / f"{experiment}.csv")
    assert table["run_id"].tolist() == [folders[0].name]
    leftovers = [p for p in results.rglob("*") if ".tmp" in p.name]
    assert not leftovers, leftovers
    return pd.read_csv(history_path(folders[0])), json.loads((folders[0] / "metrics.json").read_text()), table


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU (gloo) launch; GPUs are launched the same way")
@pytest.mark.parametrize(
    "module, args, experiment, loss_metric, tolerance",
    [
        ("lib.finetune", [*DATA, "--profile", "smoke", "--seeds", "0", "--experiment", "ddp"], "ddp",
         "best_val_loss", 0.01),
        ("lib.pretraining", ["--profile", "smoke", "--recipe", "bert-2018"], "pretrain", "heldout_mlm_loss", 0.05),
    ],
    ids=["finetune", "pretraining"],
)
def test_two_cpu_processes_train_one_run_like_one_process(tmp_path, module, args, experiment, loss_metric, tolerance):
    """Global batch held equal (each process takes half of every batch): the same optimizer steps on the same
    examples (identical token counts per step), the first step's loss and the evaluated loss within `tolerance`
    nats (dropout masks and per-process loss means differ), one run folder and one CSV row."""
    _run(tmp_path / "one", module, args, 1)
    _run(tmp_path / "two", module, args, 2)
    (h1, m1, t1), (h2, m2, t2) = _stored(tmp_path / "one", experiment), _stored(tmp_path / "two", experiment)
    assert t1["run_id"].tolist() == t2["run_id"].tolist()  # the same run: launching is not part of its identity
    assert m1["steps"] == m2["steps"] == len(h1) == len(h2)
    assert h1["tokens"].tolist() == h2["tokens"].tolist()  # both saw the same batches, split in two
    assert abs(h1["loss"].iloc[0] - h2["loss"].iloc[0]) < 0.01  # same weights, the batch's halves averaged
    assert abs(m1[loss_metric] - m2[loss_metric]) < tolerance


def test_bf16_and_fp32_runs_in_one_process_each_get_their_precision():
    """Accelerate holds one precision per process; a notebook comparing bf16 with fp32 still gets both, and a
    trained model is handed back without Accelerate's autocast around its forward."""
    data = _batches(2, 4, 1)
    losses = {}
    for bf16 in (True, False, True):
        torch.manual_seed(0)
        model = BertForSequenceClassification(tiny_config())
        fitted = fit(model, lambda epoch: data, len(data), None, TrainConfig(lr=1e-3, epochs=1, batch_size=4,
                     bf16=bf16, progress=False, device="cpu"))
        assert "_original_forward" not in model.__dict__  # the autocast wrapper is gone
        losses.setdefault(bf16, []).append(fitted.history["loss"].tolist())
        with torch.no_grad():
            assert model(**data[0]).logits.dtype == torch.float32
    assert losses[True][0] == losses[True][1]  # bf16 again after fp32: the same numbers
    assert losses[True][0] != losses[False][0]  # and bf16 really ran in bf16
