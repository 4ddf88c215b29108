"""Run every benchmark one after another and write results/benchmarks.md.

python -m benchmarks            (run nothing else meanwhile)
"""

from __future__ import annotations

import datetime

from benchmarks import finetune_vs_hf, pretrain_step
from benchmarks.hardware import precisions
from lib.paths import ROOT


def main() -> None:
    machine, pre = pretrain_step.run()
    _, ft32 = finetune_vs_hf.run(bf16=False)
    bf16 = "(skipped: this CPU only emulates bf16)"
    if True in precisions():
        bf16 = finetune_vs_hf.run(bf16=True)[1].to_markdown()
    today = datetime.date.today().isoformat()
    text = f"""# Benchmarks

Measured {today} with `python -m benchmarks` (scripts in `benchmarks/`; numbers are printed, never asserted).

{machine}

## Fine-tuning: our trainer vs `transformers.Trainer`

minilm-l6 on movie_snippets, batch 32, 30 optimizer steps, fused AdamW lr 2e-5 with 10% linear warmup, clipping 1.0,
seed 0; `transformers.Trainer` with its default random batches (`hf`) and with its best setting here,
`train_sampling_strategy="group_by_length"` (`hf grouped`, the sampler our loop uses); each trial in a fresh process
(peak RSS is its own), the three alternating, 2 trials each. *Real* tokens are non-padding tokens; wall time is the
training loop alone (HF's `train_runtime`; ours without the final test pass).

fp32:

{ft32.to_markdown()}

bf16 autocast (all three; on a CPU without native bf16 it is emulated, which is why fp32 is the default there):

{bf16}

## Pretraining step: dense vs sparse MLM head, and `transformers.Trainer` + `BertForPreTraining`

Batch 32 × 128 tokens of NSP pairs from the news corpus, MLM + NSP loss, backward, clipping and a fused AdamW step,
in training mode (dropout on); mean of 5 steps after one warm-up. `Trainer` is `transformers.Trainer` with the stock
`BertForPreTraining` (dense head) at its best settings here (fused AdamW, no logging, no evaluation), fed the very
same batches and masks (sequential sampling through a fresh collator with the same seed). Model FLOPs: 6 × (encoder
weights + attention scores + MLM output layer at every position for the dense head, at masked positions only for the
sparse one) per token; MFU = achieved / measured matmul peak of the same precision.

{pre.to_markdown(index=False)}
"""
    out = ROOT / "results" / "benchmarks.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
