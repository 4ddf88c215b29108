"""What pretraining buys (notebook 01): checkpoints against the same architecture from random weights, downstream.

* `run_arms` — fine-tuning: each arm (pretrained checkpoints, or an architecture with random weights) at its own
  rate, chosen on validation in a pilot (every rate of `PretrainBudget.finetune_rates` on the `pilot_seeds`, a
  pretrained arm on its first checkpoint), then every paired seed at that rate on every checkpoint (the pilot's runs
  at the chosen rate replay). A rate that suits one arm can starve the other: random weights usually want a hotter
  one, so a shared rate would measure the rate, not the pretraining.
* `paired_frame` — an arm's accuracy at a fine-tuning seed is its mean over its checkpoints (pretraining seeds), so
  the paired comparison is over fine-tuning seeds; each checkpoint's own mean is shown beside it.
* `ProbeSpec` — frozen features: a logistic regression on each checkpoint's mean-pooled last layer (no fine-tuning),
  and what the representation looks like (norms against the initialisation, [CLS] and token anisotropy). Stored like
  any run, so a fresh clone replays it without the weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lib import stats, store
from lib.finetune import FinetuneSpec
from lib.models import fingerprint, load_model
from lib.profiles import Profile
from lib.store import Record
from lib.train_config import TrainConfig

EXPERIMENT, CONTROL, PROBES = "pretrain_vs_random", "minilm_pretrained_vs_random", "pretrain_probes"
"""Where notebook 01 stores its fine-tuning of our checkpoints, the MiniLM control, and the frozen-feature probes."""

CHECKPOINTS, RANDOM = "budget checkpoints", "random init"
"""Notebook 01's two downstream arms."""

CONTROL_PRETRAINED, CONTROL_RANDOM = "MiniLM pretrained", "MiniLM random init"
"""The positive control's arms (`control_arms`)."""

REINITS = {"as pretrained": "pretrained", "head re-initialised": "reinit-head",
           "embeddings re-initialised": "reinit-embeddings"}
"""The re-initialisation test (`run_reinit`): arm name → `FinetuneSpec.init` (`lib.models.reinitialise`)."""


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: `models` are its checkpoints (one per pretraining seed) or an architecture name."""

    name: str
    models: tuple[str, ...]
    init: str = "pretrained"


Maker = Callable[[str, str, float, int], FinetuneSpec]
"""(model, init, lr, seed) → the fine-tuning run of one arm at one rate and seed."""


def finetune_maker(profile: Profile, data: str, device: str = "auto") -> Maker:
    """Notebook 01's fine-tuning budget (`PretrainBudget`), the same for every arm — a 2-layer checkpoint, its random
    twin, MiniLM pretrained or random: no early stopping (random weights start learning late: MiniLM's stays at the
    majority class for its first hundred-odd updates), validation every epoch picks the weights that are tested."""
    p = profile.pretrain

    def make(model: str, init: str, lr: float, seed: int) -> FinetuneSpec:
        return FinetuneSpec(data=data, model=model, init=init, max_train_examples=p.finetune_examples,
                            max_eval_examples=256, max_test_examples=p.finetune_test_examples,
                            train=TrainConfig(lr=lr, epochs=p.finetune_epochs, patience=None, seed=seed,
                                              device=device, progress=profile.progress))
    return make


def task_data(profile: Profile, data: str):
    """The sentences `finetune_maker`'s runs train and test on (the same subsample), for floors and probes."""
    return finetune_maker(profile, data)(profile.pretrain.budget_model, "pretrained", 1e-3, 0).dataset()


def control_arms(profile: Profile) -> list[Arm]:
    """The positive control: the profile's `control_model` as shipped and from random weights."""
    model = profile.pretrain.control_model
    return [Arm(CONTROL_PRETRAINED, (model,)), Arm(CONTROL_RANDOM, (model,), init="random")]


def _frame(runs: list[store.Run], arm: Arm, stage: str) -> pd.DataFrame:
    frame = store.runs_frame(runs)
    return frame.assign(arm=arm.name, stage=stage, seed=frame["train.seed"], lr=frame["train.lr"],
                        checkpoint=frame["model"].map({m: i for i, m in enumerate(arm.models)}))


def chosen_rate(pilot: pd.DataFrame) -> float:
    """The rate with the best mean validation accuracy over the pilot seeds (ties: the lower rate)."""
    means = pilot.groupby("lr")["best_val_accuracy"].mean()
    return float(means[means == means.max()].index.min())


def run_each(experiment: str, specs: list, profile: Profile, force: bool = False,
             before_compute: Callable[[object], None] = lambda spec: None) -> list[store.Run]:
    """`store.run` for each spec, calling `before_compute(spec)` first for a spec that will train (not stored, or
    `force`): e.g. to rebuild the checkpoint it loads (`lib.recipes.rebuild`)."""
    out = []
    for spec in specs:
        if force or store.stored_path(experiment, spec.identity(), profile) is None:
            before_compute(spec)
        out.append(store.run(experiment, spec, profile, force))
    return out


