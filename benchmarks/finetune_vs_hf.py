"""Fine-tuning throughput: our trainer against `transformers.Trainer` at its best.

Same model (minilm-l6), data (movie_snippets training subsample), batch size,
number of optimizer steps, optimizer (fused AdamW, lr 2e-5, 10% linear warmup)
and seed. Trainer runs twice: with its default random batches, and with
`train_sampling_strategy="group_by_length"` (its `LengthGroupedSampler`, the
sampler our loop uses), so the comparison is against Trainer's best setting and
not only its default. Each trial runs in a fresh subprocess so its peak memory
(max RSS) is its own, and the trainers alternate (ours, HF, HF grouped, ours,
...) so drifts in the machine's speed hit all alike.

    python -m benchmarks.finetune_vs_hf [--steps 30] [--repeats 2] [--bf16]

Prints a markdown table; never asserted in tests. Run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

from benchmarks.hardware import replace_section

KINDS = ("ours", "ours without probes", "hf", "hf grouped")
"""Our loop with the probes the notebooks read (per-group rates, update sizes, weight norms) and without any;
Trainer with random batches; Trainer with length-grouped batches."""


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not `ru_maxrss`: on Linux that
    high-water mark survives fork + exec, so every trial would report its parent's peak."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def trial(kind: str, steps: int, batch: int, bf16: bool, n_examples: int) -> dict:
    """One timed training run in this process; returns throughput and memory."""
    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from lib.classify import tokenize, train_classifier
    from lib.data import label_names, load_data
    from lib.models import load_model
    from lib.train_config import TrainConfig

    torch.set_flush_denormal(True)
    dsd = load_data("movie_snippets", max_train_examples=n_examples, max_eval_examples=64, max_test_examples=64)
    tokenizer, model = load_model("minilm-l6", label_names=label_names(dsd), seed=0)
    real_tokens = 0
    if kind not in KINDS:
        raise ValueError(f"Unknown trainer {kind!r}; choose one of {KINDS}.")
    if kind.startswith("ours"):
        cfg = TrainConfig(max_steps=steps, batch_size=batch, bf16=bf16, eval_every=10**9, patience=None, progress=False)
        result = train_classifier(model, tokenizer, dsd, cfg, hooks=[] if kind == "ours without probes" else None)
        seconds = float(
            result.history["seconds"].iloc[-1]
        )  # to the last optimizer step: no evaluation, like HF's train_runtime
        real_tokens = int(result.history["tokens"].iloc[-1])
        optimizer = "AdamW (fused), length-grouped batches" + (", no probes" if kind == "ours without probes" else "")
    else:
        tok = tokenize(dsd, tokenizer, 128)

        counted = {"tokens": 0}
        collate = DataCollatorWithPadding(tokenizer)

        def counting_collate(features):
            batch_ = collate(features)
            counted["tokens"] += int(batch_["attention_mask"].sum())
            return batch_

        with tempfile.TemporaryDirectory() as out:
            args = TrainingArguments(
                output_dir=out,
                max_steps=steps,
                per_device_train_batch_size=batch,
                learning_rate=2e-5,
                weight_decay=0.01,
                warmup_steps=max(1, steps // 10),
                lr_scheduler_type="linear",
                max_grad_norm=1.0,
                bf16=bf16,
                use_cpu=not torch.cuda.is_available(),  # a GPU where there is one, as our loop picks
                report_to=[],
                save_strategy="no",
                eval_strategy="no",
                logging_strategy="no",
                dataloader_num_workers=0,
                disable_tqdm=True,
                seed=0,
                train_sampling_strategy="group_by_length" if kind == "hf grouped" else "random",
            )
            trainer = Trainer(model=model, args=args, train_dataset=tok["train"], data_collator=counting_collate)
            out_ = trainer.train()
            seconds = out_.metrics["train_runtime"]
            inner = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
            batches = "length-grouped" if kind == "hf grouped" else "random"
            optimizer = f"{type(inner).__name__} ({getattr(args.optim, 'value', args.optim)}), {batches} batches"
        real_tokens = counted["tokens"]
    peak_mb = peak_rss_mb()
    return {
        "trainer": kind,
        "steps": steps,
        "seconds": round(seconds, 2),
        "real tokens/s": round(real_tokens / seconds, 1),
        "peak RSS (MB)": round(peak_mb),
        "bf16": bf16,
        "setup": optimizer,
    }


def run(steps: int = 30, batch: int = 32, repeats: int = 2, bf16: bool = False, kinds: tuple[str, ...] = KINDS):
    """Every kind once per repeat, in a fresh subprocess each, in an order shuffled anew for every repeat (seeded), so
    a drift in the machine's speed or a position effect hits all alike; returns (per-trial table, summary)."""
    import random

    import pandas as pd

    rows, order = [], random.Random(0)
    for _ in range(repeats):
        for kind in order.sample(list(kinds), len(kinds)):
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.finetune_vs_hf",
                "--trial",
                kind,
                "--steps",
                str(steps),
                "--batch",
                str(batch),
            ]
            cmd += ["--bf16"] if bf16 else []
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            row = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
            print(row, flush=True)
            rows.append(row)
    table = pd.DataFrame(rows)
    summary = table.groupby("trainer").agg(
        {"seconds": "median", "real tokens/s": "median", "peak RSS (MB)": "max", "setup": "first"}
    )
    for ref in [k for k in ("hf", "hf grouped") if k in summary.index]:
        summary[f"tokens/s vs {ref}"] = (summary["real tokens/s"] / summary.loc[ref, "real tokens/s"]).round(2)
    return table, summary.round({"seconds": 1, "real tokens/s": 1, "peak RSS (MB)": 0})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, from {KINDS}")
    ap.add_argument("--write", action="store_true", help="replace the fine-tuning section of results/benchmarks.md")
    ap.add_argument("--trial", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.trial:
        print("RESULT " + json.dumps(trial(args.trial, args.steps, args.batch, args.bf16, args.steps * args.batch)))
        return
    table, summary = run(args.steps, args.batch, args.repeats, args.bf16, tuple(args.kinds.split(",")))
    if args.write:
        replace_section(SECTION, section(table, summary, args))
    else:
        print(summary.to_markdown())


SECTION = "## Fine-tuning: our trainer vs `transformers.Trainer`"


def section(table, summary, args) -> str:
    """The section of results/benchmarks.md this benchmark owns: setup, machine, per-trial spread and summary."""
    import datetime

    import torch

    from lib.device import cpu_model

    spread = table.groupby("trainer")["seconds"].agg(["min", "max"]).round(1)
    summary = summary.assign(**{"seconds, min–max": [f"{spread.loc[k, 'min']}–{spread.loc[k, 'max']}"
                                                     for k in summary.index]})
    return f"""{SECTION}

Measured {datetime.date.today().isoformat()} with `python -m benchmarks.finetune_vs_hf --steps {args.steps} --repeats \
{args.repeats}{' --bf16' if args.bf16 else ''} --kinds "{args.kinds}" --write` on {cpu_model()}, torch \
{torch.__version__}, {torch.get_num_threads()} threads, {'bf16 autocast' if args.bf16 else 'fp32'}.

minilm-l6 on movie_snippets, batch {args.batch}, {args.steps} optimizer steps, fused AdamW lr 2e-5 with 10% linear
warmup, clipping 1.0, seed 0. `ours` is `lib.trainer.fit` with the probes the notebooks read (per-group rates, update
sizes for the first 20 steps, weight norms every 8 steps); `ours without probes` is the same loop with `hooks=[]`;
`hf` is `transformers.Trainer` with its default random batches and `hf grouped` with
`train_sampling_strategy="group_by_length"` (the sampler our loop uses, Trainer's best setting here). Each trial runs
in a fresh process (peak RSS is its own), {args.repeats} trials each, in an order shuffled anew for every round.
*Real* tokens are non-padding tokens; wall time is the training loop alone (HF's `train_runtime`; ours to the last
optimizer step); the table shows the median trial and the range of all trials.

{summary.to_markdown()}
"""


if __name__ == "__main__":
    main()
