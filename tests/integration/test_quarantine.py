"""One bad row in 10,000 is quarantined, not a failed retrain; more than the share still fails.

The bad value is derived from the fork's own suite (the first bounded column-value
expectation), so nothing here assumes the example's columns.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from mlops.core.config import load_config
from mlops.local.runner import output_dir, run_pipeline
from stepkit.splits import read_split

BAD_ROW = 17


def bounded_column(cfg) -> tuple[str, float]:
    """A column with a lower bound in the suite, and a value below it."""
    suite = json.loads(cfg.suite_file.read_text())
    for expectation in suite["expectations"]:
        kwargs = expectation["kwargs"]
        if expectation["type"] == "expect_column_values_to_be_between" and isinstance(
            kwargs.get("min_value"), int | float
        ):
            low = kwargs["min_value"]
            return kwargs["column"], low - abs(low) - 60901
    pytest.skip("the suite bounds no column from below")


def corrupt(source: Path, target: Path, rows: list[int], column: str, value: float) -> Path:
    df = pd.read_csv(source)
    df[column] = df[column].astype(float)  # keep the column's type check about types, not NaN
    df.loc[rows, column] = value
    if pd.api.types.is_integer_dtype(pd.read_csv(source)[column]):
        df[column] = df[column].astype("int64")
    df.to_csv(target, index=False)
    return target


def test_one_bad_row_is_quarantined_and_the_model_trains(data_csv, tmp_path):
    cfg = load_config()
    column, value = bounded_column(cfg)
    data = corrupt(data_csv, tmp_path / "one-bad-row.csv", [BAD_ROW], column, value)
    lines: list[str] = []
    result = run_pipeline(cfg, data, tmp_path / "home", progress=lines.append)

    assert result.version.lineage["quarantined_rows"] == 1
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["status"] == "registered" and run["quarantine"]["rows"] == 1
    logged = [line for line in lines if "quarantined 1 of" in line]
    assert logged and column in logged[0] and "quarantine.csv" in logged[0]

    quarantined = pd.read_csv(
        output_dir(result.run_dir, "validate", "quarantine") / "quarantine.csv"
    )
    assert quarantined["row"].tolist() == [BAD_ROW]
    assert column in quarantined["quarantine_reason"][0]
    assert quarantined[column][0] == value

    total = len(pd.read_csv(data))
    split_rows = sum(
        len(read_split(output_dir(result.run_dir, "preprocess", name)))
        for name in ("train", "validation", "test")
    )
    assert split_rows == total - 1
    md = (output_dir(result.run_dir, "validate", "report") / "validation.md").read_text()
    assert "1 of" in md and "rows quarantined" in md


def test_more_bad_rows_than_the_share_fail_as_before(data_csv, tmp_path):
    import validate

    cfg = load_config()
    column, value = bounded_column(cfg)
    total = len(pd.read_csv(data_csv))
    too_many = int(total * cfg.data.max_quarantined_pct / 100) + 2
    data = corrupt(data_csv, tmp_path / "many.csv", list(range(too_many)), column, value)
    report, reasons, _ = validate.validate_with_quarantine(
        data,
        cfg.suite_file,
        cfg.data.max_file_mb,
        date.today(),
        cfg.data.max_quarantined_pct,
    )
    assert not report["success"] and reasons == {}
    assert "above data.max_quarantined_pct" in report["summary"]
    assert validate.exit_code(report) == 1
