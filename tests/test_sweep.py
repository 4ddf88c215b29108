"""Sweeps: grids as documented, resumable, shared cells trained once; the report is generated."""

from __future__ import annotations

import pandas as pd
import pytest

from lib import ablations, finetune, profiles, report, store, sweep
from lib.finetune import FinetuneSpec
from lib.grid import Grid
from lib.store import Record, run_id
from lib.trainer import TrainingDiverged

from .conftest import QUICK, SMOKE


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_RESULTS_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def fake_training(monkeypatch):
    """FinetuneSpec.compute that trains nothing: accuracy 0.6 + lr·100 + seed/100; at the majority
    class (failed) from lr 1e-3; a NaN loss at lr 1."""
    trained = []

    def fake(spec, profile=None, stop_on_divergence=False):
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


def small_sweep(experiment: str = "abl") -> Grid:
    return Grid(
        experiment, finetune.baseline_spec(SMOKE), {"base": {"lr": 1e-4}, "hot": {"lr": 1e-3}}, "base", [0, 1]
    )


def test_sweep_runs_every_cell_once_and_resumes(results, fake_training):
    first = sweep.run_sweep(small_sweep(), SMOKE, progress=False)
    assert len(fake_training) == 4 and len(first.frame) == 4
    assert set(first.frame["variant"]) == {"base", "hot"} and sorted(first.frame["seed"]) == [0, 0, 1, 1]
    # an interrupted sweep: one finished run lost, the rest kept
    lost = first.run("hot", seed=1).path
    for f in lost.iterdir():
        f.unlink()
    lost.rmdir()
    again = sweep.run_sweep(small_sweep(), SMOKE, progress=False)
    assert fake_training[4:] == [(1e-3, 1)]  # only the missing run trains again
    assert again.frame["cached"].sum() == 3
    pd.testing.assert_series_equal(first.frame["test_accuracy"], again.frame["test_accuracy"])


def test_a_cell_stored_by_another_experiment_is_copied_not_retrained(results, fake_training):
    sweep.run_sweep(small_sweep("first"), SMOKE, progress=False)
    other = sweep.run_sweep(small_sweep("second"), SMOKE, progress=False)
    assert len(fake_training) == 4 and other.frame["cached"].all()
    assert len(pd.read_csv(results / "second.csv")) == 4 and len(list(results.glob("runs/second/*/metrics.json"))) == 4


def test_bad_grids_fail_before_anything_trains():
    base = finetune.baseline_spec(SMOKE)
    with pytest.raises(ValueError, match="Baseline"):
        Grid("x", base, {"a": {}}, "b", [0])
    with pytest.raises(ValueError, match="Unknown override"):
        Grid("x", base, {"a": {"learning_rate": 1e-4}}, "a", [0])
    with pytest.raises(ValueError, match="at least one"):
        Grid("x", base, {"a": {}}, "a", [])
    with pytest.raises(ValueError, match="Unknown ablation"):
        ablations.get("dropout", SMOKE)


@pytest.mark.parametrize("profile_name", ["smoke", "quick", "full"])
def test_grids_as_documented(profile_name):
    """Cells and seeds as the notebooks' design tables say: failure-rate cells get the failure seeds."""
    profile = profiles.get(profile_name)
    g = profile.grids
    sizes = {"smoke": {"rates": 2, "learning_curve": 4, "warmup": 6, "weight_decay": 5, "llrd": 4, "batch_seq": 5},
             "quick": {"rates": 4, "learning_curve": 4, "warmup": 12, "weight_decay": 15, "llrd": 9, "batch_seq": 8},
             "full": {"rates": 4, "learning_curve": 1, "warmup": 41, "weight_decay": 17, "llrd": 16,
                      "batch_seq": 10}}[profile_name]
    assert set(sizes) == set(ablations.GRIDS)
    for name, size in sizes.items():
        s = ablations.get(name, profile)
        assert len(s.variants) == size and s.baseline in s.variants, name
        ids = [run_id(spec.identity()) for _, spec in s.specs()]
        assert len(ids) == len(set(ids)), f"{name}: two variants are the same run"
    hot = ablations.warmup(profile)
    curve = [ablations.warmup_name(lr, w, optimizer=o) for lr in g.warmup_rates for w in g.warmup_ratios
             for o in ("adamw", "bertadam") if o == "adamw" or w == 0]
    assert all(hot.seeds_of(n) == g.failure_seeds for n in curve) and set(curve) <= set(hot.variants)
    assert all(hot.variants[n]["optimizer"] == "bertadam" for n in curve if n.endswith(ablations.NO_BIAS_CORRECTION))
    llrd = ablations.llrd(profile)
    assert {n: len(llrd.seeds_of(n)) for n in llrd.variants if n.endswith("ξ 1")} == {
        ablations.llrd_name(lr, 1.0): len(g.failure_seeds if lr == ablations.AGGRESSIVE_LR else g.paired_seeds)
        for lr in g.llrd_rates}
    if profile_name == "quick":
        assert len(g.failure_seeds) >= 10 and len(g.paired_seeds) >= 5


