"""A pretraining run: MLM + NSP on the news corpus, through the same trainer and run store as fine-tuning.

`PretrainSpec` names the model, vocabulary, sequence length, masking rate,
whether NSP is on, and the `TrainConfig`; `lib.store.run("pretrain", spec)`
trains it (or replays it) and keeps its weights under
`checkpoints/pretrain/<run_id>/`, which `lib.models.load_model` loads by path.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field, replace

import pandas as pd
import torch
from torch.utils.data import DataLoader, Sampler

from lib import parallel
from lib.cli import Parser
from lib.data import DATA_VERSION, load_news_corpus
from lib.demos import fill_mask
from lib.mlm import (
    PretrainingCollator,
    PretrainingModel,
    bigram_baseline,
    bigram_tokens,
    evaluate_pretraining,
    frequency_baselines,
    shuffle_context,
    token_counts,
    token_results,
)
from lib.models import MLM_ONLY, load_model, save_checkpoint
from lib.nsp import nsp_examples, tokenize_documents
from lib.profiles import Profile
from lib.store import Record, checkpoint_dir, run_id
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
    packed: bool = False  # contiguous windows of each document instead of sentence pairs (needs nsp=False)
    sparse_head: bool = True
    dropout: float = 0.1  # during pretraining only; the saved config keeps BERT's 0.1 for fine-tuning
    max_documents: int | None = None
    eval_pairs: int = 512  # held-out examples: NSP pairs (half of each label) or packed windows
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
        if self.nsp and (self.packed or self.model in MLM_ONLY):
            why = "packed windows have no sentence pairs" if self.packed else f"{self.model} has no NSP head"
            raise ConfigError(f"nsp=True, but {why}: use nsp=False (masked LM only).")

    def identity(self) -> dict:
        return asdict(self)

    def compute(self, profile: Profile | None = None, stop_on_divergence: bool = False) -> Record:
        """Pretrain now (no store); the record's checkpoint is the trained `BertForPreTraining`."""
        tokenizer, model = load_model(self.model, "pretraining", vocab=self.vocab, seed=self.train.seed)
        set_dropout(model, self.dropout)
        before = fill_mask(model, tokenizer, FILL_MASK_PROBES)["top 5 predictions"].tolist()
        train, held_out = pretraining_data(self, tokenizer)
        collate = PretrainingCollator(tokenizer, self.mlm_probability, seed=self.train.seed, nsp=self.nsp,
                                      mask_replace_prob=self.mask_replace_prob,
                                      random_replace_prob=self.random_replace_prob)
        fixed = PretrainingCollator(tokenizer, self.mlm_probability, seed=1234, nsp=self.nsp)
        eval_batches = [fixed(held_out[i : i + 64]) for i in range(0, len(held_out), 64)]  # masked once
        special = [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.mask_token_id]
        mask_id = tokenizer.mask_token_id
        floor = frequency_baselines(train, eval_batches, special, mask_id)
        if not self.packed:  # packed runs are held out on the shared windows: their bigram floor comes with them
            floor |= bigram_baseline(train, eval_batches, special, mask_id)
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
        shuffled = [shuffle_context(b, special, seed=i) for i, b in enumerate(eval_batches)]  # the context control
        control = evaluate_pretraining(wrapped, shuffled)
        metrics |= {f"shuffled_{k}": v for k, v in control.items() if k.startswith("mlm")}
        windows = eval_batches if self.packed else window_batches(self, tokenizer)  # packed: held out on them already
        tokens = window_tokens(wrapped, train, tokenizer, windows)
        if self.packed:
            where = tokens["at_mask"]
            floor |= {"bigram_loss": tokens["bigram_loss"].mean(), "bigram_accuracy": tokens["bigram_correct"].mean(),
                      "bigram_mask_accuracy": tokens["bigram_correct"][where].mean()}
        metrics |= {f"baseline_{k}": v for k, v in floor.items()}
        metrics |= window_metrics(tokens) | {
            "fill_mask_before": before,
            "fill_mask_after": fill_mask(model, tokenizer, FILL_MASK_PROBES)["top 5 predictions"].tolist(),
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
        return Record(metrics, fitted.history, tokens, lambda path: save_checkpoint(model, tokenizer, path))


FILL_MASK_PROBES = ["the president signed the [MASK] on tuesday.", "the police said the man was [MASK] on friday.",
                    "shares of the company [MASK] 5 percent.", "the [MASK] will play the final on sunday.",
                    "the prime minister of [MASK] met the president in washington."]
"""Fill-in-the-blank sentences every pretraining run answers before and after training (its record keeps both)."""

FREQUENT = 20
"""Accuracy "excluding the most frequent tokens" leaves out targets among the training data's `FREQUENT` commonest."""


def window_batches(spec: PretrainSpec, tokenizer) -> list[dict]:
    """The held-out tokens every run is scored on, whatever it trained on: the first `eval_pairs` packed windows of
    the validation documents, masked once with a fixed seed (BERT's 80/10/10) — a packed run's own held-out batches
    are these — so any two runs of one profile compare token by token."""
    corpus = load_news_corpus(max_documents=spec.max_documents)
    windows = packed_examples(list(corpus["validation"]["sentences"]), tokenizer, spec.max_seq_len)[: spec.eval_pairs]
    fixed = PretrainingCollator(tokenizer, spec.mlm_probability, seed=1234, nsp=False)
    return [fixed(windows[i : i + 64]) for i in range(0, len(windows), 64)]


def window_tokens(wrapped: PretrainingModel, train: list[dict], tokenizer, batches: list[dict]) -> pd.DataFrame:
    """One row per masked token of `window_batches` (`lib.mlm.token_results`) with the context-free and bigram
    guesses beside the model's, and whether the target is one of the `FREQUENT` commonest training tokens."""
    special = [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.mask_token_id]
    out = token_results(wrapped, batches, tokenizer.mask_token_id)
    counts = token_counts(train, special, len(tokenizer))
    smoothed = (counts + 1) / (counts.sum() + len(counts))
    targets = torch.tensor(out["target"].to_numpy())
    out["unigram_loss"] = (-smoothed[targets].log()).numpy()
    out["frequent_correct"] = (targets == counts.argmax()).numpy()
    out["frequent"] = torch.isin(targets, counts.topk(FREQUENT).indices).numpy()
    out = pd.concat([out, bigram_tokens(train, batches, special)], axis=1)
    return out.round({c: 4 for c in ("loss", "unigram_loss", "bigram_loss")})


def window_metrics(tokens: pd.DataFrame) -> dict[str, float]:
    """`window_tokens` at [MASK] inputs (context only), for the model and its floors: accuracy (all targets and
    without the `FREQUENT` commonest) and cross-entropy."""
    at = tokens[tokens["at_mask"]]
    rare = at[~at["frequent"]]
    return {"windows_mask_tokens": len(at), "windows_mask_accuracy": at["correct"].mean(),
            "windows_mask_loss": at["loss"].mean(), "windows_mask_rare_accuracy": rare["correct"].mean(),
            "windows_frequent_mask_accuracy": at["frequent_correct"].mean(),
            "windows_unigram_mask_loss": at["unigram_loss"].mean(),
            "windows_bigram_mask_accuracy": at["bigram_correct"].mean(),
            "windows_bigram_mask_loss": at["bigram_loss"].mean(),
            "windows_bigram_mask_rare_accuracy": rare["bigram_correct"].mean()}


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


def packed_examples(documents: list[list[str]], tokenizer, max_seq_len: int, min_tokens: int = 8) -> list[dict]:
    """Each document's tokens in contiguous windows of `max_seq_len` − 2, as [CLS] window [SEP]: the packed
    sequences of budget recipes (RoBERTa's full sentences within a document; Cramming). Every position is running
    text, so masked LM sees whole neighbourhoods instead of a second segment drawn from another document half the
    time. A document's last window is kept if it has at least `min_tokens` tokens."""
    body, cls, sep = max_seq_len - 2, tokenizer.cls_token_id, tokenizer.sep_token_id
    out = []
    for doc in tokenize_documents([d for d in documents if d], tokenizer, max_seq_len):
        tokens = [t for sentence in doc for t in sentence]
        for start in range(0, len(tokens), body):
            window = tokens[start : start + body]
            if len(window) >= min_tokens:
                out.append({"input_ids": [cls, *window, sep], "token_type_ids": [0] * (len(window) + 2)})
    return out


def pretraining_data(spec: PretrainSpec, tokenizer) -> tuple[list[dict], list[dict]]:
    """Training examples from training documents, and held-out examples from validation documents: packed windows
    (`packed_examples`, the first `eval_pairs` held out), or NSP sentence pairs.

    Held-out NSP pairs are balanced, half IsNext and half NotNext (as many as `eval_pairs` allows), so
    NSP's chance level is exactly 50%: a model that always says one label scores 50%, not the majority share.
    """
    corpus = load_news_corpus(max_documents=spec.max_documents)
    if spec.packed:
        train = packed_examples(list(corpus["train"]["sentences"]), tokenizer, spec.max_seq_len)
        held_out = packed_examples(list(corpus["validation"]["sentences"]), tokenizer, spec.max_seq_len)
        return train, held_out[: spec.eval_pairs]
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


def scratch_spec(profile: Profile, device: str = "auto", seed: int = 0) -> PretrainSpec:
    """BERT's 2018 recipe (Devlin et al.) at the profile's budget (`lib.profiles`: steps × batch × seq_len tokens):
    BERT's post-LN block with learned positions, MLM (80/10/10) + NSP on sentence pairs, AdamW (β₂ 0.999), weight
    decay 0.01, 6% warmup then linear decay — without dropout, Cramming's choice for short runs (in a probe here it
    moved the same steps ~1.5x faster)."""
    budget = profile.pretrain
    return PretrainSpec(
        model=budget.scratch_model, max_seq_len=budget.seq_len, max_documents=budget.max_documents, dropout=0.0,
        train=replace(_stepped(profile, budget.steps, budget.batch, evaluations=8, device=device,
                               lr=budget.scratch_lr), seed=seed),
    )


def budget_spec(profile: Profile, device: str = "auto", seed: int = 0) -> PretrainSpec:
    """The budget recipe on the same corpus, vocabulary, sequence length and tokens as `scratch_spec`: ModernBERT's
    block (`lib.models.BLOCKS`), masked LM only on packed windows (no NSP), AdamW with β₂ 0.98, no dropout, 6% warmup
    then linear decay (Cramming; Izsak et al. 2021; Warner et al. 2024)."""
    budget = profile.pretrain
    train = _stepped(profile, budget.steps, budget.batch, evaluations=8, device=device, lr=budget.budget_lr)
    return PretrainSpec(model=budget.budget_model, max_seq_len=budget.seq_len, max_documents=budget.max_documents,
                        nsp=False, packed=True, dropout=0.0, train=replace(train, adam_beta2=0.98, seed=seed))


FACTORS: dict[str, dict] = {
    "BERT 2018: MLM + NSP on sentence pairs": {"recipe": "bert-2018"},
    "BERT block, masked LM on packed windows": {"model": "scratch"},
    "+ rotary positions (RoFormer)": {"model": "roformer-tiny"},
    "+ pre-LN and a final norm (RoBERTa-PreLN)": {"model": "prelnbert-tiny"},
    "ModernBERT block (the budget recipe)": {},
    "ModernBERT block, every chosen token [MASK]": {"mask_replace_prob": 1.0, "random_replace_prob": 0.0},
}
"""Notebook 01's factor table: each arm is the budget recipe with the changes named (`recipe` "bert-2018": the whole
2018 recipe; `model` "scratch": the 2018 recipe's BERT block), all at `factor_steps` over `factor_rates`."""

FACTOR_CONTRASTS: list[tuple[str, str, str]] = [
    ("BERT block, masked LM on packed windows", "BERT 2018: MLM + NSP on sentence pairs",
     "the budget objective (masked LM on packed windows, no NSP, β₂ 0.98) on BERT's block"),
    ("+ rotary positions (RoFormer)", "BERT block, masked LM on packed windows",
     "rotary positions instead of learned ones (post-LN block)"),
    ("+ pre-LN and a final norm (RoBERTa-PreLN)", "BERT block, masked LM on packed windows",
     "pre-LN with a final norm instead of post-LN (learned positions)"),
    ("ModernBERT block (the budget recipe)", "BERT block, masked LM on packed windows",
     "ModernBERT's block (rotary, pre-LN, GeGLU, no biases) instead of BERT's"),
    ("ModernBERT block, every chosen token [MASK]", "ModernBERT block (the budget recipe)",
     "every chosen token shown as [MASK] instead of 80/10/10"),
]
"""(variant, reference, what changes): one findings row each, compared token by token at [MASK] inputs."""


def factor_specs(profile: Profile, device: str = "auto") -> dict[str, list[PretrainSpec]]:
    """`FACTORS` as runs: every arm at each of `factor_rates`, `factor_steps` steps of the recipes' batch and
    length, 4 held-out evaluations."""
    budget, out = profile.pretrain, {}
    for arm, changes in FACTORS.items():
        changes = dict(changes)
        base = scratch_spec(profile, device) if changes.pop("recipe", None) == "bert-2018" else budget_spec(profile,
                                                                                                        device)
        if changes.get("model") == "scratch":
            changes["model"] = budget.scratch_model
        out[arm] = [replace(base, **changes, train=replace(
            base.train, lr=lr, max_steps=budget.factor_steps, eval_every=max(1, budget.factor_steps // 4)))
            for lr in budget.factor_rates]
    return out


def _stepped(profile: Profile, steps: int, batch: int, evaluations: int, device: str, **rates) -> TrainConfig:
    """Notebook 01's pretraining schedule: `steps` AdamW steps (weight decay 0.01, 6% warmup then linear
    decay), `evaluations` held-out evaluations, the best by MLM loss, no early stopping."""
    return TrainConfig(**rates, weight_decay=0.01, warmup_ratio=0.06, max_steps=steps, batch_size=batch,
                       eval_every=max(1, steps // evaluations), metric="mlm_loss", patience=None, device=device,
                       progress=profile.progress)


def summary_sentence(m: dict) -> str:
    """One generated line for the CLI, the README and REPORT: what a run saw and where it ended against the floors,
    at [MASK] inputs of the shared held-out windows (`window_batches`)."""
    return (f"{m['model']} from scratch, {int(m['steps']):,} steps ({m['tokens_seen'] / 1e6:.1f}M tokens, "
            f"{m['train_seconds'] / 60:.1f} min at {m['tokens_per_s']:,.0f} tokens/s, {m['precision']}): held-out "
            f"accuracy at [MASK] inputs {100 * m['windows_mask_accuracy']:.1f}% (always the most frequent token: "
            f"{100 * m['windows_frequent_mask_accuracy']:.1f}%; bigram counts: "
            f"{100 * m['windows_bigram_mask_accuracy']:.1f}%), cross-entropy {m['windows_mask_loss']:.2f} nats "
            f"(unigram: {m['windows_unigram_mask_loss']:.2f}; bigram: {m['windows_bigram_mask_loss']:.2f}; the model "
            f"with its context shuffled: {m['shuffled_mlm_loss']:.2f})"
            + (f"; NSP {100 * m['heldout_nsp_accuracy']:.1f}% on {int(m['heldout_pairs'])} balanced held-out pairs "
               "(chance 50%)." if pd.notna(m.get("heldout_nsp_accuracy", math.nan)) else "; no NSP."))


EXPERIMENT, FACTOR_EXPERIMENT = "pretrain", "pretrain_factors"
"""Where notebook 01 stores the two recipes' runs, and the factor table's."""

RECIPES = ("bert-2018", "budget", "factors", "all")
"""`python -m lib.pretraining --recipe`: Devlin et al.'s, the budget recipe (every seed of `budget_seeds`), the factor
table, or all of notebook 01's pretraining."""


def pretraining_specs(profile: Profile, recipe: str = "all", device: str = "auto") -> list[tuple[str, PretrainSpec]]:
    """(experiment, spec) of every pretraining run of notebook 01 that `recipe` names, in the notebook's order."""
    out = []
    if recipe in ("bert-2018", "all"):
        out.append((EXPERIMENT, scratch_spec(profile, device)))
    if recipe in ("budget", "all"):
        out += [(EXPERIMENT, budget_spec(profile, device, seed)) for seed in profile.pretrain.budget_seeds]
    if recipe in ("factors", "all"):
        out += [(FACTOR_EXPERIMENT, spec) for specs in factor_specs(profile, device).values() for spec in specs]
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m lib.pretraining --profile quick`: notebook 01's pretraining runs, stored like any run.

    Under `accelerate launch --num_processes N` the N processes train each together (`lib.trainer.fit`)."""
    parser = Parser(prog="python -m lib.pretraining", description=main.__doc__.split("\n")[0])
    parser.add_profile()
    parser.add_argument("--recipe", choices=RECIPES, default="all",
                        help="bert-2018: post-LN BERT with NSP on sentence pairs; budget: ModernBERT, masked LM only "
                             "on packed windows, β₂ 0.98, every pretraining seed; factors: the factor table between "
                             "them; all (default): everything notebook 01 pretrains")
    parser.add_argument("--force", action="store_true", help="train again even where the run is stored")
    args = parser.parse_args(argv)
    for experiment, spec in pretraining_specs(args.profile, args.recipe):
        stored = stored_run(experiment, spec, args.profile, args.force)
        if parallel.is_main():
            print(summary_sentence({"model": spec.model} | stored.metrics))
            print(f"run: {stored.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
