"""A fine-tuning run, described by a dataclass: what to fine-tune on what.

A notebook (or a sweep) builds a `FinetuneSpec` — data, model, subsample,
`TrainConfig` — and hands it to `lib.store.run`. The spec *is* the run's
identity: the same spec returns the stored run instead of training again.
Impossible specs fail when they are built, before anything trains.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from datasets import DatasetDict

from lib.classify import METRICS, finetune
from lib.data import DATA_VERSION, is_file_name, label_names, load_data
from lib.models import INITS, fingerprint, load_model, position_limit, save_checkpoint
from lib.source import DataSource
from lib.store import Record
from lib.trainer import ConfigError, TrainConfig, check_warmup, num_update_steps


@dataclass
class FinetuneSpec:
    """What to fine-tune on what; defaults are the baseline."""

    data: str | DataSource = "movie_snippets"  # a shipped name, a hub name, or your file (a CSV path or a DataSource)
    data_version: int = DATA_VERSION
    model: str = "minilm-l6"
    vocab: str = "news-8k"  # only used by from-scratch models
    init: str = "pretrained"  # "random": the same architecture with fresh weights (what does pretraining buy?)
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    max_test_examples: int | None = None  # a fixed stratified subset (smoke, quick); None: the whole split
    train: TrainConfig = field(default_factory=TrainConfig)

    kind = "finetune"  # checkpoints/finetune/<run_id>/ when a run keeps its weights (a distillation teacher)
    keeps_checkpoint = False

    def __post_init__(self) -> None:
        if isinstance(self.data, str) and is_file_name(self.data):
            self.data = DataSource(self.data)  # default columns text, label
        if self.init not in INITS:
            raise ConfigError(f"init={self.init!r}; choose one of {INITS}.")
        if self.train.metric not in METRICS:
            raise ConfigError(f"metric={self.train.metric!r} is not a fine-tuning metric; choose one of {METRICS}.")
        limit = position_limit(self.model)
        if limit is not None and self.train.max_length > limit:
            raise ConfigError(
                f"max_length={self.train.max_length}, but {self.model} takes at most {limit} positions; "
                f"use max_length ≤ {limit} (and truncation='head+tail' to keep both ends of long texts)."
            )
        for name in ("max_train_examples", "max_eval_examples", "max_test_examples"):
            n = getattr(self, name)
            if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
                raise ConfigError(f"{name} must be a whole number ≥ 1 (or None: all), got {n!r}.")
        if self.max_train_examples is not None:  # the run is at most this long: warmup must fit in it
            batches = math.ceil(self.max_train_examples / self.train.batch_size)
            check_warmup(self.train, num_update_steps(batches, self.train))

    def with_overrides(self, **overrides) -> FinetuneSpec:
        """A copy with spec fields or `TrainConfig` fields replaced (ablations)."""
        spec_keys = {k: v for k, v in overrides.items() if k in self.__dataclass_fields__ and k != "train"}
        train_keys = {k: v for k, v in overrides.items() if k not in spec_keys}
        unknown = set(train_keys) - set(TrainConfig.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"Unknown override(s) {sorted(unknown)}: not a FinetuneSpec or TrainConfig field.")
        return replace(self, **spec_keys, train=replace(self.train, **train_keys))

    def seeds(self, seeds: list[int]) -> list[FinetuneSpec]:
        """The same run over several seeds."""
        return [self.with_overrides(seed=s) for s in seeds]

    def identity(self) -> dict:
        """The spec's fields; for your own file, its description and its content fingerprint; for a model
        folder, what wrote it (`lib.models.fingerprint`), so a re-trained checkpoint makes a new run."""
        out = asdict(self)
        if isinstance(self.data, DataSource):
            out["data"] = self.data.identity()
        if (model := fingerprint(self.model)) is not None:
            out["model_fingerprint"] = model
        return out

    def dataset(self) -> DatasetDict:
        """The spec's data set with its subsample (train / validation / test)."""
        return load_data(
            self.data,
            max_train_examples=self.max_train_examples,
            max_eval_examples=self.max_eval_examples,
            max_test_examples=self.max_test_examples,
        )

    def compute(self, profile: str = "quick", stop_on_divergence: bool = False, **finetune_kwargs) -> Record:
        """Fine-tune now (no store). `finetune_kwargs` go to `lib.classify.finetune`
        (extra training columns and a model wrapper, e.g. for distillation)."""
        dsd = self.dataset()
        names = label_names(dsd)
        tokenizer, model = load_model(
            self.model, "classification", label_names=names, vocab=self.vocab, seed=self.train.seed, init=self.init
        )
        result = finetune(model, tokenizer, dsd, self.train, stop_on_divergence=stop_on_divergence, **finetune_kwargs)
        metrics = result.metrics | {"confusion": result.confusion.tolist(), "label_names": names}
        return Record(metrics, result.history, result.predictions, lambda path: save_checkpoint(model, tokenizer, path))
