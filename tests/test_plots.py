"""Figures are rebuilt on every replay: the same data must give the same PNG bytes (else replays dirty git)."""

from __future__ import annotations

import pandas as pd

from lib import downstream, plots, stats

from .conftest import SMOKE


def test_a_redrawn_figure_is_byte_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_RESULTS_DIR", str(tmp_path))
    frame = pd.DataFrame(
        {
            "variant": ["a", "a", "a", "b", "b", "b"],
            "seed": [0, 1, 2] * 2,
            "test_accuracy": [0.80, 0.70, 0.75, 0.50, 0.60, 0.55],
            "test_majority": 0.5,
        }
    )
    cmp = stats.compare(frame, "a")
    first, second = [plots.save(plots.plot_ablation(frame, cmp, "t"), f"ablation{i}", SMOKE) for i in range(2)]
    assert open(first, "rb").read() == open(second, "rb").read()


def test_the_baseline_line_is_drawn_at_the_baselines_mean_not_the_first_rows():
    frame = pd.DataFrame(
        {
            "variant": ["first"] * 3 + ["base"] * 3,
            "seed": [0, 1, 2] * 2,
            "test_accuracy": [0.60, 0.61, 0.62, 0.78, 0.79, 0.80],
            "test_majority": 0.5,
        }
    )
    fig = plots.plot_ablation(frame, stats.compare(frame, "base"), "t")
    dashed = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert [round(float(line.get_xdata()[0]), 6) for line in dashed] == [79.0]


def test_every_interval_fits_the_accuracy_axis():
    """A wide interval (3 spread-out seeds) must not run off the axis, as the dots alone would allow."""
    frame = pd.DataFrame({"variant": ["wide"] * 3 + ["base"] * 3, "seed": [0, 1, 2] * 2,
                          "test_accuracy": [0.70, 0.75, 0.76, 0.50, 0.50, 0.51], "test_majority": 0.5})
    cmp = stats.compare(frame, "base")
    lo, hi = plots.plot_ablation(frame, cmp, "t").axes[0].get_xlim()
    assert lo <= cmp["ci_low"].min() and hi >= cmp["ci_high"].max() > 80


def test_a_rate_curve_shows_every_seed_and_each_tasks_own_majority_class():
    """Two tasks with different majority classes: each gets its floor, and no seed falls outside the axis."""
    frame = pd.DataFrame({
        "data": ["movies"] * 4 + ["questions"] * 4,
        "train.lr": [1e-4, 1e-4, 2e-4, 2e-4] * 2,
        "test_accuracy": [0.70, 0.72, 0.74, 0.75, 0.10, 0.12, 0.80, 0.82],
        "test_majority": [0.5] * 4 + [0.22] * 4,
    })
    fig = plots.plot_rate_curve(frame, "data", "t", {"movies": 2e-4})
    ax = fig.axes[0]
    floors = sorted(round(float(line.get_ydata()[0]), 6) for line in ax.get_lines() if line.get_linestyle() == ":")
    assert floors == [22.0, 50.0]
    low, high = ax.get_ylim()
    assert low <= 10.0 and high == 100
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1e-4", "2e-4"]


def test_the_failure_panel_counts_runs_when_each_seed_averages_several():
    """Three checkpoints × 2 seeds: one run at the majority class fails, though no seed's mean is that low."""
    table = pd.DataFrame({"stage": "final", "arm": ["ckpt"] * 6 + ["random"] * 2,
                          "checkpoint": [0, 0, 1, 1, 2, 2, 0, 0], "seed": [0, 1] * 4,
                          "test_accuracy": [0.5, 0.8, 0.7, 0.8, 0.7, 0.8, 0.7, 0.7],
                          "test_majority": 0.5})
    fig = plots.plot_ablation(table.assign(variant=table["arm"]), downstream.compare_arms(table, "random"), "t")
    panel = fig.axes[1]
    assert [t.get_text() for t in panel.texts] == ["1/6", "0/2"] and panel.get_xlabel() == "failed runs (% of runs)"
    assert [round(p.get_width(), 1) for p in panel.patches] == [16.7, 0.0]
    assert "one run" in fig.axes[0].get_legend_handles_labels()[1]  # a dot is a checkpoint's run, not a seed
