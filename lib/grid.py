"""What an ablation grid is: a base spec, named variants (fields to override), a baseline, data sets and seeds.

A `Grid` is pure description; `lib.ablations` builds the workbook's grids
and `lib.sweep` runs them. Every cell's spec is built (and so validated) when
the grid is made: an impossible variant fails before the first run trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lib.data import data_label
from lib.finetune import FinetuneSpec
from lib.source import DataSource
from lib.store import run_id


@dataclass
class Grid:
    """An ablation grid. `variants` maps a readable name to overrides of `base`."""

    experiment: str
    base: FinetuneSpec
    variants: dict[str, dict]
    baseline: str
    seeds: list[int]
    datasets: list[str | DataSource] = field(default_factory=lambda: ["movie_snippets"])
    cell_seeds: dict[str, list[int]] = field(default_factory=dict)  # variants that run more (or other) seeds

    def __post_init__(self) -> None:
        if not self.variants or not self.seeds or not self.datasets:
            raise ValueError(f"Grid {self.experiment!r} needs at least one variant, seed and data set.")
        if self.baseline not in self.variants:
            raise ValueError(f"Baseline {self.baseline!r} is not one of the variants {list(self.variants)}.")
        self.specs()  # impossible overrides fail here, before anything trains

    def specs(self) -> list[tuple[str, FinetuneSpec]]:
        """(variant, spec) for every run, data set by data set, seed-major inside a variant."""
        return [
            (name, self.base.with_overrides(data=data, seed=seed, **overrides))
            for data in self.datasets
            for name, overrides in self.variants.items()
            for seed in self.seeds_of(name)
        ]

    def seeds_of(self, variant: str) -> list[int]:
        """The seeds `variant` runs: its own list if it has one (a failure-rate cell needs more), else `seeds`."""
        return self.cell_seeds.get(variant, self.seeds)

    def subset(self, variants: list[str]) -> Grid:
        """The same grid with only `variants` (the baseline is always kept)."""
        unknown = sorted(set(variants) - set(self.variants))
        if unknown:
            raise ValueError(f"Unknown variant(s) {unknown}; this grid has {list(self.variants)}.")
        keep = {n: o for n, o in self.variants.items() if n in variants or n == self.baseline}
        seeds = {n: s for n, s in self.cell_seeds.items() if n in keep}
        return Grid(self.experiment, self.base, keep, self.baseline, self.seeds, self.datasets, seeds)

    def on(
        self, data: str | DataSource | None, model: str | None = None, seeds: list[int] | None = None, **overrides
    ) -> Grid:
        """The same grid on your data and/or model (and seeds for every cell, and base overrides), stored under an
        experiment name of its own: `<experiment>__<data>` and, for another model, `__<model folder or name>`.
        Without data the grid keeps its own data sets."""
        other_model = model is not None and model != self.base.model
        base = self.base.with_overrides(**overrides, **({"model": model} if model else {}))
        name = self.experiment + (f"__{data_label(data)}" if data is not None else "")
        name += f"__{Path(model).name}" if other_model else ""
        cell_seeds = self.cell_seeds if seeds is None else {}
        datasets = [data] if data is not None else self.datasets
        return Grid(name, base, self.variants, self.baseline, seeds or self.seeds, datasets, cell_seeds)

    def run_ids(self) -> dict[str, str]:
        """run_id → variant, to pick this grid's rows out of a results CSV."""
        return {run_id(spec.identity()): name for name, spec in self.specs()}
