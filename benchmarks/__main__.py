"""Run every benchmark one after another and write results/benchmarks.md.

python -m benchmarks            (≈ 10 min on the 2-core CPU; run nothing else meanwhile)
"""

from __future__ import annotations

import datetime

from benchmarks import finetune_vs_hf, pretrain_step
from lib.paths import ROOT


def main() -> None:
    machine, pre = pretrain_step.run()
    _, ft32 = finetune_vs_hf.run(bf16=False)
    _, ft16 = finetune_vs_hf.run(bf16=True)
    today = datetime.date.today().isoformat()
    text = f"""# Benchmarks

Measured {today} with `python -m benchmarks` (scripts in `benchmarks/`; numbers are printed, never asserted).

{machine}

## Fine-tuning: our trainer vs `transformers.Trainer`

minilm-l6 on movie_snippets, batch 32, 30 optimizer steps, AdamW lr 2e-5 with 10% linear warmup, clipping 1.0, seed 0;
each trial in a fresh process (peak RSS is its own), the two trainers alternating, 2 trials each. *Real* tokens are
non-padding tokens; wall time is the training loop alone (HF's `train_runtime`; ours without the final test pass).

fp32:

{ft32.to_markdown()}

bf16 autocast (both trainers):

{ft16.to_markdown()}

## Pretraining step: dense vs sparse MLM head, fp32 vs bf16

Batch 32 × 128 tokens of NSP pairs from the news corpus, MLM + NSP loss, backward, clipping and a fused AdamW step;
mean of 5 steps after one warm-up. Model FLOPs: 6 × (encoder weights + attention scores + MLM output layer at every
position for the dense head, at masked positions only for the sparse one) per token; MFU = achieved / measured matmul
peak of the same precision.

{pre.to_markdown(index=False)}
"""
    out = ROOT / "results" / "benchmarks.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
