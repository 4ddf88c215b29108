"""Every impossible configuration fails when the config or spec is built: one clear error naming the field and
the fix, and nothing written under results/."""

from __future__ import annotations

import pytest

from lib import finetune
from lib.device import DeviceError
from lib.grid import Grid
from lib.pretraining import PretrainSpec
from lib.train_config import ConfigError, TrainConfig

from .conftest import SMOKE

BAD = [  # (overrides of the smoke baseline, error type, words the message must contain)
    ({"metric": "acc"}, ConfigError, ["metric='acc'", "accuracy"]),
    ({"xi": 1.5}, ConfigError, ["xi", "(0, 1]"]),
    ({"xi": 0.0}, ConfigError, ["xi", "(0, 1]"]),
    ({"lr": -1e-4}, ConfigError, ["lr must be > 0"]),
    ({"lr": "1e-4"}, ConfigError, ["lr must be a number, got '1e-4'", "lr="]),
    ({"batch_size": 2.5}, ConfigError, ["batch_size must be a whole number, got 2.5"]),
    ({"batch_size": 0}, ConfigError, ["batch_size must be ≥ 1"]),
    ({"warmup_steps": 1000, "max_steps": 3}, ConfigError, ["warmup_steps=1000", "3 optimizer steps", "warmup_ratio"]),
    ({"warmup_steps": 1000}, ConfigError, ["warmup_steps=1000", "warmup_ratio"]),  # 48 examples, 1 epoch: 3 steps
    ({"warmup_ratio": 1.5}, ConfigError, ["warmup_ratio", "[0, 1)"]),
    ({"max_length": 2048}, ConfigError, ["max_length=2048", "at most 512 positions", "max_length ≤ 512"]),
    ({"seed": -1}, ConfigError, ["seed", "0..4294967295"]),
    ({"seed": 2**40}, ConfigError, ["seed", "0..4294967295"]),
    ({"optimizer": "sgd"}, ConfigError, ["optimizer", "adamw"]),
    ({"schedule": "cyclic"}, ConfigError, ["schedule", "linear"]),
    ({"truncation": "middle"}, ConfigError, ["truncation", "head+tail"]),
    ({"max_train_examples": 0}, ConfigError, ["max_train_examples", "≥ 1"]),
    ({"learning_rate": 1e-4}, ConfigError, ["Unknown override", "learning_rate"]),
    ({"epochs": float("inf")}, ConfigError, ["epochs must be a finite number"]),
    ({"weight_decay": float("inf")}, ConfigError, ["weight_decay must be a finite number"]),
    ({"lr": float("nan")}, ConfigError, ["lr must be a finite number"]),
    ({"bf16": "no"}, ConfigError, ["bf16 must be True or False, got 'no'"]),
    ({"group_by_length": "no"}, ConfigError, ["group_by_length must be True or False"]),
]


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_RESULTS_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("overrides, error, words", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_config_fails_when_built_and_writes_nothing(results, overrides, error, words):
    with pytest.raises(error) as err:
        finetune.baseline_spec(SMOKE).with_overrides(**overrides)
    for word in words:
        assert word in str(err.value), (word, str(err.value))
    assert not any(results.iterdir())


@pytest.mark.parametrize("overrides, error, words", BAD[:6], ids=[str(b[0]) for b in BAD[:6]])
def test_a_sweep_validates_every_variant_before_training_the_first(results, overrides, error, words):
    variants = {"fine": {"lr": 1e-4}, "bad": overrides}
    with pytest.raises(error):
        Grid("x", finetune.baseline_spec(SMOKE), variants, "fine", [0])
    assert not any(results.iterdir())


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_device_is_named():
    with pytest.raises(DeviceError, match="CUDA is not available on this machine; use device='cpu' or 'auto'"):
        TrainConfig(device="cuda")


def test_pretraining_metric_and_masking_rate():
    with pytest.raises(ConfigError, match="not a pretraining metric"):
        PretrainSpec(train=TrainConfig(metric="accuracy"))
    with pytest.raises(ConfigError, match="nsp_loss"):  # without NSP there is no NSP metric to pick
        PretrainSpec(nsp=False, train=TrainConfig(metric="nsp_loss"))
    with pytest.raises(ConfigError, match="mlm_probability"):
        PretrainSpec(mlm_probability=1.5)


def test_the_store_refuses_an_experiment_that_is_not_a_plain_name(results):
    from lib import store

    from .fake_runs import FakeSpec

    for name in ("", "../escape", "a/b", "runs.csv"):
        with pytest.raises(ValueError, match="plain name"):
            store.run(name, FakeSpec(), SMOKE)
    assert not any(results.iterdir())


def test_a_spec_checks_its_model_vocabulary_and_data_when_built(tmp_path, monkeypatch):
    """Before: accepted, and the run failed only once it trained (after the data was read and a lock taken)."""
    from lib.finetune import FinetuneSpec
    from lib.hub import hub_online
    from lib.models import ModelError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_online.cache_clear()
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    cases = [({"model": "bert-base-uncased"}, "offline"), ({"model": str(tmp_path / "empty")}, "no config.json"),
             ({"model": str(tmp_path / "broken")}, "broken/config.json is not valid JSON"),
             ({"vocab": "bad"}, "vocab='bad'"), ({"data": 123}, "data is a shipped name")]
    for fields, words in cases:
        with pytest.raises((ModelError, ConfigError), match=words):
            FinetuneSpec(**fields)
    hub_online.cache_clear()
