"""Every claim the workbook makes, as one row of `results/findings.csv` — generated, never typed.

A notebook states its hypotheses as a *family* of comparisons (`FAMILIES`,
one builder per notebook). Each comparison becomes a row with the test that
fits it — paired t over seeds for accuracy, Fisher's exact test for failure
counts, McNemar for two single models on one test set, a one-sample t against
a deterministic floor — and the family is corrected together (Holm). The
columns:

    notebook, finding, variant, baseline, n_seeds, mean_diff, ci_low, ci_high,
    p, p_holm, mde, mde_level, verdict, test

`mean_diff` is variant − baseline in points (accuracy, or failure rate for
Fisher rows), with its 95% interval. `mde` is the smallest true effect the
design detects with 80% power *at the level the row must pass*: α/m for a
family of m tests (`mde_level`; Holm's first step, so the bound is cautious),
from the measured spread (exact noncentral t, Fisher and binomial tests
enumerated or at their normal approximation). So a `not detected` row says how
large an effect it could miss. `verdict` is `supported` only when p_holm <
0.05; `not detected after correction` when the raw p was below 0.05 but Holm's
was not; otherwise `not detected`. Only p decides: an interval is shown, never
used as a second rule.
REPORT.md and the README's result lines are rendered from this table.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd

from lib import ablations, distill, downstream, finetune, pretraining, published, recipes, stats, store
from lib.cli import Parser
from lib.paths import results_dir
from lib.profiles import Profile
from lib.store import load_experiment, run_id, write_table

COLUMNS = ["notebook", "finding", "variant", "baseline", "n_seeds", "mean_diff", "ci_low", "ci_high", "p", "p_holm",
           "mde", "mde_level", "verdict", "test"]
SUPPORTED, NOT_DETECTED, AFTER_CORRECTION, NO_TEST = (
    "supported", "not detected", "not detected after correction", "no test")


# ------------------------------------------------------------- one comparison
def paired(finding: str, frame: pd.DataFrame, variant: str, baseline: str, by: str = "variant") -> dict:
    """Accuracy of `variant` − `baseline`, paired by seed (paired t; the sign test where every pair agrees)."""
    if frame.empty or by not in frame:
        return {}
    part = frame[frame[by].isin([variant, baseline])]
    if variant not in set(part[by]) or baseline not in set(part[by]):
        return {}
    r = stats.compare(part, baseline, by=by).loc[variant]
    n = int(r["paired_seeds"])
    return {"finding": finding, "variant": variant, "baseline": baseline, "n_seeds": n,
            "mean_diff": r["diff"], "ci_low": r["diff_ci_low"], "ci_high": r["diff_ci_high"], "p": r["p"],
            "mde": partial(stats.mde_paired, r["diff_std"], n), "test": "paired t"}


def difference_of_differences(finding: str, frame: pd.DataFrame, pairs: tuple[tuple[str, str], tuple[str, str]],
                              label: str, by: str = "variant") -> dict:
    """An interaction: (a − a₀) − (b − b₀), each pair by seed, over the seeds all four cells share."""
    if frame.empty or by not in frame:
        return {}
    acc = frame.pivot_table(index=stats.pair_keys(frame, by), columns=by, values="test_accuracy",
                            aggfunc="first") * 100
    cells = [c for pair in pairs for c in pair]
    if not set(cells) <= set(acc.columns):
        return {}
    acc = acc[cells].dropna()
    d = ((acc[pairs[0][0]] - acc[pairs[0][1]]) - (acc[pairs[1][0]] - acc[pairs[1][1]])).to_numpy()
    lo, hi = stats.ci95(d)
    return {"finding": finding, "variant": label, "baseline": "no interaction", "n_seeds": len(d),
            "mean_diff": d.mean(), "ci_low": lo, "ci_high": hi, "p": stats.paired_p(d),
            "mde": partial(stats.mde_paired, d.std(ddof=1) if len(d) > 1 else math.nan, len(d)), "test": "paired t"}


def failures(finding: str, frame: pd.DataFrame, variant: str, baseline: str, by: str = "variant") -> dict:
    """Failure rate of `variant` − `baseline` (points): Fisher's exact test, Newcombe's interval, exact MDE."""
    if frame.empty or by not in frame:
        return {}
    failed = stats.failed_runs(frame)
    a, b = failed[frame[by] == variant], failed[frame[by] == baseline]
    if a.empty or b.empty:
        return {}
    r = stats.rate_difference(int(a.sum()), len(a), int(b.sum()), len(b))
    mde = partial(stats.fisher_mde, len(a), len(b), float(b.mean()), -1 if r["diff"] < 0 else 1)
    return {"finding": finding, "variant": variant, "baseline": baseline, "n_seeds": min(len(a), len(b)),
            "mean_diff": r["diff"], "ci_low": r["ci_low"], "ci_high": r["ci_high"], "p": r["p"], "mde": mde,
            "test": f"Fisher exact: {int(a.sum())}/{len(a)} vs {int(b.sum())}/{len(b)} failed"}


def above_floor(finding: str, frame: pd.DataFrame, floor: float, variant: str, baseline: str) -> dict:
    """Accuracy over seeds − a deterministic floor (one-sample t)."""
    if frame.empty:
        return {}
    d = 100 * (frame["test_accuracy"].to_numpy(dtype=float) - floor)
    lo, hi = stats.ci95(d)
    return {"finding": finding, "variant": variant, "baseline": baseline, "n_seeds": len(d), "mean_diff": d.mean(),
            "ci_low": lo, "ci_high": hi, "p": stats.paired_p(d),
            "mde": partial(stats.mde_paired, d.std(ddof=1) if len(d) > 1 else math.nan, len(d)),
            "test": "one-sample t"}


def single_models(finding: str, correct_a: np.ndarray, correct_b: np.ndarray, variant: str, baseline: str,
                  unit: str = "sentences") -> dict:
    """Two single models on one test set: McNemar's exact test on the items (`unit`) they disagree on."""
    r = stats.mcnemar(correct_a, correct_b)
    return {"finding": finding, "variant": variant, "baseline": baseline, "n_seeds": 1, "mean_diff": r["diff"],
            "ci_low": r["ci_low"], "ci_high": r["ci_high"], "p": r["p"],
            "mde": lambda alpha: stats.mcnemar(correct_a, correct_b, alpha)["mde"],
            "test": f"McNemar exact ({r['discordant']} discordant {unit})"}


