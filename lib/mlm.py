"""Masked language modelling: BERT's masking, the pretraining model with a sparse MLM head, and its evaluation.

* `PretrainingCollator` pads NSP pairs, then masks with HF's
  `DataCollatorForLanguageModeling` (15% of tokens; of those 80% → [MASK],
  10% → a random token, 10% unchanged; fresh masks every time a batch is
  drawn, i.e. dynamic masking; special and padding tokens never masked).
* `PretrainingModel` wraps `BertForPreTraining` and can compute vocabulary
  logits only at the masked positions (`sparse=True`): the same loss with
  ~15% of the output-layer FLOPs.
* `evaluate_pretraining`: held-out MLM and NSP loss and accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from transformers import DataCollatorForLanguageModeling, PreTrainedModel

from lib import parallel
from lib.memo import by_content, digest, examples_digest

MODEL_KEYS = ("input_ids", "token_type_ids", "next_sentence_label")


class PretrainingCollator:
    """Pad a list of NSP examples and mask them for MLM (dynamic: new masks per call).

    `nsp=False` drops the NSP label (MLM-only pretraining, as RoBERTa does).
    """

    def __init__(self, tokenizer, mlm_probability: float = 0.15, seed: int | None = 0, nsp: bool = True,
                 mask_replace_prob: float = 0.8, random_replace_prob: float = 0.1):
        if not 0 < mlm_probability < 1:
            raise ValueError(f"mlm_probability must lie in (0, 1), got {mlm_probability}.")
        self.nsp = nsp
        self.mlm = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability, seed=seed,
                                                   mask_replace_prob=mask_replace_prob,
                                                   random_replace_prob=random_replace_prob)

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        keys = MODEL_KEYS if self.nsp else MODEL_KEYS[:2]
        return self.mlm([{k: ex[k] for k in keys} for ex in examples])


@dataclass
class PretrainingOutput:
    loss: torch.Tensor
    logs: dict[str, float]


class PretrainingModel(nn.Module):
    """`BertForPreTraining` (or a masked LM of another block, `lib.models.BLOCKS`) with an optional sparse MLM head.

    Dense: the stock head scores every position against the whole vocabulary
    (batch × seq × V logits), and the loss ignores all but the ~15% masked.
    Sparse: gather the masked positions first, then score only those —
    identical loss, a fraction of the largest matmul in a small model.
    `logs` carries MLM/NSP loss and accuracy for the trainer's per-step log.
    """

    def __init__(self, model: PreTrainedModel, sparse: bool = True, mask_token_id: int | None = None):
        super().__init__()
        self.model, self.sparse, self.mask_token_id = model, sparse, mask_token_id

    @property
    def config(self):
        return self.model.config

    def _encode(self, input_ids, token_type_ids, attention_mask):
        """(hidden states, pooled [CLS] or None, the MLM head): BERT's `bert` + `cls` (with its NSP pooler), or a
        masked LM's encoder (`base_model`) and head (RoFormer's `cls`, RoBERTa's `lm_head`, ModernBERT's `head` +
        `decoder`): no pooler, no NSP."""
        if hasattr(self.model, "bert"):
            hidden, pooled = self.model.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                                             return_dict=False)[:2]
            return hidden, pooled, self.model.cls.predictions
        hidden = self.model.base_model(input_ids, attention_mask=attention_mask)[0]
        if hasattr(self.model, "cls"):
            return hidden, None, self.model.cls.predictions
        if hasattr(self.model, "lm_head"):
            return hidden, None, self.model.lm_head
        return hidden, None, lambda h: self.model.decoder(self.model.head(h))

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None, next_sentence_label=None):
        hidden, pooled, predictions = self._encode(input_ids, token_type_ids, attention_mask)
        masked = labels != -100
        if self.sparse:
            logits = predictions(hidden[masked])
        else:
            logits = predictions(hidden)[masked]
        targets, scores = labels[masked], logits.float()  # argmax is ~2x faster on float32 than on bf16 here
        mlm_loss = F.cross_entropy(scores, targets)
        hits = scores.argmax(-1) == targets
        logs = {"mlm_loss": mlm_loss.item(), "mlm_accuracy": hits.float().mean().item()}
        if self.mask_token_id is not None:  # where the input shows [MASK]: no copying the input token, only context
            at_mask = input_ids[masked] == self.mask_token_id
            logs |= {"mlm_mask_accuracy": hits[at_mask].float().mean().item() if at_mask.any() else 0.0,
                     "mask_tokens": int(at_mask.sum())}
        loss = mlm_loss
        if next_sentence_label is not None:
            nsp_logits = self.model.cls.seq_relationship(pooled)
            nsp_loss = F.cross_entropy(nsp_logits.float(), next_sentence_label)
            loss = loss + nsp_loss
            nsp_acc = (nsp_logits.argmax(-1) == next_sentence_label).float().mean().item()
            logs |= {"nsp_loss": nsp_loss.item(), "nsp_accuracy": nsp_acc}
        return PretrainingOutput(loss, logs | {"masked_tokens": int(masked.sum())})


def shuffle_context(batch: dict, special_ids: list[int], seed: int) -> dict:
    """The same batch with each sequence's unmasked, non-special tokens shuffled among their positions: the masked
    positions and their targets stay, the words around them are the same bag in another order. A model whose
    held-out MLM is as good here as on the real text is using word frequencies, not context (the control of
    issue 29's context measurement)."""
    out = {k: v.clone() for k, v in batch.items()}
    generator = torch.Generator().manual_seed(seed)
    ids = out["input_ids"]
    movable = (out["labels"] == -100) & ~torch.isin(ids, torch.tensor(special_ids))
    if "attention_mask" in out:
        movable &= out["attention_mask"].bool()
    for row in range(len(ids)):
        where = movable[row].nonzero().flatten()
        ids[row, where] = ids[row, where[torch.randperm(len(where), generator=generator)]]
    return out


@torch.no_grad()
def evaluate_pretraining(model: PretrainingModel, batches: list[dict]) -> dict[str, float]:
    """MLM loss/accuracy over masked positions (and accuracy at [MASK] inputs alone), NSP loss/accuracy
    over pairs, on fixed batches: each metric is averaged over its own units across batches."""
    model.eval()
    device = next(model.parameters()).device
    sums: dict[str, float] = {}
    totals: dict[str, int] = {}
    for batch in parallel.share(batches):  # several processes: each scores every N-th batch
        batch = {k: v.to(device) for k, v in batch.items()}
        logs = model(**batch).logs
        for k, v in logs.items():
            if k in ("masked_tokens", "mask_tokens"):
                continue
            weight = (logs["mask_tokens"] if k == "mlm_mask_accuracy"
                      else logs["masked_tokens"] if k.startswith("mlm") else len(batch["input_ids"]))
            sums[k] = sums.get(k, 0.0) + v * weight
            totals[k] = totals.get(k, 0) + weight
    if parallel.world_size() > 1:
        parts = parallel.gather((sums, totals))
        sums = {k: sum(p[0].get(k, 0.0) for p in parts) for k in parts[0][0]}
        totals = {k: sum(p[1].get(k, 0) for p in parts) for k in parts[0][1]}
    return {k: v / max(1, totals[k]) for k, v in sums.items()}


@by_content(lambda train, special_ids, size=None: digest(examples_digest(train), special_ids, size))
def token_counts(train: list[dict], special_ids: list[int], size: int | None = None) -> torch.Tensor:
    """How often each token id occurs in the training examples (special tokens zeroed: masking never picks them),
    over `size` ids (default: up to the largest id seen). Remembered per process by content (`lib.memo`; read
    only)."""
    size = size or 1 + max(max(ex["input_ids"]) for ex in train)
    counts = torch.zeros(size, dtype=torch.float64)
    for ex in train:
        counts += torch.bincount(torch.tensor(ex["input_ids"]), minlength=size).double()
    counts[[i for i in special_ids if i < size]] = 0
    return counts


def frequency_baselines(
    train: list[dict], eval_batches: list[dict], special_ids: list[int], mask_token_id: int
) -> dict[str, float]:
    """What a model that ignores context scores on the held-out masked tokens — the plateau MLM must leave.

    From the training pairs' token counts (special tokens excluded, as masking never picks them):
    `frequent_token_accuracy`, always guessing the most frequent token ("the"), and `unigram_loss`,
    the cross-entropy of the unigram distribution on the held-out targets (add-one smoothed over the ids up
    to the largest seen), i.e. the
    loss of the best context-free guess. Also `unigram_entropy`, the entropy of that distribution, and
    `frequent_token_mask_accuracy`, the frequent-token guess scored where the input shows [MASK] only.
    """
    counts = token_counts(train, special_ids)
    vocab = len(counts)
    targets = torch.cat([b["labels"][b["labels"] != -100] for b in eval_batches])
    at_mask = torch.cat([b["input_ids"][b["labels"] != -100] == mask_token_id for b in eval_batches])
    vocab = max(vocab, int(targets.max()) + 1)
    counts = F.pad(counts, (0, vocab - len(counts)))
    probs = counts / counts.sum()
    smoothed = (counts + 1) / (counts.sum() + vocab)
    nonzero = probs[probs > 0]
    return {
        "frequent_token_accuracy": float((targets == counts.argmax()).double().mean()),
        "frequent_token_mask_accuracy": float((targets[at_mask] == counts.argmax()).double().mean()),
        "unigram_loss": float(-smoothed[targets].log().mean()),
        "unigram_entropy": float(-(nonzero * nonzero.log()).sum()),
    }


def _bigram_key(train: list[dict], eval_batches: list[dict], special_ids: list[int], prior: float = 1.0) -> str:
    return digest(examples_digest(train), eval_batches, special_ids, prior)


@by_content(_bigram_key)
def bigram_tokens(train: list[dict], eval_batches: list[dict], special_ids: list[int],
                  prior: float = 1.0) -> pd.DataFrame:
    """The "local statistics" floor, per held-out masked token (in `token_results`' order): guess each from its two
    neighbours alone, by counts on the training examples — q(t) ∝ p(t | left)·p(t | right) / p(t), each conditional
    smoothed towards the unigram p(t) with weight `prior`; a neighbour that is special or itself masked tells nothing.
    Seconds to compute. A model has to beat this to show it uses more than the next word on either side. Columns
    `bigram_loss` (nats) and `bigram_correct`. Remembered per process by content (`lib.memo`; read only): every
    packed run of notebook 01 shares its training windows and held-out batches (~2.5 s)."""
    from scipy import sparse

    vocab = 1 + max(max(max(ex["input_ids"]) for ex in train), *(int(b["input_ids"].max()) for b in eval_batches),
                    *(int(b["labels"].max()) for b in eval_batches))
    blocked = np.zeros(vocab, dtype=bool)
    blocked[[i for i in special_ids if i < vocab]] = True
    lefts, rights = [], []
    for ex in train:
        ids = np.asarray(ex["input_ids"])
        ok = ~blocked[ids[:-1]] & ~blocked[ids[1:]]
        lefts.append(ids[:-1][ok]), rights.append(ids[1:][ok])
    a, b = np.concatenate(lefts), np.concatenate(rights)
    follows = sparse.csr_matrix((np.ones(len(a)), (a, b)), shape=(vocab, vocab))  # [left, t]
    precedes = sparse.csr_matrix((np.ones(len(a)), (b, a)), shape=(vocab, vocab))  # [right, t]
    unigram = np.bincount(np.concatenate([a, b]), minlength=vocab) + 1.0
    log_p = np.log(unigram / unigram.sum())
    losses, hits = [], []
    for batch in eval_batches:
        ids, labels = batch["input_ids"].numpy(), batch["labels"].numpy()
        rows, cols = np.nonzero(labels != -100)
        score = np.zeros((len(rows), vocab)) + log_p
        for counts, offset in ((follows, -1), (precedes, 1)):
            at = np.clip(cols + offset, 0, ids.shape[1] - 1)
            side = ids[rows, at]
            known = (cols + offset >= 0) & (cols + offset < ids.shape[1]) & ~blocked[side] & (labels[rows, at] == -100)
            dense = counts[side[known]].toarray()
            score[known] += np.log((dense + prior * np.exp(log_p)) / (dense.sum(1, keepdims=True) + prior)) - log_p
        score -= np.logaddexp.reduce(score, axis=1, keepdims=True)
        target = labels[rows, cols]
        losses.append(-score[np.arange(len(rows)), target])
        hits.append(score.argmax(1) == target)
    return pd.DataFrame({"bigram_loss": np.concatenate(losses), "bigram_correct": np.concatenate(hits)})


def bigram_baseline(train: list[dict], eval_batches: list[dict], special_ids: list[int], mask_token_id: int,
                    prior: float = 1.0) -> dict[str, float]:
    """`bigram_tokens` averaged: loss in nats, accuracy at every masked token and where the input shows [MASK]."""
    tokens = bigram_tokens(train, eval_batches, special_ids, prior)
    where = torch.cat([b["input_ids"][b["labels"] != -100] == mask_token_id for b in eval_batches]).numpy()
    return {"bigram_loss": float(tokens["bigram_loss"].mean()),
            "bigram_accuracy": float(tokens["bigram_correct"].mean()),
            "bigram_mask_accuracy": float(tokens["bigram_correct"][where].mean()) if where.any() else math.nan}


@torch.no_grad()
def token_results(model: PretrainingModel, batches: list[dict], mask_token_id: int) -> pd.DataFrame:
    """One row per held-out masked token, in batch order: which sequence (`window`), its target, whether the input
    shows [MASK] there, and the model's loss (nats) and hit. Runs scored on the same fixed batches can be compared
    token by token (McNemar), and any subset (rare tokens, [MASK] inputs) scored afterwards."""
    model.eval()
    device = next(model.parameters()).device
    parts, offset = [], 0
    for batch in batches:
        b = {k: v.to(device) for k, v in batch.items() if k != "next_sentence_label"}
        hidden, _, predictions = model._encode(b["input_ids"], b.get("token_type_ids"), b.get("attention_mask"))
        masked = b["labels"] != -100
        logits = predictions(hidden[masked]).float()
        rows = masked.nonzero()[:, 0].cpu()
        targets = b["labels"][masked]
        parts.append(pd.DataFrame({
            "window": (rows + offset).numpy(), "target": targets.cpu().numpy(),
            "at_mask": (b["input_ids"][masked] == mask_token_id).cpu().numpy(),
            "loss": F.cross_entropy(logits, targets, reduction="none").cpu().numpy(),
            "correct": (logits.argmax(-1) == targets).cpu().numpy()}))
        offset += len(batch["input_ids"])
    return pd.concat(parts, ignore_index=True)
