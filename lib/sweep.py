"""Run an ablation grid: every cell through the run store, resumable, then summarised over seeds.

`run_sweep` replays every run already stored (a finished run is never run
twice, and an interrupted sweep resumes where it stopped), then trains the
rest under one progress bar whose ETA counts only runs that really train. A
run whose loss turns NaN is recorded as a (failed) run, not a crash. The
grids live in `lib.ablations`, so a notebook and the command line run the
same runs:

    python -m lib.sweep warmup --profile quick     # notebook 03's grid
    python -m lib.sweep warmup --shard 0/2         # half of it (another process runs 1/2)
    python -m lib.sweep --list
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import pandas as pd
from tqdm.auto import tqdm

from lib import ablations, finetune, parallel, stats, store
from lib.cli import Parser, seeds
from lib.data import data_label
from lib.grid import Grid
from lib.models import load_model
from lib.optim import param_groups
from lib.paths import results_dir
from lib.probes import WeightStats
from lib.profiles import Profile
from lib.source import DataSource
from lib.store import Run


@dataclass
class SweepResult:
    """Every run of a sweep: `frame` (one row per run, with `variant`, `data`, `seed`)
    and the `Run` objects (histories, confusion matrices, predictions)."""

    grid: Grid
    frame: pd.DataFrame
    runs: list[tuple[str, Run]]

    def run(self, variant: str, seed: int | None = None, data: str | DataSource | None = None) -> Run:
        """One run of a variant (first seed and data set unless named)."""
        for name, r in self.runs:
            seed_ok = seed is None or r.config["train"]["seed"] == seed
            if name == variant and seed_ok and (data is None or data_label(r.config["data"]) == data_label(data)):
                return r
        raise KeyError(f"No run for variant {variant!r} (seed {seed}, data {data}).")


def run_sweep(
    grid: Grid, profile: Profile, force: bool = False, progress: bool = True, shard: tuple[int, int] = (0, 1)
) -> SweepResult:
    """Run (or replay) every run of `grid` — or of shard i of n — and return them with a tidy frame."""
    i, n = shard
    progress = progress and parallel.is_main()  # launched as several processes: one prints
    specs = [cell for k, cell in enumerate(grid.specs()) if k % n == i]
    stored = [not force and store.stored_path(grid.experiment, s.identity(), profile) is not None for _, s in specs]
    todo = sum(not s for s in stored)
    if progress:
        print(f"{grid.experiment}: {len(specs)} runs, {len(specs) - todo} stored, {todo} to train", flush=True)
    bar = tqdm(total=todo, desc=grid.experiment, unit="run", disable=not progress or not todo)
    runs = []
    for (name, spec), done in zip(specs, stored):  # stored runs come back at once; the bar counts the rest
        if not done:
            bar.set_postfix_str(f"{spec.data} · {name} · seed {spec.train.seed}")
        runs.append((name, store.run(grid.experiment, spec, profile, force, stop_on_divergence=True)))
        bar.update(0 if done else 1)
    bar.close()
    return SweepResult(grid, sweep_frame(runs), runs)


def sweep_frame(runs: list[tuple[str, Run]]) -> pd.DataFrame:
    """runs_frame plus the columns every ablation table groups by."""
    frame = store.runs_frame([r for _, r in runs])
    frame.insert(0, "variant", [name for name, _ in runs])
    frame["data"] = [data_label(r.config["data"]) for _, r in runs]
    frame["seed"] = frame["train.seed"]
    frame["seconds"] = frame["train_seconds"] + frame["test_seconds"]
    return frame


def summarize(result: SweepResult, profile: Profile) -> dict[str, pd.DataFrame]:
    """`lib.stats.compare` per data set (failures against that test set's majority
    class), also written to `results/<experiment>_summary.csv`."""
    out = {data: stats.compare(df, result.grid.baseline) for data, df in result.frame.groupby("data", sort=False)}
    path = results_dir(profile) / f"{result.grid.experiment}_summary.csv"
    store.write_table(pd.concat(out, names=["data"]), path)
    return out


def show_summaries(result: SweepResult, summaries: dict[str, pd.DataFrame], verdicts: bool = True,
                   paired: bool = True) -> None:
    """In a notebook: per data set the summary table (`paired`: with each cell's paired difference to the grid's
    baseline, where that is the comparison that matters) and, optionally, the generated sentences."""
    from IPython.display import Markdown, display

    base = result.grid.baseline
    for data, cmp in summaries.items():
        majority = 100 * result.frame.loc[result.frame["data"] == data, "test_majority"].iloc[0]
        display(Markdown(f"**{data}** (majority class {majority:.1f}% of the test set)"))
        table = stats.comparison_table(cmp, base).drop(columns="verdict")
        display(table if paired else table.drop(columns="Δ vs baseline (paired)"))
        if verdicts:
            lines = [f"* {stats.comparison_sentence(n, r, base)}" for n, r in cmp.iterrows() if n != base]
            display(Markdown("\n".join(lines)))


def weight_norm_changes(result: SweepResult, data: str) -> pd.DataFrame:
    """Notebook 04: per run, how the weight norms changed from the starting weights (pretrained encoder + the
    seed's new classifier, rebuilt here) to the end of training, ‖θ − θ₀‖ at the end, and its test accuracy: the
    shrink each arm achieved beside what it scored."""
    grid, rows, starts = result.grid, [], {}
    for name in grid.variants:
        for s in grid.seeds_of(name):
            if s not in starts:
                names = result.run(grid.baseline, grid.seeds[0], data).metrics["label_names"]
                model = load_model(grid.base.model, label_names=names, seed=s)[1]
                starts[s] = WeightStats(param_groups(model, lr=1.0))()
            run, start = result.run(name, s, data), starts[s]
            last = run.history.dropna(subset=["norm/matrices"]).iloc[-1]
            rows.append({
                "variant": name,
                "seed": s,
                "Δ‖W‖ matrices (%)": 100 * (last["norm/matrices"] / start["norm/matrices"] - 1),
                "Δ‖b, γ‖ bias+LN (%)": 100 * (last["norm/bias_and_norm"] / start["norm/bias_and_norm"] - 1),
                "‖θ − θ₀‖ at the end": last["norm/moved"],
                "test accuracy (%)": 100 * run.metrics["test_accuracy"],
            })
    order = list(grid.variants)
    return pd.DataFrame(rows).sort_values("variant", key=lambda v: v.map(order.index), kind="stable")


def cost_table(frame: pd.DataFrame) -> pd.DataFrame:
    """What each cell costs, mean ± std over seeds: training wall time (the loop with validation, test excluded),
    updates, sentences and real tokens per second (notebook 07)."""
    cost = frame.assign(sentences_per_s=frame["steps"] * frame["train.batch_size"] / frame["train_seconds"])
    cols = ["train_seconds", "steps", "sentences_per_s", "train_tokens_per_s"]
    table = stats.mean_std(cost, ["data", "variant"], cols, scale=1.0, digits=1)
    table.columns = ["training wall time (s)", "updates", "sentences / s", "real tokens / s", "seeds"]
    return table


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes i/n (e.g. 0/2), got {text!r}") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"--shard i/n needs 0 ≤ i < n, got {text!r}")
    return i, n


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lib.sweep", description="Run one ablation grid (the same runs as its notebook).")
    parser.add_argument("ablation", nargs="?", help=f"one of {list(ablations.GRIDS)}")
    parser.add_profile()
    parser.add_argument("--force", action="store_true", help="train again even where a run is stored")
    parser.add_argument("--list", action="store_true", help="list the grids and their sizes, train nothing")
    parser.add_argument("--shard", type=_shard, default=(0, 1), help="i/n: run every n-th cell from cell i")
    parser.add_argument("--model", help="a shipped name, a folder written by save_pretrained, or a hub name")
    parser.add_argument("--seeds", type=seeds, help="comma-separated seeds for every cell (default: the grid's)")
    parser.add_argument("--variants", help="only these variants (comma-separated names from --list; baseline kept)")
    parser.add_data_options(required=False)
    args = parser.parse_args(argv)
    source = parser.source(args)
    try:
        grids = None
        if args.ablation and not args.list:
            grid = ablations.get(args.ablation, args.profile)
            grid = grid.subset([v.strip() for v in args.variants.split(",")]) if args.variants else grid
            custom = source or args.model or args.seeds
            sizes = finetune.budget_sizes(args.profile, source) if source else {}  # your data: every row
            grids = [grid.on(source, args.model, args.seeds, **sizes) if custom else grid]
            if source:
                grids[0].base.with_overrides(data=source).dataset()  # a bad file fails here, before training
    except ValueError as err:
        parser.error(str(err))  # one line and exit status 2, before anything trains
    if grids is None:
        for name in ablations.GRIDS:
            s = ablations.get(name, args.profile)
            sizes = f"{len(s.variants)} variants × {len(s.seeds)} seeds × {len(s.datasets)} data sets"
            print(f"{name:14s} {s.experiment:22s} {sizes}")
            print("\n".join(f"{'':16s}· {v}" for v in s.variants))
        return 0
    result = run_sweep(grids[0], args.profile, args.force, shard=args.shard)
    if not parallel.is_main():
        return 0
    if args.shard != (0, 1):
        print(f"shard {args.shard[0]}/{args.shard[1]} done; run without --shard to summarise the whole grid")
        return 0
    base = result.grid.baseline
    for data, cmp in summarize(result, args.profile).items():
        print(f"\n{data}\n" + stats.comparison_table(cmp, base).drop(columns="verdict").to_string())
        print("\n".join(stats.comparison_sentence(n, r, base) for n, r in cmp.iterrows()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
