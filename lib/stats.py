"""Summaries over seeds: a number without its spread is not a result.

`compare` is what every ablation table is made of: per variant the mean ± std
over seeds, a 95% confidence interval, the failure rate, and the paired
difference to the baseline over the seeds both share (same seed = same
classifier initialisation and batch order, so pairing removes that noise).
`comparison_sentence` turns one row into the sentence the notebooks and REPORT.md print;
no verdict is typed by hand.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
from scipy import stats as st
from scipy.integrate import quad
from scipy.optimize import brentq

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
    significant (the interval excludes 0). Values ×`scale` (points).

    A pair is one value of every design column but the contrast: the `seed` and, where the frame has them,
    `PAIR_ALSO` (a seed appears once per data set). Two runs of one arm on one key are refused: pairing
    would depend on row order."""
    if baseline not in set(df[by]):
        raise ValueError(f"Baseline variant {baseline!r} is not among the runs {sorted(set(df[by]))}.")
    keys = pair_keys(df, by, seed)
    arms = {name: g.set_index(keys)[metric] * scale for name, g in df.groupby(by, sort=False)}
    for name, values in arms.items():
        if values.index.duplicated().any():
            raise ValueError(f"{name!r} has two runs with the same {keys}: pairing them with {baseline!r} "
                             "would depend on row order; give each its own seed or data set.")
    base = arms[baseline]
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
        paired = arms[name]
        shared = paired.index.intersection(base.index).sort_values()
        d = (paired.loc[shared] - base.loc[shared]).to_numpy(dtype=float)
        dlo, dhi = ci95(d) if not _constant(d) else (math.nan, math.nan)
        p = paired_p(d)
        row |= {
            "paired_seeds": len(d),
            "diff": d.mean() if len(d) else math.nan,
            "diff_std": d.std(ddof=1) if len(d) > 1 else math.nan,
            "diff_ci_low": dlo,
            "diff_ci_high": dhi,
            "p": p,
            "mde": mde_paired(d.std(ddof=1), len(d)) if len(d) > 1 else math.nan,
            "significant": bool(len(d) > 1 and ((dlo > 0 or dhi < 0) if pd.notna(dlo) else p < ALPHA)),
        }
        rows.append(row)
    out = pd.DataFrame(rows).set_index(by)
    out.attrs["baseline"] = baseline
    return out


PAIR_ALSO = ("data",)
"""Design columns a pair shares besides the seed (`compare`)."""


def pair_keys(frame: pd.DataFrame, by: str = "variant", seed: str = "seed") -> list[str]:
    """The columns that make two runs of different arms a pair: the seed, and each of `PAIR_ALSO` the frame
    has (other than the contrast `by`)."""
    return [seed] + [c for c in PAIR_ALSO if c in frame and c not in (by, seed)]


def _constant(d: np.ndarray) -> bool:
    return len(d) > 1 and bool(np.allclose(d, d[0], rtol=0, atol=1e-9))


def paired_p(d: np.ndarray) -> float:
    """Two-sided p of paired differences `d`: the t-test, or where every difference is the same (no spread:
    the t statistic is undefined, and a t-test would say p = 0) the exact sign test, p = 2 · 0.5ⁿ."""
    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return math.nan
    if _constant(d):
        return 1.0 if abs(d[0]) < 1e-9 else min(1.0, 2 * 0.5 ** len(d))
    return float(st.ttest_1samp(d, 0.0).pvalue)


POWER = 0.8
"""Power at which the smallest detectable effect (MDE) is stated."""


def t_power(d: float, n: int, alpha: float = ALPHA) -> float:
    """Exact power of the two-sided one-sample (paired) t-test on `n` values at true effect `d` (Cohen's d):
    T = (Z + d√n) / √(V/ν) with V ~ χ²(ν), ν = n − 1, so P(|T| > c) = E_V[Φ(d√n − c√(V/ν)) + Φ(−d√n − c√(V/ν))],
    one integral over V, taken where scipy's noncentral t fails: it returns NaN at ν = 2 for some effects, and
    statsmodels' `TTestPower`, built on it, then stops short (d 7.17 at n = 3, α = 0.01, where the power is
    0.787; the solution is 7.32)."""
    nu, nc = n - 1, d * math.sqrt(n)
    c = st.t.ppf(1 - alpha / 2, nu)
    fast = st.nct.sf(c, nu, nc) + st.nct.cdf(-c, nu, nc)
    if math.isfinite(fast):
        return float(fast)

    def at(v: float) -> float:
        cut = c * math.sqrt(v / nu)
        return (st.norm.cdf(nc - cut) + st.norm.cdf(-nc - cut)) * st.chi2.pdf(v, nu)

    return float(quad(at, st.chi2.ppf(1e-12, nu), st.chi2.ppf(1 - 1e-12, nu), limit=200)[0])


