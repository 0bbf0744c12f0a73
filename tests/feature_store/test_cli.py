"""`mlops features ...` end to end on the local backend: exit codes, one-line errors."""

from __future__ import annotations

import json

import pytest
import yaml

from mlops.cli import run

from .conftest import records


@pytest.fixture
def cli(fs_config, home, capsys):
    def call(*argv: str) -> tuple[int, str, str]:
        code = run(["features", *argv, "--config", str(fs_config)])
        out, err = capsys.readouterr()
        return code, out, err

    return call


def test_ingest_snapshot_get(cli, write_csv, tmp_path, home):
    assert (
        cli("ingest", "--data", str(write_csv(records(range(20), "2026-01-01"), "a.csv")))[0] == 0
    )
    v2 = records(range(5), "2026-02-01", seed=9)
    code, out, _ = cli("ingest", "--data", str(write_csv(v2, "b.csv")))
    assert code == 0 and "0 new ids, 5 new versions" in out
    code, out, _ = cli("snapshot", "--as-of", "2026-01-15", "--out", str(tmp_path / "s.csv"))
    assert code == 0 and "wrote 20 records as of 2026-01-15T00:00:00Z" in out
    code, out, _ = cli("get", "c3")
    assert code == 0
    assert json.loads(out)["AGE"] == int(v2.loc[3, "AGE"])
    assert (home / "feature_store" / "fs-fixture" / "online.db").is_file()


def test_suite_failure_exits_1_and_writes_nothing(cli, write_csv, home):
    bad = records(range(5), "2026-01-01").assign(AGE=[30, 31, 500, 33, 34])  # AGE <= 120
    code, out, err = cli("ingest", "--data", str(write_csv(bad, "bad.csv")))
    assert code == 1 and "nothing was ingested" in err and "AGE" in out
    assert not (home / "feature_store").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["snapshot", "--out", "x.csv"], "holds no records yet"),
        (["snapshot", "--as-of", "later", "--out", "x.csv"], "not an ISO-8601 time"),
        (["get", "c1"], "no record 'c1'"),
    ],
)
def test_usage_errors_exit_2_in_one_line(cli, argv, message):
    code, _, err = cli(*argv)
    assert code == 2 and message in err and err.count("\n") == 1


def test_missing_event_time_column_exits_2(cli, write_csv, home):
    df = records(range(5), "2026-01-01").drop(columns=["UPDATED_AT"])
    code, _, err = cli("ingest", "--data", str(write_csv(df, "no-time.csv")))
    assert code == 2 and "UPDATED_AT" in err and err.count("\n") == 1
    assert not (home / "feature_store").exists()


def test_unconfigured_project_refuses_naming_the_keys(fs_config, home, capsys, write_csv):
    raw = yaml.safe_load(fs_config.read_text())
    del raw["feature_store"]
    fs_config.write_text(yaml.safe_dump(raw))
    data = write_csv(records(range(5), "2026-01-01"), "a.csv")
    code = run(["features", "ingest", "--data", str(data), "--config", str(fs_config)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        "error: no feature store configured: set feature_store.record_id and "
        "feature_store.event_time in the config (the columns naming a record and the time "
        "its values were true)"
    )
