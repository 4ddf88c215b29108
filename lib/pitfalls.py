"""The blog recipes' bugs, reproduced on purpose so notebook 06 can measure them.

Nothing here is used for training: every object is the *wrong* way, kept
small, next to a function that measures what goes wrong. The right ways are
`lib.optim.param_groups`, `lib.trainer.fit` and `lib.models.load_model`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def blog_layerwise_groups(model: nn.Module, lr: float, xi: float, head_lr: float) -> list[dict]:
    """Article 2's layer-wise groups: `encoder.layer[i]` and the classifier, nothing else.

    The embeddings and the pooler are in no group, so the optimizer never
    updates them (`lib.optim.check_groups` refuses these groups).
    """
    layers = model.bert.encoder.layer
    groups = [
        {"params": list(layer.parameters()), "lr": lr * xi ** (len(layers) - 1 - i), "name": f"layer.{i}"}
        for i, layer in enumerate(layers)
    ]
    return groups + [{"params": list(model.classifier.parameters()), "lr": head_lr, "name": "classifier"}]


def max_change(before: dict[str, torch.Tensor], model: nn.Module, prefix: str) -> float:
    """Largest absolute change of any parameter whose name starts with `prefix`."""
    now = dict(model.named_parameters())
    return max(float((now[k].detach() - v).abs().max()) for k, v in before.items() if k.startswith(prefix))


def mlm_loss_wrong(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Article 4's MLM "loss": −log of the raw logit of the right word.

    Raw logits are not probabilities: negative ones give NaN, and pushing one
    logit up says nothing about the other 30,521 words (no normalisation).
    """
    return -torch.log(logits.gather(-1, targets[:, None]).squeeze(-1))


def mlm_loss_right(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy: −log softmax(logits)[target], what BERT and HF compute."""
    return F.cross_entropy(logits, targets, reduction="none")


class BlogBert(nn.Module):
    """Article 3's "BERT" sketch, faithfully broken — for measuring, never for use.

    * `nn.Transformer` is an encoder-*decoder* (machine translation); BERT is
      an encoder only. The decoder here is fed the input again.
    * Position embeddings are looked up by *token id*, not by position: the
      table has a row per word (vocab × d instead of max_len × d), and a word
      gets the same "position" wherever it stands.
    * Adaptive max pooling over the sequence, then a linear layer.

    Self-attention without positional information is permutation-equivariant
    and max pooling is permutation-invariant, so this model cannot tell
    "not good, bad" from "bad, not good": it is a bag of words.
    """

    def __init__(self, vocab_size: int, d_model: int = 128, heads: int = 4, layers: int = 2, num_labels: int = 2):
        super().__init__()
        self.token = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(vocab_size, d_model)  # the bug: sized and indexed by vocabulary
        self.transformer = nn.Transformer(d_model, heads, layers, layers, dim_feedforward=4 * d_model, batch_first=True)
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.out = nn.Linear(d_model, num_labels)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.token(input_ids) + self.position(input_ids)  # the bug: position looked up by token id
        h = self.transformer(x, x)
        return self.out(self.pool(h.transpose(1, 2)).squeeze(-1))


@torch.no_grad()
def order_sensitivity(logits_of, input_ids: torch.Tensor, seed: int = 0) -> float:
    """Largest change of the output when the words between [CLS] and [SEP] are shuffled.

    `logits_of(ids)` maps a (1, n) id tensor to logits. 0 means the model
    cannot see word order at all.
    """
    g = torch.Generator().manual_seed(seed)
    inner = input_ids[0, 1:-1]
    shuffled = torch.cat([input_ids[0, :1], inner[torch.randperm(len(inner), generator=g)], input_ids[0, -1:]])[None]
    return float((logits_of(input_ids) - logits_of(shuffled)).abs().max())
