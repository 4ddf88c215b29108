"""The workbook's shared baseline spec and the three ablation grids (notebooks 03–05).

Everything here is data: `baseline_spec(profile)` is what notebook 02
fine-tunes, and each grid is a `Sweep` of named overrides of it. Keeping the
grids in one place means the notebook and `python -m lib.sweep <name>` run
the same runs, and a cell shared by two grids (the baseline is in all of
them) is trained once and replayed everywhere else.

Profiles (what each trains):

* smoke — 48 training sentences, one seed, two or three variants: the tests.
* quick — 512 training sentences, batch 16, 2 epochs (64 updates), 3 seeds, a
  reduced grid per ablation: all three notebooks in about 16 min on a 2-core CPU.
* full — all training data, batch 32 (the recipe), 3 epochs, 5 seeds, the
  complete grids on movie_snippets and trec6 (GPU recommended).
"""
from __future__ import annotations

from collections.abc import Callable

from lib.experiment import FinetuneSpec
from lib.sweep import Sweep
from lib.trainer import TrainConfig

PROFILE_SETTINGS: dict[str, dict] = {
    "smoke": dict(max_train_examples=48, max_eval_examples=32, max_test_examples=64, epochs=1, batch_size=16),
    "quick": dict(max_train_examples=512, max_eval_examples=256, max_test_examples=None, epochs=2, batch_size=16),
    "full": dict(max_train_examples=None, max_eval_examples=None, max_test_examples=None, epochs=3, batch_size=32),
}
SEEDS = {"smoke": [0], "quick": [0, 1, 2], "full": [0, 1, 2, 3, 4]}
DATASETS = {"smoke": ["movie_snippets"], "quick": ["movie_snippets"], "full": ["movie_snippets", "trec6"]}

ABLATION_LR = 1e-4
"""The rate the ablations hold fixed. Notebook 02 measured that BERT-base's 2e-5
under-trains MiniLM (22.7M parameters) on a short budget; 1e-4 is from the
compact-BERT grid (Turc et al.). Notebook 05 varies the rate itself."""
AGGRESSIVE_LR = 1e-3
"""10× the working rate — what 4e-4 is to BERT-base's 2e-5 in Sun et al., where training failed to converge."""


def baseline_spec(profile: str = "quick", data: str = "movie_snippets", device: str = "auto") -> FinetuneSpec:
    """The baseline fine-tuning run of `profile`: MiniLM-L6, `TrainConfig` defaults
    (the recipe) except the profile's budget (examples, epochs, batch)."""
    s = dict(PROFILE_SETTINGS[profile])
    train = TrainConfig(epochs=s.pop("epochs"), batch_size=s.pop("batch_size"), device=device, progress=profile != "smoke")
    return FinetuneSpec(data=data, model="minilm-l6", train=train, **s)


def lr_label(lr: float) -> str:
    """1e-4 rather than 0.0001: how the papers write rates."""
    mantissa, exp = f"{lr:.0e}".split("e")
    return f"{mantissa}e{int(exp)}"


def _schedule(schedule: str, warmup: float) -> dict:
    # HF's "constant" ignores warmup; with warmup the same idea is "constant_with_warmup"
    name = "constant_with_warmup" if schedule == "constant" and warmup > 0 else schedule
    return {"schedule": name, "warmup_ratio": warmup}


def warmup(profile: str = "quick", device: str = "auto") -> Sweep:
    """Notebook 03: warmup ratio × schedule, at the working and at an aggressive rate."""
    full = [(s, w) for s in ("linear", "cosine", "constant") for w in (0.0, 0.06, 0.1, 0.2)]
    grid = {
        "smoke": {ABLATION_LR: [("linear", 0.1)], AGGRESSIVE_LR: [("linear", 0.0)]},
        "quick": {
            ABLATION_LR: [("linear", 0.1), ("linear", 0.0)],
            AGGRESSIVE_LR: [("linear", 0.0), ("linear", 0.1), ("linear", 0.2), ("cosine", 0.1), ("constant", 0.1)],
        },
        "full": {ABLATION_LR: full, AGGRESSIVE_LR: full},
    }[profile]
    variants = {
        f"lr {lr_label(lr)} · {s} · warmup {w:g}": {"lr": lr} | _schedule(s, w) for lr, pairs in grid.items() for s, w in pairs
    }
    return Sweep("ablation_warmup", baseline_spec(profile, device=device), variants,
                 f"lr {lr_label(ABLATION_LR)} · linear · warmup 0.1", SEEDS[profile], DATASETS[profile])


