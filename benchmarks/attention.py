"""Attention kernel on this CPU: eager vs PyTorch SDPA for MiniLM, training and inference.

    python -m benchmarks.attention          (≈ 1 min; run nothing else meanwhile)

Checks the speed side of `lib.models.default_attention` (eager off CUDA).
Appends a section to results/benchmarks.md; prints the table; asserts nothing.
"""

from __future__ import annotations

import itertools
import statistics
import time

import pandas as pd
import torch
from transformers import BertForSequenceClassification

from benchmarks.hardware import append_section, precisions
from lib.models import minilm_dir, quiet_transformers


def step_ms(model, batch: int, seq: int, bf16: bool, train: bool, reps: int = 6) -> float:
    """Median wall time on a half-padded batch: forward + backward in training mode
    (dropout on), or a no-grad forward in evaluation mode (validation and test passes)."""
    x = torch.randint(1000, 20000, (batch, seq))
    mask = torch.ones_like(x)
    mask[: batch // 2, seq // 2 :] = 0
    y = torch.randint(0, 2, (batch,))
    times = []
    model.train(train)
    for i in range(reps + 2):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16), torch.set_grad_enabled(train):
            loss = model(input_ids=x, attention_mask=mask, labels=y).loss
        if train:
            loss.backward()
            model.zero_grad(set_to_none=True)
        if i >= 2:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def run(batch: int = 32, seqs: tuple[int, ...] = (32, 64, 128)) -> pd.DataFrame:
    torch.set_flush_denormal(True)
    with quiet_transformers():
        models = {
            k: BertForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2, attn_implementation=k)
            for k in ("sdpa", "eager")
        }
    rows = []
    for train, bf16, seq in itertools.product((True, False), reversed(precisions()), seqs):
        ms = {k: step_ms(m, batch, seq, bf16, train) for k, m in models.items()}
        rows.append(
            {
                "pass": "training (fwd + bwd)" if train else "inference (fwd)",
                "precision": "bf16 autocast" if bf16 else "fp32",
                "batch × tokens": f"{batch} × {seq}",
                "SDPA (ms)": round(ms["sdpa"]),
                "eager (ms)": round(ms["eager"]),
                "eager speed-up": f"{ms['sdpa'] / ms['eager']:.2f}×",
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    table = run()
    text = f"""
## Attention kernel: eager vs SDPA

minilm-l6 sequence classifier, half of each batch padded to half length; training = forward + backward with dropout,
inference = no-grad forward in evaluation mode; median of 6 passes after 2 warm-ups (`python -m benchmarks.attention`).

{table.to_markdown(index=False)}
"""
    append_section(text)


if __name__ == "__main__":
    main()
