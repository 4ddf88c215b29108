"""Sweeps: grids as documented, resumable, shared cells trained once; the report is generated."""
from __future__ import annotations

from dataclasses import asdict

import pandas as pd
import pytest

from lib import ablations, report, results, sweep
from lib.experiment import FinetuneSpec
from lib.results import run_id


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_RESULTS_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def fake_training(monkeypatch):
    """run_finetune that stores a run without training; accuracy = 0.6 + lr·100 + seed/100."""
    trained = []

    def fake(experiment, spec, profile="quick", force=False):
        def compute():
            trained.append((experiment, spec.train.lr, spec.train.seed))
            acc = 0.6 + spec.train.lr * 100 + spec.train.seed / 100
            history = pd.DataFrame({"step": [0, 1], "loss": [0.7, 0.5], "lr/head": [spec.train.lr, 0.0]})
            metrics = {"test_accuracy": acc, "test_majority": 0.5, "train_seconds": 1.0, "test_seconds": 0.5, "confusion": [[1, 0], [0, 1]]}
            return metrics, history, None

        return results.cached_run(experiment, asdict(spec), compute, profile, force)

    monkeypatch.setattr(sweep, "run_finetune", fake)
    return trained


def small_sweep(experiment: str = "abl") -> sweep.Sweep:
    return sweep.Sweep(experiment, ablations.baseline_spec("smoke"), {"base": {"lr": 1e-4}, "hot": {"lr": 1e-3}}, "base", [0, 1])


def test_sweep_runs_every_cell_once_and_resumes(store, fake_training):
    first = sweep.run_sweep(small_sweep(), "smoke", progress=False)
    assert len(fake_training) == 4 and len(first.frame) == 4
    assert set(first.frame["variant"]) == {"base", "hot"} and sorted(first.frame["seed"]) == [0, 0, 1, 1]
    # an interrupted sweep: one finished run lost, the rest kept
    lost = first.run("hot", seed=1).path
    for f in lost.iterdir():
        f.unlink()
    lost.rmdir()
    again = sweep.run_sweep(small_sweep(), "smoke", progress=False)
    assert fake_training[4:] == [("abl", 1e-3, 1)]  # only the missing run trains again
    assert again.frame["cached"].sum() == 3
    pd.testing.assert_series_equal(first.frame["test_accuracy"], again.frame["test_accuracy"])


def test_a_cell_stored_by_another_experiment_is_copied_not_retrained(store, fake_training):
    sweep.run_sweep(small_sweep("first"), "smoke", progress=False)
    other = sweep.run_sweep(small_sweep("second"), "smoke", progress=False)
    assert len(fake_training) == 4 and other.frame["cached"].all()
    assert len(pd.read_csv(store / "second.csv")) == 4 and len(list(store.glob("runs/second/*/metrics.json"))) == 4


def test_bad_grids_fail_before_anything_trains():
    base = ablations.baseline_spec("smoke")
    with pytest.raises(ValueError, match="Baseline"):
        sweep.Sweep("x", base, {"a": {}}, "b", [0])
    with pytest.raises(ValueError, match="Unknown override"):
        sweep.Sweep("x", base, {"a": {"learning_rate": 1e-4}}, "a", [0])
    with pytest.raises(ValueError, match="at least one"):
        sweep.Sweep("x", base, {"a": {}}, "a", [])
    with pytest.raises(ValueError, match="Unknown ablation"):
        ablations.sweep("dropout")


@pytest.mark.parametrize("profile", ["smoke", "quick", "full"])
def test_grids_as_documented(profile):
    seeds = {"smoke": 1, "quick": 3, "full": 5}[profile]
    sizes = {"smoke": (2, 2, 2, 3), "quick": (7, 5, 8, 12), "full": (24, 7, 15, 12)}[profile]
    assert len(sizes) == len(ablations.SWEEPS)
    for name, size in zip(ablations.SWEEPS, sizes):
        s = ablations.sweep(name, profile)
        assert len(s.variants) == size and len(s.seeds) == seeds and s.baseline in s.variants
        ids = [run_id(asdict(spec)) for _, spec in s.specs()]
        assert len(ids) == len(set(ids)), f"{name}: two variants are the same run"
    assert ablations.DATASETS[profile] == (["movie_snippets", "trec6"] if profile == "full" else ["movie_snippets"])


def test_every_ablation_baseline_is_notebook_02s_run():
    """The baseline cell of each grid is the same run (same id) as notebook 02's lr 1e-4 run: trained once."""
    for profile in ("smoke", "quick", "full"):
        nb02 = {run_id(asdict(ablations.baseline_spec(profile).with_overrides(lr=ablations.ABLATION_LR, seed=s))) for s in ablations.SEEDS[profile]}
        for name in ablations.SWEEPS:
            s = ablations.sweep(name, profile)
            base_ids = {run_id(asdict(spec)) for v, spec in s.specs() if v == s.baseline and spec.data == "movie_snippets"}
            assert base_ids == nb02, (profile, name)


def test_constant_schedule_with_warmup_uses_hf_constant_with_warmup():
    v = ablations.warmup("quick").variants
    assert v["lr 1e-3 · constant · warmup 0.1"]["schedule"] == "constant_with_warmup"
    assert v["lr 1e-3 · linear · warmup 0"] == {"lr": 1e-3, "schedule": "linear", "warmup_ratio": 0.0}
    assert ablations.lr_label(2e-5) == "2e-5" and ablations.lr_label(1e-3) == "1e-3"


def test_report_is_generated_from_the_csv(store):
    """Rows written as a sweep would → REPORT.md with the table and generated verdicts."""
    s = ablations.sweep("warmup", "smoke")
    rows = []
    for (variant, spec), acc in zip(s.specs(), [0.80, 0.50]):
        rows.append({"run_id": run_id(asdict(spec)), "data": spec.data, "train.seed": spec.train.seed, "test_accuracy": acc,
                     "test_majority": 0.5, "train_seconds": 2.0, "test_seconds": 1.0})
    pd.DataFrame(rows).to_csv(store / f"{s.experiment}.csv", index=False)  # WORKBOOK_RESULTS_DIR holds every profile
    text = open(report.write("smoke")).read()
    assert "03 · Learning-rate warmup" in text and "| lr 1e-3 · linear · warmup 0" in text
    assert "1/1" in text  # the failed run at the majority class is counted
    assert "too few seeds for a verdict" in text  # one seed: no verdict is invented
    assert "No runs stored yet" in text  # the other grids have no rows
