"""The run store: every kind of run is stored and replayed through one function, `run`.

A run is described by a *spec* (`lib.finetune.FinetuneSpec`,
`lib.pretraining.PretrainSpec`, `lib.distill.DistillSpec`, a sweep cell):
`spec.identity()` is the dict that names it and `spec.compute(profile, ...)`
trains it and returns a `Record`. `run(experiment, spec)` returns the stored
`Run` when there is one, else computes, stores and returns it.

On disk, `results/runs/<experiment>/<run_id>/` holds `config.json`,
`history.csv.gz` (one row per optimizer step; `history.csv` in runs stored
before 2026-11-24), `metrics.json`, `env.json` and,
for classifiers, `predictions.csv.gz`. **The folder is the truth**: it appears
in one atomic rename, and `results/<experiment>.csv` is only an index of the
folders, repaired from them on every replay, sweep and report, so no kill can
leave a run without its row or a row without its run. A run that keeps its
weights (pretraining, a distillation teacher) writes them to
`checkpoints/<kind>/<run_id>/` (git-ignored).

`run_id` comes from the identity, so the same spec replays instead of
training again (resume after a crash, replay in class) unless `force=True`.
The same identity stored under another experiment (notebook 02's baseline is
a cell of every ablation) is copied, not retrained. A per-run lock makes two
processes that ask for the same run train it once between them. Processes
launched to train one run together (`lib.parallel`) all compute it; only the
main one writes it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from lib import parallel
from lib.atomic import atomic_path, clean_stale_temporaries, locked
from lib.device import environment
from lib.models import WRITER_FILE, default_attention
from lib.paths import CHECKPOINT_DIR, check_experiment, located, portable, results_dir
from lib.profiles import Profile

HISTORY = "history.csv.gz"

NOT_IN_ID = ("progress", "log_with", "device", "path", "validation_path", "test_path")
"""Config keys that do not change what a run computes, so not part of its id: progress bars, live logging, the
device request, and where a data file lives (its content fingerprint is in the id)."""

ADDED_LATER = {"truncation": "head", "init": "pretrained", "dropout": 0.1, "mask_replace_prob": 0.8,
               "random_replace_prob": 0.1, "adam_beta2": 0.999, "packed": False}
"""Config keys added after runs were stored, with their default: left out of the
id while at that default, so adding an option does not orphan every stored run."""


@dataclass
class Record:
    """What a spec's `compute` returns: the run's results, and how to save its weights if it keeps them."""

    metrics: dict
    history: pd.DataFrame
    predictions: pd.DataFrame | None = None
    save_checkpoint: Callable[[Path], None] | None = None


class Spec(Protocol):
    """What `run` needs of a spec."""

    kind: str  # checkpoints/<kind>/<run_id>/
    keeps_checkpoint: bool

    def identity(self) -> dict: ...

    def compute(self, profile: Profile, stop_on_divergence: bool = False) -> Record:
        """Train now; `profile` says where a spec that stores runs of its own (a distillation teacher) keeps them."""


@dataclass
class Run:
    """A stored run: what it was asked to do, what it measured, its log, and its weights folder if it kept one."""

    experiment: str
    run_id: str
    config: dict
    metrics: dict
    history: pd.DataFrame
    predictions: pd.DataFrame | None
    cached: bool
    path: Path
    checkpoint: Path | None = None

    @property
    def confusion(self) -> np.ndarray:
        return np.array(self.metrics["confusion"])


# ------------------------------------------------------------------ identity
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


def checkpoint_dir(kind: str, rid: str) -> Path:
    """Where a run's weights go, relative to the project root when inside it (configs that name it stay portable)."""
    return portable(CHECKPOINT_DIR / kind / rid)


# ------------------------------------------------------------------ folders
def _json_default(obj):
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _dump(obj: dict) -> str:
    return json.dumps(obj, indent=2, default=_json_default)


def load_run(path: Path, experiment: str, checkpoint: Path | None = None) -> Run:
    """Read a stored run folder back."""
    preds = next((p for p in (path / "predictions.csv.gz", path / "predictions.csv") if p.exists()), None)
    return Run(
        experiment=experiment,
        run_id=path.name,
        config=json.loads((path / "config.json").read_text()),
        metrics=json.loads((path / "metrics.json").read_text()),
        history=pd.read_csv(history_path(path)),
        predictions=pd.read_csv(preds, keep_default_na=False) if preds else None,
        cached=True,
        path=path,
        checkpoint=checkpoint,
    )


