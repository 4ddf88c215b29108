"""MLM masking statistics, NSP pairs, the sparse head, and a checkpoint that fine-tunes."""

from __future__ import annotations

import pytest
import torch

from lib import mlm, nsp, store
from lib import pretraining as pt
from lib.models import load_model, load_tokenizer
from lib.trainer import TrainConfig


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("bert-tiny")  # the 8k news vocabulary


@pytest.fixture(scope="module")
def docs():
    from lib.data import load_news_corpus

    return list(load_news_corpus()["validation"]["sentences"])[:60]


@pytest.fixture(scope="module")
def examples(docs, tokenizer):
    return nsp.nsp_examples(docs, tokenizer, max_seq_len=64, seed=0)


def test_masking_fractions_over_50k_tokens(examples, tokenizer):
    collate = mlm.PretrainingCollator(tokenizer, seed=0)
    special = set(tokenizer.all_special_ids)
    chosen = candidates = as_mask = as_random = as_kept = 0
    repeats = 0
    while candidates < 50_000:
        repeats += 1
        for i in range(0, len(examples), 64):
            chunk = examples[i : i + 64]
            batch = collate(chunk)
            originals = torch.full_like(batch["input_ids"], tokenizer.pad_token_id)
            for r, ex in enumerate(chunk):
                originals[r, : len(ex["input_ids"])] = torch.tensor(ex["input_ids"])
            maskable = ~torch.isin(originals, torch.tensor(sorted(special)))
            picked = batch["labels"] != -100
            assert not (picked & ~maskable).any(), "a special or padding token was masked"
            assert torch.equal(batch["labels"][picked], originals[picked])
            candidates += int(maskable.sum())
            chosen += int(picked.sum())
            seen = batch["input_ids"][picked]
            as_mask += int((seen == tokenizer.mask_token_id).sum())
            as_kept += int((seen == originals[picked]).sum())
        as_random = chosen - as_mask - as_kept
    assert chosen / candidates == pytest.approx(0.15, abs=0.005)
    assert as_mask / chosen == pytest.approx(0.8, abs=0.01)
    # a "random" replacement can draw the original token (1 in 8k): it then counts as kept
    assert as_random / chosen == pytest.approx(0.1, abs=0.01)
    assert as_kept / chosen == pytest.approx(0.1, abs=0.01)


def test_nsp_labels_balanced_and_pairs_honest(examples, docs):
    labels = [ex["next_sentence_label"] for ex in examples]
    assert 0.4 < sum(labels) / len(labels) < 0.6
    for ex in examples:
        if ex["next_sentence_label"] == nsp.IS_NEXT:
            assert ex["a_doc"] == ex["b_doc"]
            assert ex["b_span"][0] == ex["a_span"][1] + 1  # B starts right after A ends
        else:
            assert ex["a_doc"] != ex["b_doc"]
        assert len(ex["input_ids"]) <= 64 and len(ex["input_ids"]) == len(ex["token_type_ids"])
        n_a = ex["token_type_ids"].index(1)
        assert ex["input_ids"][n_a - 1] == ex["input_ids"][-1]  # [SEP] ends both segments


def test_collator_keeps_segments_and_nsp_label(examples, tokenizer):
    batch = mlm.PretrainingCollator(tokenizer, seed=0)(examples[:8])
    assert {"input_ids", "token_type_ids", "attention_mask", "labels", "next_sentence_label"} <= set(batch)
    assert batch["token_type_ids"].max() == 1
    assert "next_sentence_label" not in mlm.PretrainingCollator(tokenizer, seed=0, nsp=False)(examples[:8])


def test_sparse_loss_equals_dense_loss(examples, tokenizer):
    _, model = load_model("bert-tiny", "pretraining", seed=0)
    model.eval()
    batch = mlm.PretrainingCollator(tokenizer, seed=0)(examples[:16])
    dense = mlm.PretrainingModel(model, sparse=False)(**batch)
    sparse = mlm.PretrainingModel(model, sparse=True)(**batch)
    assert sparse.loss.item() == pytest.approx(dense.loss.item(), rel=1e-5)
    stock = model(**{k: v for k, v in batch.items()}).loss  # HF's own dense head and loss
    assert sparse.loss.item() == pytest.approx(stock.item(), rel=1e-5)


def test_pretraining_loss_falls_and_checkpoint_fine_tunes(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "CHECKPOINT_DIR", tmp_path / "ckpt")
    spec = pt.PretrainSpec(
        model="bert-tiny",
        max_seq_len=32,
        max_documents=30,
        eval_pairs=32,
        train=TrainConfig(
            lr=2e-3,
            warmup_ratio=0.1,
            max_steps=40,
            batch_size=16,
            eval_every=20,
            metric="mlm_loss",
            patience=None,
            progress=False,
        ),
    )
    run = store.run("pretrain_test", spec, profile="smoke")
    ckpt = run.checkpoint
    h = run.history
    assert h["mlm_loss"].iloc[-5:].mean() < h["mlm_loss"].iloc[:5].mean() - 0.5
    assert {"mlm_accuracy", "nsp_loss", "nsp_accuracy", "val_mlm_loss"} <= set(h.columns)
    assert (ckpt / "config.json").exists()

    from lib.experiment import FinetuneSpec

    ft = FinetuneSpec(
        model=str(ckpt),
        max_train_examples=64,
        max_eval_examples=32,
        max_test_examples=32,
        train=TrainConfig(lr=1e-3, max_steps=4, batch_size=16, progress=False),
    )
    result = store.run("pretrained_finetune_test", ft, profile="smoke")
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0 and result.metrics["steps"] == 4
    again = store.run("pretrain_test", spec, profile="smoke")
    assert again.cached  # stored run with its checkpoint: replayed, not retrained


def test_bad_inputs(tokenizer):
    with pytest.raises(ValueError, match="two non-empty documents"):
        nsp.nsp_examples([["only one document here."]], tokenizer)
    with pytest.raises(ValueError, match="mlm_probability"):
        mlm.PretrainingCollator(tokenizer, mlm_probability=1.5)
