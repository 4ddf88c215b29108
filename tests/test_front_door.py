"""The README and the notebook headers: short, and every time, size or count in them comes from the records."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from lib import design, profiles, report
from lib.paths import ROOT

README = ROOT / "README.md"
TYPED_TIME = re.compile(r"\d+(\.\d+)?\s*(min|minutes|s|seconds|h|hours)\b")


@pytest.fixture
def committed(monkeypatch):
    """The quick profile reading the committed `results/` (the tests otherwise write to a temporary folder)."""
    monkeypatch.delenv("WORKBOOK_RESULTS_DIR", raising=False)
    return profiles.get("quick")


def outside_generated_blocks(text: str) -> str:
    for name in report.README_BLOCKS:
        text = re.sub(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", "", text, flags=re.S)
    return text


def test_readme_is_a_front_door():
    text = README.read_text()
    assert len(text.splitlines()) <= 150, "details belong in docs/, the README links them"
    for reader in ("**Learner.**", "**Teacher.**", "**Researcher.**"):
        assert reader in text
    assert "make reproduce" in text and "make test" in text and "make lab" in text


def test_readme_generated_blocks_are_what_the_records_say(committed):
    text = README.read_text()
    assert report.readme_text(text, committed) == text, "run `python -m lib.report` to regenerate the README blocks"


def test_the_notebook_map_shows_each_recorded_time(committed):
    times = pd.read_csv(ROOT / "results" / "notebook_times.csv").set_index("notebook")["seconds"]
    rendered = design.notebook_map()
    for name, seconds in times.items():
        shown = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
        assert f"[{name[:-6]}](notebooks/{name}) |" in rendered and f"| {shown} |" in rendered, name


def test_no_typed_time_in_the_readme_or_a_notebook_header():
    assert not TYPED_TIME.search(outside_generated_blocks(README.read_text()))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        markdown = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]
        found = [m.group(0) for text in markdown for m in TYPED_TIME.finditer(text)]
        assert not found, f"{path.name} types {found}: render it from lib.design instead"


def test_a_notebooks_design_is_its_profiles(committed):
    """The design cell renders the profile's budget and grid, and the time recorded for that notebook."""
    for name in profiles.PROFILES:
        p = profiles.get(name)
        row = design.design_table("03").loc[name]
        n = p.finetune.max_train_examples
        assert row["training sentences"] == (f"{n:,}" if n else "all") and row["batch"] == p.finetune.batch_size
        assert str(len(p.grids.failure_seeds)) in row["seeds per cell"].split(" / ")  # 03's cells count failures
    seconds = pd.read_csv(ROOT / "results" / "notebook_times.csv").set_index("notebook")["seconds"]
    assert f"**{seconds['03_ablation_warmup.ipynb'] / 60:.1f} min**" in design.design("03", committed)
    assert f"**{seconds['06_pitfalls.ipynb']:.0f} s**" in design.design("06", committed)
