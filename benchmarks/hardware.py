"""What this machine can do at best: the measured matmul peak, fp32 and bf16."""

from __future__ import annotations

import os
import time

import torch

from lib.device import cpu_model
from lib.paths import ROOT


def matmul_peak(n: int = 2048, repeats: int = 10) -> dict[str, float]:
    """Best achieved TFLOP/s of an n×n @ n×n matmul, per dtype (the roofline for MFU); bf16 only where it is
    native (emulated, these 11 products took about 10 minutes on the EPYC, for a row the benchmarks skip)."""
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))[: len(precisions())]:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
        out[name] = 2 * n**3 / best / 1e12
    return out


def precisions() -> tuple[bool, ...]:
    """bf16 autocast settings worth timing here: fp32 always; bf16 only where the CPU has it natively (AMX or
    AVX512-BF16). Emulated bf16 is not a contender: on an AVX2-only EPYC a bert-tiny pretraining step took
    10.7 s against 0.50 s in fp32, so the benchmarks skip it rather than spend an hour confirming it."""
    from lib.device import bf16_supported

    return (False, True) if bf16_supported(torch.device("cpu")) else (False,)


def describe_machine(peak: dict[str, float]) -> str:
    return (
        f"Machine: {cpu_model()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads. "
        f"Matmul peak: fp32 {peak['fp32']:.3f} TFLOP/s, "
        + (f"bf16 {peak['bf16']:.3f} TFLOP/s." if "bf16" in peak
           else "bf16 not measured (emulated: no AMX or AVX512-BF16, so the bf16 rows are skipped).")
    )


if __name__ == "__main__":
    print(describe_machine(matmul_peak()))


def replace_section(heading: str, text: str) -> None:
    """Replace the section of results/benchmarks.md that starts with `heading` (up to the next `## `) by `text`,
    so one benchmark can be re-measured without re-running all of them; print it."""
    path = ROOT / "results" / "benchmarks.md"
    old = path.read_text()
    start = old.index(heading)
    end = old.find("\n## ", start + len(heading))
    path.write_text(old[:start] + text.rstrip() + "\n" + (old[end:] if end != -1 else ""))
    print(text)


def append_section(text: str) -> None:
    """Add one benchmark's section to the end of results/benchmarks.md (after `python -m benchmarks` wrote its
    head), and print it."""
    with open(ROOT / "results" / "benchmarks.md", "a") as f:
        f.write(text)
    print(text)
