"""What `fit` measures beside the loss: probes, called at fixed points of every optimizer step.

The loop in `lib.trainer` only trains; each probe adds columns to the step's
row of the history. A probe has three hooks, all optional:

* `before_update(row)` — gradients are ready and clipped, weights not yet moved;
* `after_update(row)` — the optimizer has stepped;
* `after_step(step, row)` — the row is complete (tokens, seconds, every process agreed).

The workbook's notebooks read three: the rate each parameter group got
(`lr/<group>`, notebooks 02 and 05), how far each group moved in the first
steps (`update/<group>`, notebook 03) and the weight norms split the way weight
decay splits them (`norm/*`, notebook 04). `fit(probes=[])` trains without them
(the benchmark measures what they cost).
"""

from __future__ import annotations

import math

import torch

from lib.optim import group_lrs, is_bias_or_norm

EARLY_STEPS = 20
"""`update/<group>` is logged for the first this many steps: what warmup keeps small while the new head is random."""
NORM_EVERY = 8
"""Weight norms are logged after the first optimizer step, every this many, and after the last (~0.1 s for MiniLM)."""


class Probe:
    """A probe that does nothing; subclasses override the hooks they need."""

    def before_update(self, row: dict) -> None:
        pass

    def after_update(self, row: dict) -> None:
        pass

    def after_step(self, step: int, row: dict) -> None:
        pass


class GroupRates(Probe):
    """`lr/<group>`: the rate each named parameter group steps with (before the scheduler moves it on)."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer

    def before_update(self, row: dict) -> None:
        row |= {f"lr/{name}": lr for name, lr in group_lrs(self.optimizer).items()}


class UpdateSizes(Probe):
    """`update/<group>` = ‖Δθ‖ of each group's update, for the first `steps` optimizer steps.

    One buffer per parameter is allocated once, filled with the weights before the step and
    subtracted from in place after it (no fresh copy of the model per step), then freed."""

    def __init__(self, optimizer: torch.optim.Optimizer, steps: int = EARLY_STEPS):
        self.optimizer, self.steps_left = optimizer, steps
        self.buffers = [[torch.empty_like(p) for p in g["params"]] for g in optimizer.param_groups]

    def _groups(self) -> list[list[torch.Tensor]]:
        return [[p.detach() for p in g["params"]] for g in self.optimizer.param_groups]

    def before_update(self, row: dict) -> None:
        if self.steps_left <= 0:
            self.buffers = None  # free the buffers once the early steps are logged
            return
        for old, now in zip(self.buffers, self._groups()):
            if old:
                torch._foreach_copy_(old, now)

    def after_update(self, row: dict) -> None:
        if self.buffers is None:
            return
        squares: dict[str, float] = {}
        for i, (g, old, now) in enumerate(zip(self.optimizer.param_groups, self.buffers, self._groups())):
            if old:
                torch._foreach_sub_(old, now)  # old - new: the update, in place
            name = g.get("name", f"group{i}")
            squares[name] = squares.get(name, 0.0) + sum(float(n) ** 2 for n in torch._foreach_norm(old))
        row |= {f"update/{name}": math.sqrt(v) for name, v in squares.items()}
        self.steps_left -= 1


class WeightStats(Probe):
    """L2 norms of a run's weights, split the way weight decay splits them.

    `norm/matrices` (weight matrices and embeddings), `norm/bias_and_norm`
    (biases and LayerNorm gains) and `norm/moved` = ‖θ − θ₀‖, the distance
    travelled from the starting (pretrained) weights: weight decay pulls on
    the first two, fine-tuning shows up in the third (notebook 04). Called
    directly it measures now; as a probe, after step 1, every `every` steps and
    after step `last`.
    """

    def __init__(self, groups: list[dict], every: int = NORM_EVERY, last: int | None = None):
        named = [(n, p) for g in groups for n, p in zip(g.get("param_names", [""] * len(g["params"])), g["params"])]
        self.kinds = {
            "matrices": [p for n, p in named if not is_bias_or_norm(n)],
            "bias_and_norm": [p for n, p in named if is_bias_or_norm(n)],
        }
        self.params = [p for _, p in named]
        self.start = [p.detach().clone() for p in self.params]
        self.every, self.last = every, last

    @torch.no_grad()
    def __call__(self) -> dict[str, float]:
        out = {f"norm/{k}": _norm(ps) for k, ps in self.kinds.items() if ps}
        out["norm/moved"] = _norm(torch._foreach_sub([p.detach() for p in self.params], self.start))
        return out

    def after_step(self, step: int, row: dict) -> None:
        if step == 1 or step % self.every == 0 or step == self.last:
            row |= self()


def _norm(tensors: list[torch.Tensor]) -> float:
    return float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm([t.float() for t in tensors]))))


def standard(optimizer: torch.optim.Optimizer, groups: list[dict], total_steps: int) -> list[Probe]:
    """The probes every workbook run logs: per-group rates, early update sizes, weight norms."""
    return [GroupRates(optimizer), UpdateSizes(optimizer), WeightStats(groups, last=total_steps)]
