"""Config mistakes a user can fix fail at once, in one line that says where and what."""

from __future__ import annotations

import json

import pytest
from mlops.core.xgboost_params import XGBOOST_PARAMS

from mlops.core.config import load_config
from mlops.core.errors import UsageError


def set_hyperparameter(name, value):
    def mutate(raw):
        raw["train"]["hyperparameters"][name] = value

    return mutate


def test_a_misspelt_hyperparameter_fails_before_training_with_a_suggestion(config_file):
    path = config_file(set_hyperparameter("max_dept", 3))
    with pytest.raises(UsageError) as err:
        load_config(path)
    message = str(err.value)
    assert "train.hyperparameters" in message
    assert "'max_dept' is not an XGBoost parameter; did you mean 'max_depth'?" in message
    assert "\n" not in message


@pytest.mark.parametrize("name", ["learning_rate", "reg_lambda", "tree_method", "eval_metric"])
def test_xgboost_names_and_aliases_are_accepted(config_file, name):
    value = {"tree_method": "hist", "eval_metric": "rmse"}.get(name, 0.1)
    assert load_config(config_file(set_hyperparameter(name, value)))


def test_the_shipped_config_uses_only_known_names():
    assert load_config().train.hyperparameters


def test_the_name_list_matches_the_installed_xgboost():
    """Every parameter the installed xgboost reports in its config is in the list."""
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(0)
    data = xgb.DMatrix(rng.random((20, 3)), label=rng.random(20))
    reported = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str | list) and not key.endswith("param"):
                    reported.add(key)
                walk(value)

    for booster in ("gbtree", "dart", "gblinear"):
        params = {"objective": "reg:squarederror", "booster": booster}
        walk(json.loads(xgb.train(params, data, 1).save_config()))
    structural = {"name", "version", "metrics", "num_trees", "updater_seq"}
    assert reported - structural <= XGBOOST_PARAMS, sorted(reported - structural - XGBOOST_PARAMS)


def test_a_yaml_syntax_error_is_one_line_with_line_and_column(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("data:\n  features: [A, B\n  target: C\n")
    with pytest.raises(UsageError) as err:
        load_config(path)
    message = str(err.value)
    assert "\n" not in message
    assert "line 3, column" in message and "not valid YAML" in message
