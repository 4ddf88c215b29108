"""Notebook 01's downstream and factor-table bookkeeping: rates chosen on held-out data the comparison does not
score, and arms averaged over their checkpoints before pairing by seed."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from lib import downstream, recipes, stats


def test_each_arm_rate_is_the_best_mean_validation_accuracy_and_ties_take_the_lower_rate():
    pilot = pd.DataFrame({"lr": [1e-4, 1e-4, 5e-4, 5e-4, 2e-3, 2e-3],
                          "best_val_accuracy": [0.6, 0.7, 0.8, 0.6, 0.9, 0.5],
                          "test_accuracy": [0.9, 0.9, 0.1, 0.1, 0.1, 0.1]})  # the test split never chooses
    assert downstream.chosen_rate(pilot) == 5e-4  # 0.70 at 5e-4 and at 2e-3: the lower one
    assert downstream.chosen_rate(pilot.assign(best_val_accuracy=[0.6, 0.7, 0.8, 0.6, 0.9, 0.6])) == 2e-3


def test_an_arm_is_averaged_over_its_checkpoints_at_each_seed_before_pairing():
    table = pd.DataFrame({
        "stage": ["final"] * 8 + ["pilot"],
        "arm": ["ckpt"] * 6 + ["random"] * 2 + ["ckpt"],
        "checkpoint": [0, 0, 1, 1, 2, 2, 0, 0, 0],
        "seed": [0, 1, 0, 1, 0, 1, 0, 1, 0],
        "test_accuracy": [0.7, 0.8, 0.6, 0.6, 0.5, 0.7, 0.55, 0.6, 0.99],
        "test_majority": [0.6] * 9})
    paired = downstream.paired_frame(table).set_index(["arm", "seed"])
    assert np.isclose(paired.loc[("ckpt", 0), "test_accuracy"], 0.6)  # (0.7 + 0.6 + 0.5) / 3; the pilot is left out
    assert np.isclose(paired.loc[("ckpt", 1), "test_accuracy"], 0.7)
    assert paired.loc[("ckpt", 0), "runs"] == 3 and paired.loc[("ckpt", 0), "failed"] == 2  # 0.6 and 0.5 ≤ 0.6
    assert paired.loc[("random", 0), "failed"] == 1 and paired.loc[("random", 1), "failed"] == 1
    cmp = downstream.compare_arms(table, "random")  # what the figure and its table show: runs, not seed means
    assert (cmp.loc["ckpt", "n"], cmp.loc["ckpt", "failed"], cmp.loc["ckpt", "runs"]) == (2, 3, 6)  # 1 seed mean
    assert (cmp.loc["random", "failed"], cmp.loc["random", "runs"]) == (2, 2)
    assert stats.comparison_table(cmp, "random").loc["ckpt", "failed runs"] == "3/6"


def test_a_factor_arm_rate_is_chosen_on_the_even_windows_and_scored_on_the_odd_ones():
    def run(even_loss: float, odd_correct: bool, lr: float) -> SimpleNamespace:
        tokens = pd.DataFrame({"window": [0, 1, 2, 3], "at_mask": [True] * 4,
                               "loss": [even_loss, 9.0, even_loss, 9.0], "correct": [False, odd_correct] * 2,
                               "bigram_correct": [False] * 4})
        return SimpleNamespace(predictions=tokens, config={"train": {"lr": lr}},
                               metrics={"tokens_per_s": 1.0, "train_seconds": 60.0})

    low, high = run(2.0, False, 1e-3), run(3.0, True, 2e-3)  # high scores better on the odd windows, low on the even
    assert recipes.chosen([high, low]) is low
    row = recipes.factor_table({"arm": [low, high]}).loc["arm"]
    assert row["chosen lr"] == "1e-3" and row["[MASK] accuracy, odd windows (%)"] == 0.0
    assert recipes.at_mask(low, half=1)["window"].tolist() == [1, 3]


def test_the_positive_control_gets_exactly_the_budget_of_the_checkpoints_it_is_compared_with():
    """Notebook 01: the control's arms (the profile's shipped encoder, pretrained and random) are fine-tuned by the
    same maker as the budget checkpoints, so their runs differ from the checkpoints' only in the model, its init and
    the rate each arm's pilot chose."""
    from lib import profiles

    for name in ("smoke", "quick", "full"):
        profile = profiles.get(name)
        make = downstream.finetune_maker(profile, "movie_snippets")
        ours = make(profile.pretrain.budget_model, "pretrained", 5e-4, 3).identity()
        pretrained, random = downstream.control_arms(profile)
        assert pretrained.models == random.models == (profile.pretrain.control_model,)
        assert (pretrained.init, random.init) == ("pretrained", "random")
        for arm in (pretrained, random):
            theirs = make(arm.models[0], arm.init, 1e-4, 3).identity()
            differ = {k for k in ours | theirs if ours.get(k) != theirs.get(k)}
            assert differ <= {"model", "init", "train", "model_fingerprint"}
            assert {k for k in ours["train"] if ours["train"][k] != theirs["train"][k]} == {"lr"}