def test_the_learning_curve_separates_more_data_from_more_updates():
    """Notebook 02's regime cells: the larger set at the budget's updates, the budget's set at the larger set's
    updates, and every cell validated as often as the baseline (so none chooses among more checkpoints)."""
    from lib.train_config import num_update_steps

    curve, b = ablations.learning_curve(QUICK), QUICK.finetune
    steps, evals = {}, {}
    for name, o in curve.variants.items():
        spec = curve.base.with_overrides(**o)
        n = spec.max_train_examples
        steps[name] = num_update_steps(-(-n // spec.train.batch_size), spec.train)
        every = spec.train.eval_every or -(-n // spec.train.batch_size)
        evals[name] = steps[name] // every
    base, more, same_updates, same_data = curve.variants
    assert steps[same_updates] == steps[base] == -(-b.max_train_examples // b.batch_size) * b.epochs
    assert steps[same_data] == steps[more] > steps[base]
    assert curve.variants[same_updates]["max_train_examples"] == curve.variants[more]["max_train_examples"]
    assert "max_train_examples" not in curve.variants[same_data]
    assert set(evals.values()) == {b.epochs}


def test_bigger_batches_run_at_the_working_rate_and_at_its_square_root_scaling():
    grid = ablations.batch_seq(QUICK)
    for k in QUICK.grids.batch_factors:
        same, scaled = (grid.variants[ablations.batch_cell(QUICK, k, s)] for s in (False, True))
        assert same["batch_size"] == scaled["batch_size"] == k * QUICK.finetune.batch_size
        assert same["lr"] == finetune.WORKING_LR
        assert scaled["lr"] == pytest.approx(finetune.WORKING_LR * k ** 0.5, rel=5e-3)  # 3 significant digits
    assert list(grid.variants)[:3] == ["batch 8 · 64 updates · lr 1e-4", "batch 16 · 32 updates · lr 1e-4",
                                       "batch 16 · 32 updates · lr 1.41e-4"]
    assert ablations.batch_cell(QUICK, 4, scaled=True) == "batch 32 · 16 updates · lr 2e-4"


def test_each_xi_gets_the_rate_with_the_best_validation_accuracy_not_test():
    name = ablations.llrd_name
    rows = [(name(lr, xi), val, test) for lr, xi, val, test in [
        (1e-4, 1.0, 0.80, 0.70), (2e-4, 1.0, 0.75, 0.90), (5e-4, 1.0, 0.60, 0.60),
        (1e-4, 0.5, 0.70, 0.95), (5e-4, 0.5, 0.85, 0.70)]]
    frame = pd.DataFrame(rows, columns=["variant", "best_val_accuracy", "test_accuracy"])
    assert ablations.best_rates(frame, QUICK) == {1.0: 1e-4, 0.5: 5e-4}  # ξ 0.95 has no runs: no choice
    assert ablations.best_rates(frame.iloc[:0], QUICK) == {}


def test_shared_cells_are_one_run():
    """02's lr 1e-4 runs are the baseline cells of 04, 05 and 07."""
    for profile in map(profiles.get, ("smoke", "quick", "full")):
        base = finetune.baseline_spec(profile).with_overrides(lr=finetune.WORKING_LR)
        nb02 = {run_id(spec.identity()) for spec in base.seeds(profile.grids.paired_seeds)}
        for name in ("weight_decay", "llrd", "batch_seq"):
            s = ablations.get(name, profile)
            ids = {run_id(sp.identity()) for v, sp in s.specs() if v == s.baseline and sp.data == "movie_snippets"}
            assert ids == nb02, (profile, name)


def test_constant_schedule_with_warmup_uses_hf_constant_with_warmup():
    v = ablations.warmup(profiles.get("full")).variants
    assert v["lr 5e-4 · constant · warmup 0.1"]["schedule"] == "constant_with_warmup"
    assert v["lr 5e-4 · linear · warmup 0"] == {"lr": 5e-4, "schedule": "linear", "warmup_ratio": 0.0}
    assert finetune.lr_label(2e-5) == "2e-5" and finetune.lr_label(1e-3) == "1e-3"
    assert finetune.lr_label(1.41e-4) == "1.41e-4" and finetune.lr_label(2.5e-5) == "2.5e-5"


def test_report_is_generated_from_the_run_folders(results, fake_training):
    """Runs stored as a sweep stores them → REPORT.md with the table, failures and generated findings."""
    sweep.run_sweep(ablations.get("warmup", SMOKE), SMOKE, progress=False)
    (results / "ablation_warmup.csv").unlink()  # the index is rebuilt from the folders
    text = open(report.write(SMOKE)).read()
    assert "03 · Warmup and Adam's bias correction" in text and "| lr 5e-4 · linear · warmup 0 " in text
    assert "0/2" in text and "2/2" in text  # the fake trainer fails every run at 1e-3 and none at 5e-4
    assert "failure rate over lr 5e-4–1e-3: warmup 0.1 against none" in text
    assert "McNemar exact on 4 (rate, seed) pairs: 2 vs 2 failed" in text
    assert "No runs stored yet" in text  # the other grids have no rows
    table = pd.read_csv(results / "findings.csv")
    assert list(table.columns) == ["notebook", "finding", "variant", "baseline", "n_seeds", "mean_diff", "ci_low",
                                   "ci_high", "p", "p_holm", "mde", "mde_level", "verdict", "test"]


def test_a_diverged_run_is_recorded_as_failed_not_raised(results, fake_training):
    grid = Grid("abl", finetune.baseline_spec(SMOKE), {"base": {"lr": 1e-4}, "nan": {"lr": 1.0}}, "base", [0, 1])
    result = sweep.run_sweep(grid, SMOKE, progress=False)
    assert result.frame.loc[result.frame["variant"] == "nan", "diverged"].all()
    assert sweep.summarize(result, SMOKE)["movie_snippets"].loc["nan", "failed"] == 2
    with pytest.raises(Exception, match="became nan"):  # a single run outside a sweep still raises
        store.run("single", finetune.baseline_spec(SMOKE).with_overrides(lr=1.0, seed=5), SMOKE)


def test_shards_split_a_grid_without_overlap(results, fake_training):
    a = sweep.run_sweep(small_sweep(), SMOKE, progress=False, shard=(0, 2))
    b = sweep.run_sweep(small_sweep(), SMOKE, progress=False, shard=(1, 2))
    assert len(a.frame) + len(b.frame) == 4 and len(fake_training) == 4
    assert set(a.frame["run_id"]).isdisjoint(b.frame["run_id"])


def test_a_run_id_names_the_requested_precision_not_this_machines(results, fake_training, monkeypatch):
    """bf16=None ("auto") is the identity: runs stored on a machine with native bf16 replay on one without it."""
    from lib import train_config

    monkeypatch.setattr(train_config, "bf16_supported", lambda device: True)
    first = sweep.run_sweep(ablations.get("warmup", SMOKE), SMOKE, progress=False)
    monkeypatch.setattr(train_config, "bf16_supported", lambda device: False)
    again = sweep.run_sweep(ablations.get("warmup", SMOKE), SMOKE, progress=False)
    assert again.frame["cached"].all() and list(again.frame["run_id"]) == list(first.frame["run_id"])
    assert finetune.baseline_spec(SMOKE).identity()["train"]["bf16"] is None


def test_two_shard_processes_at_once_train_each_run_once_and_keep_the_csv_whole(tmp_path):
    """`python -m lib.sweep warmup --shard i/2` in two processes started together, sharing one results folder:
    every run of the grid is trained exactly once, and the experiment's CSV (both write it under its lock)
    ends with one intact row per run."""
    import os
    import subprocess
    import sys

    from lib.paths import ROOT

    env = os.environ | {"WORKBOOK_RESULTS_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "lib.sweep", "warmup", "--profile", "smoke"]
    procs = [subprocess.Popen(cmd + ["--shard", f"{i}/2"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    grid = ablations.warmup(SMOKE)
    expected = set(grid.run_ids())
    folders = {p.parent.name for p in (tmp_path / "runs" / grid.experiment).glob("*/metrics.json")}
    assert folders == expected  # every run once, none extra
    table = pd.read_csv(tmp_path / f"{grid.experiment}.csv")
    assert sorted(table["run_id"].tolist()) == sorted(expected)  # one row per run, no torn or doubled rows
    assert table["test_accuracy"].between(0, 1).all()


def test_the_matched_decay_shrinks_as_much_as_adam_l2_did():
    """Notebook 04's H1 arm: AdamW's λ whose compounded (1 − lr_t·λ) over the baseline's schedule leaves 96%."""
    from lib.optim import decoupled_shrink

    lam = ablations.matched_decay(QUICK)
    rates = ablations.schedule_rates(finetune.baseline_spec(QUICK).with_overrides(lr=finetune.WORKING_LR))
    assert len(rates) == 64 and rates.max() == pytest.approx(finetune.WORKING_LR)
    assert decoupled_shrink(rates, [lam])["shrink (%)"].iloc[0] == pytest.approx(100 * ablations.L2_SHRINK, abs=0.05)
    grid = ablations.weight_decay(QUICK)
    assert grid.variants[ablations.decay_name("adamw", lam)]["weight_decay"] == lam
    assert grid.seeds_of(ablations.decay_name("adam_l2", 0.1, lr=2e-4)) == QUICK.grids.decay_rate_seeds
