"""BERT's pretraining: masked LM + next-sentence prediction, through the same
trainer (groups, schedules, logging, results) as fine-tuning.

* `nsp_examples` builds sentence-pair examples from documents as Google's
  `create_pretraining_data.py` does: segment A is one or more consecutive
  sentences; half the time B is the true continuation (IsNext, label 0), half
  the time sentences from another document (NotNext, label 1); the pair is
  packed to `max_seq_len`, truncating the longer segment.
* `PretrainingCollator` pads, then masks with HF's
  `DataCollatorForLanguageModeling` (15% of tokens; of those 80% → [MASK],
  10% → a random token, 10% unchanged; fresh masks every time a batch is
  drawn, i.e. dynamic masking; special and padding tokens never masked).
* `PretrainingModel` wraps `BertForPreTraining` and can compute vocabulary
  logits only at the masked positions (`sparse=True`): the same loss with
  ~15% of the output-layer FLOPs.
"""
from __future__ import annotations

import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertForPreTraining, DataCollatorForLanguageModeling, PreTrainedTokenizerBase

from lib.data import DATA_VERSION, load_news_corpus
from lib.models import load_model, quiet_transformers
from lib.paths import CHECKPOINT_DIR, ROOT
from lib.results import Run, cached_run, run_id
from lib.trainer import TrainConfig, fit

IS_NEXT, NOT_NEXT = 0, 1
MODEL_KEYS = ("input_ids", "token_type_ids", "next_sentence_label")


# ------------------------------------------------------------------ NSP pairs
def _truncate_pair(a: list[int], b: list[int], max_tokens: int, rng: random.Random) -> None:
    """Trim the longer segment, from the front or the back at random (as BERT does)."""
    while len(a) + len(b) > max_tokens:
        longer = a if len(a) > len(b) else b
        del longer[0 if rng.random() < 0.5 else -1]


def nsp_examples(
    documents: list[list[str]],
    tokenizer: PreTrainedTokenizerBase,
    max_seq_len: int = 128,
    short_seq_prob: float = 0.1,
    seed: int = 0,
) -> list[dict]:
    """Sentence-pair examples with `next_sentence_label` and provenance.

    Each example also records where its segments came from (`a_doc`, `a_span`,
    `b_doc`, `b_span`: document index and sentence range) so tests can check
    that an IsNext pair is consecutive inside one document.
    """
    if max_seq_len < 8:
        raise ValueError(f"max_seq_len must be ≥ 8, got {max_seq_len}.")
    docs = [d for d in documents if d]
    if len(docs) < 2:
        raise ValueError("NSP needs at least two non-empty documents (NotNext pairs come from another document).")
    rng = random.Random(seed)
    # A "sentence" longer than a whole pair (a missed split) is cut to fit: it could never be packed anyway.
    tokenized = [[tokenizer(s, add_special_tokens=False, truncation=True, max_length=max_seq_len)["input_ids"] for s in doc] for doc in docs]
    max_tokens = max_seq_len - 3  # [CLS] A [SEP] B [SEP]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    out = []
    for d, doc in enumerate(tokenized):
        target = rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens
        chunk: list[int] = []  # sentence indices of the current chunk
        length, i = 0, 0
        while i < len(doc):
            chunk.append(i)
            length += len(doc[i])
            if (i == len(doc) - 1 or length >= target) and chunk:
                a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
                a_sents = chunk[:a_end]
                a = [t for s in a_sents for t in doc[s]]
                if len(chunk) == 1 or rng.random() < 0.5:
                    label = NOT_NEXT
                    other = rng.choice([k for k in range(len(tokenized)) if k != d])
                    start = rng.randrange(len(tokenized[other]))
                    b_sents, b = [], []
                    for s in range(start, len(tokenized[other])):
                        b_sents.append(s)
                        b += tokenized[other][s]
                        if len(b) >= target - len(a):
                            break
                    b_doc = other
                    i = chunk[a_end - 1] if len(chunk) > 1 else i  # put the unused B sentences back
                else:
                    label = IS_NEXT
                    b_sents = chunk[a_end:]
                    b = [t for s in b_sents for t in doc[s]]
                    b_doc = d
                a, b = list(a), list(b)
                _truncate_pair(a, b, max_tokens, rng)
                if a and b:
                    out.append(
                        {
                            "input_ids": [cls] + a + [sep] + b + [sep],
                            "token_type_ids": [0] * (len(a) + 2) + [1] * (len(b) + 1),
                            "next_sentence_label": label,
                            "a_doc": d,
                            "a_span": [a_sents[0], a_sents[-1]],
                            "b_doc": b_doc,
                            "b_span": [b_sents[0], b_sents[-1]],
                        }
                    )
                chunk, length = [], 0
                target = rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens
            i += 1
    return out


