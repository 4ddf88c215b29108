"""Which device and precision a run uses, and what machine made a result.

CUDA, then Apple MPS, then CPU, unless a device is named. bf16 autocast is on
by default where the hardware computes it natively.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import torch


class DeviceError(ValueError):
    """A device that this machine does not have."""


def check_device(device: str) -> str:
    """Return `device` if this machine has it, else raise one clear error (before anything trains)."""
    if device == "auto":
        return device
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise DeviceError(f"Unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA is not available on this machine; use device='cpu' or 'auto'.")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("Apple MPS is not available on this machine; use device='cpu' or 'auto'.")
    return device


def pick_device(device: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU, unless a device is named."""
    if device != "auto":
        return torch.device(check_device(device))
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_matmul_features() -> str:
    """'AMX', 'AVX512-BF16' or 'none': what decides whether bf16 is fast on this CPU."""
    try:
        if torch.cpu._is_amx_tile_supported():
            return "AMX"
        if torch.cpu._is_avx512_bf16_supported():
            return "AVX512-BF16"
    except AttributeError:  # private helpers; absent in other torch versions
        pass
    return "none"


def bf16_supported(device: torch.device) -> bool:
    """Native bf16 matmuls: CUDA with bf16, or a CPU with AMX / AVX512-BF16.

    Measured on this workbook's 2-core AMX CPU (results/benchmarks.md): bf16
    autocast fine-tunes MiniLM 1.2-1.7x faster at the same accuracy
    (+0.0 ± 0.2 points over 3 seeds); CPUs without native bf16 only emulate it.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_matmul_features() != "none"
    return False


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state(folder: Path = Path(__file__).resolve().parent.parent) -> dict:
    """The code's commit and whether the working tree differed from it (None outside a git checkout)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    changes = git("status", "--porcelain", "--untracked-files=no", "--", "lib", "notebooks")
    return {"git_commit": commit, "git_dirty": None if commit is None or changes is None else bool(changes)}


def environment(seed: int | None = None, attention: str | None = None) -> dict:
    """Library versions, the code and the machine: what a reader needs to tell why two numbers differ."""
    import datasets
    import transformers

    device = pick_device()
    return git_state() | {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name() if device.type == "cuda" else cpu_model(),
        "cpu_matmul": cpu_matmul_features(),
        "cpu_threads": torch.get_num_threads(),
        "attention": attention,
        "platform": platform.platform(),
        "seed": seed,
    }
