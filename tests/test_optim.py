"""Parameter groups, exact layer-wise rates, weight-decay exclusions and schedules."""

from __future__ import annotations

import pytest
import torch
from transformers import BertForSequenceClassification

from lib.demos import llrd_conventions, lr_curves
from lib.optim import OptimConfigError, build_optimizer, build_scheduler, check_groups, param_groups

from .conftest import tiny_config


def _rates(groups):
    return {g["name"]: g["lr"] for g in groups}


def test_every_parameter_in_exactly_one_group(tiny_classifier, tiny_pretrainer):
    for model in (tiny_classifier, tiny_pretrainer):
        groups = param_groups(model, lr=1e-3, xi=0.8)
        ids = [id(p) for g in groups for p in g["params"]]
        assert len(ids) == len(set(ids))
        assert set(ids) == {id(p) for p in model.parameters()}


@pytest.mark.parametrize("layers", [2, 4, 6, 12])
def test_exact_layerwise_rates(layers):
    model = BertForSequenceClassification(tiny_config(layers=layers))
    lr, xi, head = 2e-5, 0.9, 1e-4
    rates = _rates(param_groups(model, lr=lr, xi=xi, head_lr=head))
    assert rates[f"layer.{layers - 1}"] == pytest.approx(lr)  # top layer gets the base rate
    for i in range(layers):
        assert rates[f"layer.{i}"] == pytest.approx(lr * xi ** (layers - 1 - i))
    assert rates["embeddings"] == pytest.approx(lr * xi**layers)
    assert rates["head"] == pytest.approx(head)
    groups = param_groups(model, lr=lr, xi=xi, head_lr=head)
    head_names = {n for g in groups if g["name"] == "head" for n in g["param_names"]}
    assert {"bert.pooler.dense.weight", "classifier.weight", "classifier.bias"} <= head_names
    emb_names = {n for g in groups if g["name"] == "embeddings" for n in g["param_names"]}
    assert {
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.position_embeddings.weight",
        "bert.embeddings.token_type_embeddings.weight",
        "bert.embeddings.LayerNorm.weight",
    } == emb_names - {"bert.embeddings.LayerNorm.bias"}


def test_head_lr_defaults_to_lr_and_xi_one_is_flat(tiny_classifier):
    rates = _rates(param_groups(tiny_classifier, lr=3e-5))
    assert set(rates.values()) == {3e-5}


def test_no_decay_set_is_exactly_biases_and_layernorm_weights(tiny_pretrainer):
    groups = param_groups(tiny_pretrainer, lr=1e-3, weight_decay=0.01)
    no_decay = {n for g in groups if g["weight_decay"] == 0 for n in g["param_names"]}
    expected = {n for n, _ in tiny_pretrainer.named_parameters() if n.endswith("bias") or "LayerNorm.weight" in n}
    assert no_decay == expected
    assert all(g["weight_decay"] == 0.01 for g in groups if g["decay"])
    everything = param_groups(tiny_pretrainer, lr=1e-3, weight_decay=0.01, exclude_bias_and_norm=False)
    assert all(g["weight_decay"] == 0.01 for g in everything)


@pytest.mark.parametrize(
    "kwargs", [dict(xi=0.0), dict(xi=1.2), dict(xi=-0.5), dict(lr=0.0), dict(weight_decay=-1.0), dict(head_lr=0.0)]
)
def test_impossible_hyperparameters(tiny_classifier, kwargs):
    args = dict(lr=1e-3) | kwargs
    with pytest.raises(OptimConfigError):
        param_groups(tiny_classifier, **args)


def test_check_groups_catches_the_blog_recipe(tiny_classifier):
    """Groups of encoder layers + classifier only: embeddings and pooler never train."""
    blog = [{"params": list(layer.parameters())} for layer in tiny_classifier.bert.encoder.layer]
    blog.append({"params": list(tiny_classifier.classifier.parameters())})
    with pytest.raises(OptimConfigError, match="in no group.*embeddings"):
        check_groups(tiny_classifier, blog)
    twice = [{"params": list(tiny_classifier.parameters())}, {"params": list(tiny_classifier.classifier.parameters())}]
    with pytest.raises(OptimConfigError, match="more than one group"):
        check_groups(tiny_classifier, twice)


def test_optimizers(tiny_classifier):
    groups = param_groups(tiny_classifier, lr=1e-3)
    assert type(build_optimizer(groups, "adamw")) is torch.optim.AdamW
    assert type(build_optimizer(groups, "adam_l2")) is torch.optim.Adam
    with pytest.raises(OptimConfigError):
        build_optimizer(groups, "sgd-with-vibes")


def _sched_values(model, name, total=100, **kw):
    curves = lr_curves(model, total, lr=1.0, schedule=name, **kw)
    return curves[curves["group"] == "head"]["lr"].tolist()


def test_linear_schedule_values(tiny_classifier):
    lr = _sched_values(tiny_classifier, "linear", 100, warmup_ratio=0.1)
    assert lr[0] == 0.0
    assert lr[5] == pytest.approx(0.5)
    assert lr[10] == pytest.approx(1.0)  # peak: exactly the base rate at the end of warmup
    assert lr[55] == pytest.approx(0.5)  # midway through the decay
    assert lr[99] == pytest.approx(1 / 90)
    assert max(lr) == pytest.approx(1.0)


