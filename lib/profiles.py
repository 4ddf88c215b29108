"""Everything that differs between the `smoke`, `quick` and `full` profiles, in one place.

* smoke — seconds per notebook: the tests run every notebook in it.
* quick — the default: the whole workbook on a 2-core CPU (a class).
* full — paper-scale settings: all data, 5 seeds, both data sets, complete
  grids, long pretraining (GPU recommended).

Notebooks and command lines read their budgets from `get(profile)`; a
notebook's parameters cell names the profile and at most overrides a value.
This module imports nothing from `lib`, so every other module may read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROFILES = ("smoke", "quick", "full")


@dataclass(frozen=True)
class FinetuneBudget:
    """How much data and training one fine-tuning run of the profile gets."""

    max_train_examples: int | None
    max_eval_examples: int | None
    max_test_examples: int | None  # smoke only: quick and full test on the whole split, so numbers compare
    epochs: float
    batch_size: int


@dataclass(frozen=True)
class PretrainBudget:
    """Notebook 01: the from-scratch model and the MiniLM continuation, and the fine-tuning that compares them."""

    scratch_model: str
    seq_len: int
    scratch_steps: int
    max_documents: int | None
    minilm_seq_len: int
    minilm_steps: int
    minilm_batch: int
    finetune_examples: int | None
    finetune_test_examples: int | None
    finetune_epochs: float
    mlm_only_too: bool  # also pretrain without NSP and compare downstream


@dataclass(frozen=True)
class Grids:
    """The cells of every ablation grid (lib.ablations turns them into sweeps)."""

    warmup: dict[str, list[tuple[str, float]]]  # "working" / "aggressive" rate → (schedule, warmup ratio)
    weight_decay: list[tuple[str, float, bool]]  # (optimizer, λ, exclude bias and LayerNorm)
    llrd_lrs: list[float]
    llrd_xis: list[float]
    batch_seq_full: bool  # False: the smoke subset of notebook 07's cells


@dataclass(frozen=True)
class Profile:
    """One profile's settings. Read with `get(name)`."""

    name: str
    finetune: FinetuneBudget
    seeds: list[int]
    datasets: list[str]
    grids: Grids
    pretrain: PretrainBudget
    pitfall_sentences: int  # notebook 06: training sentences for its small demonstrations
    pitfall_steps: int
    distill_examples: int | None  # notebook 08
    distill_teacher_epochs: float
    distill_student_epochs: float
    latency_sentences: int
    progress: bool = field(default=True)  # progress bars (off in smoke: test logs stay readable)


_FULL_WARMUP = [(s, w) for s in ("linear", "cosine", "constant") for w in (0.0, 0.06, 0.1, 0.2)]

_PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        finetune=FinetuneBudget(48, 32, 64, epochs=1, batch_size=16),
        seeds=[0],
        datasets=["movie_snippets"],
        grids=Grids(
            warmup={"working": [("linear", 0.1)], "aggressive": [("linear", 0.0)]},
            weight_decay=[("adamw", 0.01, True), ("adamw", 0.1, False)],
            llrd_lrs=[1e-4],
            llrd_xis=[1.0, 0.8],
            batch_seq_full=False,
        ),
        pretrain=PretrainBudget("bert-tiny", 64, 20, 40, 32, 3, 8, 64, 64, 1, mlm_only_too=False),
        pitfall_sentences=32,
        pitfall_steps=3,
        distill_examples=48,
        distill_teacher_epochs=1,
        distill_student_epochs=1,
        latency_sentences=16,
        progress=False,
    ),
    "quick": Profile(
        name="quick",
        finetune=FinetuneBudget(512, 256, None, epochs=2, batch_size=16),
        seeds=[0, 1, 2],
        datasets=["movie_snippets"],
        grids=Grids(
            warmup={
                "working": [("linear", 0.1), ("linear", 0.0)],
                "aggressive": [("linear", 0.0), ("linear", 0.1), ("linear", 0.2), ("cosine", 0.1), ("constant", 0.1)],
            },
            weight_decay=[
                ("adamw", 0.01, True),
                ("adamw", 0.0, True),
                ("adamw", 0.1, True),
                ("adamw", 0.1, False),
                ("adam_l2", 0.1, True),
            ],
            llrd_lrs=[2e-5, 1e-4],
            llrd_xis=[1.0, 0.95, 0.9, 0.85],
            batch_seq_full=True,
        ),
        pretrain=PretrainBudget("bert-mini", 128, 250, None, 64, 60, 16, 1024, None, 3, mlm_only_too=False),
        pitfall_sentences=128,
        pitfall_steps=8,
        distill_examples=2048,
        distill_teacher_epochs=2,
        distill_student_epochs=2,
        latency_sentences=128,
    ),
    "full": Profile(
        name="full",
        finetune=FinetuneBudget(None, None, None, epochs=3, batch_size=32),
        seeds=[0, 1, 2, 3, 4],
        datasets=["movie_snippets", "trec6"],
        grids=Grids(
            warmup={"working": _FULL_WARMUP, "aggressive": _FULL_WARMUP},
            weight_decay=[
                ("adamw", 0.01, True),
                ("adamw", 0.0, True),
                ("adamw", 0.1, True),
                ("adamw", 0.01, False),
                ("adamw", 0.1, False),
                ("adam_l2", 0.01, True),
                ("adam_l2", 0.1, True),
            ],
            llrd_lrs=[2e-5, 5e-5, 1e-4],
            llrd_xis=[1.0, 0.95, 0.9, 0.85, 0.8],
            batch_seq_full=True,
        ),
        pretrain=PretrainBudget("bert-mini", 128, 20_000, None, 128, 2_000, 32, None, None, 3, mlm_only_too=True),
        pitfall_sentences=256,
        pitfall_steps=8,
        distill_examples=None,
        distill_teacher_epochs=3,
        distill_student_epochs=4,
        latency_sentences=256,
    ),
}


class ProfileError(ValueError):
    """An unknown profile name."""


def check_profile(profile: str) -> str:
    """Return `profile` if it is one we know, else raise one clear error."""
    if profile not in _PROFILES:
        raise ProfileError(f"Unknown profile {profile!r}; choose one of {PROFILES}.")
    return profile


def get(profile: str) -> Profile:
    """The settings of `profile` ("smoke", "quick" or "full")."""
    return _PROFILES[check_profile(profile)]