# ------------------------------------------------------------ before it runs
def baseline_spread(profile: Profile, data: str = "movie_snippets") -> tuple[float, int]:
    """Seed-to-seed std (points) of notebook 02's baseline at the working rate, and its seed count."""
    df = load_experiment("finetune_baseline", profile)
    if df.empty:
        return math.nan, 0
    budget = profile.finetune.max_train_examples
    at = df[(df["data"] == data) & (df["train.lr"] == finetune.WORKING_LR)
            & (df["max_train_examples"].fillna(-1) == (budget or -1))]
    return float(100 * at["test_accuracy"].std(ddof=1)), len(at)


def plan(profile: Profile, notebook: str, paired_seeds: int, failure_runs: int | None = None) -> str:
    """Before a grid runs, the smallest effects its design can detect with 80% power at the level its rows must
    pass (α/m for the notebook's m planned comparisons, Holm's first step), as Markdown.

    Accuracy: from notebook 02's seed-to-seed spread σ, taking paired differences as uncorrelated
    (sd = √2·σ — cautious: pairing by seed usually removes some noise); the findings table replaces this
    guess with the spread it measures. Failure counts: Fisher's exact test, enumerated.
    """
    tests = len(FAMILIES[notebook](profile))  # one entry per planned comparison, stored or not
    level = stats.ALPHA / max(1, tests)
    at = f"80% power at α = {stats.ALPHA:g}/{tests} = {level:.3g}, Holm's level for this notebook's {tests} tests" \
        if tests > 1 else f"80% power at α = {level:g}"
    sigma, n = baseline_spread(profile)
    lines = []
    if n >= 2:
        sd = math.sqrt(2) * sigma
        lines.append(f"* **Accuracy, paired over {paired_seeds} seeds**: notebook 02's baseline spreads by σ = "
                     f"{sigma:.1f} points over {n} seeds, so a paired difference spreads by about √2·σ = {sd:.1f}; "
                     f"the design detects a true difference of **{stats.mde_paired(sd, paired_seeds, level):.1f} "
                     f"points** or more ({at}). A smaller effect can be real and still read *not detected*.")
    else:
        lines.append("* Accuracy: run notebook 02 first — its baseline's seed spread sets the detectable effect.")
    if failure_runs:
        falls = []
        for start in (0.9, 0.7, 0.5):
            fall = stats.fisher_mde(failure_runs, failure_runs, start, -1, level)
            falls.append(f"from {100 * start:.0f}% to {100 * start - fall:.0f}%" if pd.notna(fall)
                         else f"no fall from {100 * start:.0f}% (not even to 0%)")
        lines.append(f"* **Failure rate, {failure_runs} runs per arm** (Fisher's exact test, {at}): it detects a "
                     f"fall in the share of failed runs {'; '.join(falls)}. Smaller changes cannot be told from "
                     "chance with this many runs.")
    return "\n".join(lines)