def test_cosine_constant_and_warmup_steps(tiny_classifier):
    cos = _sched_values(tiny_classifier, "cosine", 100, warmup_steps=0)
    assert cos[0] == pytest.approx(1.0) and cos[50] == pytest.approx(0.5) and cos[99] < 0.001
    cw = _sched_values(tiny_classifier, "constant_with_warmup", 100, warmup_steps=20)
    assert cw[10] == pytest.approx(0.5) and cw[20] == cw[99] == pytest.approx(1.0)
    const = _sched_values(tiny_classifier, "constant", 100)
    assert set(const) == {1.0}
    assert _sched_values(tiny_classifier, "linear", 10, warmup_ratio=0.05)[1] == pytest.approx(
        1.0
    )  # ceil(0.5) = 1 step


def test_layer_ratios_hold_through_the_schedule(tiny_classifier):
    curves = lr_curves(tiny_classifier, 50, lr=1e-3, xi=0.5).pivot(index="step", columns="group", values="lr")
    active = curves[curves["layer.1"] > 0]
    assert ((active["embeddings"] / active["layer.1"]) - 0.25).abs().max() < 1e-12


def test_bad_schedule_arguments(tiny_classifier):
    opt = build_optimizer(param_groups(tiny_classifier, lr=1e-3))
    with pytest.raises(OptimConfigError, match="Unknown schedule"):
        build_scheduler(opt, "warmup_linear", 10)
    with pytest.raises(OptimConfigError, match="warmup_ratio"):
        build_scheduler(opt, "linear", 10, warmup_ratio=1.5)
    with pytest.raises(OptimConfigError, match="num_training_steps"):
        build_scheduler(opt, "linear", 0)


def test_our_llrd_convention_is_what_param_groups_does():
    """The 'ours' row of the conventions table in notebook 05 is computed, not typed: it must match param_groups."""

    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(layers=3))
    xi, lr = 0.8, 1e-3
    rates = {g["name"]: g["lr"] / lr for g in param_groups(model, lr=lr, xi=xi)}
    ours = llrd_conventions(3, xi).loc["ours (lib.optim)"]
    assert ours["embeddings"] == pytest.approx(rates["embeddings"]) == pytest.approx(xi**3)
    assert ours["layer 0 (bottom)"] == pytest.approx(rates["layer.0"])
    assert ours["layer 2 (top)"] == pytest.approx(rates["layer.2"]) == 1.0
    assert ours["classifier"] == rates["head"] == 1.0
    table = llrd_conventions(6, 0.9)
    assert table.loc["ELECTRA code", "layer 5 (top)"] == pytest.approx(0.81)  # ξ², one step too many
    assert table.loc["Sun et al. 2019 code (12 layers assumed)", "embeddings"] == 1.0  # not decayed
    assert (table.loc["HF Trainer"] == 1.0).all()


def test_bertadam_is_adamw_without_bias_correction():
    """The original BERT optimizer: its first step is (1 − β₁)/√(1 − β₂) ≈ 3.16 times Adam's, and after that it
    follows m/(√v + ε) + λθ exactly."""
    from lib.optim import BertAdam

    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5))
    opt, ref = BertAdam([w], lr=1e-3, weight_decay=0.01), torch.optim.AdamW([w.detach().clone().requires_grad_()],
                                                                           lr=1e-3, weight_decay=0.01)
    theta, m, v = w.detach().clone(), torch.zeros(5), torch.zeros(5)
    for step in range(3):
        g = torch.randn(5)
        w.grad = g.clone()
        opt.step()
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        theta = theta - 1e-3 * (m / (v.sqrt() + 1e-8) + 0.01 * theta)
        assert torch.allclose(w.detach(), theta, atol=1e-7)
        if step == 0:
            adam_param = ref.param_groups[0]["params"][0]
            before = adam_param.detach().clone()
            adam_param.grad = g.clone()
            ref.step()
            adam_step = (adam_param.detach() - before + 1e-3 * 0.01 * before).abs()
            ours = 1e-3 * (m / (v.sqrt() + 1e-8)).abs()
            assert torch.allclose(ours / adam_step, torch.full((5,), 0.1 / 0.001 ** 0.5), rtol=1e-3)


def test_a_modernbert_gets_the_same_groups_as_bert():
    """ModernBERT names its layers `model.layers.i` and its norms `norm`, `attn_norm`, `mlp_norm`, `final_norm`: every
    parameter still lands in exactly one group, layer i at lr·ξ^(L−1−i), and no norm weight is decayed."""
    from transformers import ModernBertConfig, ModernBertForSequenceClassification

    config = ModernBertConfig(vocab_size=100, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                              num_attention_heads=2, max_position_embeddings=64, pad_token_id=0, bos_token_id=2,
                              eos_token_id=3, cls_token_id=2, sep_token_id=3)
    model = ModernBertForSequenceClassification(config)
    groups = param_groups(model, lr=1.0, xi=0.5)  # check_groups inside: each parameter exactly once
    rates = {g["name"]: g["lr"] for g in groups}
    assert rates == {"embeddings": 0.125, "layer.0": 0.25, "layer.1": 0.5, "layer.2": 1.0, "head": 1.0}
    undecayed = {n for g in groups if not g["decay"] for n in g["param_names"]}
    norms = {n for n, _ in model.named_parameters() if "norm" in n}
    assert norms and norms <= undecayed and all(n in norms or n.endswith("bias") for n in undecayed)
