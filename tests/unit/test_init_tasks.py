"""`mlops init` wired to classification and string categories: what a column becomes, what
is refused, the positive label, the stratified split and the calibrated thresholds, and a
config that loads. Small generated frames; no column names of the example."""

import numpy as np
import pandas as pd
import pytest

from mlops.cli import init
from mlops.core import profiling
from mlops.core import profiling_classification as binary
from mlops.core.config import TASKS, load_config
from mlops.core.errors import UsageError

HYPER = {"max_depth": 3, "eta": 0.2, "num_round": 200, "early_stopping_rounds": 20, "seed": 1}


def frame(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """A yes/no outcome driven by a string tier and a number; `token` is near-unique text."""
    rng = np.random.default_rng(seed)
    tier = rng.choice(["gold", "silver", "bronze"], rows, p=[0.2, 0.3, 0.5])
    load = rng.uniform(0, 10, rows)
    logit = -1.5 + 2.5 * (tier == "bronze") - 1.5 * (tier == "gold") + 0.25 * load
    outcome = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "tier": tier,
            "token": [f"t{v}" for v in rng.choice(10**6, rows, replace=False)],
            "load": load.round(2),
            "outcome": np.where(outcome, "yes", "no"),
        }
    )


def test_tasks_are_the_configs():
    assert profiling.TASKS is TASKS and "binary_classification" in TASKS


def test_strings_with_few_levels_are_categories_and_thousands_are_left_out_unless_kept():
    prof = profiling.profile(frame(), "outcome", "binary_classification")
    assert prof.feature_names == ["tier", "load"] and prof.categorical_names == ["tier"]
    assert prof.left_out["token"].startswith("600 distinct strings, too many for a category")
    kept = profiling.profile(frame(), "outcome", "binary_classification", keep=["token"])
    assert kept.categorical_names == ["tier", "token"]
    token = next(c for c in kept.features if c.name == "token")
    assert token.values == ()  # too many levels to pin as a value set


def test_regression_takes_string_categories_too():
    df = frame().assign(outcome=lambda d: d.load * 3)
    prof = profiling.profile(df, "outcome")
    assert prof.task == "regression" and prof.categorical_names == ["tier"]


def test_starter_suite_pins_category_levels_and_the_label_set():
    prof = profiling.profile(frame(), "outcome", "binary_classification")
    suite = profiling.starter_suite(prof, "t", "t.csv")
    by = {(e["type"], e["kwargs"].get("column")): e["kwargs"] for e in suite["expectations"]}
    assert by[("expect_column_values_to_be_in_set", "tier")]["value_set"] == [
        "bronze",
        "gold",
        "silver",
    ]
    assert by[("expect_column_values_to_be_in_set", "outcome")]["value_set"] == ["no", "yes"]
    assert ("expect_column_values_to_be_in_type_list", "tier") not in by
    assert ("expect_column_values_to_be_between", "outcome") not in by
    numeric = frame().assign(outcome=lambda d: (d.outcome == "yes").astype(int))
    prof = profiling.profile(numeric, "outcome", "binary_classification")
    suite = profiling.starter_suite(prof, "t", "t.csv")
    by = {(e["type"], e["kwargs"].get("column")): e["kwargs"] for e in suite["expectations"]}
    assert by[("expect_column_values_to_be_in_set", "outcome")]["value_set"] == [0, 1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.assign(outcome=np.resize(["a", "b", "c"], len(d))), "not binary: 3 labels"),
        (lambda d: d.assign(outcome="yes"), "constant"),
        (lambda d: d.assign(outcome=d.outcome.where(d.index != 5)), "1 empty values"),
    ],
    ids=["three-labels", "one-label", "null-label"],
)
def test_unusable_classification_targets_are_one_usage_error(change, message):
    with pytest.raises(UsageError, match=message):
        profiling.profile(change(frame()), "outcome", "binary_classification")


@pytest.mark.parametrize(
    ("labels", "positive"),
    [(["no", "yes"], "yes"), (["True", "False"], "True"), ([0, 1], "1"), ([0.0, 1.0], "1")],
)
def test_named_positive_labels_need_no_review(labels, positive):
    target = pd.Series(np.resize(labels, 50), name="y")
    assert binary.positive_label(target) == (positive, None)


def test_otherwise_the_less_frequent_label_is_positive_with_a_review_note():
    target = pd.Series(["stay"] * 30 + ["churn"] * 10, name="y")
    label, note = binary.positive_label(target)
    assert label == "churn"
    assert "'churn' is the less frequent one (10 rows against 30 for 'stay')" in note