# ------------------------------------------------------------------ a family
def verdict(row: pd.Series) -> str:
    """From p alone: supported at Holm p < α; not detected after correction where only the raw p was."""
    if pd.isna(row["p"]):
        return NO_TEST
    if row["p_holm"] < stats.ALPHA:
        return SUPPORTED
    return AFTER_CORRECTION if row["p"] < stats.ALPHA else NOT_DETECTED


def family(notebook: str, rows: list[dict]) -> pd.DataFrame:
    """One notebook's comparisons, Holm-corrected together, with their verdicts and each row's MDE at the level
    it must pass: α/m for m tests (a row's `mde` is a function of that level until here)."""
    rows = [r for r in rows if r]
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    df = pd.DataFrame(rows).assign(notebook=notebook)
    df["p_holm"] = stats.holm(df["p"].to_numpy())
    level = stats.ALPHA / max(1, int(df["p"].notna().sum()))
    df["mde"] = [m(level) if callable(m) else m for m in df["mde"]]
    df["mde_level"] = level
    df["verdict"] = df.apply(verdict, axis=1)
    return df[COLUMNS]


# --------------------------------------------------- the stored runs, by cell
def cells_frame(experiment: str, ids: dict[str, str], profile: Profile, seed: str = "train.seed") -> pd.DataFrame:
    """The stored runs of `experiment` whose id is in `ids` (run_id → cell name), with `variant` and `seed` columns
    (empty if none are stored)."""
    rows = load_experiment(experiment, profile)
    if rows.empty:
        return rows
    rows = rows[rows["run_id"].isin(ids)].copy()
    rows["variant"] = rows["run_id"].map(ids)
    rows["seed"] = rows[seed]
    return rows


def grid_frame(grid, profile: Profile) -> pd.DataFrame:
    """The stored runs of an ablation grid with their variant names (empty if none are stored)."""
    return cells_frame(grid.experiment, grid.run_ids(), profile)


def _warmup(profile: Profile) -> list[dict]:
    """Notebook 03: does warmup (or Adam's bias correction) move the failure curve over the rate? Each is
    McNemar over the (rate, seed) pairs of the curve; then accuracy where no run fails."""
    g, name = profile.grids, ablations.warmup_name
    frame = grid_frame(ablations.warmup(profile), profile)
    rates, top, low = g.warmup_rates, max(g.warmup_ratios), min(g.warmup_rates)
    over = f"lr {finetune.lr_label(min(rates))}–{finetune.lr_label(max(rates))}"
    return [
        curve_failures(f"failure rate over {over}: warmup {top:g} against none", frame,
                       {lr: (name(lr, top), name(lr, 0.0)) for lr in rates}, f"warmup {top:g}", "warmup 0"),
        curve_failures(f"failure rate over {over}: Adam without bias correction against with (no warmup)", frame,
                       {lr: (name(lr, 0.0, optimizer="bertadam"), name(lr, 0.0)) for lr in rates},
                       "no bias correction", "bias correction"),
        paired(f"accuracy with warmup {top:g} at lr {finetune.lr_label(low)}", frame, name(low, top), name(low, 0.0)),
    ]


def curve_failures(finding: str, frame: pd.DataFrame, cells: dict[float, tuple[str, str]], variant: str,
                   baseline: str) -> dict:
    """Failure rate of one arm against another over a whole curve (rate → (variant cell, baseline cell)): each
    (rate, seed) is a pair — same seed, same head and batch order — so McNemar's exact test on the pairs whose
    outcome differs; the difference is in points of failure rate."""
    if frame.empty:
        return {}
    failed = frame.assign(failed=stats.failed_runs(frame))
    keys = stats.pair_keys(frame)
    pairs = []
    for a, b in cells.values():
        arm_a, arm_b = (failed[failed["variant"] == c].set_index(keys)["failed"] for c in (a, b))
        pairs.append(pd.concat({"a": arm_a, "b": arm_b}, axis=1).dropna())
    both = pd.concat(pairs) if pairs else pd.DataFrame(columns=["a", "b"])
    if both.empty:
        return {}
    a, b = both["a"].astype(bool).to_numpy(), both["b"].astype(bool).to_numpy()
    r = stats.mcnemar(a, b)
    return {"finding": finding, "variant": variant, "baseline": baseline, "n_seeds": len(a), "mean_diff": r["diff"],
            "ci_low": r["ci_low"], "ci_high": r["ci_high"], "p": r["p"],
            "mde": lambda alpha: stats.mcnemar(a, b, alpha)["mde"],
            "test": f"McNemar exact on {len(a)} (rate, seed) pairs: {int(a.sum())} vs {int(b.sum())} failed"}


