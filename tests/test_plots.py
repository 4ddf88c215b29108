"""Figures are rebuilt on every replay: the same data must give the same PNG bytes (else replays dirty git)."""

from __future__ import annotations

import pandas as pd

from lib import plots, stats


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
    ablation = [plots.save(plots.plot_ablation(frame, cmp, "t"), f"ablation{i}", "smoke") for i in range(2)]
    spread = [
        plots.save(plots.plot_seed_spread(frame, "variant", "test_accuracy").figure, f"spread{i}", "smoke")
        for i in range(2)
    ]
    for first, second in (ablation, spread):
        assert open(first, "rb").read() == open(second, "rb").read()
