"""Where runs are stored, and how a finished run is never run twice.

Each run writes `results/runs/<experiment>/<run_id>/` with `config.json`,
`history.csv` (one row per optimizer step), `metrics.json`, `env.json`
(versions, device, seed) and, for classifiers, `predictions.csv.gz` (gzip: the
test sentences repeat in every run); then it adds
one row to `results/<experiment>.csv`. Both writes are atomic (write to a
temporary name, then rename), so a crash or Ctrl-C leaves either the whole run
or nothing.

`run_id` is derived from the config, so asking for a run that already exists
returns the stored one instantly (resume after a crash, replay in class) unless
`force=True`. The same config stored under another experiment (notebook 02's
baseline is a cell of every ablation) is copied over instead of retrained.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lib.paths import results_dir

NOT_IN_ID = ("progress", "device")
"""Config keys that do not change what a run computes, so not part of its id."""

ADDED_LATER = {"truncation": "head"}
"""Config keys added after runs were stored, with their default: left out of the
id while at that default, so adding an option does not orphan every stored run."""


def run_id(config: dict) -> str:
    """A short stable id: readable prefix (seed) + hash of the whole config."""
    clean = _strip(config)
    digest = hashlib.sha1(json.dumps(clean, sort_keys=True, default=str).encode()).hexdigest()[:10]
    seed = _find(clean, "seed")
    return f"seed{seed}-{digest}" if seed is not None else digest


def _strip(config: dict) -> dict:
    return {
        k: _strip(v) if isinstance(v, dict) else v
        for k, v in config.items()
        if k not in NOT_IN_ID and not (k in ADDED_LATER and v == ADDED_LATER[k])
    }


def _find(config: dict, key: str):
    for k, v in config.items():
        if k == key:
            return v
        if isinstance(v, dict) and (found := _find(v, key)) is not None:
            return found
    return None


def flatten(config: dict, prefix: str = "") -> dict:
    """{'train': {'lr': 1}} → {'train.lr': 1}, for one CSV row per run."""
    out: dict = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out |= flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def env_info(seed: int | None = None) -> dict:
    """Library versions and the machine: what a reader needs to trust a number."""
    import datasets
    import torch
    import transformers

    from lib.trainer import pick_device

    device = pick_device()
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "seed": seed,
    }


def _json_default(obj):
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, default=_json_default))


@dataclass
class Run:
    """A stored run: what it was asked to do, what it measured, and its log."""

    experiment: str
    run_id: str
    config: dict
    metrics: dict
    history: pd.DataFrame
    predictions: pd.DataFrame | None
    cached: bool
    path: Path

    @property
    def confusion(self) -> np.ndarray:
        return np.array(self.metrics["confusion"])


def load_run(path: Path, experiment: str) -> Run:
    """Read a stored run folder back."""
    preds = next((p for p in (path / "predictions.csv.gz", path / "predictions.csv") if p.exists()), path / "predictions.csv.gz")
    return Run(
        experiment=experiment,
        run_id=path.name,
        config=json.loads((path / "config.json").read_text()),
        metrics=json.loads((path / "metrics.json").read_text()),
        history=pd.read_csv(path / "history.csv"),
        predictions=pd.read_csv(preds, keep_default_na=False) if preds.exists() else None,
        cached=True,
        path=path,
    )


def append_row(csv_path: Path, row: dict) -> None:
    """Add (or replace, by run_id) one row of `<experiment>.csv`, atomically."""
    frame = pd.DataFrame([row])
    if csv_path.exists():
        old = pd.read_csv(csv_path)
        frame = pd.concat([old[old["run_id"] != row["run_id"]], frame], ignore_index=True)
    tmp = csv_path.with_suffix(f".tmp{os.getpid()}")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, csv_path)


def stored_path(experiment: str, config: dict, profile: str = "quick") -> Path | None:
    """Folder of the finished run for `config` — in `experiment`, else in any other
    experiment of the profile (same config, same computation) — or None."""
    runs = results_dir(profile) / "runs"
    rid = run_id(config)
    own = runs / experiment / rid
    if (own / "metrics.json").exists():
        return own
    return next((p.parent for p in sorted(runs.glob(f"*/{rid}/metrics.json"))), None)


def _store_row(root: Path, experiment: str, rid: str, config: dict, metrics: dict) -> None:
    scalars = {k: v for k, v in metrics.items() if not isinstance(v, (list, dict, np.ndarray))}
    append_row(root / f"{experiment}.csv", {"run_id": rid} | flatten(_strip(config)) | scalars)


def cached_run(
    experiment: str,
    config: dict,
    compute: Callable[[], tuple[dict, pd.DataFrame, pd.DataFrame | None]],
    profile: str = "quick",
    force: bool = False,
) -> Run:
    """Return the stored run for `config`, or compute, store and return it.

    `compute()` returns (metrics, history, predictions-or-None). Nothing is
    written unless it returns: a run that raises leaves no trace.
    """
    root = results_dir(profile)
    rid = run_id(config)
    final = root / "runs" / experiment / rid
    found = None if force else stored_path(experiment, config, profile)
    if found == final:
        return load_run(final, experiment)
    if found is not None:  # stored by another experiment: copy it in, atomically
        tmp = final.with_name(f".{rid}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(found, tmp)
        os.replace(tmp, final)
        run = load_run(final, experiment)
        _store_row(root, experiment, rid, config, run.metrics)
        return run

    metrics, history, predictions = compute()
    tmp = final.with_name(f".{rid}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _write_json(tmp / "config.json", config)
    _write_json(tmp / "env.json", env_info(_find(config, "seed")))
    history.to_csv(tmp / "history.csv", index=False)
    if predictions is not None:
        predictions.to_csv(tmp / "predictions.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
    _write_json(tmp / "metrics.json", metrics)  # written last: its presence marks a finished run
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _store_row(root, experiment, rid, config, metrics)
    run = load_run(final, experiment)
    run.cached = False
    return run


def load_experiment(experiment: str, profile: str = "quick") -> pd.DataFrame:
    """All rows of `results/<experiment>.csv` (empty frame if none yet)."""
    path = results_dir(profile) / f"{experiment}.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame()