def _weight_decay(profile: Profile) -> list[dict]:
    """Notebook 04: the algorithm at matched shrink, each optimizer's λ, and whether λ's effect moves with the rate
    (Loshchilov & Hutter: for Adam+L2 it should, for AdamW not)."""
    g, name = profile.grids, ablations.decay_name
    frame = grid_frame(ablations.weight_decay(profile), profile)
    lo, hi, mid = min(g.weight_decays), max(g.weight_decays), 0.01
    matched = ablations.matched_decay(profile)
    rows = [paired(f"Adam+L2 at λ {mid:g} against AdamW shrinking the weights as much (λ {matched:g})", frame,
                   name("adam_l2", mid), name("adamw", matched)),
            paired(f"AdamW: λ {matched:g} (Adam+L2's shrink) against λ {mid:g}", frame, name("adamw", matched),
                   name("adamw", mid)),
            paired(f"Adam+L2 against AdamW at λ {hi:g}", frame, name("adam_l2", hi), name("adamw", hi))]
    if hi > lo:
        rows.append(paired(f"AdamW: λ {hi:g} against λ {lo:g}", frame, name("adamw", hi), name("adamw", lo)))
        slow, fast = min(g.decay_rates), max(g.decay_rates)
        for opt in ablations.OPTIMIZER_NAMES:
            pairs = ((name(opt, hi, lr=fast), name(opt, lo, lr=fast)), (name(opt, hi, lr=slow), name(opt, lo, lr=slow)))
            label = f"(λ {hi:g} − λ {lo:g}) at {finetune.lr_label(fast)} − at {finetune.lr_label(slow)}"
            rows.append(difference_of_differences(f"{ablations.OPTIMIZER_NAMES[opt]}: λ's effect depends on the rate "
                                                  "(λ × lr interaction)", frame, pairs, label))
    return rows


def _llrd(profile: Profile) -> list[dict]:
    """Notebook 05: each ξ at its own best rate (chosen on validation) against ξ 1 at its own; the failure rate at the
    aggressive rate; and whether ξ's effect grows with the rate (ξ × lr interaction over the curve's ends)."""
    g, name, label = profile.grids, ablations.llrd_name, finetune.lr_label
    frame = grid_frame(ablations.llrd(profile), profile)
    best, small = ablations.best_rates(frame, profile), min(g.llrd_xis)
    rows = []
    for xi in (x for x in g.llrd_xis if x < 1):  # {} until both curves have runs: still one planned comparison
        rows.append(paired(f"ξ {xi:g} at its best rate against ξ 1 at its best (rates chosen on validation)", frame,
                           name(best[xi], xi), name(best[1.0], 1.0)) if {xi, 1.0} <= set(best) else {})
    hot, low = ablations.AGGRESSIVE_LR, min(g.llrd_rates)
    if hot in g.llrd_rates:
        rows += [failures(f"failure rate, ξ {xi:g} against ξ 1 at lr {label(hot)}", frame, name(hot, xi),
                          name(hot, 1.0)) for xi in g.llrd_xis if xi < 1]
        pairs = ((name(hot, small), name(hot, 1.0)), (name(low, small), name(low, 1.0)))
        rows.append(difference_of_differences(f"ξ {small:g}'s effect depends on the rate (ξ × lr interaction)", frame,
                                              pairs, f"(ξ {small:g} − ξ 1) at {label(hot)} − at {label(low)}"))
    return rows


def _batch_seq(profile: Profile) -> list[dict]:
    """Notebook 07: each bigger batch at equal epochs against the baseline at the same rate, and the √k-scaled rate
    against the unscaled at that batch; then which end of a long text to keep."""
    grid = ablations.batch_seq(profile)
    frame, cell = grid_frame(grid, profile), partial(ablations.batch_cell, profile)
    rows = []
    for k in profile.grids.batch_factors:
        rows += [paired(f"batch ×{k} at equal epochs ({k}× fewer updates), same rate", frame, cell(k), grid.baseline),
                 paired(f"batch ×{k}: the rate scaled by √{k} against the same rate", frame, cell(k, scaled=True),
                        cell(k))]
    head = ablations.length_name(ablations.TRUNCATION_LENGTH, "head")
    for t in profile.grids.truncations:
        if t != "head":
            rows.append(paired(f"truncation: keep the {t} instead of the head", frame,
                               ablations.length_name(ablations.TRUNCATION_LENGTH, t), head))
    return rows


