"""Same inputs, same numbers: independent seeds, content-addressed models, bit-identical runs across processes."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

import datasets
import pandas as pd
import pytest
import torch
from transformers import BertForSequenceClassification

from lib import run_notebooks, store
from lib.classify import epoch_loaders
from lib.finetune import FinetuneSpec
from lib.models import WRITER_FILE, fingerprint, load_tokenizer
from lib.paths import ROOT
from lib.store import Record
from lib.train_config import TrainConfig

from .conftest import SMOKE, tiny_config


def _orders(seed: int, epochs: int = 2) -> list[list[int]]:
    ds = datasets.Dataset.from_dict(
        {"input_ids": [[101, 1000 + i, 102] for i in range(64)], "attention_mask": [[1, 1, 1]] * 64,
         "labels": list(range(64))}
    )
    loaders = epoch_loaders(ds, load_tokenizer("minilm-l6"), TrainConfig(batch_size=8, seed=seed))
    return [[int(y) for batch in loaders(epoch) for y in batch["labels"]] for epoch in range(epochs)]


def test_seeds_share_no_batch_order_and_a_seed_repeats_its_own():
    a, b = _orders(3), _orders(4)
    assert a == _orders(3)  # same seed: the same order, epoch after epoch
    assert a[0] != a[1]  # epochs differ
    assert a[1] != b[0] and a[0] != b[0]  # epoch 1 of seed s is not epoch 0 of seed s + 1 (seed + epoch would be)


def _save_tiny(folder, seed: int) -> None:
    torch.manual_seed(seed)
    BertForSequenceClassification(tiny_config()).save_pretrained(folder)


def on(folder) -> FinetuneSpec:
    return FinetuneSpec(model=str(folder), train=TrainConfig(max_length=64))  # the tiny model has 64 positions


def test_a_model_folder_is_named_by_its_weights(tmp_path):
    folder = tmp_path / "my-model"
    _save_tiny(folder, 0)
    first = on(folder).identity()
    assert first["model_fingerprint"].startswith("weights ")
    assert on(folder).identity() == first
    _save_tiny(folder, 1)  # same path, other weights: another run
    assert store.run_id(on(folder).identity()) != store.run_id(first)
    assert fingerprint("minilm-l6") is None and "model_fingerprint" not in FinetuneSpec().identity()


@dataclass
class TinyPretraining:
    """A 'pretraining' run that writes a tiny checkpoint; `variant` changes its weights under one identity."""

    seed: int = 0
    kind = "tinypretrain"
    keeps_checkpoint = True

    def identity(self) -> dict:
        return {"seed": self.seed}

    def compute(self, profile=None, stop_on_divergence: bool = False) -> Record:
        torch.manual_seed(self.seed + TinyPretraining.variant)
        model = BertForSequenceClassification(tiny_config())
        metrics = {"heldout_mlm_accuracy": 0.1 + TinyPretraining.variant}
        return Record(metrics, pd.DataFrame({"step": [0]}), None, lambda path: model.save_pretrained(path))

    variant = 0


def test_retraining_a_checkpoint_makes_the_runs_that_load_it_new_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_RESULTS_DIR", str(tmp_path))
    monkeypatch.setattr("lib.store.CHECKPOINT_DIR", tmp_path / "checkpoints")
    TinyPretraining.variant = 0
    run = store.run("tiny", TinyPretraining(), SMOKE)
    writer = json.loads((run.checkpoint / WRITER_FILE).read_text())
    assert writer["run_id"] == run.run_id
    before = store.run_id(on(run.checkpoint).identity())
    # the checkpoint goes missing (a fresh clone): rebuilt, the record kept, the dependent id unchanged
    for f in run.checkpoint.iterdir():
        f.unlink()
    run.checkpoint.rmdir()
    TinyPretraining.variant = 1  # the rebuild differs (another machine): the stored record still stands
    store.run("tiny", TinyPretraining(), SMOKE)
    assert store.run_id(on(run.checkpoint).identity()) == before
    # re-pretraining on purpose replaces the record: every run fine-tuned from it is a new run
    store.run("tiny", TinyPretraining(), SMOKE, force=True)
    assert store.run_id(on(run.checkpoint).identity()) != before


_TWICE = """
import hashlib, json, sys
from lib import finetune, profiles
from lib.pretraining import PretrainSpec
from lib.train_config import TrainConfig
kind = sys.argv[1]
if kind == "finetune":
    spec = finetune.baseline_spec(profiles.get("smoke")).with_overrides(lr=1e-4, max_steps=4, seed=3, progress=False)
else:
    spec = PretrainSpec(model="bert-tiny", max_seq_len=64, max_documents=40,
                        train=TrainConfig(lr=1e-3, max_steps=6, batch_size=8, eval_every=3, metric="mlm_loss",
                                          patience=None, progress=False))
