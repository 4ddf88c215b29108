"""`results/REPORT.md`, regenerated from the CSVs the notebooks write.

Nothing in the report is typed by hand: the claims are the rows of
`results/findings.csv` (`lib.findings`: one family per notebook, Holm-corrected,
with the smallest detectable effect), and the tables are `lib.stats` summaries
of `results/<experiment>.csv`. Re-running a notebook and then
`python -m lib.report` (the notebooks and `make reproduce` do it for you)
keeps the report true.
"""

from __future__ import annotations

import sys

import pandas as pd

from lib import ablations, design, findings, pretraining, recipes, stats, store
from lib.atomic import write_text
from lib.cli import Parser
from lib.paths import ROOT, results_dir
from lib.profiles import Profile
from lib.store import finished_runs

TITLES = {
    "warmup": "03 · Warmup and Adam's bias correction over the learning rate",
    "weight_decay": "04 · Weight decay: AdamW against Adam+L2 at three strengths",
    "llrd": "05 · Layer-wise learning-rate decay ξ over the base rate, each ξ at its best rate",
    "batch_seq": "07 · Batch size over the learning rate (equal epochs), and truncation",
}


def _md(df: pd.DataFrame) -> str:
    return df.to_markdown()


def findings_lines(table: pd.DataFrame, notebook: str) -> list[str]:
    """The generated sentences of one notebook's findings."""
    rows = table[table["notebook"].astype(str).str.zfill(2) == notebook]
    if rows.empty:
        return []
    return ["Findings (one family, Holm-corrected; from `findings.csv`):", ""] + [
        f"- {findings.sentence(r)}" for _, r in rows.iterrows()
    ] + [""]


def ablation_section(name: str, profile: Profile, table: pd.DataFrame) -> str:
    """Per-cell table (mean ± std, interval, failures) of one ablation, and its findings."""
    grid = ablations.get(name, profile)
    rows = findings.grid_frame(grid, profile)
    lines = [f"## {TITLES[name]}", ""]
    if rows.empty:
        hint = f"No runs stored yet: run `python -m lib.sweep {name} --profile {profile.name}`."
        return "\n".join(lines + [hint, ""])
    order = list(grid.variants)
    rows = rows.sort_values("variant", key=lambda v: v.map(order.index), kind="stable")
    for data, df in rows.groupby("data", sort=False):
        cmp = stats.compare(df, grid.baseline)
        tab = stats.comparison_table(cmp, grid.baseline).drop(columns=["verdict", "Δ vs baseline (paired)"])
        secs = df.groupby("variant", sort=False)[["train_seconds", "test_seconds"]].mean().sum(axis=1)
        tab["s/run"] = secs.reindex(tab.index).round(0).astype(int)
        precision = ", ".join(sorted(set(df.get("precision", pd.Series(["?"])).fillna("?").tolist())))
        minutes = (df["train_seconds"] + df["test_seconds"]).sum() / 60
        lines += [
            f"**{data}**, test accuracy (%) per cell, {precision}; failed = at or below the majority class "
            f"({100 * df['test_majority'].iloc[0]:.1f}%); {minutes:.1f} min of training and testing over {len(df)} "
            "runs:",
            "",
            _md(tab),
            "",
        ]
    missing = len(grid.run_ids()) - len(rows)
    if missing:
        lines += [f"*{missing} of {len(grid.run_ids())} runs of this grid are not stored yet.*", ""]
    return "\n".join(lines + findings_lines(table, ablations.NOTEBOOK[name]))


def baseline_section(profile: Profile) -> str:
    """Notebook 02's two grids: the rate curve on both tasks, then the learning curve (mean ± std over seeds)."""
    lines = ["## 02 · Baseline fine-tuning (minilm-l6): the rate curve, and more sentences or more updates", ""]
    for grid in (ablations.rates(profile), ablations.learning_curve(profile)):
        rows = findings.grid_frame(grid, profile)
        if rows.empty:
            continue
        order = list(grid.variants)
        rows = rows.sort_values("variant", key=lambda v: v.map(order.index), kind="stable")
        tab = stats.mean_std(rows, ["data", "variant"], ["test_accuracy", "test_macro_f1"]).reset_index()
        tab.columns = ["data", "cell", "test accuracy (%)", "test macro-F1 (%)", "seeds"]
        lines += [tab.to_markdown(index=False), ""]
    return "\n".join(lines) if len(lines) > 2 else ""


def times_section(profile: Profile) -> str:
    compute = design.compute_by_notebook(profile)
    lines = ["## Compute and wall time per notebook", ""]
    path = results_dir(profile) / "notebook_times.csv"
    if path.exists():
        t = pd.read_csv(path).set_index("notebook")
        compute["from empty (min)"] = (t["seconds"] / 60).round(1).reindex(compute.index)
    lines += [
        compute.to_markdown(),
        "",
        f"Training + testing of every stored run, each counted once: **{compute['compute (min)'].sum():.1f} min** "
        f"over {int(compute['runs'].sum())} runs. *compute* is what a notebook trains when the workbook runs in order "
        "from an empty `results/runs/` (a run shared with an earlier notebook counts there); *from empty* is the wall "
        "time of the notebook's last pass that trained something, plus the recorded compute of the runs that pass "
        "replayed (`lib.run_notebooks`).",
        "",
    ]
    return "\n".join(lines)


OTHER = {"01": "01 · Pretraining: BERT's 2018 recipe against a budget recipe, and what pretraining buys",
         "08": "08 · Distillation and int8", "09": "09 · Your data (the shipped example file)"}