def _baseline(profile: Profile) -> list[dict]:
    """Notebook 02, per task: the rate chosen on validation against BERT-base's 2e-5, whether the curve turns over
    past the working rate, and MiniLM against the TF-IDF floor; then the learning curve, split into more data at
    equal updates and more updates on the same data."""
    grid, work = ablations.rates(profile), ablations.rate_name(finetune.WORKING_LR)
    frame, low, high = grid_frame(grid, profile), min(profile.grids.baseline_rates), max(profile.grids.baseline_rates)
    floor_path = results_dir(profile) / "finetune_baseline_tfidf.csv"  # notebook 02's TF-IDF floor
    floor = pd.read_csv(floor_path).set_index("data")["test_accuracy"] if floor_path.exists() else pd.Series()
    rows = []
    for data in grid.datasets:
        part = frame[frame["data"] == data] if not frame.empty else frame
        best = finetune.best_rate(part, rate="train.lr", metric="best_val_accuracy").get(data) if not part.empty \
            else None
        rows.append(paired(f"{data}: the rate chosen on validation against BERT-base's {finetune.lr_label(low)}", part,
                           ablations.rate_name(best), ablations.rate_name(low)) if best else {})
        rows.append(paired(f"{data}: {finetune.lr_label(high)} against the working rate (does the curve turn over?)",
                           part, ablations.rate_name(high), work))
        rows.append(above_floor(f"{data}: fine-tuned MiniLM against the TF-IDF floor", part[part["variant"] == work],
                                float(floor[data]), f"MiniLM, {work}", "TF-IDF + LR") if data in floor.index
                    and not part.empty else {})
    curve = ablations.learning_curve(profile)
    names, frame = list(curve.variants), grid_frame(curve, profile)
    for more, equal, what in zip(names[1::3], names[2::3], names[3::3]):
        rows += [paired("learning curve: more sentences and more updates", frame, more, curve.baseline),
                 paired("learning curve: more sentences at equal updates", frame, equal, curve.baseline),
                 paired("learning curve: more updates on the same sentences", frame, what, curve.baseline)]
    return rows


def against_reference(finding: str, rate: float, n: int, reference: float, variant: str, baseline: str,
                      what: str) -> dict:
    """One measured rate (a single model on n held-out items) against a fixed reference: exact binomial."""
    k = round(rate * n)
    r = stats.rate_vs_reference(k, n, reference)
    return {"finding": finding, "variant": variant, "baseline": baseline, "n_seeds": 1, "mean_diff": r["diff"],
            "ci_low": r["ci_low"], "ci_high": r["ci_high"], "p": r["p"],
            "mde": lambda alpha: stats.rate_vs_reference(k, n, reference, alpha)["mde"],
            "test": f"exact binomial on {n:,} held-out {what}"}


def _pretraining(profile: Profile) -> list[dict]:
    """Notebook 01: the budget recipe against its floors and against the 2018 recipe, the 2018 recipe against the
    frequent-token guess and NSP against chance (one checkpoint each, over held-out tokens and pairs); the factor
    table's contrasts; then downstream — fine-tuning the budget checkpoints against random weights per task, the
    linear probe, and MiniLM's shipped weights against random ones (the positive control)."""
    p, rows = profile.pretrain, []
    runs = {name: store.stored(pretraining.EXPERIMENT, spec, profile)
            for name, spec in recipes.recipe_specs(profile).items()}
    first = f"{recipes.BUDGET}, seed {p.budget_seeds[0]}"
    budget, bert = runs.get(first), runs.get(recipes.BERT_2018)
    what = "held-out accuracy at [MASK] inputs"
    if budget is not None:
        t = recipes.at_mask(budget)
        rows += [single_models(f"budget recipe against always guessing the most frequent token ({what})",
                               t["correct"], t["frequent_correct"], first, "most frequent token", "tokens"),
                 single_models(f"budget recipe against the bidirectional-bigram floor ({what})", t["correct"],
                               t["bigram_correct"], first, "bigram counts", "tokens")]
    if bert is not None:
        t = recipes.at_mask(bert)
        rows.append(single_models(f"BERT's 2018 recipe against always guessing the most frequent token ({what})",
                                  t["correct"], t["frequent_correct"], recipes.BERT_2018, "most frequent token",
                                  "tokens"))
        if budget is not None:
            rows.append(single_models(f"budget recipe against BERT's 2018 recipe ({what}, the same tokens)",
                                      recipes.at_mask(budget)["correct"], t["correct"], first, recipes.BERT_2018,
                                      "tokens"))
        m = bert.metrics
        rows.append(against_reference("held-out NSP accuracy of the 2018 recipe against chance",
                                      m["heldout_nsp_accuracy"], int(m["heldout_pairs"]), 0.5, recipes.BERT_2018,
                                      "chance (50%, balanced pairs)", "sentence pairs"))
    arms = recipes.stored_factor_runs(profile)
    for variant, reference, change in pretraining.FACTOR_CONTRASTS:
        if variant in arms and reference in arms:
            a, b = recipes.chosen(arms[variant]), recipes.chosen(arms[reference])
            rows.append(single_models(f"factor table: {change} ({what}, odd windows)",
                                      recipes.at_mask(a, half=1)["correct"], recipes.at_mask(b, half=1)["correct"],
                                      variant, reference, "tokens"))
    table = _table(profile, "pretrain_vs_random_table.csv")
    probes = downstream.probe_specs(profile, {"a": (budget.metrics["checkpoint"], p.budget_model),
                                              "b": (p.budget_model, p.budget_model)}) if budget else {}
    stored_probes = [store.stored(downstream.PROBES, s, profile) for s in probes.values()]
    for task in p.finetune_tasks:
        part = table[table["data"] == task] if not table.empty else table
        if not part.empty:
            rows += _downstream(f"{task}: fine-tuning from the budget checkpoints", part, "budget checkpoints",
                                "random init")
        if stored_probes and all(r is not None for r in stored_probes):
            a, b = (r.predictions[r.predictions["task"] == task]["correct"].astype(bool) for r in stored_probes)
            rows.append(single_models(f"{task}: linear probe on frozen features, budget checkpoint against random "
                                      "weights", a.to_numpy(), b.to_numpy(), first, "random init"))
    reinit = _table(profile, "pretrain_reinit_table.csv")
    if not reinit.empty:
        task, kept = reinit["data"].iloc[0], list(downstream.REINITS)[0]
        frame = reinit.assign(variant=reinit["arm"])
        rows += [paired(f"{task}: budget checkpoint 0 with its {name.split()[0]} drawn afresh against as pretrained "
                        "(is that part why it fine-tunes worse?)", frame, name, kept)
                 for name in list(downstream.REINITS)[1:]]
    control = _table(profile, "minilm_pretrained_vs_random_table.csv")
    if not control.empty:
        rows += _downstream(f"movie_snippets: fine-tuning from shipped pretrained weights ({p.control_model})", control,
                            downstream.CONTROL_PRETRAINED, downstream.CONTROL_RANDOM)
    return rows


