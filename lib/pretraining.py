"""A pretraining run: MLM + NSP on the news corpus, through the same trainer and run store as fine-tuning.

`PretrainSpec` names the model, vocabulary, sequence length, masking rate,
whether NSP is on, and the `TrainConfig`; `lib.store.run("pretrain", spec)`
trains it (or replays it) and keeps its weights under
`checkpoints/pretrain/<run_id>/`, which `lib.models.load_model` loads by path.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

import pandas as pd
import torch
from torch.utils.data import DataLoader, Sampler

from lib import parallel
from lib.cli import Parser
from lib.data import DATA_VERSION, load_news_corpus
from lib.mlm import PretrainingCollator, PretrainingModel, evaluate_pretraining, frequency_baselines
from lib.models import load_model, save_checkpoint
from lib.nsp import nsp_examples
from lib.profiles import Profile
from lib.store import Record, checkpoint_dir, load_experiment, run_id
from lib.store import run as stored_run
from lib.train_config import ConfigError, TrainConfig
from lib.trainer import fit

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
    mask_replace_prob: float = 0.8  # of the chosen tokens, shown as [MASK] (BERT: 80%); the held-out set keeps 80/10/10
    random_replace_prob: float = 0.1  # shown as a random token; the rest are left unchanged
    nsp: bool = True
    sparse_head: bool = True
    dropout: float = 0.1  # during pretraining only; the saved config keeps BERT's 0.1 for fine-tuning
    max_documents: int | None = None
    eval_pairs: int = 512  # held-out NSP pairs, half of each label
    train: TrainConfig = field(default_factory=_pretrain_config)

    kind = "pretrain"
    keeps_checkpoint = True

    def __post_init__(self) -> None:
        allowed = METRICS if self.nsp else METRICS[:3]
        if self.train.metric not in allowed:
            raise ConfigError(f"metric={self.train.metric!r} is not a pretraining metric; choose one of {allowed}.")
        if not 0 < self.mlm_probability < 1:
            raise ConfigError(f"mlm_probability must lie in (0, 1), got {self.mlm_probability!r}.")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout!r}.")
        if not 8 <= self.max_seq_len <= 512:
            raise ConfigError(f"max_seq_len must lie in 8..512 (BERT's positions), got {self.max_seq_len!r}.")

    def identity(self) -> dict:
        return asdict(self)

    def compute(self, profile: Profile | None = None, stop_on_divergence: bool = False) -> Record:
        """Pretrain now (no store); the record's checkpoint is the trained `BertForPreTraining`."""
        tokenizer, model = load_model(self.model, "pretraining", vocab=self.vocab, seed=self.train.seed)
        set_dropout(model, self.dropout)
        train, held_out = pretraining_data(self, tokenizer)
        collate = PretrainingCollator(tokenizer, self.mlm_probability, seed=self.train.seed, nsp=self.nsp,
                                      mask_replace_prob=self.mask_replace_prob,
                                      random_replace_prob=self.random_replace_prob)
        fixed = PretrainingCollator(tokenizer, self.mlm_probability, seed=1234, nsp=self.nsp)
        eval_batches = [fixed(held_out[i : i + 64]) for i in range(0, len(held_out), 64)]  # masked once
        special = [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.mask_token_id]
        mask_id = tokenizer.mask_token_id
        floor = frequency_baselines(train, eval_batches, special, mask_id)
        bs = self.train.batch_size

        shuffled = Shuffled(len(train), random.Random(self.train.seed))  # once per run: seeds share no order

        def batches(epoch: int) -> DataLoader:
            return DataLoader(train, batch_size=bs, sampler=shuffled, drop_last=True, collate_fn=collate)

        wrapped = PretrainingModel(model, sparse=self.sparse_head, mask_token_id=mask_id)
        fitted = fit(
            wrapped,
            batches,
            len(train) // bs,
            lambda m: evaluate_pretraining(m, eval_batches),
            self.train,
            stop_on_divergence=stop_on_divergence,
        )
        # fit restored the best-evaluated weights, so their held-out metrics are already known
        corpus_tokens = sum(len(ex["input_ids"]) for ex in train)
        seen = int(fitted.history["tokens"].iloc[-1])
        metrics = {f"heldout_{k}": v for k, v in fitted.best_metrics.items()}
        metrics |= {f"baseline_{k}": v for k, v in floor.items()} | {
            "steps": fitted.steps,
            "precision": "bf16" if self.train.use_bf16 else "fp32",
            "train_seconds": round(fitted.seconds, 2),
            "train_pairs": len(train),
            "tokens_seen": seen,
            "corpus_tokens": corpus_tokens,
            "passes": round(seen / corpus_tokens, 2),
            "tokens_per_s": round(seen / fitted.seconds, 1),
            "heldout_pairs": len(held_out),
            "heldout_masked_tokens": int(sum(int((b["labels"] != -100).sum()) for b in eval_batches)),
            "heldout_mask_tokens": int(sum(int((b["input_ids"] == mask_id).sum()) for b in eval_batches)),
            "checkpoint": str(checkpoint_dir(self.kind, run_id(self.identity()))),
        }
        return Record(metrics, fitted.history, None, lambda path: save_checkpoint(model, tokenizer, path))