def notes(notebook: str, profile: Profile) -> list[str]:
    """Measurements a notebook's findings rest on, generated from its stored runs (01: the recipes' runs)."""
    if notebook != "01":
        return []
    runs = {name: store.stored(pretraining.EXPERIMENT, spec, profile)
            for name, spec in recipes.recipe_specs(profile).items()}
    return [f"{name}: " + pretraining.summary_sentence({"model": run.config["model"]} | run.metrics)
            for name, run in runs.items() if run is not None]


def other_section(notebook: str, title: str, profile: Profile, table: pd.DataFrame) -> str | None:
    """A notebook's section without a per-cell table: its generated notes, then its findings (None if none)."""
    rows = findings_lines(table, notebook)
    if not rows:
        return None
    measured = notes(notebook, profile)
    return "\n".join([f"## {title}", ""] + measured + [""] * bool(measured) + rows)


def section(notebook: str, profile: Profile, table: pd.DataFrame) -> str | None:
    """One notebook's section of the report: its per-cell tables and findings (None if it has none)."""
    if notebook == "02":
        return "\n".join([baseline_section(profile), *findings_lines(table, "02")])
    grids = {nb: name for name, nb in ablations.NOTEBOOK.items()}
    if notebook in grids:
        return ablation_section(grids[notebook], profile, table)
    return other_section(notebook, OTHER[notebook], profile, table)


def build(profile: Profile) -> str:
    """The whole report as Markdown."""
    table = findings.write(profile)
    parts = [
        f"# Results report ({profile.name} profile)",
        "",
        f"Generated by `python -m lib.report --profile {profile.name}` from the CSVs in this folder; do not edit by "
        "hand. "
        "Accuracy is test accuracy in %, mean ± sample std over seeds. Every claim is a row of `findings.csv`: a "
        "comparison with its test (paired t over seeds, Fisher's exact test for failure counts, McNemar for single "
        "models), 95% interval, raw and Holm-adjusted p within its notebook, and the smallest true effect the design "
        "detects with 80% power at the level the row must pass (MDE at α/m for the notebook's m tests). *supported* "
        "needs Holm p < 0.05; *not detected* means it was not: the design could miss a true effect up to the row's "
        "MDE, so it bounds an effect, it does not rule one out.",
        "",
        "**Scope of inference.** Seeds vary what a training run draws — the new classifier head's initialisation, "
        "the batch order, dropout — on one fixed training subsample and one fixed test set (both drawn once with "
        "`lib.data.SPLIT_SEED`). Intervals and p-values are over those training draws: they say how a comparison "
        "would come out again on these sentences, not on another draw of 256 training sentences or another test "
        "set, which add variance these rows do not measure.",
        "",
        *(section(nb, profile, table) for nb in ("01", "02", *ablations.NOTEBOOK.values(), "08", "09")),  # in order
        literature_section(table),
        times_section(profile),
    ]
    return "\n".join(p for p in parts if p is not None)


def literature_section(table: pd.DataFrame) -> str:
    """Ours beside the published results (`lib.findings.literature`)."""
    beside = findings.literature(table)
    if beside.empty:
        return ""
    return "\n".join(["## Ours beside the literature", "",
                      "Each finding with a published counterpart: the direction is compared only where ours is "
                      "supported; the last column says why a difference is expected (model, budget, data).", "",
                      beside.to_markdown(index=False), ""])


README_BLOCKS = ("notebooks", "findings")
"""The README's generated blocks, each between `<!-- NAME:start -->` and `<!-- NAME:end -->`: the notebook map
with its measured times (`lib.design.notebook_map`) and the result lines (`readme_block`), never typed."""


def readme_block(profile: Profile) -> str:
    """The README's results: the supported findings in a line each, and how many comparisons were not detected
    (every row, with its MDE, is in REPORT.md)."""
    table = pd.read_csv(results_dir(profile) / "findings.csv")
    supported = table[table["verdict"] == findings.SUPPORTED]
    lines = [f"- {str(r['notebook']).zfill(2)} · {findings.short_sentence(r)}" for _, r in supported.iterrows()]
    others = table["verdict"].value_counts().drop(findings.SUPPORTED, errors="ignore")
    counts = ", ".join(f"{n} {verdict}" for verdict, n in others.items())
    return "\n".join(lines + ["", f"Of {len(table)} comparisons, {len(supported)} are supported (Holm p < 0.05); "
                                   f"{counts}: see [results/REPORT.md](results/REPORT.md) for every row with the "
                                   "smallest effect its design could detect."])


def readme_text(text: str, profile: Profile) -> str:
    """`text` (the README) with every generated block rewritten from the records."""
    blocks = {"notebooks": design.notebook_map(), "findings": readme_block(profile)}
    for name in README_BLOCKS:
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        if start in text and end in text:
            head, rest = text.split(start, 1)
            _, tail = rest.split(end, 1)
            text = f"{head}{start}\n{blocks[name]}\n{end}{tail}"
    return text


def write_readme(profile: Profile) -> bool:
    """Rewrite the README's generated blocks — only for the committed quick results (not for tests, which write
    elsewhere). True if the README changed."""
    if profile.name != "quick" or results_dir(profile) != ROOT / "results":
        return False
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = readme_text(text, profile)
    if new != text:
        write_text(readme, new)
    return new != text


def write(profile: Profile) -> str:
    """Write `REPORT.md` (and the findings, and the README's result lines for quick) atomically; return its path."""
    path = str(write_text(results_dir(profile) / "REPORT.md", build(profile)))
    write_readme(profile)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lib.report", description=__doc__.splitlines()[0])
    parser.add_profile()
    profile = parser.parse_args(argv).profile
    if not finished_runs(profile):
        parser.error(f"no runs are stored in the {profile.name} profile yet ({results_dir(profile)}); run a notebook "
                     "or python -m lib.sweep first")
    print(write(profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
