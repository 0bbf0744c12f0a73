"""Config mistakes a user can fix fail at once, in one line that says where and what: the
model family checks its own hyperparameters and tuning ranges; a key a release moved says
where it went."""

from __future__ import annotations

import pytest

from mlops.core.config import load_config
from mlops.core.errors import UsageError
from mlops.core.model_family import families

SKLEARN_PARAMS = {"learning_rate": 0.1, "max_iter": 200, "max_leaf_nodes": 15}


def set_hyperparameter(name, value):
    def mutate(raw):
        raw["train"]["hyperparameters"][name] = value

    return mutate


def refused(path) -> str:
    with pytest.raises(UsageError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith("bad config ") and "\n" not in message
    return message


def test_a_misspelt_hyperparameter_fails_before_training_with_a_suggestion(config_file):
    message = refused(config_file(set_hyperparameter("max_dept", 3)))
    assert (
        "train.hyperparameters: 'max_dept' is not an XGBoost parameter; did you mean "
        "'max_depth'?" in message
    )


@pytest.mark.parametrize("name", ["learning_rate", "reg_lambda", "tree_method", "eval_metric"])
def test_xgboost_names_and_aliases_are_accepted(config_file, name):
    value = {"tree_method": "hist", "eval_metric": "rmse"}.get(name, 0.1)
    assert load_config(config_file(set_hyperparameter(name, value)))


def test_the_shipped_config_uses_only_known_names():
    assert load_config().train.hyperparameters


def test_an_unknown_family_names_the_known_ones(config_file):
    message = refused(config_file(lambda raw: raw["train"].update(model="lightgbm")))
    known = ", ".join(sorted(families().FAMILIES))
    assert f"train.model: unknown model family 'lightgbm': this project has {known}" in message


def test_the_family_is_the_first_listed_unless_train_model_says(config_file):
    listed_first = next(iter(families().FAMILIES))
    default = load_config(config_file(lambda raw: raw["train"].pop("model")))
    assert listed_first == default.model_family.NAME

    def sklearn(raw):
        raw["train"].update(model="sklearn", hyperparameters=SKLEARN_PARAMS)

    cfg = load_config(config_file(sklearn))
    assert cfg.model_family.NAME == "sklearn" and cfg.model_family.IMAGE == "sklearn"


def test_another_familys_hyperparameters_are_refused_by_the_chosen_family(config_file):
    message = refused(config_file(lambda raw: raw["train"].update(model="sklearn")))
    assert "train.hyperparameters:" in message and "not a HistGradientBoosting parameter" in message

    def eta(raw):
        raw["train"].update(model="sklearn", hyperparameters={**SKLEARN_PARAMS, "eta": 0.1})

    assert "'eta' is not a HistGradientBoosting parameter" in refused(config_file(eta))


def test_a_family_refuses_what_the_task_cannot_use(config_file):
    def quantile_classifier(raw):
        raw["task"] = "binary_classification"
        raw["gate"].update(min_auc=0.7, max_log_loss=0.6)
        raw["train"].update(model="sklearn", hyperparameters={**SKLEARN_PARAMS, "quantile": 0.5})

    message = refused(config_file(quantile_classifier))
    assert "'quantile' is a parameter of regression only" in message


@pytest.mark.parametrize(
    ("section", "key", "value", "hint"),
    [
        ("drift", "statistic", "psi", "drift.statistic was removed"),
        ("sagemaker", "sklearn_image_version", "1.2-1",
         "sagemaker.sklearn_image_version moved: write sagemaker.image_versions: {sklearn:"),
        ("sagemaker", "xgboost_image_version", "1.7-1",
         "sagemaker.xgboost_image_version moved: write sagemaker.image_versions: {xgboost:"),
    ],
)  # fmt: skip
def test_a_moved_key_says_where_it_went(config_file, section, key, value, hint):
    assert hint in refused(config_file(lambda raw: raw[section].update({key: value})))


def test_a_yaml_syntax_error_is_one_line_with_line_and_column(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("data:\n  features: [A, B\n  target: C\n")
    with pytest.raises(UsageError) as err:
        load_config(path)
    message = str(err.value)
    assert "\n" not in message
    assert "line 3, column" in message and "not valid YAML" in message


def test_a_repeated_section_is_refused_not_merged(config_file):
    path = config_file(lambda raw: None)
    text = path.read_text()
    path.write_text(text + "gate:\n  max_mse: 1.0e+99\n")  # a second gate: overriding the first
    with pytest.raises(UsageError) as err:
        load_config(path)
    line = text.count("\n") + 1
    assert (
        str(err.value)
        == f"config {path} is not valid YAML: line {line}, column 1: duplicate key 'gate'"
    )


@pytest.mark.parametrize("value", [".nan", ".inf", "-.Inf"])
def test_a_non_finite_number_is_refused_with_its_line(config_file, value):
    path = config_file(lambda raw: None)
    path.write_text(path.read_text() + f"extra_number: {value}\n")
    with pytest.raises(
        UsageError, match=f"is not valid YAML: line .*'{value}' is not a finite number"
    ):
        load_config(path)
