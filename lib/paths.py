"""Where things live on disk, in one place.

Results of the default `quick` profile go to `results/` and are committed; the
`smoke` profile (tests) and `full` profile get folders of their own so a test run
never overwrites the committed record. `WORKBOOK_RESULTS_DIR` overrides all of it
(the tests point it at a temporary folder).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lib.profiles import Profile

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = Path(os.environ.get("WORKBOOK_CACHE_DIR", ROOT / ".cache"))
CHECKPOINT_DIR = Path(os.environ.get("WORKBOOK_CHECKPOINT_DIR", ROOT / "checkpoints"))
NOTEBOOKS = ROOT / "notebooks"
TENSORBOARD_DIR = Path(os.environ.get("WORKBOOK_TENSORBOARD_DIR", ROOT / "tensorboard"))  # event files (git-ignored)
MODELS_DIR = Path(os.environ.get("WORKBOOK_MODELS_DIR", ROOT / "models"))  # classifiers you keep (git-ignored)
PLAIN = "A-Za-z0-9_.-"
"""The characters of a plain name (an experiment, a data label): safe as a file name, never a folder."""


def portable(path: str | Path) -> Path:
    """A path inside the project relative to its root (the same from notebooks/ or a terminal); others absolute."""
    full = Path(path).expanduser().resolve()
    return full.relative_to(ROOT) if full.is_relative_to(ROOT) else full


def located(path: str | Path) -> Path:
    """Where a stored path points: project-relative paths are relative to the project root, not the cwd."""
    return Path(path) if Path(path).is_absolute() else ROOT / path


def notebooks(pattern: str = "[0-9][0-9]_*.ipynb") -> list[Path]:
    """The numbered notebooks, in reading order."""
    return sorted(NOTEBOOKS.glob(pattern))


def plain_name(text: str) -> str:
    """`text` spelled as a plain name: every run of other characters becomes '_' ("my data (v2)" → "my_data_v2")."""
    return re.sub(f"[^{PLAIN}]+", "_", text).strip("_.") or "data"


def check_experiment(name: str) -> str:
    """An experiment's name becomes `results/<name>.csv` and `results/runs/<name>/`: a plain name only (letters,
    digits, '_', '-', '.'), so no run is written outside the results folder or into `runs/` itself."""
    if not isinstance(name, str) or not re.fullmatch(f"[A-Za-z0-9][{PLAIN}]*", name) or name.endswith(".csv"):
        raise ValueError(f"An experiment is a plain name (letters, digits, '_', '-', '.'; no folders), e.g. my_run; "
                         f"got {name!r}.")
    return name


def results_dir(profile: Profile) -> Path:
    """The folder a run in `profile` writes to (created on demand by writers)."""
    env = os.environ.get("WORKBOOK_RESULTS_DIR")
    if env:
        return Path(env)
    base = ROOT / "results"
    return base if profile.name == "quick" else base / profile.name


def stored_checkpoint_record(path: str | Path) -> Path | None:
    """The stored record (`metrics.json`) of the run whose checkpoint `path` is, when the weights are missing: a fresh
    clone has every record in git but no weights (`checkpoints/` is git-ignored). A run that fine-tunes a checkpoint is
    identified by its writer's record, so it replays without the weights; only computing it needs them back."""
    path = located(path)
    if path.exists() or path.parent.parent != CHECKPOINT_DIR:
        return None
    from lib.profiles import PROFILES, get  # every profile's results folder: a run id names one run in one of them

    for folder in dict.fromkeys(results_dir(get(name)) for name in PROFILES):
        found = next(iter(folder.glob(f"runs/*/{path.name}/metrics.json")), None)
        if found is not None:
            return found
    return None


def figures_dir(profile: Profile) -> Path:
    """Figures sit beside the CSVs they are rebuilt from."""
    path = results_dir(profile) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path