def _table(profile: Profile, name: str) -> pd.DataFrame:
    path = results_dir(profile) / name
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


def _downstream(what: str, table: pd.DataFrame, arm: str, reference: str) -> list[dict]:
    """Fine-tuning `arm` against `reference`, each at its own rate: accuracy paired over fine-tuning seeds (an arm's
    checkpoints averaged at each seed), and the failure rate over every run."""
    final = table[table["stage"] == "final"].assign(variant=lambda d: d["arm"])
    return [paired(f"{what} against random weights, each at its own rate", downstream.paired_frame(table), arm,
                   reference),
            failures(f"{what}: failure rate against random weights".replace(": fine-tuning from", ", fine-tuning from"),
                     final, arm, reference)]


def _distillation(profile: Profile) -> list[dict]:
    """Notebook 08: first whether the student learns at all (hard labels against the TF-IDF floor: nothing can be
    distilled into a student below it); then soft + hard targets against hard labels at each student rate, and
    whether the soft targets' gain grows with the rate (Hinton et al. 2015: soft targets vary less from sentence to
    sentence, so a student can take a higher rate); then the int8 teacher against fp32."""
    cells = distill.student_specs(profile)
    ids = {run_id(spec.identity()): name for name, specs in cells.items() for spec in specs}
    frame = cells_frame("distill", ids, profile, seed="student.train.seed")
    low, high = min(profile.distill_rates), max(profile.distill_rates)
    name, hard = distill.student_name, min(profile.distill_alphas)
    floor_path = results_dir(profile) / "distill_tfidf.csv"  # notebook 08's floor on the labelled sentences
    rows = []
    if floor_path.exists():
        floor = float(pd.read_csv(floor_path)["test_accuracy"].iloc[0])
        part = frame[frame["variant"] == name(hard, low)] if not frame.empty else frame
        rows.append(above_floor(f"student trained on the teacher's hard labels against the TF-IDF floor "
                                f"(lr {finetune.lr_label(low)})", part, floor, name(hard, low), "TF-IDF + LR"))
    for alpha in (a for a in profile.distill_alphas if a != hard):
        rows += [paired(f"student accuracy with the teacher's soft targets at lr {finetune.lr_label(lr)}", frame,
                        name(alpha, lr), name(hard, lr)) for lr in profile.distill_rates]
        pairs = ((name(alpha, high), name(hard, high)), (name(alpha, low), name(hard, low)))
        rows.append(difference_of_differences("the soft targets' gain grows with the student's rate (α × lr)", frame,
                                              pairs, f"(α {alpha:g} − α {hard:g}) at {finetune.lr_label(high)} − at "
                                              f"{finetune.lr_label(low)}"))
    measured = load_experiment(COMPRESSION, profile)
    if not measured.empty:  # the latest measurement (rows keep the order they were stored in)
        folder = results_dir(profile) / "runs" / COMPRESSION / measured["run_id"].iloc[-1]
        t = pd.read_csv(folder / "predictions.csv.gz")
        rows.append(single_models("teacher quantised to dynamic int8 against fp32", t["int8_correct"].to_numpy(),
                                  t["fp32_correct"].to_numpy(), "int8", "fp32"))
    return rows


