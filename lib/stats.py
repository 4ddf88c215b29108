"""Summaries over seeds: a number without its spread is not a result.

`compare` is what every ablation table is made of: per variant the mean ± std
over seeds, a 95% confidence interval, the failure rate, and the paired
difference to the baseline over the seeds both share (same seed = same
classifier initialisation and batch order, so pairing removes that noise).
`verdict` turns one row into the sentence the notebooks and REPORT.md print;
no verdict is typed by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as st

ALPHA = 0.05
"""Two-sided level of every interval and test: 95% confidence."""


def mean_std(
    df: pd.DataFrame, by: list[str] | str, cols: list[str], scale: float = 100.0, digits: int = 1
) -> pd.DataFrame:
    """One row per group: 'mean ± std' of each column (×`scale`, e.g. to %), and n seeds.

    std is the sample standard deviation (ddof=1) over seeds; with one seed it is shown as '± –'.
    """
    by = [by] if isinstance(by, str) else by
    rows = []
    for key, g in df.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        for c in cols:
            m, s = g[c].mean() * scale, g[c].std(ddof=1) * scale
            row[c] = f"{m:.{digits}f} ± {s:.{digits}f}" if len(g) > 1 else f"{m:.{digits}f} ± –"
        row["seeds"] = len(g)
        rows.append(row)
    return pd.DataFrame(rows).set_index(by)


def failed(accuracy: pd.Series, majority: float | pd.Series, tolerance: float = 1e-9) -> pd.Series:
    """True where a run's accuracy is at or below the majority-class rate (Mosbach et al. 2021)."""
    return accuracy <= majority + tolerance


def failed_runs(frame: pd.DataFrame, metric: str = "test_accuracy") -> pd.Series:
    """The failure rule, per run: at or below *its own* test set's majority class, or diverged (NaN loss)."""
    out = failed(frame[metric], frame["test_majority"])
    if "diverged" in frame:
        out |= frame["diverged"].fillna(False).astype(bool)
    return out


def ci95(values: np.ndarray | pd.Series) -> tuple[float, float]:
    """Student-t 95% interval for the mean of `values` (NaN, NaN with fewer than 2)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return math.nan, math.nan
    half = st.t.ppf(1 - ALPHA / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def compare(
    df: pd.DataFrame,
    baseline: str,
    metric: str = "test_accuracy",
    by: str = "variant",
    seed: str = "seed",
    majority: float | None = None,
    scale: float = 100.0,
) -> pd.DataFrame:
    """Per variant (rows in first-seen order): n, mean, std, ci_low, ci_high,
    failed (runs at or below `majority`, or by default `failed_runs`), and vs the `baseline` variant over
    shared seeds: diff, diff_std, diff_ci_low, diff_ci_high, p (paired t-test),
    significant (the interval excludes 0). Values ×`scale` (points)."""
    if baseline not in set(df[by]):
        raise ValueError(f"Baseline variant {baseline!r} is not among the runs {sorted(set(df[by]))}.")
    base = df[df[by] == baseline].set_index(seed)[metric] * scale
    rows = []
    for name, g in df.groupby(by, sort=False):
        x = g[metric].to_numpy(dtype=float) * scale
        lo, hi = ci95(x)
        row = {
            by: name,
            "n": len(x),
            "mean": x.mean(),
            "std": x.std(ddof=1) if len(x) > 1 else math.nan,
            "ci_low": lo,
            "ci_high": hi,
        }
        if majority is not None:
            row["failed"] = int(failed(g[metric], majority).sum())
        elif "test_majority" in g:
            row["failed"] = int(failed_runs(g, metric).sum())
        paired = g.set_index(seed)[metric] * scale
        shared = sorted(set(paired.index) & set(base.index))
        d = (paired.loc[shared] - base.loc[shared]).to_numpy(dtype=float)
        dlo, dhi = ci95(d)
        row |= {
            "paired_seeds": len(d),
            "diff": d.mean() if len(d) else math.nan,
            "diff_std": d.std(ddof=1) if len(d) > 1 else math.nan,
            "diff_ci_low": dlo,
            "diff_ci_high": dhi,
            "p": _paired_p(d),
            "significant": bool(len(d) > 1 and (dlo > 0 or dhi < 0)),
        }
        rows.append(row)
    return pd.DataFrame(rows).set_index(by)


def _paired_p(d: np.ndarray) -> float:
    if len(d) < 2:
        return math.nan
    if np.allclose(d, d[0]):  # no spread: the t statistic is undefined
        return 0.0 if d[0] != 0 else 1.0
    return float(st.ttest_1samp(d, 0.0).pvalue)


def verdict(name: str, row: pd.Series, baseline: str, unit: str = "points") -> str:
    """One generated sentence for a `compare` row, e.g.
    'ξ=0.95 vs ξ=1.0: +0.4 ± 0.3 points over 5 paired seeds (95% CI −0.0 to +0.8), not significant'."""
    if name == baseline:
        spread = f"{row['std']:.1f}" if row["std"] == row["std"] else "–"
        return f"{name}: the baseline, {row['mean']:.1f} ± {spread} over {row['n']} seed(s)"
    n = int(row["paired_seeds"])
    if n < 2:
        return f"{name} vs {baseline}: {row['diff']:+.1f} {unit} on {n} shared seed — too few seeds for a verdict"
    word = "significant" if row["significant"] else "not significant"
    return (
        f"{name} vs {baseline}: {row['diff']:+.1f} ± {row['diff_std']:.1f} {unit} over {n} paired seeds "
        f"(95% CI {row['diff_ci_low']:+.1f} to {row['diff_ci_high']:+.1f}), {word}"
    )


def table(cmp: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The human-readable version of `compare`: strings with their spread, and the verdict."""
    out = pd.DataFrame(index=cmp.index)
    out["accuracy (%)"] = [f"{m:.1f} ± {s:.1f}" if s == s else f"{m:.1f} ± –" for m, s in zip(cmp["mean"], cmp["std"])]
    out["95% CI"] = [f"{lo:.1f} – {hi:.1f}" if lo == lo else "–" for lo, hi in zip(cmp["ci_low"], cmp["ci_high"])]
    if "failed" in cmp:
        out["failed runs"] = [f"{f}/{n}" for f, n in zip(cmp["failed"], cmp["n"])]
    out["Δ vs baseline (paired)"] = [
        "baseline" if name == baseline else (f"{d:+.1f} ± {s:.1f}" if s == s else f"{d:+.1f}")
        for name, d, s in zip(cmp.index, cmp["diff"], cmp["diff_std"])
    ]
    out["verdict"] = [verdict(name, row, baseline) for name, row in cmp.iterrows()]
    return out


