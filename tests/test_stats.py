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
    # seeds move both variants together by a lot; the variant is always about +1 point better
    base = [0.70, 0.80, 0.60, 0.75]
    better = [b + 0.01 + e for b, e in zip(base, (0.001, -0.001, 0.0005, -0.0005))]
    cmp = stats.compare(frame({"base": base, "better": better}), "base", majority=0.5)
    row = cmp.loc["better"]
    assert row["diff"] == pytest.approx(1.0) and row["diff_std"] < 0.1
    assert row["significant"] and row["paired_seeds"] == 4
    assert row["std"] == pytest.approx(100 * np.std(better, ddof=1))  # unpaired spread is large


def test_noise_is_not_significant_and_failures_are_counted():
    cmp = stats.compare(frame({"base": [0.80, 0.70, 0.75], "other": [0.78, 0.74, 0.50]}), "base", majority=0.5)
    assert not cmp.loc["other", "significant"]
    assert cmp.loc["other", "failed"] == 1 and cmp.loc["base", "failed"] == 0
    d = 100 * (np.array([0.78, 0.74, 0.50]) - np.array([0.80, 0.70, 0.75]))
    assert cmp.loc["other", "p"] == pytest.approx(st.ttest_rel([0.78, 0.74, 0.50], [0.80, 0.70, 0.75]).pvalue)
    text = stats.comparison_sentence("other", cmp.loc["other"], "base")
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
    assert "too few seeds" in stats.comparison_sentence("other", cmp.loc["other"], "base")
    with pytest.raises(ValueError, match="Baseline variant"):
        stats.compare(frame({"a": [0.5]}), "b")


def test_table_shows_spread_and_verdict():
    cmp = stats.compare(frame({"base": [0.70, 0.80, 0.60], "x": [0.71, 0.81, 0.61]}), "base", majority=0.5)
    t = stats.comparison_table(cmp, "base")
    assert t.loc["base", "accuracy (%)"] == "70.0 ± 10.0"
    assert t.loc["x", "Δ vs baseline (paired)"] == "+1.0 ± 0.0" and t.loc["x", "failed runs"] == "0/3"
    assert "significant" in t.loc["x", "verdict"]


def test_identical_paired_differences_get_the_sign_test_not_p_zero():
    """A constant non-zero difference has no spread: the t-test is undefined (it would say p = 0 and a
    zero-width interval); the exact sign test says p = 2·0.5ⁿ and no interval is claimed."""
    base = [0.70, 0.80, 0.60]
    cmp = stats.compare(frame({"base": base, "x": [b + 0.01 for b in base]}), "base")
    row = cmp.loc["x"]
    assert row["p"] == pytest.approx(0.25) and math.isnan(row["diff_ci_low"]) and not row["significant"]
    assert stats.paired_p(np.array([0.0, 0.0, 0.0])) == 1.0
    assert stats.paired_p(np.full(6, -2.0)) == pytest.approx(2 * 0.5**6)


def test_holm_matches_its_definition():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005·4, 0.01·3, 0.03·2, 0.04·1, made monotone
    assert stats.holm(p).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = stats.holm([0.2, float("nan"), 0.01])
    assert out[0] == pytest.approx(0.2) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)


