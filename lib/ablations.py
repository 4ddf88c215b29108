"""The workbook's shared baseline spec and its ablation grids (notebooks 03, 04, 05, 07).

Everything here is data: `baseline_spec(profile)` is what notebook 02
fine-tunes, and each grid is a `Sweep` of named overrides of it, with the
cells its profile lists (`lib.profiles`). Keeping the grids in one place
means a notebook and `python -m lib.sweep <name>` run the same runs, and a
cell shared by two grids (the baseline is in all of them) is trained once and
replayed everywhere else.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from lib import profiles
from lib.experiment import FinetuneSpec
from lib.grid import Sweep
from lib.trainer import TrainConfig

ABLATION_LR = 1e-4
"""The rate the ablations hold fixed. Notebook 02 measured that BERT-base's 2e-5
under-trains MiniLM (22.7M parameters) on a short budget; 1e-4 is from the
compact-BERT grid (Turc et al.). Notebook 05 varies the rate itself."""
AGGRESSIVE_LR = 5e-4
"""5× the working rate: the edge where fine-tuning starts to fail in the quick regime (batch 8, 64 updates).
Picked by a pilot before the grids ran: at 1e-3 every run collapsed with or without warmup, at 3e-4 none did;
a failure rate can only move where it is neither 0 nor 1."""

TRUNCATION_LENGTH = 24
"""Tokens kept in the truncation comparison: movie_snippets' median sentence is 26
tokens, so about half of the sentences lose words — the regime of Sun et al.'s
512-token cut of IMDb reviews, scaled to the longest labelled texts we ship."""


def baseline_spec(profile: str = "quick", data: str = "movie_snippets", device: str = "auto") -> FinetuneSpec:
    """The baseline fine-tuning run of `profile`: MiniLM-L6, `TrainConfig` defaults
    (the recipe) except the profile's budget (examples, epochs, batch)."""
    p = profiles.get(profile)
    b = p.finetune
    train = TrainConfig(epochs=b.epochs, batch_size=b.batch_size, eval_batch_size=b.eval_batch_size, device=device,
                        progress=p.progress)
    return FinetuneSpec(
        data=data,
        model="minilm-l6",
        train=train,
        max_train_examples=b.max_train_examples,
        max_eval_examples=b.max_eval_examples,
        max_test_examples=b.max_test_examples,
    )


def lr_label(lr: float) -> str:
    """1e-4 rather than 0.0001: how the papers write rates."""
    mantissa, exp = f"{lr:.0e}".split("e")
    return f"{mantissa}e{int(exp)}"


def _sweep(experiment: str, profile: str, device: str, variants: dict[str, dict], baseline: str,
           failure_cells: list[str] = ()) -> Sweep:
    p = profiles.get(profile)
    seeds = {name: p.grids.failure_seeds for name in failure_cells}
    return Sweep(experiment, baseline_spec(profile, device=device), variants, baseline, p.grids.paired_seeds,
                 p.datasets, seeds)


def _schedule(schedule: str, warmup: float) -> dict:
    # HF's "constant" ignores warmup; with warmup the same idea is "constant_with_warmup"
    name = "constant_with_warmup" if schedule == "constant" and warmup > 0 else schedule
    return {"schedule": name, "warmup_ratio": warmup}


def warmup_name(lr: float, warmup: float, schedule: str = "linear") -> str:
    return f"lr {lr_label(lr)} · {schedule} · warmup {warmup:g}"


def warmup(profile: str = "quick", device: str = "auto") -> Sweep:
    """Notebook 03: the warmup ratio at the aggressive rate, with the seeds a failure rate needs;
    in full also the schedule's shape, and warmup at the working rate."""
    g = profiles.get(profile).grids
    hot = {warmup_name(AGGRESSIVE_LR, w): {"lr": AGGRESSIVE_LR} | _schedule("linear", w) for w in g.warmup_ratios}
    extra = {}
    if g.warmup_shapes:
        extra = {
            warmup_name(lr, w, s): {"lr": lr} | _schedule(s, w)
            for lr in (ABLATION_LR, AGGRESSIVE_LR)
            for s in ("linear", "cosine", "constant")
            for w in g.warmup_ratios
            if not (lr == AGGRESSIVE_LR and s == "linear")
        }
    return _sweep("ablation_warmup", profile, device, hot | extra, warmup_name(AGGRESSIVE_LR, 0.0), list(hot))


