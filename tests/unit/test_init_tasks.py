"""`mlops init` wired to classification, string categories and model families: what a
column becomes, what is refused, the positive label, the config it stages and the one it
writes, and which steps it runs. Small generated frames; no column names of the example."""

import shutil

import numpy as np
import pandas as pd
import pytest

from mlops.cli import init
from mlops.core import profiling
from mlops.core import profiling_classification as binary
from mlops.core.config import TASKS, load_config
from mlops.core.errors import UsageError


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
    ],
    ids=["three-labels", "one-label"],
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


def classifier_outputs(df: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """evaluation.json and predictions.csv as evaluate writes them, for a model that scores
    the outcome's own logit on the frame's last fifth."""
    from stepkit import metrics

    test = df.tail(len(df) // 5)
    y = (test.outcome == "yes").to_numpy(float)
    prob = np.clip(0.15 + 0.7 * y + np.random.default_rng(1).normal(0, 0.2, len(y)), 0.01, 0.99)
    task = "binary_classification"
    evaluation = {
        **metrics.task_metrics(task, y, prob, init.THRESHOLD),
        "intervals": metrics.bootstrap_intervals(task, y, prob),
        "naive": metrics.naive_metrics(task, y, float(y.mean()), init.THRESHOLD),
        "rows": len(y),
    }
    return evaluation, pd.DataFrame({"target": test.outcome, "y": y, "prediction": prob})


def write_config(tmp_path, df, task, family_name, sections=None) -> tuple[str, object]:
    """The config init writes for `df` (provisional unless `sections` are given), loaded."""
    from mlops.core.model_family import model_family

    prof = profiling.profile(df, "outcome", task)
    family = model_family(family_name)
    classification = init.classification_section("yes", None) if task != "regression" else ""
    sections = sections or init.provisional_sections(task, classification)
    text = init.render_config("t-proj", "t.csv", prof, family, sections, "suite.json", {})
    (tmp_path / "config.yaml").write_text(text)
    return text, load_config(tmp_path / "config.yaml", root=tmp_path)


@pytest.mark.parametrize("family", ["xgboost", "sklearn"])
@pytest.mark.parametrize("task", TASKS)
def test_the_staged_config_loads_with_the_familys_defaults_and_a_gate_that_binds_nothing(
    tmp_path, task, family
):
    from mlops.core.gate import check_gate
    from mlops.core.graph import load_pipeline
    from mlops.core.model_family import model_family

    df = frame(300) if task != "regression" else frame(300).assign(outcome=lambda d: d.load * 3)
    text, cfg = write_config(tmp_path, df, task, family)
    assert cfg.train.model == family
    assert cfg.train.hyperparameters == model_family(family).defaults(task)
    assert "statistic" not in text and "sagemaker:" not in text
    worst = {"regression_metrics": {"mse": {"value": 1e300}, "r2": {"value": -1e300}},
             "binary_classification_metrics": {"auc": {"value": 0.0}, "log_loss": {"value": 1e300}},
             "champion_mse_limit": 1e308, "champion_log_loss_limit": 1e308}  # fmt: skip
    assert check_gate(worst, load_pipeline(cfg).gate).passed


def test_a_scikit_learn_config_names_no_other_model_library(tmp_path):
    text, cfg = write_config(tmp_path, frame(300), "binary_classification", "sklearn")
    assert "xgboost" not in text.lower() and "HistGradientBoosting" in text  # the family's words
    assert cfg.model_family.NAME == "sklearn"


def test_a_classification_config_gets_the_calibrated_gate_and_quotes_the_label(tmp_path):
    from mlops.core.calibrate_classification import calibrate_classification

    df = frame(1000)
    cal = calibrate_classification(*classifier_outputs(df), smoke_rows=init.SMOKE_ROWS)
    sections = init.classification_sections(
        cal, "xgboost", init.classification_section("yes", None)
    )
    text, cfg = write_config(tmp_path, df, "binary_classification", "xgboost", sections)
    assert cfg.task == "binary_classification" and cfg.classification.positive_label == "yes"
    assert cfg.data.categorical_features == ["tier"]
    assert (cfg.gate.min_auc, cfg.gate.max_log_loss) == (cal.min_auc, cal.max_log_loss)
    assert cfg.smoke_test.min_accuracy == cal.min_accuracy
    assert cfg.train.hyperparameters["objective"] == "binary:logistic"
    assert f"Baseline (xgboost): AUC {cal.baseline['auc']:.4f} (95 % interval" in text


def test_init_runs_the_steps_up_to_evaluate_without_validation():
    from mlops.core.graph import load_pipeline

    assert init.calibration_steps(load_pipeline(load_config())) == (
        "preprocess",
        "train",
        "evaluate",
    )


def test_model_is_one_of_the_projects_families_the_first_by_default():
    from mlops.cli import build_parser
    from mlops.core.model_family import families

    parse = build_parser().parse_args
    base = ["init", "--data", "d.csv", "--target", "y"]
    assert parse(base).model == next(iter(families().FAMILIES)) == "xgboost"
    assert parse([*base, "--model", "sklearn"]).model == "sklearn"
    with pytest.raises(SystemExit):
        parse([*base, "--model", "lightgbm"])


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


def test_the_written_config_passes_the_projects_yamllint(tmp_path):
    """Long left-out reasons and many features made comment and list lines of 120-145
    characters: the fork's CI (yamllint, line-length 120) was red from its first commit."""
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    from mlops.core.paths import REPO_ROOT

    df = frame(300)
    for i in range(14):
        df[f"a_rather_long_measurement_name_{i}"] = np.random.default_rng(i).normal(size=len(df))
    df["customer_reference_code"] = [f"R{i:06d}" for i in range(len(df))]  # left out: a long why
    text, _ = write_config(tmp_path, df, "binary_classification", "sklearn")
    assert "customer_reference_code" in text
    rules = YamlLintConfig(file=str(REPO_ROOT / ".yamllint.yaml"))
    problems = [f"{p.line}: {p.desc}" for p in linter.run(text, rules)]
    assert problems == []
    assert max(len(line) for line in text.splitlines()) <= init.LINE_WIDTH


def test_force_removes_the_suite_and_golden_set_the_replaced_config_named(tmp_path):
    from mlops.core.paths import REPO_ROOT

    root = shutil.copytree(REPO_ROOT / "tests" / "fixture_project", tmp_path / "fork")
    old = load_config(root / "model_build/config.yaml", root=root)
    new_suite = root / "data_checks/expectations/fork.json"
    stale = init.replaced_files(root / "model_build/config.yaml", root, {new_suite})
    assert sorted(stale) == sorted([old.suite_file, old.golden_file])
    assert init.replaced_files(root / "model_build/config.yaml", root, {old.suite_file}) == [
        old.golden_file
    ]  # a file written again is kept
