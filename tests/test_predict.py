"""A classifier you keep: `--save-model` writes a folder that `lib.predict` and `transformers.pipeline` load, whose
predictions are the stored run's, and whose bad inputs are one line."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from transformers import pipeline

from lib import finetune, predict
from lib.models import minilm_dir
from lib.paths import ROOT

from .test_bad_input import _listing


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Two smoke seeds on the shipped example file, the better one on validation kept."""
    tmp = tmp_path_factory.mktemp("saved")
    mp = pytest.MonkeyPatch()
    mp.setenv("WORKBOOK_RESULTS_DIR", str(tmp / "results"))
    finetune.main(["--data", "data/amazon_review_sentences.csv", "--label-column", "sentiment", "--group-column",
                   "review_id", "--profile", "smoke", "--seeds", "0,1", "--save-model", str(tmp / "model")])
    yield tmp / "model", tmp / "results"
    mp.undo()


def test_the_kept_model_predicts_what_its_run_stored(saved):
    folder, results = saved
    meta = (folder / "workbook.json").read_text()
    run_dir = next((results / "runs" / "finetune__amazon_review_sentences").glob(f"*{_rid(meta)}*"))
    stored = pd.read_csv(run_dir / "predictions.csv.gz", keep_default_na=False)
    ours = predict.classify(folder, stored["text"].tolist())
    # the run tested in bf16 where the CPU has it, predict runs fp32: probabilities agree to 2e-3, so every
    # prediction that is not a coin toss within that tolerance is the same
    assert (ours["probability"] - stored["confidence"]).abs().max() < 2e-3
    clear = stored["confidence"] > 0.5 + 2e-3
    assert clear.sum() > len(stored) / 4 and (ours["predicted"] == stored["pred"])[clear].all()


def _rid(meta: str) -> str:
    import json

    return json.loads(meta)["run_id"]


def test_the_card_says_which_seed_and_how_good(saved):
    folder, results = saved
    card = (folder / "README.md").read_text()
    runs = pd.read_csv(results / "finetune__amazon_review_sentences.csv")
    best = runs.sort_values(["best_val_accuracy", "train.seed"], ascending=[False, True]).iloc[0]
    assert f"seed {int(best['train.seed'])}: the best validation accuracy of 2 seed(s)" in card
    assert f"test accuracy {100 * best['test_accuracy']:.1f}%" in card and "TF-IDF" in card and "sha256" in card
    assert "| recipe | adamw lr 1e-4" in card


def test_pipeline_loads_the_folder(saved):
    folder, _ = saved
    text = "the picture failed after a week"
    out = pipeline("text-classification", model=str(folder))(text)[0]
    ours = predict.classify(folder, [text]).iloc[0]
    assert out["label"] == ours["predicted"] and abs(out["score"] - ours["probability"]) < 1e-3


def test_predict_command_on_texts_and_on_a_file(saved, tmp_path):
    folder, _ = saved
    run = lambda *a: subprocess.run([sys.executable, "-m", "lib.predict", str(folder), *a], cwd=ROOT,  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    out = run("great battery life", "it broke in a week")
    assert out.returncode == 0 and "predicted" in out.stdout and "p(positive)" in out.stdout, out.stderr
    (tmp_path / "new.csv").write_text("id,review\n1,great battery life\n2,it broke in a week\n")
    out = run("--data", str(tmp_path / "new.csv"), "--text-column", "review", "--out", str(tmp_path / "out.csv"))
    assert out.returncode == 0, out.stderr
    labelled = pd.read_csv(tmp_path / "out.csv")
    assert labelled.columns.tolist()[:2] == ["id", "review"] and set(labelled["predicted"]) <= {"negative", "positive"}


@pytest.mark.parametrize("args, words", [
    (["{tmp}/nowhere", "text"], ["No model folder", "--save-model"]),
    (["{minilm}", "text"], ["not a trained classifier", "head would be random"]),
    (["{model}", "--data", "{tmp}/new.csv", "--text-column", "body", "--out", "{tmp}/out.csv"],
     ["no column 'body'", "--text-column"]),
    (["{model}"], ["No text to classify"]),
    (["{model}", "text", "--data", "{tmp}/new.csv"], ["not both"]),
], ids=["missing folder", "encoder without a head", "no text column", "no text", "texts and a file"])
def test_bad_input_is_one_line_and_writes_nothing(saved, tmp_path, args, words, capsys):
    (tmp_path / "new.csv").write_text("id,review\n1,great\n")
    before = _listing(tmp_path)
    argv = [a.format(tmp=tmp_path, minilm=minilm_dir(), model=saved[0]) for a in args]
    with pytest.raises(SystemExit) as exit_:
        predict.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert all(w in err for w in words), err
    assert _listing(tmp_path) == before
