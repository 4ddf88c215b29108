"""What each notebook is built from and what it costs, rendered from `lib.profiles` and the stored runs — never typed.

A notebook's header says its question; its design (data, sizes, batch, epochs,
updates, seeds, cells) and its time come from here, so a profile that changes
or a notebook that is re-run cannot leave a stale number behind:

* `design(notebook, profile)` — the design table over the three profiles and
  the measured time, as Markdown (each notebook's second cell shows it);
* `notebook_map()` — the README's reading order, with each notebook's question
  (its first heading) and its measured time;
* `compute_by_notebook(profile)` — minutes of training and testing per notebook
  from the stored runs (REPORT.md's time table); `compute_by_part` the same per
  experiment and data set of one notebook.

Times are those `python -m lib.run_notebooks` recorded in
`results/notebook_times.csv` the last time each notebook *computed* runs.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from lib import ablations, pretraining, profiles
from lib.finetune import lr_label
from lib.paths import NOTEBOOKS, notebooks, results_dir
from lib.profiles import FinetuneBudget, Profile
from lib.store import load_experiment

NOTEBOOK_EXPERIMENTS = {
    "01_pretrain_mlm_nsp.ipynb": ["pretrain", "pretrain_factors", "pretrain_vs_random", "pretrain_probes",
                                  "minilm_pretrained_vs_random"],
    "02_finetune_baseline.ipynb": ["finetune_baseline"],
    "03_ablation_warmup.ipynb": ["ablation_warmup"],
    "04_ablation_weight_decay.ipynb": ["ablation_weight_decay"],
    "05_ablation_llrd.ipynb": ["ablation_llrd"],
    "06_pitfalls.ipynb": ["pitfalls_measurement"],
    "07_batch_size_seq_len.ipynb": ["batch_seq_len"],
    "08_distillation_compression.ipynb": ["distill_teacher", "distill"],
    "09_your_data.ipynb": ["finetune__amazon_review_sentences", "ablation_llrd__amazon_review_sentences"],
}
"""The experiments each notebook stores its runs under, in notebook order (for the compute table)."""

GRID_OF = {notebook: grid for grid, notebook in ablations.NOTEBOOK.items()}


def notebook_file(notebook: str) -> str:
    """"03" → "03_ablation_warmup.ipynb"."""
    found = notebooks(f"{notebook}_*.ipynb")
    if not found:
        raise ValueError(f"No notebook numbered {notebook!r} in {NOTEBOOKS}.")
    return found[0].name


def question(notebook_name: str) -> str:
    """A notebook's first heading without its number: what it asks."""
    cells = json.loads((NOTEBOOKS / notebook_name).read_text())["cells"]
    first = "".join(cells[0]["source"]).splitlines()[0]
    return first.lstrip("# ").split(" · ", 1)[-1]


# ------------------------------------------------------------------- times
def notebook_times(profile: Profile) -> pd.Series:
    """Seconds each notebook took when it last computed runs in `profile` (empty if never recorded)."""
    path = results_dir(profile) / "notebook_times.csv"
    if not path.exists():
        return pd.Series(dtype=float)
    return pd.read_csv(path).set_index("notebook")["seconds"]


def _parts(profile: Profile) -> pd.DataFrame:
    """One row per stored run, in notebook order, with the notebook that computes it first when the workbook runs in
    order from an empty `results/runs/` (a run shared with an earlier notebook is that notebook's), its experiment,
    data set and seconds of training + testing."""
    seen, rows = set(), []
    for notebook, experiments in NOTEBOOK_EXPERIMENTS.items():
        for experiment in experiments:
            for _, r in load_experiment(experiment, profile).iterrows():
                if r["run_id"] not in seen:
                    seen.add(r["run_id"])
                    rows.append({"notebook": notebook, "experiment": experiment, "data": r.get("data", "–"),
                                 "seconds": sum(float(r[c]) for c in ("train_seconds", "test_seconds")
                                                if c in r and pd.notna(r[c]))})
    return pd.DataFrame(rows, columns=["notebook", "experiment", "data", "seconds"])