record = spec.compute()
history = record.history.drop(columns=["seconds"]).to_csv(index=False)
metrics = {k: v for k, v in record.metrics.items() if not k.endswith(("seconds", "_per_s")) and k != "checkpoint"}
print(json.dumps({"metrics": metrics, "history": hashlib.sha256(history.encode()).hexdigest()}, default=str))
"""


def test_a_smoke_finetune_and_a_smoke_pretraining_are_bit_identical_in_two_processes():
    for kind in ("finetune", "pretrain"):
        outs = [
            json.loads(subprocess.run([sys.executable, "-c", _TWICE, kind], cwd=ROOT, capture_output=True, text=True,
                                      check=True).stdout.strip().splitlines()[-1])
            for _ in range(2)
        ]
        assert outs[0] == outs[1], kind
        assert outs[0]["metrics"], kind


def test_a_notebook_that_only_replays_keeps_its_recorded_time(tmp_path, monkeypatch):
    """Replays leave git clean: notebook_times.csv changes only for a notebook that computed a run."""
    monkeypatch.setenv("WORKBOOK_RESULTS_DIR", str(tmp_path))
    nb = ROOT / "notebooks" / "03_ablation_warmup.ipynb"
    monkeypatch.setattr(run_notebooks, "notebooks", lambda: [nb])
    computes = {"yes": True}

    def fake_execute(notebook, profile, out_dir=None, parameters=None):
        if computes["yes"]:
            folder = tmp_path / "runs" / "x" / f"r{len(list(tmp_path.rglob('metrics.json')))}"
            folder.mkdir(parents=True)
            (folder / "metrics.json").write_text("{}")
        return 12.0 if computes["yes"] else 3.0

    monkeypatch.setattr(run_notebooks, "execute", fake_execute)
    monkeypatch.setattr(run_notebooks.report, "write", lambda profile: "REPORT.md")
    times = tmp_path / "notebook_times.csv"
    run_notebooks.main(["--profile", "smoke"])
    assert pd.read_csv(times)["seconds"].tolist() == [12.0]
    stamp = times.stat().st_mtime_ns
    computes["yes"] = False
    run_notebooks.main(["--profile", "smoke"])
    assert times.stat().st_mtime_ns == stamp and pd.read_csv(times)["seconds"].tolist() == [12.0]


def test_random_init_is_the_same_architecture_with_fresh_seeded_weights():
    from lib.models import load_model

    _, pretrained = load_model("minilm-l6", seed=0)
    _, fresh = load_model("minilm-l6", seed=0, init="random")
    _, again = load_model("minilm-l6", seed=0, init="random")
    w = "bert.encoder.layer.0.attention.self.query.weight"
    assert fresh.config.num_hidden_layers == pretrained.config.num_hidden_layers == 6
    assert not torch.equal(fresh.state_dict()[w], pretrained.state_dict()[w])
    assert torch.equal(fresh.state_dict()[w], again.state_dict()[w])
    random_id = store.run_id(FinetuneSpec(init="random").identity())
    assert random_id != store.run_id(FinetuneSpec().identity())


def test_a_fresh_clone_replays_runs_from_a_checkpoint_it_does_not_have(tmp_path, monkeypatch):
    """Records are in git, weights are not: a run fine-tuned from a stored run's checkpoint keeps its identity when
    the weights are missing (its writer's record names them), `weights=False` replays the writer without rebuilding
    them, and only loading the weights asks for them back, with one clear error."""
    from lib import models

    monkeypatch.setenv("WORKBOOK_RESULTS_DIR", str(tmp_path))
    for module in ("lib.store", "lib.paths"):
        monkeypatch.setattr(f"{module}.CHECKPOINT_DIR", tmp_path / "checkpoints")
    TinyPretraining.variant = 0
    run = store.run("tiny", TinyPretraining(seed=5), SMOKE)
    before = store.run_id(on(run.checkpoint).identity())
    for f in run.checkpoint.iterdir():
        f.unlink()
    run.checkpoint.rmdir()
    assert store.run_id(on(run.checkpoint).identity()) == before  # no weights, the same run
    assert store.run("tiny", TinyPretraining(seed=5), SMOKE, weights=False).cached
    assert not run.checkpoint.exists()  # nothing rebuilt
    with pytest.raises(models.ModelError, match="weights are missing"):
        models.load_model(str(run.checkpoint))
    store.run("tiny", TinyPretraining(seed=5), SMOKE)  # asked for its weights: rebuilt, the record kept
    assert (run.checkpoint / "config.json").exists() and store.run_id(on(run.checkpoint).identity()) == before
