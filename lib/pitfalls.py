"""The blog recipes' bugs, reproduced on purpose so notebook 06 can measure them.

Nothing here is used for training: every object is the *wrong* way, kept
small, next to a function that measures what goes wrong. The right ways are
`lib.optim.param_groups`, `lib.trainer.fit` and `lib.models.load_model`.
Notebook 06 calls one function per bug, in its order:

1. `clip_order_experiment` — `clip_grad_norm_` before `backward()`;
2. `groups_experiment` — layer-wise groups that leave out the embeddings and pooler;
3. `warmup_zero_schedules` (and `warmup_cost`, from notebook 03's stored runs) — `num_warmup_steps=0`;
4. `removed_apis` — imports that no longer exist;
5. `mlm_loss_experiment` — an MLM loss on raw logits;
6. `order_experiment` — a "BERT" that cannot see word order.

`PitfallsSpec` runs the measurements of 1, 2, 5 and 6 as one stored run (their last digits depend on the
machine's kernels), so notebook 06 replays them like every other run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import datasets
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from transformers import DataCollatorForLanguageModeling

from lib import stats
from lib.classify import make_loader, tokenize, train_classifier
from lib.data import DATA_VERSION, label_names, load_data
from lib.demos import lr_curves
from lib.models import load_model
from lib.optim import OptimConfigError, check_groups, param_groups, warmup_steps_for
from lib.store import Record, Run
from lib.train_config import TrainConfig


def clip_order_experiment(model: nn.Module, batch: dict, max_norm: float = 1.0) -> pd.DataFrame:
    """Article 5's order (clip, then backward) against the right one on one batch: the gradient norm each
    `clip_grad_norm_` call saw and what the optimizer would apply. The article's clip sees no gradient at all."""
    def norm() -> float:
        return float(torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None]))

    model.train()
    model.zero_grad(set_to_none=True)
    loss = model(**batch).loss
    seen_by_clip = float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=max_norm))  # the article
    loss.backward()
    applied = norm()
    before = float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=max_norm))  # after backward
    after = norm()
    model.zero_grad(set_to_none=True)
    return pd.DataFrame({"gradient L2 norm": [seen_by_clip, applied, before, after]},
                        index=["clip before backward: norm it saw", "…so the optimizer applies",
                               "clip after backward: norm before", "clip after backward: norm after"])


def warmup_zero_schedules(model: nn.Module, total: int, lr: float = 2e-5) -> dict[str, pd.DataFrame]:
    """The head's rate per step under article 1's `num_warmup_steps=0` and under a 10% warmup."""
    shapes = {"article: num_warmup_steps=0": lr_curves(model, total, lr=lr, warmup_steps=0),
              f"warmup_ratio=0.1 ({warmup_steps_for(total, 0.1)} steps)": lr_curves(model, total, lr=lr,
                                                                                  warmup_ratio=0.1)}
    return {name: curve[curve["group"] == "head"] for name, curve in shapes.items()}


def warmup_cost(runs: pd.DataFrame, lr: float) -> pd.DataFrame | None:
    """From notebook 03's stored runs (`runs`: its results table), at rate `lr` on the linear schedule: runs,
    failed runs and accuracy by warmup ratio — what leaving warmup out costs. None before notebook 03 has run."""
    if runs.empty:
        return None
    hot = runs[(runs["train.lr"] == lr) & (runs["train.schedule"] == "linear")]
    if hot.empty:
        return None
    return hot.assign(failed=stats.failed_runs(hot)).groupby("train.warmup_ratio").agg(
        runs=("failed", "size"), failed=("failed", "sum"), accuracy_mean=("test_accuracy", lambda a: 100 * a.mean()),
        accuracy_std=("test_accuracy", lambda a: 100 * a.std())).round(1)


def removed_apis() -> dict[str, str]:
    """What articles 1 and 5 import, tried on today's versions: code → the error it raises now."""
    errors = {}
    try:
        from transformers import AdamW  # noqa: F401  (article 1)
    except ImportError as err:
        errors["from transformers import AdamW"] = f"ImportError: {err}"
    try:
        torch.optim.lr_scheduler.WarmupLinearSchedule  # noqa: B018  (article 5)
    except AttributeError as err:
        errors["torch.optim.lr_scheduler.WarmupLinearSchedule"] = f"AttributeError: {err}"
    return errors


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


