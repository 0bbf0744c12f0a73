"""`mlops init`'s core: what a data set's columns become, what is refused, how the gate
is calibrated from what the evaluate step wrote (the model's and the mean predictor's)."""

import numpy as np
import pandas as pd
import pytest

from mlops.core import profiling
from mlops.core.errors import UsageError


def data(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dose = rng.uniform(1, 9, rows)
    group = rng.integers(1, 4, rows)
    return pd.DataFrame(
        {
            "record": np.arange(1000, 1000 + rows),  # ID-like
            "dose": dose,
            "group": group,
            "site": 7,  # constant
            "response": 20 + 6 * dose + 4 * group + rng.normal(0, 2, rows),
        }
    )


def test_profile_leaves_out_id_like_and_constant_columns_unless_kept():
    prof = profiling.profile(data(), "response")
    assert prof.feature_names == ["dose", "group"]
    assert set(prof.left_out) == {"record", "site"}
    assert "ID-like" in prof.left_out["record"] and prof.left_out["site"] == "constant"
    kept = profiling.profile(data(), "response", keep=["record"])
    assert kept.feature_names == ["record", "dose", "group"]


@pytest.mark.parametrize(
    ("change", "target", "message"),
    [
        (lambda df: df, "nope", "no column 'nope'"),
        (lambda df: df.head(profiling.MIN_ROWS - 1), "response", "too few rows"),
        (lambda df: df.assign(response=5.0), "response", "constant"),
        (lambda df: df.assign(response=df.response.where(df.index > 210)), "response", "with a"),
        (lambda df: df.assign(response="x"), "response", "not numeric"),
    ],
    ids=["no-column", "too-few-rows", "constant-target", "few-targets", "text-target"],
)
def test_unusable_input_is_one_clear_usage_error(change, target, message):
    with pytest.raises(UsageError, match=message):
        profiling.profile(change(data()), target)


def test_unknown_task_is_refused():
    with pytest.raises(UsageError, match="unknown task"):
        profiling.profile(data(), "response", task="ranking")


def test_starter_suite_pins_columns_types_nulls_ranges_and_sets():
    prof = profiling.profile(data(), "response")
    suite = profiling.starter_suite(prof, "trial", "trial.csv")
    by = {(e["type"], e["kwargs"].get("column")): e["kwargs"] for e in suite["expectations"]}
    assert by[("expect_table_columns_to_match_ordered_list", None)]["column_list"] == [
        "dose",
        "group",
        "response",
    ]
    assert by[("expect_column_values_to_be_in_set", "group")]["value_set"] == [1, 2, 3]
    assert by[("expect_column_values_to_be_in_type_list", "group")]["type_list"] == ["int64"]
    dose = by[("expect_column_values_to_be_between", "dose")]
    observed = data().dose
    span = observed.max() - observed.min()
    assert dose["min_value"] == 0.0  # never below zero for a column that never is
    assert observed.max() + 0.49 * span < dose["max_value"] < observed.max() + 0.51 * span
    assert ("expect_column_values_to_not_be_null", "response") in by
    assert ("expect_column_values_to_be_between", "response") in by


def test_a_column_with_nulls_gets_a_not_null_expectation_with_a_calibrated_share():
    df = data().assign(dose=lambda d: d.dose.where(d.index % 10 != 0))  # 10 % empty
    df["extra"] = df.dose.where(df.index % 10 == 1) * 2  # 90 % empty
    suite = profiling.starter_suite(profiling.profile(df, "response"), "t", "t.csv")
    by = {(e["type"], e["kwargs"].get("column")): e["kwargs"] for e in suite["expectations"]}
    assert by[("expect_column_values_to_not_be_null", "dose")]["mostly"] == 0.83  # 0.98 - 0.15
    assert by[("expect_column_values_to_not_be_null", "extra")]["mostly"] == 0.05  # half of 0.1
    assert "mostly" not in by[("expect_column_values_to_not_be_null", "group")]


def test_rows_without_a_target_are_left_out_counted_and_covered_by_the_quarantine_limit():
    df = data().assign(response=lambda d: d.response.where(d.index % 50 != 7))  # 6 of 300
    prof = profiling.profile(df, "response")
    assert prof.unlabelled == 6 and prof.rows == 294 and prof.target.nulls == 0
    suite = profiling.starter_suite(prof, "t", "t.csv")
    kinds = {(e["type"], e["kwargs"].get("column")): e["kwargs"] for e in suite["expectations"]}
    assert kinds[("expect_column_values_to_not_be_null", "response")] == {"column": "response"}
    assert profiling.quarantine_pct(6, 300, 0.1) == 3.0  # 2 % of rows, half as much again
    assert profiling.quarantine_pct(0, 300, 0.1) == 0.1
    assert profiling.quarantine_pct(210, 300, 0.1) == 99.0  # the config's limit is < 100


def evaluate_outputs(y, pred, naive: float) -> tuple[dict, pd.DataFrame]:
    """What the evaluate step writes for these held-out rows (evaluation.json, predictions)."""
    from stepkit import metrics

    evaluation = metrics.task_metrics("regression", y, pred, 0.5)
    evaluation["intervals"] = metrics.bootstrap_intervals("regression", y, pred)
    evaluation["naive"] = metrics.naive_metrics("regression", y, naive, 0.5)
    evaluation["rows"] = len(y)
    predictions = pd.DataFrame({"target": y.astype(str), "y": y, "prediction": pred})
    return evaluation, predictions


def held_out(rows: int, noise: float, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """A model within `noise` of targets that vary by about 15 around 60."""
    rng = np.random.default_rng(seed)
    y = 60 + rng.normal(0, 15, rows)
    return evaluate_outputs(y, y + rng.normal(0, noise, rows), naive=60.0)


def test_calibration_puts_the_gate_between_the_model_and_the_mean_predictor():
    cal = profiling.calibrate(*held_out(200, noise=2.0), smoke_rows=20)
    b, n = cal.baseline, cal.naive
    assert b["mse_interval"][0] < b["mse"] < b["mse_interval"][1] < cal.max_mse < n["mse"]
    assert 0 <= cal.min_r2 < b["r2_interval"][0] <= b["r2"]
    assert b["r2"] > 0.9 and abs(n["r2"]) < 0.05
    assert b["mape_pct"] < cal.max_mape_pct < n["mape_pct"]
    assert cal.test_rows == 200 and cal.smoke_rows == 20 and cal.warnings == ()


def test_calibration_reads_what_evaluate_wrote_and_computes_no_metric_again():
    evaluation, predictions = held_out(300, noise=2.0)
    evaluation["regression_metrics"]["mse"]["value"] = 7.0  # not what the rows give
    evaluation["regression_metrics"]["r2"]["value"] = 0.5
    evaluation["intervals"] = {"mse": [5.0, 10.0], "r2": [0.4, 0.6]}
    evaluation["naive"].update(mse=500.0, r2=-0.01)
    evaluation["rows"] = 300
    cal = profiling.calibrate(evaluation, predictions, smoke_rows=20)
    assert cal.baseline["mse"] == 7.0 and cal.baseline["r2"] == 0.5
    assert cal.baseline["mse_interval"] == (5.0, 10.0) and cal.naive["mse"] == 500.0
    assert cal.max_mse == 12.0  # a fifth above the interval's top
    assert cal.min_r2 == 0.38  # the interval's bottom less 0.02


def test_a_model_barely_better_than_the_mean_gets_a_gate_halfway_and_a_warning():
    cal = profiling.calibrate(*held_out(1000, noise=14.0), smoke_rows=20)
    assert cal.max_mse == profiling._round((cal.baseline["mse"] + cal.naive["mse"]) / 2, False)
    assert cal.baseline["mse"] < cal.max_mse < cal.naive["mse"]
    assert any("barely better than predicting the mean" in w for w in cal.warnings)


def test_a_small_held_out_set_is_warned_about_with_its_interval():
    cal = profiling.calibrate(*held_out(40, noise=2.0), smoke_rows=20)
    assert cal.test_rows == 40
    low, high = cal.baseline["mse_interval"]
    assert any(
        f"only 40 held-out rows: the test MSE's 95 % interval is {low:.4g} to {high:.4g}" in w
        for w in cal.warnings
    )


def test_the_smoke_limit_is_under_the_mean_predictors_mape_with_more_rows_if_needed():
    rng = np.random.default_rng(3)
    y = rng.uniform(50, 150, 80)
    pred = y * rng.normal(1, 0.25, 80)  # a model with a wide error, mean-like on few rows
    naive_mape = profiling.mape_pct(y, np.full(80, y.mean()))
    assert profiling.smoke_mape_limit(y, pred, 20) >= naive_mape  # 20 rows cannot tell them
    rows, limit, warning = profiling.smoke_rows_and_limit(y, pred, 20, naive_mape)
    assert rows > 20 and limit < naive_mape and warning is None


def test_the_smoke_limit_comes_from_draws_of_the_predictions():
    evaluation, predictions = held_out(500, noise=0.0)
    exact = profiling.calibrate(evaluation, predictions, smoke_rows=20)
    assert exact.baseline["mape_pct"] == 0.0 and exact.max_mape_pct == 0.0
    off = predictions.assign(prediction=predictions.y * 1.1)  # every row 10 % high
    limit = profiling.calibrate(evaluation, off, smoke_rows=20).max_mape_pct
    assert 12.0 <= limit <= 13.0  # 10 % and a fifth more, rounded up to two digits


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Energy Use 2024.csv", "energy-use-2024-csv"),
        ("diabetes", "diabetes"),
        # the longest group every derived AWS name fits (mlops/core/names.py)
        (
            "Yearly energy consumption of public buildings.csv",
            "yearly-energy-consumption-of-public-b",
        ),
    ],
)
def test_project_name(text, name):
    assert profiling.project_name(text) == name
    with pytest.raises(UsageError):
        profiling.project_name("***")


def test_monotonic_candidates_are_the_strongly_rank_correlated_features():
    df = data(500)
    candidates = profiling.monotonic_candidates(df, ["dose", "group", "record"], "response")
    assert next(iter(candidates)) == "dose" and candidates["dose"] > 0.8
    assert "record" not in candidates  # an ID has no rank correlation with the response
