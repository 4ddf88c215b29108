"""The workbook's grids (notebooks 02, 03, 04, 05, 07).

Everything here is data: each grid is a `Grid` of named overrides of
`lib.finetune.baseline_spec(profile)` (what notebook 02 fine-tunes), with the
cells its profile lists (`lib.profiles`). Keeping the grids in one place
means a notebook and `python -m lib.sweep <name>` run the same runs, and a
cell shared by two grids (the baseline is in all of them) is trained once and
replayed everywhere else.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from lib import published, stats
from lib.finetune import WORKING_LR, baseline_spec, lr_label
from lib.grid import Grid
from lib.optim import build_scheduler
from lib.profiles import Profile
from lib.train_config import num_update_steps

AGGRESSIVE_LR = 5e-4
"""5× the working rate: the edge where fine-tuning starts to fail in the quick regime (batch 8, 64 updates).
Picked by a pilot before the grids ran: at 1e-3 every run collapsed with or without warmup, at 3e-4 none did;
a failure rate can only move where it is neither 0 nor 1."""

TRUNCATION_LENGTH = 16
"""Tokens kept in the truncation comparison ([CLS] and [SEP] included): movie_snippets' median sentence is 26
tokens, so 81% of the training sentences lose words (55% at 24) — the regime of Sun et al.'s 512-token cut of
IMDb reviews, scaled to the longest labelled texts we ship."""


def _grid(experiment: str, profile: Profile, device: str, variants: dict[str, dict], baseline: str,
          failure_cells: list[str] = (), cell_seeds: dict[str, list[int]] | None = None) -> Grid:
    """A grid on the profile's baseline: the paired seeds, the failure seeds for `failure_cells`, and any other
    seeds `cell_seeds` names."""
    seeds = {name: profile.grids.failure_seeds for name in failure_cells} | (cell_seeds or {})
    return Grid(experiment, baseline_spec(profile, device=device), variants, baseline, profile.grids.paired_seeds,
                profile.datasets, seeds)


def _schedule(schedule: str, warmup: float) -> dict:
    # HF's "constant" ignores warmup; with warmup the same idea is "constant_with_warmup"
    name = "constant_with_warmup" if schedule == "constant" and warmup > 0 else schedule
    return {"schedule": name, "warmup_ratio": warmup}


BASELINE_DATASETS = ["movie_snippets", "trec6"]
"""Notebook 02 runs the baseline on both shipped tasks, whatever the profile's ablation data sets."""


def rate_name(lr: float) -> str:
    return f"lr {lr_label(lr)}"


def rates(profile: Profile, device: str = "auto") -> Grid:
    """Notebook 02: the baseline recipe over a curve of peak rates (`Grids.baseline_rates`), on both shipped tasks,
    with the paired seeds: is BERT-base's 2e-5 right for a 6-layer model on a short budget, and where does the curve
    turn over?"""
    g = profile.grids
    variants = {rate_name(lr): {"lr": lr} for lr in g.baseline_rates}
    return Grid("finetune_baseline", baseline_spec(profile, device=device), variants, rate_name(WORKING_LR),
                g.paired_seeds, BASELINE_DATASETS)


def curve_name(n: int, epochs: float, updates: int) -> str:
    return f"{n:,} sentences · {epochs:g} epochs · {updates} updates"


def learning_curve(profile: Profile, device: str = "auto") -> Grid:
    """Notebook 02: does more data help, or only the more updates it brings? At the working rate, each size of
    `Profile.curve_examples` at the budget's epochs (more data and more updates), at the budget's number of updates
    (more data only), and the budget's sentences for as many updates as the larger set gets (more updates only).
    Every cell evaluates as often as the budget does, so validation chooses among as many checkpoints."""
    b = profile.finetune
    n0, e0 = b.max_train_examples, b.epochs
    u0 = math.ceil(n0 / b.batch_size) * e0 if n0 else 0
    cells = {curve_name(n0, e0, u0): {"lr": WORKING_LR}} if n0 else {rate_name(WORKING_LR): {"lr": WORKING_LR}}
    for n in profile.curve_examples if n0 else []:
        u = math.ceil(n / b.batch_size) * e0
        cells[curve_name(n, e0, u)] = {"lr": WORKING_LR, "max_train_examples": n}
        cells[curve_name(n, e0 * u0 / u, u0)] = {"lr": WORKING_LR, "max_train_examples": n, "epochs": e0 * u0 / u,
                                                  "eval_every": int(u0 / e0)}
        cells[curve_name(n0, e0 * u / u0, u)] = {"lr": WORKING_LR, "epochs": e0 * u / u0, "eval_every": int(u / e0)}
    return Grid("finetune_baseline", baseline_spec(profile, device=device), cells, next(iter(cells)),
                profile.grids.paired_seeds, BASELINE_DATASETS[:1])


