"""A pretraining run: MLM + NSP on the news corpus, through the same trainer and run store as fine-tuning.

`PretrainSpec` names the model, vocabulary, sequence length, masking rate,
whether NSP is on, and the `TrainConfig`; `lib.store.run("pretrain", spec)`
trains it (or replays it) and keeps its weights under
`checkpoints/pretrain/<run_id>/`, which `lib.models.load_model` loads by path.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

from lib.data import DATA_VERSION, load_news_corpus
from lib.mlm import PretrainingCollator, PretrainingModel, evaluate_pretraining
from lib.models import load_model, save_checkpoint
from lib.nsp import nsp_examples
from lib.store import Record, checkpoint_dir, run_id
from lib.trainer import ConfigError, TrainConfig, fit

METRICS = ("loss", "mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy")
"""What the held-out evaluation reports: `TrainConfig.metric` must be one of them."""


def _pretrain_config() -> TrainConfig:
    return TrainConfig(lr=1e-4, weight_decay=0.01, warmup_ratio=0.06, epochs=1, metric="mlm_loss", patience=None)


@dataclass
class PretrainSpec:
    """A pretraining run. Defaults follow Devlin et al. where a CPU allows:
    Adam(W) lr 1e-4, weight decay 0.01, warmup then linear decay, 15% masking, NSP on."""

    model: str = "bert-mini"
    data_version: int = DATA_VERSION
    vocab: str = "news-8k"
    max_seq_len: int = 128
    mlm_probability: float = 0.15
    nsp: bool = True
    sparse_head: bool = True
    max_documents: int | None = None
    eval_pairs: int = 256
    train: TrainConfig = field(default_factory=_pretrain_config)

    kind = "pretrain"
    keeps_checkpoint = True

    def __post_init__(self) -> None:
        allowed = METRICS if self.nsp else METRICS[:3]
        if self.train.metric not in allowed:
            raise ConfigError(f"metric={self.train.metric!r} is not a pretraining metric; choose one of {allowed}.")
        if not 0 < self.mlm_probability < 1:
            raise ConfigError(f"mlm_probability must lie in (0, 1), got {self.mlm_probability!r}.")
        if not 8 <= self.max_seq_len <= 512:
            raise ConfigError(f"max_seq_len must lie in 8..512 (BERT's positions), got {self.max_seq_len!r}.")

    def identity(self) -> dict:
        return asdict(self)

    def compute(self, profile: str = "quick", stop_on_divergence: bool = False) -> Record:
        """Pretrain now (no store); the record's checkpoint is the trained `BertForPreTraining`."""
        tokenizer, model = load_model(self.model, "pretraining", vocab=self.vocab, seed=self.train.seed)
        train, held_out = pretraining_data(self, tokenizer)
        collate = PretrainingCollator(tokenizer, self.mlm_probability, seed=self.train.seed, nsp=self.nsp)
        fixed = PretrainingCollator(tokenizer, self.mlm_probability, seed=1234, nsp=self.nsp)
        eval_batches = [fixed(held_out[i : i + 64]) for i in range(0, len(held_out), 64)]  # masked once
        bs = self.train.batch_size

        shuffler = random.Random(self.train.seed)  # once per run: epochs draw on, seeds share no order

        def batches(epoch: int):
            order = list(range(len(train)))
            shuffler.shuffle(order)
            for i in range(0, len(order) - bs + 1, bs):
                yield collate([train[j] for j in order[i : i + bs]])

        wrapped = PretrainingModel(model, sparse=self.sparse_head)
        fitted = fit(
            wrapped,
            batches,
            len(train) // bs,
            lambda m: evaluate_pretraining(m, eval_batches),
            self.train,
            stop_on_divergence=stop_on_divergence,
        )
        # fit restored the best-evaluated weights, so their held-out metrics are already known
        metrics = {f"heldout_{k}": v for k, v in fitted.best_metrics.items()} | {
            "steps": fitted.steps,
            "precision": "bf16" if self.train.use_bf16 else "fp32",
            "train_seconds": round(fitted.seconds, 2),
            "train_pairs": len(train),
            "tokens_per_s": round(float(fitted.history["tokens"].iloc[-1]) / fitted.seconds, 1),
            "checkpoint": str(checkpoint_dir(self.kind, run_id(self.identity()))),
        }
        return Record(metrics, fitted.history, None, lambda path: save_checkpoint(model, tokenizer, path))


def pretraining_data(spec: PretrainSpec, tokenizer) -> tuple[list[dict], list[dict]]:
    """NSP examples from training documents, and held-out examples from validation documents."""
    corpus = load_news_corpus(max_documents=spec.max_documents)
    train = nsp_examples(list(corpus["train"]["sentences"]), tokenizer, spec.max_seq_len, seed=spec.train.seed)
    held_out = nsp_examples(list(corpus["validation"]["sentences"]), tokenizer, spec.max_seq_len, seed=10_000)
    return train, held_out[: spec.eval_pairs]
