"""A reproduction audit: re-train stored runs in fresh processes and compare them with their records.

    python -m lib.audit --sample 3 --profile quick

Picks N stored fine-tuning runs at random (seeded), rebuilds each spec from its
`config.json` (it must give the same run id), trains it again in a fresh
Python process — nothing is written to the store — and prints stored against
re-run metrics with their absolute difference. The tolerance depends on where
the record was made:

* same machine, same precision (CPU model, matmul features, torch version,
  bf16 on or off all equal): **exactly equal** — a difference is a bug;
* another CPU or torch build: within `CROSS_MACHINE` points of accuracy and
  macro-F1. Different kernels round differently and a fine-tuning trajectory
  amplifies that, so one run may move by about the seed spread of its cell
  (~1–2 points at the quick baseline); runs near the majority class can flip.

The exit status is 1 when any run is out of tolerance.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd

from lib.cli import Parser
from lib.device import environment
from lib.finetune import FinetuneSpec
from lib.paths import ROOT
from lib.profiles import Profile
from lib.source import DataSource
from lib.store import finished_runs, run_id
from lib.train_config import TrainConfig

CROSS_MACHINE = 3.0
"""Points of test accuracy / macro-F1 a re-run on another machine may differ by."""
METRICS = ("test_accuracy", "test_macro_f1")
MACHINE = ("device_name", "cpu_matmul", "torch")


def spec_from_config(config: dict) -> FinetuneSpec:
    """The fine-tuning spec a stored `config.json` describes."""
    fields = dict(config)
    fields.pop("model_fingerprint", None)  # recomputed from the model folder by the spec itself
    train = TrainConfig(**{**fields.pop("train"), "progress": False})
    if isinstance(fields["data"], dict):
        fields["data"] = DataSource(**{k: v for k, v in fields["data"].items() if k != "fingerprint"})
    return FinetuneSpec(**fields, train=train)


def auditable(profile: Profile) -> list[Path]:
    """Stored fine-tuning runs that rebuild to their own id from a shipped or hub model (not a checkpoint folder)."""
    out = []
    for folder in finished_runs(profile):
        config = json.loads(folder.with_name("config.json").read_text())
        from_checkpoint = Path(str(config.get("model", ""))).parts[:1] == ("checkpoints",)
        if "data" not in config or "train" not in config or "student" in config or from_checkpoint:
            continue
        try:
            if run_id(spec_from_config(config).identity()) == folder.parent.name:
                out.append(folder.parent)
        except (TypeError, ValueError):
            continue  # a config this code no longer builds (an old field): not auditable
    return out


def rerun(folder: Path) -> dict:
    """Train the run of `folder` again in a fresh process; its scalar test metrics."""
    cmd = [sys.executable, "-m", "lib.audit", "--rerun", str(folder)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"re-running {folder.name} failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def same_machine(folder: Path) -> bool:
    """Whether this process runs where the record was made (machine, torch build); precision is in the config."""
    stored, here = json.loads((folder / "env.json").read_text()), environment()
    return all(stored.get(k) == here.get(k) for k in MACHINE)


def audit(folders: list[Path]) -> pd.DataFrame:
    """One row per run and metric: stored, re-run, |difference| in points, tolerance, within it or not."""
    rows = []
    for folder in folders:
        stored = json.loads((folder / "metrics.json").read_text())
        fresh, same = rerun(folder), same_machine(folder)
        tolerance = 0.0 if same else CROSS_MACHINE
        for metric in METRICS:
            diff = abs(100 * (fresh[metric] - stored[metric]))
            rows.append(
                {
                    "run": f"{folder.parent.name}/{folder.name}",
                    "metric": metric,
                    "stored (%)": round(100 * stored[metric], 2),
                    "re-run (%)": round(100 * fresh[metric], 2),
                    "|Δ| (points)": round(diff, 2),
                    "where": "same machine" if same else "other machine",
                    "tolerance": tolerance,
                    "within": diff <= tolerance + 1e-9,
                }
            )
    return pd.DataFrame(rows)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--sample takes a whole number ≥ 1 (how many runs to re-train), got {text!r}")
    return n


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lib.audit", description=__doc__.split("\n\n")[0])
    parser.add_profile()
    parser.add_argument("--sample", type=_positive, default=3, help="how many stored runs to re-train (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="which runs the sample picks (default 0)")
    parser.add_argument("--rerun", help=argparse.SUPPRESS)  # the fresh process of one re-run
    args = parser.parse_args(argv)
    if args.rerun:  # the fresh process: train, print the metrics as the last line
        spec = spec_from_config(json.loads((Path(args.rerun) / "config.json").read_text()))
        metrics = spec.compute().metrics
        print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}))
        return 0
    candidates = auditable(args.profile)
    if not candidates:
        parser.error(f"no stored fine-tuning runs to audit in the {args.profile.name} profile")
    sample = random.Random(args.seed).sample(candidates, min(args.sample, len(candidates)))
    print(f"re-training {len(sample)} of {len(candidates)} auditable stored runs ({args.profile.name}), "
          "one process each")
    table = audit(sample)
    print(table.to_string(index=False))
    bad = int((~table["within"]).sum())
    print(
        f"{len(table) - bad} of {len(table)} within tolerance (same machine: exact; other machine: "
        f"±{CROSS_MACHINE:g} points)"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
