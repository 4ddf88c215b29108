"""Distillation loss, truncation ends, and the pitfalls notebook's measurements."""

from __future__ import annotations

import math

import datasets
import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification

from lib import pitfalls
from lib.classify import tokenize
from lib.distill import DistillationLoss, quantize_int8, size_on_disk_mb
from lib.store import run_id
from lib.train_config import TrainConfig

from .conftest import tiny_config
from .test_trainer import WORDS, word_tokenizer  # noqa: F401  (fixture)


def test_distillation_loss_mixes_soft_and_hard_targets(tiny_classifier):
    torch.manual_seed(0)
    ids = torch.randint(5, 100, (4, 6))
    labels = torch.tensor([0, 1, 1, 0])
    teacher = torch.randn(4, 2) * 3
    student_logits = tiny_classifier(input_ids=ids).logits.detach()
    for t, alpha in [(1.0, 0.0), (2.0, 1.0), (4.0, 0.3)]:
        out = DistillationLoss(tiny_classifier, t, alpha)(teacher_logits=teacher, labels=labels, input_ids=ids)
        p_t = F.softmax(teacher / t, -1)
        kl = (p_t * (p_t.log() - F.log_softmax(student_logits / t, -1))).sum(-1).mean() * t * t
        ce = F.cross_entropy(student_logits, labels)
        assert float(out.loss.detach()) == pytest.approx(float(alpha * kl + (1 - alpha) * ce), rel=1e-5)
        assert out.logs["soft_loss"] == pytest.approx(float(kl), rel=1e-5)
    # a student that already equals the teacher has zero soft loss
    same = DistillationLoss(tiny_classifier, 2.0, 1.0)(
        teacher_logits=student_logits.detach(), labels=labels, input_ids=ids
    )
    assert float(same.loss.detach()) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        DistillationLoss(tiny_classifier, 0.0, 0.5)


def test_int8_quantisation_shrinks_the_linear_layers():
    torch.manual_seed(0)
    big = BertForSequenceClassification(
        BertConfig(**{**tiny_config().to_dict(), "hidden_size": 64, "intermediate_size": 256})
    )
    q = quantize_int8(big)
    assert size_on_disk_mb(q) < 0.6 * size_on_disk_mb(big)
    ids = torch.randint(5, 100, (2, 8))
    assert torch.allclose(q(input_ids=ids).logits, big.eval()(input_ids=ids).logits, atol=0.05)


def test_truncation_keeps_the_right_ends(word_tokenizer):  # noqa: F811
    text = " ".join(WORDS)  # 12 words, all distinct
    dsd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": [text, "good film"], "label": [0, 1]})})
    ids = {t: tokenize(dsd, word_tokenizer, 10, t)["train"]["input_ids"] for t in ("head", "tail", "head+tail")}
    words = {t: word_tokenizer.convert_ids_to_tokens(v[0]) for t, v in ids.items()}
    assert all(len(w) == 10 and w[0] == "[CLS]" and w[-1] == "[SEP]" for w in words.values())
    assert words["head"][1:-1] == WORDS[:8] and words["tail"][1:-1] == WORDS[-8:]
    assert words["head+tail"][1:-1] == WORDS[:2] + WORDS[-6:]  # a quarter of the budget from the start
    assert all(v[1] == ids["head"][1] for v in ids.values())  # short texts are untouched
    with pytest.raises(ValueError, match="truncation"):
        TrainConfig(truncation="middle")


def test_new_config_fields_at_their_default_keep_old_run_ids():
    old = {"data": "x", "train": {"seed": 0, "lr": 1e-4}}
    assert run_id(old) == run_id({"data": "x", "train": {"seed": 0, "lr": 1e-4, "truncation": "head"}})
    assert run_id(old) != run_id({"data": "x", "train": {"seed": 0, "lr": 1e-4, "truncation": "tail"}})


def test_the_sketch_is_blind_to_word_order_and_bert_is_not(tiny_classifier):
    torch.manual_seed(0)
    blog = pitfalls.BlogBert(100, d_model=32, heads=2, layers=1).eval()
    ids = torch.tensor([[2, 11, 12, 13, 14, 15, 16, 3]])
    assert pitfalls.order_sensitivity(lambda x: blog(x), ids) < 1e-5
    tiny_classifier.eval()  # a random tiny classifier's logits barely move at all; its [CLS] state shows the order
    assert pitfalls.order_sensitivity(lambda x: tiny_classifier.bert(input_ids=x).last_hidden_state[:, 0], ids) > 1e-4


