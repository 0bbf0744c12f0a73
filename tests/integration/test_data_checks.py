"""Data checks in the local pipeline: bad data stops at validate; drift uses the registered baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mlops.cli import run
from mlops.local.registry import LocalRegistry

GROUP = "energy-costs"


def versions(home: Path) -> list[int]:
    return [v.version for v in LocalRegistry(home, GROUP).list()]


def latest_run(home: Path) -> Path:
    return sorted((home / "runs").iterdir())[-1]


def test_corrupted_data_stops_at_validate_and_registers_nothing(
    registered_home, data_csv, tmp_path, capsys
):
    home, _ = registered_home
    bad = tmp_path / "bad.csv"
    df = pd.read_csv(data_csv)
    df.loc[10, "ANNUAL_COST"] = -60901
    df.loc[3:19, "FLOOR_AREA"] = None  # 17 bad rows: above the quarantine share (0.1 %)
    df.to_csv(bad, index=False)

    assert run(["pipeline", "run", "--data", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1, err  # one line
    assert err.startswith(
        "error: step 'validate' failed (exit 1): validation failed: 2 of 31 expectations: "
        "expect_column_values_to_not_be_null(FLOOR_AREA) 17 unexpected"
    )
    assert "17 rows fail row-level checks: 0.17 % is above data.max_quarantined_pct 0.1 %" in err
    rows = len(df)
    assert (
        f"expect_column_values_to_be_between(ANNUAL_COST) 1 unexpected ({100 / rows:.3g}%) e.g. [-60901]"
        in err
    )
    assert "preprocess" not in out.split("[1/4] validate")[1]  # nothing ran after validate
    assert versions(home) == [1]
    run_dir = latest_run(home)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"
    assert not (run_dir / "preprocess").exists() and not (run_dir / "train").exists()
    report = json.loads((run_dir / "validate" / "report" / "validation.json").read_text())
    assert [(f["expectation"], f["column"]) for f in report["failures"]] == [
        ("expect_column_values_to_not_be_null", "FLOOR_AREA"),
        ("expect_column_values_to_be_between", "ANNUAL_COST"),
    ]


def test_unusable_data_stops_at_validate(home, data_csv, tmp_path, capsys):
    ragged = tmp_path / "ragged.csv"
    lines = data_csv.read_text().splitlines()
    lines[7] += ",1"
    ragged.write_text("\n".join(lines) + "\n")
    assert run(["pipeline", "run", "--data", str(ragged)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (
        "step 'validate' failed (exit 2): unusable input: ragged.csv: ragged rows: line 8 has 10 fields"
        in err
    )
    assert versions(home) == []
    assert not (latest_run(home) / "preprocess").exists()


def test_drift_defaults_to_the_registered_baseline(registered_home, data_csv, tmp_path, capsys):
    """The training baseline travels with the version: drift needs no --baseline."""
    home, _ = registered_home
    argv = ["data", "drift", str(data_csv), "--report-dir", str(tmp_path)]
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "baseline: model version 1 (latest registered)" in out
    assert "no drift" in out  # the very data version 1 was trained on
    assert run(["models", "approve", "1"]) == 0
    assert run(argv) == 0
    assert "baseline: model version 1 (champion)" in capsys.readouterr().out
    saved = json.loads((tmp_path / "drift.json").read_text())
    assert saved["baseline"] == LocalRegistry(home, GROUP).describe(1).baseline_uri
    assert not saved["drifted"] and len(saved["features"]) == 8
