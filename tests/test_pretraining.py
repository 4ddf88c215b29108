"""MLM masking statistics, NSP pairs, the sparse head, and a checkpoint that fine-tunes."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from lib import mlm, nsp, profiles, store
from lib import pretraining as pt
from lib.models import load_model, load_tokenizer
from lib.train_config import TrainConfig

from .conftest import SMOKE


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
    run = store.run("pretrain_test", spec, profile=SMOKE)
    ckpt = run.checkpoint
    h = run.history
    assert h["mlm_loss"].iloc[-5:].mean() < h["mlm_loss"].iloc[:5].mean() - 0.5
    assert {"mlm_accuracy", "nsp_loss", "nsp_accuracy", "val_mlm_loss"} <= set(h.columns)
    assert (ckpt / "config.json").exists()

    from lib.finetune import FinetuneSpec

    ft = FinetuneSpec(
        model=str(ckpt),
        max_train_examples=64,
        max_eval_examples=32,
        max_test_examples=32,
        train=TrainConfig(lr=1e-3, max_steps=4, batch_size=16, progress=False),
    )
    result = store.run("pretrained_finetune_test", ft, profile=SMOKE)
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0 and result.metrics["steps"] == 4
    again = store.run("pretrain_test", spec, profile=SMOKE)
    assert again.cached  # stored run with its checkpoint: replayed, not retrained


def test_bad_inputs(tokenizer):
    with pytest.raises(ValueError, match="two non-empty documents"):
        nsp.nsp_examples([["only one document here."]], tokenizer)
    with pytest.raises(ValueError, match="mlm_probability"):
        mlm.PretrainingCollator(tokenizer, mlm_probability=1.5)


def test_batched_tokenisation_gives_the_per_sentence_ids(docs, tokenizer):
    per_sentence = [[tokenizer(s, add_special_tokens=False, truncation=True, max_length=64)["input_ids"] for s in d]
                    for d in docs[:20]]
    assert nsp.tokenize_documents(docs[:20], tokenizer, 64) == per_sentence


def test_frequency_baselines_on_a_known_corpus():
    # training tokens: 5 ×5, 6 ×3, 7 ×2 (special 1 and 2 ignored); held-out targets 5, 6, 6, 7, the last at a [MASK]
    train = [{"input_ids": [1, 5, 5, 5, 6, 2]}, {"input_ids": [1, 5, 5, 6, 6, 7, 7, 2]}]
    batch = {"input_ids": torch.tensor([[1, 5, 9, 6, 9, 2]]), "labels": torch.tensor([[-100, 5, 6, 6, 7, -100]])}
    out = mlm.frequency_baselines(train, [batch], special_ids=[1, 2], mask_token_id=9)
    assert out["frequent_token_accuracy"] == pytest.approx(1 / 4)  # always 5: right once in four
    assert out["frequent_token_mask_accuracy"] == pytest.approx(0.0)  # at [MASK] inputs the targets are 6 and 7
    vocab, n = 8, 10  # add-one smoothing over ids 0..7, the largest seen in training or as a target
    p = {5: 6 / (n + vocab), 6: 4 / (n + vocab), 7: 3 / (n + vocab)}
    expected = -(math.log(p[5]) + 2 * math.log(p[6]) + math.log(p[7])) / 4
    assert out["unigram_loss"] == pytest.approx(expected)
    q = torch.tensor([0.5, 0.3, 0.2])
    assert out["unigram_entropy"] == pytest.approx(float(-(q * q.log()).sum()))


def test_mask_accuracy_counts_only_mask_inputs(examples, tokenizer):
    _, model = load_model("bert-tiny", "pretraining", seed=0)
    wrapped = mlm.PretrainingModel(model, sparse=True, mask_token_id=tokenizer.mask_token_id)
    batches = [mlm.PretrainingCollator(tokenizer, seed=0)(examples[i : i + 16]) for i in (0, 16)]
    shown = sum(int((b["input_ids"] == tokenizer.mask_token_id).sum()) for b in batches)
    masked = sum(int((b["labels"] != -100).sum()) for b in batches)
    assert 0.7 * masked < shown < 0.9 * masked  # 80% of the chosen tokens show [MASK]
    with torch.no_grad():
        hits_at_mask = hits = 0
        for b in batches:
            pred = model(**{k: v for k, v in b.items() if k != "next_sentence_label"}).prediction_logits.argmax(-1)
            chosen = b["labels"] != -100
            hits += int((pred[chosen] == b["labels"][chosen]).sum())
            at_mask = chosen & (b["input_ids"] == tokenizer.mask_token_id)
            hits_at_mask += int((pred[at_mask] == b["labels"][at_mask]).sum())
    out = mlm.evaluate_pretraining(wrapped, batches)
    assert out["mlm_mask_accuracy"] == pytest.approx(hits_at_mask / shown, abs=1e-6)
    assert out["mlm_accuracy"] == pytest.approx(hits / masked, abs=1e-6)


def test_held_out_pairs_are_balanced_and_dropout_stays_in_the_config(tmp_path, monkeypatch, tokenizer):
    spec = pt.PretrainSpec(model="bert-tiny", max_seq_len=32, max_documents=30, eval_pairs=10, dropout=0.0)
    labels = [p["next_sentence_label"] for p in pt.pretraining_data(spec, tokenizer)[1]]
    assert len(labels) == 10 and sum(labels) == 5
    short = [p["next_sentence_label"] for p in pt.pretraining_data(
        dataclasses.replace(spec, eval_pairs=1000), tokenizer)[1]]  # the rarer label runs out first
    assert 10 < len(short) < 1000 and sum(short) == len(short) // 2 and len(short) % 2 == 0
    _, model = load_model("bert-tiny", "pretraining", seed=0)
    pt.set_dropout(model, 0.0)
    assert all(m.p == 0.0 for m in model.modules() if isinstance(m, torch.nn.Dropout))
    assert model.config.hidden_dropout_prob == 0.1  # a checkpoint fine-tunes with BERT's dropout
    with pytest.raises(ValueError, match="dropout"):
        pt.PretrainSpec(dropout=1.0)


def test_both_recipes_see_the_same_tokens_and_the_factor_table_covers_every_rate():
    """The two recipes differ in block, objective, sequences and β₂, never in tokens (steps × batch × length); every
    factor arm runs at every rate of the grid for `factor_steps`, and only the 2018 arm trains NSP."""
    for profile in map(profiles.get, ("smoke", "quick", "full")):
        p, old, new = profile.pretrain, pt.scratch_spec(profile), pt.budget_spec(profile, seed=1)
        assert (old.model, old.train.lr, old.nsp, old.packed, old.train.adam_beta2) == (
            p.scratch_model, p.scratch_lr, True, False, 0.999)
        assert (new.model, new.train.lr, new.nsp, new.packed, new.train.adam_beta2, new.train.seed) == (
            p.budget_model, p.budget_lr, False, True, 0.98, 1)
        for spec in (old, new):
            assert (spec.train.max_steps, spec.train.batch_size, spec.max_seq_len) == (p.steps, p.batch, p.seq_len)
        arms = pt.factor_specs(profile)
        assert list(arms) == list(pt.FACTORS)
        assert {c for v, r, _ in pt.FACTOR_CONTRASTS for c in (v, r)} <= set(arms)
        for arm, specs in arms.items():
            assert [s.train.lr for s in specs] == p.factor_rates
            assert {s.train.max_steps for s in specs} == {p.factor_steps}
            assert {s.nsp for s in specs} == {arm.startswith("BERT 2018")}
        every = [s for _, s in pt.pretraining_specs(profile)]
        assert len(every) == 1 + len(p.budget_seeds) + len(pt.FACTORS) * len(p.factor_rates)


def test_every_run_is_scored_on_the_same_held_out_tokens(tokenizer):
    """A packed masked-LM run and an NSP run (different held-out sets of their own) are scored on one shared set of
    masked tokens, so two runs compare token by token; the floors sit beside the model on each token."""
    rows = []
    for spec in (pt.PretrainSpec(model="bert-tiny", max_seq_len=32, max_documents=30, eval_pairs=16),
                 pt.PretrainSpec(model="modernbert-tiny", nsp=False, packed=True, max_seq_len=32, max_documents=30,
                                 eval_pairs=16)):
        tok, model = load_model(spec.model, "pretraining", seed=0)
        train, _ = pt.pretraining_data(spec, tok)
        rows.append(pt.window_tokens(mlm.PretrainingModel(model, mask_token_id=tok.mask_token_id), train, tok,
                                     pt.window_batches(spec, tok)))
    packed = spec  # the last spec: its own held-out batches are the shared windows, so it reuses them
    fixed = mlm.PretrainingCollator(tok, packed.mlm_probability, seed=1234, nsp=False)
    held_out = pt.pretraining_data(packed, tok)[1]
    own = [fixed(held_out[i : i + 64]) for i in range(0, len(held_out), 64)]
    assert all(torch.equal(x[k], y[k]) for x, y in zip(own, pt.window_batches(packed, tok)) for k in x)
    a, b = rows
    key = ["window", "target", "at_mask"]
    assert len(a) > 50 and a[key].equals(b[key]) and a["window"].max() == 15
    assert not a["frequent_correct"].equals(a["correct"])  # the model and the floor are not the same column
    assert (a["frequent_correct"] <= a["frequent"]).all()  # the most frequent token is among the 20 commonest
    m = pt.window_metrics(a)
    at = a[a["at_mask"]]
    assert m["windows_mask_tokens"] == len(at) < len(a) and m["windows_mask_accuracy"] == at["correct"].mean()
    assert m["windows_mask_rare_accuracy"] == at[~at["frequent"]]["correct"].mean()


def test_mask_only_replacement_shows_every_chosen_token_as_mask(examples, tokenizer):
    """mask_replace_prob=1 (Wettig et al. 2023): no token left unchanged or swapped, so nothing can be copied."""
    batch = mlm.PretrainingCollator(tokenizer, seed=0, mask_replace_prob=1.0, random_replace_prob=0.0)(examples[:64])
    chosen = batch["labels"] != -100
    assert chosen.sum() > 200 and (batch["input_ids"][chosen] == tokenizer.mask_token_id).all()


def test_packed_windows_are_contiguous_running_text(docs, tokenizer):
    """Each window is the next max_seq_len − 2 tokens of one document, between [CLS] and [SEP]: concatenated they
    give back each document's tokens (short tails dropped)."""
    windows = pt.packed_examples(docs[:5], tokenizer, max_seq_len=32, min_tokens=1)
    body = [w["input_ids"][1:-1] for w in windows]
    assert all(w["input_ids"][0] == tokenizer.cls_token_id and w["input_ids"][-1] == tokenizer.sep_token_id
               for w in windows)
    assert all(len(b) <= 30 for b in body) and sum(len(b) < 30 for b in body) <= 5  # a short one ends a document
    assert set(sum((w["token_type_ids"] for w in windows), [])) == {0}
    tokens = [t for doc in nsp.tokenize_documents(docs[:5], tokenizer, 32) for s in doc for t in s]
    assert [t for b in body for t in b] == tokens


