"""Everything that differs between the `smoke`, `quick` and `full` profiles, in one place.

* smoke — seconds per notebook: the tests run every notebook in it.
* quick — the default: the whole workbook on a 2-core CPU (a class), in the
  few-sample regime (256 training sentences, 128 validation and 512 test
  sentences), with the seeds each hypothesis needs: 5 per cell compared by
  accuracy, 10 per cell compared by failure rate.
* a user's own data (a file, a hub data set) is not a profile's toy: in quick
  and full it trains on every row of its splits (`own_data`); only smoke, the
  tests' profile, subsamples it.
* full — paper-scale settings: all data, both data sets, 10 / 20 seeds per
  ablation cell, wider grids, long pretraining (GPU recommended).

A profile is resolved once, where a user names it: a notebook's first code
cell (`profile = profiles.get(PROFILE)`) and each command line's `--profile`
turn the name into a `Profile`, and everything below takes that object (or
the values it needs). This module imports nothing from `lib`, so every other
module may read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROFILES = ("smoke", "quick", "full")


@dataclass(frozen=True)
class FinetuneBudget:
    """How much data and training one fine-tuning run of the profile gets."""

    max_train_examples: int | None
    max_eval_examples: int | None
    # quick: a fixed stratified 512 of the test split, the same for every run (half the testing time; on 14 paired
    # comparisons of the quick ablations stored before, paired differences over seeds spread 0.45-1.3x (median
    # 0.88x) as much on these 512 as on all 1,007: seeds, not test sentences, set the spread). full: the whole split.
    max_test_examples: int | None
    epochs: float
    batch_size: int
    eval_batch_size: int = 128  # quick: 32, about 20% faster than 128 on the 2-core CPU (cache-sized batches)


@dataclass(frozen=True)
class PretrainBudget:
    """Notebook 01: BERT's 2018 recipe and a budget recipe on one budget of tokens, the factor table between them,
    and the fine-tuning that asks what their checkpoints buy."""

    steps: int  # both recipes: AdamW steps of batch × seq_len tokens (the same tokens for each)
    batch: int
    seq_len: int
    max_documents: int | None
    scratch_model: str  # the 2018 recipe: BERT's block, MLM + NSP on sentence pairs
    scratch_lr: float  # bert-tiny probes: 4e-3 stays on the plateau; 1e-3-2e-3 learn to copy; 5e-4 uses context most
    budget_model: str  # the budget recipe: ModernBERT's block, masked LM on packed windows, β₂ 0.98
    budget_lr: float
    budget_seeds: list[int]  # each budget checkpoint is one draw: downstream runs go over all of them
    factor_steps: int  # the factor table's runs (fewer than `steps` in quick: notebook 01 says why)
    factor_rates: list[float]  # every factor-table arm at each; its rate chosen on half the held-out windows
    finetune_tasks: list[str]  # the in-domain task first
    finetune_examples: int | None
    finetune_test_examples: int | None
    finetune_epochs: float
    finetune_rates: list[float]  # each arm's rate chosen on validation from these, on the pilot seeds
    pilot_seeds: list[int]
    control_model: str  # the positive control: a shipped pretrained encoder, fine-tuned as shipped and from random
    # weights on this budget (quick: MiniLM's first two layers, the depth of our checkpoints, at a third of the cost)


@dataclass(frozen=True)
class Grids:
    """The cells and seeds of every ablation grid (lib.ablations turns them into sweeps).

    Fewer cells with more seeds: each notebook's cells are the ones its hypothesis compares.
    """

    paired_seeds: list[int]  # cells compared by mean accuracy, paired by seed (02, 04, 05, 07)
    baseline_rates: list[float]  # 02: the peak rates of the baseline recipe on both shipped tasks
    failure_seeds: list[int]  # cells whose question is the failure rate (03; 05 at the aggressive rate; 08)
    warmup_rates: list[float]  # 03: the rates of the failure curve (each with and without warmup)
    warmup_ratios: list[float]  # 03: linear schedule at each of warmup_rates
    warmup_shapes: bool  # full: also cosine / constant schedules, and warmup at the working rate
    weight_decays: list[float]  # 04: each λ for AdamW and for Adam+L2
    decay_rates: list[float]  # 04: more rates, AdamW and Adam+L2 at the smallest and largest λ (Loshchilov & Hutter)
    decay_rate_seeds: list[int]  # 04: seeds of those cells
    decay_everything: bool  # full: also AdamW with biases and LayerNorm decayed, and no decay at all
    llrd_rates: list[float]  # 05: the rates of the ξ curve (each ξ is compared at its own best rate)
    llrd_xis: list[float]  # 05: at every rate of llrd_rates
    batch_factors: list[int]  # 07: batch × each factor at equal epochs, at the working rate and at √factor × it
    lengths: list[int]  # 07: maximum lengths besides 128
    truncations: list[str]  # 07: which end of a long text is kept at TRUNCATION_LENGTH tokens


@dataclass(frozen=True)
class Profile:
    """One profile's settings. Read with `get(name)`."""

    name: str
    finetune: FinetuneBudget  # the workbook's own experiments (a few-sample budget in quick)
    own_data: FinetuneBudget  # a user's file or hub data set: `finetune` on every row (smoke: the tests' subsample)
    seeds: list[int]
    datasets: list[str]
    grids: Grids
    pretrain: PretrainBudget
    pitfall_sentences: int  # notebook 06: training sentences for its small demonstrations
    pitfall_steps: int
    curve_examples: list[int]  # notebook 02: larger training sets, each at the budget's epochs and at its updates
    distill_alphas: list[float]  # notebook 08: weights of the teacher's soft targets; 0 = hard labels only
    distill_rates: list[float]  # notebook 08: the students' peak rates (Hinton et al.: soft targets bear higher ones)
    distill_examples: int | None  # notebook 08: labelled sentences (the teacher's, and the student's)
    distill_transfer: int | None  # notebook 08: unlabelled sentences the teacher labels for the student (None: all)
    distill_teacher_epochs: float
    distill_student_epochs: float
    latency_sentences: int
    progress: bool = field(default=True)  # progress bars (off in smoke: test logs stay readable)


_PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        finetune=FinetuneBudget(48, 32, 64, epochs=1, batch_size=16),
        own_data=FinetuneBudget(48, 32, 64, epochs=1, batch_size=16),  # the tests: seconds, whatever the file
        seeds=[0],
        datasets=["movie_snippets"],
        grids=Grids(
            paired_seeds=[0],
            baseline_rates=[2e-5, 1e-4],
            failure_seeds=[0, 1],
            warmup_rates=[5e-4, 1e-3],
            warmup_ratios=[0.0, 0.1],
            warmup_shapes=False,
            weight_decays=[0.01],
            decay_rates=[2e-4],
            decay_rate_seeds=[0],
            decay_everything=False,
            llrd_rates=[1e-4, 5e-4],
            llrd_xis=[1.0, 0.5],
            batch_factors=[2],
            lengths=[],
            truncations=["head", "tail"],
        ),
        pretrain=PretrainBudget(steps=20, batch=16, seq_len=64, max_documents=40, scratch_model="bert-tiny-a4",
                                scratch_lr=5e-4, budget_model="modernbert-tiny", budget_lr=1e-3, budget_seeds=[0, 1],
                                factor_steps=10, factor_rates=[1e-3],
                                finetune_tasks=["news_outlets", "movie_snippets"], finetune_examples=64,
                                finetune_test_examples=64, finetune_epochs=1, finetune_rates=[5e-4, 2e-3],
                                pilot_seeds=[0], control_model="minilm-l6-first2"),
        pitfall_sentences=32,
        pitfall_steps=3,
        curve_examples=[96],
        distill_alphas=[0.0, 0.5],
        distill_rates=[1e-4, 5e-4],
        distill_examples=48,
        distill_transfer=48,
        distill_teacher_epochs=1,
        distill_student_epochs=1,
        latency_sentences=16,
        progress=False,
    ),
    "quick": Profile(
        name="quick",
        finetune=FinetuneBudget(256, 128, 512, epochs=2, batch_size=8, eval_batch_size=32),
        own_data=FinetuneBudget(None, None, None, epochs=2, batch_size=8, eval_batch_size=32),
        seeds=[0, 1, 2],
        datasets=["movie_snippets"],
        grids=Grids(
            paired_seeds=[0, 1, 2, 3, 4],
            baseline_rates=[2e-5, 5e-5, 1e-4, 2e-4],  # BERT-base's rate, then Turc et al.'s compact-BERT range
            failure_seeds=list(range(10)),
            warmup_rates=[3e-4, 5e-4, 7e-4, 1e-3],  # a pilot: none failed at 3e-4, all at 1e-3 (no warmup)
            warmup_ratios=[0.0, 0.2],
            warmup_shapes=False,
            weight_decays=[0.001, 0.01, 0.1],
            decay_rates=[5e-5, 2e-4],
            decay_rate_seeds=[0, 1, 2],
            decay_everything=False,
            llrd_rates=[1e-4, 2e-4, 5e-4],
            llrd_xis=[1.0, 0.95, 0.5],  # Sun et al.'s best ξ, and one strong enough to move the mean rate
            batch_factors=[2, 4],
            lengths=[],
            truncations=["head", "tail", "head+tail"],
        ),
        pretrain=PretrainBudget(steps=1500, batch=64, seq_len=64, max_documents=None, scratch_model="bert-tiny-a4",
                                scratch_lr=5e-4, budget_model="modernbert-tiny", budget_lr=1e-3,
                                budget_seeds=[0, 1, 2], factor_steps=600, factor_rates=[1e-3, 2e-3],
                                finetune_tasks=["news_outlets", "movie_snippets"], finetune_examples=1024,
                                finetune_test_examples=None, finetune_epochs=6, finetune_rates=[1e-4, 5e-4, 2e-3],
                                pilot_seeds=[0, 1], control_model="minilm-l6-first2"),
        pitfall_sentences=128,
        pitfall_steps=8,
        curve_examples=[1024],
        distill_alphas=[0.0, 0.5],
        distill_rates=[1e-4, 5e-4],
        distill_examples=2048,
        distill_transfer=2048,
        distill_teacher_epochs=2,
        distill_student_epochs=2,
        latency_sentences=128,
    ),
    "full": Profile(
        name="full",
        finetune=FinetuneBudget(None, None, None, epochs=3, batch_size=32),
        own_data=FinetuneBudget(None, None, None, epochs=3, batch_size=32),
        seeds=[0, 1, 2, 3, 4],
        datasets=["movie_snippets", "trec6"],
        grids=Grids(
            paired_seeds=list(range(10)),
            baseline_rates=[2e-5, 5e-5, 1e-4, 2e-4],
            failure_seeds=list(range(20)),
            warmup_rates=[2e-4, 3e-4, 5e-4, 7e-4, 1e-3],
            warmup_ratios=[0.0, 0.06, 0.1, 0.2],
            warmup_shapes=True,
            weight_decays=[0.001, 0.01, 0.1],
            decay_rates=[5e-5, 2e-4],
            decay_rate_seeds=list(range(10)),
            decay_everything=True,
            llrd_rates=[5e-5, 1e-4, 2e-4, 5e-4],
            llrd_xis=[1.0, 0.95, 0.9, 0.5],
            batch_factors=[2, 4],
            lengths=[64, 32],
            truncations=["head", "tail", "head+tail"],
        ),
        pretrain=PretrainBudget(steps=20_000, batch=128, seq_len=128, max_documents=None, scratch_model="bert-tiny-a4",
                                scratch_lr=5e-4, budget_model="modernbert-tiny", budget_lr=1e-3,
                                budget_seeds=[0, 1, 2], factor_steps=20_000, factor_rates=[5e-4, 1e-3, 2e-3],
                                finetune_tasks=["news_outlets", "movie_snippets"], finetune_examples=None,
                                finetune_test_examples=None, finetune_epochs=3,
                                finetune_rates=[5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3], pilot_seeds=[0, 1, 2],
                                control_model="minilm-l6"),
        pitfall_sentences=256,
        pitfall_steps=8,
        curve_examples=[],
        distill_alphas=[0.0, 0.5, 1.0],
        distill_rates=[1e-4, 2e-4, 5e-4],
        distill_examples=2048,  # few labelled sentences, every other training sentence as transfer data
        distill_transfer=None,
        distill_teacher_epochs=3,
        distill_student_epochs=4,
        latency_sentences=256,
    ),
}


class ProfileError(ValueError):
    """An unknown profile name."""


def get(profile: str | Profile) -> Profile:
    """The settings of `profile` ("smoke", "quick" or "full"); a `Profile` is returned as it is. An unknown name
    is one clear error."""
    if isinstance(profile, Profile):
        return profile
    if profile not in _PROFILES:
        raise ProfileError(f"Unknown profile {profile!r}; choose one of {PROFILES}.")
    return _PROFILES[profile]