def compute_by_notebook(profile: Profile) -> pd.DataFrame:
    """Per notebook, minutes of training + testing of the stored runs it would compute first when the workbook runs
    in order from an empty `results/runs/`."""
    parts = _parts(profile)
    rows = [{"notebook": nb, "runs": int((parts["notebook"] == nb).sum()),
             "compute (min)": round(parts.loc[parts["notebook"] == nb, "seconds"].sum() / 60, 1)}
            for nb in NOTEBOOK_EXPERIMENTS]
    return pd.DataFrame(rows).set_index("notebook")


def compute_by_part(notebook: str, profile: Profile) -> pd.DataFrame:
    """A notebook's cost part by part: runs and minutes of training + testing per experiment and data set, in the
    order it computes them (what "each part timed" means; the notebook's whole time, setup included, is in
    `design`)."""
    parts = _parts(profile)
    parts = parts[parts["notebook"] == notebook_file(notebook)]
    return (parts.groupby(["experiment", "data"], sort=False)["seconds"].agg(runs="size", minutes="sum")
            .assign(minutes=lambda d: (d["minutes"] / 60).round(1)))


def time_sentence(notebook: str, profile: Profile) -> str:
    """What the notebook takes in `profile` from an empty `results/runs/`, as recorded when it last trained runs (or
    that it was not measured); replaying stored runs takes seconds."""
    name = notebook_file(notebook)
    seconds = notebook_times(profile).get(name)
    if seconds is None or pd.isna(seconds):
        return f"*{profile.name}*: not measured yet (`make reproduce PROFILE={profile.name}` records it)."
    compute = compute_by_notebook(profile)
    minutes, runs = (compute.loc[name, "compute (min)"], int(compute.loc[name, "runs"])) if name in compute.index \
        else (0.0, 0)
    spent = f", {duration(60 * minutes)} of it training and testing {runs} run{'s' * (runs != 1)}" if minutes else ""
    return (f"*{profile.name}*: **{duration(seconds)}** from an empty `results/runs/`{spent} "
            "(`results/notebook_times.csv`); stored runs replay in seconds.")