def test_the_budget_recipe_pretrains_a_modernbert_without_nsp(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "CHECKPOINT_DIR", tmp_path / "ckpt")
    spec = dataclasses.replace(pt.budget_spec(SMOKE), max_documents=30, eval_pairs=32)
    assert (spec.model, spec.nsp, spec.packed, spec.train.adam_beta2) == ("modernbert-tiny", False, True, 0.98)
    run = store.run("pretrain_test", spec, profile=SMOKE)
    h = run.history
    assert h["mlm_loss"].iloc[-5:].mean() < h["mlm_loss"].iloc[:5].mean() - 0.5
    assert "nsp_loss" not in h and "heldout_nsp_accuracy" not in run.metrics
    assert {"shuffled_mlm_loss", "shuffled_mlm_mask_accuracy"} <= set(run.metrics)  # the context control
    assert "no NSP" in pt.summary_sentence({"model": spec.model} | run.metrics)
    assert len(run.metrics["fill_mask_after"]) == len(run.metrics["fill_mask_before"]) == len(pt.FILL_MASK_PROBES)
    assert run.predictions["at_mask"].sum() == run.metrics["windows_mask_tokens"]
    with pytest.raises(ValueError, match="no NSP head"):
        pt.PretrainSpec(model="modernbert-tiny")
    with pytest.raises(ValueError, match="packed windows have no sentence pairs"):
        pt.PretrainSpec(packed=True)


