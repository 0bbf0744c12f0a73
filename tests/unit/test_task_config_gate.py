"""The task in config, the classification gate, and the checks of a data file against the task."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from fixtures.tasks import CHURN_CONFIG, RENT_CONFIG, churn_frame

from mlops.core.config import load_config
from mlops.core.errors import UsageError
from mlops.core.gate import check_gate
from mlops.core.graph import Gate, build_graph
from mlops.core.task_data import check_task_data

GATE = Gate(None, None, 5.0, "binary_classification", min_auc=0.8, max_log_loss=0.5)


def evaluation(auc: float, loss: float, champion_loss: float | None = None) -> dict:
    ev = {"binary_classification_metrics": {"auc": {"value": auc}, "log_loss": {"value": loss}}}
    if champion_loss is not None:
        ev["champion"] = {"binary_classification_metrics": {"log_loss": {"value": champion_loss}}}
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
def test_classification_gate(ev, failed):
    verdict = check_gate(ev, GATE)
    assert [c.metric for c in verdict.failures] == failed
    assert verdict.passed is (not failed)


def test_classification_gate_checks_the_golden_set():
    ev = evaluation(0.9, 0.3, champion_loss=0.3)
    ev["golden"] = evaluation(0.75, 0.4, champion_loss=0.3)
    verdict = check_gate(ev, GATE)
    assert [c.metric for c in verdict.failures] == ["golden auc", "golden log_loss vs champion"]
    ev["golden"] = evaluation(0.85, 0.31, champion_loss=0.3)
    assert check_gate(ev, GATE).passed


def write(tmp_path, source, mutate) -> str:
    raw = yaml.safe_load(source.read_text())
    mutate(raw)
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


def test_graph_passes_task_and_categories_to_the_steps():
    graph = build_graph(load_config(CHURN_CONFIG))
    pre, trn, ev = graph.step("preprocess"), graph.step("train"), graph.step("evaluate")
    assert pre.arguments[-4:] == ("--task", "binary_classification", "--categorical", "plan,region")
    assert "--positive_label" in trn.arguments and "--max_categories" in trn.arguments
    assert ev.arguments[-4:] == ("--task", "binary_classification", "--threshold", "0.5")
    assert graph.gate.task == "binary_classification" and graph.gate.min_auc == 0.75


def test_the_example_graph_has_no_task_arguments():
    graph = build_graph(load_config())
    for step in graph.steps:
        assert "--task" not in step.arguments and "--categorical" not in step.arguments


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