def _your_data(profile: Profile) -> list[dict]:
    """Notebook 09, for every data set it has run on: MiniLM against the TF-IDF floor, and the aggressive rate."""
    rows = []
    for csv in sorted(results_dir(profile).glob("finetune__*_tfidf.csv")):
        label = csv.name[len("finetune__") : -len("_tfidf.csv")]
        runs = load_experiment(f"finetune__{label}", profile)
        if runs.empty:
            continue
        floor = float(pd.read_csv(csv)["test_accuracy"].iloc[0])
        rows.append(above_floor(f"{label}: fine-tuned MiniLM against the TF-IDF floor", runs, floor, "MiniLM",
                                "TF-IDF + LR"))
        grid = load_experiment(f"ablation_llrd__{label}", profile)
        if not grid.empty:
            grid = grid[grid["train.xi"] == 1.0].assign(seed=lambda d: d["train.seed"],
                                                        variant=lambda d: d["train.lr"].map(finetune.lr_label))
            hot, work = ablations.AGGRESSIVE_LR, finetune.WORKING_LR
            rows.append(paired(f"{label}: {hot / work:g}× the working rate", grid, finetune.lr_label(hot),
                               finetune.lr_label(work)))
    return rows


COMPRESSION = "compression_measurement"  # notebook 08's stored measurement (per test sentence: fp32 / int8 right?)

FAMILIES: dict[str, Callable[[str], list[dict]]] = {
    "01": _pretraining,
    "02": _baseline,
    "03": _warmup,
    "04": _weight_decay,
    "05": _llrd,
    "07": _batch_seq,
    "08": _distillation,
    "09": _your_data,
}
"""Notebook → the builder of its family of comparisons, from what its runs stored."""


def table(profile: Profile, notebooks: list[str] | None = None) -> pd.DataFrame:
    """All findings of the stored runs (or of `notebooks`), each family Holm-corrected on its own."""
    parts = [family(nb, build(profile)) for nb, build in FAMILIES.items() if notebooks is None or nb in notebooks]
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)


def write(profile: Profile) -> pd.DataFrame:
    """Regenerate `results/findings.csv` from every stored run; return it."""
    df = table(profile).round(4)  # what the CSV holds is what every page prints (REPORT and README agree)
    write_table(df, results_dir(profile) / "findings.csv", index=False)
    return df


def rows(notebook: str, profile: Profile) -> pd.DataFrame:
    """Regenerate findings.csv and return this notebook's rows, readable (empty if none are stored yet)."""
    df = write(profile)
    return readable(df[df["notebook"] == notebook])


def show(notebook: str, profile: Profile) -> None:
    """In a notebook, the findings cell: this notebook's rows (regenerated from every stored run) as a table,
    then as the generated sentences the README and REPORT print."""
    from IPython.display import Markdown, display

    display(rows(notebook, profile))
    display(Markdown(sentences(notebook, profile)))
    beside = literature(pd.read_csv(results_dir(profile) / "findings.csv"), notebook)
    if not beside.empty:
        display(Markdown("**Beside the literature** (`lib.published`):"))
        display(beside.drop(columns="notebook"))


def seeds_note(row: pd.Series, effects: dict[str, float]) -> str:
    """For a paired row: how many paired seeds a t-test would need (80% power) to detect each named effect
    (points), given the spread of the paired differences the row measured (recovered from its MDE)."""
    n, level = int(row["n_seeds"]), float(row["mde_level"])
    if n < 2 or pd.isna(row["mde"]):
        return f"{row['finding']}: {n} seed(s) — too few to measure the spread of paired differences."
    sd = row["mde"] / stats.mde_paired(1.0, n, level)
    need = "; ".join(f"{name} ({effect:g} points): about {stats.seeds_needed(effect, sd, level):,} seeds"
                     for name, effect in effects.items())
    return (f"Paired differences in *{row['finding']}* spread by {sd:.1f} points over {n} seeds. To detect, at "
            f"this notebook's Holm level α = {level:.3g}, {need}.")


def sentences(notebook: str, profile: Profile) -> str:
    """This notebook's findings as Markdown bullets (read from the regenerated table)."""
    df = pd.read_csv(results_dir(profile) / "findings.csv") if (results_dir(profile) / "findings.csv").exists() \
        else table(profile)
    rows = df[df["notebook"].astype(str).str.zfill(2) == notebook]
    return "\n".join(f"* {sentence(r)}" for _, r in rows.iterrows()) or "* No findings stored yet."


