"""Every model name builds and runs; bad names fail fast with one clear error."""

from __future__ import annotations

import time

import pytest
import torch

from lib import models
from lib.models import ModelError


@pytest.mark.parametrize("name", ["minilm-l6", "bert-tiny", "bert-mini", "bert-small"])
@pytest.mark.parametrize("task", ["classification", "pretraining"])
def test_model_builds_and_runs_forward(name, task):
    tokenizer, model = models.load_model(name, task, num_labels=3)
    batch = tokenizer(["a first sentence", "and a second, longer sentence"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    if task == "classification":
        assert out.logits.shape == (2, 3)
    else:
        assert out.prediction_logits.shape[-1] == len(tokenizer)
        assert out.seq_relationship_logits.shape == (2, 2)


@pytest.mark.parametrize("name", ["bert-tiny-a4", "roformer-tiny", "prelnbert-tiny", "modernbert-tiny"])
def test_every_block_of_the_factor_table_pretrains_and_classifies(name):
    """Each block's masked LM goes through the workbook's pretraining wrapper (sparse head = dense head), its
    classifier takes our sentences, and `param_groups` puts every trainable parameter in exactly one group, with
    exactly the biases and norm weights undecayed."""
    from lib.mlm import PretrainingModel
    from lib.optim import param_groups

    tokenizer, model = models.load_model(name, "pretraining", seed=0)
    model.eval()
    ids = torch.randint(10, len(tokenizer), (2, 16))
    labels = torch.full_like(ids, -100)
    labels[:, [3, 9]] = ids[:, [3, 9]]
    ids[:, 3] = tokenizer.mask_token_id
    args = (ids, torch.zeros_like(ids), torch.ones_like(ids), labels)
    sparse = PretrainingModel(model, sparse=True, mask_token_id=tokenizer.mask_token_id)(*args)
    dense = PretrainingModel(model, sparse=False, mask_token_id=tokenizer.mask_token_id)(*args)
    assert sparse.loss.item() == pytest.approx(dense.loss.item(), rel=1e-5) and "nsp_loss" not in sparse.logs
    groups = param_groups(model, lr=1e-3, weight_decay=0.01, xi=0.9)
    grouped = [id(p) for g in groups for p in g["params"]]
    trainable = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    assert sorted(grouped) == sorted(trainable)
    undecayed = {trainable[id(p)] for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert undecayed == {n for n in trainable.values() if n.endswith("bias") or "norm" in n.lower().rsplit(".", 2)[-2]}
    _, classifier = models.load_model(name, num_labels=2)
    batch = tokenizer(["a first sentence", "and a second, longer one"], padding=True, return_tensors="pt")
    batch.pop("token_type_ids")
    assert classifier(**batch).logits.shape == (2, 2)


def test_shapes_match_the_names():
    _, mini = models.load_model("bert-mini")
    assert (mini.config.num_hidden_layers, mini.config.hidden_size, mini.config.num_attention_heads) == (4, 256, 4)
    _, minilm = models.load_model("minilm-l6")
    assert models.describe(minilm)["params_M"] == pytest.approx(22.7, abs=0.1)


def test_vocab_choice_for_scratch_models():
    small, _ = models.load_model("bert-tiny", vocab="news-8k")
    big, _ = models.load_model("bert-tiny", vocab="shipped")
    assert len(small) == models.NEWS_VOCAB_SIZE and len(big) == 30522
    with pytest.raises(ModelError, match="Unknown vocab"):
        models.load_model("bert-tiny", vocab="klingon")


def test_same_seed_same_init():
    _, a = models.load_model("bert-tiny", seed=3)
    _, b = models.load_model("bert-tiny", seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_local_checkpoint_round_trip(tmp_path):
    tokenizer, model = models.load_model("bert-tiny", label_names=["neg", "pos"])
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    tok2, model2 = models.load_model(str(tmp_path), label_names=["neg", "pos"])
    batch = tok2(["same input"], return_tensors="pt")
    model.eval(), model2.eval()
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, model2(**batch).logits)


def test_folder_without_config(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        models.load_model(str(tmp_path))


def test_hub_name_offline_fails_fast(offline):
    start = time.perf_counter()
    with pytest.raises(ModelError, match="Offline choices"):
        models.load_model("bert-base-uncased")
    assert time.perf_counter() - start < 5  # no retry loop against an unreachable hub


def test_bad_task_and_labels():
    with pytest.raises(ModelError, match="Unknown task"):
        models.load_model("bert-tiny", task="translation")
    with pytest.raises(ModelError, match="num_labels"):
        models.load_model("bert-tiny", num_labels=1)


def test_the_news_vocabulary_is_the_committed_file():
    """The from-scratch models' tokenizer is the versioned vocabulary, not one retrained on the fly."""
    from lib.models import NEWS_VOCAB, NEWS_VOCAB_SIZE, load_tokenizer

    committed = NEWS_VOCAB.read_text().splitlines()
    tokenizer = load_tokenizer("bert-mini")
    used = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    assert used == committed and len(committed) == NEWS_VOCAB_SIZE
    assert tokenizer.tokenize("The Senate voted") == ["the", "senate", "voted"]  # uncased, like the corpus


def test_rebuilding_the_vocabulary_writes_a_complete_file(tmp_path, monkeypatch):
    from lib import models

    monkeypatch.setattr(models, "NEWS_VOCAB", tmp_path / "vocab.txt")
    lines = models.rebuild_news_vocab().read_text().splitlines()
    assert len(lines) == models.NEWS_VOCAB_SIZE and lines[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.txt"]  # no temporary left beside it


def test_offline_a_hub_model_in_the_local_cache_loads_and_one_not_there_is_refused(tmp_path):
    """HF_HUB_OFFLINE used to refuse every hub name, even one sitting in the local Hugging Face cache."""
    import shutil
    import subprocess
    import sys

    from lib.models import minilm_dir
    from lib.paths import ROOT

    repo = tmp_path / "hub" / "models--acme--tiny-encoder"
    shutil.copytree(minilm_dir(), repo / "snapshots" / "0123abc")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    script = ("from lib.models import check_model, load_model\n"
              "tok, model = load_model('acme/tiny-encoder', label_names=['a', 'b'])\n"
              "print(type(model).__name__, model.config.id2label[1])\n"
              "try:\n    check_model('acme/not-cached')\nexcept ValueError as err:\n    print(err)\n")
    env = {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "BertForSequenceClassification b" in out.stdout
    assert "'acme/not-cached' is neither a shipped model, a local folder nor in the local Hugging Face cache" \
        in out.stdout


def test_the_budget_encoder_is_a_modernbert_over_our_vocabulary_and_fine_tunes():
    """`modernbert-tiny` (issue 29's budget recipe): masked LM for pretraining, a classifier otherwise, the news
    vocabulary's ids as its special tokens; it trains through the workbook's trainer with ModernBERT's layer names."""
    from transformers import ModernBertForMaskedLM, ModernBertForSequenceClassification

    from lib.finetune import FinetuneSpec
    from lib.train_config import TrainConfig

    tokenizer, mlm = models.load_model("modernbert-tiny", "pretraining")
    assert isinstance(mlm, ModernBertForMaskedLM) and mlm.config.vocab_size == len(tokenizer) == models.NEWS_VOCAB_SIZE
    assert (mlm.config.pad_token_id, mlm.config.cls_token_id, mlm.config.sep_token_id) == (
        tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id)
    spec = FinetuneSpec(model="modernbert-tiny", max_train_examples=64, max_eval_examples=32, max_test_examples=32,
                        train=TrainConfig(lr=1e-3, epochs=3, batch_size=16, progress=False, bf16=False))
    _, classifier = models.load_model("modernbert-tiny", label_names=["negative", "positive"])
    assert isinstance(classifier, ModernBertForSequenceClassification)
    record = spec.compute()
    loss = record.history["loss"].dropna()
    assert record.metrics["steps"] == 12 and loss.tail(3).mean() < loss.head(3).mean()


def test_reinitialising_a_part_draws_only_that_part_afresh_and_the_seed_fixes_it(tmp_path):
    """`init="reinit-head"` / `"reinit-embeddings"`: the pretrained weights with BERT's pooler or the embeddings drawn
    again by the model's own initialiser (transformers would skip tensors it loaded), everything else as saved."""
    tokenizer, model = models.load_model("bert-tiny", seed=1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)  # "pretrained": far from any fresh draw
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    saved = dict(models.load_model(str(tmp_path), seed=0)[1].named_parameters())
    for part, prefix in (("head", "bert.pooler."), ("embeddings", "bert.embeddings.")):
        fresh = dict(models.load_model(str(tmp_path), seed=0, init=f"reinit-{part}")[1].named_parameters())
        again = dict(models.load_model(str(tmp_path), seed=0, init=f"reinit-{part}")[1].named_parameters())
        changed = {n for n in saved if not torch.equal(saved[n], fresh[n])}
        assert changed == {n for n in saved if n.startswith(prefix)}
        assert all(torch.equal(fresh[n], again[n]) for n in fresh)
    encoder_only = models.load_model("modernbert-tiny", "pretraining")[1].model  # no pooler, no prediction head
    with pytest.raises(models.ModelError, match="no head"):
        models.reinitialise(encoder_only, "head")


def test_minilm_first_two_layers_are_minilms_own_and_its_random_twin_has_the_same_shape():
    """`minilm-l6-first2` (notebook 01's positive control in quick): MiniLM-L6's embeddings and layers 0 and 1,
    weight for weight, with the top four gone; from random weights, the same two-layer shape drawn afresh."""
    from lib.optim import param_groups

    full = models.load_model("minilm-l6", label_names=["a", "b"])[1]
    kept = models.load_model("minilm-l6-first2", label_names=["a", "b"])[1]
    fresh = models.load_model("minilm-l6-first2", label_names=["a", "b"], init="random")[1]
    assert kept.config.num_hidden_layers == len(kept.bert.encoder.layer) == 2 == len(fresh.bert.encoder.layer)
    theirs = dict(full.named_parameters())
    mine = dict(kept.named_parameters())
    assert all(torch.equal(p, theirs[n]) for n, p in mine.items() if not n.startswith("classifier"))
    assert not any(n.startswith("bert.encoder.layer.2.") for n in mine)
    assert not torch.equal(fresh.bert.encoder.layer[0].attention.self.query.weight,
                           kept.bert.encoder.layer[0].attention.self.query.weight)
    grouped = [id(p) for g in param_groups(kept, lr=1.0, xi=0.5) for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in kept.parameters())
