"""`make demo FEATURE_STORE=1` on the fixture project: the store's story, then the usual one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fixture_project.generate import COLUMNS, generate_buildings
from integration._serving import deploy_config_copy

from mlops.core.config import load_config
from mlops.core.datagen import feature_store_batches
from mlops.local.endpoints import stop_all_servers
from mlops.local.registry import LocalRegistry
from mlops.local.server import WATCH_PID_ENV

ROWS = 2000
RECORD_ID, EVENT_TIME = "BUILDING_ID", "MEASURED_AT"


@pytest.fixture
def fs_fixture_config(tmp_path):
    """The fixture project's config with a feature store (paths made absolute)."""
    source = os.environ["MLOPS_CONFIG"]
    cfg = load_config(source)
    raw = yaml.safe_load(Path(source).read_text())
    raw["data"]["expectation_suite"] = str(cfg.suite_file)
    raw["data"]["golden"] = str(cfg.golden_file)
    raw["data"].pop("sample")
    raw["feature_store"] = {"record_id": RECORD_ID, "event_time": EVENT_TIME}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_batches_hold_two_versions_of_some_records():
    df = generate_buildings(200, seed=1)
    first, second = feature_store_batches(df, "ID", "AT", ("2026-01-01", "2026-02-01"), 0.25)
    assert list(first.columns) == ["ID", "AT", *COLUMNS] and len(first) == 200
    assert first["ID"].is_unique and set(first["AT"]) == {"2026-01-01"}
    assert len(second) == 50 and set(second["AT"]) == {"2026-02-01"}
    assert set(second["ID"]) <= set(first["ID"]) and second["ID"].is_unique
    # Both versions are rows of the same data: they pass the same suite.
    for batch in (first, second):
        merged = batch[COLUMNS].merge(df.drop_duplicates(), how="left", indicator=True)
        assert (merged["_merge"] == "both").all()
    # The earlier version of an updated record differs from its later one.
    earlier = first.set_index("ID").loc[second["ID"], COLUMNS]
    assert (earlier.to_numpy() != second.set_index("ID")[COLUMNS].to_numpy()).any(
        axis=1
    ).mean() > 0.9


def test_the_latest_version_of_every_record_is_the_data_set():
    """A snapshot after both batches is the data the batches came from, row for row: the
    demo's pipeline trained on it learns what a run on the data file learns, so it passes a
    champion trained on that file (`make demo` then `make demo FEATURE_STORE=1`; with later
    versions drawn from other rows the golden MSE came out 7.7 % over the champion's and
    the gate refused the run)."""
    df = generate_buildings(300, seed=2)
    first, second = feature_store_batches(df, "ID", "AT", ("2026-01-01", "2026-02-01"), 0.25)
    latest = pd.concat([first, second]).sort_values("AT").groupby("ID").tail(1).sort_values("ID")
    pd.testing.assert_frame_equal(latest[COLUMNS].reset_index(drop=True), df[COLUMNS])


@pytest.mark.slow
def test_demo_with_the_feature_store(tmp_path, monkeypatch, fs_fixture_config):
    home = tmp_path / "home"
    monkeypatch.setenv("MLOPS_HOME", str(home))
    monkeypatch.setenv("MLOPS_DEPLOY_DIR", str(deploy_config_copy(tmp_path / "model_deploy")))
    monkeypatch.setenv(WATCH_PID_ENV, str(os.getpid()))
    data = tmp_path / "buildings.csv"
    generate_buildings(ROWS, seed=7).to_csv(data, index=False)
    argv = ["--data", str(data), "--config", str(fs_fixture_config), "--feature-store"]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mlops.cli.demo", *argv],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        stop_all_servers(home)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]

    updated = ROWS // 4
    assert f"ingested {ROWS} records into feature group 'energy-costs' ({ROWS} new ids" in out
    assert f"ingested {updated} records" in out and f"{updated} new versions of stored ids" in out
    assert out.count(f"  between the batches: {ROWS} records") == 1
    assert out.count(f"  after both: {ROWS} records") == 1

    # The record shown has its first version in the snapshot between the batches and its
    # second after them: the rows printed are the batch files' rows.
    record = re.search(r"record (\S+) in each snapshot", out).group(1)
    first, second = (pd.read_csv(home / "demo" / f"records-{n}.csv") for n in (1, 2))
    v1 = first.loc[first[RECORD_ID] == record].iloc[0]
    v2 = second.loc[second[RECORD_ID] == record].iloc[0]
    for snapshot, version in (("between", v1), ("now", v2)):
        snap = pd.read_csv(home / "demo" / f"snapshot-{snapshot}.csv")
        row = snap.loc[snap[RECORD_ID] == record].iloc[0]
        assert row[COLUMNS].tolist() == version[COLUMNS].tolist()

    assert "$ mlops pipeline run --from-feature-store" in out
    version = LocalRegistry(home, "energy-costs").describe(1)
    snap = version.lineage["feature_snapshot"]
    assert f"lineage: feature snapshot as of {snap['as_of']}, {ROWS} rows, sha256 " in out
    assert snap["sha256"] == version.lineage["data_sha256"] and snap["sha256"] in out
    # The id and event time never become features: the model's manifest lists the config's.
    with tarfile.open(version.model_uri) as tar:
        manifest = json.load(tar.extractfile(tar.getmember("manifest.json")))
    assert manifest["features"] == COLUMNS[:-1]
    assert list(pd.read_csv(snap["path"]).columns) == COLUMNS
    for expected in ("$ mlops promote", "$ mlops endpoint test --stage prod", "demo finished"):
        assert expected in out