@pytest.mark.parametrize("positive", ["yes", "no"])  # the positive label sorting first or last
def test_the_split_is_stratified_and_the_pipelines(positive):
    from model_build.steps.preprocess import binary_labels, stratified_split

    df = frame(500)
    labels = binary.encode_labels(df.outcome, positive)
    train, validation, test = binary.stratified_indices(binary.strata(df.outcome), 0.6, 0.2, 42)
    assert sorted([*train, *validation, *test]) == list(range(500))
    for part in (train, validation, test):
        assert abs(labels[part].mean() - labels.mean()) < 0.02
    steps = stratified_split(df.assign(i=range(500)), 0.6, 0.2, 42, binary_labels(df.outcome))
    assert list(steps.test.i) == list(test)


def test_binary_calibration_puts_the_gate_between_the_baseline_and_the_naive_model():
    df = frame(1500)
    split = (0.6, 0.2, 4)
    cal = binary.calibrate_binary(
        df, ["tier", "load"], ["tier"], df.outcome, "yes", HYPER, split, 20
    )
    b = cal.baseline
    assert cal.test_rows == 300 and b["auc"] > 0.75
    assert 0.5 < cal.min_auc < b["auc_interval"][0] <= b["auc"]
    assert b["log_loss"] < cal.max_log_loss < cal.naive["log_loss"]
    assert 0 < cal.min_accuracy < b["accuracy"]
    # without the string category the signal is mostly gone: the category reaches the model
    blind = binary.calibrate_binary(df, ["load"], [], df.outcome, "yes", HYPER, split, 20)
    assert blind.baseline["auc"] < b["auc"] - 0.1


def test_regression_calibration_uses_string_categories():
    rng = np.random.default_rng(2)
    city = rng.choice(["a", "b", "c", "d"], 800)
    size = rng.uniform(20, 100, 800)
    price = size * pd.Series(city).map({"a": 10, "b": 20, "c": 30, "d": 40}).to_numpy()
    df = pd.DataFrame({"city": city, "size": size, "price": price + rng.normal(0, 30, 800)})
    hyper = {**HYPER, "objective": "reg:squarederror"}
    cal = profiling.calibrate(df, ["city", "size"], "price", hyper, (0.6, 0.2, 42), 20, ["city"])
    assert cal.baseline["r2"] > 0.95 and cal.max_mse < cal.naive["mse"]


def test_a_classification_config_renders_loads_and_quotes_the_label(tmp_path):
    df = frame(400)
    prof = profiling.profile(df, "outcome", "binary_classification")
    cal = binary.calibrate_binary(
        df, prof.feature_names, ["tier"], df.outcome, "yes", HYPER, init.SPLIT, 20
    )
    sections = init.classification_sections(cal, "yes", None)
    text = init.render_config("t-proj", "t.csv", prof, sections, "suite.json", {})
    (tmp_path / "config.yaml").write_text(text)
    cfg = load_config(tmp_path / "config.yaml", root=tmp_path)
    assert cfg.task == "binary_classification" and cfg.classification.positive_label == "yes"
    assert cfg.data.categorical_features == ["tier"]
    assert (cfg.gate.min_auc, cfg.gate.max_log_loss) == (cal.min_auc, cal.max_log_loss)
    assert cfg.smoke_test.min_accuracy == cal.min_accuracy
    assert cfg.train.hyperparameters["objective"] == "binary:logistic"


def test_a_true_false_target_gets_the_label_the_steps_and_the_run_check_accept(tmp_path):
    """CSV True/False reads as booleans: init, the train step and the pre-run check must key
    the positive label alike ("true"), else the written config is refused by the run."""
    from fixtures.tasks import CHURN_CONFIG, churn_frame

    from mlops.core.task_data import check_task_data
    from model_build.steps.train import class_labels

    df = churn_frame(300, seed=3).assign(churned=lambda d: d.churned == "yes")
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    target = pd.read_csv(path).churned
    positive, note = binary.positive_label(target)
    assert (positive, note) == ("true", None)
    assert class_labels(target, positive) == ["false", "true"]
    cfg = load_config(CHURN_CONFIG)
    labels = cfg.classification.model_copy(update={"positive_label": positive})
    cfg = cfg.model_copy(update={"classification": labels})
    assert check_task_data(cfg, path) == []