class Shuffled(Sampler):
    """A new order of `n` examples each epoch, all drawn from one run-long `random.Random`."""

    def __init__(self, n: int, rng: random.Random):
        self.n, self.rng = n, rng

    def __iter__(self):
        order = list(range(self.n))
        self.rng.shuffle(order)
        return iter(order)

    def __len__(self) -> int:
        return self.n


def set_dropout(model: torch.nn.Module, p: float) -> None:
    """Every dropout layer to `p`, leaving `model.config` as it was. Short pretraining runs learn faster
    without dropout (Geiping & Goldstein 2023, Cramming), but the checkpoint's fine-tuning should still
    get BERT's dropout, which its saved config keeps."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p


def pretraining_data(spec: PretrainSpec, tokenizer) -> tuple[list[dict], list[dict]]:
    """NSP examples from training documents, and held-out examples from validation documents.

    The held-out pairs are balanced, half IsNext and half NotNext (as many as `eval_pairs` allows), so
    NSP's chance level is exactly 50%: a model that always says one label scores 50%, not the majority share.
    """
    corpus = load_news_corpus(max_documents=spec.max_documents)
    train = nsp_examples(list(corpus["train"]["sentences"]), tokenizer, spec.max_seq_len, seed=spec.train.seed)
    pool = nsp_examples(list(corpus["validation"]["sentences"]), tokenizer, spec.max_seq_len, seed=10_000)
    per_label = min(spec.eval_pairs // 2, *(sum(p["next_sentence_label"] == y for p in pool) for y in (0, 1)))
    kept = {0: 0, 1: 0}
    held_out = []
    for pair in pool:  # the first pairs of each label, in corpus order
        y = pair["next_sentence_label"]
        if kept[y] < per_label:
            held_out.append(pair)
            kept[y] += 1
    return train, held_out


def scratch_spec(profile: Profile, device: str = "auto", nsp: bool = True) -> PretrainSpec:
    """Notebook 01's from-scratch run for `profile`: its model, steps, rate and batch (`lib.profiles`), the
    rest Devlin et al.'s recipe (AdamW, weight decay 0.01, warmup then linear decay, 15% masking) without
    dropout — Cramming's choice for short runs: in a probe here it moved the same steps ~1.5x faster."""
    budget = profile.pretrain
    return PretrainSpec(
        model=budget.scratch_model, max_seq_len=budget.seq_len, max_documents=budget.max_documents, nsp=nsp,
        dropout=0.0,
        train=_stepped(profile, budget.scratch_steps, budget.scratch_batch, evaluations=8, device=device,
                       lr=budget.scratch_lr),
    )


def minilm_spec(profile: Profile, device: str = "auto") -> PretrainSpec:
    """Notebook 01's continuation of MiniLM's pretraining: new MLM/NSP heads at 3e-3 on the pretrained
    encoder at 1e-4 (`head_lr`)."""
    budget = profile.pretrain
    return PretrainSpec(
        model="minilm-l6", max_seq_len=budget.minilm_seq_len, max_documents=budget.max_documents,
        train=_stepped(profile, budget.minilm_steps, budget.minilm_batch, evaluations=4, device=device,
                       lr=1e-4, head_lr=3e-3),
    )


