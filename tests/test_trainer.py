"""The training loop: clipping, early stopping, learning, determinism, NaN."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, pre_tokenizers
from tokenizers import models as tok_models
from transformers import BertForSequenceClassification, PreTrainedTokenizerFast

from lib.classify import train_classifier
from lib.train_config import TrainConfig
from lib.trainer import TrainingDiverged, fit

from .conftest import tiny_config

WORDS = ["good", "great", "fine", "bad", "awful", "poor", "the", "film", "was", "plot", "quite", "really"]


@pytest.fixture(scope="module")
def word_tokenizer():
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS)}
    tok = Tokenizer(tok_models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    from tokenizers.processors import TemplateProcessing

    tok.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def toy_sentiment(n: int, seed: int) -> datasets.Dataset:
    """Sentences whose label is decided by one sentiment word among fillers."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        y = int(rng.integers(2))
        word = rng.choice(WORDS[:3] if y else WORDS[3:6])
        filler = rng.choice(WORDS[6:], size=int(rng.integers(2, 8))).tolist()
        filler.insert(int(rng.integers(len(filler) + 1)), str(word))
        texts.append(" ".join(filler))
        labels.append(y)
    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    return datasets.Dataset.from_dict({"text": texts, "label": labels}, features=feats)


@pytest.fixture(scope="module")
def toy():
    return datasets.DatasetDict(
        {"train": toy_sentiment(256, 0), "validation": toy_sentiment(64, 1), "test": toy_sentiment(64, 2)}
    )


def _model(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(tiny_config(vocab=len(WORDS) + 5))


FAST = dict(lr=3e-3, epochs=4, batch_size=16, eval_every=8, progress=False, warmup_ratio=0.1)


def test_loss_falls_and_it_learns(toy, word_tokenizer):
    res = train_classifier(_model(), word_tokenizer, toy, TrainConfig(**(FAST | {"epochs": 8}), patience=None))
    loss = res.history["loss"]
    assert loss.iloc[-10:].mean() < 0.5 * loss.iloc[:5].mean()
    assert res.metrics["test_accuracy"] > 0.9
    assert res.confusion.sum() == 64 and len(res.predictions) == 64


def test_same_seed_same_numbers(toy, word_tokenizer):
    a = train_classifier(_model(), word_tokenizer, toy, TrainConfig(**FAST, max_steps=12))
    b = train_classifier(_model(), word_tokenizer, toy, TrainConfig(**FAST, max_steps=12))
    keep = ["test_accuracy", "test_macro_f1", "test_loss", "best_step"]
    assert {k: a.metrics[k] for k in keep} == {k: b.metrics[k] for k in keep}
    assert a.history["loss"].tolist() == b.history["loss"].tolist()
    c = train_classifier(_model(), word_tokenizer, toy, TrainConfig(**(FAST | {"seed": 1}), max_steps=12))
    assert c.history["loss"].tolist() != a.history["loss"].tolist()


def test_per_step_log_has_every_group_lr_and_grad_norm(toy, word_tokenizer):
    res = train_classifier(_model(), word_tokenizer, toy, TrainConfig(**FAST, max_steps=10, xi=0.5))
    h = res.history
    assert {"lr/embeddings", "lr/layer.0", "lr/layer.1", "lr/head", "grad_norm", "loss", "tokens"} <= set(h.columns)
    assert len(h) == 10 and h["step"].tolist() == list(range(10))
    assert (h["lr/layer.0"] / h["lr/layer.1"]).dropna().iloc[-1] == pytest.approx(0.5)


def test_update_sizes_are_what_each_step_changed(toy, word_tokenizer):
    """`update/<group>` (logged for the first EARLY_STEPS steps, notebook 03's figure) is the norm of the change
    each optimizer step made to that group's weights, measured here from snapshots between steps."""
    from lib.classify import epoch_loaders, tokenize
    from lib.optim import param_groups
    from lib.probes import EARLY_STEPS

    model, cfg = _model(), TrainConfig(**FAST, max_steps=EARLY_STEPS + 3, xi=0.5)
    by_name: dict[str, list[torch.Tensor]] = {}
    for g in param_groups(model, cfg.lr, cfg.weight_decay, cfg.xi):  # decay and no-decay parts share a name
        by_name.setdefault(g["name"], []).extend(g["params"])
    snap = lambda: {n: [p.detach().clone() for p in ps] for n, ps in by_name.items()}  # noqa: E731
    last, seen = [snap()], []

    def on_step(row: dict) -> None:
        now = snap()
        moved = {n: float(sum(((a - b) ** 2).sum() for a, b in zip(now[n], last[0][n]))) ** 0.5 for n in now}
        seen.append((row, moved))
        last[0] = now

    tok = tokenize(toy, word_tokenizer, cfg.max_length)
    fit(model, epoch_loaders(tok["train"], word_tokenizer, cfg), 16, None, cfg, on_step=on_step)
    assert len(seen) == EARLY_STEPS + 3
    for row, moved in seen[:EARLY_STEPS]:
        assert set(moved) == {k.removeprefix("update/") for k in row if k.startswith("update/")}
        for name, size in moved.items():  # step 0 moves nothing: linear warmup starts at lr 0
            assert row[f"update/{name}"] == pytest.approx(size, rel=1e-4), (row["step"], name)
    assert all(size > 0 for _, moved in seen[1:EARLY_STEPS] for size in moved.values())
    assert not any(k.startswith("update/") for row, _ in seen[EARLY_STEPS:] for k in row)


def test_clipping_clips_after_backward(toy, word_tokenizer, monkeypatch):
    """At every optimizer step the gradient it sees has norm ≤ max_grad_norm."""
    seen = []
    original = torch.optim.AdamW.step

    def spy(self, *a, **k):
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        seen.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        return original(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    res = train_classifier(_model(), word_tokenizer, toy, TrainConfig(**FAST, max_steps=8, max_grad_norm=0.01))
    assert len(seen) == 8
    assert max(seen) <= 0.01 * 1.0001
    assert res.history["grad_norm"].min() > 0.01  # the logged (pre-clip) norms were larger: clipping did act


def test_early_stopping_restores_the_best_weights(tiny_classifier):
    """Validation peaks at the 2nd evaluation; the model must end with those weights."""
    scores = iter([0.5, 0.9, 0.6, 0.55, 0.5, 0.4])
    snapshots = []

    def evaluate(model):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"accuracy": next(scores)}

    def batches(epoch):
        g = torch.Generator().manual_seed(epoch)
        for _ in range(4):
            yield {
                "input_ids": torch.randint(5, 100, (8, 12), generator=g),
                "labels": torch.randint(0, 2, (8,), generator=g),
            }

    cfg = TrainConfig(lr=1e-2, epochs=10, eval_every=2, patience=3, progress=False, warmup_ratio=0.0)
    res = fit(tiny_classifier, batches, 4, evaluate, cfg)
    assert res.stopped_early and res.best_step == 4 and res.steps == 10
    final = tiny_classifier.state_dict()
    assert all(torch.equal(final[k], snapshots[1][k]) for k in final)
    assert not all(torch.equal(final[k], snapshots[-1][k]) for k in final)


def test_gradient_accumulation_counts_optimizer_steps(toy, word_tokenizer):
    cfg = TrainConfig(**(FAST | {"batch_size": 8, "epochs": 1}), grad_accum=4)
    res = train_classifier(_model(), word_tokenizer, toy, cfg)
    assert res.metrics["steps"] == 256 // 8 // 4


class NaNModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.config = tiny_config(layers=1)
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return type("Out", (), {"loss": self.w * float("nan")})()


def test_nan_loss_raises_a_clear_error():
    cfg = TrainConfig(progress=False, max_steps=3)
    with pytest.raises(TrainingDiverged, match="became nan at step 0.*Lower the learning rate"):
        fit(NaNModel(), lambda epoch: [{"x": torch.zeros(1)}] * 3, 3, None, cfg)


@pytest.mark.parametrize(
    "bad", [dict(batch_size=0), dict(epochs=0), dict(max_grad_norm=-1.0), dict(grad_accum=0), dict(max_length=2)]
)
def test_impossible_train_config(bad):
    with pytest.raises(ValueError, match="Impossible TrainConfig"):
        TrainConfig(**bad)


def test_label_count_mismatch(toy, word_tokenizer):
    model = BertForSequenceClassification(tiny_config(num_labels=3, vocab=len(WORDS) + 5))
    with pytest.raises(ValueError, match="3 outputs but the data has 2 classes"):
        train_classifier(model, word_tokenizer, toy, TrainConfig(**FAST))


def test_predict_returns_the_splits_own_order(toy, word_tokenizer):
    """predict batches length-sorted examples; its outputs must still line up with the split."""
    from lib.classify import predict, tokenize

    model = _model()
    tok = tokenize(toy, word_tokenizer, 32)["test"]
    logits, labels, _ = predict(model, tok, word_tokenizer, batch_size=8)
    assert labels.tolist() == list(toy["test"]["label"])
    model.eval()
    with torch.no_grad():
        for i in (0, 7, 33, 63):  # one example at a time, no padding at all
            ids = torch.tensor([tok[i]["input_ids"]])
            ref = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].numpy()
            np.testing.assert_allclose(logits[i], ref, atol=1e-5)


