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

MODEL_KEYS = ("input_ids", "token_type_ids", "next_sentence_label")


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
        logs = {"mlm_loss": mlm_loss.item(), "mlm_accuracy": (logits.argmax(-1) == targets).float().mean().item()}
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