def _write_folder(final: Path, config: dict, record: Record) -> None:
    """The whole run folder in one rename; metrics.json (written last) marks a finished run."""
    with atomic_path(final) as tmp:
        tmp.mkdir(parents=True)
        (tmp / "config.json").write_text(_dump(config))
        (tmp / "env.json").write_text(_dump(environment(_find(config, "seed"), default_attention())))
        gz = {"method": "gzip", "mtime": 0}  # no timestamp inside: the same run gives the same bytes
        record.history.to_csv(tmp / HISTORY, index=False, compression=gz)
        if record.predictions is not None:
            record.predictions.to_csv(tmp / "predictions.csv.gz", index=False, compression=gz)
        (tmp / "metrics.json").write_text(_dump(record.metrics))


def history_path(folder: Path) -> Path:
    """A run's per-step log: gzipped since a full-profile run logs thousands of steps (200 kB each as text)."""
    packed = folder / HISTORY
    return packed if packed.exists() else folder / "history.csv"


def _finished(folder: Path) -> bool:
    return (folder / "metrics.json").exists()


def finished_runs(profile: Profile) -> list[Path]:
    """The `metrics.json` of every finished run stored in `profile`, any experiment."""
    return sorted((results_dir(profile) / "runs").glob("*/*/metrics.json"))


def stored_path(experiment: str, config: dict, profile: Profile) -> Path | None:
    """Folder of the finished run for `config` — in `experiment`, else in any other
    experiment of the profile (same config, same computation) — or None."""
    runs = results_dir(profile) / "runs"
    rid = run_id(config)
    own = runs / experiment / rid
    if _finished(own):
        return own
    return next((p.parent for p in sorted(runs.glob(f"*/{rid}/metrics.json"))), None)


# ------------------------------------------------------------- the CSV index
def _row(folder: Path) -> dict:
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    scalars = {k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}
    return {"run_id": folder.name} | flatten(_strip(config)) | scalars


def index_path(experiment: str, profile: Profile) -> Path:
    """`results/<experiment>.csv`: the index of an experiment's run folders."""
    return results_dir(profile) / f"{experiment}.csv"


def reindex(experiment: str, profile: Profile, replaced: set[str] = frozenset()) -> pd.DataFrame:
    """Repair `results/<experiment>.csv` from the run folders and return it.

    Rows keep their order; a finished folder without a row gets one, a row
    without a finished folder is dropped, and the rows of `replaced` runs (a forced run
    rewrote their folders) are read again. The file is rewritten (atomically,
    under a lock) only when something changed, so replays leave git clean.
    """
    root = results_dir(profile)
    csv, folder = index_path(experiment, profile), root / "runs" / experiment
    if not csv.exists() and not folder.is_dir():  # nothing stored: nothing to repair, no lock file to leave
        return pd.DataFrame(columns=["run_id"])
    with locked(csv):
        clean_stale_temporaries(root)
        clean_stale_temporaries(folder)
        old = pd.read_csv(csv) if csv.exists() else pd.DataFrame(columns=["run_id"])
        done = sorted(p.name for p in folder.glob("*") if _finished(p)) if folder.is_dir() else []
        keep = old[old["run_id"].isin(done)]
        missing = [rid for rid in done if rid not in set(keep["run_id"])]
        if len(keep) == len(old) and not missing and not replaced & set(keep["run_id"]):
            return old
        fresh = {rid: _row(folder / rid) for rid in replaced & set(keep["run_id"])}
        if fresh:  # a forced run: its row in place, with what its new folder holds
            keep = pd.DataFrame([fresh.get(r["run_id"], r) for r in keep.to_dict("records")])
        new = pd.concat([keep, pd.DataFrame([_row(folder / rid) for rid in missing])], ignore_index=True)
        if new.empty:
            csv.unlink(missing_ok=True)
            return new
        with atomic_path(csv) as tmp:
            new.to_csv(tmp, index=False)
        return new


def load_experiment(experiment: str, profile: Profile) -> pd.DataFrame:
    """All rows of `results/<experiment>.csv`, repaired from the run folders (empty frame if none yet)."""
    return reindex(experiment, profile)


# ---------------------------------------------------------------- the entry
def _copy_in(found: Path, final: Path) -> None:
    """A run stored under another experiment, copied into this one (the first writer wins)."""
    with atomic_path(final, replace_dir=False) as tmp:
        shutil.copytree(found, tmp)


TIMINGS = ("seconds", "_per_s")
"""Metrics that time a run (train_seconds, tokens_per_s …): they change with the machine's load, never with the run."""


def _report_difference(stored: dict, fresh: dict, rid: str) -> None:
    """A recomputed run (its checkpoint was missing) is compared with its record, never written over it."""
    changed = [k for k, v in stored.items() if isinstance(v, (int, float)) and not k.endswith(TIMINGS)
               and isinstance(fresh.get(k), (int, float)) and fresh[k] != v]
    if changed:
        shown = ", ".join(f"{k} {stored[k]:.4g} → {fresh[k]:.4g}" for k in changed[:4])
        print(
            f"note: run {rid} was recomputed to rebuild its checkpoint and differs from its stored record "
            f"({shown}); the record is kept (force=True replaces it).",
            flush=True,
        )