PARTS = {
    "embeddings": "bert.embeddings.",
    "encoder layer 0 (bottom)": "bert.encoder.layer.0.",
    "encoder layer 5 (top)": "bert.encoder.layer.5.",
    "pooler": "bert.pooler.",
    "classifier": "classifier.",
}


def groups_experiment(dsd: datasets.DatasetDict, steps: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """Train MiniLM `steps` steps with article 2's groups and with ours (ξ 0.95, head 1e-3); the largest
    weight change per part, and what `check_groups` says of each recipe."""
    names = list(dsd["train"].features["label"].names)
    cfg = TrainConfig(lr=1e-4, max_steps=steps, batch_size=16, eval_every=steps, progress=False, bf16=False)
    moved, verdicts = {}, {}
    for recipe in ("article 2's groups", "lib.optim.param_groups"):
        tokenizer, m = load_model("minilm-l6", label_names=names, seed=0)
        make = blog_layerwise_groups if recipe.startswith("article") else param_groups
        groups = make(m, lr=1e-4, xi=0.95, head_lr=1e-3)
        try:
            check_groups(m, groups)
            verdicts[recipe] = "check_groups passes"
        except OptimConfigError as err:
            verdicts[recipe] = f"check_groups refuses them — {str(err)[:160]}…"
        before = {k: v.detach().clone() for k, v in m.named_parameters()}
        train_classifier(m, tokenizer, dsd, cfg, groups=groups)
        moved[recipe] = {part: max_change(before, m, prefix) for part, prefix in PARTS.items()}
    return pd.DataFrame(moved).rename_axis(f"largest |Δ weight| after {steps} steps"), verdicts


MLM_KEPT = ["NaN share of -log(raw logit)", "cross-entropy", "gradient share on wrong words (wrong loss)",
            "gradient share on wrong words (cross-entropy)"]
"""The measurements of `mlm_loss_experiment` that `results/pitfalls.csv` keeps."""


def mlm_loss_experiment(texts: list[str], seed: int = 0) -> dict[str, float]:
    """Article 4's −log(raw logit) against cross-entropy on MiniLM's (new, random) MLM head over masked
    tokens of `texts`: how often it is NaN, and what share of its gradient reaches the wrong words."""
    torch.manual_seed(seed)
    tokenizer, mlm = load_model("minilm-l6", "pretraining", seed=seed)
    enc = tokenizer(texts, truncation=True, max_length=64)
    batch = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)(
        [{"input_ids": i} for i in enc["input_ids"]]
    )
    with torch.no_grad():
        mask = (batch["input_ids"] != tokenizer.pad_token_id).long()
        scores = mlm(input_ids=batch["input_ids"], attention_mask=mask).prediction_logits
    at = batch["labels"] != -100
    z, y = scores[at].float(), batch["labels"][at]
    wrong, right = mlm_loss_wrong(z, y), mlm_loss_right(z, y)
    finite = torch.isfinite(wrong)
    return {
        "masked tokens": int(at.sum()),
        "NaN share of -log(raw logit)": float((~finite).float().mean()),
        "mean -log(raw logit) where defined": float(wrong[finite].mean()),
        "cross-entropy": float(right.mean()),
        "vocabulary size": float(z.shape[-1]),
        "gradient share on wrong words (wrong loss)": _wrong_word_share(mlm_loss_wrong, z[finite], y[finite]),
        "gradient share on wrong words (cross-entropy)": _wrong_word_share(mlm_loss_right, z[finite], y[finite]),
    }