def duration(seconds: float) -> str:
    """42 s, or 7.9 min from 90 s on."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


# ------------------------------------------------------------------ design
def _sizes(p: Profile, b: FinetuneBudget | None = None) -> dict:
    b = b or p.finetune
    n = b.max_train_examples
    updates = f"{math.ceil(n / b.batch_size) * b.epochs:g}" if n else f"all data × {b.epochs:g} epochs"
    return {"training sentences": f"{n:,}" if n else "all", "validation": _n(b.max_eval_examples),
            "test": _n(b.max_test_examples), "batch": b.batch_size, "epochs": f"{b.epochs:g}",
            "updates per run": updates}


def _n(n: int | None) -> str:
    return f"{n:,}" if n else "all"


def _grid_row(p: Profile, name: str) -> dict:
    grid = ablations.get(name, p)
    seeds = sorted({len(grid.seeds_of(v)) for v in grid.variants})
    return {"data": ", ".join(p.datasets), **_sizes(p), "cells": len(grid.variants),
            "seeds per cell": " / ".join(map(str, seeds)), "runs": len(grid.specs())}


def _row(notebook: str, p: Profile) -> dict:
    if notebook in GRID_OF:
        return _grid_row(p, GRID_OF[notebook])
    if notebook == "01":
        t = p.pretrain
        return {"recipes": f"{t.scratch_model} (2018), {t.budget_model} (budget; pretraining seeds "
                           f"{', '.join(map(str, t.budget_seeds))})",
                "tokens each": f"{t.steps:,} steps × {t.batch} × {t.seq_len}",
                "rates": f"2018 {lr_label(t.scratch_lr)}, budget {lr_label(t.budget_lr)}",
                "factor table": f"{len(pretraining.FACTORS)} arms × {len(t.factor_rates)} rates "
                                f"({', '.join(map(lr_label, t.factor_rates))}), {t.factor_steps:,} steps each",
                "fine-tuning": f"{', '.join(t.finetune_tasks)}; {_n(t.finetune_examples)} sentences, "
                               f"{t.finetune_epochs:g} epochs",
                "rate pilot": f"{', '.join(map(lr_label, t.finetune_rates))} × seeds "
                              f"{', '.join(map(str, t.pilot_seeds))}",
                "positive control": f"{t.control_model}, pretrained and random",
                "seeds": len(p.grids.paired_seeds)}
    if notebook == "02":
        rates = ablations.rates(p)
        return {"data": ", ".join(rates.datasets), **_sizes(p),
                "rates": ", ".join(map(lr_label, p.grids.baseline_rates)), "seeds": len(rates.seeds),
                "learning curve": "; ".join(list(ablations.learning_curve(p).variants)[1:]) or "–"}
    if notebook == "06":
        return {"training sentences": p.pitfall_sentences, "optimizer steps": p.pitfall_steps}
    if notebook == "08":
        return {"labelled sentences": _n(p.distill_examples), "transfer sentences": _n(p.distill_transfer),
                "teacher epochs": f"{p.distill_teacher_epochs:g}", "student epochs": f"{p.distill_student_epochs:g}",
                "α": ", ".join(f"{a:g}" for a in p.distill_alphas),
                "student rates": ", ".join(map(lr_label, p.distill_rates)), "seeds per cell": len(p.grids.paired_seeds),
                "latency sentences": p.latency_sentences}
    if notebook == "09":  # your data: every row (Profile.own_data)
        return {**_sizes(p, p.own_data), "seeds": len(p.seeds)}
    return {}


def design_table(notebook: str) -> pd.DataFrame:
    """One row per profile: what a notebook trains on and how much, from `lib.profiles` (and its grid)."""
    rows = {name: _row(notebook, profiles.get(name)) for name in profiles.PROFILES}
    return pd.DataFrame(rows).T.rename_axis("profile")


def design(notebook: str, profile: Profile) -> str:
    """A notebook's design over the three profiles (this run's profile in bold) and its measured time, as
    Markdown. Everything in it comes from `lib.profiles`, the grids and `results/notebook_times.csv`."""
    table = design_table(notebook)
    lines = []
    if not table.empty and len(table.columns):
        table.index = [f"**{n}**" if n == profile.name else n for n in table.index]
        lines.append(table.to_markdown())
    quick = profiles.get("quick")
    lines.append("**Time** on the 2-core CPU that made `results/` — " + time_sentence(notebook, quick))
    if profile.name != "quick":
        lines.append(time_sentence(notebook, profile))
    return "\n\n".join(lines)


def notebook_map() -> str:
    """The README's reading order: each notebook, its question and its measured quick time, as Markdown."""
    quick = profiles.get("quick")
    times = notebook_times(quick)
    lines, paths = ["| notebook | question | quick, from empty |", "|---|---|---|"], notebooks()
    for path in paths:
        seconds = times.get(path.name)
        shown = "–" if seconds is None or pd.isna(seconds) else duration(seconds)
        lines.append(f"| [{path.stem}](notebooks/{path.name}) | {question(path.name)} | {shown} |")
    total = sum(float(times.get(p.name, 0.0)) for p in paths)
    lines += ["", f"All {len(paths)} from an empty `results/runs/`: **{total / 60:.0f} min** on the 2-core CPU, as "
              "`results/notebook_times.csv` last recorded each: the wall time of the last pass that trained, plus the "
              "recorded training and testing time of the runs that pass replayed (replaying everything: minutes)."]
    return "\n".join(lines)
