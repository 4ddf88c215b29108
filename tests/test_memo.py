"""Remembered results (`lib.memo`): keyed by content, so an equal input is computed once and a changed one anew."""

from __future__ import annotations

import numpy as np
import torch

from lib import data, memo, mlm, nsp
from lib.models import load_tokenizer


def test_digest_tells_apart_what_differs_and_only_that():
    assert memo.digest([1, 2], "a") == memo.digest([1, 2], "a")
    assert memo.digest([1, 2]) != memo.digest((1, 2))  # a tuple is not a list
    assert memo.digest(["ab", "c"]) != memo.digest(["a", "bc"])  # where the strings break counts
    assert memo.digest(np.arange(3)) != memo.digest(np.arange(3).astype(np.int32))  # so does the dtype
    assert memo.digest(torch.arange(4).reshape(2, 2)) != memo.digest(torch.arange(4))  # and the shape
    assert memo.digest({"a": 1, "b": 2}) == memo.digest({"b": 2, "a": 1})
    windows = [{"input_ids": [1, 2, 3]}, {"input_ids": [4]}]
    assert memo.examples_digest(windows) != memo.examples_digest([{"input_ids": [1, 2]}, {"input_ids": [3, 4]}])


def test_by_content_computes_once_per_content_and_forgets_the_oldest():
    calls = []

    @memo.by_content(lambda xs: memo.digest(xs), maxsize=2)
    def total(xs):
        calls.append(list(xs))
        return sum(xs)

    assert total([1, 2]) == total([1, 2]) == 3 and calls == [[1, 2]]  # an equal list: remembered
    assert total([1, 3]) == 4 and len(calls) == 2  # new content: computed
    total([5]), total([1, 2])
    assert len(calls) == 4  # [1, 2] was the oldest of two, so it was forgotten


def test_remembered_tokenisation_is_per_tokenizer_and_equals_a_fresh_one():
    docs = [s[:3] for s in list(data.load_news_corpus()["validation"]["sentences"])[:5]]
    news, minilm = load_tokenizer("bert-tiny"), load_tokenizer("minilm-l6")
    ours, theirs = nsp.tokenize_documents(docs, news, 64), nsp.tokenize_documents(docs, minilm, 64)
    assert ours == nsp.tokenize_documents.__wrapped__(docs, news, 64)
    assert theirs == nsp.tokenize_documents.__wrapped__(docs, minilm, 64) != ours  # not the other vocabulary's ids
    assert nsp.tokenize_documents(docs, news, 16) == nsp.tokenize_documents.__wrapped__(docs, news, 16) != ours


def test_remembered_counts_follow_the_training_windows():
    special = [1, 2]
    a = [{"input_ids": [1, 5, 5, 6, 2]}]
    b = [{"input_ids": [1, 5, 6, 6, 2]}]
    assert mlm.token_counts(a, special).tolist() == [0, 0, 0, 0, 0, 2, 1]
    assert mlm.token_counts(b, special).tolist() == [0, 0, 0, 0, 0, 1, 2]
    batch = [{"input_ids": torch.tensor([[1, 5, 9, 2]]), "labels": torch.tensor([[-100, -100, 6, -100]])}]
    assert not mlm.bigram_tokens(a, batch, special).equals(mlm.bigram_tokens(b, batch, special))


def test_the_news_corpus_is_parsed_once_but_every_caller_gets_its_own_copy():
    first = data.load_news_corpus()
    first["train"] = first["train"].select(range(3))  # what load_data does to a loader's splits
    again = data.load_news_corpus()
    assert len(again["train"]) > 3 and again["validation"]["doc_id"] == first["validation"]["doc_id"]
    assert data.load_news_corpus(max_documents=20)["train"].num_rows == 20
