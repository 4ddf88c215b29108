"""Several processes training one run together (data parallel), and what only one of them may do.

`accelerate launch --num_processes N` (or `torchrun`) starts N copies of a
command; the launcher tells each its rank through the environment. `fit`
trains them as one run (`lib.trainer`), and this module is how the rest of the
library agrees across them: the main process alone writes results, every
process acts on the main process's view of the run store, and evaluations
split their examples and gather the pieces.

In one process (every notebook, the default) each function here returns at
once and touches no distributed state, so a run is exactly what it would be
without this module. Accelerate's `PartialState` joins the launcher's process
group the first time several processes need one another.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def world_size() -> int:
    """How many processes the launcher started (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def on_cpu() -> bool:
    """Whether launched processes train on CPUs: no GPU here, or `ACCELERATE_USE_CPU=1`."""
    return os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes") or not torch.cuda.is_available()


def _join() -> None:
    """Join the launcher's process group through Accelerate: gloo on CPUs, NCCL on GPUs.

    On a machine without a GPU, Accelerate joins the group only when told the processes use CPUs; without
    that each process would train alone (what `accelerate launch --cpu --num_processes 2` does without MPI)."""
    if not dist.is_initialized():
        from accelerate import PartialState

        PartialState(cpu=on_cpu())


def rank() -> int:
    """This process's index, 0 for the main process."""
    if world_size() == 1:
        return 0
    _join()
    return dist.get_rank()


def is_main() -> bool:
    """Only the main process writes results, checkpoints and tables."""
    return rank() == 0


def barrier() -> None:
    """Wait until every process arrives here (e.g. until the main process has written a run)."""
    if world_size() > 1:
        _join()
        dist.barrier()


def from_main(obj: T) -> T:
    """The main process's `obj`, in every process: one decision, taken once, that all act on."""
    if world_size() == 1:
        return obj
    _join()
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any) -> list:
    """Every process's `obj`, in rank order, in every process."""
    if world_size() == 1:
        return [obj]
    _join()
    out: list = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def share(items: list[T]) -> list[T]:
    """This process's share of `items` (every world_size-th, from its rank): evaluation splits its batches."""
    return items[rank() :: world_size()]
