"""Figures, with seaborn. Every figure has a title, labelled axes and units,
and is saved next to the CSVs it is rebuilt from (`results/figures/`)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns

from lib import stats
from lib.atomic import atomic_path
from lib.paths import figures_dir
from lib.profiles import Profile

sns.set_theme(style="whitegrid", context="notebook")


def save(fig: plt.Figure, name: str, profile: Profile) -> str:
    """Save `fig` as results/figures/<name>.png and return the path."""
    path = figures_dir(profile) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return str(path)


def plot_lr_curves(curves: pd.DataFrame, title: str = "Learning rate per parameter group", ax=None) -> plt.Axes:
    """`curves` in long format (step, group, lr), as `history_lrs` (a run's log) and `lib.demos.lr_curves` return."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    groups = list(dict.fromkeys(curves["group"]))
    palette = sns.color_palette("viridis", len(groups))
    sns.lineplot(data=curves, x="step", y="lr", hue="group", hue_order=groups, palette=palette, ax=ax)
    ax.set(title=title, xlabel="optimizer step", ylabel="learning rate")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    ax.legend(title="group", fontsize=8, ncol=2 if len(groups) > 6 else 1)
    return ax


def plot_training_curves(
    histories: Mapping[str, pd.DataFrame], metric: str = "accuracy", title: str = "Training curves", smooth: int = 10
) -> plt.Figure:
    """Training loss (rolling mean over `smooth` steps) and validation `metric`,
    one line per run (e.g. per seed)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    for label, h in histories.items():
        left.plot(h["step"], h["loss"].rolling(smooth, min_periods=1).mean(), label=label)
        col = f"val_{metric}"
        if col in h:
            ev = h.dropna(subset=[col])
            right.plot(ev["step"], 100 * ev[col] if metric != "loss" else ev[col], marker="o", label=label)
    left.set(title="training loss", xlabel="optimizer step", ylabel=f"cross-entropy (nats, mean of {smooth} steps)")
    unit = "nats" if metric.endswith("loss") else "%"
    right.set(title=f"validation {metric}", xlabel="optimizer step", ylabel=f"{metric} ({unit})")
    for ax in (left, right):
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion(cm: np.ndarray, names: list[str], title: str = "Confusion matrix") -> plt.Figure:
    """Counts and row-normalised percentages (recall per true class) side by side."""
    cm = np.asarray(cm)
    rows = cm.sum(1, keepdims=True)
    pct = 100 * cm / np.where(rows == 0, 1, rows)
    size = max(4.0, 0.7 * len(names) + 2)
    fig, (a, b) = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    sns.heatmap(
        cm,
        annot=True,
        fmt="d",
        cmap="Blues",
        xticklabels=names,
        yticklabels=names,
        ax=a,
        cbar_kws={"label": "examples"},
    )
    sns.heatmap(
        pct,
        annot=True,
        fmt=".0f",
        cmap="Blues",
        vmin=0,
        vmax=100,
        xticklabels=names,
        yticklabels=names,
        ax=b,
        cbar_kws={"label": "% of true class"},
    )
    a.set(title="counts", xlabel="predicted class", ylabel="true class")
    b.set(title="row-normalised (% of each true class)", xlabel="predicted class", ylabel="true class")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_label_balance(data: Mapping[str, pd.DataFrame], title: str = "Label balance per data set") -> plt.Figure:
    """`data`: name → frame with a `label` column of class names (train split)."""
    fig, axes = plt.subplots(1, len(data), figsize=(4.5 * len(data), 3.8))
    for ax, (name, df) in zip(np.atleast_1d(axes), data.items()):
        order = df["label"].value_counts().index.tolist()
        sns.countplot(data=df, y="label", order=order, ax=ax, color=sns.color_palette()[0])
        ax.set(title=name, xlabel="training examples", ylabel="class")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_length_hist(lengths: pd.DataFrame, title: str = "Sequence length in tokens") -> plt.Axes:
    """`lengths`: long frame (dataset, tokens); shows where max_length cuts."""
    _, ax = plt.subplots(figsize=(7, 4))
    sns.histplot(
        data=lengths, x="tokens", hue="dataset", element="step", stat="percent", common_norm=False, bins=40, ax=ax
    )
    ax.set(title=title, xlabel="WordPiece tokens per example (incl. [CLS], [SEP])", ylabel="% of examples")
    return ax


def history_lrs(history: pd.DataFrame) -> pd.DataFrame:
    """The per-group rates a run actually used (its `lr/<group>` log) in long format."""
    cols = [c for c in history.columns if c.startswith("lr/")]
    long = history.melt(id_vars="step", value_vars=cols, var_name="group", value_name="lr")
    long["group"] = long["group"].str.removeprefix("lr/")
    return long


def _as_list(line: tuple[float, str] | list[tuple[float, str]] | None) -> list[tuple[float, str]]:
    return [] if line is None else list(line) if isinstance(line, list) else [line]


def plot_pretraining_curves(
    histories: Mapping[str, pd.DataFrame],
    title: str = "Pretraining",
    smooth: int = 20,
    baselines: Mapping[str, tuple[float, str] | list[tuple[float, str]]] | None = None,
) -> plt.Figure:
    """MLM and NSP loss and accuracy: training (rolling mean) as lines, held-out as dots.

    `baselines` maps a panel's column (e.g. "mlm_accuracy") to (value, label), or a list of them: floors drawn
    as horizontal lines (e.g. a context-free guess), so the curve shows whether MLM has left the frequent-word
    plateau. NSP's chance is 50%.
    The accuracy panel also shows held-out accuracy at [MASK] inputs alone, where copying cannot help.
    """
    panels = [
        ("mlm_loss", "MLM loss", "cross-entropy (nats)"),
        ("mlm_accuracy", "MLM accuracy on masked tokens", "accuracy (%)"),
        ("nsp_loss", "NSP loss", "cross-entropy (nats)"),
        ("nsp_accuracy", "NSP accuracy", "accuracy (%)"),
    ]
    lines = dict(baselines or {}) | {"nsp_accuracy": (0.5, "chance (50%)")}
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), layout="constrained")
    for ax, (col, name, unit) in zip(axes.flat, panels):
        scale = 100 if col.endswith("accuracy") else 1
        for i, (label, h) in enumerate(histories.items()):
            color = sns.color_palette()[i]
            if col in h:
                ax.plot(
                    h["step"],
                    scale * h[col].rolling(smooth, min_periods=1).mean(),
                    color=color,
                    label=f"{label} (train)",
                )
            if f"val_{col}" in h:
                ev = h.dropna(subset=[f"val_{col}"])
                ax.plot(ev["step"], scale * ev[f"val_{col}"], "o--", color=color, label=f"{label} (held-out)")
            if col == "mlm_accuracy" and "val_mlm_mask_accuracy" in h:  # no copying possible at [MASK] inputs
                ev = h.dropna(subset=["val_mlm_mask_accuracy"])
                ax.plot(ev["step"], 100 * ev["val_mlm_mask_accuracy"], "s:", color=color,
                        label=f"{label} (held-out, [MASK] inputs only)")
        drawn = _as_list(lines.get(col))
        if col == "mlm_accuracy":
            drawn += _as_list(lines.get("mlm_mask_accuracy"))
        for (value, label), style in zip(drawn, [":", "-.", "--", (0, (1, 3))]):
            ax.axhline(scale * value, color="black" if style == ":" else "grey", lw=1.2, ls=style, label=label)
        ax.set(title=name, xlabel="optimizer step", ylabel=unit)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)  # below the data
    fig.suptitle(title)
    return fig


# ------------------------------------------------------------------ ablations
def plot_ablation(
    frame: pd.DataFrame, cmp: pd.DataFrame, title: str, metric: str = "test_accuracy", baseline: str | None = None,
    floor: float | None = None,
) -> plt.Figure:
    """Left: accuracy per variant — every seed as a dot, the mean with its 95% interval — with the
    baseline's mean, the majority class and, if given, a deterministic `floor` (e.g. TF-IDF) as lines.
    Right: % of failed runs (bars from 0).

    `frame` has one row per run (`variant`, `metric`, `test_majority`); `cmp` is `lib.stats.compare`
    of it (gives the order, n, interval and failures, and its baseline unless `baseline` names one), or of seed means
    with `failed` and `runs` counted over the runs (`lib.downstream.compare_arms`).
    Dots and intervals need no zero on the axis; the majority line gives the scale its floor.
    """
    order = list(cmp.index)
    baseline = baseline or cmp.attrs.get("baseline", order[0])
    df = frame.assign(acc=100 * frame[metric])
    height = 0.5 * len(order) + 2.6
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, height), gridspec_kw={"width_ratios": [3, 1]}, sharey=True)
    ys = {name: i for i, name in enumerate(order)}
    # no jitter: seaborn's is random, so every replay would redraw the PNG with different bytes
    a.scatter(df["acc"], df["variant"].map(ys) + 0.18, s=14, color="black", alpha=0.6,
              label="one run" if "runs" in cmp else "one seed")
    a.errorbar(cmp["mean"], range(len(order)), xerr=[cmp["mean"] - cmp["ci_low"], cmp["ci_high"] - cmp["mean"]],
               fmt="D", color=sns.color_palette()[0], capsize=4, label="mean and 95% interval")
    majority = 100 * float(frame["test_majority"].iloc[0])
    label = f"majority class ({majority:.1f}%): at or below = failed"
    a.axvline(majority, color="firebrick", ls=":", lw=1.5, label=label)
    base_mean = float(cmp.loc[baseline, "mean"])
    a.axvline(base_mean, color="grey", ls="--", lw=1, label=f"baseline mean, {baseline} ({base_mean:.1f}%)")
    if floor is not None:
        a.axvline(100 * floor, color="darkgreen", ls="-.", lw=1, label=f"TF-IDF floor ({100 * floor:.1f}%)")
    lines = [majority] + ([100 * floor] if floor is not None else [])
    lo = max(0.0, min(df["acc"].min(), *lines, cmp["ci_low"].min()) - 3)  # every seed, interval and line in view
    hi = min(100, max(df["acc"].max(), *lines, cmp["ci_high"].max()) + 3)
    a.set(xlim=(lo, hi), xlabel="test accuracy (%)", ylabel="")
    a.set_yticks(range(len(order)), order)
    a.invert_yaxis()
    handles, labels = a.get_legend_handles_labels()  # below the panels: a legend never covers a dot
    if "failed" in cmp:
        runs = stats.run_counts(cmp)
        rate = 100 * cmp["failed"] / runs
        b.barh(range(len(order)), rate.to_numpy(), color="firebrick", alpha=0.7)
        for i, (f, n) in enumerate(zip(cmp["failed"], runs)):
            b.text(2, i, f"{f}/{n}", va="center", fontsize=8)
        b.set(xlim=(0, 100), xlabel=f"failed runs (% of {'runs' if 'runs' in cmp else 'seeds'})", title="failure rate")
    n = cmp["n"]
    seeds = f"n = {n.min()}–{n.max()} seeds per variant" if n.min() != n.max() else f"{n.min()} seeds per variant"
    fig.suptitle(f"{title} ({seeds})")
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.45 / height, 1, 1))
    return fig


def plot_run_curves(
    runs: Mapping[str, pd.DataFrame],
    columns: Mapping[str, str],
    title: str,
    smooth: int = 1,
    logy: bool = False,
    ncols: int = 3,
) -> plt.Figure:
    """One panel per history column (`columns`: column → axis label with unit),
    one line per run (`runs`: label → history). For LR schedules, losses, norms."""
    n = len(columns)
    fig, axes = plt.subplots(
        int(np.ceil(n / ncols)), min(n, ncols), figsize=(5.2 * min(n, ncols), 3.8 * np.ceil(n / ncols)), squeeze=False
    )
    palette = sns.color_palette("tab10" if len(runs) <= 10 else "husl", len(runs))
    for ax, (col, unit) in zip(axes.flat, columns.items()):
        for color, (label, h) in zip(palette, runs.items()):
            if col not in h:
                continue
            part = h.dropna(subset=[col])
            if logy:  # a zero (e.g. the first update under warmup, at rate 0) has no place on a log axis
                part = part[part[col] > 0]
            ax.plot(part["step"], part[col].rolling(smooth, min_periods=1).mean(), label=label, color=color, lw=1.4,
                    marker="." if len(part) <= 25 else None)
        ax.set(title=col, xlabel="optimizer step", ylabel=unit)
        if logy:
            ax.set_yscale("log")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=min(4, len(labels)),
        fontsize=8,
        bbox_to_anchor=(0.5, -0.02 - 0.035 * np.ceil(len(labels) / 4)),
    )
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_accuracy_heatmap(
    ours: pd.DataFrame, reference: pd.DataFrame | None = None, title: str = "", ref_title: str = "", ref_unit: str = ""
) -> plt.Figure:
    """`ours`: frame with columns lr, xi, acc (one row per run) → mean accuracy
    heatmap lr × ξ annotated 'mean ± std'. `reference`: a published table (rows
    lr, columns ξ) drawn beside it with its own unit."""
    mean = ours.pivot_table(index="lr", columns="xi", values="acc", aggfunc="mean").sort_index(axis=1, ascending=False)
    std = ours.pivot_table(index="lr", columns="xi", values="acc", aggfunc="std").reindex_like(mean)
    annot = mean.map(lambda v: f"{v:.1f}") + "\n± " + std.map(lambda v: f"{v:.1f}")
    panels = 2 if reference is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 0.9 * len(mean) + 2.8), squeeze=False)
    sns.heatmap(mean, annot=annot, fmt="", cmap="viridis", ax=axes[0, 0], cbar_kws={"label": "test accuracy (%)"})
    axes[0, 0].set(title=title, xlabel="layer-wise decay ξ (1 = none)", ylabel="base learning rate")
    if reference is not None:  # the same span of points per colour on both panels: small gaps stay pale
        span = float(mean.max().max() - mean.min().min()) or 1.0
        low = float(reference.min().min())
        sns.heatmap(reference, annot=True, fmt=".2f", cmap="viridis_r", vmin=low, vmax=low + span, ax=axes[0, 1],
                    cbar_kws={"label": f"{ref_unit}, colour span {span:.1f} points as on the left"})
        axes[0, 1].set(title=ref_title, xlabel="layer-wise decay ξ (1 = none)", ylabel="base learning rate")
    fig.tight_layout()
    return fig


def plot_seed_curves(
    panels: Mapping[str, Mapping[int, pd.DataFrame]],
    column: str,
    ylabel: str,
    title: str,
    failed: set[tuple[str, int]] = frozenset(),
    smooth: int = 4,
    ncols: int = 3,
) -> plt.Figure:
    """One panel per variant (`panels`: variant → seed → history), one line per seed of `column`
    (rolling mean over `smooth` steps); failed runs red and dashed, counted in the panel's title
    (no per-seed legend: with ten seeds it would cover the curves)."""
    n = len(panels)
    rows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(rows, min(n, ncols), figsize=(5 * min(n, ncols), 3.4 * rows), squeeze=False, sharey=True)
    for ax, (variant, seeds) in zip(axes.flat, panels.items()):
        for seed, h in seeds.items():
            bad = (variant, seed) in failed
            color, style = ("firebrick", "--") if bad else (sns.color_palette()[0], "-")
            ax.plot(h["step"], h[column].rolling(smooth, min_periods=1).mean(), color=color, ls=style, lw=1.1,
                    alpha=0.8)
        k = sum((variant, seed) in failed for seed in seeds)
        ax.set(title=f"{variant}\n{k} of {len(seeds)} runs failed", xlabel="optimizer step", ylabel=ylabel)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(f"{title} — one line per seed; red dashed: failed (at or below the majority class)")
    fig.tight_layout()
    return fig


def save_ablations(frame: pd.DataFrame, summaries: Mapping[str, pd.DataFrame], prefix: str, title: str,
                   profile: Profile) -> list[str]:
    """`plot_ablation` for every data set of a grid (`frame`: its runs, `summaries`: `lib.sweep.summarize`),
    saved as figures/<prefix>_accuracy_<data>.png; returns the paths."""
    return [save(plot_ablation(frame[frame["data"] == data], cmp, f"{title}, {data}"), f"{prefix}_accuracy_{data}",
                 profile) for data, cmp in summaries.items()]


def plot_lr_fan(histories: Mapping[float, pd.DataFrame], base_lr: str) -> tuple[plt.Figure, pd.DataFrame]:
    """Notebook 05. `histories`: ξ → a run's history at base rate `base_lr`. Left: every group's rate per
    step for the smallest ξ; right: each group's peak rate for every ξ. Returns the figure and the peaks."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 4.5))
    smallest = min(histories)
    plot_lr_curves(
        history_lrs(histories[smallest]), title=f"per-group learning rate, lr {base_lr} · ξ {smallest:g}", ax=a
    )
    peaks = pd.concat(
        [
            history_lrs(h).groupby("group", sort=False)["lr"].max().rename(f"ξ {xi:g}")
            for xi, h in sorted(histories.items())
        ],
        axis=1,
    )
    peaks.plot(ax=b, marker="o", colormap="viridis")
    b.set(
        title=f"peak rate per group (base rate {base_lr})",
        xlabel="parameter group (bottom → top)",
        ylabel="peak learning rate",
    )
    b.set_xticks(range(len(peaks)), peaks.index, rotation=30)
    b.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    fig.tight_layout()
    return fig, peaks


def plot_accuracy_vs_time(frame: pd.DataFrame, title: str) -> plt.Figure:
    """Notebook 07: mean ± std test accuracy against mean ± std training wall time, one point per variant."""
    fig, ax = plt.subplots(figsize=(8, 5))
    agg = frame.groupby("variant", sort=False).agg(
        acc=("test_accuracy", "mean"),
        acc_sd=("test_accuracy", "std"),
        sec=("train_seconds", "mean"),
        sec_sd=("train_seconds", "std"),
    )
    for i, (name, r) in enumerate(agg.iterrows()):
        ax.errorbar(
            r.sec,
            100 * r.acc,
            xerr=r.sec_sd,
            yerr=100 * r.acc_sd,
            fmt="o",
            capsize=3,
            color=sns.color_palette("tab20")[i % 20],
            label=name,
        )
    ax.set(
        title=f"{title} (mean ± std over {frame['seed'].nunique()} seeds)",
        xlabel="training wall time per run (s, 2-core CPU)",
        ylabel="test accuracy (%)",
    )
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    return fig


def plot_accuracy_vs_latency(table: pd.DataFrame, title: str) -> plt.Figure:
    """Notebook 08: accuracy (mean) against batch-1 latency (log scale); marker area ∝ size on disk.

    `table` has the columns of `lib.distill.compression_table`; the model names label the points."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    acc = table["test accuracy (%)"].str.split(" ").str[0].astype(float)
    ax.scatter(table["ms / sentence, batch 1"], acc, s=table["size on disk (MB)"] * 4, alpha=0.6)
    seen: dict[tuple[float, float], int] = {}
    for name, x, y in zip(table.index, table["ms / sentence, batch 1"], acc):
        short = name.replace("student: bert-mini, ", "student ").replace("teacher: MiniLM-L6, ", "teacher ")
        k = seen[(x, y)] = seen.get((x, y), -1) + 1  # points that coincide get stacked labels
        ax.annotate(short, (x, y), fontsize=8, xytext=(6, 3 - 11 * k), textcoords="offset points")
    ax.set(
        xscale="log",
        title=title,
        xlabel="CPU latency, ms per sentence at batch 1 (log scale)",
        ylabel="test accuracy (%)",
    )
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    return fig


def plot_failure_curve(curve: pd.DataFrame, half: pd.Series, title: str) -> plt.Figure:
    """Notebook 03: the share of failed runs against the learning rate (log axis), one line per arm, with Wilson
    95% intervals; a dotted mark where each arm crosses half (`lib.ablations.half_failure_rate`)."""
    fig, ax = plt.subplots(figsize=(8.5, 5.4))
    palette = dict(zip(curve["arm"].unique(), sns.color_palette(n_colors=curve["arm"].nunique())))
    for i, (arm, c) in enumerate(curve.groupby("arm", sort=False)):
        x = c["lr"] * (1 + 0.03 * (i - 1))  # a nudge, so intervals at one rate do not hide each other
        below, above = (c["failed (%)"] - c["CI low"]).clip(lower=0), (c["CI high"] - c["failed (%)"]).clip(lower=0)
        ax.errorbar(x, c["failed (%)"], yerr=[below, above],  # clipped: Wilson's ends round a hair past 0 and 100
                    marker="o", capsize=3, color=palette[arm], label=f"{arm} ({int(c['runs'].iloc[0])} runs per rate)")
        if pd.notna(half.get(arm)):
            ax.axvline(half[arm], color=palette[arm], linestyle=":", linewidth=1)
    ax.set_xscale("log")
    rates = sorted(curve["lr"].unique())
    ax.set_xticks(rates, [stats.lr_label(r) for r in rates])
    ax.minorticks_off()
    ax.set(ylim=(-3, 103), xlabel="peak learning rate (log scale)", ylabel="failed runs (% of seeds)", title=title)
    ax.axhline(50, color="grey", linewidth=0.8, linestyle="--")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=9, frameon=False,
              title="dotted line: the rate where an arm's curve crosses half", title_fontsize=8)
    fig.tight_layout()
    return fig


def plot_rate_curve(frame: pd.DataFrame, arm: str, title: str, chosen: Mapping | None = None,
                    rate: str = "train.lr") -> plt.Figure:
    """Test accuracy against the learning rate (log axis), one line per `arm` (a column): every seed a dot, the mean
    with its 95% interval over seeds; a ring marks each arm's rate in `chosen` (arm → rate, e.g. picked on
    validation). The majority class is the dotted floor — one per arm where the arms are different tasks
    (notebooks 02, 05, 07)."""
    df = frame.assign(acc=100 * frame["test_accuracy"])
    arms = list(dict.fromkeys(df[arm].tolist()))
    palette = dict(zip(arms, sns.color_palette(n_colors=len(arms))))
    majority = df.groupby(arm, sort=False)["test_majority"].first().mul(100)
    fig, ax = plt.subplots(figsize=(8.5, 5.2))
    for i, (name, part) in enumerate((a, df[df[arm] == a]) for a in arms):
        nudge = 1 + 0.04 * (i - (len(arms) - 1) / 2)  # seeds of different arms at one rate side by side
        ax.scatter(part[rate] * nudge, part["acc"], s=12, alpha=0.45, color=palette[name])
        by = part.groupby(rate)["acc"]
        mean, ci = by.mean(), by.agg(lambda x: stats.ci95(x)[1] - x.mean())
        n = sorted({by.size().min(), by.size().max()})
        ax.errorbar(mean.index * nudge, mean.to_numpy(), yerr=ci.to_numpy(), marker="D", capsize=3,
                    color=palette[name], label=f"{name} ({'–'.join(map(str, n))} seeds per rate)")
        if chosen and name in chosen and chosen[name] in mean.index:
            ax.scatter([chosen[name] * nudge], [mean[chosen[name]]], s=220, facecolors="none",
                       edgecolors=palette[name], linewidths=1.8)
    if majority.nunique() == 1:
        ax.axhline(majority.iloc[0], color="firebrick", ls=":", label=f"majority class ({majority.iloc[0]:.1f}%)")
    else:
        for name, m in majority.items():
            ax.axhline(m, color=palette[name], ls=":", label=f"majority class, {name} ({m:.1f}%)")
    ax.set_xscale("log")
    rates = sorted(df[rate].unique())
    ax.set_xticks(rates, [stats.lr_label(r) for r in rates])
    ax.minorticks_off()
    ax.set(xlabel="peak learning rate (log scale)", ylabel="test accuracy (%, mean and 95% CI over seeds)",
           title=title, ylim=(max(0, min(df["acc"].min(), majority.min()) - 3), 100))
    note = "ring: the rate chosen on validation" if chosen else None
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=9, frameon=False, title=note,
              title_fontsize=8)
    fig.tight_layout()
    return fig


def plot_factor_curve(curve: pd.DataFrame, floors: Mapping[str, list[tuple[float, str]]], title: str) -> plt.Figure:
    """Held-out [MASK] accuracy (left) and cross-entropy (right) of each factor-table arm over the peak rate, with
    `floors` ("accuracy" / "cross-entropy" → [(value, label)]) as horizontal lines: where each block leaves the
    plateau, and at which rate."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), layout="constrained")
    for ax, metric, unit in zip(axes, ("accuracy", "cross-entropy"), ("accuracy at [MASK] inputs (%)",
                                                                     "cross-entropy at [MASK] inputs (nats)")):
        for i, (arm, part) in enumerate(curve.groupby("arm", sort=False)):
            ax.plot(part["lr"], part[metric], "o-", color=sns.color_palette()[i], label=arm)
        for (value, label), style in zip(floors.get(metric, []), [":", "-.", "--"]):
            ax.axhline(value, color="black", lw=1.2, ls=style)
            ax.annotate(label, (0.01, value), xycoords=("axes fraction", "data"), xytext=(0, 3),
                        textcoords="offset points", fontsize=8)
        ax.set(xscale="log", xlabel="peak learning rate", ylabel=unit, xticks=sorted(curve["lr"].unique()))
        ax.set_xticklabels([stats.lr_label(v) for v in sorted(curve["lr"].unique())])
        ax.minorticks_off()
    axes[0].set_ylim(bottom=0)
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, title="arm")
    fig.suptitle(title)
    return fig
