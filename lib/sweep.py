"""Grids of named overrides × data sets × seeds, run through the trainer, resumable.

A `Sweep` is an ablation: a base `FinetuneSpec`, named variants (each a dict of
fields to override), the variant that is the baseline, data sets and seeds.
`run_sweep` replays every run already stored (a finished run is never run
twice, and an interrupted sweep resumes where it stopped), then trains the
rest under one progress bar whose ETA counts only runs that really train.

The grids themselves live in `lib.ablations`, so a notebook and the command
line run exactly the same runs:

    python -m lib.sweep warmup --profile quick     # notebook 03's grid
    python -m lib.sweep --list
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, field

import pandas as pd
from tqdm.auto import tqdm

from lib import stats
from lib.experiment import FinetuneSpec, run_finetune, runs_frame
from lib.paths import check_profile, results_dir
from lib.results import Run, run_id, stored_path


@dataclass
class Sweep:
    """An ablation grid. `variants` maps a readable name to overrides of `base`."""

    experiment: str
    base: FinetuneSpec
    variants: dict[str, dict]
    baseline: str
    seeds: list[int]
    datasets: list[str] = field(default_factory=lambda: ["movie_snippets"])

    def __post_init__(self) -> None:
        if not self.variants or not self.seeds or not self.datasets:
            raise ValueError(f"Sweep {self.experiment!r} needs at least one variant, seed and data set.")
        if self.baseline not in self.variants:
            raise ValueError(f"Baseline {self.baseline!r} is not one of the variants {list(self.variants)}.")
        self.specs()  # unknown override names fail here, before anything trains

    def specs(self) -> list[tuple[str, FinetuneSpec]]:
        """(variant, spec) for every run, data set by data set, seed-major inside a variant."""
        return [
            (name, self.base.with_overrides(data=data, seed=seed, **overrides))
            for data in self.datasets
            for name, overrides in self.variants.items()
            for seed in self.seeds
        ]

    def run_ids(self) -> dict[str, str]:
        """run_id → variant, to pick this grid's rows out of a results CSV."""
        return {run_id(asdict(spec)): name for name, spec in self.specs()}


@dataclass
class SweepResult:
    """Every run of a sweep: `frame` (one row per run, with `variant`, `data`, `seed`)
    and the `Run` objects (histories, confusion matrices, predictions)."""

    sweep: Sweep
    frame: pd.DataFrame
    runs: list[tuple[str, Run]]

    def run(self, variant: str, seed: int | None = None, data: str | None = None) -> Run:
        """One run of a variant (first seed and data set unless named)."""
        for name, r in self.runs:
            if name == variant and (seed is None or r.config["train"]["seed"] == seed) and (data is None or r.config["data"] == data):
                return r
        raise KeyError(f"No run for variant {variant!r} (seed {seed}, data {data}).")


def run_sweep(sweep: Sweep, profile: str = "quick", force: bool = False, progress: bool = True) -> SweepResult:
    """Run (or replay) every run of `sweep`; return them with a tidy frame."""
    check_profile(profile)
    specs = sweep.specs()
    stored = [not force and stored_path(sweep.experiment, asdict(s), profile) is not None for _, s in specs]
    runs: list[tuple[str, Run] | None] = [None] * len(specs)
    for i, (name, spec) in enumerate(specs):
        if stored[i]:
            runs[i] = (name, run_finetune(sweep.experiment, spec, profile))
    todo = [i for i, done in enumerate(stored) if not done]
    if progress:
        print(f"{sweep.experiment}: {len(specs)} runs, {len(specs) - len(todo)} stored, {len(todo)} to train", flush=True)
    bar = tqdm(todo, desc=sweep.experiment, unit="run", disable=not progress or not todo)
    for i in bar:
        name, spec = specs[i]
        bar.set_postfix_str(f"{spec.data} · {name} · seed {spec.train.seed}")
        runs[i] = (name, run_finetune(sweep.experiment, spec, profile, force))
    bar.close()
    done = [r for r in runs if r is not None]
    return SweepResult(sweep, sweep_frame(done), done)


def summarize(result: SweepResult, profile: str = "quick") -> dict[str, pd.DataFrame]:
    """`lib.stats.compare` per data set (failures against that test set's majority
    class), also written to `results/<experiment>_summary.csv`."""
    out = {
        data: stats.compare(df, result.sweep.baseline, majority=float(df["test_majority"].iloc[0]))
        for data, df in result.frame.groupby("data", sort=False)
    }
    path = results_dir(profile) / f"{result.sweep.experiment}_summary.csv"
    tmp = path.with_suffix(".tmp")
    pd.concat(out, names=["data"]).to_csv(tmp)
    tmp.replace(path)
    return out


def show_summaries(result: SweepResult, summaries: dict[str, pd.DataFrame], verdicts: bool = True) -> None:
    """In a notebook: per data set the summary table and, optionally, the generated verdicts."""
    from IPython.display import Markdown, display

    for data, cmp in summaries.items():
        majority = 100 * result.frame.loc[result.frame["data"] == data, "test_majority"].iloc[0]
        display(Markdown(f"**{data}** (majority class {majority:.1f}% of the test set)"))
        display(stats.table(cmp, result.sweep.baseline).drop(columns="verdict"))
        if verdicts:
            lines = [f"* {stats.verdict(n, r, result.sweep.baseline)}" for n, r in cmp.iterrows() if n != result.sweep.baseline]
            display(Markdown("\n".join(lines)))


def sweep_frame(runs: list[tuple[str, Run]]) -> pd.DataFrame:
    """runs_frame plus the columns every ablation table groups by."""
    frame = runs_frame([r for _, r in runs])
    frame.insert(0, "variant", [name for name, _ in runs])
    frame["seed"] = frame["train.seed"]
    frame["seconds"] = frame["train_seconds"] + frame["test_seconds"]
    return frame


def main(argv: list[str] | None = None) -> int:
    from lib import ablations  # the grids import this module

    parser = argparse.ArgumentParser(description="Run one ablation grid (the same runs as its notebook).")
    parser.add_argument("ablation", nargs="?", help=f"one of {list(ablations.SWEEPS)}")
    parser.add_argument("--profile", default="quick", help="smoke | quick | full")
    parser.add_argument("--force", action="store_true", help="train again even where a run is stored")
    parser.add_argument("--list", action="store_true", help="list the grids and their sizes, train nothing")
    args = parser.parse_args(argv)
    if args.list or not args.ablation:
        for name, make in ablations.SWEEPS.items():
            s = make(args.profile)
            print(f"{name:14s} {s.experiment:22s} {len(s.variants)} variants × {len(s.seeds)} seeds × {len(s.datasets)} data sets")
        return 0
    try:
        grid = ablations.sweep(args.ablation, check_profile(args.profile))
    except ValueError as err:
        parser.error(str(err))  # one line and exit status 2, before anything trains
    result = run_sweep(grid, args.profile, args.force)
    for data, cmp in summarize(result, args.profile).items():
        print(f"\n{data}\n" + stats.table(cmp, result.sweep.baseline).drop(columns="verdict").to_string())
        print("\n".join(stats.verdict(n, r, result.sweep.baseline) for n, r in cmp.iterrows()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
