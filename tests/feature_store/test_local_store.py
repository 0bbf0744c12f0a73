"""The local feature store: versions, the point-in-time rule, atomic ingest, the online store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from mlops.core.config import load_config
from mlops.core.errors import UsageError
from mlops.core.feature_store import check_records, feature_group_spec
from mlops.local.feature_store import LocalFeatureStore

from .conftest import EVENT_TIME, RECORD_ID, SUITE, records

NOW = datetime(2026, 6, 1, tzinfo=UTC)
T1, T2 = "2026-01-10T08:00:00Z", "2026-03-05T17:30:00Z"


@pytest.fixture
def store(fs_config, tmp_path) -> LocalFeatureStore:
    return LocalFeatureStore(feature_group_spec(load_config(fs_config), SUITE), tmp_path / "home")


def ingest(store, df):
    return store.ingest(check_records(df, store.spec, NOW), progress=lambda _: None)


def snap(store, as_of: str, out: Path, **kw) -> pd.DataFrame:
    store.snapshot(datetime.fromisoformat(as_of), out, **kw)
    return pd.read_csv(out).set_index(RECORD_ID)


def test_snapshot_as_of_between_versions_returns_the_first_and_after_the_second(store, tmp_path):
    first, second = records(range(10), T1, seed=1), records(range(4), T2, seed=2)
    assert ingest(store, first).new_ids == 10
    result = ingest(store, second)
    assert (result.new_ids, result.versions_added) == (0, 4)

    between = snap(store, "2026-02-01T00:00:00+00:00", tmp_path / "between.csv")
    after = snap(store, "2026-03-05T17:30:00+00:00", tmp_path / "after.csv")  # at T2: included

    first, second = first.set_index(RECORD_ID), second.set_index(RECORD_ID)
    assert len(between) == len(after) == 10
    pd.testing.assert_frame_equal(
        between[["AGE", "SIZE", "SCORE"]], first[["AGE", "SIZE", "SCORE"]]
    )
    changed = second.index
    pd.testing.assert_frame_equal(
        after.loc[changed, ["AGE", "SIZE", "SCORE"]], second[["AGE", "SIZE", "SCORE"]]
    )
    unchanged = first.index.difference(changed)
    pd.testing.assert_frame_equal(
        after.loc[unchanged, ["AGE", "SIZE", "SCORE"]],
        first.loc[unchanged, ["AGE", "SIZE", "SCORE"]],
    )
    assert (second["AGE"] != first.loc[changed, "AGE"]).any()  # the versions really differ
    # History is kept: the first version is still there after the second arrived.
    assert snap(store, "2026-02-01T00:00:00+00:00", tmp_path / "again.csv").equals(between)


def test_online_store_holds_the_latest_version_even_when_an_older_one_arrives_late(store):
    ingest(store, records(range(3), T2, seed=2))
    ingest(store, records(range(3), T1, seed=1))  # backfill of older history
    latest = records(range(3), T2, seed=2)
    got = store.get("c1")
    assert got[EVENT_TIME] == "2026-03-05T17:30:00Z"
    assert got["AGE"] == int(latest.loc[1, "AGE"]) and got["SIZE"] == latest.loc[1, "SIZE"]
    assert store.get("nobody") is None


def test_training_snapshot_is_the_config_columns_and_hash_is_stable(store, tmp_path):
    ingest(store, records(range(5), T1))
    a = store.snapshot(NOW, tmp_path / "a.csv", training=True)
    b = store.snapshot(NOW, tmp_path / "b.csv", training=True)
    assert pd.read_csv(a.path).columns.tolist() == ["AGE", "SIZE", "SCORE"]
    assert a.rows == 5 and a.sha256 == b.sha256
    # the recorded query is the one that ran: versions not superseded up to as-of
    assert (
        "NOT EXISTS" in a.query and "$FEATURE_STORE/offline/ingest=*/superseded.parquet" in a.query
    )
    parquet = store.snapshot(NOW, tmp_path / "a.parquet", training=True)
    assert pd.read_parquet(parquet.path).shape == (5, 3)


def test_as_of_before_any_record_is_refused(store, tmp_path):
    with pytest.raises(UsageError, match="holds no records yet"):
        store.snapshot(NOW, tmp_path / "s.csv")
    ingest(store, records(range(2), T1))
    with pytest.raises(UsageError, match="before the first record"):
        store.snapshot(datetime(2026, 1, 1, tzinfo=UTC), tmp_path / "s.csv")
    assert not (tmp_path / "s.csv").exists()


def _state(store) -> tuple:
    files = sorted(p.relative_to(store.root) for p in store.root.rglob("*") if p.is_file())
    return files, store.online_db.read_bytes()


def test_reingesting_a_stored_version_writes_nothing(store):
    ingest(store, records(range(3), T1))
    before = _state(store)
    mixed = pd.concat([records(range(3, 6), T2), records(range(1), T1)])  # c0@T1 is stored
    with pytest.raises(UsageError, match="'c0' at 2026-01-10T08:00:00Z is already in the store"):
        ingest(store, mixed)
    assert _state(store) == before


def test_a_failure_while_writing_leaves_no_partial_ingest(store, monkeypatch):
    ingest(store, records(range(3), T1))
    before = _state(store)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("mlops.local.feature_store.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        ingest(store, records(range(3), T2, seed=5))
    assert _state(store) == before  # no temp folder, online rows rolled back


def test_online_store_orders_sub_second_event_times_as_times(store):
    # Text order would put "...:00Z" after "...:00.500000Z"; the store must not.
    ingest(store, records(range(1), "2026-01-01T00:00:00.500Z", seed=1))
    ingest(store, records(range(1), "2026-01-01T00:00:00Z", seed=2))
    assert store.get("c0")[EVENT_TIME] == "2026-01-01T00:00:00.500000Z"
    assert store.get("c0")["AGE"] == int(records(range(1), "x", seed=1).loc[0, "AGE"])


def test_concurrent_ingests_of_the_same_versions_store_them_once(store, tmp_path):
    # The duplicate check and the write happen under one lock: of two writers racing
    # with the same (id, event time) pairs, exactly one lands.
    from concurrent.futures import ThreadPoolExecutor

    df = records(range(200), T1, seed=1)

    def attempt(_):
        try:
            ingest(store, df)
        except UsageError as exc:
            return str(exc)
        return "ok"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(attempt, range(4)))
    assert outcomes.count("ok") == 1
    assert all("already in the store" in o for o in outcomes if o != "ok")
    assert len(list(store.offline.glob("ingest=*"))) == 1
    assert len(snap(store, "2026-06-01T00:00:00+00:00", tmp_path / "s.csv")) == 200


KILLED_INGEST = """
import os, pickle, signal, sys
import mlops.local.feature_store as fs
spec, home, df, moment = pickle.load(open(sys.argv[1], "rb"))
real_replace = os.replace

