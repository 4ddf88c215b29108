"""The run store: one entry point for every run, atomic, replayed, repaired, safe under kills and two writers."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from lib import store
from lib.atomic import TMP_MARK, atomic_path
from lib.finetune import FinetuneSpec
from lib.paths import ROOT

from .conftest import SMOKE
from .fake_runs import FakeSpec


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("FAKE_RUNS_LOG", str(tmp_path / "computed.log"))
    return tmp_path


def computed(results) -> list[str]:
    log = results / "computed.log"
    return log.read_text().split("\n")[:-1] if log.exists() else []


def test_run_is_written_and_then_replayed(results):
    first = store.run("exp", FakeSpec(seed=1), SMOKE)
    assert not first.cached and len(computed(results)) == 1
    assert {"config.json", "history.csv.gz", "metrics.json", "env.json"} <= {p.name for p in first.path.iterdir()}
    env = json.loads((first.path / "env.json").read_text())
    assert env["seed"] == 1 and {
        "cpu_matmul",
        "cpu_threads",
        "device_name",
        "git_commit",
        "git_dirty",
        "attention",
    } <= set(env)
    again = store.run("exp", FakeSpec(seed=1, progress=False), SMOKE)
    assert again.cached and len(computed(results)) == 1  # progress bars don't change a run's identity
    assert again.metrics["test_accuracy"] == 0.61 and again.confusion.tolist() == [[1, 0], [0, 1]]
    forced = store.run("exp", FakeSpec(seed=1), SMOKE, force=True)
    assert not forced.cached and len(computed(results)) == 2
    table = pd.read_csv(results / "exp.csv")
    assert len(table) == 1 and table.loc[0, "lr"] == 1e-4 and "confusion" not in table


def test_run_id_is_stable_and_config_sensitive():
    a = store.run_id({"train": {"seed": 0, "lr": 1e-5}})
    assert a == store.run_id({"train": {"lr": 1e-5, "seed": 0}})
    assert a != store.run_id({"train": {"seed": 0, "lr": 2e-5}})
    assert a.startswith("seed0-")


def test_failed_run_leaves_nothing_behind(results, monkeypatch):
    def broken(self, profile=None, stop_on_divergence=False):
        raise RuntimeError("boom")

    monkeypatch.setattr(FakeSpec, "compute", broken)
    with pytest.raises(RuntimeError):
        store.run("exp", FakeSpec(), SMOKE)
    assert not (results / "exp.csv").exists() and not list(results.rglob("metrics.json"))
    assert not [p for p in results.rglob("*") if TMP_MARK in p.name]


def test_a_lost_csv_row_comes_back_and_an_orphan_row_goes(results):
    """The folder is the truth: deleting a row (a kill between folder and row) is repaired on replay."""
    for seed in range(3):
        store.run("exp", FakeSpec(seed=seed), SMOKE)
    table = pd.read_csv(results / "exp.csv")
    table.iloc[[0, 2]].to_csv(results / "exp.csv", index=False)  # row of seed 1 lost
    store.run("exp", FakeSpec(seed=0), SMOKE)  # any replay repairs the index
    assert sorted(pd.read_csv(results / "exp.csv")["run_id"]) == sorted(table["run_id"])
    assert len(computed(results)) == 3  # and nothing retrained
    gone = store.run("exp", FakeSpec(seed=2), SMOKE).path
    for f in gone.iterdir():
        f.unlink()
    gone.rmdir()
    assert len(store.load_experiment("exp", SMOKE)) == 2  # a row without its folder is dropped


def test_temporaries_of_dead_processes_are_cleaned(results):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = results / "runs" / "exp" / f".seed0-abc{TMP_MARK}{int(dead.stdout)}-deadbeef"
    stale.mkdir(parents=True)
    store.run("exp", FakeSpec(), SMOKE)
    assert not stale.exists()


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_cell_stored_by_another_experiment_is_copied_not_retrained(results):
    store.run("first", FakeSpec(), SMOKE)
    copy = store.run("second", FakeSpec(), SMOKE)
    assert copy.cached and len(computed(results)) == 1 and len(pd.read_csv(results / "second.csv")) == 1


def test_a_table_of_runs_reads_the_same_whether_they_trained_or_replayed(results):
    """A notebook's table written when its runs trained and again when they replayed: the same bytes (the
    `cached` column says which happened this session, so it stays out of the file)."""
    trained = store.run_all("first", [FakeSpec(seed=s) for s in (0, 1)], SMOKE)
    replayed = store.run_all("first", [FakeSpec(seed=s) for s in (0, 1)], SMOKE)
    assert not any(r.cached for r in trained) and all(r.cached for r in replayed)
    a = store.write_table(store.runs_frame(trained), results / "a.csv", index=False).read_bytes()
    b = store.write_table(store.runs_frame(replayed), results / "b.csv", index=False).read_bytes()
    assert a == b and "cached" not in pd.read_csv(results / "a.csv").columns


def test_overrides_reach_the_right_config():
    spec = FinetuneSpec().with_overrides(data="trec6", lr=1e-4, seed=3)
    assert spec.data == "trec6" and spec.train.lr == 1e-4 and spec.train.seed == 3
    assert FinetuneSpec().train.lr == 2e-5  # the default is untouched
    with pytest.raises(ValueError, match="Unknown override"):
        FinetuneSpec().with_overrides(learning_rate=1e-4)


def _start(n: int, sleep: float, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tests.fake_runs", str(n), str(sleep)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_on_one_grid_train_each_run_once(results):
    env = os.environ | {"WORKBOOK_RESULTS_DIR": str(results), "FAKE_RUNS_LOG": str(results / "computed.log")}
    procs = [_start(8, 0.2, env) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    seeds = [line.split()[1] for line in computed(results)]
    assert sorted(seeds) == sorted(str(s) for s in range(8))  # every run trained exactly once between them
    table = pd.read_csv(results / "fake.csv")
    assert len(table) == 8 and table["run_id"].is_unique
    assert len(list((results / "runs" / "fake").glob("*/metrics.json"))) == 8


def test_sigkill_at_random_moments_never_loses_a_row(results):
    """Kill a storing process at random points again and again; every finished run keeps exactly one row."""
    env = os.environ | {"WORKBOOK_RESULTS_DIR": str(results), "FAKE_RUNS_LOG": str(results / "computed.log")}
    rng = random.Random(0)
    for _ in range(8):
        p = _start(12, 0.05, env)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.4))
        p.send_signal(signal.SIGKILL)
        p.wait()
        folders = {f.parent.name for f in (results / "runs" / "fake").glob("*/metrics.json")}
        rows = store.load_experiment("fake", SMOKE)  # what every replay, sweep and report reads
        assert sorted(rows["run_id"]) == sorted(folders) if folders else rows.empty
    finish = _start(12, 0.0, env)
    _, err = finish.communicate(timeout=120)
    assert finish.returncode == 0, err
    table = pd.read_csv(results / "fake.csv")
    assert len(table) == 12 and table["run_id"].is_unique
    leftovers = [p for p in results.rglob("*") if TMP_MARK in p.name]
    assert not leftovers, leftovers


def test_a_rebuilt_checkpoint_reports_changed_numbers_but_not_timings(capsys):
    stored = {"test_accuracy": 0.75, "train_seconds": 10.0, "tokens_per_s": 2000.0, "steps": 64}
    store._report_difference(stored, stored | {"train_seconds": 12.0, "tokens_per_s": 2300.0}, "seed0-x")
    assert capsys.readouterr().out == ""  # the machine's speed changed, not the run
    store._report_difference(stored, stored | {"test_accuracy": 0.74}, "seed0-x")
    assert "test_accuracy 0.75 → 0.74" in capsys.readouterr().out


def test_a_forced_run_updates_its_row_in_the_index(results, monkeypatch):
    """`force=True` rewrites the run's folder; its CSV row must say what the new folder holds, not the old numbers."""
    store.run("exp", FakeSpec(seed=1), SMOKE)
    store.run("exp", FakeSpec(seed=2), SMOKE)
    original = FakeSpec.compute

    def better(self, profile=None, stop_on_divergence=False):
        record = original(self, profile, stop_on_divergence)
        record.metrics["test_accuracy"] = 0.9
        return record

    monkeypatch.setattr(FakeSpec, "compute", better)
    store.run("exp", FakeSpec(seed=1), SMOKE, force=True)
    table = pd.read_csv(results / "exp.csv")
    assert table["test_accuracy"].tolist() == [0.9, 0.62]  # the forced row in place, the other untouched
    assert store.run("exp", FakeSpec(seed=1), SMOKE).metrics["test_accuracy"] == 0.9