OPTIMIZER_NAMES = {"adamw": "AdamW", "adam_l2": "Adam+L2"}


def decay_name(optimizer: str, wd: float, everything: bool = False) -> str:
    return f"{OPTIMIZER_NAMES[optimizer]} · wd {wd:g}" + (" · everything decayed" if everything else "")


def weight_decay(profile: str = "quick", device: str = "auto") -> Sweep:
    """Notebook 04: AdamW's decoupled decay against Adam with an L2 term, each at every λ (biases and
    LayerNorm excluded); in full also AdamW decaying everything, and no decay."""
    g = profiles.get(profile).grids
    variants = {
        decay_name(opt, wd): {"lr": ABLATION_LR, "optimizer": opt, "weight_decay": wd, "exclude_bias_and_norm": True}
        for wd in g.weight_decays
        for opt in OPTIMIZER_NAMES
    }
    if g.decay_everything:
        variants[decay_name("adamw", 0.01, True)] = {"lr": ABLATION_LR, "weight_decay": 0.01,
                                                     "exclude_bias_and_norm": False}
        variants[decay_name("adamw", 0.0)] = {"lr": ABLATION_LR, "weight_decay": 0.0}
    return _sweep("ablation_weight_decay", profile, device, variants, decay_name("adamw", 0.01))


def llrd_name(lr: float, xi: float) -> str:
    return f"lr {lr_label(lr)} · ξ {xi:g}"


def llrd(profile: str = "quick", device: str = "auto") -> Sweep:
    """Notebook 05: layer-wise LR decay ξ at the working rate and at the aggressive one, where the lower
    layers are most at risk (Zhang et al. 2021); ξ is compared within a rate, never across."""
    g = profiles.get(profile).grids
    variants = {llrd_name(lr, xi): {"lr": lr, "xi": xi} for lr in (ABLATION_LR, AGGRESSIVE_LR) for xi in g.llrd_xis}
    hot = [llrd_name(AGGRESSIVE_LR, xi) for xi in g.llrd_xis]
    return _sweep("ablation_llrd", profile, device, variants, llrd_name(ABLATION_LR, 1.0), hot)


def batch_name(batch: int, updates: int) -> str:
    return f"batch {batch} · {updates} updates"


def length_name(n: int, truncation: str = "head") -> str:
    return f"max_length {n} · {truncation}"


def batch_seq(profile: str = "quick", device: str = "auto") -> Sweep:
    """Notebook 07: a bigger batch at equal epochs (fewer updates) and at equal updates (more epochs),
    which end of a long text to keep (Sun et al. 2019, Table 2), and in full shorter maximum lengths."""
    p = profiles.get(profile)
    b, k = p.finetune.batch_size, p.grids.batch_factor
    n = p.finetune.max_train_examples
    updates = math.ceil(n / b) * p.finetune.epochs if n else None

    def named(batch: int, factor: float) -> str:
        return batch_name(batch, int(updates * factor)) if updates else f"batch {batch} · ×{factor:g} updates"

    cells = {
        named(b, 1): {"lr": ABLATION_LR},
        named(b * k, 1 / k): {"lr": ABLATION_LR, "batch_size": b * k},
        named(b * k, 1): {"lr": ABLATION_LR, "batch_size": b * k, "epochs": p.finetune.epochs * k},
    }
    cells |= {length_name(m): {"lr": ABLATION_LR, "max_length": m} for m in p.grids.lengths}
    cells |= {
        length_name(TRUNCATION_LENGTH, t): {"lr": ABLATION_LR, "max_length": TRUNCATION_LENGTH, "truncation": t}
        for t in p.grids.truncations
    }
    return _sweep("batch_seq_len", profile, device, cells, named(b, 1))


SWEEPS: dict[str, Callable[..., Sweep]] = {
    "warmup": warmup,
    "weight_decay": weight_decay,
    "llrd": llrd,
    "batch_seq": batch_seq,
}
"""Name (as on the command line) → grid builder."""


def sweep(name: str, profile: str = "quick", device: str = "auto") -> Sweep:
    """The grid called `name` in `profile`, or a clear error listing the choices."""
    if name not in SWEEPS:
        raise ValueError(f"Unknown ablation {name!r}; choose one of {list(SWEEPS)}.")
    return SWEEPS[name](profile, device)
