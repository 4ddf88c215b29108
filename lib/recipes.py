"""Notebook 01's two recipes and the factor table between them, read back from the stored pretraining runs.

Every pretraining run scores the same held-out tokens (`lib.pretraining.window_batches`: the packed validation
windows, masked once), so any two runs compare token by token. The factor table chooses each arm's rate on half of
those windows (even ones, by cross-entropy at [MASK] inputs) and reports and tests on the other half (odd ones): the
rate that looked best is not also the one being scored.
"""

from __future__ import annotations

import pandas as pd

from lib import pretraining, store
from lib.models import BLOCKS
from lib.pretraining import EXPERIMENT, FACTOR_EXPERIMENT, PretrainSpec
from lib.profiles import Profile
from lib.stats import lr_label

BERT_2018, BUDGET = "BERT 2018", "budget"


def recipe_specs(profile: Profile, device: str = "auto") -> dict[str, PretrainSpec]:
    """The two recipes' runs by name: the 2018 recipe, then the budget recipe at each pretraining seed."""
    specs = {BERT_2018: pretraining.scratch_spec(profile, device)}
    return specs | {f"{BUDGET}, seed {s}": pretraining.budget_spec(profile, device, s)
                    for s in profile.pretrain.budget_seeds}


def recipe_runs(profile: Profile, device: str = "auto", force: bool = False) -> dict[str, store.Run]:
    """`recipe_specs`, stored or trained now; a stored run's missing weights are not rebuilt here (the runs that need
    them rebuild them: `weights_for`)."""
    return {name: store.run(EXPERIMENT, spec, profile, force, weights=False)
            for name, spec in recipe_specs(profile, device).items()}


def weights_for(profile: Profile, device: str = "auto") -> dict[str, PretrainSpec]:
    """Checkpoint folder → the recipe run that writes it: what to rebuild before computing a run that loads it."""
    return {str(store.checkpoint_dir(spec.kind, store.run_id(spec.identity()))): spec
            for spec in recipe_specs(profile, device).values()}


BLOCK_NAMES = {"bert": "BERT: post-LN, learned positions, GELU, biases",
               "roformer": "BERT with rotary positions (RoFormer)",
               "prelnbert": "BERT with pre-LN and a final norm (RoBERTa-PreLN)",
               "modernbert": "ModernBERT: pre-LN + final norm, rotary positions, GeGLU, no biases"}


def spec_words(spec: PretrainSpec) -> dict[str, str]:
    """What a pretraining run is, in words, from its spec (notebook 01's recipe and factor tables)."""
    t = spec.train
    kept = 1 - spec.mask_replace_prob - spec.random_replace_prob
    return {"model": spec.model, "block": BLOCK_NAMES[BLOCKS.get(spec.model, "bert")],
            "objective": "MLM + NSP" if spec.nsp else "MLM only",
            "sequences": "packed windows of one document" if spec.packed else "sentence pairs (half from another "
                                                                             "document)",
            "masking": f"{spec.mlm_probability:.0%} of tokens; {spec.mask_replace_prob:.0%} [MASK] / "
                       f"{spec.random_replace_prob:.0%} random / {kept:.0%} kept",
            "AdamW β₂": f"{t.adam_beta2:g}", "peak lr": lr_label(t.lr),
            "schedule": f"{t.warmup_ratio:.0%} warmup, then linear decay; weight decay {t.weight_decay:g}",
            "dropout": f"{spec.dropout:g}",
            "tokens": f"{t.max_steps:,} steps × {t.batch_size} × {spec.max_seq_len} = "
                      f"{t.max_steps * t.batch_size * spec.max_seq_len / 1e6:.1f}M"}


def recipe_design(profile: Profile) -> pd.DataFrame:
    """The two recipes side by side, from their specs."""
    specs = recipe_specs(profile)
    return pd.DataFrame({BERT_2018: spec_words(specs[BERT_2018]), BUDGET: spec_words(list(specs.values())[1])})


def rebuild(profile: Profile, device: str = "auto"):
    """A `before_compute` for `lib.downstream`: a run about to train from one of the recipes' checkpoints gets its
    weights back first if they are missing (a fresh clone), by recomputing that recipe run (its record is kept)."""
    writers = weights_for(profile, device)

    def before_compute(spec) -> None:
        model = getattr(spec, "model", None)
        if model in writers and not store.has_weights(model):
            store.run(EXPERIMENT, writers[model], profile)
    return before_compute


def at_mask(run: store.Run, half: int | None = None) -> pd.DataFrame:
    """A run's held-out tokens where the input shows [MASK] (context only); `half` 0 or 1: even or odd windows."""
    t = run.predictions
    t = t[t["at_mask"].astype(bool)]
    return t if half is None else t[t["window"] % 2 == half]


