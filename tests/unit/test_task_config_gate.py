"""The task in config, the classification gate, and the checks of a data file against the task."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from fixtures.tasks import CHURN_CONFIG, RENT_CONFIG, churn_frame

from mlops.core.config import load_config
from mlops.core.errors import UsageError
from mlops.core.gate import check_gate, standard_gate
from mlops.core.graph import load_pipeline
from mlops.core.task_data import check_task_data


def churn_gate(tmp_path, golden: bool):
    """The churn fixture's gate with min_auc 0.8, max_log_loss 0.5 (and a golden set)."""

    def mutate(raw):
        raw["gate"].update(min_auc=0.8, max_log_loss=0.5)
        if golden:
            raw["data"]["golden"] = str(tmp_path / "golden.csv")

    return standard_gate(load_config(write(tmp_path, CHURN_CONFIG, mutate)))


def evaluation(auc: float, loss: float, champion_loss: float | None = None) -> dict:
    section = "binary_classification_metrics"
    ev = {section: {"auc": {"value": auc}, "log_loss": {"value": loss}},
          "champion_log_loss_limit": 1.7e308}  # fmt: skip
    if champion_loss is not None:
        ev["champion"] = {section: {"log_loss": {"value": champion_loss}}}
        ev["champion_log_loss_limit"] = champion_loss * 1.05
    return ev


@pytest.mark.parametrize(
    ("ev", "failed"),
    [
        (evaluation(0.9, 0.3), []),
        (evaluation(0.8, 0.5), []),  # inclusive
        (evaluation(0.79, 0.3), ["auc"]),
        (evaluation(0.9, 0.51), ["log_loss"]),
        (evaluation(0.9, 0.31, champion_loss=0.3), []),  # +3.3% is within 5%
        (evaluation(0.9, 0.32, champion_loss=0.3), ["log_loss vs champion"]),
    ],
)
def test_classification_gate(tmp_path, ev, failed):
    verdict = check_gate(ev, churn_gate(tmp_path, golden=False))
    assert [c.metric for c in verdict.failures] == failed
    assert verdict.passed is (not failed)


def test_classification_gate_checks_the_golden_set(tmp_path):
    gate = churn_gate(tmp_path, golden=True)
    assert [r.label for r in gate] == ["auc", "log_loss", "log_loss vs champion", "golden auc",
                                       "golden log_loss vs champion"]  # fmt: skip
    assert [r.threshold.name for r in gate[:2]] == ["MinAuc", "MaxLogLoss"]
    without = churn_gate(tmp_path / "plain", golden=False)
    assert [r.label for r in without] == ["auc", "log_loss", "log_loss vs champion"]
    ev = evaluation(0.9, 0.3, champion_loss=0.3)
    ev["golden"] = evaluation(0.75, 0.4, champion_loss=0.3)
    verdict = check_gate(ev, gate)
    assert [c.metric for c in verdict.failures] == ["golden auc", "golden log_loss vs champion"]
    ev["golden"] = evaluation(0.85, 0.31, champion_loss=0.3)
    assert check_gate(ev, gate).passed


def write(tmp_path, source, mutate) -> str:
    raw = yaml.safe_load(source.read_text())
    mutate(raw)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_fixture_configs_load_with_their_task():
    churn, rent = load_config(CHURN_CONFIG), load_config(RENT_CONFIG)
    assert (churn.task, rent.task) == ("binary_classification", "regression")
    assert churn.data.categorical_features == ["plan", "region"]
    assert load_config().task == "regression"  # the default: the example's config says nothing


@pytest.mark.parametrize(
    ("source", "mutate", "message"),
    [
        (CHURN_CONFIG, lambda c: c["gate"].pop("min_auc"), "gate.min_auc: Field required"),
        (CHURN_CONFIG, lambda c: c.update(task="multiclass"), "task"),
        (RENT_CONFIG, lambda c: c["data"].update(categorical_features=["zip"]), "not in features"),
        (CHURN_CONFIG, lambda c: c["classification"].update(threshold=1.5), "threshold"),
        (
            CHURN_CONFIG,
            lambda c: c["classification"].update(positive_label=True),
            "quote the label",
        ),
    ],
)
def test_bad_task_config_names_the_key(tmp_path, source, mutate, message):
    with pytest.raises(UsageError, match=message):
        load_config(write(tmp_path, source, mutate))