def test_wrong_mlm_loss_is_nan_on_negative_logits_and_ignores_other_words():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-0.5, 1.0, 3.0]], requires_grad=True)
    targets = torch.tensor([0, 0])
    wrong = pitfalls.mlm_loss_wrong(logits, targets)
    assert wrong[0].item() == pytest.approx(-math.log(2.0)) and torch.isnan(wrong[1])
    wrong[0].backward()
    assert logits.grad[0, 1:].abs().sum() == 0  # no push on the wrong words
    right = pitfalls.mlm_loss_right(logits.detach(), targets)
    assert right[0].item() == pytest.approx(-torch.log_softmax(logits.detach()[0], -1)[0].item())


def test_blog_groups_leave_embeddings_and_pooler_out(tiny_classifier):
    from lib.optim import OptimConfigError, check_groups

    groups = pitfalls.blog_layerwise_groups(tiny_classifier, 1e-3, 0.9, 1e-2)
    with pytest.raises(OptimConfigError, match="no group"):
        check_groups(tiny_classifier, groups)
    grouped = {id(p) for g in groups for p in g["params"]}
    left_out = {n for n, p in tiny_classifier.named_parameters() if id(p) not in grouped}
    assert left_out and all(n.startswith(("bert.embeddings.", "bert.pooler.")) for n in left_out)


def test_a_student_keeps_its_teachers_even_layers_and_trains_like_any_model():
    """DistilBERT's initialisation: embeddings and layers 0, 2 of 4, renumbered; every parameter in one group."""
    import copy

    from lib.models import every_other_layer
    from lib.optim import param_groups

    torch.manual_seed(0)
    teacher = BertForSequenceClassification(tiny_config(layers=4))
    student = every_other_layer(copy.deepcopy(teacher))
    assert student.config.num_hidden_layers == len(student.bert.encoder.layer) == 2
    for mine, theirs in ((0, 0), (1, 2)):
        pairs = zip(student.bert.encoder.layer[mine].parameters(), teacher.bert.encoder.layer[theirs].parameters())
        assert all(torch.equal(a, b) for a, b in pairs)
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    grouped = [id(p) for g in param_groups(student, lr=1.0, xi=0.5) for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in student.parameters())
    assert student(input_ids=torch.tensor([[1, 2, 3]])).logits.shape == (1, 2)


def test_transfer_sentences_are_new_fixed_and_labelled_by_the_teacher():
    from lib import distill
    from lib.finetune import FinetuneSpec
    from lib.models import minilm_dir

    spec = FinetuneSpec(max_train_examples=8, max_eval_examples=8, max_test_examples=8)
    labelled = spec.dataset()["train"]
    extra = distill.transfer_sentences(spec, 6)
    assert len(extra) == 6 and not set(extra["text"]) & set(labelled["text"])
    assert list(extra["text"]) == list(distill.transfer_sentences(spec, 6)["text"])  # a fixed draw
    dsd, logits = distill.student_data(minilm_dir(), spec, 6)
    texts, labels = list(dsd["train"]["text"]), list(dsd["train"]["label"])
    assert texts == list(labelled["text"]) + list(extra["text"]) and logits.shape == (14, 2)
    assert labels[:8] == list(labelled["label"])  # the labelled sentences keep their own labels
    assert labels[8:] == logits[8:].argmax(-1).tolist()  # the rest get the teacher's


def test_a_labels_only_student_without_transfer_is_the_plain_run():
    from lib.distill import DistillSpec
    from lib.finetune import FinetuneSpec

    student = FinetuneSpec(init="every-other-layer")
    assert DistillSpec(student, alpha=0.0, transfer=0).identity() == student.identity()
    assert DistillSpec(student, alpha=0.0, transfer=8).identity() != student.identity()
    with pytest.raises(ValueError, match="transfer"):
        DistillSpec(student, transfer=-1)
