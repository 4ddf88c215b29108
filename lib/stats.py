"""Summaries over seeds: a number without its spread is not a result."""
from __future__ import annotations

import pandas as pd


def mean_std(df: pd.DataFrame, by: list[str] | str, cols: list[str], scale: float = 100.0, digits: int = 1) -> pd.DataFrame:
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


def failed(accuracy: pd.Series, majority: float, tolerance: float = 1e-9) -> pd.Series:
    """True where a run's accuracy is at or below the majority-class rate (Mosbach et al. 2021)."""
    return accuracy <= majority + tolerance
