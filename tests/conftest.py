"""Shared fixtures. Results and kept models of tests go to temporary folders, never to results/ or models/."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("WORKBOOK_RESULTS_DIR", tempfile.mkdtemp(prefix="workbook-test-results-"))
os.environ.setdefault("WORKBOOK_MODELS_DIR", tempfile.mkdtemp(prefix="workbook-test-models-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import datasets  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import BertConfig, BertForPreTraining, BertForSequenceClassification  # noqa: E402

from lib import profiles  # noqa: E402

datasets.disable_progress_bars()

SMOKE, QUICK = profiles.get("smoke"), profiles.get("quick")
"""The profiles the tests name, resolved once (the library below the entry points takes `Profile` objects)."""


def tiny_config(layers: int = 2, num_labels: int = 2, vocab: int = 100) -> BertConfig:
    """A BERT small enough that a test trains it in well under a second."""
    return BertConfig(
        vocab_size=vocab,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=num_labels,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


@pytest.fixture
def tiny_classifier():
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_config())


@pytest.fixture
def tiny_pretrainer():
    torch.manual_seed(0)
    return BertForPreTraining(tiny_config())


@pytest.fixture
def offline(monkeypatch):
    """Pretend the hub is unreachable, whatever this machine can reach."""
    from lib import hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.hub_online.cache_clear()
    yield
    hub.hub_online.cache_clear()
