"""The expectation suite on generated data: clean data passes, each corruption is caught.

Each corruption names the risk it guards and the expectation (type, column) that
must catch it. One Great Expectations context serves the whole session (the
stepkit.expectations module caches it), so these cost tens of milliseconds each.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import validate
from fixture_project.generate import generate_buildings

from mlops.core.config import load_config
from mlops.core.paths import REPO_ROOT
from stepkit.expectations import load_suite, run_suite

CFG = load_config()
SUITE_FILE = CFG.suite_file
TODAY = date(2026, 6, 1)
MAX_MB = 1024


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return generate_buildings(2000, seed=21)


def check(df: pd.DataFrame, tmp_path: Path) -> dict:
    """Validate a frame the way the step does: through a CSV file on disk."""
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    return validate.validate_file(path, SUITE_FILE, MAX_MB, TODAY)


def failed(report: dict) -> set[tuple[str, str | None]]:
    return {(f["expectation"], f["column"]) for f in report["failures"]}


@pytest.mark.parametrize(("rows", "seed"), [(1000, 0), (1000, 1), (1000, 2), (20_000, 3)])
def test_clean_generated_data_passes(rows, seed, tmp_path):
    report = check(generate_buildings(rows, seed), tmp_path)
    assert report["success"], report["summary"]
    assert report["failed"] == 0 and report["evaluated"] == 31 and report["rows"] == rows
    assert report["summary"] == f"validation passed: 31 expectations on {rows} rows"


def _set(column, rows, value):
    def corrupt(df):
        df = df.astype({column: object}) if isinstance(value, str) else df.copy()
        df.loc[rows, column] = value
        return df

    return corrupt


def _columns(order):
    return lambda df: df[order(list(df.columns))]


def _swap(cols):
    cols[1], cols[2] = cols[2], cols[1]
    return cols


CORRUPTIONS = {
    # risk guarded -> (corruption, expectations that must fail)
    "null in a feature": (
        _set("FLOOR_AREA", [3, 70], np.nan),
        {("expect_column_values_to_not_be_null", "FLOOR_AREA")},
    ),
    "null in the target": (
        _set("ANNUAL_COST", [5], np.nan),
        {("expect_column_values_to_not_be_null", "ANNUAL_COST")},
    ),
    "year in the future": (
        _set("INSTALL_YEAR", [9], 2031),
        {("expect_column_values_to_be_between", "INSTALL_YEAR")},
    ),
    "negative price": (
        _set("ANNUAL_COST", [11], -60901),
        {("expect_column_values_to_be_between", "ANNUAL_COST")},
    ),
    "a 2 in a binary column": (
        _set("HAS_SHADE", [13], 2),
        {("expect_column_values_to_be_in_set", "HAS_SHADE")},
    ),
    "text in a numeric column": (
        _set("FLOOR_AREA", [17], "big"),
        {("expect_column_values_to_be_in_type_list", "FLOOR_AREA")},
    ),
    "missing column": (
        lambda df: df.drop(columns="GLAZING_RATIO"),
        {("expect_table_columns_to_match_ordered_list", None)},
    ),
    "extra column": (
        lambda df: df.assign(ZIP_CODE=12345),
        {("expect_table_columns_to_match_ordered_list", None)},
    ),
    "swapped column order": (
        _columns(_swap),
        {("expect_table_columns_to_match_ordered_list", None)},
    ),
    "too few rows": (
        lambda df: df.head(999),
        {("expect_table_row_count_to_be_between", None)},
    ),
    "price in thousands": (
        lambda df: df.assign(ANNUAL_COST=df.ANNUAL_COST / 1000),
        {
            ("expect_column_mean_to_be_between", "ANNUAL_COST"),
            ("expect_column_stdev_to_be_between", "ANNUAL_COST"),
        },
    ),
}


@pytest.mark.parametrize("risk", list(CORRUPTIONS))
def test_each_corruption_is_caught_by_its_expectation(risk, clean, tmp_path):
    corrupt, expected = CORRUPTIONS[risk]
    report = check(corrupt(clean), tmp_path)
    assert not report["success"]
    assert expected <= failed(report), report["summary"]
    first = report["failures"][0]
    assert (first["expectation"], first["column"]) in expected  # the cause comes first
    assert validate.exit_code(report) == 1
    assert "\n" not in report["summary"] and report["summary"].startswith("validation failed:")


def test_null_in_an_integer_column_also_fails_its_type(clean, tmp_path):
    report = check(_set("HEAT_PUMPS", [1], np.nan)(clean), tmp_path)
    assert failed(report) == {
        ("expect_column_values_to_not_be_null", "HEAT_PUMPS"),
        ("expect_column_values_to_be_in_type_list", "HEAT_PUMPS"),  # read as float64
    }


def test_one_bad_value_fails_no_matter_how_many_rows_are_good(tmp_path):
    df = generate_buildings(20_000, seed=5)
    df.loc[19_999, "ANNUAL_COST"] = 0
    report = check(df, tmp_path)
    (failure,) = report["failures"]
    assert (failure["expectation"], failure["column"]) == (
        "expect_column_values_to_be_between",
        "ANNUAL_COST",
    )
    assert failure["unexpected_count"] == 1 and failure["examples"] == [0]
    assert failure["expected"] == "> 0 and <= 10000000"


def test_failures_say_what_was_found(clean, tmp_path):
    """The report a person reads: counts, examples, and what differs in the columns."""
    df = clean.drop(columns="GLAZING_RATIO")
    df.loc[[2, 4], "HAS_SHADE"] = [2, 3]
    df = df.astype({"FLOOR_AREA": object})
    df.loc[6, "FLOOR_AREA"] = "n/a sq ft"
    by_key = {(f["expectation"], f["column"]): f for f in check(df, tmp_path)["failures"]}
    columns = by_key[("expect_table_columns_to_match_ordered_list", None)]
    assert columns["detail"] == "missing ['GLAZING_RATIO']"
    deck = by_key[("expect_column_values_to_be_in_set", "HAS_SHADE")]
    assert deck["unexpected_count"] == 2 and sorted(deck["examples"]) == [2, 3]
    sqft = by_key[("expect_column_values_to_be_in_type_list", "FLOOR_AREA")]
    assert "1 non-numeric value(s), e.g. 'n/a sq ft'" in sqft["detail"]
    lot = by_key[("expect_column_values_to_not_be_null", "GLAZING_RATIO")]
    assert lot["error"] == "column 'GLAZING_RATIO' is missing"


def test_year_bound_follows_the_validation_date(clean):
    """INSTALL_YEAR's upper bound is `$PARAMETER: current_year`, supplied at run time."""
    suite = load_suite(SUITE_FILE)
    df = clean.copy()
    df.loc[0, "INSTALL_YEAR"] = 2030
    late = run_suite(df, suite, validate.suite_parameters(date(2031, 1, 1)))
    early = run_suite(df, suite, validate.suite_parameters(date(2029, 1, 1)))
    assert late["success"] and not early["success"]


def test_suite_is_stored_without_ids_and_matches_the_config():
    """Ids churn on every save; the suite's columns must be the config's schema."""
    text = SUITE_FILE.read_text()
    assert not re.search(r'"id"\s*:', text)
    suite = json.loads(text)
    (columns,) = [
        e["kwargs"]["column_list"]
        for e in suite["expectations"]
        if e["type"] == "expect_table_columns_to_match_ordered_list"
    ]
    assert columns == CFG.columns
    assert all(e.get("notes") for e in suite["expectations"])  # each says what it guards
    assert not any("mostly" in e["kwargs"] for e in suite["expectations"])


def test_no_code_hard_codes_the_data_set():
    """A fork with another data set writes a suite and config, and changes no code."""
    code = [
        REPO_ROOT / "model_build" / "steps" / "validate.py",
        *sorted((REPO_ROOT / "stepkit").glob("*.py")),
        REPO_ROOT / "mlops" / "core" / "drift.py",
        REPO_ROOT / "mlops" / "cli" / "data.py",
    ]
    for path in code:
        text = path.read_text()
        assert not [c for c in CFG.columns if c in text], path