def readable(df: pd.DataFrame) -> pd.DataFrame:
    """Rounded, with the interval in one column."""
    out = df.drop(columns=["notebook"]).copy()
    out["95% CI"] = [f"{lo:+.1f} to {hi:+.1f}" if pd.notna(lo) else "–"
                     for lo, hi in zip(out["ci_low"], out["ci_high"])]
    for c in ("mean_diff", "mde"):
        signed = "+" if c == "mean_diff" else ""
        out[c] = out[c].map(lambda v, signed=signed: f"{v:{signed}.1f}" if pd.notna(v) else "–")
    for c in ("p", "p_holm"):
        out[c] = out[c].map(lambda v: f"{v:.3f}" if pd.notna(v) else "–")
    out["mde at α"] = out["mde_level"].map(lambda v: f"{v:.3g}")
    cols = ["finding", "variant", "baseline", "n_seeds", "mean_diff", "95% CI", "p", "p_holm", "mde", "mde at α",
            "verdict", "test"]
    return out[cols].reset_index(drop=True)


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def literature(table: pd.DataFrame, notebook: str | None = None) -> pd.DataFrame:
    """Each finding with a published counterpart (`lib.published.COUNTERPARTS`) beside it: ours with its verdict,
    theirs, whether the directions agree (only a supported row has a direction), and why a difference is
    expected."""
    rows = []
    for c in published.COUNTERPARTS:
        if notebook is not None and c.notebook != notebook:
            continue
        mine = table[(table["notebook"].astype(str).str.zfill(2) == c.notebook)
                     & table["finding"].str.contains(c.finding, regex=True)]
        for _, r in mine.iterrows():
            rows.append({"notebook": c.notebook, "our finding": r["finding"],
                         "ours": f"{r['variant']} vs {r['baseline']}: {r['mean_diff']:+.1f} points, {r['verdict']}",
                         "published": c.source, "theirs": c.theirs, "agreement": agreement(r, c.direction),
                         "why a difference is expected": c.why})
    return pd.DataFrame(rows, columns=["notebook", "our finding", "ours", "published", "theirs", "agreement",
                                       "why a difference is expected"])


def agreement(row: pd.Series, direction: int | None) -> str:
    """Our row against the sign of a published effect, in words a reviewer would sign."""
    if row["verdict"] != SUPPORTED:
        miss = f" (could miss up to {row['mde']:.1f} points)" if pd.notna(row["mde"]) else ""
        return f"not detected here{miss}: no direction to compare"
    ours = 1 if row["mean_diff"] > 0 else -1
    if direction is None:
        return "both find an effect"
    if direction == 0:
        return "they report no clear or a negligible effect; we detect one"
    return "same direction" if ours == direction else "opposite direction"


def could_miss(row: pd.Series) -> str:
    """What a row that is not supported can still hide, from its MDE at its Holm level."""
    if row["verdict"] == SUPPORTED or pd.isna(row["p"]):
        return ""
    level = f"80% power at α = {row['mde_level']:.3g}"
    if pd.notna(row["mde"]):
        return f" (could miss a true effect up to {row['mde']:.1f} points: {level})"
    return f" (no change in this direction reaches {level} with these runs)"


def short_sentence(row: pd.Series) -> str:
    """One finding in a line: the comparison, its difference with interval and Holm p, the verdict."""
    interval = f", 95% CI {row['ci_low']:+.1f} to {row['ci_high']:+.1f}" if pd.notna(row["ci_low"]) else ""
    return (f"{row['finding']}: {row['variant']} vs {row['baseline']}, {row['mean_diff']:+.1f} points{interval} "
            f"(n = {row['n_seeds']}, Holm p {_p(row['p_holm'])}) — **{row['verdict']}**{could_miss(row)}")


def sentence(row: pd.Series) -> str:
    """One finding as the sentence the README and REPORT print."""
    interval = f"95% CI {row['ci_low']:+.1f} to {row['ci_high']:+.1f}" if pd.notna(row["ci_low"]) else "no CI"
    p = f"p {_p(row['p'])}, Holm p {_p(row['p_holm'])}" if pd.notna(row["p"]) else "no test"
    return (f"{row['finding']}: {row['variant']} vs {row['baseline']}, {row['mean_diff']:+.1f} points over "
            f"{row['n_seeds']} seed(s) ({interval}; {p}) — **{row['verdict']}**{could_miss(row)} ({row['test']})")


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lib.findings", description=__doc__.splitlines()[0])
    parser.add_profile()
    args = parser.parse_args(argv)
    df = write(args.profile)
    print(readable(df).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
