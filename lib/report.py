"""`results/REPORT.md`, regenerated from the CSVs the notebooks write.

Nothing in the report is typed by hand: every table and verdict comes from
`results/<experiment>.csv` through `lib.stats`, so re-running a notebook and
then `python -m lib.report` (the ablation notebooks and `make reproduce` do
it for you) keeps the report true.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import pandas as pd

from lib import ablations, stats
from lib.atomic import write_text
from lib.cli import Parser
from lib.grid import Sweep
from lib.paths import results_dir
from lib.profiles import check_profile
from lib.store import load_experiment

TITLES = {
    "warmup": "03 · Learning-rate warmup and schedule",
    "weight_decay": "04 · Weight decay: how much, on what, AdamW vs Adam+L2",
    "llrd": "05 · Layer-wise learning-rate decay ξ",
    "batch_seq": "07 · Batch size, maximum length and truncation",
}


def _md(df: pd.DataFrame) -> str:
    return df.to_markdown()


def stored_grid(sweep: Sweep, rows: pd.DataFrame) -> tuple[Sweep, dict[str, str], bool]:
    """The grid at the precision (bf16 or fp32) most of its stored rows have, its run ids, and that precision.

    A run's precision is part of its identity and `bf16=None` resolves per machine, so the report reads the
    precision that was stored instead of this machine's default: it renders the same on every machine.
    """
    options = []
    for bf16 in (True, False):
        grid = replace(sweep, base=sweep.base.with_overrides(bf16=bf16))
        ids = grid.run_ids()
        options.append((int(rows["run_id"].isin(ids).sum()) if not rows.empty else 0, bf16, grid, ids))
    n, bf16, grid, ids = max(options, key=lambda o: o[0])
    return grid, ids, bf16


def ablation_section(name: str, profile: str) -> str:
    """Headline table and generated verdicts of one ablation, from its CSV."""
    rows = load_experiment(ablations.sweep(name, profile).experiment, profile)
    sweep, ids, bf16 = stored_grid(ablations.sweep(name, profile), rows)
    lines = [f"## {TITLES[name]}", ""]
    if rows.empty or not rows["run_id"].isin(ids).any():
        return "\n".join(lines + [f"No runs stored yet: run `python -m lib.sweep {name} --profile {profile}`.", ""])
    rows = rows[rows["run_id"].isin(ids)].copy()
    rows["variant"] = rows["run_id"].map(ids)
    rows["seed"] = rows["train.seed"]
    order = list(sweep.variants)
    rows = rows.sort_values("variant", key=lambda v: v.map(order.index), kind="stable")
    missing = len(ids) - len(rows)
    for data, df in rows.groupby("data", sort=False):
        cmp = stats.compare(df, sweep.baseline)
        secs = df.groupby("variant", sort=False)[["train_seconds", "test_seconds"]].mean().sum(axis=1)
        tab = stats.table(cmp, sweep.baseline).drop(columns="verdict")
        tab["s/run"] = secs.reindex(tab.index).round(0).astype(int)
        lines += [
            f"**{data}**, test accuracy over seeds {sorted(df['seed'].unique().tolist())}, "
            f"{'bf16' if bf16 else 'fp32'} "
            f"(baseline: {sweep.baseline}; failed = at or below the majority class, "
            f"{100 * df['test_majority'].iloc[0]:.1f}%):",
            "",
            _md(tab),
            "",
            "Verdicts (paired over seeds, 95% confidence):",
            "",
        ]
        lines += [f"- {stats.verdict(n, r, sweep.baseline)}" for n, r in cmp.iterrows() if n != sweep.baseline]
        minutes = (df["train_seconds"] + df["test_seconds"]).sum() / 60
        lines += [
            "",
            f"Compute of this grid: {minutes:.1f} min of training and testing over {len(df)} runs (2-core CPU), "
            "whichever notebook or sweep trained them.",
            "",
        ]
    if missing:
        lines += [f"*{missing} of {len(ids)} runs of this grid are not stored yet.*", ""]
    return "\n".join(lines)


def baseline_section(profile: str) -> str:
    df = load_experiment("finetune_baseline", profile)
    if df.empty:
        return ""
    tab = stats.mean_std(df, ["data", "train.lr"], ["test_accuracy", "test_macro_f1"]).reset_index()
    tab["train.lr"] = tab["train.lr"].map(ablations.lr_label)
    tab.columns = ["data", "lr", "test accuracy (%)", "test macro-F1 (%)", "seeds"]
    return "\n".join(["## 02 · Baseline fine-tuning (minilm-l6)", "", tab.to_markdown(index=False), ""])


def times_section(profile: str) -> str:
    path = results_dir(profile) / "notebook_times.csv"
    if not path.exists():
        return ""
    t = pd.read_csv(path)
    t["minutes"] = (t["seconds"] / 60).round(1)
    total = (
        f"Total {t['seconds'].sum() / 60:.1f} min. Wall time of each notebook in the last run; a notebook whose runs "
        "were already stored (trained by `python -m lib.sweep` or by another notebook) only replays them, so see each "
        "grid's compute above for the cost of training it."
    )
    return "\n".join(
        ["## Wall time per notebook", "", t.set_index("notebook")[["seconds", "minutes"]].to_markdown(), "", total, ""]
    )


def build(profile: str = "quick") -> str:
    """The whole report as Markdown."""
    parts = [
        f"# Results report ({profile} profile)",
        "",
        f"Generated by `python -m lib.report --profile {profile}` from the CSVs in this folder; "
        "do not edit by hand. Accuracy is test accuracy in %, mean ± sample std over seeds; Δ is the paired difference "
        "to the baseline over the same seeds; a verdict is *significant* when its 95% t-interval excludes 0.",
        "",
        baseline_section(profile),
        *(ablation_section(name, profile) for name in ablations.SWEEPS),
        times_section(profile),
    ]
    return "\n".join(p for p in parts if p is not None)


def write(profile: str = "quick") -> str:
    """Write `REPORT.md` atomically into the profile's results folder; return its path."""
    return str(write_text(results_dir(check_profile(profile)) / "REPORT.md", build(profile)))


def main(argv: list[str] | None = None) -> int:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_profile()
    print(write(parser.parse_args(argv).profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
