"""`mlops pipeline run --from-feature-store`: trains on a snapshot and records it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mlops.cli import run

from .conftest import records


@pytest.mark.slow
def test_pipeline_trains_on_a_snapshot_and_records_it(fs_config, home, write_csv, tmp_path, capsys):
    cfg = ["--config", str(fs_config)]
    first = write_csv(records(range(1200), "2026-01-01T00:00:00Z", seed=1), "v1.csv")
    later = write_csv(records(range(600), "2026-03-01T00:00:00Z", seed=2), "v2.csv")
    assert run(["features", "ingest", "--data", str(first), *cfg]) == 0
    assert run(["features", "ingest", "--data", str(later), *cfg]) == 0
    capsys.readouterr()

    as_of = "2026-02-01T00:00:00Z"
    code = run(["pipeline", "run", "--from-feature-store", "--as-of", as_of, *cfg])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "feature snapshot: 1200 records of 'fs-fixture' as of 2026-02-01T00:00:00Z" in out

    assert run(["models", "describe", "1", "--json", *cfg]) == 0
    lineage = json.loads(capsys.readouterr().out)["lineage"]
    snap = lineage["feature_snapshot"]
    assert snap["as_of"] == as_of and snap["rows"] == 1200 and snap["backend"] == "local"
    assert "superseded.parquet" in snap["query"] and "2026-02-01 00:00:00" in snap["query"]
    # The hash is the content the model learned from: the snapshot file the run read.
    assert lineage["data_sha256"] == snap["sha256"]
    trained_on = pd.read_csv(snap["path"])
    expected = records(range(1200), "x", seed=1)[["AGE", "SIZE", "SCORE"]]
    pd.testing.assert_frame_equal(
        trained_on.sort_values(["AGE", "SIZE"]).reset_index(drop=True),
        expected.sort_values(["AGE", "SIZE"]).reset_index(drop=True),
    )

    md_path = tmp_path / "pr.md"
    reports = tmp_path / "reports"
    assert run(["report", "pr", "--out", str(md_path), "--report-dir", str(reports), *cfg]) == 0
    md = md_path.read_text()
    assert f"| feature snapshot | `fs-fixture` as of {as_of}, 1200 rows, sha256 `" in md


def test_as_of_without_the_store_is_refused(fs_config, home, capsys):
    code = run(["pipeline", "run", "--as-of", "2026-01-01", "--config", str(fs_config)])
    assert code == 2 and "--as-of needs --from-feature-store" in capsys.readouterr().err


def test_data_and_the_store_exclude_each_other(fs_config, home, capsys, tmp_path):
    argv = ["pipeline", "run", "--from-feature-store", "--data", str(tmp_path / "x.csv")]
    assert run([*argv, "--config", str(fs_config)]) == 2
    assert "--data and --from-feature-store exclude each other" in capsys.readouterr().err
