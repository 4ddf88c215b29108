"""Runs are stored atomically, keyed by their config, and never run twice."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from lib import results
from lib.experiment import FinetuneSpec


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_RESULTS_DIR", str(tmp_path))
    return tmp_path


def _compute(counter):
    def compute():
        counter.append(1)
        return {"test_accuracy": 0.8, "confusion": [[1, 0], [0, 1]]}, pd.DataFrame({"step": [0, 1], "loss": [0.7, 0.6]}), None

    return compute


def test_run_is_written_and_then_replayed(store):
    calls = []
    config = {"data": "x", "train": {"seed": 1, "lr": 2e-5, "progress": True}}
    first = results.cached_run("exp", config, _compute(calls))
    assert not first.cached and len(calls) == 1
    files = {p.name for p in first.path.iterdir()}
    assert {"config.json", "history.csv", "metrics.json", "env.json"} <= files
    assert json.loads((first.path / "env.json").read_text())["seed"] == 1
    again = results.cached_run("exp", config | {"train": {"seed": 1, "lr": 2e-5, "progress": False}}, _compute(calls))
    assert again.cached and len(calls) == 1  # progress bars don't change a run's identity
    assert again.metrics["test_accuracy"] == 0.8 and again.confusion.tolist() == [[1, 0], [0, 1]]
    forced = results.cached_run("exp", config, _compute(calls), force=True)
    assert not forced.cached and len(calls) == 2
    table = pd.read_csv(store / "exp.csv")
    assert len(table) == 1 and table.loc[0, "train.lr"] == 2e-5 and "confusion" not in table


def test_run_id_is_stable_and_config_sensitive():
    a = results.run_id({"train": {"seed": 0, "lr": 1e-5}})
    assert a == results.run_id({"train": {"lr": 1e-5, "seed": 0}})
    assert a != results.run_id({"train": {"seed": 0, "lr": 2e-5}})
    assert a.startswith("seed0-")


def test_failed_run_leaves_nothing_behind(store):
    def broken():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        results.cached_run("exp", {"seed": 0}, broken)
    assert not (store / "exp.csv").exists()
    assert not list((store).rglob("metrics.json"))


def test_overrides_reach_the_right_config():
    spec = FinetuneSpec().with_overrides(data="trec6", lr=1e-4, seed=3)
    assert spec.data == "trec6" and spec.train.lr == 1e-4 and spec.train.seed == 3
    assert FinetuneSpec().train.lr == 2e-5  # the default is untouched
    with pytest.raises(ValueError, match="Unknown override"):
        FinetuneSpec().with_overrides(learning_rate=1e-4)