def paired_comparison(frame: pd.DataFrame, by: str, baseline: str, metric: str = "test_accuracy") -> str:
    """The generated verdict of every arm of `frame[by]` against `baseline`, paired by seed, with failures counted."""
    cmp = compare(frame.assign(seed=frame.get("seed", frame.get("train.seed"))), baseline, metric, by=by)
    lines = [verdict(name, row, baseline) for name, row in cmp.iterrows()]
    if "failed" in cmp:
        lines.append(
            "failed runs (at or below the majority class): "
            + ", ".join(f"{name} {row['failed']}/{row['n']}" for name, row in cmp.iterrows())
        )
    return "\n".join(f"* {line}" for line in lines)


def extremes(cmp: pd.DataFrame, families: dict[str, list[str]]) -> str:
    """Per family of variants (e.g. one learning rate): the best and the worst mean, and failed runs, as Markdown."""
    lines = []
    for label, names in families.items():
        rows = cmp.loc[[n for n in names if n in cmp.index]]
        best, worst = rows["mean"].idxmax(), rows["mean"].idxmin()
        fails = f"; failed runs {int(rows['failed'].sum())} of {int(rows['n'].sum())}" if "failed" in rows else ""
        lines.append(
            f"* **{label}**: best {best} ({rows.loc[best, 'mean']:.1f} ± {rows.loc[best, 'std']:.1f}), "
            f"worst {worst} ({rows.loc[worst, 'mean']:.1f} ± {rows.loc[worst, 'std']:.1f}){fails}."
        )
    return "\n".join(lines)


def vs_floor(table: pd.DataFrame, floor: pd.DataFrame, by: list[str], metric: str = "test_accuracy") -> str:
    """Per group of runs (e.g. data set × rate), mean ± std over seeds against a deterministic floor
    (`floor`: one row per `data` with `metric`): the one-sample 95% interval of accuracy − floor decides."""
    lines = []
    for key, g in table.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        x = 100 * g[metric].to_numpy(dtype=float)
        ref = 100 * float(floor.set_index("data").loc[g["data"].iloc[0], metric])
        lo, hi = ci95(x - ref)
        where = "above the floor" if lo > 0 else "below the floor" if hi < 0 else "not distinguishable from the floor"
        interval = f"95% CI {lo:+.1f} to {hi:+.1f}" if lo == lo else "one seed: no interval"
        label = ", ".join(f"{k} {_number(v)}" for k, v in zip(by, key))
        lines.append(
            f"* **{label}**: {x.mean():.1f} ± {x.std(ddof=1) if len(x) > 1 else math.nan:.1f}% over {len(x)} "
            f"seed(s) (min {x.min():.1f}, max {x.max():.1f}); TF-IDF floor {ref:.1f}%: "
            f"{x.mean() - ref:+.1f} points ({interval}), {where}."
        )
    return "\n".join(lines)


def _number(v) -> str:
    """1e-4 rather than 0.0001 for small numbers (how the papers write rates); other values as they are."""
    if isinstance(v, float) and 0 < abs(v) < 0.01:
        mantissa, exp = f"{v:.0e}".split("e")
        return f"{mantissa}e{int(exp)}"
    return f"{v:g}" if isinstance(v, float) else str(v)
