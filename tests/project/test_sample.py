"""The project's suite on its committed sample: the sample passes, and for every
expectation a corruption derived from the expectation itself is caught by it (a null, an
emptied column where a share of empty values is allowed, a value out of range or out of
its set, a wrong type, a missing or an extra column, too few rows, a shifted mean, a
constant column)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
import pytest
import validate

from mlops.core.config import DEFAULT_CONFIG, load_config

TODAY = date.today()
Corruption = Callable[[pd.DataFrame], pd.DataFrame]


def bound(value, params: dict):
    """A bound of the suite, its `$PARAMETER` resolved the way the validate step does."""
    if isinstance(value, dict) and "$PARAMETER" in value:
        return params[value["$PARAMETER"]]
    return value


def put(column: str, value) -> Corruption:
    """The first row's `column` set to `value` (the column turns object for a string)."""

    def corrupt(df: pd.DataFrame) -> pd.DataFrame:
        df = df.astype({column: object}) if isinstance(value, str) else df.copy()
        df.loc[df.index[0], column] = value
        return df

    return corrupt


def outside(low, high) -> int:
    """A whole number (it fits integer columns too) outside [low, high]: below low when
    there is one, else above high."""
    span = abs((high if high is not None else 0) - (low if low is not None else 0)) or 1.0
    return math.floor(low - 0.5 * span - 1) if low is not None else math.ceil(high + 0.5 * span + 1)


def corruptions(expectation: dict, sample: pd.DataFrame, params: dict) -> dict[str, Corruption]:
    """Named corruptions the expectation must catch; none for a type this does not know."""
    kind, kw = expectation["type"], expectation["kwargs"]
    column = kw.get("column")
    low, high = bound(kw.get("min_value"), params), bound(kw.get("max_value"), params)
    if kind == "expect_column_values_to_not_be_null" and kw.get("mostly") is not None:
        return {"an empty column": lambda df: df.assign(**{column: np.nan})}  # under `mostly`
    if kind == "expect_column_values_to_not_be_null":
        return {"a null": put(column, np.nan)}
    if kind == "expect_column_values_to_be_in_type_list":
        numeric = any(t.startswith(("int", "float")) for t in kw["type_list"])
        return {"a wrong type": put(column, "not a number" if numeric else 12345)}
    if kind == "expect_column_values_to_be_between":
        return {"an out-of-range value": put(column, outside(low, high))}
    if kind == "expect_column_values_to_be_in_set":
        values = kw["value_set"]
        numeric = all(isinstance(v, int | float) for v in values)
        stranger = max(values) + 1 if numeric else "__never_seen__"
        return {"a value out of its set": put(column, stranger)}
    if kind == "expect_table_columns_to_match_ordered_list":
        listed = kw["column_list"]
        return {
            "a missing column": lambda df: df.drop(columns=listed[-1]),
            "an extra column": lambda df: df.assign(UNEXPECTED_COLUMN=1),
            "columns out of order": lambda df: df[listed[::-1]],
        }
    if kind == "expect_table_row_count_to_be_between":
        cases = {}
        if low and low > 1:
            cases["too few rows"] = lambda df: df.head(int(low) - 1)
        return cases
    if kind == "expect_column_mean_to_be_between":
        return {"a shifted mean": lambda df: df.assign(**{column: outside(low, high)})}
    if kind == "expect_column_stdev_to_be_between" and low:
        return {"a constant column": lambda df: df.assign(**{column: df[column].iloc[0]})}
    return {}


def cases() -> list:
    cfg = load_config(DEFAULT_CONFIG)
    suite = json.loads(cfg.suite_file.read_text())
    sample = pd.read_csv(cfg.sample_file)
    params = validate.suite_parameters(TODAY)
    found = []
    for expectation in suite["expectations"]:
        for name, corrupt in corruptions(expectation, sample, params).items():
            column = expectation["kwargs"].get("column")
            label = f"{expectation['type']}[{column or 'table'}]: {name}"
            found.append(pytest.param(expectation, corrupt, id=label))
    return found


def check(project, df: pd.DataFrame) -> dict:
    suite = json.loads(project.suite_file.read_text())
    return validate.validate_data(df, suite, ["sample"], TODAY)


def test_the_sample_passes_the_suite(project, sample):
    report = check(project, sample)
    assert report["success"], report["summary"]
    assert list(sample.columns) == project.columns


def test_every_expectation_has_a_corruption_and_every_column_is_covered(project):
    covered = {p.values[0]["kwargs"].get("column") for p in cases()}
    assert set(project.columns) <= covered


@pytest.mark.parametrize(("expectation", "corrupt"), cases())
def test_the_suite_catches_a_corruption_derived_from_it(project, sample, expectation, corrupt):
    """The expectation alone fails on its corruption (the whole suite would too; running one
    expectation keeps the fork's tests quick)."""
    suite = json.loads(project.suite_file.read_text())
    alone = {**suite, "expectations": [expectation]}
    report = validate.validate_data(corrupt(sample), alone, ["sample"], TODAY)
    assert not report["success"]
    caught = {(f["expectation"], f["column"]) for f in report["failures"]}
    assert (expectation["type"], expectation["kwargs"].get("column")) in caught, caught


def test_the_golden_set_has_the_columns_passes_the_suite_and_is_not_in_the_sample(project, sample):
    """data.golden (optional): reviewed rows of the fork's own data, held out of the sample."""
    if project.golden_file is None:
        pytest.skip("no data.golden in model_build/config.yaml")
    golden = pd.read_csv(project.golden_file)
    assert list(golden.columns) == project.columns
    report = check(project, golden)
    assert report["success"], report["summary"]
    assert golden.merge(sample, how="inner").empty, "golden rows also in the training sample"
