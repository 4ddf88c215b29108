"""The bad-input battery: every command line a user can get wrong, as a table.

Each row is one input a user tried (issue 26 lists where each used to fail: a
traceback, a lock file left behind, a run trained on one row, a silently wrong
table). Each must now be exactly one stderr line that names what is wrong and
how to fix it, exit status 2, no traceback, and leave the results folder as it
was. The rows run in this process as `main(argv)` calls (fast); a few run as
real subprocesses, as a user types them. What a user *meant* that now works
(`--lr 3e-5`, `none` as a size, `NA` as a word) is the second table.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lib import audit, dashboard, findings, finetune, models, predict, pretraining, report, sweep
from lib.hub import hub_online
from lib.paths import ROOT

MAINS = {"finetune": finetune.main, "sweep": sweep.main, "audit": audit.main, "report": report.main,
         "findings": findings.main, "pretraining": pretraining.main, "models": models.main,
         "dashboard": dashboard.main, "predict": predict.main}


def _write(folder: Path) -> dict[str, str]:
    """Smoke-sized inputs, each wrong in one way (or right, for `good`)."""
    def csv(name: str, frame: pd.DataFrame) -> str:
        frame.to_csv(folder / name, index=False)
        return str(folder / name)

    texts = [f"review {i} was {'good' if i % 2 else 'bad'}" for i in range(40)]
    (folder / "no-config").mkdir()
    (folder / "broken-config").mkdir()
    (folder / "broken-config" / "config.json").write_text("{not json")
    (folder / "a-folder").mkdir()
    (folder / "unparsable.csv").write_text('text,label\n"one,0\ntwo,1,extra,fields\n' + "x,1\n" * 30)
    return {
        "good": csv("good.csv", pd.DataFrame({"text": texts, "label": [i % 2 for i in range(40)]})),
        "three-rows": csv("three.csv", pd.DataFrame({"text": ["a", "b", "c"], "label": [0, 1, 0],
                                                      "split": ["train", "validation", "test"]})),
        "one-class-train": csv("one-class.csv", pd.DataFrame(
            {"text": texts, "label": [0] * 30 + [1] * 10, "split": ["train"] * 30 + ["test"] * 10})),
        "conflicting": csv("conflict.csv", pd.DataFrame({"text": texts[:20] * 2,
                                                                 "label": [0] * 20 + [1] * 20})),
        "unparsable": str(folder / "unparsable.csv"),
        "no-config": str(folder / "no-config"),
        "broken-config": str(folder / "broken-config"),
        "a-folder": str(folder / "a-folder"),
        "missing": str(folder / "missing.csv"),
    }


BAD = [  # (command, arguments with {file} placeholders, words the one line must hold)
    # finetune: the options
    ("finetune", "--data {good} --seeds abc", ["--seeds takes whole numbers", "0,1,2"]),
    ("finetune", "--data {good} --seeds -1", ["--seeds must lie in 0..4294967295"]),
    ("finetune", "--data {good} --seeds 4294967296", ["--seeds must lie in 0..4294967295"]),
    ("finetune", "--data {good} --seeds 0,0", ["names a seed twice", "each seed is one run"]),
    ("finetune", "--data {good} --experiment ../escape", ["plain name"]),
    ("finetune", "--data {good} --experiment ''", ["plain name"]),
    ("finetune", "--data {good} --epochs inf", ["epochs must be a finite number"]),
    ("finetune", "--data {good} --weight-decay inf", ["weight_decay must be a finite number"]),
    ("finetune", "--data {good} --lr fast", ["--lr", "invalid float value: 'fast'"]),
    ("finetune", "--data {good} --lr 0", ["lr must be > 0"]),
    ("finetune", "--data {good} --xi 2", ["xi (layer-wise decay ξ) must lie in (0, 1]"]),
    ("finetune", "--data {good} --metric f1", ["metric='f1' is not a fine-tuning metric", "accuracy"]),
    ("finetune", "--data {good} --group-by-length no", ["--group-by-length", "invalid bool value: 'no'"]),
    ("finetune", "--data {good} --max-train-examples 0", ["max_train_examples", "≥ 1"]),
    ("finetune", "--data {good} --max-train-examples many", ["--max-train-examples", "invalid int value"]),
    ("finetune", "--data {good} --profile smok", ["Unknown profile 'smok'", "smoke"]),
    ("finetune", "--data {good} --log-with nonsense", ["log_with must be one of", "tensorboard"]),
    ("finetune", "--data {good} --save-model {a-folder}", ["exists and is not a classifier saved by the workbook"]),
    ("finetune", "--data {good} --save-model {good}", ["exists and is not a classifier saved by the workbook"]),
    ("finetune", "--data {good} --bf16 false", ["unrecognized arguments: --bf16"]),  # precision follows the machine
    # finetune: the model
    ("finetune", "--data {good} --model bert-base-uncased", ["bert-base-uncased", "offline"]),
    ("finetune", "--data {good} --model {no-config}", ["no config.json"]),
    ("finetune", "--data {good} --model {broken-config}", ["broken-config/config.json is not valid JSON"]),
    # finetune: the data
    ("finetune", "--data {missing}", ["No such file", "missing.csv"]),
    ("finetune", "--data {a-folder}", ["is a folder", "name the labelled file inside it"]),
    ("finetune", "--data {good} --encoding nope", ["Unknown encoding 'nope'", "utf-8"]),
    ("finetune", "--data {good} --text-column body", ["no column ['body']", "--text-column"]),
    ("finetune", "--data {good} --label-names neg,pos,neutral", ["neutral", "no rows"]),
    ("finetune", "--data {unparsable}", ["unparsable.csv", "sep"]),
    ("finetune", "--data {three-rows} --split-column split", ["no rows in the train"]),
    ("finetune", "--data {one-class-train} --split-column split", ["no rows in the train"]),
    ("finetune", "--data {conflicting}", ["20 text(s) appear with different labels (40 rows)",
                                                 "drop those rows"]),
    ("finetune", "--data {good} --split-column split --validation {good}", ["either as a split column or as"]),
    ("finetune", "--data nonsense-name", ["Unknown data set 'nonsense-name'", "offline"]),
    ("finetune", "--data glue/sst2 --text-column review", ["file options (--text-column) describe a file",
                                                            "save_to_disk"]),
    # sweep
    ("sweep", "dropout", ["dropout", "warmup"]),
    ("sweep", "warmup --profile smok", ["Unknown profile 'smok'"]),
    ("sweep", "warmup --shard 3/2", ["--shard"]),
    ("sweep", "warmup --lr 1e-4", ["unrecognized arguments: --lr 1e-4"]),
    ("sweep", "warmup --seeds 0,0", ["names a seed twice"]),
    ("sweep", "warmup --variants nonsense", ["nonsense"]),
    ("sweep", "warmup --model {no-config}", ["no config.json"]),
    ("sweep", "warmup --data {three-rows} --split-column split", ["no rows in the train"]),
    # the other commands
    ("audit", "--sample 0", ["--sample takes a whole number ≥ 1"]),
    ("audit", "--sample -1", ["--sample takes a whole number ≥ 1"]),
    ("audit", "", ["no stored fine-tuning runs to audit in the smoke profile"]),
    ("report", "", ["no runs are stored in the smoke profile"]),
    ("report", "--profile fast", ["Unknown profile 'fast'"]),
    ("findings", "--profile fast", ["Unknown profile 'fast'"]),
    ("pretraining", "--profile fast", ["Unknown profile 'fast'"]),
    ("pretraining", "--recipe 2019", ["--recipe", "invalid choice"]),
    ("models", "", ["nothing to do: pass --rebuild-vocab"]),
    ("dashboard", "", ["no runs are stored in the smoke profile"]),
    ("dashboard", "--profile fast", ["Unknown profile 'fast'"]),
    ("predict", "{missing} some text", ["No model folder"]),
    ("predict", "{no-config} some text", ["has no config.json"]),
]
SUBPROCESS = [  # rows that also run as a real process, as a user types them
    ("finetune", "--data {good} --model bert-base-uncased"),
    ("finetune", "--data {unparsable}"),
    ("finetune", "--data {three-rows} --split-column split"),
    ("sweep", "warmup --model {no-config}"),
    ("audit", "--sample 0"),
]


def _argv(command: str, args: str, files: dict[str, str]) -> list[str]:
    argv = [a.format(**files) if "{" in a else a for a in shlex.split(args)]
    if command in ("finetune", "sweep", "audit", "report", "dashboard") and "--profile" not in argv:
        argv += ["--profile", "smoke"]
    return argv


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def world(tmp_path, monkeypatch):
    """Offline, a results folder with something in it, and the input files."""
    results = tmp_path / "results"
    (results / "smoke").mkdir(parents=True)
    (results / "smoke" / "kept.txt").write_text("a user's file\n")
    monkeypatch.setenv("WORKBOOK_RESULTS_DIR", str(results))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_online.cache_clear()
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    yield results, _write(inputs)
    hub_online.cache_clear()


@pytest.mark.parametrize("command, args, words", BAD, ids=[f"{c} {a}" for c, a, _ in BAD])
def test_a_bad_input_is_one_line_and_exit_2_and_writes_nothing(world, command, args, words, capsys):
    results, files = world
    before = _listing(results)
    with pytest.raises(SystemExit) as exit_:
        MAINS[command](_argv(command, args, files))
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)
    assert _listing(results) == before


@pytest.mark.parametrize("command, args", SUBPROCESS, ids=[f"{c} {a}" for c, a in SUBPROCESS])
def test_as_typed_in_a_terminal(world, command, args):
    results, files = world
    words = next(w for c, a, w in BAD if (c, a) == (command, args))
    before = _listing(results)
    env = {"WORKBOOK_RESULTS_DIR": str(results), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", f"lib.{command}", *_argv(command, args, files)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert all(w in out.stderr for w in words) and "Traceback" not in out.stderr, out.stderr
    assert _listing(results) == before


MEANT = [  # (arguments after --data {good} --profile smoke, what the spec must say)
    ("--lr 3e-5", lambda spec, seeds: spec.train.lr == 3e-5),
    ("--max-train-examples none", lambda spec, seeds: spec.max_train_examples is None),
    ("--max-eval-examples 7", lambda spec, seeds: spec.max_eval_examples == 7),
    ("--seeds 3,1", lambda spec, seeds: seeds == [3, 1]),
    ("--warmup-steps none --max-grad-norm none", lambda s, _: s.train.warmup_steps is None
     and s.train.max_grad_norm is None),
    ("--group-by-length false --patience none", lambda s, _: s.train.group_by_length is False
     and s.train.patience is None),
]


@pytest.mark.parametrize("args, check", MEANT, ids=[m[0] for m in MEANT])
def test_what_a_user_meant_is_what_runs(world, args, check):
    results, files = world
    parser = finetune.build_parser()
    parsed = parser.parse_args(_argv("finetune", f"--data {{good}} {args}", files))
    assert check(*finetune.spec_from_args(parser, parsed))
    assert _listing(results) == ["smoke", "smoke/kept.txt"]


def test_words_pandas_reads_as_missing_are_text_and_labels(world):
    """`None`, `NA`, `null` are words here (a class named NA; a text "null"), not missing values."""
    results, files = world
    path = Path(files["good"]).with_name("na.csv")
    pd.DataFrame({"text": ["null", "None", "NA"] + [f"t{i}" for i in range(37)],
                  "label": ["NA", "ok"] * 20}).to_csv(path, index=False)
    parser = finetune.build_parser()
    spec, _ = finetune.spec_from_args(parser, parser.parse_args(["--data", str(path), "--profile", "smoke",
                                                                 "--max-train-examples", "none"]))
    dsd = spec.dataset()
    assert dsd["train"].features["label"].names == ["NA", "ok"]
    assert {"null", "None", "NA"} <= {t for split in dsd.values() for t in split["text"]}
