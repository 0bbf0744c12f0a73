"""The snapshot's point-in-time rule as the store runs it (an anti-join against each ingest's
superseded-version pairs) agrees with its definition (rank each id's versions up to as-of,
keep the latest) for any history: versions arriving in any order, several per ingest, late
arrivals of older versions, and any as-of."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.core.config import load_config
from mlops.core.feature_store import check_records, feature_group_spec
from mlops.local.feature_store import LocalFeatureStore, point_in_time_sql

from .conftest import EVENT_TIME, RECORD_ID, SUITE, records

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DAY0 = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 6  # a few event days: versions of one id collide in time often enough to matter

# A history: up to 4 ingests, each a set of distinct (record id, event day) versions.
version = st.tuples(st.integers(0, 4), st.integers(0, DAYS - 1))
history = st.lists(st.sets(version, min_size=1, max_size=8), min_size=1, max_size=4)


def batch(versions, seed: int) -> pd.DataFrame:
    rows = [
        records([rid], (DAY0 + timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%SZ"), seed + i)
        for i, (rid, day) in enumerate(sorted(versions))
    ]
    return pd.concat(rows, ignore_index=True)


def by_definition(store: LocalFeatureStore, as_of: datetime) -> pd.DataFrame:
    sql = point_in_time_sql(store.spec, store._source(), as_of, store.spec.columns)
    return store._duckdb().sql(sql).df()


def as_stored(store: LocalFeatureStore, as_of: datetime, out: Path) -> pd.DataFrame:
    store.snapshot(as_of, out)
    frame = pd.read_csv(out, dtype={RECORD_ID: str})
    frame[EVENT_TIME] = pd.to_datetime(frame[EVENT_TIME]).dt.tz_localize(None)
    return frame


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=history)
def test_snapshot_rule_agrees_with_its_definition(fs_config, history):
    spec = feature_group_spec(load_config(fs_config), SUITE)
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalFeatureStore(spec, Path(tmp) / "home")
        seen: set = set()
        for n, versions in enumerate(history):
            fresh = versions - seen  # a stored (id, time) is refused: only new versions
            if not fresh:
                continue
            store.ingest(check_records(batch(fresh, 100 * n), spec, NOW), progress=lambda _: None)
            seen |= fresh
        assert store._superseded_source() is not None
        first_day = min(day for _, day in seen)
        for day in range(first_day, DAYS + 1):
            as_of = DAY0 + timedelta(days=day, hours=12)
            got = as_stored(store, as_of, Path(tmp) / f"as-of-{day}.csv")
            expected = by_definition(store, as_of)
            assert len(got) == len({rid for rid, d in seen if d <= day + 0.5})
            pd.testing.assert_frame_equal(
                got.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False
            )


def test_a_store_written_before_the_superseded_files_ranks_versions(fs_config, tmp_path):
    """An ingest folder without superseded.parquet (an earlier release wrote it): the
    snapshot falls back to ranking versions, with the same answer."""
    store = LocalFeatureStore(feature_group_spec(load_config(fs_config), SUITE), tmp_path / "h")
    for n, versions in enumerate([{(0, 0), (1, 0), (2, 0)}, {(1, 2), (2, 1)}, {(2, 3)}]):
        store.ingest(check_records(batch(versions, 10 * n), store.spec, NOW), lambda _: None)
    as_of = DAY0 + timedelta(days=2, hours=1)
    fast = as_stored(store, as_of, tmp_path / "fast.csv")
    (next(store.offline.glob("ingest=*")) / "superseded.parquet").unlink()
    old = store.snapshot(as_of, tmp_path / "old.csv")
    assert "ROW_NUMBER() OVER" in old.query
    pd.testing.assert_frame_equal(as_stored(store, as_of, tmp_path / "old.csv"), fast)
    assert fast.set_index(RECORD_ID)[EVENT_TIME].dt.day.to_dict() == {"c0": 1, "c1": 3, "c2": 2}