def _wrong_word_share(loss_fn, logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of |∂loss/∂logits| that lands on words other than the right one."""
    z = logits.clone().requires_grad_(True)
    loss_fn(z, targets).mean().backward()
    others = torch.ones_like(z, dtype=torch.bool).scatter_(1, targets[:, None], False)
    return float(z.grad[others].abs().sum() / z.grad.abs().sum())


def order_experiment(model: nn.Module, tokenizer, num_labels: int, sentence: str) -> pd.DataFrame:
    """Article 3's sketch (`BlogBert`) against BERT: parameters, decoder share, position-table rows, and how far
    the output moves when the words of `sentence` are shuffled (0: the model cannot see word order)."""
    torch.manual_seed(0)
    blog = BlogBert(len(tokenizer), num_labels=num_labels).eval()
    model.eval()
    ids = tokenizer(sentence, return_tensors="pt")["input_ids"]

    def millions(m: nn.Module) -> float:
        return sum(p.numel() for p in m.parameters()) / 1e6

    return pd.DataFrame(
        {
            "parameters (M)": [millions(blog), millions(model)],
            "of which decoder (M)": [millions(blog.transformer.decoder), 0.0],
            "position table rows": [blog.position.num_embeddings, model.config.max_position_embeddings],
            "max |Δ logit| when the words are shuffled": [
                order_sensitivity(lambda x: blog(x), ids),
                order_sensitivity(lambda x: model(input_ids=x).logits, ids),
            ],
        },
        index=["article's sketch (lib.pitfalls.BlogBert)", "BERT (lib.models.load_model)"],
    )


ORDER_SENTENCE = "the acting is not good, and the plot is not bad either"


@dataclass
class PitfallsSpec:
    """Notebook 06's measurements as one stored run. Gradient norms and weight changes after a few steps depend on
    the machine's kernels in their last digits, so they are measured once (fp32, seed 0) and replayed like any run:
    a replay on another CPU shows the record and rewrites nothing (`FORCE = True` measures again)."""

    sentences: int = 128
    steps: int = 8
    order_sentence: str = ORDER_SENTENCE
    data_version: int = DATA_VERSION

    kind = "pitfalls"
    keeps_checkpoint = False

    def identity(self) -> dict:
        return asdict(self)

    def compute(self, profile=None, stop_on_divergence: bool = False) -> Record:
        """Bugs 1, 2, 5 and 6 on MiniLM (bugs 3 and 4 need no measurement: a schedule, an import)."""
        dsd = load_data("movie_snippets", max_train_examples=self.sentences, max_eval_examples=32, max_test_examples=64)
        names = label_names(dsd)
        tokenizer, model = load_model("minilm-l6", label_names=names, seed=0)
        order = torch.Generator().manual_seed(0)
        batch = next(iter(make_loader(tokenize(dsd, tokenizer, 128)["train"], tokenizer, 16, order, True)))
        clip = clip_order_experiment(model, batch)
        moved, verdicts = groups_experiment(dsd, self.steps)
        metrics = {
            "batch": len(batch["labels"]),
            "clip": clip.to_dict("split"),
            "moved": moved.to_dict("split") | {"index_name": moved.index.name},
            "verdicts": verdicts,
            "mlm": mlm_loss_experiment(list(dsd["train"]["text"][:16])),
            "order": order_experiment(model, tokenizer, len(names), self.order_sentence).to_dict("split"),
        }
        return Record(metrics, pd.DataFrame({"step": []}))


def stored_table(run: Run, name: str) -> pd.DataFrame:
    """One of the stored tables of a `PitfallsSpec` run: "clip", "moved" or "order"."""
    stored = run.metrics[name]
    out = pd.DataFrame(stored["data"], index=stored["index"], columns=stored["columns"])
    return out.rename_axis(stored.get("index_name"))


def measurements(run: Run) -> pd.Series:
    """The numbers `results/pitfalls.csv` keeps, one per measurement, from the stored run."""
    clip, moved, order = (stored_table(run, name) for name in ("clip", "moved", "order"))
    mlm = run.metrics["mlm"]
    shuffle = order["max |Δ logit| when the words are shuffled"]
    out = {"1 grad norm seen by clip before backward": clip.iloc[0, 0], "1 grad norm applied (unclipped)":
           clip.iloc[1, 0], "1 grad norm after clipping after backward": clip.iloc[3, 0]}
    out |= {f"2 {recipe}: {part} max change": v for recipe, col in moved.items() for part, v in col.items()}
    out |= {f"5 {k}": mlm[k] for k in MLM_KEPT}
    out |= {"6 sketch: max logit change on shuffle": shuffle.iloc[0], "6 BERT: max logit change on shuffle":
            shuffle.iloc[1]}
    return pd.Series(out, name="value").rename_axis("measurement")