def replace_then_die(src, dst):
    if moment == "before-rename":
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
    os.kill(os.getpid(), signal.SIGKILL)  # the folder is in place; the online commit is not

fs.os.replace = replace_then_die
fs.LocalFeatureStore(spec, home).ingest(df, progress=lambda _: None)
"""


@pytest.mark.parametrize("moment", ["before-rename", "after-rename"])
def test_an_ingest_killed_at_the_rename_leaves_the_stores_together(store, tmp_path, moment):
    import pickle
    import signal
    import subprocess
    import sys

    ingest(store, records(range(3), T1))
    batch = check_records(records(range(2, 6), T2, seed=7), store.spec, NOW)
    job = tmp_path / "job.pkl"
    job.write_bytes(pickle.dumps((store.spec, store.root.parent.parent, batch, moment)))
    done = subprocess.run([sys.executable, "-c", KILLED_INGEST, str(job)], check=False)
    assert done.returncode == -signal.SIGKILL
    if moment == "before-rename":  # nothing landed: the same file goes in again
        assert store.get("c5") is None
        ingest(store, batch)
    assert store.get("c5") is not None and store.get("c2")[EVENT_TIME] == T2
    latest = snap(store, "2026-06-01T00:00:00+00:00", tmp_path / "s.csv")
    assert sorted(latest.index) == [f"c{i}" for i in range(6)]
    assert {r: store.get(r)[EVENT_TIME] for r in latest.index} == {
        r: pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ") for r, t in latest[EVENT_TIME].items()
    }
    assert not list(store.offline.glob(".tmp-*"))
    with pytest.raises(UsageError, match="already in the store"):
        ingest(store, batch)  # whole in both stores: a second copy is refused