def run_arms(experiment: str, arms: list[Arm], make: Maker, profile: Profile, seeds: list[int], force: bool = False,
             before_compute: Callable[[FinetuneSpec], None] = lambda spec: None) -> pd.DataFrame:
    """Every arm's pilot and final runs (one row per run; `stage` pilot or final, `checkpoint` the model's index in
    its arm). `before_compute` runs before a run that is not stored yet trains (e.g. rebuild its checkpoint)."""
    p, frames = profile.pretrain, []
    for arm in arms:
        trial = [make(arm.models[0], arm.init, lr, s) for lr in p.finetune_rates for s in p.pilot_seeds]
        pilot = _frame(run_each(experiment, trial, profile, force, before_compute), arm, "pilot")
        lr = chosen_rate(pilot)
        chosen = [make(m, arm.init, lr, s) for m in arm.models for s in seeds]
        final = _frame(run_each(experiment, chosen, profile, force, before_compute), arm, "final")
        frames += [pilot, final]
    return pd.concat(frames, ignore_index=True)


def run_reinit(profile: Profile, task: str, table: pd.DataFrame, seeds: list[int], device: str = "auto",
               force: bool = False, before_compute: Callable[[FinetuneSpec], None] = lambda spec: None) -> pd.DataFrame:
    """The first budget checkpoint as pretrained, with its head, and with its embeddings drawn afresh (`REINITS`),
    fine-tuned on `task` at the rate its arm was given there (`table`: `run_arms`' rows for `task`), on the same
    seeds: if one part is why the checkpoint fine-tunes worse than random weights, drawing it afresh closes the gap.
    The "as pretrained" runs are the checkpoint arm's own (they replay)."""
    final = table[(table["stage"] == "final") & (table["arm"] == CHECKPOINTS) & (table["checkpoint"] == 0)]
    checkpoint, lr = final["model"].iloc[0], float(final["lr"].iloc[0])
    make, frames = finetune_maker(profile, task, device), []
    for name, init in REINITS.items():
        runs = run_each(EXPERIMENT, [make(checkpoint, init, lr, s) for s in seeds], profile, force, before_compute)
        frames.append(_frame(runs, Arm(name, (checkpoint,), init), "final"))
    return pd.concat(frames, ignore_index=True)


def paired_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The final runs, one row per arm and fine-tuning seed: accuracy averaged over the arm's checkpoints; `failed`
    counts its failed runs there (`variant` names the arm, as `lib.stats.compare` expects)."""
    final = table[table["stage"] == "final"].assign(failed=lambda d: stats.failed_runs(d))
    return (final.groupby(["arm", "seed"], sort=False)
            .agg(test_accuracy=("test_accuracy", "mean"), test_majority=("test_majority", "first"),
                 runs=("test_accuracy", "size"), failed=("failed", "sum"))
            .reset_index().assign(variant=lambda d: d["arm"]))


def compare_arms(table: pd.DataFrame, reference: str) -> pd.DataFrame:
    """`lib.stats.compare` of `paired_frame` against the `reference` arm, with `failed` and `runs` counted over every
    final run, as the findings' failure rows count them: an arm of 3 checkpoints × 5 seeds has 15 runs, and a failed
    run can hide in a seed's mean above the majority class."""
    paired = paired_frame(table)
    counts = paired.groupby("variant", sort=False)[["failed", "runs"]].sum()
    return stats.compare(paired, reference).assign(failed=counts["failed"], runs=counts["runs"])


def arm_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per arm (and checkpoint): the chosen rate, mean ± std test accuracy (%) over seeds, failed runs."""
    final = table[table["stage"] == "final"].assign(failed=lambda d: stats.failed_runs(d))
    rows = []
    for (arm, ckpt), part in final.groupby(["arm", "checkpoint"], sort=False):
        acc = 100 * part["test_accuracy"]
        rows.append({"arm": arm, "checkpoint": int(ckpt), "lr": stats.lr_label(part["lr"].iloc[0]),
                     "seeds": len(part), "test accuracy (%)": f"{acc.mean():.1f} ± {acc.std():.1f}",
                     "failed runs": f"{int(part['failed'].sum())}/{len(part)}",
                     "majority (%)": round(100 * part["test_majority"].iloc[0], 1)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------- frozen features
def _features(model, tokenizer, texts: list[str], batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Mean-pooled last-layer vectors (padding excluded) and the [CLS] vectors of `texts`."""
    pooled, cls = [], []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            enc = tokenizer(texts[i : i + batch], padding=True, truncation=True, max_length=128, return_tensors="pt")
            enc.pop("token_type_ids", None)
            hidden = model.base_model(**enc)[0].float()
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
            cls.append(hidden[:, 0].numpy())
    return np.concatenate(pooled), np.concatenate(cls)


