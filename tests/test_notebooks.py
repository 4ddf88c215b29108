"""Every notebook runs top to bottom in the smoke profile; none is committed with outputs."""

from __future__ import annotations

import json

import pytest

from lib.run_notebooks import execute, notebooks

NOTEBOOKS = notebooks()


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_and_one_parameters_cell(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in code), "clear outputs before committing"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "PROFILE" in "".join(tagged[0]["source"])
    assert not any("def " in "".join(c["source"]) for c in code), "helpers belong in lib/, not in a notebook"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_smoke_profile(path, tmp_path):
    execute(path, "smoke", out_dir=tmp_path)
