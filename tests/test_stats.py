"""Seed statistics: intervals, paired differences and generated verdicts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from lib import stats


def frame(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"variant": v, "seed": s, "test_accuracy": a} for v, accs in values.items() for s, a in enumerate(accs)]
    )


def test_ci95_is_student_t():
    x = np.array([0.1, 0.4, 0.35, 0.2])
    lo, hi = stats.ci95(x)
    ref = st.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=st.sem(x))
    assert lo == pytest.approx(ref[0]) and hi == pytest.approx(ref[1])
    assert all(math.isnan(v) for v in stats.ci95([0.5]))


def test_paired_difference_removes_shared_seed_noise():
    # seeds move both variants together by a lot; the variant is always exactly +1 point better
    base = [0.70, 0.80, 0.60, 0.75]
    cmp = stats.compare(frame({"base": base, "better": [b + 0.01 for b in base]}), "base", majority=0.5)
    row = cmp.loc["better"]
    assert row["diff"] == pytest.approx(1.0) and row["diff_std"] == pytest.approx(0.0, abs=1e-9)
    assert row["significant"] and row["paired_seeds"] == 4
    assert row["std"] == pytest.approx(100 * np.std(base, ddof=1))  # unpaired spread is large


def test_noise_is_not_significant_and_failures_are_counted():
    cmp = stats.compare(frame({"base": [0.80, 0.70, 0.75], "other": [0.78, 0.74, 0.50]}), "base", majority=0.5)
    assert not cmp.loc["other", "significant"]
    assert cmp.loc["other", "failed"] == 1 and cmp.loc["base", "failed"] == 0
    d = 100 * (np.array([0.78, 0.74, 0.50]) - np.array([0.80, 0.70, 0.75]))
    assert cmp.loc["other", "p"] == pytest.approx(st.ttest_rel([0.78, 0.74, 0.50], [0.80, 0.70, 0.75]).pvalue)
    text = stats.verdict("other", cmp.loc["other"], "base")
    assert text.startswith(
        f"other vs base: {d.mean():+.1f} ± {d.std(ddof=1):.1f} points over 3 paired seeds"
    ) and text.endswith("not significant")


def test_only_shared_seeds_are_paired():
    df = frame({"base": [0.7, 0.8], "other": [0.9, 0.9, 0.9]})
    cmp = stats.compare(df, "base")
    assert cmp.loc["other", "paired_seeds"] == 2 and cmp.loc["other", "n"] == 3
    assert cmp.loc["other", "diff"] == pytest.approx(100 * ((0.9 - 0.7) + (0.9 - 0.8)) / 2)


def test_one_seed_gives_no_verdict_and_unknown_baseline_fails():
    cmp = stats.compare(frame({"base": [0.7], "other": [0.9]}), "base")
    assert "too few seeds" in stats.verdict("other", cmp.loc["other"], "base")
    with pytest.raises(ValueError, match="Baseline variant"):
        stats.compare(frame({"a": [0.5]}), "b")


def test_table_shows_spread_and_verdict():
    cmp = stats.compare(frame({"base": [0.70, 0.80, 0.60], "x": [0.71, 0.81, 0.61]}), "base", majority=0.5)
    t = stats.table(cmp, "base")
    assert t.loc["base", "accuracy (%)"] == "70.0 ± 10.0"
    assert t.loc["x", "Δ vs baseline (paired)"] == "+1.0 ± 0.0" and t.loc["x", "failed runs"] == "0/3"
    assert "significant" in t.loc["x", "verdict"]