def _stepped(profile: Profile, steps: int, batch: int, evaluations: int, device: str, **rates) -> TrainConfig:
    """Notebook 01's pretraining schedule: `steps` AdamW steps (weight decay 0.01, 6% warmup then linear
    decay), `evaluations` held-out evaluations, the best by MLM loss, no early stopping."""
    return TrainConfig(**rates, weight_decay=0.01, warmup_ratio=0.06, max_steps=steps, batch_size=batch,
                       eval_every=max(1, steps // evaluations), metric="mlm_loss", patience=None, device=device,
                       progress=profile.progress)


def stored_scratch_run(profile: Profile) -> dict | None:
    """The stored metrics of notebook 01's from-scratch run for `profile` (None before it has run)."""
    spec = scratch_spec(profile)
    runs = load_experiment(spec.kind, profile)
    mine = runs[runs["run_id"] == run_id(spec.identity())] if not runs.empty else runs
    return None if mine.empty else {"model": spec.model} | mine.iloc[-1].to_dict()


def against_baselines(m: dict) -> pd.DataFrame:
    """Held-out MLM and NSP of a pretraining record beside the context-free guess on the same tokens and pairs."""
    return pd.DataFrame({
        "our model (held-out)": [100 * m["heldout_mlm_accuracy"], 100 * m["heldout_mlm_mask_accuracy"],
                                 m["heldout_mlm_loss"], 100 * m["heldout_nsp_accuracy"]],
        "context-free baseline": [100 * m["baseline_frequent_token_accuracy"],
                                  100 * m["baseline_frequent_token_mask_accuracy"], m["baseline_unigram_loss"], 50.0],
    }, index=["MLM accuracy (%), all masked tokens, vs most frequent token",
              "MLM accuracy (%), [MASK] inputs only, vs most frequent token",
              "MLM loss (nats), vs unigram cross-entropy", "NSP accuracy (%), balanced pairs, vs chance"]).round(2)


def summary_sentence(m: dict) -> str:
    """One generated line for the README and REPORT: what the run saw and where it ended against the baselines."""
    return (f"{m['model']} from scratch, {int(m['steps']):,} steps ({m['tokens_seen'] / 1e6:.1f}M tokens, "
            f"{m['passes']:.2f} passes over the corpus, {m['train_seconds'] / 60:.1f} min at "
            f"{m['tokens_per_s']:,.0f} tokens/s, {m['precision']}): held-out MLM accuracy "
            f"{100 * m['heldout_mlm_accuracy']:.1f}% on all masked tokens (always the most frequent token: "
            f"{100 * m['baseline_frequent_token_accuracy']:.1f}%) and {100 * m['heldout_mlm_mask_accuracy']:.1f}% "
            f"at [MASK] inputs ({100 * m['baseline_frequent_token_mask_accuracy']:.1f}%); MLM loss "
            f"{m['heldout_mlm_loss']:.2f} nats (unigram guess: {m['baseline_unigram_loss']:.2f}); NSP "
            f"{100 * m['heldout_nsp_accuracy']:.1f}% on {int(m['heldout_pairs'])} balanced held-out pairs "
            "(chance 50%).")


def main(argv: list[str] | None = None) -> int:
    """`python -m lib.pretraining --profile quick`: notebook 01's from-scratch run, stored like any run.

    Under `accelerate launch --num_processes N` the N processes train it together (`lib.trainer.fit`)."""
    parser = Parser(prog="python -m lib.pretraining", description=main.__doc__.split("\n")[0])
    parser.add_profile()
    parser.add_argument("--no-nsp", action="store_true", help="masked LM only")
    parser.add_argument("--force", action="store_true", help="train again even where the run is stored")
    args = parser.parse_args(argv)
    spec = scratch_spec(args.profile, nsp=not args.no_nsp)
    stored = stored_run(spec.kind, spec, args.profile, args.force)
    if parallel.is_main():
        print(summary_sentence({"model": spec.model} | stored.metrics))
        print(f"run: {stored.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