# ------------------------------------------------------------------- masking
class PretrainingCollator:
    """Pad a list of NSP examples and mask them for MLM (dynamic: new masks per call).

    `nsp=False` drops the NSP label (MLM-only pretraining, as RoBERTa does).
    """

    def __init__(self, tokenizer, mlm_probability: float = 0.15, seed: int | None = 0, nsp: bool = True):
        if not 0 < mlm_probability < 1:
            raise ValueError(f"mlm_probability must lie in (0, 1), got {mlm_probability}.")
        self.nsp = nsp
        self.mlm = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability, seed=seed)

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        keys = MODEL_KEYS if self.nsp else MODEL_KEYS[:2]
        return self.mlm([{k: ex[k] for k in keys} for ex in examples])


# ----------------------------------------------------------- the model wrapper
@dataclass
class PretrainingOutput:
    loss: torch.Tensor
    logs: dict[str, float]


class PretrainingModel(nn.Module):
    """`BertForPreTraining` with an optional sparse MLM head.

    Dense: the stock head scores every position against the whole vocabulary
    (batch × seq × V logits), and the loss ignores all but the ~15% masked.
    Sparse: gather the masked positions first, then score only those —
    identical loss, a fraction of the largest matmul in a small model.
    `logs` carries MLM/NSP loss and accuracy for the trainer's per-step log.
    """

    def __init__(self, model: BertForPreTraining, sparse: bool = True):
        super().__init__()
        self.model, self.sparse = model, sparse

    @property
    def config(self):
        return self.model.config

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None, next_sentence_label=None):
        hidden, pooled = self.model.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=False)[:2]
        masked = labels != -100
        if self.sparse:
            logits = self.model.cls.predictions(hidden[masked])
        else:
            logits = self.model.cls.predictions(hidden)[masked]
        targets = labels[masked]
        mlm_loss = F.cross_entropy(logits.float(), targets)
        logs = {"mlm_loss": mlm_loss.item(), "mlm_accuracy": (logits.argmax(-1) == targets).float().mean().item()}
        loss = mlm_loss
        if next_sentence_label is not None:
            nsp_logits = self.model.cls.seq_relationship(pooled)
            nsp_loss = F.cross_entropy(nsp_logits.float(), next_sentence_label)
            loss = loss + nsp_loss
            logs |= {"nsp_loss": nsp_loss.item(), "nsp_accuracy": (nsp_logits.argmax(-1) == next_sentence_label).float().mean().item()}
        return PretrainingOutput(loss, logs | {"masked_tokens": int(masked.sum())})


@torch.no_grad()
def evaluate_pretraining(model: PretrainingModel, batches: list[dict]) -> dict[str, float]:
    """MLM loss/accuracy over masked positions and NSP loss/accuracy, on fixed batches."""
    model.eval()
    device = next(model.parameters()).device
    sums: dict[str, float] = {}
    n_tokens = n_pairs = 0
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**batch)
        t, p = out.logs["masked_tokens"], len(batch["input_ids"])
        for k, v in out.logs.items():
            if k.startswith("mlm"):
                sums[k] = sums.get(k, 0.0) + v * t
            elif k.startswith("nsp"):
                sums[k] = sums.get(k, 0.0) + v * p
        n_tokens, n_pairs = n_tokens + t, n_pairs + p
    return {k: v / (n_tokens if k.startswith("mlm") else n_pairs) for k, v in sums.items()}


# ------------------------------------------------------------------- a run
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
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(lr=1e-4, weight_decay=0.01, warmup_ratio=0.06, epochs=1, metric="mlm_loss", patience=None)
    )


def pretraining_data(spec: PretrainSpec, tokenizer) -> tuple[list[dict], list[dict]]:
    """NSP examples from training documents, and held-out examples from validation documents."""
    corpus = load_news_corpus(max_documents=spec.max_documents)
    train = nsp_examples(list(corpus["train"]["sentences"]), tokenizer, spec.max_seq_len, seed=spec.train.seed)
    held_out = nsp_examples(list(corpus["validation"]["sentences"]), tokenizer, spec.max_seq_len, seed=10_000)
    return train, held_out[: spec.eval_pairs]