def weight_decay(profile: str = "quick", device: str = "auto") -> Sweep:
    """Notebook 04: decay strength × what is decayed, and AdamW against Adam with L2."""
    grid = {  # (optimizer, weight decay, exclude biases and LayerNorm)
        "smoke": [("adamw", 0.01, True), ("adamw", 0.1, False)],
        "quick": [("adamw", 0.01, True), ("adamw", 0.0, True), ("adamw", 0.1, True), ("adamw", 0.1, False), ("adam_l2", 0.1, True)],
        "full": [("adamw", 0.01, True), ("adamw", 0.0, True), ("adamw", 0.1, True), ("adamw", 0.01, False), ("adamw", 0.1, False),
                 ("adam_l2", 0.01, True), ("adam_l2", 0.1, True)],
    }[profile]
    names = {"adamw": "AdamW", "adam_l2": "Adam+L2"}

    def label(opt: str, wd: float, excl: bool) -> str:
        what = "" if wd == 0 else (" · bias/LN excluded" if excl else " · everything decayed")
        return f"{names[opt]} · wd {wd:g}{what}"

    variants = {label(*g): {"lr": ABLATION_LR, "optimizer": g[0], "weight_decay": g[1], "exclude_bias_and_norm": g[2]} for g in grid}
    return Sweep("ablation_weight_decay", baseline_spec(profile, device=device), variants, label(*grid[0]), SEEDS[profile], DATASETS[profile])


def llrd(profile: str = "quick", device: str = "auto") -> Sweep:
    """Notebook 05: layer-wise LR decay ξ × base rate (Sun et al. 2019, Table 4)."""
    lrs, xis = {
        "smoke": ([ABLATION_LR], [1.0, 0.8]),
        "quick": ([2e-5, ABLATION_LR], [1.0, 0.95, 0.9, 0.85]),
        "full": ([2e-5, 5e-5, ABLATION_LR], [1.0, 0.95, 0.9, 0.85, 0.8]),
    }[profile]
    variants = {f"lr {lr_label(lr)} · ξ {xi:g}": {"lr": lr, "xi": xi} for lr in lrs for xi in xis}
    return Sweep("ablation_llrd", baseline_spec(profile, device=device), variants, f"lr {lr_label(ABLATION_LR)} · ξ 1", SEEDS[profile], DATASETS[profile])


def batch_seq(profile: str = "quick", device: str = "auto") -> Sweep:
    """Notebook 07: batch size (with and without scaling the rate), maximum length, and
    which end of a long text to keep (Sun et al. 2019, Table 2)."""
    base_batch = PROFILE_SETTINGS[profile]["batch_size"]

    def batch(b: int, scaled: bool) -> tuple[str, dict]:
        lr = ABLATION_LR * b / base_batch if scaled else ABLATION_LR
        return f"batch {b} · lr {lr_label(lr)}" + (" (scaled)" if scaled and b != base_batch else ""), {"batch_size": b, "lr": lr}

    def length(n: int, truncation: str = "head") -> tuple[str, dict]:
        return f"max_length {n} · {truncation}", {"lr": ABLATION_LR, "max_length": n, "truncation": truncation}

    if profile == "smoke":
        cells = [batch(base_batch, False), batch(64, True), length(24, "tail")]
    else:
        cells = [batch(base_batch, False)]
        cells += [batch(b, scaled) for scaled in (False, True) for b in (8, 16, 32, 64) if b != base_batch]
        cells += [length(n) for n in (64, 32)]
        cells += [length(TRUNCATION_LENGTH, t) for t in ("head", "tail", "head+tail")]
    variants = dict(cells)
    return Sweep("batch_seq_len", baseline_spec(profile, device=device), variants, cells[0][0], SEEDS[profile], DATASETS[profile])


TRUNCATION_LENGTH = 24
"""Tokens kept in the truncation comparison: movie_snippets' median sentence is 26
tokens, so about half of the sentences lose words — the regime of Sun et al.'s
512-token cut of IMDb reviews, scaled to the longest labelled texts we ship."""

SWEEPS: dict[str, Callable[..., Sweep]] = {"warmup": warmup, "weight_decay": weight_decay, "llrd": llrd, "batch_seq": batch_seq}
"""Name (as on the command line) → grid builder."""


def sweep(name: str, profile: str = "quick", device: str = "auto") -> Sweep:
    """The grid called `name` in `profile`, or a clear error listing the choices."""
    if name not in SWEEPS:
        raise ValueError(f"Unknown ablation {name!r}; choose one of {list(SWEEPS)}.")
    return SWEEPS[name](profile, device)
