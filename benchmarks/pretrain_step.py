"""Pretraining step throughput: dense vs sparse MLM head, fp32 vs bf16, per model, against
`transformers.Trainer` + `BertForPreTraining` (dense head) on the same batches, and model FLOP utilisation
against this machine's measured matmul peak.

    python -m benchmarks.pretrain_step [--steps 5] [--batch 32] [--seq 128]

Prints a markdown table (never asserted in tests). Run nothing else meanwhile:
two torch processes on 2 cores slow each other ~8x.
"""

from __future__ import annotations

import argparse
import tempfile
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
    wrapped = PretrainingModel(model, sparse=sparse).train()  # dropout on, as in training (from_pretrained is eval)
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
    return {"model": name, "trainer": "ours", "head": "sparse" if sparse else "dense",
            "precision": "bf16" if bf16 else "fp32"} | rates(model, batches, steps, seconds, sparse) | {
            "loss": round(losses[-1], 3)}


def rates(model, batches: list[dict], steps: int, seconds: float, sparse: bool) -> dict:
    """Seconds per step, real tokens/s and model TFLOP/s of timed batches 1..steps (batch 0 is the warm-up)."""
    timed = batches[1 : steps + 1]
    tokens = sum(int(b["attention_mask"].sum()) for b in timed) / steps
    masked = sum(int((b["labels"] != -100).sum()) for b in timed) / steps / tokens
    flops = train_flops_per_token(model, timed[0]["input_ids"].shape[1], masked, sparse) * timed[0]["input_ids"].numel()
    return {"s/step": round(seconds, 3), "tokens/s": round(tokens / seconds), "TFLOP/s": flops / seconds / 1e12}


def bench_hf(name: str, bf16: bool, examples: list[dict], batch: int, steps: int, ours: list[dict]) -> dict:
    """`transformers.Trainer` with `BertForPreTraining` (its dense head) at its best settings here (fused AdamW,
    bf16 where native, no logging, no evaluation) on the very batches `bench` used: the same examples in order
    (`sequential`) through a fresh collator with the same seed, so the same masks. Timed from the end of the
    first (warm-up) step to the end of training."""
    from accelerate.state import AcceleratorState
    from transformers import Trainer, TrainerCallback, TrainingArguments

    AcceleratorState._reset_state(reset_partial_state=True)  # each Trainer sets its own precision
    tokenizer, model = load_model(name, "pretraining", seed=0)
    collate, seen = PretrainingCollator(tokenizer, seed=0), []

    def counting(features):
        out = collate(features)
        seen.append(out)
        return out

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 1:
                self.start = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            self.end = time.perf_counter()

    clock = Clock()
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, max_steps=steps + 1, per_device_train_batch_size=batch, learning_rate=1e-4,
            weight_decay=0.01, max_grad_norm=1.0, optim="adamw_torch_fused", bf16=bf16,
            use_cpu=not torch.cuda.is_available(), report_to=[], save_strategy="no", eval_strategy="no",
            logging_strategy="no", dataloader_num_workers=0, disable_tqdm=True, seed=0,
            train_sampling_strategy="sequential", remove_unused_columns=False,
        )
        Trainer(model=model, args=args, train_dataset=examples[: (steps + 1) * batch], data_collator=counting,
                callbacks=[clock]).train()
    same = all(torch.equal(a["labels"], b["labels"]) for a, b in zip(seen, ours))
    seconds = (clock.end - clock.start) / steps
    return {"model": name, "trainer": "Trainer" + ("" if same else " (other batches!)"), "head": "dense",
            "precision": "bf16" if bf16 else "fp32"} | rates(model, ours, steps, seconds, sparse=False) | {
            "loss": float("nan")}  # Trainer logs nothing here (logging costs time)


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
        for trainer, sparse in (("ours", False), ("ours", True), ("Trainer", False)):
            for bf16 in precisions():
                row = bench(name, sparse, bf16, batches, steps) if trainer == "ours" else \
                    bench_hf(name, bf16, examples, batch, steps, batches)
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
