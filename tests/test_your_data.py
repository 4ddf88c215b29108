"""Your own CSV through every layer: load_data, the spec's identity, `python -m lib.finetune`, `python -m lib.sweep`.

The fixtures are small files made here in the three shapes users bring: long multi-class documents
(`article,topic`), short binary reviews with a group column (`text,category,movie_name`), and imbalanced
0/1 messages with an unnamed index column (`,spam,text`).
"""

from __future__ import annotations

import random
import subprocess
import sys

import pandas as pd
import pytest

from lib import ablations, finetune
from lib.data import DataError, load_data
from lib.finetune import FinetuneSpec
from lib.paths import ROOT
from lib.source import DataSource

from .conftest import SMOKE

WORDS = {
    "sport": "match goal team season coach league win score player cup",
    "politics": "senate vote law minister election party policy bill court campaign",
    "science": "study cells energy research data climate physics species lab theory",
}


def write_documents(path, n: int = 60, words: int = 220) -> str:
    rng = random.Random(0)
    rows = [
        {"article": " ".join(rng.choice(WORDS[t].split() + ["the", "a", "and"]) for _ in range(words)), "topic": t}
        for i in range(n)
        for t in [list(WORDS)[i % 3]]
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def write_reviews(path, movies: int = 20, per_movie: int = 5) -> str:
    rng = random.Random(1)
    good, bad = "great moving funny brilliant superb".split(), "dull boring awful weak clumsy".split()
    rows = []
    for m in range(movies):
        for k in range(per_movie):
            positive = rng.random() < 0.5
            rows.append(
                {
                    "text": f"film {m} scene {k} was {rng.choice(good if positive else bad)} and {rng.random():.3f}",
                    "category": "pos" if positive else "neg",
                    "movie_name": f"movie {m}",
                }
            )
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def write_messages(path, n: int = 80, spam: int = 12) -> str:
    rows = [
        {
            "spam": int(i < spam),
            "text": f"WIN a prize now call {i:04d}" if i < spam else f"see you at {i % 12} pm, ok {i}",
        }
        for i in range(n)
    ]
    pd.DataFrame(rows).to_csv(path)  # an unnamed index column first, as pandas writes it
    return str(path)


# ------------------------------------------------------------ loading right
def test_three_kinds_of_csv_load_without_renaming(tmp_path):
    docs = load_data(DataSource(write_documents(tmp_path / "news.csv"), "article", "topic"))
    assert docs["train"].features["label"].names == ["politics", "science", "sport"]
    reviews = load_data(
        DataSource(write_reviews(tmp_path / "reviews.csv"), "text", "category", group_column="movie_name")
    )
    movies = {split: {t.split(" scene")[0] for t in ds["text"]} for split, ds in reviews.items()}
    assert not movies["train"] & movies["test"] and not movies["train"] & movies["validation"]  # no film in two splits
    sms = load_data(DataSource(write_messages(tmp_path / "sms.csv"), "text", "spam", ("ham", "spam")))
    assert sms["train"].features["label"].names == ["ham", "spam"]
    assert sum(sms["train"]["label"]) + sum(sms["validation"]["label"]) + sum(sms["test"]["label"]) == 12


def test_string_labels_with_label_names(tmp_path):
    """pandas 3 reads strings as `str`, not `object`: names given for string labels must still work."""
    path = tmp_path / "r.csv"
    write_reviews(path)
    dsd = load_data(DataSource(str(path), "text", "category", ("neg", "pos")))
    assert dsd["train"].features["label"].names == ["neg", "pos"]


def test_sparse_integer_labels_are_classes_of_their_own(tmp_path):
    path = tmp_path / "stars.csv"
    pd.DataFrame({"text": [f"review number {i}" for i in range(60)], "stars": [1 + i % 5 for i in range(60)]}).to_csv(
        path, index=False
    )
    assert load_data(DataSource(str(path), label_column="stars"))["train"].features["label"].names == list("12345")
    pd.DataFrame({"text": [f"t {i}" for i in range(40)], "label": [0, 2] * 20}).to_csv(path, index=False)
    assert load_data(str(path))["train"].features["label"].names == ["0", "2"]


def test_separator_and_encoding_are_detected(tmp_path, capsys):
    frame = pd.DataFrame({"text": [f"café numéro {i}" for i in range(40)], "label": ["a", "b"] * 20})
    frame.to_csv(tmp_path / "semi.csv", sep=";", index=False)
    frame.to_csv(tmp_path / "tabs.tsv", sep="\t", index=False)
    frame.to_csv(tmp_path / "latin.csv", index=False, encoding="latin-1")
    for name in ("semi.csv", "tabs.tsv", "latin.csv"):
        dsd = load_data(str(tmp_path / name))
        assert any("café" in t for t in dsd["train"]["text"]), name
    out = capsys.readouterr().out
    assert "';'-separated" in out and "latin-1" in out


def test_given_splits_column_and_files(tmp_path):
    rows = [
        {"text": f"text {i}", "label": "ab"[i % 2], "split": ["train", "train", "dev", "test"][i % 4]}
        for i in range(80)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "s.csv", index=False)
    dsd = load_data(DataSource(str(tmp_path / "s.csv"), split_column="split"))
    assert (len(dsd["train"]), len(dsd["validation"]), len(dsd["test"])) == (40, 20, 20)
    pd.DataFrame(rows[:60]).drop(columns="split").to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame(rows[60:]).drop(columns="split").to_csv(tmp_path / "test.csv", index=False)
    dsd = load_data(DataSource(str(tmp_path / "train.csv"), test_path=str(tmp_path / "test.csv")))
    assert len(dsd["test"]) == 20 and len(dsd["train"]) + len(dsd["validation"]) == 60


def test_an_edited_file_is_a_new_run(tmp_path):
    path = write_reviews(tmp_path / "r.csv")
    spec = finetune.baseline_spec(SMOKE).with_overrides(data=DataSource(path, "text", "category"))
    before = spec.identity()
    with open(path, "a") as f:
        f.write("one more line that changes everything,pos,movie 99\n")
    assert spec.identity() != before  # same path, new content: never a stale replay
    assert FinetuneSpec(data=path).data == DataSource(path)  # a CSV path is a DataSource with default columns


# ------------------------------------------------------------- bad input
def _csv(tmp_path, frame: pd.DataFrame, name: str = "bad.csv") -> str:
    frame.to_csv(tmp_path / name, index=False)
    return str(tmp_path / name)


BAD = {
    "missing column": (
        lambda t: DataSource(_csv(t, pd.DataFrame({"body": ["x"] * 30, "label": [0, 1] * 15})), "text"),
        ["no column ['text']", "'body'", "--text-column"],
    ),
    "one class": (
        lambda t: DataSource(_csv(t, pd.DataFrame({"text": [f"t{i}" for i in range(30)], "label": [1] * 30}))),
        ["Only one class"],
    ),
    "empty texts": (
        lambda t: DataSource(_csv(t, pd.DataFrame({"text": ["a", " ", "b"] * 10, "label": [0, 1, 0] * 10}))),
        ["empty text"],
    ),
    "labels outside names": (
        lambda t: DataSource(
            _csv(t, pd.DataFrame({"text": [f"t{i}" for i in range(30)], "label": [0, 1, 2] * 10})),
            label_names=("a", "b"),
        ),
        ["outside the given names"],
    ),
    "string outside names": (
        lambda t: DataSource(
            _csv(t, pd.DataFrame({"text": [f"t{i}" for i in range(30)], "label": ["x", "y", "z"] * 10})),
            label_names=("x", "y"),
        ),
        ["['z']", "not among the given names"],
    ),
    "too few groups": (
        lambda t: DataSource(
            _csv(
                t,
                pd.DataFrame(
                    {"text": [f"t{i}" for i in range(40)], "label": [0, 1] * 20, "g": [i % 4 for i in range(40)]}
                ),
            ),
            group_column="g",
        ),
        ["4 groups", "at least 10"],
    ),
    "three rows": (
        lambda t: DataSource(_csv(t, pd.DataFrame({"text": ["a", "b", "c"], "label": [0, 1, 0]}))),
        ["3 distinct examples", "at least 20"],
    ),
    "a single example of a class": (
        lambda t: DataSource(
            _csv(t, pd.DataFrame({"text": [f"t{i}" for i in range(30)], "label": [0] * 15 + [1] * 14 + [2]}))
        ),
        ["{'2': 1}", "fewer than 3"],
    ),
    "continuous labels": (
        lambda t: DataSource(_csv(t, pd.DataFrame({"text": [f"t{i}" for i in range(30)], "label": [0.5, 1.5] * 15}))),
        ["bin"],
    ),
    "unknown split values": (
        lambda t: DataSource(
            _csv(
                t,
                pd.DataFrame(
                    {"text": [f"t{i}" for i in range(30)], "label": [0, 1] * 15, "s": ["train", "holdout"] * 15}
                ),
            ),
            split_column="s",
        ),
        ["holdout", "validation"],
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_data_is_one_clear_error(tmp_path, case):
    make, words = BAD[case]
    with pytest.raises(DataError) as err:
        load_data(make(tmp_path))
    for word in words:
        assert word in str(err.value), (word, str(err.value))
    assert "\n" not in str(err.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="No such file"):
        DataSource(str(tmp_path / "nope.csv"))


# ------------------------------------------------------------ end to end
def _cli(*args, results) -> subprocess.CompletedProcess:
    env = {
        "WORKBOOK_RESULTS_DIR": str(results),
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("kind", ["documents", "reviews", "messages"])
def test_finetune_cli_on_each_kind(tmp_path, kind):
    args = {
        "documents": [
            "--data",
            write_documents(tmp_path / "news.csv"),
            "--text-column",
            "article",
            "--label-column",
            "topic",
            "--truncation",
            "head+tail",
        ],
        "reviews": [
            "--data",
            write_reviews(tmp_path / "reviews.csv"),
            "--label-column",
            "category",
            "--group-column",
            "movie_name",
            "--lr",
            "3e-5",  # the option that used to fail for every value
        ],
        "messages": [
            "--data",
            write_messages(tmp_path / "sms.csv"),
            "--label-column",
            "spam",
            "--label-names",
            "ham,spam",
        ],
    }[kind]
    out = _cli("lib.finetune", *args, "--profile", "smoke", "--seeds", "0", results=tmp_path / "results")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "TF-IDF + logistic regression floor on the same split" in out.stdout and "macro-F1" in out.stdout
    assert "recall per class" in out.stdout and "confusion matrix:" in out.stdout
    assert len(list((tmp_path / "results" / "runs").glob("finetune__*/*/predictions.csv.gz"))) == 1


def test_sweep_cli_on_a_user_csv(tmp_path):
    path = write_reviews(tmp_path / "reviews.csv")
    out = _cli(
        "lib.sweep",
        "warmup",
        "--data",
        path,
        "--label-column",
        "category",
        "--group-column",
        "movie_name",
        "--profile",
        "smoke",
        results=tmp_path / "results",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    summary = pd.read_csv(tmp_path / "results" / "ablation_warmup__reviews_summary.csv")
    assert set(summary["data"]) == {"reviews"} and len(summary) == len(ablations.get("warmup", SMOKE).variants)


@pytest.mark.notebook
@pytest.mark.parametrize("kind", ["documents", "messages"])
def test_notebook_09_on_each_kind(tmp_path, kind, monkeypatch):
    """Notebook 09 with its parameters pointed at a user's file and columns, nothing renamed."""
    from lib.paths import NOTEBOOKS
    from lib.run_notebooks import execute

    monkeypatch.setenv("WORKBOOK_RESULTS_DIR", str(tmp_path / "results"))
    parameters = {
        "documents": {
            "DATA": write_documents(tmp_path / "news.csv"),
            "TEXT_COLUMN": "article",
            "LABEL_COLUMN": "topic",
            "GROUP_COLUMN": None,
            "TRUNCATION": "head+tail",
        },
        "messages": {
            "DATA": write_messages(tmp_path / "sms.csv"),
            "TEXT_COLUMN": "text",
            "LABEL_COLUMN": "spam",
            "LABEL_NAMES": ["ham", "spam"],
            "GROUP_COLUMN": None,
        },
    }[kind]
    execute(NOTEBOOKS / "09_your_data.ipynb", SMOKE, out_dir=tmp_path, parameters=parameters)
    assert (tmp_path / "results" / "figures" / "09_confusion.png").exists()


def test_a_file_is_the_same_run_however_its_path_is_spelled(tmp_path, monkeypatch):
    """notebooks/ and a terminal name the shipped example differently; a moved copy has the same content."""
    import shutil

    from lib.store import run_id

    base = finetune.baseline_spec(SMOKE)
    from_root = base.with_overrides(data=DataSource("data/amazon_review_sentences.csv", label_column="sentiment"))
    monkeypatch.chdir(ROOT / "notebooks")
    from_notebooks = base.with_overrides(
        data=DataSource("../data/amazon_review_sentences.csv", label_column="sentiment")
    )
    shutil.copy(ROOT / "data" / "amazon_review_sentences.csv", tmp_path / "copy.csv")
    moved = base.with_overrides(data=DataSource(str(tmp_path / "copy.csv"), label_column="sentiment"))
    assert from_notebooks.data.path == "data/amazon_review_sentences.csv"  # stored project-relative
    assert run_id(from_root.identity()) == run_id(from_notebooks.identity()) == run_id(moved.identity())


def test_a_users_training_option_wins_over_the_working_rate(tmp_path):
    """`--lr 3e-5` used to fail for every value (the working rate and the user's rate were passed twice)."""
    from lib import finetune as ft

    parser = ft.build_parser()
    args = parser.parse_args(["--data", write_reviews(tmp_path / "reviews.csv"), "--label-column", "category",
                              "--profile", "smoke", "--lr", "3e-5", "--seeds", "0,1"])
    spec, seeds = ft.spec_from_args(parser, args)
    assert spec.train.lr == 3e-5 and seeds == [0, 1]
    plain = ["--data", str(tmp_path / "reviews.csv"), "--label-column", "category", "--profile", "smoke"]
    default, _ = ft.spec_from_args(parser, parser.parse_args(plain))
    assert default.train.lr == ft.WORKING_LR


def test_a_grid_on_another_model_without_data_keeps_its_data_sets(tmp_path):
    """`python -m lib.sweep warmup --model …` without --data used to crash in data_label(None)."""
    import shutil

    from lib import ablations
    from lib.models import minilm_dir

    folder = tmp_path / "my-model"
    shutil.copytree(minilm_dir(), folder)
    out = _cli("lib.sweep", "warmup", "--model", "minilm-l6", "--profile", "smoke", "--seeds", "0",
               results=tmp_path / "results")
    assert out.returncode == 0 and "warmup 0.1 vs" in out.stdout, out.stderr[-2000:]
    grid = ablations.get("warmup", SMOKE)
    same = grid.on(None, "minilm-l6")
    other = grid.on(None, str(folder))
    assert same.experiment == grid.experiment and same.datasets == grid.datasets
    assert other.experiment == f"{grid.experiment}__my-model" and other.base.model == str(folder)


@pytest.mark.parametrize("rows, words", [
    ([("a", "x", "train"), ("b", "y", "validation"), ("c", "x", "test")], "no rows in the train"),  # 3 rows, 1/1/1
    ([(f"t{i}", "x", "train") for i in range(30)] + [("u", "y", "test"), ("v", "x", "test")], "no rows in the train"),
    ([(f"t{i}", "xy"[i % 2], "train") for i in range(8)] + [("u", "y", "test"), ("v", "x", "test")], "too few"),
], ids=["three rows", "a class only in test", "no room for validation"])
def test_given_splits_are_checked_like_computed_ones(tmp_path, rows, words):
    """With --split-column the size and class checks used to be skipped: a 3-row file trained and stored a run."""
    path = tmp_path / "given.csv"
    pd.DataFrame(rows, columns=["text", "label", "split"]).to_csv(path, index=False)
    with pytest.raises(DataError, match=words):
        load_data(DataSource(str(path), split_column="split"))


# ------------------------------------------------------- more formats, own splits
def _frame(n: int = 60) -> pd.DataFrame:
    return pd.DataFrame({"review": [f"review number {i} is {'fine' if i % 2 else 'awful'}" for i in range(n)],
                         "stars": ["good" if i % 2 else "bad" for i in range(n)]})


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_json_lines_and_parquet_read_like_csv(tmp_path, suffix):
    frame = _frame()
    path = tmp_path / f"reviews{suffix}"
    frame.to_json(path, orient="records", lines=True) if suffix == ".jsonl" else frame.to_parquet(path)
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    dsd = load_data(str(path), text_column="review", label_column="stars")
    same = load_data(str(tmp_path / "reviews.csv"), text_column="review", label_column="stars")
    assert all(dsd[s]["text"] == same[s]["text"] and dsd[s]["label"] == same[s]["label"] for s in dsd)
    with pytest.raises(DataError, match=r"no column \['body'\]"):
        load_data(str(path), text_column="body", label_column="stars")


def test_a_broken_json_lines_file_is_one_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": 0}\n{"text": "b", "label": \n')
    with pytest.raises(DataError, match="as JSON Lines") as err:
        load_data(str(tmp_path / "bad.jsonl"))
    assert "\n" not in str(err.value)


def _saved(tmp_path, test_labels: bool = True):
    """A hub-style DatasetDict (ClassLabel, train / validation / test) written by save_to_disk."""
    import datasets

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    split = lambda lo, hi, labelled=True: datasets.Dataset.from_dict(  # noqa: E731
        {"sentence": [f"sentence {i} {'good' if i % 2 else 'bad'}" for i in range(lo, hi)],
         "label": [i % 2 if labelled else -1 for i in range(lo, hi)]}, features=features)
    dsd = datasets.DatasetDict({"train": split(0, 40), "validation": split(40, 50),
                                "test": split(50, 60, labelled=test_labels)})
    dsd.save_to_disk(str(tmp_path / "saved"))
    return str(tmp_path / "saved")


def test_a_saved_dataset_dict_keeps_its_splits(tmp_path):
    dsd = load_data(DataSource(_saved(tmp_path), text_column="sentence"))
    assert {k: len(v) for k, v in dsd.items()} == {"train": 40, "validation": 10, "test": 10}
    assert dsd["validation"]["text"][0] == "sentence 40 bad" and dsd["train"].features["label"].names == [
        "negative", "positive"]


def test_a_test_split_without_labels_is_left_out_and_said(tmp_path, capsys):
    """GLUE's test split has label -1 everywhere: the validation split tests (published dev-set numbers compare),
    a validation split is carved out of train."""
    import datasets

    from lib.data import hub_splits

    saved = datasets.load_from_disk(_saved(tmp_path, test_labels=False))
    dsd = hub_splits(saved, "glue/fake")
    out = capsys.readouterr().out
    assert "'test' split of glue/fake has no labels" in out and "validation split is the test set" in out
    assert dsd["test"]["text"] == [f"sentence {i} {'good' if i % 2 else 'bad'}" for i in range(40, 50)]
    assert len(dsd["train"]) + len(dsd["validation"]) == 40 and len(dsd["validation"]) == 4


def test_hub_sentence_pairs_are_found_by_name():
    import datasets

    from lib.data import hub_splits

    features = datasets.Features({"sentence1": datasets.Value("string"), "sentence2": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["no", "yes"]), "idx": datasets.Value("int32")})
    split = lambda name, n: datasets.Dataset.from_dict(  # noqa: E731
        {"sentence1": [f"{name} a{i}" for i in range(n)], "sentence2": [f"{name} b{i}" for i in range(n)],
         "label": [i % 2 for i in range(n)], "idx": list(range(n))}, features=features)
    dsd = hub_splits(datasets.DatasetDict({"train": split("train", 40), "test": split("test", 12)}), "mrpc")
    assert dsd["train"].column_names == ["text", "text_pair", "label"] and len(dsd["test"]) == 12
    assert dsd["test"]["text_pair"][0] == "test b0" and len(dsd["train"]) + len(dsd["validation"]) == 40


def test_the_command_takes_a_saved_folder(tmp_path):
    out = _cli("lib.finetune", "--data", _saved(tmp_path), "--text-column", "sentence", "--profile", "smoke",
               "--seeds", "0", results=tmp_path / "results")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "saved: train 40, validation 10, test 10" in out.stdout


def test_a_users_file_trains_on_every_row_by_default_and_says_so(tmp_path, capsys):
    """The quick profile's 256-sentence budget is for the workbook's experiments; a user's 2,000 rows all train."""
    from lib import finetune as ft
    from lib.profiles import get

    path = tmp_path / "big.csv"
    pd.DataFrame({"text": [f"sentence {i} is {'good' if i % 2 else 'bad'}" for i in range(2000)],
                  "label": [i % 2 for i in range(2000)]}).to_csv(path, index=False)
    parser = ft.build_parser()
    spec, _ = ft.spec_from_args(parser, parser.parse_args(["--data", str(path), "--profile", "quick"]))
    dsd = spec.dataset()
    assert (spec.max_train_examples, spec.max_eval_examples, spec.max_test_examples) == (None, None, None)
    assert {k: len(v) for k, v in dsd.items()} == {"train": 1600, "validation": 200, "test": 200}
    assert "budget: every row of each split" in ft.header(spec, dsd, get("quick"))
    sub, _ = ft.spec_from_args(parser, parser.parse_args(["--data", str(path), "--profile", "quick",
                                                          "--max-train-examples", "300"]))
    assert "budget: a subsample (train ≤ 300)" in ft.header(sub, sub.dataset(), get("quick"))
    assert len(ft.baseline_spec(get("quick")).dataset()["train"]) == 256  # the workbook's own experiments