def warmup_name(lr: float, warmup: float, schedule: str = "linear", optimizer: str = "adamw") -> str:
    return f"lr {lr_label(lr)} · {schedule} · warmup {warmup:g}" + (NO_BIAS_CORRECTION if optimizer == "bertadam"
                                                                   else "")


NO_BIAS_CORRECTION = " · no bias correction"
"""Suffix of notebook 03's cells trained with `lib.optim.BertAdam` (AdamW without Adam's bias correction)."""


def warmup(profile: Profile, device: str = "auto") -> Grid:
    """Notebook 03: a failure curve over the learning rate (`Grids.warmup_rates`), at each rate without and with
    warmup, and without Adam's bias correction (the original BERT optimizer) — the two factors Mosbach et al.
    (2021) name — with the seeds a failure rate needs; in full also the schedule's shape at two rates."""
    g = profile.grids
    curve = {warmup_name(lr, w): {"lr": lr} | _schedule("linear", w) for lr in g.warmup_rates for w in g.warmup_ratios}
    no_bc = {warmup_name(lr, 0.0, optimizer="bertadam"): {"lr": lr, "optimizer": "bertadam"} | _schedule("linear", 0.0)
             for lr in g.warmup_rates}
    extra = {}
    if g.warmup_shapes:
        extra = {
            warmup_name(lr, w, s): {"lr": lr} | _schedule(s, w)
            for lr in (WORKING_LR, AGGRESSIVE_LR)
            for s in ("cosine", "constant")
            for w in g.warmup_ratios
        }
    cells = curve | no_bc
    return _grid("ablation_warmup", profile, device, cells | extra, warmup_name(AGGRESSIVE_LR, 0.0), list(cells))


