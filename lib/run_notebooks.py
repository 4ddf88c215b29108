"""Execute every notebook headless in one profile: `python -m lib.run_notebooks`.

`make reproduce` calls this with the default `quick` profile; the tests call it
per notebook with `smoke`. Executed copies go to `executed/<profile>/` (git
ignored: notebooks are committed without outputs); the notebooks write
`results/`. Notebooks run one after another — two torch processes on a 2-core
CPU slow each other about 8×.

`results/notebook_times.csv` holds, for each notebook, its time from an empty
`results/runs/`, recorded when it last *computed* something: the wall time of
that pass, plus the recorded training and testing time of the runs it replayed
instead (`lib.design.compute_by_notebook`: a run shared with an earlier
notebook is that notebook's). A notebook that only replayed stored runs keeps
its recorded time, so a replay leaves git clean (a replay's own time is printed).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

from lib import design, report
from lib.cli import Parser
from lib.paths import NOTEBOOKS, ROOT, notebooks, results_dir
from lib.profiles import Profile
from lib.store import finished_runs, write_table


def execute(notebook: Path, profile: Profile, out_dir: Path | None = None, parameters: dict | None = None) -> float:
    """Run one notebook with PROFILE (and any other `parameters`) injected into its parameters cell; return seconds."""
    import papermill

    out_dir = out_dir or ROOT / "executed" / profile.name
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    papermill.execute_notebook(
        str(notebook),
        str(out_dir / notebook.name),
        parameters={"PROFILE": profile.name} | (parameters or {}),
        cwd=str(NOTEBOOKS),  # the kernel is the one the notebook names (`bert-workbook`, installed by `make install`)
        progress_bar=False,
        log_output=False,
    )
    return time.perf_counter() - start


def run_seconds(metrics: set[Path]) -> float:
    """Training + testing seconds of the finished runs whose `metrics.json` these are."""
    times = (json.loads(path.read_text()) for path in metrics)
    return sum(float(m.get("train_seconds", 0.0)) + float(m.get("test_seconds", 0.0)) for m in times)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lib.run_notebooks", description=__doc__.splitlines()[0])
    parser.add_profile()
    parser.add_argument("--only", default=None, help="run only notebooks whose name contains this")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    path = results_dir(args.profile) / "notebook_times.csv"
    old = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["notebook", "profile", "seconds"])
    times, total = [], 0.0
    for nb in notebooks():
        if args.only and args.only not in nb.name:
            continue
        print(f"[{args.profile.name}] {nb.name} ...", flush=True)
        before = set(finished_runs(args.profile))
        seconds = execute(nb, args.profile)
        total += seconds
        computed = set(finished_runs(args.profile)) - before
        print(f"[{args.profile.name}] {nb.name} done in {seconds:.0f} s ({len(computed)} new runs)", flush=True)
        if computed or nb.name not in set(old["notebook"].tolist()):
            own = design.compute_by_notebook(args.profile)
            replayed = 60 * float(own["compute (min)"].get(nb.name, 0.0)) - run_seconds(computed)
            times.append({"notebook": nb.name, "profile": args.profile.name,
                          "seconds": round(seconds + max(0.0, replayed), 1), "last_pass_seconds": round(seconds, 1),
                          "new_runs": len(computed)})
    print(f"this pass: {total / 60:.1f} min", flush=True)
    if times:  # keep the other notebooks' last computing times
        new = pd.concat([old[~old["notebook"].isin([t["notebook"] for t in times])], pd.DataFrame(times)])
        new = new.astype({"new_runs": "Int64"})  # blank where a notebook's record predates the count
        path.parent.mkdir(parents=True, exist_ok=True)
        write_table(new.sort_values("notebook"), path, index=False)
        print(f"times of notebooks that computed runs in {path}")
    print("report:", report.write(args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
