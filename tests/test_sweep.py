"""Sweeps: grids as documented, resumable, shared cells trained once; the report is generated."""

from __future__ import annotations

import pandas as pd
import pytest

from lib import ablations, profiles, report, store, sweep
from lib.experiment import FinetuneSpec
from lib.grid import Sweep
from lib.store import Record, run_id
from lib.trainer import TrainingDiverged


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_RESULTS_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def fake_training(monkeypatch):
    """FinetuneSpec.compute that trains nothing: accuracy 0.6 + lr·100 + seed/100; at the majority
    class (failed) from lr 1e-3; a NaN loss at lr 1."""
    trained = []

    def fake(spec, profile="quick", stop_on_divergence=False):
        trained.append((spec.train.lr, spec.train.seed))
        acc = 0.5 if spec.train.lr >= 1e-3 else 0.6 + spec.train.lr * 100 + spec.train.seed / 100
        history = pd.DataFrame({"step": [0, 1], "loss": [0.7, 0.5], "lr/head": [spec.train.lr, 0.0]})
        metrics = {
            "test_accuracy": acc,
            "test_majority": 0.5,
            "train_seconds": 1.0,
            "test_seconds": 0.5,
            "confusion": [[1, 0], [0, 1]],
        }
        if spec.train.lr >= 1:
            if not stop_on_divergence:
                raise TrainingDiverged("The loss became nan at step 1")
            metrics["diverged"] = True
        return Record(metrics, history, None)

    monkeypatch.setattr(FinetuneSpec, "compute", fake)
    return trained


def small_sweep(experiment: str = "abl") -> Sweep:
    return Sweep(
        experiment, ablations.baseline_spec("smoke"), {"base": {"lr": 1e-4}, "hot": {"lr": 1e-3}}, "base", [0, 1]
    )


def test_sweep_runs_every_cell_once_and_resumes(results, fake_training):
    first = sweep.run_sweep(small_sweep(), "smoke", progress=False)
    assert len(fake_training) == 4 and len(first.frame) == 4
    assert set(first.frame["variant"]) == {"base", "hot"} and sorted(first.frame["seed"]) == [0, 0, 1, 1]
    # an interrupted sweep: one finished run lost, the rest kept
    lost = first.run("hot", seed=1).path
    for f in lost.iterdir():
        f.unlink()
    lost.rmdir()
    again = sweep.run_sweep(small_sweep(), "smoke", progress=False)
    assert fake_training[4:] == [(1e-3, 1)]  # only the missing run trains again
    assert again.frame["cached"].sum() == 3
    pd.testing.assert_series_equal(first.frame["test_accuracy"], again.frame["test_accuracy"])


def test_a_cell_stored_by_another_experiment_is_copied_not_retrained(results, fake_training):
    sweep.run_sweep(small_sweep("first"), "smoke", progress=False)
    other = sweep.run_sweep(small_sweep("second"), "smoke", progress=False)
    assert len(fake_training) == 4 and other.frame["cached"].all()
    assert len(pd.read_csv(results / "second.csv")) == 4 and len(list(results.glob("runs/second/*/metrics.json"))) == 4


def test_bad_grids_fail_before_anything_trains():
    base = ablations.baseline_spec("smoke")
    with pytest.raises(ValueError, match="Baseline"):
        Sweep("x", base, {"a": {}}, "b", [0])
    with pytest.raises(ValueError, match="Unknown override"):
        Sweep("x", base, {"a": {"learning_rate": 1e-4}}, "a", [0])
    with pytest.raises(ValueError, match="at least one"):
        Sweep("x", base, {"a": {}}, "a", [])
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
        ids = [run_id(spec.identity()) for _, spec in s.specs()]
        assert len(ids) == len(set(ids)), f"{name}: two variants are the same run"
    assert profiles.get(profile).datasets == (["movie_snippets", "trec6"] if profile == "full" else ["movie_snippets"])


def test_every_ablation_baseline_is_notebook_02s_run():
    """The baseline cell of each grid is the same run (same id) as notebook 02's lr 1e-4 run: trained once."""
    for profile in ("smoke", "quick", "full"):
        base = ablations.baseline_spec(profile).with_overrides(lr=ablations.ABLATION_LR)
        nb02 = {run_id(spec.identity()) for spec in base.seeds(profiles.get(profile).seeds)}
        for name in ablations.SWEEPS:
            s = ablations.sweep(name, profile)
            base_ids = {
                run_id(spec.identity()) for v, spec in s.specs() if v == s.baseline and spec.data == "movie_snippets"
            }
            assert base_ids == nb02, (profile, name)


def test_constant_schedule_with_warmup_uses_hf_constant_with_warmup():
    v = ablations.warmup("quick").variants
    assert v["lr 1e-3 · constant · warmup 0.1"]["schedule"] == "constant_with_warmup"
    assert v["lr 1e-3 · linear · warmup 0"] == {"lr": 1e-3, "schedule": "linear", "warmup_ratio": 0.0}
    assert ablations.lr_label(2e-5) == "2e-5" and ablations.lr_label(1e-3) == "1e-3"


def test_report_is_generated_from_the_run_folders(results, fake_training):
    """Runs stored as a sweep stores them → REPORT.md with the table and generated verdicts."""
    sweep.run_sweep(ablations.sweep("warmup", "smoke"), "smoke", progress=False)
    (results / "ablation_warmup.csv").unlink()  # the index is rebuilt from the folders
    text = open(report.write("smoke")).read()
    assert "03 · Learning-rate warmup" in text and "| lr 1e-3 · linear · warmup 0" in text
    assert "1/1" in text  # the failed run at the majority class is counted
    assert "too few seeds for a verdict" in text  # one seed: no verdict is invented
    assert "No runs stored yet" in text  # the other grids have no rows


def test_a_diverged_run_is_recorded_as_failed_not_raised(results, fake_training):
    grid = Sweep("abl", ablations.baseline_spec("smoke"), {"base": {"lr": 1e-4}, "nan": {"lr": 1.0}}, "base", [0, 1])
    result = sweep.run_sweep(grid, "smoke", progress=False)
    assert result.frame.loc[result.frame["variant"] == "nan", "diverged"].all()
    assert sweep.summarize(result, "smoke")["movie_snippets"].loc["nan", "failed"] == 2
    with pytest.raises(Exception, match="became nan"):  # a single run outside a sweep still raises
        store.run("single", ablations.baseline_spec("smoke").with_overrides(lr=1.0, seed=5), "smoke")


def test_shards_split_a_grid_without_overlap(results, fake_training):
    a = sweep.run_sweep(small_sweep(), "smoke", progress=False, shard=(0, 2))
    b = sweep.run_sweep(small_sweep(), "smoke", progress=False, shard=(1, 2))
    assert len(a.frame) + len(b.frame) == 4 and len(fake_training) == 4
    assert set(a.frame["run_id"]).isdisjoint(b.frame["run_id"])


def test_the_report_reads_the_stored_precision_whatever_this_machine_has(results, fake_training, monkeypatch):
    """Runs stored on a machine with native bf16 render the same report on one without it (and back)."""
    from lib import trainer

    monkeypatch.setattr(trainer, "bf16_supported", lambda device: True)
    sweep.run_sweep(ablations.sweep("warmup", "smoke"), "smoke", progress=False)
    made_there = report.build("smoke")
    monkeypatch.setattr(trainer, "bf16_supported", lambda device: False)
    assert report.build("smoke") == made_there and "1/1" in made_there and ", bf16 (baseline" in made_there