def mde_paired(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest true mean difference a two-sided paired t-test on `n` pairs detects with `power` at level
    `alpha`, when the differences spread with standard deviation `sd`: the exact noncentral-t solution
    (`t_power`), in the units of `sd`. The central-t shortcut (t_{1−α/2} + t_power)·sd/√n is 5% optimistic at
    n = 3, α = 0.05, and 15% at α = 0.01."""
    if n < 2 or pd.isna(sd) or sd <= 0:
        return math.nan
    return float(_cohens_d(n, alpha, power) * sd)


@functools.lru_cache(maxsize=512)
def _cohens_d(n: int, alpha: float, power: float) -> float:
    return float(brentq(lambda d: t_power(d, n, alpha) - power, 1e-6, 1e4, xtol=1e-10))


def seeds_needed(effect: float, sd: float, alpha: float = ALPHA, power: float = POWER, most: int = 100_000) -> int:
    """Fewest pairs a paired t-test needs to detect `effect` with `power` when differences spread by `sd`
    (the MDE falls as n grows: double until it is small enough, then bisect)."""
    enough = lambda n: mde_paired(sd, n, alpha, power) <= abs(effect)  # noqa: E731
    lo, hi = 1, 2
    while hi < most and not enough(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, most)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return hi


def holm(p: list[float] | np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values for one family of tests (NaN entries are not tests and stay NaN)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson 95% interval of k successes in n (sound at 0/10 and 10/10, where the Wald interval collapses)."""
    return _wilson(k, n, st.norm.ppf(1 - ALPHA / 2))


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre, half = (p + z * z / (2 * n)), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def rate_difference(k_a: int, n_a: int, k_b: int, n_b: int) -> dict[str, float]:
    """Failure counts of two arms: the rate difference a − b (in points) with Newcombe's 95% interval
    (from Wilson intervals; fine at 0/10 where the Wald interval collapses), and Fisher's exact two-sided p."""
    z = st.norm.ppf(1 - ALPHA / 2)
    pa, pb = k_a / n_a, k_b / n_b
    (la, ua), (lb, ub) = _wilson(k_a, n_a, z), _wilson(k_b, n_b, z)
    d = pa - pb
    lo = d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    hi = d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    p = st.fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]]).pvalue
    return {"diff": 100 * d, "ci_low": 100 * lo, "ci_high": 100 * hi, "p": float(p)}


def fisher_mde(
    n_a: int, n_b: int, rate_b: float, direction: int = 1, alpha: float = ALPHA, power: float = POWER
) -> float:
    """Smallest change of arm a's failure rate from arm b's `rate_b` (points; a rise for `direction` 1, a fall
    for −1) that Fisher's exact test on n_a vs n_b runs detects with `power`: exact power, by enumerating
    every outcome. NaN if no change in that direction reaches it (e.g. a rise from 100%)."""
    reject = np.array([[st.fisher_exact([[i, n_a - i], [j, n_b - j]]).pvalue < alpha for j in range(n_b + 1)]
                       for i in range(n_a + 1)])
    pb = st.binom.pmf(np.arange(n_b + 1), n_b, rate_b)
    for rate_a in np.linspace(rate_b, 1.0 if direction > 0 else 0.0, 201)[1:]:
        pa = st.binom.pmf(np.arange(n_a + 1), n_a, rate_a)
        if float(pa @ reject @ pb) >= power:
            return float(100 * abs(rate_a - rate_b))
    return math.nan