def test_mde_has_the_power_it_claims():
    """At the MDE the two-sided paired t-test rejects with 80% probability: checked against scipy's noncentral t
    where it is finite, and by simulation, at α = 0.05 and at Holm's first levels α/m."""
    for n, sd, alpha in ((3, 2.0, 0.05), (5, 2.0, 0.05), (5, 2.0, 0.0125), (10, 3.5, 0.05), (10, 1.0, 0.01)):
        mde = stats.mde_paired(sd, n, alpha)
        crit = st.t.ppf(1 - alpha / 2, n - 1)
        nc = mde / (sd / math.sqrt(n))
        power = st.nct.sf(crit, n - 1, nc) + st.nct.cdf(-crit, n - 1, nc)
        assert power == pytest.approx(0.8, abs=1e-4), (n, alpha, power)
    rng = np.random.default_rng(0)  # n = 3, α = 0.01, where scipy's noncentral t gives NaN: simulate the test
    d = stats.mde_paired(1.0, 3, 0.01)
    x = rng.normal(d, 1.0, (200_000, 3))
    t = x.mean(1) / (x.std(1, ddof=1) / math.sqrt(3))
    assert (np.abs(t) > st.t.ppf(0.995, 2)).mean() == pytest.approx(0.8, abs=0.005)
    # the central-t shortcut the workbook used before is optimistic: 5% at n = 3
    shortcut = (st.t.ppf(0.975, 2) + st.t.ppf(0.8, 2)) / math.sqrt(3)
    assert stats.mde_paired(1.0, 3) / shortcut == pytest.approx(1.054, abs=0.002)
    assert stats.mde_paired(1.0, 10) == pytest.approx(0.996, abs=0.001)  # statsmodels' TTestPower agrees here
    assert stats.seeds_needed(0.2, 1.5) > stats.seeds_needed(2.0, 1.5) >= 2


def test_failure_counts_use_fishers_exact_test():
    r = stats.rate_difference(0, 10, 5, 10)
    assert r["p"] == pytest.approx(st.fisher_exact([[0, 10], [5, 5]]).pvalue) and r["diff"] == -50
    assert r["ci_low"] < -50 < r["ci_high"] < 0
    assert stats.rate_difference(3, 3, 1, 3)["p"] == pytest.approx(0.4)  # 3 vs 3 runs can never reach 0.05
    fall = stats.fisher_mde(10, 10, 0.9, direction=-1)
    assert 50 < fall < 90 and math.isnan(stats.fisher_mde(10, 10, 0.5, direction=-1))
    assert math.isnan(stats.fisher_mde(10, 10, 1.0, direction=1))  # no rise from 100%


def test_mcnemar_counts_only_the_sentences_the_two_models_disagree_on():
    a = np.array([1] * 90 + [1] * 8 + [0] * 2, dtype=bool)  # a alone right on 8, b alone right on 2
    b = np.array([1] * 90 + [0] * 8 + [1] * 2, dtype=bool)
    r = stats.mcnemar(a, b)
    assert r["discordant"] == 10 and r["diff"] == pytest.approx(6.0)
    assert r["p"] == pytest.approx(st.binomtest(8, 10).pvalue)


def test_rate_against_a_fixed_reference():
    r = stats.rate_vs_reference(60, 100, 0.5)  # 60 of 100 against chance
    assert r["diff"] == pytest.approx(10.0)
    assert r["p"] == pytest.approx(0.05689, abs=1e-4)  # exact two-sided binomial
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((-0.28, 19.67), abs=0.01)  # Clopper-Pearson 0.4972-0.6967
    assert r["mde"] == pytest.approx(100 * (1.95996 + 0.84162) * 0.05, abs=0.01)
    same = stats.rate_vs_reference(50, 100, 0.5)
    assert same["diff"] == 0 and same["p"] == pytest.approx(1.0)


def test_pairs_are_keyed_by_data_and_seed_whatever_the_row_order():
    """In results/full/ each seed appears once per data set: pairing by seed alone was right only by row order."""
    rows = [{"variant": v, "data": d, "seed": s, "test_accuracy": acc + (0.05 if v == "x" else 0) + (0.2 if d == "b"
             else 0)} for v in ("base", "x") for d in ("a", "b") for s, acc in enumerate([0.6, 0.7, 0.65])]
    frame = pd.DataFrame(rows)
    for seed in range(3):
        shuffled = frame.sample(frac=1, random_state=seed)
        cmp = stats.compare(shuffled, "base")
        assert cmp.loc["x", "diff"] == pytest.approx(5.0) and cmp.loc["x", "paired_seeds"] == 6
    with pytest.raises(ValueError, match="pairing them with 'base' would depend on row order"):
        stats.compare(frame.drop(columns="data"), "base")