def failure_curve(frame: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Notebook 03's curve: per arm (no warmup, each warmup, no bias correction) and rate, failed runs of all
    runs, the rate in % with its Wilson 95% interval."""
    g = profile.grids
    arms = {f"warmup {w:g}": {lr: warmup_name(lr, w) for lr in g.warmup_rates} for w in g.warmup_ratios}
    arms["no bias correction, warmup 0"] = {lr: warmup_name(lr, 0.0, optimizer="bertadam") for lr in g.warmup_rates}
    if frame.empty:
        return pd.DataFrame(columns=["arm", "lr", "failed", "runs", "failed (%)", "CI low", "CI high"])
    failed = stats.failed_runs(frame)
    rows = []
    for arm, cells in arms.items():
        for lr, cell in cells.items():
            runs = failed[frame["variant"] == cell]
            if runs.empty:
                continue
            k, n = int(runs.sum()), len(runs)
            lo, hi = stats.wilson(k, n)
            rows.append({"arm": arm, "lr": lr, "failed": k, "runs": n, "failed (%)": 100 * k / n,
                         "CI low": 100 * lo, "CI high": 100 * hi})
    return pd.DataFrame(rows)


def half_failure_rate(curve: pd.DataFrame) -> pd.Series:
    """Per arm, the rate at which half the runs fail, interpolated linearly in log-rate between the two measured
    rates that bracket 50% (NaN where the curve never crosses it): a description of where the curve sits, not a
    test (the test is `lib.findings`' McNemar over the paired (rate, seed) runs)."""
    out = {}
    for arm, c in curve.groupby("arm", sort=False):
        c = c.sort_values("lr")
        x, y = np.log(c["lr"].to_numpy()), c["failed (%)"].to_numpy()
        cross = [i for i in range(len(y) - 1) if (y[i] - 50) * (y[i + 1] - 50) <= 0 and y[i] != y[i + 1]]
        if not cross:
            out[arm] = float(c["lr"].iloc[0]) if len(y) and y[0] == 50 else math.nan
            continue
        i = cross[0]
        ys, xs = y[i:i + 2], x[i:i + 2]
        if ys[0] > ys[1]:  # np.interp needs the failure rates rising
            ys, xs = ys[::-1], xs[::-1]
        out[arm] = float(np.exp(np.interp(50, ys, xs)))
    return pd.Series(out, name="lr where half the runs fail")


OPTIMIZER_NAMES = {"adamw": "AdamW", "adam_l2": "Adam+L2"}

L2_SHRINK = 0.04
"""How much Adam+L2 shrinks MiniLM's weight matrices over a quick run: 3.6% at λ 0.001, 4.1% at 0.01 and 0.1
(the stored quick runs of notebook 04, before its redesign). Adam divides λθ by √v̂ like any gradient, so once
λθ outweighs a weight's own gradient the weight moves towards 0 at about the full rate, whatever λ is."""


def decay_name(optimizer: str, wd: float, everything: bool = False, lr: float = WORKING_LR) -> str:
    rate = "" if lr == WORKING_LR else f" · lr {lr_label(lr)}"
    return f"{OPTIMIZER_NAMES[optimizer]} · wd {wd:g}" + (" · everything decayed" if everything else "") + rate


def schedule_rates(spec) -> np.ndarray:
    """The learning rate of each optimizer step of a fine-tuning spec's run, from its schedule (no training)."""
    import torch

    cfg = spec.train
    n = spec.max_train_examples or len(spec.dataset()["train"])
    steps = num_update_steps(math.ceil(n / cfg.batch_size), cfg)
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=cfg.lr)
    scheduler = build_scheduler(optimizer, cfg.schedule, steps, cfg.warmup_ratio, cfg.warmup_steps)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.array(rates)


def matched_decay(profile: Profile, shrink: float = L2_SHRINK) -> float:
    """AdamW's λ that shrinks the decayed weights by `shrink` over the baseline's schedule: each step multiplies
    them by (1 − lr_t·λ), so λ solves Π(1 − lr_t·λ) = 1 − shrink (rounded to 3 significant digits)."""
    lrs = schedule_rates(baseline_spec(profile).with_overrides(lr=WORKING_LR))
    low, high = 0.0, 1.0 / lrs.max()
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if np.prod(1 - lrs * mid) > 1 - shrink else (low, mid)
    return float(f"{(low + high) / 2:.3g}")


def weight_decay(profile: Profile, device: str = "auto") -> Grid:
    """Notebook 04: AdamW's decoupled decay against Adam with an L2 term, each at every λ (biases and
    LayerNorm excluded); AdamW at the λ that shrinks the weights as much as Adam+L2 does (`matched_decay`), so
    the contrast is the algorithm, not the shrink; and both at the smallest and largest λ at more rates, with
    fewer seeds (Loshchilov & Hutter: only Adam+L2's best λ should move with the rate). In full also AdamW
    decaying everything, and no decay."""
    g = profile.grids
    variants = {
        decay_name(opt, wd): {"lr": WORKING_LR, "optimizer": opt, "weight_decay": wd, "exclude_bias_and_norm": True}
        for wd in g.weight_decays
        for opt in OPTIMIZER_NAMES
    }
    matched = matched_decay(profile)
    variants[decay_name("adamw", matched)] = {"lr": WORKING_LR, "weight_decay": matched}
    rates = {decay_name(opt, wd, lr=lr): {"lr": lr, "optimizer": opt, "weight_decay": wd}
             for lr in g.decay_rates for opt in OPTIMIZER_NAMES for wd in sorted({min(g.weight_decays),
                                                                                  max(g.weight_decays)})}
    if g.decay_everything:
        variants[decay_name("adamw", 0.01, True)] = {"lr": WORKING_LR, "weight_decay": 0.01,
                                                     "exclude_bias_and_norm": False}
        variants[decay_name("adamw", 0.0)] = {"lr": WORKING_LR, "weight_decay": 0.0}
    return _grid("ablation_weight_decay", profile, device, variants | rates, decay_name("adamw", 0.01),
                 cell_seeds={name: g.decay_rate_seeds for name in rates})


def llrd_name(lr: float, xi: float) -> str:
    return f"lr {lr_label(lr)} · ξ {xi:g}"


def llrd(profile: Profile, device: str = "auto") -> Grid:
    """Notebook 05: layer-wise LR decay ξ over a curve of rates (`Grids.llrd_rates`). ξ < 1 lowers every rate below
    the top layer, so ξ against ξ 1 at one base rate also compares two mean rates; over the curve each ξ can be
    compared at its own best rate (`best_rates`), and ξ's effect traced as the rate rises. The aggressive rate's
    cells get the failure seeds: there the lower layers are most at risk (Zhang et al. 2021)."""
    g = profile.grids
    variants = {llrd_name(lr, xi): {"lr": lr, "xi": xi} for lr in g.llrd_rates for xi in g.llrd_xis}
    hot = [llrd_name(AGGRESSIVE_LR, xi) for xi in g.llrd_xis if AGGRESSIVE_LR in g.llrd_rates]
    return _grid("ablation_llrd", profile, device, variants, llrd_name(WORKING_LR, 1.0), hot)


def best_rates(frame: pd.DataFrame, profile: Profile) -> dict[float, float]:
    """Per ξ, the rate of `Grids.llrd_rates` with the best mean *validation* accuracy over its seeds (empty if no
    runs): the choice a practitioner makes, so the test set stays out of it and ξ and ξ 1 each get their own."""
    if frame.empty:
        return {}
    g, out = profile.grids, {}
    for xi in g.llrd_xis:
        val = {lr: frame.loc[frame["variant"] == llrd_name(lr, xi), "best_val_accuracy"].mean() for lr in g.llrd_rates}
        val = {lr: v for lr, v in val.items() if pd.notna(v)}
        if val:
            out[xi] = max(val, key=val.get)
    return out


def batch_name(batch: int, updates: int | None, lr: float = WORKING_LR) -> str:
    return f"batch {batch} · " + (f"{updates} updates · " if updates else "") + f"lr {lr_label(lr)}"


def length_name(n: int, truncation: str = "head") -> str:
    return f"max_length {n} · {truncation}"


def scaled_rate(factor: int) -> float:
    """The working rate × √factor, to 3 significant digits: the square-root rule for a batch `factor` times larger
    (Hoffer et al. 2017; Malladi et al. 2022 for Adam), which keeps the noise of an update about the same."""
    return float(f"{WORKING_LR * math.sqrt(factor):.3g}")


def batch_cell(profile: Profile, factor: int = 1, scaled: bool = False) -> str:
    """Notebook 07's cell name for the batch × `factor` at equal epochs, at the working rate or `scaled_rate`."""
    b, n, epochs = profile.finetune.batch_size, profile.finetune.max_train_examples, profile.finetune.epochs
    updates = int(math.ceil(n / b) * epochs / factor) if n else None  # all data: the epochs are the budget
    return batch_name(b * factor, updates, scaled_rate(factor) if scaled else WORKING_LR)


def batch_seq(profile: Profile, device: str = "auto") -> Grid:
    """Notebook 07: bigger batches at equal epochs (so fewer updates), each at the working rate and at the rate
    scaled by √factor — whether a bigger batch loses accuracy, and whether a larger rate wins it back; which end
    of a long text to keep (Sun et al. 2019, Table 2); in full also shorter maximum lengths."""
    p, b = profile, profile.finetune.batch_size
    cells = {batch_cell(p): {"lr": WORKING_LR}}
    for k in p.grids.batch_factors:
        cells[batch_cell(p, k)] = {"lr": WORKING_LR, "batch_size": b * k}
        cells[batch_cell(p, k, scaled=True)] = {"lr": scaled_rate(k), "batch_size": b * k}
    cells |= {length_name(m): {"lr": WORKING_LR, "max_length": m} for m in p.grids.lengths}
    cells |= {
        length_name(TRUNCATION_LENGTH, t): {"lr": WORKING_LR, "max_length": TRUNCATION_LENGTH, "truncation": t}
        for t in p.grids.truncations
    }
    return _grid("batch_seq_len", profile, device, cells, batch_cell(p))


def truncation_beside_published(frame: pd.DataFrame) -> pd.DataFrame:
    """Notebook 07: our truncation cells (accuracy %, mean ± std over seeds) beside Sun et al.'s Table 2 (IMDb error %,
    one run each), per kept end."""
    keep = {length_name(TRUNCATION_LENGTH, t): t for t in published.SUN_TABLE2}
    cut = frame[frame["variant"].isin(keep)].assign(keep=lambda d: d["variant"].map(keep))
    table = stats.mean_std(cut, ["data", "keep"], ["test_accuracy"])
    table = table.rename(columns={"test_accuracy": "ours: accuracy (%)"})
    table["Sun et al.: IMDb error (%)"] = [published.SUN_TABLE2[k] for _, k in table.index]
    return table


NOTEBOOK = {"warmup": "03", "weight_decay": "04", "llrd": "05", "batch_seq": "07"}
"""Grid name → the notebook that runs it."""

GRIDS: dict[str, Callable[..., Grid]] = {
    "rates": rates,
    "learning_curve": learning_curve,
    "warmup": warmup,
    "weight_decay": weight_decay,
    "llrd": llrd,
    "batch_seq": batch_seq,
}
"""Name (as on the command line) → grid builder."""


def get(name: str, profile: Profile, device: str = "auto") -> Grid:
    """The grid called `name` in `profile`, or a clear error listing the choices."""
    if name not in GRIDS:
        raise ValueError(f"Unknown ablation {name!r}; choose one of {list(GRIDS)}.")
    return GRIDS[name](profile, device)
