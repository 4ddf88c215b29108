"""The README and the notebook headers: short, and every time, size or count in them comes from the records."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from lib import ablations, design, finetune, profiles, report
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
        rates = design.design_table("02").loc[name]
        assert rates["rates"] == ", ".join(map(finetune.lr_label, p.grids.baseline_rates))
        assert rates["seeds"] == len(p.grids.paired_seeds) and rates["data"] == "movie_snippets, trec6"
        cells = ablations.llrd(p).variants
        assert design.design_table("05").loc[name, "cells"] == len(p.grids.llrd_rates) * len(p.grids.llrd_xis) == \
            len(cells)
        students = design.design_table("08").loc[name]
        assert students["student rates"] == ", ".join(map(finetune.lr_label, p.distill_rates))
        assert students["labelled sentences"] == (f"{p.distill_examples:,}" if p.distill_examples else "all")
        assert students["transfer sentences"] == (f"{p.distill_transfer:,}" if p.distill_transfer else "all")
    seconds = pd.read_csv(ROOT / "results" / "notebook_times.csv").set_index("notebook")["seconds"]
    assert f"**{seconds['03_ablation_warmup.ipynb'] / 60:.1f} min**" in design.design("03", committed)
    assert f"**{seconds['06_pitfalls.ipynb']:.0f} s**" in design.design("06", committed)
