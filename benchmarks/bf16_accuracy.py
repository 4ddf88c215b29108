"""Does bf16 autocast keep fine-tuning accuracy? Notebook 02's quick recipe
(minilm-l6, movie_snippets, 1,024 examples, 2 epochs, lr 1e-4) over 3 seeds,
fp32 against bf16 autocast (both stored in results/runs/bf16_check).

    python -m benchmarks.bf16_accuracy      (≈ 3 min; appends a section to results/benchmarks.md)
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from lib import profiles, store
from lib.finetune import FinetuneSpec
from lib.paths import ROOT
from lib.stats import mean_std
from lib.train_config import TrainConfig

SEEDS = [0, 1, 2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="re-measure the stored runs on this machine")
    force = parser.parse_args(argv).force
    spec = FinetuneSpec(
        max_train_examples=1024,
        max_eval_examples=256,
        train=TrainConfig(lr=1e-4, epochs=2, eval_every=16, patience=3, progress=False),
    )
    frames = []
    for bf16 in (False, True):
        runs = store.run_all("bf16_check", spec.with_overrides(bf16=bf16).seeds(SEEDS), profiles.get("quick"), force)
        frames.append(store.runs_frame(runs).assign(precision="bf16" if bf16 else "fp32"))
    table = pd.concat(frames)
    summary = mean_std(table, "precision", ["test_accuracy", "test_macro_f1"])
    summary["train s / run"] = table.groupby("precision")["train_seconds"].mean().round(1)
    diff = 100 * (
        table.loc[table["precision"] == "bf16", "test_accuracy"].to_numpy()
        - table.loc[table["precision"] == "fp32", "test_accuracy"].to_numpy()
    )
    line = (
        f"bf16 − fp32, paired by seed: {diff.mean():+.1f} ± {diff.std(ddof=1):.1f} accuracy points over {len(diff)} "
        f"seeds (per seed: {np.round(diff, 1).tolist()})."
    )
    env = json.loads(next((ROOT / "results" / "runs" / "bf16_check").glob("*/env.json")).read_text())
    machine = f"{env.get('device_name', 'an unrecorded CPU')} ({env.get('cpu_matmul', 'matmul features unrecorded')})"
    section = f"""
## Does bf16 keep fine-tuning accuracy?

`python -m benchmarks.bf16_accuracy`: notebook 02's quick recipe at lr 1e-4 on movie_snippets (minilm-l6, 1,024
examples, 2 epochs, 3 seeds), with `TrainConfig(bf16=False)` and `TrainConfig(bf16=True)`, stored in
`results/runs/bf16_check/` (whose `env.json` name the machine): measured on {machine}. Test accuracy (%)
and training seconds per run:

{summary.to_markdown()}

{line}

**Defaults that follow from these tables.** `TrainConfig.bf16` defaults to `None` ("auto"): bf16 autocast where
the hardware has it natively (CUDA with bf16; CPUs with AMX or AVX512-BF16), fp32 elsewhere (emulated bf16 is slow).
A run's config keeps the request and its metrics say which precision ran. The sparse MLM head stays the pretraining
default (`PretrainSpec.sparse_head=True`; the pretraining table above gives its speed-up per model and precision),
and so do length-grouped batches (`group_by_length=True`; the fine-tuning tables above compare our loop with
`transformers.Trainer` both with and without them).
"""
    print(section)
    path = ROOT / "results" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    text = text.split("\n## Does bf16 keep fine-tuning accuracy?")[0].rstrip() + "\n" + section
    path.write_text(text)


if __name__ == "__main__":
    main()