def mean_cosine(vectors: np.ndarray) -> float:
    """Mean cosine between different rows: near 1 when every input maps to about the same direction (anisotropy)."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)
    sims = unit @ unit.T
    n = len(unit)
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))


def weight_growth(model, reference) -> float:
    """‖W‖ of the encoder's weight matrices now over the same matrices at initialisation (the Frobenius norm of all
    of them together): how far training moved the weights' scale."""
    def norm(m) -> float:
        return float(torch.sqrt(sum((p.detach().float() ** 2).sum() for n, p in m.base_model.named_parameters()
                                    if p.dim() == 2 and "embeddings" not in n)))
    return norm(model) / norm(reference)


@dataclass
class ProbeSpec:
    """Frozen features of one model on each task: a linear probe (logistic regression on standardised mean-pooled
    last-layer vectors of the fine-tuning sentences, scored on the test split) and the representation's geometry."""

    model: str  # a checkpoint, or an architecture name for random weights
    architecture: str  # the same architecture with random weights (seed `seed`): the growth reference
    tasks: list[str] = field(default_factory=lambda: ["news_outlets", "movie_snippets"])
    max_train_examples: int | None = None
    max_test_examples: int | None = None
    seed: int = 0

    kind = "probe"
    keeps_checkpoint = False

    def identity(self) -> dict:
        return asdict(self) | {"model_fingerprint": fingerprint(self.model)}

    def compute(self, profile: Profile | None = None, stop_on_divergence: bool = False) -> Record:
        metrics, rows, start = {}, [], time.perf_counter()
        tokenizer, model = load_model(self.model, "classification", seed=self.seed)  # the encoder is all it reads
        _, reference = load_model(self.architecture, "classification", seed=self.seed, vocab="news-8k")
        model.eval()
        for task in self.tasks:
            data = FinetuneSpec(data=task, max_train_examples=self.max_train_examples, max_eval_examples=256,
                                max_test_examples=self.max_test_examples).dataset()
            (train_x, _), (test_x, test_cls) = (_features(model, tokenizer, list(data[s]["text"]))
                                               for s in ("train", "test"))
            probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train_x,
                                                                                           data["train"]["label"])
            truth = np.asarray(data["test"]["label"])
            correct = probe.predict(test_x) == truth
            metrics |= {f"{task}_probe_accuracy": float(correct.mean()),
                        f"{task}_majority": float(np.bincount(truth).max() / len(truth)),
                        f"{task}_cls_cosine": mean_cosine(test_cls), f"{task}_pooled_cosine": mean_cosine(test_x)}
            rows.append(pd.DataFrame({"task": task, "sentence": np.arange(len(truth)), "correct": correct}))
        metrics["weight_growth"] = weight_growth(model, reference)
        metrics["train_seconds"] = round(time.perf_counter() - start, 2)  # features, probes and geometry together
        per_task = pd.DataFrame([{"task": t, "probe_accuracy": metrics[f"{t}_probe_accuracy"]} for t in self.tasks])
        return Record(metrics, per_task, pd.concat(rows, ignore_index=True))


def probe_specs(profile: Profile, models: dict[str, tuple[str, str]]) -> dict[str, ProbeSpec]:
    """`name → (model, architecture)` as probes on the profile's tasks and sizes."""
    p = profile.pretrain
    return {name: ProbeSpec(model=str(model), architecture=arch, tasks=list(p.finetune_tasks),
                            max_train_examples=p.finetune_examples, max_test_examples=p.finetune_test_examples)
            for name, (model, arch) in models.items()}


def run_probes(specs: dict[str, ProbeSpec], profile: Profile, force: bool = False,
               before_compute: Callable[[ProbeSpec], None] = lambda spec: None) -> dict[str, store.Run]:
    """Each probe, stored or computed now (`run_each`: `before_compute` first, e.g. to rebuild a missing checkpoint)."""
    return dict(zip(specs, run_each(PROBES, list(specs.values()), profile, force, before_compute)))


def probe_table(runs: dict[str, store.Run], floors: dict[str, float]) -> pd.DataFrame:
    """Per model: linear-probe test accuracy per task (%), beside the majority class and the TF-IDF floor (`floors`,
    task → accuracy); the mean cosine between [CLS] vectors of different test sentences and between their mean-pooled
    vectors (near 1: every sentence looks alike); and the encoder's weight norm over its norm at initialisation."""
    rows = {}
    for name, run in runs.items():
        m, row = run.metrics, {}
        for task in run.config["tasks"]:
            row |= {f"{task}: probe (%)": 100 * m[f"{task}_probe_accuracy"],
                    f"{task}: [CLS] cosine": m[f"{task}_cls_cosine"],
                    f"{task}: pooled cosine": m[f"{task}_pooled_cosine"]}
        rows[name] = row | {"weight norm / at init": m["weight_growth"]}
    table = pd.DataFrame(rows).T
    first = next(iter(runs.values())).metrics
    for task, floor in floors.items():
        table.loc["TF-IDF + LR (floor)", f"{task}: probe (%)"] = 100 * floor
        table.loc["majority class", f"{task}: probe (%)"] = 100 * first[f"{task}_majority"]
    return table.round(3)
