"""A data set validated in parts (chunks of a large file, or shards) merges into the result
of the whole: the same verdict per expectation, the same counts, row count, mean and
standard deviation; validate's streamed path reports what its in-memory path reports."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from fixture_project.generate import generate_buildings
from validate import suite_parameters

from mlops.core.config import load_config
from stepkit.expectations import load_suite, run_suite_with_counts
from stepkit.validation_merge import Moments, merge_results, part_result


def damaged(frame: pd.DataFrame) -> pd.DataFrame:
    """Faults spread over the file: a gap, values out of range, a level not in the set."""
    bad = frame.copy()
    bad["FLOOR_AREA"] = bad["FLOOR_AREA"].astype(object)
    bad.loc[100, "FLOOR_AREA"] = np.nan
    bad.loc[[1500, 2900], "INSTALL_YEAR"] = 1700
    bad.loc[2200, "HAS_SOLAR"] = 7
    return bad


def test_three_parts_merge_into_the_whole_files_result(tmp_path):
    """Expectations that pass and that fail (damaged rows in every part) merge alike."""
    suite = load_suite(load_config().suite_file)
    parameters = suite_parameters(date.today())
    path = tmp_path / "data.csv"
    damaged(generate_buildings(3000, seed=8)).to_csv(path, index=False)
    whole_frame = pd.read_csv(path)
    whole = run_suite_with_counts(whole_frame, suite, parameters)
    parts = [
        part_result(run_suite_with_counts(chunk, suite, parameters), chunk, suite)
        for chunk in pd.read_csv(path, chunksize=1000)  # typed part by part, as streamed
    ]
    merged = merge_results(parts, parameters)
    assert merged["success"] == whole["success"]
    for got, want in zip(merged["results"], whole["results"], strict=True):
        kind = want["expectation_config"]["type"]
        assert got["success"] == want["success"], kind
        observed = want["result"].get("observed_value")
        if isinstance(observed, float):
            assert got["result"]["observed_value"] == pytest.approx(observed, rel=1e-9), kind
        elif observed is not None:
            assert got["result"]["observed_value"] == observed, kind
        for key in ("element_count", "unexpected_count", "missing_count"):
            if key in want["result"]:
                assert got["result"][key] == want["result"][key], (kind, key)
    failed = sum(not r["success"] for r in merged["results"])
    assert 3 <= failed < len(merged["results"])


def test_moments_merge_exactly():
    values = pd.Series(np.random.default_rng(1).normal(5.0, 2.0, 999))
    merged = Moments.of(values[:10]) + Moments.of(values[10:500]) + Moments.of(values[500:])
    assert merged.count == 999
    assert merged.mean == pytest.approx(values.mean(), rel=1e-12)
    assert merged.stdev == pytest.approx(values.std(), rel=1e-12)


def test_a_streamed_input_gets_the_in_memory_report(tmp_path):
    """validate's chunked path (inputs above --stream-above-mb) reports what the in-memory
    path reports: verdict, rows, and each failed expectation with its finding."""
    from validate import validate_input, validate_stream

    suite_file = load_config().suite_file
    path = tmp_path / "data.csv"
    damaged(generate_buildings(3000, seed=8)).to_csv(path, index=False)
    today = date.today()
    streamed = validate_stream(path, suite_file, 100, today, chunk_rows=1000)
    in_memory = validate_input(path, suite_file, 100, today)
    for key in ("success", "rows", "evaluated", "failed", "summary"):
        assert streamed[key] == in_memory[key], key
    assert [f["expectation"] for f in streamed["failures"]] == [
        f["expectation"] for f in in_memory["failures"]
    ]
