"""Non-neural floors: what a bag of words already gets on the same splits."""

from __future__ import annotations

import time

import datasets
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.pipeline import make_pipeline

from lib.classify import classification_metrics


def tfidf_logreg(dsd: datasets.DatasetDict, C: float = 4.0) -> dict:
    """TF-IDF word 1–2-grams + logistic regression, trained on `train`, scored on `test`.

    Deterministic (lbfgs, no sampling), so a single run has no seed spread.
    Any fine-tuned transformer worth its compute must beat this floor.
    """
    start = time.perf_counter()
    clf = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True), LogisticRegression(C=C, max_iter=2000)
    )
    clf.fit(_texts(dsd["train"]), list(dsd["train"]["label"]))
    pred = clf.predict(_texts(dsd["test"]))
    y = list(dsd["test"]["label"])
    metrics = {f"test_{k}": v for k, v in classification_metrics(y, pred).items()}
    return metrics | {
        "train_seconds": round(time.perf_counter() - start, 2),
        "confusion": confusion_matrix(y, pred, labels=list(range(len(dsd["test"].features["label"].names)))).tolist(),
    }


def _texts(ds: datasets.Dataset) -> list[str]:
    """The text, and for sentence pairs both texts joined (a bag of words of the pair)."""
    if "text_pair" in ds.column_names:
        return [f"{a} [SEP] {b}" for a, b in zip(ds["text"], ds["text_pair"])]
    return list(ds["text"])


def tfidf_table(splits: dict[str, datasets.DatasetDict]) -> pd.DataFrame:
    """The floor on each named data set (its own train and test splits), one row each: the training examples it
    saw, test accuracy and macro-F1. No timing, so re-running it writes the same bytes."""
    rows = []
    for name, dsd in splits.items():
        m = tfidf_logreg(dsd)
        rows.append({"data": name, "train_examples": len(dsd["train"]), "test_accuracy": m["test_accuracy"],
                     "test_macro_f1": m["test_macro_f1"]})
    return pd.DataFrame(rows)
