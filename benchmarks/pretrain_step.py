"""Pretraining step throughput: dense vs sparse MLM head, fp32 vs bf16, per model,
and model FLOP utilisation against this machine's measured matmul peak.

    python -m benchmarks.pretrain_step [--steps 5] [--batch 32] [--seq 128]

Prints a markdown table (never asserted in tests). Run nothing else meanwhile:
two torch processes on 2 cores slow each other ~8x.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.hardware import describe_machine, matmul_peak, precisions
from lib.data import load_news_corpus
from lib.mlm import PretrainingCollator, PretrainingModel
from lib.models import load_model
from lib.nsp import nsp_examples
from lib.optim import build_optimizer, param_groups


def train_flops_per_token(model, seq: int, masked_fraction: float, sparse: bool) -> float:
    """6·N per token for the encoder matmuls + attention scores, plus the MLM output layer
    (at every position when dense, at masked positions only when sparse)."""
    c = model.config
    encoder = 12 * c.num_hidden_layers * c.hidden_size**2  # QKV+O (4H²) + FFN (8H²) weights per layer
    attention = 2 * c.num_hidden_layers * seq * c.hidden_size  # QKᵀ and AV per token
    head = c.hidden_size * c.vocab_size * (masked_fraction if sparse else 1.0) + c.hidden_size**2
    return 6 * (encoder + attention + head)


def bench(name: str, sparse: bool, bf16: bool, batches: list[dict], steps: int) -> dict:
    tokenizer, model = load_model(name, "pretraining", seed=0)
    wrapped = PretrainingModel(model, sparse=sparse)
    opt = build_optimizer(param_groups(model, 1e-4))
    params = list(model.parameters())

    def step(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = wrapped(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    step(batches[0])  # warm-up
    start = time.perf_counter()
    losses = [step(b) for b in batches[1 : steps + 1]]
    seconds = (time.perf_counter() - start) / steps
    tokens = sum(int(b["attention_mask"].sum()) for b in batches[1 : steps + 1]) / steps
    seq = batches[1]["input_ids"].shape[1]
    masked = sum(int((b["labels"] != -100).sum()) for b in batches[1 : steps + 1]) / steps / tokens
    flops = train_flops_per_token(model, seq, masked, sparse) * batches[1]["input_ids"].numel()
    return {
        "model": name,
        "head": "sparse" if sparse else "dense",
        "precision": "bf16" if bf16 else "fp32",
        "s/step": round(seconds, 3),
        "tokens/s": round(tokens / seconds),
        "TFLOP/s": flops / seconds / 1e12,
        "loss": round(losses[-1], 3),
    }


def run(steps: int = 5, batch: int = 32, seq: int = 128, models: str = "bert-tiny,bert-mini,minilm-l6"):
    """All (model, head, precision) combinations; returns (machine line, table)."""
    import pandas as pd

    torch.set_flush_denormal(True)
    peak = matmul_peak()
    docs = list(load_news_corpus()["validation"]["sentences"])
    rows = []
    for name in models.split(","):
        tokenizer, _ = load_model(name, "pretraining")
        examples = nsp_examples(docs, tokenizer, max_seq_len=seq, seed=0)
        collate = PretrainingCollator(tokenizer, seed=0)
        batches = [collate(examples[i * batch : (i + 1) * batch]) for i in range(steps + 1)]
        for sparse in (False, True):
            for bf16 in precisions():
                row = bench(name, sparse, bf16, batches, steps)
                row["MFU %"] = round(100 * row["TFLOP/s"] / (peak["bf16"] if bf16 else peak["fp32"]), 1)
                row["TFLOP/s"] = round(row["TFLOP/s"], 3)
                rows.append(row)
                print(row, flush=True)
    table = pd.DataFrame(rows)
    base = table.groupby("model")["tokens/s"].transform("first")
    table["speed-up vs dense fp32"] = (table["tokens/s"] / base).round(2)
    return describe_machine(peak), table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--models", default="bert-tiny,bert-mini,minilm-l6")
    args = ap.parse_args()
    machine, table = run(args.steps, args.batch, args.seq, args.models)
    print(machine)
    print(table.to_markdown(index=False))


if __name__ == "__main__":
    main()
