"""Training curves in TensorBoard, for the stored runs as well as the live ones.

A run's history (`history.csv.gz`: loss, gradient norm, per-group rates, update
sizes, validation metrics, per step) is what notebooks plot. `export` writes
the stored histories of a profile as TensorBoard event files, one folder per
run (`tensorboard/<profile>/<experiment>/<run id>/`), so the committed runs can
be browsed without retraining; a run trained with `log_with="tensorboard"`
(`--log-with tensorboard` on `python -m lib.finetune`) logs live to
`tensorboard/live/`. Then:

    python -m lib.dashboard --profile quick          # the stored runs → tensorboard/quick/
    tensorboard --logdir tensorboard                 # open http://localhost:6006
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd

from lib.atomic import atomic_path
from lib.cli import Parser
from lib.paths import TENSORBOARD_DIR, results_dir
from lib.profiles import Profile
from lib.store import finished_runs, history_path


class DashboardError(ValueError):
    """Nothing to export: an empty store or an unknown experiment."""


def tag(column: str) -> str:
    """A history column as a TensorBoard tag: validation metrics under val/, the rest under train/."""
    return f"val/{column[4:]}" if column.startswith("val_") else f"train/{column}"


def export_run(run: Path, folder: Path) -> int:
    """One stored run's history as an event file in `folder` (replaced whole); returns the scalars written."""
    from torch.utils.tensorboard import SummaryWriter

    history = pd.read_csv(history_path(run))
    numeric = [c for c in history.columns if c != "step" and pd.api.types.is_numeric_dtype(history[c])]
    written = 0
    with atomic_path(folder) as tmp:
        writer = SummaryWriter(log_dir=str(tmp))
        writer.add_text("config", f"```\n{(run / 'config.json').read_text()}\n```")
        for row in history[["step", *numeric]].itertuples(index=False):
            for column, value in zip(numeric, row[1:]):
                if value is not None and not math.isnan(value):
                    writer.add_scalar(tag(column), float(value), int(row[0]))
                    written += 1
        metrics = json.loads((run / "metrics.json").read_text())
        for key in ("test_accuracy", "test_macro_f1"):
            if key in metrics:
                writer.add_scalar(f"test/{key[5:]}", metrics[key], int(history["step"].max()))
        writer.close()
    return written


def export(profile: Profile, experiments: list[str] | None = None, out: Path = TENSORBOARD_DIR) -> dict[str, int]:
    """Every finished run of `profile` (or of `experiments`) → `out/<profile>/<experiment>/<run id>/`;
    returns experiment → runs written."""
    runs = [m.parent for m in finished_runs(profile)]
    if not runs:
        raise DashboardError(f"no runs are stored in the {profile.name} profile "
                             f"({results_dir(profile) / 'runs'}); run a notebook or python -m lib.finetune first")
    known = sorted({r.parent.name for r in runs})
    unknown = sorted(set(experiments or []) - set(known))
    if unknown:
        raise DashboardError(f"no stored experiment {unknown} in the {profile.name} profile; choose from {known}")
    counts: dict[str, int] = {}
    for run in runs:
        experiment = run.parent.name
        if experiments and experiment not in experiments:
            continue
        export_run(run, out / profile.name / experiment / run.name)
        counts[experiment] = counts.get(experiment, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lib.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_profile()
    parser.add_argument("--experiment", action="append", help="only this experiment (repeatable; default: all)")
    parser.add_argument("--out", type=Path, default=TENSORBOARD_DIR, help="where to write (default: tensorboard/)")
    args = parser.parse_args(argv)
    try:
        counts = export(args.profile, args.experiment, args.out)
    except DashboardError as err:
        parser.error(str(err))
    print(f"wrote {sum(counts.values())} runs of {len(counts)} experiments to {args.out / args.profile.name}; "
          f"view them with: tensorboard --logdir {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