def run(
    experiment: str,
    spec: Spec,
    profile: Profile,
    force: bool = False,
    keep_checkpoint: bool | None = None,
    stop_on_divergence: bool = False,
    weights: bool = True,
) -> Run:
    """The stored run of `spec` in `experiment`, or compute, store and return it.

    `keep_checkpoint` (default: the spec's kind decides) saves the weights; a
    stored run whose checkpoint is missing (a fresh clone) is recomputed for
    its weights, its record kept — unless `weights=False`: the caller needs
    only the record (runs fine-tuned from the checkpoint replay without it).
    `stop_on_divergence` records a NaN loss as a (failed) run instead of
    raising. Nothing is stored unless compute returns.
    """
    check_experiment(experiment)
    if not (hasattr(spec, "identity") and hasattr(spec, "compute")):
        raise TypeError(f"store.run takes a spec (FinetuneSpec, PretrainSpec, DistillSpec … anything with identity() "
                        f"and compute()), got {type(spec).__name__}.")
    config = spec.identity()
    rid = run_id(config)
    root = results_dir(profile)
    final = root / "runs" / experiment / rid
    keep = spec.keeps_checkpoint if keep_checkpoint is None else keep_checkpoint
    ckpt = checkpoint_dir(spec.kind, rid) if keep else None
    main = parallel.is_main()  # launched as several processes, all train the run and the main one stores it
    with locked(root / "runs" / ".locks" / rid) if main else nullcontext():  # the second asker replays the run
        found = None if force else stored_path(experiment, config, profile)
        have_weights = ckpt is None or not weights or has_weights(ckpt)
        found, have_weights = parallel.from_main((found, have_weights))  # one decision that every process follows
        cached = found is not None and have_weights
        if not cached:
            record = spec.compute(profile, stop_on_divergence)
            if main and ckpt is not None and record.save_checkpoint is not None:
                kept = (found / "metrics.json").read_text() if found is not None else _dump(record.metrics)
                with atomic_path(located(ckpt)) as tmp:
                    record.save_checkpoint(tmp)
                    writer = {"run_id": rid, "record": hashlib.sha1(kept.encode()).hexdigest()[:10]}
                    (tmp / WRITER_FILE).write_text(_dump(writer))
            if found is None:
                if main:
                    _write_folder(final, config, record)
                found = final
            elif main:  # only the weights were missing
                _report_difference(json.loads((found / "metrics.json").read_text()), record.metrics, rid)
        if found != final and main:
            _copy_in(found, final)
    if main:
        reindex(experiment, profile, replaced={rid} if force and not cached else set())
    parallel.barrier()  # the others read the run once the main process has written it
    stored = load_run(final, experiment, ckpt)
    stored.cached = cached
    return stored


def has_weights(folder: str | Path) -> bool:
    """Whether a checkpoint folder's weights are on disk (a fresh clone has the records, not `checkpoints/`)."""
    return (located(folder) / "config.json").exists()


def stored(experiment: str, spec: Spec, profile: Profile) -> Run | None:
    """The stored run of `spec` (in `experiment` or wherever the profile keeps it), or None; never computes."""
    found = stored_path(experiment, spec.identity(), profile)
    return None if found is None else load_run(found, experiment)


def run_all(experiment: str, specs: list[Spec], profile: Profile, force: bool = False,
            weights: bool = True) -> list[Run]:
    """`run` for each spec (e.g. one per seed); each is stored and resumable on its own."""
    return [run(experiment, spec, profile, force, weights=weights) for spec in specs]


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run: flattened config and scalar metrics, for tables and plots."""
    rows = []
    for r in runs:
        scalars = {k: v for k, v in r.metrics.items() if not isinstance(v, (list, dict))}
        rows.append({"run_id": r.run_id, "cached": r.cached} | flatten(r.config) | scalars)
    return pd.DataFrame(rows)


SESSION_COLUMNS = ("cached",)
"""Columns of `runs_frame` that describe this session, not the runs: whether a run was trained now or replayed."""


def write_table(frame: pd.DataFrame | pd.Series, path: Path, **to_csv) -> Path:
    """A derived table (summary, floor, measurements) written atomically, without `SESSION_COLUMNS`: a replay
    must write the same bytes as the session that trained the runs, or replaying would rewrite committed tables."""
    if isinstance(frame, pd.DataFrame):
        frame = frame.drop(columns=[c for c in SESSION_COLUMNS if c in frame.columns])
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **to_csv)
    return path
