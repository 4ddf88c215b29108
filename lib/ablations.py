"""The workbook's shared baseline spec and its ablation grids (notebooks 03, 04, 05, 07).

Everything here is data: `baseline_spec(profile)` is what notebook 02
fine-tunes, and each grid is a `Sweep` of named overrides of it, with the
cells its profile lists (`lib.profiles`). Keeping the grids in one place
means a notebook and `python -m lib.sweep <name>` run the same runs, and a
cell shared by two grids (the baseline is in all of them) is trained once and
replayed everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable

from lib import profiles
from lib.experiment import FinetuneSpec
from lib.grid import Sweep
from lib.trainer import TrainConfig

ABLATION_LR = 1e-4
"""The rate the ablations hold fixed. Notebook 02 measured that BERT-base's 2e-5
under-trains MiniLM (22.7M parameters) on a short budget; 1e-4 is from the
compact-BERT grid (Turc et al.). Notebook 05 varies the rate itself."""
AGGRESSIVE_LR = 1e-3
"""10× the working rate — what 4e-4 is to BERT-base's 2e-5 in Sun et al., where training failed to converge."""

TRUNCATION_LENGTH = 24
"""Tokens kept in the truncation comparison: movie_snippets' median sentence is 26
tokens, so about half of the sentences lose words — the regime of Sun et al.'s
512-token cut of IMDb reviews, scaled to the longest labelled texts we ship."""


def baseline_spec(profile: str = "quick", data: str = "movie_snippets", device: str = "auto") -> FinetuneSpec:
    """The baseline fine-tuning run of `profile`: MiniLM-L6, `TrainConfig` defaults
    (the recipe) except the profile's budget (examples, epochs, batch)."""
    p = profiles.get(profile)
    b = p.finetune
    train = TrainConfig(epochs=b.epochs, batch_size=b.batch_size, device=device, progress=p.progress)
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


def _sweep(experiment: str, profile: str, device: str, variants: dict[str, dict], baseline: str) -> Sweep:
    p = profiles.get(profile)
    return Sweep(experiment, baseline_spec(profile, device=device), variants, baseline, p.seeds, p.datasets)


def _schedule(schedule: str, warmup: float) -> dict:
    # HF's "constant" ignores warmup; with warmup the same idea is "constant_with_warmup"
    name = "constant_with_warmup" if schedule == "constant" and warmup > 0 else schedule
    return {"schedule": name, "warmup_ratio": warmup}


def warmup(profile: str = "quick", device: str = "auto") -> Sweep:
    """Notebook 03: warmup ratio × schedule, at the working and at an aggressive rate."""
    cells = profiles.get(profile).grids.warmup
    grid = {ABLATION_LR: cells["working"], AGGRESSIVE_LR: cells["aggressive"]}
    variants = {
        f"lr {lr_label(lr)} · {s} · warmup {w:g}": {"lr": lr} | _schedule(s, w)
        for lr, pairs in grid.items()
        for s, w in pairs
    }
    return _sweep("ablation_warmup", profile, device, variants, f"lr {lr_label(ABLATION_LR)} · linear · warmup 0.1")


def weight_decay(profile: str = "quick", device: str = "auto") -> Sweep:
    """Notebook 04: decay strength × what is decayed, and AdamW against Adam with L2."""
    grid = profiles.get(profile).grids.weight_decay  # (optimizer, weight decay, exclude biases and LayerNorm)
    names = {"adamw": "AdamW", "adam_l2": "Adam+L2"}

    def label(opt: str, wd: float, excl: bool) -> str:
        what = "" if wd == 0 else (" · bias/LN excluded" if excl else " · everything decayed")
        return f"{names[opt]} · wd {wd:g}{what}"

    variants = {
        label(*g): {"lr": ABLATION_LR, "optimizer": g[0], "weight_decay": g[1], "exclude_bias_and_norm": g[2]}
        for g in grid
    }
    return _sweep("ablation_weight_decay", profile, device, variants, label(*grid[0]))


def llrd(profile: str = "quick", device: str = "auto") -> Sweep:
    """Notebook 05: layer-wise LR decay ξ × base rate (Sun et al. 2019, Table 4)."""
    g = profiles.get(profile).grids
    variants = {f"lr {lr_label(lr)} · ξ {xi:g}": {"lr": lr, "xi": xi} for lr in g.llrd_lrs for xi in g.llrd_xis}
    return _sweep("ablation_llrd", profile, device, variants, f"lr {lr_label(ABLATION_LR)} · ξ 1")


def batch_seq(profile: str = "quick", device: str = "auto") -> Sweep:
    """Notebook 07: batch size (with and without scaling the rate), maximum length, and
    which end of a long text to keep (Sun et al. 2019, Table 2)."""
    p = profiles.get(profile)
    base_batch = p.finetune.batch_size

    def batch(b: int, scaled: bool) -> tuple[str, dict]:
        lr = ABLATION_LR * b / base_batch if scaled else ABLATION_LR
        name = f"batch {b} · lr {lr_label(lr)}" + (" (scaled)" if scaled and b != base_batch else "")
        return name, {"batch_size": b, "lr": lr}

    def length(n: int, truncation: str = "head") -> tuple[str, dict]:
        return f"max_length {n} · {truncation}", {"lr": ABLATION_LR, "max_length": n, "truncation": truncation}

    if not p.grids.batch_seq_full:
        cells = [batch(base_batch, False), batch(64, True), length(TRUNCATION_LENGTH, "tail")]
    else:
        cells = [batch(base_batch, False)]
        cells += [batch(b, scaled) for scaled in (False, True) for b in (8, 16, 32, 64) if b != base_batch]
        cells += [length(n) for n in (64, 32)]
        cells += [length(TRUNCATION_LENGTH, t) for t in ("head", "tail", "head+tail")]
    return _sweep("batch_seq_len", profile, device, dict(cells), cells[0][0])


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
