"""Local tuning's pieces: Optuna draws within the config's ranges, a trial's step differs
from the graph's only in the tuned hyperparameters, a curve is read while being written."""

from __future__ import annotations

import pytest

from mlops.core.config import load_config
from mlops.core.graph import build_graph
from mlops.local.tuning import parallelism, read_scores, step_hyperparameters, suggest, trial_step

RANGES = {
    "max_depth": {"type": "integer", "min": 2, "max": 9},
    "eta": {"type": "continuous", "min": 0.001, "max": 0.5, "scale": "log"},
    "subsample": {"type": "continuous", "min": 0.5, "max": 1.0},
    "grow_policy": {"type": "categorical", "values": ["depthwise", "lossguide"]},
}


@pytest.fixture
def tuned_cfg(config_file):
    def mutate(raw):
        raw["train"]["tuning"] = {"ranges": RANGES, "n_trials": 3, "parallel": 8}

    return load_config(config_file(mutate))


def test_suggestions_stay_in_their_ranges(tuned_cfg):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(40):
        values = suggest(study.ask(), tuned_cfg.train.tuning.ranges)
        assert isinstance(values["max_depth"], int) and 2 <= values["max_depth"] <= 9
        assert 0.001 <= values["eta"] <= 0.5 and 0.5 <= values["subsample"] <= 1.0
        assert values["grow_policy"] in ("depthwise", "lossguide")


def test_a_trial_changes_only_the_tuned_hyperparameters(tuned_cfg):
    step = build_graph(tuned_cfg).step("train")
    trial = trial_step(step, 7, {"max_depth": 4, "eta": 0.2}, threads=1)
    assert trial.name == "train/trial-007" and trial.script == step.script
    before, after = step_hyperparameters(step), step_hyperparameters(trial)
    assert after["max_depth"] == "4" and after["eta"] == "0.2" and after["nthread"] == "1"
    assert {k: v for k, v in after.items() if k not in ("max_depth", "eta", "nthread")} == {
        k: v for k, v in before.items() if k not in ("max_depth", "eta")
    }


def test_one_trial_at_a_time_keeps_the_scripts_thread_choice(tuned_cfg):
    step = build_graph(tuned_cfg).step("train")
    assert "nthread" not in step_hyperparameters(trial_step(step, 0, {"eta": 0.1}, threads=None))


def test_parallelism_is_capped_by_trials(tuned_cfg):
    assert parallelism(tuned_cfg.train.tuning, cores=16) == 3  # 8 asked, 3 trials


def test_read_scores_skips_the_line_being_written(tmp_path):
    curve = tmp_path / "curve.csv"
    assert read_scores(curve, "validation:rmse", -1) == []
    curve.write_text("round,validation:mae,validation:rmse\n0,3,9.5\n1,2,8.5\n2,1,7.")
    assert read_scores(curve, "validation:rmse", -1) == [(0, 9.5), (1, 8.5)]
    assert read_scores(curve, "validation:rmse", 0) == [(1, 8.5)]