def rate_vs_reference(k: int, n: int, reference: float, alpha: float = ALPHA) -> dict[str, float]:
    """One rate against a fixed reference (NSP accuracy against chance 50%, MLM accuracy against the
    frequent-token guess on the same tokens): the difference in points, its exact (Clopper-Pearson) 95%
    interval, the exact two-sided binomial p, and the smallest difference n trials detect with 80% power at
    level `alpha` (normal approximation at the reference rate)."""
    r = st.binomtest(k, n, reference)
    ci = r.proportion_ci(confidence_level=1 - ALPHA, method="exact")
    z = st.norm.ppf(1 - alpha / 2) + st.norm.ppf(POWER)
    return {"diff": 100 * (k / n - reference), "ci_low": 100 * (ci.low - reference),
            "ci_high": 100 * (ci.high - reference), "p": float(r.pvalue),
            "mde": 100 * z * math.sqrt(reference * (1 - reference) / n)}


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray, alpha: float = ALPHA) -> dict[str, float]:
    """Two models on the same test set, one run each: accuracy difference a − b (points), its 95% interval
    (paired-proportion Wald), the exact McNemar p (binomial on the discordant sentences), and the MDE at
    level `alpha`."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    n, only_a, only_b = len(a), int((a & ~b).sum()), int((~a & b).sum())
    d = (only_a - only_b) / n
    se = math.sqrt(max(only_a + only_b - n * d * d, 0.0)) / n
    z = st.norm.ppf(1 - ALPHA / 2)
    p = st.binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
    mde = (st.norm.ppf(1 - alpha / 2) + st.norm.ppf(POWER)) * math.sqrt(max(only_a + only_b, 1)) / n
    return {"diff": 100 * d, "ci_low": 100 * (d - z * se), "ci_high": 100 * (d + z * se), "p": float(p),
            "mde": 100 * mde, "discordant": only_a + only_b}


def comparison_sentence(name: str, row: pd.Series, baseline: str, unit: str = "points") -> str:
    """One generated sentence for a `compare` row, e.g.
    'ξ=0.95 vs ξ=1.0: +0.4 ± 0.3 points over 5 paired seeds (95% CI −0.0 to +0.8), not significant'."""
    if name == baseline:
        spread = f"{row['std']:.1f}" if pd.notna(row["std"]) else "–"
        return f"{name}: the baseline, {row['mean']:.1f} ± {spread} over {row['n']} seed(s)"
    n = int(row["paired_seeds"])
    if n < 2:
        return f"{name} vs {baseline}: {row['diff']:+.1f} {unit} on {n} shared seed — too few seeds for a verdict"
    word = "significant" if row["significant"] else "not significant"
    return (
        f"{name} vs {baseline}: {row['diff']:+.1f} ± {row['diff_std']:.1f} {unit} over {n} paired seeds "
        f"(95% CI {row['diff_ci_low']:+.1f} to {row['diff_ci_high']:+.1f}), {word}"
    )


def run_counts(cmp: pd.DataFrame) -> pd.Series:
    """How many runs each row of `compare` counts its `failed` over: its `runs` where a seed's value averages several
    runs (`lib.downstream.compare_arms`), else its n (one run per seed)."""
    return cmp["runs"] if "runs" in cmp else cmp["n"]


def comparison_table(cmp: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The human-readable version of `compare`: strings with their spread, and the verdict."""
    out = pd.DataFrame(index=cmp.index)
    out["accuracy (%)"] = [f"{m:.1f} ± {s:.1f}" if pd.notna(s) else f"{m:.1f} ± –"
                           for m, s in zip(cmp["mean"], cmp["std"])]
    out["95% CI"] = [f"{lo:.1f} – {hi:.1f}" if pd.notna(lo) else "–" for lo, hi in zip(cmp["ci_low"], cmp["ci_high"])]
    if "failed" in cmp:
        out["failed runs"] = [f"{f}/{n}" for f, n in zip(cmp["failed"], run_counts(cmp))]
    out["Δ vs baseline (paired)"] = [
        "baseline" if name == baseline else (f"{d:+.1f} ± {s:.1f}" if pd.notna(s) else f"{d:+.1f}")
        for name, d, s in zip(cmp.index, cmp["diff"], cmp["diff_std"])
    ]
    out["verdict"] = [comparison_sentence(name, row, baseline) for name, row in cmp.iterrows()]
    return out


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
        interval = f"95% CI {lo:+.1f} to {hi:+.1f}" if pd.notna(lo) else "one seed: no interval"
        label = ", ".join(f"{k} {_number(v)}" for k, v in zip(by, key))
        lines.append(
            f"* **{label}**: {x.mean():.1f} ± {x.std(ddof=1) if len(x) > 1 else math.nan:.1f}% over {len(x)} "
            f"seed(s) (min {x.min():.1f}, max {x.max():.1f}); TF-IDF floor {ref:.1f}%: "
            f"{x.mean() - ref:+.1f} points ({interval}), {where}."
        )
    return "\n".join(lines)


def lr_label(lr: float) -> str:
    """1e-4 rather than 0.0001: how the papers write rates (up to 3 significant digits: 1.41e-4)."""
    mantissa, exp = f"{lr:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exp)}"


def _number(v) -> str:
    """1e-4 rather than 0.0001 for small numbers (how the papers write rates); other values as they are."""
    if isinstance(v, float) and 0 < abs(v) < 0.01:
        return lr_label(v)
    return f"{v:g}" if isinstance(v, float) else str(v)
