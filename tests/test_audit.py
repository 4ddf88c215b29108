"""The reproduction audit: a stored run re-trained in a fresh process gives exactly its stored numbers here."""
from __future__ import annotations

from lib import audit, finetune, store

from .conftest import QUICK, SMOKE


def test_a_smoke_run_retrained_in_another_process_is_identical(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORKBOOK_RESULTS_DIR", str(tmp_path))
    run = store.run("audit_test", finetune.baseline_spec(SMOKE).with_overrides(lr=1e-4, max_steps=3), SMOKE)
    assert audit.auditable(SMOKE) == [run.path]
    assert audit.main(["--profile", "smoke", "--sample", "1"]) == 0
    out = capsys.readouterr().out
    assert "same machine" in out and "2 of 2 within tolerance" in out


def test_a_stored_config_rebuilds_its_own_spec():
    spec = finetune.baseline_spec(QUICK).with_overrides(lr=1e-4, seed=2, xi=0.9)
    rebuilt = audit.spec_from_config(spec.identity())
    assert store.run_id(rebuilt.identity()) == store.run_id(spec.identity()) and rebuilt.train.xi == 0.9
