"""Classroom demonstrations: small tables that show what a BERT concept does, away from the training code.

* `masking_demo`, `nsp_demo`, `fill_mask` — notebook 01: which tokens MLM
  masks, what NSP pairs look like, what a model guesses for a [MASK].
* `lr_curves` — the rate each parameter group gets at every step of a
  schedule, without training (notebooks 02, 06).
* `llrd_conventions` — what "ξ" means in four codebases and ours (notebook 05).
* `truncation_demo` — what head / tail / head+tail keep of a long text (notebook 09).
"""

from __future__ import annotations

import random

import datasets
import pandas as pd
import torch
from torch import nn
from transformers import PreTrainedModel

from lib.classify import tokenize
from lib.mlm import PretrainingCollator
from lib.nsp import IS_NEXT
from lib.optim import build_scheduler, group_lrs, param_groups


def masking_demo(tokenizer, sentence: str, seed: int = 0, mlm_probability: float = 0.15) -> pd.DataFrame:
    """Which tokens of `sentence` became [MASK], a random token, or stayed: one row per token."""
    enc = tokenizer(sentence)
    batch = PretrainingCollator(tokenizer, mlm_probability, seed=seed, nsp=False)(
        [{"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"]}]
    )
    original = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    shown = tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())
    labels = batch["labels"][0].tolist()
    what = [
        "not chosen" if y == -100 else "[MASK]" if s == tokenizer.mask_token else "kept" if s == o else "random"
        for o, s, y in zip(original, shown, labels)
    ]
    return pd.DataFrame(
        {
            "token": original,
            "model sees": shown,
            "to predict": [o if y != -100 else "" for o, y in zip(original, labels)],
            "what": what,
        }
    )


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
def fill_mask(model: PreTrainedModel, tokenizer, sentences: list[str], k: int = 5) -> pd.DataFrame:
    """Top-k predictions for the first [MASK] of each sentence, with probabilities (`BertForPreTraining` or any
    masked LM)."""
    model.eval()
    device = next(model.parameters()).device
    rows = []
    for s in sentences:
        enc = tokenizer(s, return_tensors="pt").to(device)
        if not hasattr(model, "bert"):  # masked LMs of other blocks take no segment ids
            enc.pop("token_type_ids", None)
        pos = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero()
        if len(pos) == 0:
            raise ValueError(f"No {tokenizer.mask_token} in {s!r}.")
        with torch.no_grad():
            out = model(**enc)
        logits = out.prediction_logits if hasattr(out, "prediction_logits") else out.logits
        probs = logits[0, pos[0, 0]].float().softmax(-1)
        top = probs.topk(k)
        guesses = ", ".join(
            f"{tokenizer.convert_ids_to_tokens(int(i))} ({p:.1%})" for p, i in zip(top.values, top.indices)
        )
        rows.append({"sentence": s, f"top {k} predictions": guesses})
    return pd.DataFrame(rows)


def lr_curves(
    model: nn.Module,
    num_training_steps: int,
    lr: float = 2e-5,
    xi: float = 1.0,
    head_lr: float | None = None,
    schedule: str = "linear",
    warmup_ratio: float = 0.1,
    warmup_steps: int | None = None,
) -> pd.DataFrame:
    """The learning rate each group gets at every optimizer step, without training.

    Long format (step, group, lr) for seaborn. Step t is the rate used by the
    t-th update (0-based), i.e. read before `scheduler.step()`, as the trainer logs it.
    """
    groups = param_groups(model, lr=lr, weight_decay=0.0, xi=xi, head_lr=head_lr)
    dummy = [{"params": [torch.zeros(1, requires_grad=True)], "lr": g["lr"], "name": g["name"]} for g in groups]
    opt = torch.optim.SGD(dummy, lr=lr)
    sched = build_scheduler(opt, schedule, num_training_steps, warmup_ratio, warmup_steps)
    rows = []
    for step in range(num_training_steps):
        rows += [{"step": step, "group": n, "lr": v} for n, v in group_lrs(opt).items()]
        opt.step()
        sched.step()
    return pd.DataFrame(rows)


def llrd_conventions(num_layers: int, xi: float) -> pd.DataFrame:
    """The rate each part gets, as a multiple of the base rate, under layer-wise
    decay ξ in four codebases and ours (notebook 05; sources in docs/literature.md).

    * ours: head (pooler + classifier) and top layer at the base rate, each
      layer below ×ξ, embeddings ×ξ^L.
    * Sun et al. 2019's code: layer i gets ξ^(11−i) — 12 layers hard-coded, so
      a 6-layer model's top layer already gets ξ^6; embeddings, pooler and
      classifier keep the base rate (not decayed at all).
    * ELECTRA's code: depth counted with the head at L+2, so the top layer gets
      ξ² (one step too many) and the embeddings ξ^(L+2).
    * Zhang et al. 2021: top layer ξ, embeddings ξ^(L+1), head at the base rate.
    * transformers.Trainer: no layer-wise decay.
    """
    L = num_layers
    rows = {
        "ours (lib.optim)": (xi**L, xi ** (L - 1), 1.0, 1.0, 1.0),
        "Sun et al. 2019 code (12 layers assumed)": (1.0, xi**11, xi ** (11 - (L - 1)), 1.0, 1.0),
        "ELECTRA code": (xi ** (L + 2), xi ** (L + 1), xi**2, 1.0, 1.0),
        "Zhang et al. 2021": (xi ** (L + 1), xi**L, xi, 1.0, 1.0),
        "HF Trainer": (1.0, 1.0, 1.0, 1.0, 1.0),
    }
    cols = ["embeddings", "layer 0 (bottom)", f"layer {L - 1} (top)", "pooler", "classifier"]
    return pd.DataFrame(rows, index=cols).T


def truncation_demo(text: str, tokenizer, max_length: int) -> pd.DataFrame:
    """What each truncation keeps of `text` at `max_length` tokens ([CLS] and [SEP] included), as text."""
    one = datasets.Dataset.from_dict({"text": [text], "label": [0]})
    rows = []
    for how in ("head", "tail", "head+tail"):
        ids = tokenize(datasets.DatasetDict({"train": one}), tokenizer, max_length, how)["train"]["input_ids"][0]
        kept = tokenizer.decode(ids, skip_special_tokens=True)
        rows.append({"truncation": how, "tokens kept": len(ids), "text the model sees": kept})
    full = len(tokenizer(text)["input_ids"])
    return pd.DataFrame(rows).set_index("truncation").rename_axis(f"of {full} tokens")