def test_a_numeric_positive_label_is_read_as_text(tmp_path):
    cfg = load_config(
        write(tmp_path, CHURN_CONFIG, lambda c: c["classification"].update(positive_label=1))
    )
    assert cfg.classification.positive_label == "1"


def test_the_pipeline_passes_task_labels_and_categories_to_the_steps():
    pipe = load_pipeline(load_config(CHURN_CONFIG))
    pre, trn = pipe.step("preprocess"), pipe.step("train")
    arguments = dict(zip(pre.arguments[::2], pre.arguments[1::2], strict=True))
    assert arguments["--task"] == "binary_classification"
    assert arguments["--categorical"] == "plan,region"
    hp = trn.hyperparameters
    assert (hp["task"], hp["categorical"], hp["max_categories"]) == (
        "binary_classification", "plan,region", 50
    )  # fmt: skip
    assert (hp["positive_label"], hp["threshold"]) == ("yes", 0.5)
    assert [r.label for r in pipe.gate][:2] == ["auc", "log_loss"]
    assert pipe.gate[0].threshold.value == 0.75


def test_a_regression_without_text_features_passes_no_categories():
    pipe = load_pipeline(load_config())
    assert "--categorical" not in pipe.step("preprocess").arguments
    hp = pipe.step("train").hyperparameters
    assert hp["task"] == "regression"
    assert "categorical" not in hp and "positive_label" not in hp and "threshold" not in hp


def test_a_target_with_three_values_is_one_clear_usage_error(tmp_path):
    df = churn_frame(300, seed=1)
    df.loc[:10, "churned"] = "maybe"
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    with pytest.raises(UsageError) as err:
        check_task_data(load_config(CHURN_CONFIG), path)
    assert "needs target churned to hold exactly two values" in str(err.value)
    assert "it holds 3: maybe, no, yes" in str(err.value)
    assert err.value.exit_code == 2


def test_a_regression_on_a_text_target_says_which_task_fits(tmp_path):
    cfg = load_config(RENT_CONFIG)
    df = pd.DataFrame(
        {"area_sqm": [50.0], "rooms": [2], "city": ["Lyon"], "furnished": ["no"], "rent": ["high"]}
    )
    df.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(UsageError, match="numeric target; rent holds 'high'"):
        check_task_data(cfg, tmp_path / "d.csv")


def test_thousands_of_levels_warn_and_are_capped(tmp_path):
    df = churn_frame(3000, seed=1)
    df["region"] = [f"r{i}" for i in range(3000)]
    df.to_csv(tmp_path / "d.csv", index=False)
    warnings = check_task_data(load_config(CHURN_CONFIG), tmp_path / "d.csv")
    assert warnings == [
        "warning: region has 3000 levels; training keeps the 50 most frequent "
        "(data.max_categories), rarer ones score as missing"
    ]


def test_registry_metrics_of_a_classifier_come_from_its_evaluation():
    from mlops.core.registry import metrics_from_evaluation

    evaluation = {
        "binary_classification_metrics": {
            "auc": {"value": 0.8, "standard_deviation": "NaN"},
            "log_loss": {"value": 0.5, "standard_deviation": 0.1},
            "f1": {"value": 0.6, "standard_deviation": "NaN"},
            "confusion_matrix": {"0": {"0": 1, "1": 0}, "1": {"0": 0, "1": 1}},
        },
        "champion_log_loss_limit": 1e308,
    }
    assert metrics_from_evaluation(evaluation) == {"auc": 0.8, "log_loss": 0.5, "f1": 0.6}
