"""One fine-tuning run, described by a dataclass and stored by `lib.results`.

A notebook (or a sweep) builds a `FinetuneSpec` — data, model, subsample,
`TrainConfig` — and calls `run_finetune`. The spec *is* the run's identity:
the same spec returns the stored run instead of training again.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import pandas as pd
from datasets import DatasetDict
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib.data import DATA_VERSION, label_names, load_data
from lib.models import load_model
from lib.results import Run, cached_run, flatten
from lib.trainer import TrainConfig, finetune


@dataclass
class FinetuneSpec:
    """What to fine-tune on what; defaults are the baseline."""

    data: str = "movie_snippets"
    data_version: int = DATA_VERSION
    model: str = "minilm-l6"
    vocab: str = "news-8k"  # only used by from-scratch models
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    max_test_examples: int | None = None  # smoke profile only
    train: TrainConfig = field(default_factory=TrainConfig)

    def with_overrides(self, **overrides) -> "FinetuneSpec":
        """A copy with spec fields or `TrainConfig` fields replaced (ablations)."""
        spec_keys = {k: v for k, v in overrides.items() if k in self.__dataclass_fields__ and k != "train"}
        train_keys = {k: v for k, v in overrides.items() if k not in spec_keys}
        unknown = set(train_keys) - set(TrainConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"Unknown override(s) {sorted(unknown)}: not a FinetuneSpec or TrainConfig field.")
        return replace(self, **spec_keys, train=replace(self.train, **train_keys))

    def dataset(self) -> DatasetDict:
        """The spec's data set with its subsample (train / validation / test)."""
        return load_data(
            self.data,
            max_train_examples=self.max_train_examples,
            max_eval_examples=self.max_eval_examples,
            max_test_examples=self.max_test_examples,
        )


def train(spec: FinetuneSpec, **finetune_kwargs) -> tuple[tuple[dict, pd.DataFrame, pd.DataFrame], PreTrainedModel, PreTrainedTokenizerBase]:
    """Fine-tune per `spec` now (no store): ((metrics, history, predictions), model, tokenizer).

    The record is what `lib.results.cached_run` stores; `finetune_kwargs` go to
    `lib.trainer.finetune` (e.g. teacher logits for distillation).
    """
    dsd = spec.dataset()
    names = label_names(dsd)
    tokenizer, model = load_model(spec.model, "classification", label_names=names, vocab=spec.vocab, seed=spec.train.seed)
    result = finetune(model, tokenizer, dsd, spec.train, **finetune_kwargs)
    metrics = result.metrics | {"confusion": result.confusion.tolist(), "label_names": names}
    return (metrics, result.history, result.predictions), model, tokenizer


def run_finetune(experiment: str, spec: FinetuneSpec, profile: str = "quick", force: bool = False) -> Run:
    """Fine-tune per `spec` (or load the stored run) and return the `Run`."""
    return cached_run(experiment, asdict(spec), lambda: train(spec)[0], profile=profile, force=force)


def run_seeds(experiment: str, spec: FinetuneSpec, seeds: list[int], profile: str = "quick", force: bool = False) -> list[Run]:
    """The same spec over several seeds (each stored and resumable on its own)."""
    return [run_finetune(experiment, spec.with_overrides(seed=s), profile, force) for s in seeds]


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run: flattened config and scalar metrics, for tables and plots."""
    rows = []
    for r in runs:
        scalars = {k: v for k, v in r.metrics.items() if not isinstance(v, (list, dict))}
        rows.append({"run_id": r.run_id, "cached": r.cached} | flatten(r.config) | scalars)
    return pd.DataFrame(rows)