def test_weight_norm_log_sees_decoupled_decay_exactly(tiny_classifier):
    """With zero gradients AdamW only decays: matrices shrink by exactly (1 − lr·λ), biases and LayerNorm stay."""
    from lib.optim import build_optimizer, param_groups
    from lib.probes import WeightStats

    lr, wd = 0.1, 0.5
    groups = param_groups(tiny_classifier, lr=lr, weight_decay=wd)
    stats = WeightStats(groups)
    before = stats()
    opt = build_optimizer(groups, "adamw")
    for p in tiny_classifier.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    after = stats()
    assert after["norm/matrices"] == pytest.approx(before["norm/matrices"] * (1 - lr * wd), rel=1e-5)
    assert after["norm/bias_and_norm"] == pytest.approx(before["norm/bias_and_norm"], rel=1e-6)
    assert before["norm/moved"] == 0 and after["norm/moved"] == pytest.approx(
        lr * wd * before["norm/matrices"], rel=1e-4
    )


def test_runs_log_weight_norms_and_test_majority(toy, word_tokenizer):
    r = train_classifier(_model(), word_tokenizer, toy, TrainConfig(**FAST))
    h = r.history.dropna(subset=["norm/matrices"])
    assert h["step"].iloc[0] == 0 and len(h) >= 2 and (h["norm/moved"].iloc[1:] > 0).all()
    labels = np.array(toy["test"]["label"])
    assert r.metrics["test_majority"] == pytest.approx(np.bincount(labels).max() / len(labels))
