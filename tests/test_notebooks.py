"""Every notebook runs top to bottom in the smoke profile; none is committed with outputs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from lib import findings
from lib.paths import notebooks, results_dir
from lib.run_notebooks import execute

from .conftest import SMOKE

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


def outputs_of(executed: Path) -> list[dict]:
    cells = json.loads(executed.read_text())["cells"]
    return [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_smoke_profile_and_shows_what_it_promises(path, tmp_path):
    """Top to bottom in smoke, then its key outputs: no error or traceback anywhere, at least one of its figures
    written by this run, and (where the notebook has a family of findings) a non-empty findings table."""
    start = time.time()
    execute(path, SMOKE, out_dir=tmp_path)
    outputs = outputs_of(tmp_path / path.name)
    text = "\n".join(str(o.get("text", "")) + "".join(str(o.get("data", {}).get(k, ""))
                                                      for k in ("text/plain", "text/markdown")) for o in outputs)
    assert not [o for o in outputs if o["output_type"] == "error"] and "Traceback" not in text
    number = path.name[:2]
    figures = [f for f in (results_dir(SMOKE) / "figures").glob(f"{number}_*.png") if f.stat().st_mtime >= start - 1]
    assert figures, f"{path.name} wrote no figure"
    if number in findings.FAMILIES:
        table = pd.read_csv(results_dir(SMOKE) / "findings.csv", dtype={"notebook": str})
        assert (table["notebook"].str.zfill(2) == number).any(), f"{path.name}: no findings rows"
    assert "**Time** on the 2-core CPU" in text, f"{path.name}: the generated design cell shows nothing"