def checkpoint_path(spec: PretrainSpec) -> Path:
    """Where the run's weights go (git-ignored), named by the run's id; relative
    to the project root when inside it, so configs that name it stay portable."""
    path = CHECKPOINT_DIR / "pretrain" / run_id(asdict(spec))
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def run_pretraining(experiment: str, spec: PretrainSpec, profile: str = "quick", force: bool = False) -> tuple[Run, Path]:
    """Pretrain per `spec` (or load the stored run) and save a checkpoint.

    Returns the stored `Run` and the checkpoint folder, which `lib.models.load_model`
    loads by path. A stored run whose checkpoint is gone (a fresh clone) is retrained.
    """
    ckpt = checkpoint_path(spec)
    where = ckpt if ckpt.is_absolute() else ROOT / ckpt
    force = force or not (where / "config.json").exists()

    def compute():
        tokenizer, model = load_model(spec.model, "pretraining", vocab=spec.vocab, seed=spec.train.seed)
        train, held_out = pretraining_data(spec, tokenizer)
        collate = PretrainingCollator(tokenizer, spec.mlm_probability, seed=spec.train.seed, nsp=spec.nsp)
        eval_batches = [
            PretrainingCollator(tokenizer, spec.mlm_probability, seed=1234, nsp=spec.nsp)(held_out[i : i + 64])
            for i in range(0, len(held_out), 64)
        ]  # masked once: every evaluation scores the same positions
        wrapped = PretrainingModel(model, sparse=spec.sparse_head)
        bs = spec.train.batch_size

        def batches(epoch: int):
            order = list(range(len(train)))
            random.Random(spec.train.seed + epoch).shuffle(order)
            for i in range(0, len(order) - bs + 1, bs):
                yield collate([train[j] for j in order[i : i + bs]])

        fitted = fit(wrapped, batches, len(train) // bs, lambda m: evaluate_pretraining(m, eval_batches), spec.train)
        tmp = where.with_name(where.name + ".tmp")
        with quiet_transformers():
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        shutil.rmtree(where, ignore_errors=True)
        tmp.rename(where)  # a checkpoint appears whole or not at all
        # fit restored the best-evaluated weights, so their held-out metrics are already known
        metrics = {f"heldout_{k}": v for k, v in fitted.best_metrics.items()} | {
            "steps": fitted.steps,
            "train_seconds": round(fitted.seconds, 2),
            "train_pairs": len(train),
            "tokens_per_s": round(float(fitted.history["tokens"].iloc[-1]) / fitted.seconds, 1),
            "checkpoint": str(ckpt),
        }
        return metrics, fitted.history, None

    return cached_run(experiment, asdict(spec), compute, profile=profile, force=force), ckpt


def masking_demo(tokenizer, sentence: str, seed: int = 0, mlm_probability: float = 0.15) -> pd.DataFrame:
    """Which tokens of `sentence` became [MASK], a random token, or stayed: one row per token."""
    enc = tokenizer(sentence)
    batch = PretrainingCollator(tokenizer, mlm_probability, seed=seed, nsp=False)([{"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"]}])
    original = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    shown = tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())
    labels = batch["labels"][0].tolist()
    what = [
        "not chosen" if y == -100 else "[MASK]" if s == tokenizer.mask_token else "kept" if s == o else "random"
        for o, s, y in zip(original, shown, labels)
    ]
    return pd.DataFrame({"token": original, "model sees": shown, "to predict": [o if y != -100 else "" for o, y in zip(original, labels)], "what": what})


def nsp_demo(examples: list[dict], tokenizer, n: int = 4, seed: int = 0) -> pd.DataFrame:
    """A few NSP pairs as text: segment A, segment B and whether B really follows A."""
    rng = random.Random(seed)
    rows = []
    for ex in rng.sample(examples, min(n, len(examples))):
        n_a = ex["token_type_ids"].index(1)
        rows.append(
            {
                "segment A": tokenizer.decode(ex["input_ids"][1 : n_a - 1]),
                "segment B": tokenizer.decode(ex["input_ids"][n_a:-1]),
                "label": "IsNext" if ex["next_sentence_label"] == IS_NEXT else "NotNext (other document)",
            }
        )
    return pd.DataFrame(rows)


@torch.no_grad()
def fill_mask(model: BertForPreTraining, tokenizer, sentences: list[str], k: int = 5) -> pd.DataFrame:
    """Top-k predictions for the first [MASK] of each sentence, with probabilities."""
    model.eval()
    device = next(model.parameters()).device
    rows = []
    for s in sentences:
        enc = tokenizer(s, return_tensors="pt").to(device)
        pos = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero()
        if len(pos) == 0:
            raise ValueError(f"No {tokenizer.mask_token} in {s!r}.")
        probs = model(**enc).prediction_logits[0, pos[0, 0]].float().softmax(-1)
        top = probs.topk(k)
        guesses = ", ".join(f"{tokenizer.convert_ids_to_tokens(int(i))} ({p:.1%})" for p, i in zip(top.values, top.indices))
        rows.append({"sentence": s, f"top {k} predictions": guesses})
    return pd.DataFrame(rows)
