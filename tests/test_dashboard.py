"""TensorBoard: a run logs live when asked (and its id does not change), and the stored histories export as event
files whose scalars are the history's."""
from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lib import dashboard, finetune, store, trainer
from lib.train_config import ConfigError, TrainConfig

from .conftest import SMOKE


def _scalars(folder) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return {t: [(e.step, e.value) for e in events.Scalars(t)] for t in events.Tags()["scalars"]}


@pytest.fixture
def spec():
    return finetune.baseline_spec(SMOKE).with_overrides(lr=1e-4, max_steps=3, eval_every=1, progress=False)


def test_a_run_logs_live_to_tensorboard_and_keeps_its_id(spec, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer, "TENSORBOARD_DIR", tmp_path)
    live = spec.with_overrides(log_with="tensorboard")
    assert store.run_id(live.identity()) == store.run_id(spec.identity())  # logging changes no computation
    record = live.compute()
    folders = list((tmp_path / "live").iterdir())
    assert len(folders) == 1 and folders[0].name.endswith("-seed0")
    scalars = _scalars(folders[0])
    assert [s for s, _ in scalars["loss"]] == [1, 2, 3]
    assert [v for _, v in scalars["loss"]] == pytest.approx(record.history["loss"].tolist(), rel=1e-6)
    assert len(scalars["val_accuracy"]) == 3


def test_stored_histories_export_as_event_files(spec, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_RESULTS_DIR", str(tmp_path / "results"))
    run = store.run("tb_export", spec, SMOKE)
    counts = dashboard.export(SMOKE, out=tmp_path / "tb")
    assert counts == {"tb_export": 1}
    scalars = _scalars(tmp_path / "tb" / "smoke" / "tb_export" / run.run_id)
    assert [v for _, v in scalars["train/loss"]] == pytest.approx(run.history["loss"].tolist(), rel=1e-6)
    assert [v for _, v in scalars["val/accuracy"]] == pytest.approx(run.history["val_accuracy"].tolist())
    assert scalars["test/accuracy"][0][1] == pytest.approx(run.metrics["test_accuracy"])
    dashboard.export(SMOKE, ["tb_export"], out=tmp_path / "tb")  # again: the folder is replaced, not doubled
    assert len(list((tmp_path / "tb" / "smoke" / "tb_export" / run.run_id).iterdir())) == 1


def test_an_unknown_or_missing_tracker_fails_when_the_config_is_built():
    with pytest.raises(ConfigError, match="log_with must be one of"):
        TrainConfig(log_with="nonsense")
    if __import__("importlib.util").util.find_spec("wandb") is None:
        with pytest.raises(ConfigError, match="wandb is not installed"):
            TrainConfig(log_with="wandb")
