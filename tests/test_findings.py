"""findings.csv: one row per comparison, Holm within a notebook's family, verdicts from p_holm only."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lib import findings, stats


def runs(cells: dict[str, list[float]], majority: float = 0.5) -> pd.DataFrame:
    return pd.DataFrame([{"variant": v, "seed": s, "test_accuracy": a, "test_majority": majority}
                         for v, accs in cells.items() for s, a in enumerate(accs)])


def test_a_family_is_holm_corrected_and_only_holm_decides_supported():
    rng = np.random.default_rng(0)
    base = 0.7 + rng.normal(0, 0.02, 10)
    frame = runs({"base": base, "big": base + 0.05 + rng.normal(0, 0.005, 10),
                  "small": base + 0.004 + rng.normal(0, 0.01, 10), "none": base + rng.normal(0, 0.01, 10)})
    fam = findings.family("99", [findings.paired("f", frame, v, "base") for v in ("big", "small", "none")])
    assert list(fam.columns) == findings.COLUMNS and (fam["notebook"] == "99").all()
    assert (fam["p_holm"] >= fam["p"]).all()
    for _, row in fam.iterrows():
        assert (row["verdict"] == findings.SUPPORTED) == (row["p_holm"] < 0.05)
        if row["ci_low"] <= 0 <= row["ci_high"]:
            assert row["verdict"] == findings.NOT_DETECTED
    assert fam.loc[0, "verdict"] == findings.SUPPORTED and fam.loc[0, "mean_diff"] == pytest.approx(5, abs=0.5)
    assert fam["mde"].notna().all()


def test_failure_rows_count_runs_at_or_below_the_majority_class():
    frame = runs({"none": [0.5] * 8 + [0.7] * 2, "warm": [0.5] + [0.72] * 9})
    row = findings.failures("failures", frame, "warm", "none")
    assert row["mean_diff"] == pytest.approx(-70) and row["test"] == "Fisher exact: 1/10 vs 8/10 failed"
    fam = findings.family("03", [row])
    assert fam.loc[0, "verdict"] == findings.SUPPORTED  # one test: Holm p = p ≈ 0.005


def test_rows_without_runs_are_left_out_not_invented():
    assert findings.paired("f", pd.DataFrame(), "a", "b") == {}
    assert findings.family("03", [{}]).empty
    one = findings.family("03", [findings.paired("f", runs({"a": [0.6], "b": [0.7]}), "b", "a")])
    assert one.loc[0, "verdict"] == findings.NO_TEST and math.isnan(one.loc[0, "p"])


def test_an_interaction_is_a_difference_of_paired_differences():
    frame = runs({"a": [0.6, 0.7, 0.65], "a0": [0.6, 0.7, 0.65], "b": [0.8, 0.9, 0.86], "b0": [0.7, 0.8, 0.75]})
    row = findings.difference_of_differences("i", frame, (("b", "b0"), ("a", "a0")), "label")
    assert row["mean_diff"] == pytest.approx(100 * np.mean([0.1, 0.1, 0.11])) and row["n_seeds"] == 3


def test_a_single_model_rate_against_a_fixed_reference():
    """Notebook 01's MLM and NSP rows: an exact binomial test, its verdict from the family's Holm p."""
    weak = findings.against_reference("NSP", 0.6, 100, 0.5, "model", "chance", "pairs")
    strong = findings.against_reference("MLM at [MASK]", 0.07, 10_000, 0.05, "model", "most frequent", "tokens")
    fam = findings.family("01", [weak, strong])
    assert fam["mean_diff"].round(3).tolist() == [10.0, 2.0]
    assert fam["verdict"].tolist() == [findings.NOT_DETECTED, findings.SUPPORTED]
    assert fam["test"].iloc[0] == "exact binomial on 100 held-out pairs"


def test_each_rows_mde_is_at_its_familys_holm_level_and_the_verdict_comes_from_p_alone():
    rng = np.random.default_rng(1)
    base = 0.7 + rng.normal(0, 0.02, 5)
    frame = runs({"base": base, "a": base + 0.01 + rng.normal(0, 0.01, 5), "b": base + rng.normal(0, 0.01, 5),
                  "c": base - 0.01 + rng.normal(0, 0.01, 5), "d": base + rng.normal(0, 0.01, 5)})
    fam = findings.family("99", [findings.paired("f", frame, v, "base") for v in "abcd"])
    assert (fam["mde_level"] == 0.05 / 4).all()
    for v, row in zip("abcd", fam.itertuples()):
        d = (frame[frame.variant == v]["test_accuracy"].to_numpy() - base) * 100
        assert row.mde == pytest.approx(stats.mde_paired(d.std(ddof=1), 5, 0.0125))
        assert row.mde > stats.mde_paired(d.std(ddof=1), 5, 0.05) * 1.4  # 1.47× the uncorrected MDE at n = 5
    # a Fisher row whose Newcombe interval excludes 0 while p = 0.10: not detected, not "after correction"
    fails = runs({"pre": [0.7] * 3, "rand": [0.5] * 3})
    row = findings.family("01", [findings.failures("failure rate", fails, "pre", "rand")]).iloc[0]
    assert row["ci_high"] < 0 and row["p"] == pytest.approx(0.1) and row["verdict"] == findings.NOT_DETECTED
    assert "no change in this direction reaches 80% power at α = 0.05" in findings.sentence(row)


def test_a_sentence_says_what_a_not_detected_row_could_miss():
    frame = runs({"base": [0.70, 0.72, 0.68, 0.71, 0.69], "x": [0.71, 0.71, 0.69, 0.70, 0.70]})
    row = findings.family("99", [findings.paired("f", frame, "x", "base")]).iloc[0]
    assert row["verdict"] == findings.NOT_DETECTED
    assert f"could miss a true effect up to {row['mde']:.1f} points: 80% power at α = 0.05" in \
        findings.sentence(row)


def test_a_curve_failure_row_pairs_each_rate_and_seed():
    """Notebook 03's shift test: McNemar over (rate, seed) pairs; only the pairs whose outcome differs count."""
    cells = {"lo0": [0.7] * 4, "lo1": [0.7] * 4, "hi0": [0.5, 0.5, 0.5, 0.7], "hi1": [0.7, 0.7, 0.5, 0.7]}
    frame = runs(cells).sample(frac=1, random_state=0)  # row order must not matter
    row = findings.curve_failures("f", frame, {1: ("lo1", "lo0"), 2: ("hi1", "hi0")}, "warm", "cold")
    assert row["n_seeds"] == 8 and row["mean_diff"] == pytest.approx(-25.0)  # 1 vs 3 failed of 8 pairs
    assert row["test"] == "McNemar exact on 8 (rate, seed) pairs: 1 vs 3 failed"
    assert row["p"] == pytest.approx(0.5)  # 2 discordant pairs, both one way: 2 · 0.5²