def test_the_context_control_moves_only_the_unmasked_words(examples, tokenizer):
    batch = mlm.PretrainingCollator(tokenizer, seed=0, nsp=False)(examples[:8])
    special = [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.mask_token_id]
    shuffled = mlm.shuffle_context(batch, special, seed=3)
    fixed = (batch["labels"] != -100) | torch.isin(batch["input_ids"], torch.tensor(special))
    assert torch.equal(shuffled["input_ids"][fixed], batch["input_ids"][fixed])
    assert torch.equal(shuffled["labels"], batch["labels"])
    for a, b in zip(shuffled["input_ids"], batch["input_ids"]):
        assert sorted(a.tolist()) == sorted(b.tolist())  # the same words, in another order
    assert not torch.equal(shuffled["input_ids"], batch["input_ids"])
    assert torch.equal(mlm.shuffle_context(batch, special, seed=3)["input_ids"], shuffled["input_ids"])


def test_the_bigram_floor_reads_both_neighbours_and_ignores_masked_ones():
    """In training 3 always sits between 4 and 5 and 6 between 7 and 8, though 6 is the commoner token: the bigram
    floor gets both held-out tokens from their neighbours; with a neighbour masked, it falls back on the other."""
    train = [{"input_ids": [1, 4, 3, 5, 2]}, {"input_ids": [1, 7, 6, 8, 6, 6, 6, 2]}]
    batch = {"input_ids": torch.tensor([[1, 4, 9, 5, 7, 9, 8, 2]]),
             "labels": torch.tensor([[-100, -100, 3, -100, -100, 6, -100, -100]])}
    out = mlm.bigram_baseline(train, [batch], special_ids=[1, 2, 9], mask_token_id=9)
    assert out["bigram_accuracy"] == out["bigram_mask_accuracy"] == 1.0
    frequent = mlm.frequency_baselines(train, [batch], special_ids=[1, 2, 9], mask_token_id=9)
    assert frequent["frequent_token_accuracy"] == 0.5 and out["bigram_loss"] < frequent["unigram_loss"]
    hidden = {"input_ids": torch.tensor([[1, 9, 9, 5, 2]]), "labels": torch.tensor([[-100, 4, 3, -100, -100]])}
    assert mlm.bigram_baseline(train, [hidden], [1, 2, 9], 9)["bigram_accuracy"] == 0.5  # 3 from its right; 4 lost
