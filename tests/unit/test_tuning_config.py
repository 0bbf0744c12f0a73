"""train.tuning: bad ranges and objectives are refused with one line and exit 2, before
anything runs; the model family judges the names, the values and the objective."""

from __future__ import annotations

import pytest

from mlops.cli import run
from mlops.core.config import load_config
from mlops.core.errors import UsageError

GOOD = {
    "objective": {"metric": "validation:rmse", "direction": "minimize"},
    "ranges": {
        "max_depth": {"type": "integer", "min": 2, "max": 6},
        "eta": {"type": "continuous", "min": 0.01, "max": 0.3, "scale": "log"},
        "min_child_weight": {"type": "categorical", "values": [1, 5]},
    },
    "n_trials": 4,
}


def with_tuning(**changes):
    def mutate(raw):
        tuning = {**GOOD, "ranges": dict(GOOD["ranges"]), **changes}
        raw["train"]["tuning"] = tuning

    return mutate


def test_tuning_is_off_by_default_and_a_good_section_loads(config_file):
    assert load_config().train.tuning is None
    cfg = load_config(config_file(with_tuning()))
    assert cfg.train.tuning.n_trials == 4
    assert cfg.train.tuning.ranges["eta"].scale == "log"


@pytest.mark.parametrize(
    ("ranges", "objective", "reason"),
    [
        (
            {"max_dept": {"type": "integer", "min": 2, "max": 6}},
            None,
            "ranges.max_dept: 'max_dept' is not an XGBoost parameter; did you mean 'max_depth'",
        ),
        (
            {"num_round": {"type": "continuous", "min": 10, "max": 100}},
            None,
            "ranges.num_round: num_round must be a positive integer",
        ),
        ({"max_depth": {"type": "integer", "min": 6, "max": 2}}, None, "inverted range"),
        ({"eta": {"type": "continuous", "min": 0.1, "max": 0.1}}, None, "empty or inverted"),
        ({"min_child_weight": {"type": "categorical", "values": []}}, None, "non-empty"),
        (
            {"eta": {"type": "continuous", "min": 0, "max": 0.3, "scale": "log"}},
            None,
            "log range must stay above 0",
        ),
        (
            None,
            {"metric": "validation:auc", "direction": "maximize"},
            "'validation:auc' is not reported by the xgboost family's training",
        ),
        ({"max_depth": {"type": "integer", "min": 2.5, "max": 6}}, None, "integer min and max"),
    ],
)
def test_bad_tuning_is_one_line_and_exit_2(config_file, home, capsys, ranges, objective, reason):
    changes = {}
    if ranges is not None:
        changes["ranges"] = ranges
    if objective is not None:
        changes["objective"] = objective
    path = config_file(with_tuning(**changes))
    with pytest.raises(UsageError, match=reason):
        load_config(path)
    assert run(["pipeline", "run", "--config", str(path), "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert reason in err and "train" in err
    assert len(err.strip().splitlines()) == 1
    assert not (home / "runs").exists()  # refused before anything ran


def test_objective_follows_the_configured_eval_metric(config_file):
    def mutate(raw):
        raw["train"]["hyperparameters"]["eval_metric"] = "mae"
        with_tuning(objective={"metric": "validation:mae", "direction": "minimize"})(raw)

    assert load_config(config_file(mutate)).train.tuning.objective.metric == "validation:mae"


def test_without_an_objective_the_familys_first_metric_is_tuned(config_file):
    def no_objective(raw):
        with_tuning()(raw)
        raw["train"]["tuning"].pop("objective")

    cfg = load_config(config_file(no_objective))
    emitted = cfg.model_family.emitted_metrics(cfg.train.hyperparameters, cfg.task)
    assert cfg.train.tuning.objective.metric == emitted[0] == "validation:rmse"

    def sklearn_classifier(raw):
        no_objective(raw)
        raw["task"] = "binary_classification"
        raw["gate"].update(min_auc=0.7, max_log_loss=0.6)
        raw["train"].update(model="sklearn", hyperparameters={"max_iter": 100})
        raw["train"]["tuning"]["ranges"] = {
            "learning_rate": {"type": "continuous", "min": 0.01, "max": 0.3, "scale": "log"}
        }

    cfg = load_config(config_file(sklearn_classifier))
    assert cfg.train.tuning.objective.metric == "validation:logloss"


def test_a_hyperparameter_only_a_range_sets_counts_as_set(config_file):
    def tuned_rounds(raw):
        raw["train"]["hyperparameters"].pop("num_round")
        with_tuning(ranges={"num_round": {"type": "integer", "min": 50, "max": 400}})(raw)

    assert load_config(config_file(tuned_rounds)).train.tuning.ranges["num_round"].max == 400