def test_the_failure_curve_and_where_it_crosses_half():
    from lib import ablations, profiles

    smoke = profiles.get("smoke")
    name = ablations.warmup_name
    frame = runs({name(5e-4, 0): [0.7, 0.5], name(1e-3, 0): [0.5, 0.5], name(5e-4, 0.1): [0.7, 0.7],
                  name(1e-3, 0.1): [0.7, 0.5], name(5e-4, 0, optimizer="bertadam"): [0.5, 0.5],
                  name(1e-3, 0, optimizer="bertadam"): [0.5, 0.5]})
    curve = ablations.failure_curve(frame, smoke)
    assert curve.set_index(["arm", "lr"])["failed"].to_dict() == {
        ("warmup 0", 5e-4): 1, ("warmup 0", 1e-3): 2, ("warmup 0.1", 5e-4): 0, ("warmup 0.1", 1e-3): 1,
        ("no bias correction, warmup 0", 5e-4): 2, ("no bias correction, warmup 0", 1e-3): 2}
    assert (curve["CI low"] <= curve["failed (%)"]).all() and (curve["failed (%)"] <= curve["CI high"]).all()
    half = ablations.half_failure_rate(curve)
    assert half["warmup 0"] == pytest.approx(5e-4)  # exactly half at 5e-4
    assert half["warmup 0.1"] == pytest.approx(1e-3) and math.isnan(half["no bias correction, warmup 0"])


def test_findings_stand_beside_their_published_counterparts():
    from lib import published

    table = pd.DataFrame([
        {"notebook": 7, "finding": "truncation: keep the tail instead of the head", "variant": "tail",
         "baseline": "head", "mean_diff": 1.1, "mde": 5.1, "verdict": findings.NOT_DETECTED},
        {"notebook": 4, "finding": "Adam+L2 against AdamW at λ 0.1", "variant": "L2", "baseline": "W",
         "mean_diff": -13.1, "mde": 10.6, "verdict": findings.SUPPORTED}])
    beside = findings.literature(table).set_index("our finding")
    assert beside.loc["Adam+L2 against AdamW at λ 0.1", "agreement"] == "same direction"
    assert beside.loc["truncation: keep the tail instead of the head", "agreement"] == \
        "not detected here (could miss up to 5.1 points): no direction to compare"
    assert "Sun et al. 2019, Table 2" in beside["published"].tolist()
    assert all(c.notebook in findings.FAMILIES for c in published.COUNTERPARTS)


def test_every_published_counterpart_finds_its_row_in_the_committed_findings():
    """A renamed finding must not silently drop its literature row: each pattern matches a committed row."""
    import re

    from lib import published
    from lib.paths import ROOT

    committed = pd.read_csv(ROOT / "results" / "findings.csv")
    for c in published.COUNTERPARTS:
        rows = committed[committed["notebook"].astype(str).str.zfill(2) == c.notebook]
        assert any(re.search(c.finding, f) for f in rows["finding"]), f"{c.notebook}: no row matches {c.finding!r}"
