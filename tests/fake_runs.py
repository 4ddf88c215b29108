"""A spec that trains nothing, for testing the run store; also runnable as a process (`python -m tests.fake_runs`)."""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from lib import profiles, store
from lib.store import Record

SMOKE = profiles.get("smoke")


@dataclass
class FakeSpec:
    """A 'run' that sleeps, logs that it computed (to count double work), and returns fixed numbers."""

    seed: int = 0
    lr: float = 1e-4
    progress: bool = True
    sleep: float = 0.0
    diverge: bool = False

    kind = "fake"
    keeps_checkpoint = False

    def identity(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "sleep"}

    def compute(self, profile=None, stop_on_divergence: bool = False) -> Record:
        log = os.environ.get("FAKE_RUNS_LOG")
        if log:
            with open(log, "a") as f:
                f.write(f"{os.getpid()} {self.seed}\n")
        time.sleep(self.sleep)
        metrics = {"test_accuracy": 0.6 + self.seed / 100, "test_majority": 0.5, "confusion": [[1, 0], [0, 1]]}
        history = pd.DataFrame({"step": [0, 1], "loss": [0.7, 0.6]})
        return Record(metrics, history, None)


def main(n: int, sleep: float) -> None:
    """Store `n` fake runs of experiment "fake" (results dir from WORKBOOK_RESULTS_DIR); say 'ready' once imported."""
    print("ready", flush=True)
    rng = random.Random(os.getpid())
    for seed in range(n):
        store.run("fake", FakeSpec(seed=seed, sleep=sleep * rng.random()), SMOKE)
    Path(os.environ["FAKE_RUNS_LOG"] + ".done").touch()


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