def recipe_table(runs: dict[str, store.Run]) -> pd.DataFrame:
    """Each recipe run at [MASK] inputs of the shared held-out windows, beside the floors on the same tokens: the
    most frequent token, the unigram and bidirectional-bigram guesses, the same model with the context shuffled
    (on its own held-out set), accuracy without the 20 commonest targets; then speed, time and NSP."""
    rows = {}
    for name, run in runs.items():
        m = run.metrics
        rows[name] = {
            "[MASK] accuracy (%)": 100 * m["windows_mask_accuracy"],
            "most frequent token (%)": 100 * m["windows_frequent_mask_accuracy"],
            "bigram floor (%)": 100 * m["windows_bigram_mask_accuracy"],
            "[MASK] CE (nats)": m["windows_mask_loss"],
            "unigram CE": m["windows_unigram_mask_loss"],
            "bigram CE": m["windows_bigram_mask_loss"],
            "CE, context shuffled": m["shuffled_mlm_loss"],
            f"accuracy without the {pretraining.FREQUENT} commonest (%)": 100 * m["windows_mask_rare_accuracy"],
            f"bigram, without the {pretraining.FREQUENT} commonest (%)": 100 * m["windows_bigram_mask_rare_accuracy"],
            "NSP, balanced held-out pairs (%)": 100 * m.get("heldout_nsp_accuracy", float("nan")),
            "tokens (M)": m["tokens_seen"] / 1e6,
            "tokens/s": m["tokens_per_s"],
            "minutes": m["train_seconds"] / 60,
        }
    return pd.DataFrame(rows).T.round(2)


def fill_mask_table(runs: dict[str, store.Run]) -> pd.DataFrame:
    """Each probe sentence's top-5 guesses before (random weights) and after each recipe's pretraining."""
    first = next(iter(runs.values())).metrics
    table = {"before (random weights)": first["fill_mask_before"]}
    table |= {f"after: {name}": run.metrics["fill_mask_after"] for name, run in runs.items()}
    return pd.DataFrame(table, index=pretraining.FILL_MASK_PROBES)


def factor_runs(profile: Profile, device: str = "auto", force: bool = False) -> dict[str, list[store.Run]]:
    """The factor table's runs (stored or trained now), by arm, one per rate of `factor_rates`; no weights needed."""
    return {arm: store.run_all(FACTOR_EXPERIMENT, specs, profile, force, weights=False)
            for arm, specs in pretraining.factor_specs(profile, device).items()}


def stored_factor_runs(profile: Profile) -> dict[str, list[store.Run]]:
    """`factor_runs` from the store only (an arm with a missing run is left out): what the findings read."""
    out = {}
    for arm, specs in pretraining.factor_specs(profile).items():
        runs = [store.stored(FACTOR_EXPERIMENT, spec, profile) for spec in specs]
        if all(r is not None for r in runs):
            out[arm] = runs
    return out


def chosen(runs: list[store.Run]) -> store.Run:
    """The run whose rate gives the lowest cross-entropy at [MASK] inputs on the even held-out windows."""
    return min(runs, key=lambda r: at_mask(r, half=0)["loss"].mean())


def factor_table(arms: dict[str, list[store.Run]]) -> pd.DataFrame:
    """Per arm: [MASK] accuracy at every rate (all windows), the rate chosen on the even windows, and at it the
    accuracy and cross-entropy on the odd windows, the bigram floor there, tokens/s and minutes."""
    rows = {}
    for arm, runs in arms.items():
        best = chosen(runs)
        scored = at_mask(best, half=1)
        rows[arm] = {f"lr {lr_label(r.config['train']['lr'])} (%)": round(100 * at_mask(r)["correct"].mean(), 2)
                     for r in runs}
        rows[arm] |= {"chosen lr": lr_label(best.config["train"]["lr"]),
                      "[MASK] accuracy, odd windows (%)": round(100 * scored["correct"].mean(), 2),
                      "[MASK] CE, odd windows": round(scored["loss"].mean(), 3),
                      "bigram floor (%)": round(100 * scored["bigram_correct"].mean(), 2),
                      "tokens/s": round(best.metrics["tokens_per_s"]),
                      "minutes": round(best.metrics["train_seconds"] / 60, 2)}
    return pd.DataFrame(rows).T


def factor_curve(arms: dict[str, list[store.Run]]) -> pd.DataFrame:
    """Long form for the plot: arm, rate, [MASK] accuracy and cross-entropy on all held-out windows."""
    rows = []
    for arm, runs in arms.items():
        for r in runs:
            t = at_mask(r)
            rows.append({"arm": arm, "lr": r.config["train"]["lr"], "accuracy": 100 * t["correct"].mean(),
                         "cross-entropy": t["loss"].mean()})
    return pd.DataFrame(rows)