_KILLED_BETWEEN_RENAMES = """
import os, signal, sys
from pathlib import Path
from lib.atomic import atomic_path
target, calls, real = Path(sys.argv[1]) / "run", [], os.replace
def replace(a, b):  # the first rename moves the old folder aside; die just before the second puts the new one in
    calls.append(a)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(a, b)
os.replace = replace
with atomic_path(target) as tmp:
    tmp.mkdir()
    (tmp / "metrics.json").write_text("new")
"""


def test_a_kill_between_the_two_renames_of_a_forced_run_keeps_the_old_record(tmp_path):
    """`--force` replaces a run folder in two renames; a SIGKILL between them must not lose the record."""
    from lib.atomic import TMP_MARK, clean_stale_temporaries

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text("old")
    out = subprocess.run([sys.executable, "-c", _KILLED_BETWEEN_RENAMES, str(tmp_path)], cwd=ROOT)
    assert out.returncode == -signal.SIGKILL and not (tmp_path / "run").exists()  # killed mid-swap
    assert len(list(tmp_path.glob(f".*{TMP_MARK}*"))) == 2  # the old record aside, the new one not yet in place
    assert clean_stale_temporaries(tmp_path) == 2
    assert (tmp_path / "run" / "metrics.json").read_text() == "old" and not list(tmp_path.glob(f".*{TMP_MARK}*"))


def test_a_dict_is_not_a_spec(results):
    with pytest.raises(TypeError, match="store.run takes a spec"):
        store.run("exp", {"lr": 1e-4}, SMOKE)
    assert not any(results.iterdir())
