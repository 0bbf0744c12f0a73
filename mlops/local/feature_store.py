"""The local feature store: Parquet + DuckDB offline, SQLite online, under $MLOPS_HOME.

Layout, per feature group:

    feature_store/<group>/offline/ingest=<time>-<id>/event_date=<YYYY-MM-DD>/*.parquet
    feature_store/<group>/offline/ingest=<time>-<id>/superseded.parquet
    feature_store/<group>/online.db       latest version per record id
    feature_store/<group>/.lock           one writer at a time

Each ingest writes its Parquet files (partitioned by event date, so an as-of query reads
only the partitions up to that day) into a hidden temporary folder and renames the folder
into place: a reader sees all of an ingest or none of it. The online upsert runs in one
SQLite transaction committed only after that rename, and undone if the rename fails;
that transaction also records the ingest's folder name (`ingests` table). A process killed
between the rename and the commit leaves an offline folder the online store does not list:
the next ingest or `get` rolls it forward (its latest versions into the online store, from
its own Parquet files), so the two stores never stay apart. A killed ingest's hidden
temporary folder is removed by the next ingest.
Nothing is overwritten: a later event time for an id is one more row in the offline store.

Each ingest also records which versions a later one supersedes (`superseded.parquet`:
record id, the older event time, the newer one), for the ids it touches. A snapshot is then
a filter, "event time <= as-of and not superseded by a version at or before as-of", an
anti-join against that small table, instead of ranking every version of every id: at 1M
records the rule costs half as much (bench/feature_store.py). Any true (older, newer) pair
is a valid exclusion, so pairs written before a late-arriving version stay correct.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from mlops.core.errors import UsageError
from mlops.core.feature_store import (
    FeatureGroupSpec,
    IngestResult,
    Progress,
    Snapshot,
    check_as_of,
    format_time,
)

SQL_TYPES = {"Integral": "BIGINT", "Fractional": "DOUBLE", "String": "VARCHAR"}
PARTITION = "event_date"
SUPERSEDED = "superseded.parquet"
# Bounds DuckDB's memory (the 1M-record bench stays under 1 GB); times are naive UTC.
DUCKDB_SETTINGS = {"memory_limit": "512MB", "threads": 2}


def q(name: str) -> str:
    """A quoted SQL identifier (config column names may need it)."""
    return '"' + name.replace('"', '""') + '"'


def sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def point_in_time_sql(
    spec: FeatureGroupSpec, source: str, as_of: datetime, columns, superseded: str | None = None
) -> str:
    """For each record id, the latest version with event time <= as_of (DuckDB SQL).

    With `superseded` (the ingests' superseded-version pairs as a table expression): the
    versions up to as_of that no version up to as_of supersedes. Without it (a store written
    before those files existed): rank each id's versions by event time.
    """
    rid, et = q(spec.record_id), q(spec.event_time)
    cols = ", ".join(q(c) for c in columns)
    as_of_sql = f"TIMESTAMP {sql_text(as_of.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f'))}"
    up_to = f"{PARTITION} <= CAST({as_of_sql} AS DATE) AND {et} <= {as_of_sql}"
    if superseded is not None:
        return (
            f"SELECT {cols} FROM {source} AS v\n"
            f"WHERE {up_to}\n"
            f"  AND NOT EXISTS (SELECT 1 FROM {superseded} AS s WHERE s.record_id = v.{rid}\n"
            f"    AND s.older = v.{et} AND s.newer <= {as_of_sql})\n"
            f"ORDER BY {rid}"
        )
    return (
        f"SELECT {cols} FROM (\n"
        f"  SELECT *, ROW_NUMBER() OVER (PARTITION BY {rid} ORDER BY {et} DESC) AS _version\n"
        f"  FROM {source}\n"
        f"  WHERE {up_to}\n"
        f") WHERE _version = 1\nORDER BY {rid}"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class LocalFeatureStore:
    """`mlops.core.feature_store.FeatureStore` on this machine."""

    backend = "local"

    def __init__(self, spec: FeatureGroupSpec, home: Path):
        self.spec = spec
        self.root = home / "feature_store" / spec.name
        self.offline = self.root / "offline"
        self.online_db = self.root / "online.db"

    # --- plumbing -------------------------------------------------------------------

    def _duckdb(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(config={k: str(v) for k, v in DUCKDB_SETTINGS.items()})

    def _source(self) -> str:
        """The offline store as a DuckDB table expression (ingest folders are committed)."""
        glob = self.offline / "ingest=*" / f"{PARTITION}=*" / "*.parquet"
        return f"read_parquet({sql_text(str(glob))}, hive_partitioning = true)"

    def _superseded_source(self) -> str | None:
        """The superseded-version pairs of every ingest as a table expression; None when an
        ingest lacks its file (written by an earlier release): then snapshots rank versions."""
        ingests = list(self.offline.glob("ingest=*"))
        if not ingests or any(not (d / SUPERSEDED).is_file() for d in ingests):
            return None
        return f"read_parquet({sql_text(str(self.offline / 'ingest=*' / SUPERSEDED))})"

    def _has_data(self) -> bool:
        return self.offline.is_dir() and any(self.offline.glob("ingest=*"))

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _online(self) -> sqlite3.Connection:
        """The online store, with its `ingests` table; call under the lock. A store written
        before that table existed has every offline ingest recorded once, as it stands."""
        con = sqlite3.connect(self.online_db, timeout=30, isolation_level=None)
        con.execute(
            "CREATE TABLE IF NOT EXISTS records (record_id TEXT PRIMARY KEY, "
            "event_time TEXT NOT NULL, record TEXT NOT NULL)"
        )
        known = con.execute("SELECT 1 FROM sqlite_master WHERE name = 'ingests'").fetchone()
        if not known:
            con.execute("BEGIN IMMEDIATE")
            con.execute("CREATE TABLE ingests (name TEXT PRIMARY KEY, at TEXT NOT NULL)")
            con.executemany(
                "INSERT INTO ingests VALUES (?, ?)",
                [(d.name, "before ingests were recorded") for d in self._ingest_folders()],
            )
            con.execute("COMMIT")
        return con

    def _ingest_folders(self) -> list[Path]:
        return sorted(self.offline.glob("ingest=*")) if self.offline.is_dir() else []

    def _unrecorded(self, online: sqlite3.Connection) -> list[Path]:
        """Offline ingests the online store never committed (their process was killed)."""
        recorded = {name for (name,) in online.execute("SELECT name FROM ingests")}
        return [d for d in self._ingest_folders() if d.name not in recorded]

    def _needs_repair(self) -> bool:
        """Read-only and lock-free (a `get` never waits for an ingest in progress unless an
        offline ingest is missing from the online store)."""
        if not self._ingest_folders():
            return False
        con = sqlite3.connect(f"file:{self.online_db}?mode=ro", uri=True)
        try:
            if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'ingests'").fetchone():
                return False  # a store from before ingests were recorded: nothing to compare
            return bool(self._unrecorded(con))
        finally:
            con.close()

    def _repair(self, online: sqlite3.Connection, progress: Progress) -> None:
        """Roll forward ingests killed between their rename and their online commit, and
        remove killed ingests' temporary folders. Call under the lock."""
        if self.offline.is_dir():
            for debris in self.offline.glob(".tmp-ingest=*"):
                shutil.rmtree(debris, ignore_errors=True)
        for folder in self._unrecorded(online):
            con = self._duckdb()
            files = folder / f"{PARTITION}=*" / "*.parquet"
            con.execute(
                "CREATE TEMP TABLE typed AS SELECT * FROM "
                f"read_parquet({sql_text(str(files))}, hive_partitioning = true)"
            )
            online.execute("BEGIN IMMEDIATE")
            try:
                self._upsert_online(online, con)
                online.execute("INSERT INTO ingests VALUES (?, ?)", (folder.name, _now()))
                online.execute("COMMIT")
            except BaseException:
                online.execute("ROLLBACK")
                raise
            progress(f"completed an interrupted ingest: {folder.name} is now in the online store")

    def _typed_select(self) -> str:
        """The records frame cast to the feature group's types, plus its partition column."""
        casts = [
            f"CAST({q(c)} AS {SQL_TYPES[self.spec.type_of(c)]}) AS {q(c)}"
            for c in self.spec.value_columns
        ]
        rid, et = q(self.spec.record_id), q(self.spec.event_time)
        return (
            f"SELECT CAST({rid} AS VARCHAR) AS {rid}, CAST({et} AS TIMESTAMP) AS {et}, "
            f"{', '.join(casts)}, CAST({et} AS DATE) AS {PARTITION} FROM records"
        )

    # --- the interface -------------------------------------------------------------

    def ingest(self, records: pd.DataFrame, progress: Progress = print) -> IngestResult:
        """Checked records (`check_records`) in; a new version per (id, later time)."""
        con = self._duckdb()
        con.register("records", records)
        with self._lock():
            online = self._online()
            try:
                self._repair(online, progress)
            finally:
                online.close()
            try:
                con.execute(f"CREATE TEMP TABLE typed AS {self._typed_select()}")
            except duckdb.Error as exc:
                raise UsageError(f"records do not fit the feature group's types: {exc}") from None
            new_ids, versions = self._count_against_store(con)
            self.offline.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            final = self.offline / f"ingest={stamp}-{uuid.uuid4().hex[:8]}"
            tmp = self.offline / f".tmp-{final.name}"
            progress(f"writing {len(records)} records to the offline store ({self.offline})")
            con.execute(
                f"COPY typed TO {sql_text(str(tmp))} "
                f"(FORMAT PARQUET, PARTITION_BY ({PARTITION}), COMPRESSION ZSTD)"
            )
            con.execute(
                f"COPY ({self._superseded_pairs_sql()}) TO {sql_text(str(tmp / SUPERSEDED))}"
            )
            online = self._online()
            try:
                online.execute("BEGIN IMMEDIATE")
                self._upsert_online(online, con)
                online.execute("INSERT INTO ingests VALUES (?, ?)", (final.name, _now()))
                os.replace(tmp, final)
                try:
                    online.execute("COMMIT")
                except BaseException:
                    shutil.rmtree(final, ignore_errors=True)
                    raise
            except BaseException:
                if online.in_transaction:
                    online.execute("ROLLBACK")
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            finally:
                online.close()
        progress(f"online store: latest version of each record in {self.online_db}")
        return IngestResult(len(records), new_ids, versions)

    def _count_against_store(self, con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
        """(new ids, new versions of stored ids); UsageError if an (id, time) is stored already."""
        rid, et = q(self.spec.record_id), q(self.spec.event_time)
        if not self._has_data():
            return int(con.execute(f"SELECT count(DISTINCT {rid}) FROM typed").fetchone()[0]), 0
        con.execute(f"CREATE TEMP TABLE stored AS SELECT {rid}, {et} FROM {self._source()}")
        clash = con.execute(
            f"SELECT t.{rid}, t.{et} FROM typed t JOIN stored s USING ({rid}, {et}) LIMIT 1"
        ).fetchone()
        if clash:
            when = format_time(clash[1])
            raise UsageError(
                f"record {clash[0]!r} at {when} is already in the store: "
                "a new version needs a new event time (nothing was written)"
            )
        known = con.execute(
            f"SELECT count(*) FROM typed WHERE {rid} IN (SELECT {rid} FROM stored)"
        ).fetchone()[0]
        new_ids = con.execute(
            f"SELECT count(DISTINCT {rid}) FROM typed WHERE {rid} NOT IN (SELECT {rid} FROM stored)"
        ).fetchone()[0]
        return int(new_ids), int(known)

    def _superseded_pairs_sql(self) -> str:
        """(record_id, older, newer) for each two consecutive versions of an id this ingest
        touches where one of the two is new: an older stored version the new one supersedes,
        a new one a stored later version supersedes (late arrival), or two new ones."""
        rid, et = q(self.spec.record_id), q(self.spec.event_time)
        stored = (
            f" UNION ALL SELECT {rid}, {et}, false FROM stored"
            f" WHERE {rid} IN (SELECT {rid} FROM typed)"
            if self._has_data()
            else ""
        )
        return (
            f"SELECT record_id, older, newer FROM (\n"
            f"  SELECT {rid} AS record_id, {et} AS older, is_new AS older_new,\n"
            f"    lead({et}) OVER w AS newer, lead(is_new) OVER w AS newer_new\n"
            f"  FROM (SELECT {rid}, {et}, true AS is_new FROM typed{stored})\n"
            f"  WINDOW w AS (PARTITION BY {rid} ORDER BY {et})\n"
            f") WHERE newer IS NOT NULL AND (older_new OR newer_new)"
        )

    def _upsert_online(self, online: sqlite3.Connection, con: duckdb.DuckDBPyConnection) -> None:
        """Latest version per id in; a stored later version is kept (the WHERE clause).

        DuckDB builds each record's JSON; `event_time` is fixed-width ISO text so that
        SQLite's text comparison orders it as time.
        """
        rid, et = q(self.spec.record_id), q(self.spec.event_time)
        pretty = (
            f"CASE WHEN epoch_us({et}) % 1000000 = 0 THEN strftime({et}, '%Y-%m-%dT%H:%M:%SZ') "
            f"ELSE strftime({et}, '%Y-%m-%dT%H:%M:%S.%fZ') END"
        )
        fields = ", ".join(
            f"{q(c)} := {pretty if c == self.spec.event_time else q(c)}" for c in self.spec.columns
        )
        latest = con.execute(
            f"SELECT {rid}, strftime({et}, '%Y-%m-%dT%H:%M:%S.%fZ'), "
            f"to_json(struct_pack({fields})) FROM typed "
            f"QUALIFY ROW_NUMBER() OVER (PARTITION BY {rid} ORDER BY {et} DESC) = 1"
        )
        sql = (
            "INSERT INTO records (record_id, event_time, record) VALUES (?, ?, ?) "
            "ON CONFLICT(record_id) DO UPDATE SET event_time = excluded.event_time, "
            "record = excluded.record WHERE excluded.event_time > records.event_time"
        )
        while batch := latest.fetchmany(50_000):
            online.executemany(sql, batch)

    def earliest(self) -> datetime | None:
        if not self._has_data():
            return None
        con = self._duckdb()
        first = con.execute(f"SELECT min({q(self.spec.event_time)}) FROM {self._source()}")
        value = first.fetchone()[0]
        return value.replace(tzinfo=UTC) if value is not None else None

    def snapshot(self, as_of: datetime, out: Path, training: bool = False) -> Snapshot:
        if not self._has_data():
            check_as_of(as_of, None, self.spec.name)
        columns = list(self.spec.value_columns) if training else self.spec.columns
        query = point_in_time_sql(
            self.spec, self._source(), as_of, columns, self._superseded_source()
        )
        fmt = "PARQUET" if out.suffix.lower() == ".parquet" else "CSV, HEADER"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
        con = self._duckdb()
        try:
            # COPY answers the number of rows it wrote: no second pass over the data.
            copy = f"COPY ({query}) TO {sql_text(str(tmp))} (FORMAT {fmt})"
            (rows,) = con.execute(copy).fetchone()
            if not rows:
                # Every record has a version at its first event time, so an empty snapshot
                # means an as-of before all of them: say when the data starts (the scan for
                # the earliest time runs only on this path).
                check_as_of(as_of, self.earliest(), self.spec.name)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return Snapshot(
            as_of=as_of,
            query=query.replace(str(self.root), "$FEATURE_STORE"),
            rows=int(rows),
            sha256=_sha256(out),
            path=out,
            backend=self.backend,
            feature_group=self.spec.name,
        )

    def get(self, record_id: str) -> dict | None:
        if not self.online_db.exists():
            return None
        if self._needs_repair():  # an ingest killed before its online commit is finished
            with self._lock():
                online = self._online()
                try:
                    self._repair(online, lambda _: None)
                finally:
                    online.close()
        con = sqlite3.connect(f"file:{self.online_db}?mode=ro", uri=True)
        try:
            row = con.execute(
                "SELECT record FROM records WHERE record_id = ?", (record_id,)
            ).fetchone()
        finally:
            con.close()
        return json.loads(row[0]) if row else None
