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

from lib import ablations, findings, pretraining, stats
from lib.atomic import write_text
from lib.cli import Parser
from lib.paths import ROOT, results_dir
from lib.profiles import check_profile
from lib.store import load_experiment

TITLES = {
    "warmup": "03 · Warmup at an aggressive rate",
    "weight_decay": "04 · Weight decay: AdamW against Adam+L2 at three strengths",
    "llrd": "05 · Layer-wise learning-rate decay ξ, within each rate",
    "batch_seq": "07 · Batch size (equal epochs, equal updates) and truncation",
}
NOTEBOOK = {"warmup": "03", "weight_decay": "04", "llrd": "05", "batch_seq": "07"}


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


def ablation_section(name: str, profile: str, table: pd.DataFrame) -> str:
    """Per-cell table (mean ± std, interval, failures) of one ablation, and its findings."""
    sweep = ablations.sweep(name, profile)
    rows = findings.grid_frame(sweep, profile)
    lines = [f"## {TITLES[name]}", ""]
    if rows.empty:
        return "\n".join(lines + [f"No runs stored yet: run `python -m lib.sweep {name} --profile {profile}`.", ""])
    order = list(sweep.variants)
    rows = rows.sort_values("variant", key=lambda v: v.map(order.index), kind="stable")
    for data, df in rows.groupby("data", sort=False):
        cmp = stats.compare(df, sweep.baseline)
        tab = stats.table(cmp, sweep.baseline).drop(columns=["verdict", "Δ vs baseline (paired)"])
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
    missing = len(sweep.run_ids()) - len(rows)
    if missing:
        lines += [f"*{missing} of {len(sweep.run_ids())} runs of this grid are not stored yet.*", ""]
    return "\n".join(lines + findings_lines(table, NOTEBOOK[name]))


def baseline_section(profile: str) -> str:
    df = load_experiment("finetune_baseline", profile)
    if df.empty:
        return ""
    sizes = df["max_train_examples"].map(lambda n: f"{int(n):,}" if n == n else "all")  # full: every sentence
    tab = stats.mean_std(df.assign(max_train_examples=sizes), ["data", "train.lr", "max_train_examples"],
                         ["test_accuracy", "test_macro_f1"])
    tab = tab.reset_index()
    tab["train.lr"] = tab["train.lr"].map(ablations.lr_label)
    tab.columns = ["data", "lr", "training sentences", "test accuracy (%)", "test macro-F1 (%)", "seeds"]
    return "\n".join(["## 02 · Baseline fine-tuning (minilm-l6)", "", tab.to_markdown(index=False), ""])


NOTEBOOK_EXPERIMENTS = {
    "01_pretrain_mlm_nsp.ipynb": ["pretrain", "minilm_pretrained_vs_random", "pretrain_vs_random"],
    "02_finetune_baseline.ipynb": ["finetune_baseline"],
    "03_ablation_warmup.ipynb": ["ablation_warmup"],
    "04_ablation_weight_decay.ipynb": ["ablation_weight_decay"],
    "05_ablation_llrd.ipynb": ["ablation_llrd"],
    "07_batch_size_seq_len.ipynb": ["batch_seq_len"],
    "08_distillation_compression.ipynb": ["distill_teacher", "distill_labels_only", "distill"],
    "09_your_data.ipynb": ["finetune__amazon_review_sentences", "ablation_llrd__amazon_review_sentences"],
}
"""The experiments each notebook stores its runs under, in notebook order (for the compute table)."""


def compute_by_notebook(profile: str) -> pd.DataFrame:
    """Per notebook, minutes of training + testing of the stored runs it would compute first when the workbook runs
    in order from an empty `results/runs/` (a run shared with an earlier notebook is that notebook's)."""
    seen, rows = set(), []
    for notebook, experiments in NOTEBOOK_EXPERIMENTS.items():
        seconds, runs = 0.0, 0
        for experiment in experiments:
            df = load_experiment(experiment, profile)
            for _, r in df.iterrows():
                if r["run_id"] in seen:
                    continue
                seen.add(r["run_id"])
                seconds += sum(float(r[c]) for c in ("train_seconds", "test_seconds") if c in r and r[c] == r[c])
                runs += 1
        rows.append({"notebook": notebook, "runs": runs, "compute (min)": round(seconds / 60, 1)})
    return pd.DataFrame(rows).set_index("notebook")


