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

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertForPreTraining, DataCollatorForLanguageModeling

from lib import parallel

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
    """`BertForPreTraining` with an optional sparse MLM head.

    Dense: the stock head scores every position against the whole vocabulary
    (batch × seq × V logits), and the loss ignores all but the ~15% masked.
    Sparse: gather the masked positions first, then score only those —
    identical loss, a fraction of the largest matmul in a small model.
    `logs` carries MLM/NSP loss and accuracy for the trainer's per-step log.
    """

    def __init__(self, model: BertForPreTraining, sparse: bool = True, mask_token_id: int | None = None):
        super().__init__()
        self.model, self.sparse, self.mask_token_id = model, sparse, mask_token_id

    @property
    def config(self):
        return self.model.config

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None, next_sentence_label=None):
        bert_out = self.model.bert(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=False
        )
        hidden, pooled = bert_out[:2]
        masked = labels != -100
        if self.sparse:
            logits = self.model.cls.predictions(hidden[masked])
        else:
            logits = self.model.cls.predictions(hidden)[masked]
        targets = labels[masked]
        mlm_loss = F.cross_entropy(logits.float(), targets)
        hits = logits.argmax(-1) == targets
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
    vocab = 1 + max(max(ex["input_ids"]) for ex in train)
    counts = torch.zeros(vocab, dtype=torch.float64)
    for ex in train:
        counts += torch.bincount(torch.tensor(ex["input_ids"]), minlength=vocab).double()
    counts[[i for i in special_ids if i < vocab]] = 0
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