def times_section(profile: str) -> str:
    compute = compute_by_notebook(profile)
    lines = ["## Compute and wall time per notebook", ""]
    path = results_dir(profile) / "notebook_times.csv"
    if path.exists():
        t = pd.read_csv(path).set_index("notebook")
        compute["wall time when it last computed (min)"] = (t["seconds"] / 60).round(1).reindex(compute.index)
    lines += [
        compute.to_markdown(),
        "",
        f"Training + testing of every stored run, each counted once: **{compute['compute (min)'].sum():.1f} min** "
        f"over {int(compute['runs'].sum())} runs. *compute* is what a notebook trains when the workbook runs in order "
        "from an empty `results/runs/` (a run shared with an earlier notebook counts there); the wall time is the "
        "notebook's last run that computed something (a grid trained beforehand by `python -m lib.sweep` leaves its "
        "notebook only replaying).",
        "",
    ]
    return "\n".join(lines)


OTHER = {"01": "01 · Pretraining: what MLM and NSP learned, and what pretraining buys",
         "08": "08 · Distillation and int8", "09": "09 · Your data (the shipped example file)"}


def notes(notebook: str, profile: str) -> list[str]:
    """Measurements a notebook's findings rest on, generated from its stored runs (01: the pretraining run)."""
    if notebook == "01" and (m := pretraining.stored_scratch_run(profile)) is not None:
        return [pretraining.summary_sentence(m)]
    return []


def other_section(notebook: str, title: str, profile: str, table: pd.DataFrame) -> str | None:
    """A notebook's section without a per-cell table: its generated notes, then its findings (None if none)."""
    rows = findings_lines(table, notebook)
    if not rows:
        return None
    measured = notes(notebook, profile)
    return "\n".join([f"## {title}", ""] + measured + [""] * bool(measured) + rows)


def build(profile: str = "quick") -> str:
    """The whole report as Markdown."""
    table = findings.write(profile)
    parts = [
        f"# Results report ({profile} profile)",
        "",
        f"Generated by `python -m lib.report --profile {profile}` from the CSVs in this folder; do not edit by hand. "
        "Accuracy is test accuracy in %, mean ± sample std over seeds. Every claim is a row of `findings.csv`: a "
        "comparison with its test (paired t over seeds, Fisher's exact test for failure counts, McNemar for single "
        "models), 95% interval, raw and Holm-adjusted p within its notebook, and the smallest effect the design "
        "detects (MDE, 80% power). *supported* needs Holm p < 0.05; *not detected* means the interval includes 0 — "
        "an effect smaller than the MDE may still be there.",
        "",
        baseline_section(profile),
        *findings_lines(table, "02"),
        *(ablation_section(name, profile, table) for name in ablations.SWEEPS),
        *(other_section(nb, title, profile, table) for nb, title in OTHER.items()),
        times_section(profile),
    ]
    return "\n".join(p for p in parts if p is not None)


README_START, README_END = "<!-- findings:start -->", "<!-- findings:end -->"
"""The README's result lines sit between these markers and are rewritten from `findings.csv`, never typed."""


def readme_block(profile: str = "quick") -> str:
    """Per notebook, its findings as sentences: the README's results."""
    table = pd.read_csv(results_dir(profile) / "findings.csv")
    titles = {"02": "02 · baseline", **{NOTEBOOK[k]: v for k, v in TITLES.items()}, **OTHER}
    lines = []
    for nb in sorted(titles):
        rows = table[table["notebook"].astype(str).str.zfill(2) == nb]
        if not rows.empty:
            lines += [f"**{titles[nb]}**", ""] + [f"- {line}" for line in notes(nb, profile)]
            lines += [f"- {findings.sentence(r)}" for _, r in rows.iterrows()] + [""]
    return "\n".join(lines).strip()


def write_readme(profile: str = "quick") -> bool:
    """Rewrite the README's generated results block — only for the committed quick results (not for tests,
    which write elsewhere). True if the README changed."""
    if profile != "quick" or results_dir(profile) != ROOT / "results":
        return False
    readme = ROOT / "README.md"
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = f"{head}{README_START}\n{readme_block(profile)}\n{README_END}{tail}"
    if new != text:
        write_text(readme, new)
    return new != text


def write(profile: str = "quick") -> str:
    """Write `REPORT.md` (and the findings, and the README's result lines for quick) atomically; return its path."""
    path = str(write_text(results_dir(check_profile(profile)) / "REPORT.md", build(profile)))
    write_readme(profile)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_profile()
    print(write(parser.parse_args(argv).profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
