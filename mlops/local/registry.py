"""Model registry: model package group, numbered versions, approval status, metrics, lineage.

`LocalRegistry` keeps it in SQLite under $MLOPS_HOME. Every write is one
`BEGIN IMMEDIATE` transaction, so concurrent registrations from several processes
get distinct, gapless version numbers, and a process killed mid-way leaves either
a whole version or none. Artifacts are copied into a folder named after the run
*before* the row is inserted: a crash leaves at worst an unreferenced folder,
never a row pointing at missing files.

The database is the source of truth and is guarded as such (docs/reliability.md):
a schema is only ever created in a new file, never over an existing one; a missing,
empty or corrupt registry beside existing artifacts is refused with one line naming
the file and the recovery; every write refreshes `registry.db.backup` (SQLite's
online backup); each version's archive sha256 is recorded so that deploy, serve and
batch can check it; orphan collection deletes only old folders that no row owns and
that never completed a registration.

It implements `mlops.core.interfaces.Registry`, as the SageMaker Model Registry
backend (`mlops.sagemaker.registry`) does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

from mlops.core.errors import MlopsError, UsageError
from mlops.core.registry import (
    APPROVAL_STATUSES,
    APPROVED,
    PENDING,
    REJECTED,
    ModelVersion,
    current_user,
    metrics_from_evaluation,
    utc_now,
)
from stepkit.splits import GOLDEN_PREDICTIONS, HELD_OUT_PREDICTIONS

SCHEMA = """
CREATE TABLE IF NOT EXISTS model_package_groups (
    name TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_versions (
    grp TEXT NOT NULL REFERENCES model_package_groups(name),
    version INTEGER NOT NULL,
    approval_status TEXT NOT NULL
        CHECK (approval_status IN ('PendingManualApproval', 'Approved', 'Rejected')),
    created_at TEXT NOT NULL,
    metrics TEXT NOT NULL,
    lineage TEXT NOT NULL,
    model_uri TEXT NOT NULL,
    evaluation_uri TEXT NOT NULL,
    baseline_uri TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    model_sha256 TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (grp, version)
);
CREATE TABLE IF NOT EXISTS approval_history (
    grp TEXT NOT NULL,
    version INTEGER NOT NULL,
    approval_status TEXT NOT NULL,
    note TEXT NOT NULL,
    user TEXT NOT NULL,
    at TEXT NOT NULL
);
"""


BACKUP_SUFFIX = ".backup"
REGISTERED_MARKER = "registered.json"  # written into a run's folder once its row is committed
ORPHAN_MIN_AGE_S = 3600.0  # younger unowned folders are left alone (a clock or a restore away)
RECOVERY_DOC = "docs/reliability.md"


def backup_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + BACKUP_SUFFIX)


def artifact_folders(db_path: Path) -> list[Path]:
    """The registered-run folders beside the database ($MLOPS_HOME/registry/<group>/runs/*)."""
    return sorted(p for p in db_path.parent.glob("registry/*/runs/*") if p.is_dir())


def _recovery(db_path: Path) -> str:
    backup = backup_path(db_path)
    if backup.is_file():
        return f"restore the backup: cp {backup} {db_path} (see {RECOVERY_DOC})"
    return f"restore it from your own copy, or see {RECOVERY_DOC}"


def _refuse(db_path: Path, problem: str) -> MlopsError:
    """The one line for a registry that must not be used or recreated."""
    kept = artifact_folders(db_path)
    beside = f"; {len(kept)} model artifact folders beside it are kept" if kept else ""
    if not kept and problem != "missing":
        tail = f"delete it to start an empty registry, or {_recovery(db_path)}"
    else:
        tail = _recovery(db_path)
    return MlopsError(f"registry {db_path} is {problem}{beside}: {tail}")


def _create(db_path: Path) -> None:
    """A new registry file, built aside and linked into place: never a schema over an
    existing file, and of two processes creating it at once, one wins and both use it."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = db_path.with_name(f".{db_path.name}.{os.getpid()}.new")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")  # persistent: set once, in the new file
        conn.executescript(SCHEMA)
    finally:
        conn.close()
    try:
        os.link(tmp, db_path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def _migrate(conn: sqlite3.Connection) -> None:
    """Columns added since a registry was created (an older release's file)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(model_versions)")}
    if "model_sha256" not in columns:
        with contextlib.suppress(sqlite3.OperationalError):  # another process added it
            conn.execute(
                "ALTER TABLE model_versions ADD COLUMN model_sha256 TEXT NOT NULL DEFAULT ''"
            )


def _check_healthy(conn: sqlite3.Connection, db_path: Path) -> None:
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        (check,) = conn.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.DatabaseError as exc:
        raise _refuse(db_path, f"corrupt ({exc})") from None
    if check != "ok":
        raise _refuse(db_path, f"corrupt ({check})")
    if "model_versions" not in tables:
        raise _refuse(db_path, "not a model registry (it has no model_versions table)")


def connect(db_path: Path) -> sqlite3.Connection:
    """A connection to a healthy registry in autocommit mode (transactions are explicit),
    with a busy timeout. Creates the file only where none exists and no artifacts do;
    MlopsError (one line, with the recovery) for a missing, empty or corrupt registry."""
    if not db_path.exists():
        if artifact_folders(db_path):
            raise _refuse(db_path, "missing")
        _create(db_path)
    elif db_path.is_file() and db_path.stat().st_size == 0:
        raise _refuse(db_path, "empty (0 bytes)")
    try:
        # mode=rw: SQLite never creates the file, so a registry deleted meanwhile is not
        # silently replaced by an empty one.
        conn = sqlite3.connect(
            f"file:{db_path}?mode=rw", uri=True, timeout=60, isolation_level=None
        )
    except sqlite3.OperationalError as exc:
        raise _refuse(db_path, f"unreadable ({exc})") from None
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=60000")
    try:
        _check_healthy(conn, db_path)
        _migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def backup(conn: sqlite3.Connection, db_path: Path) -> None:
    """Refresh registry.db.backup from a healthy connection after a write (SQLite's online
    backup, written aside and renamed, so the backup is always a whole database). A
    failure to back up is a warning: the write itself has committed."""
    target = backup_path(db_path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        copy = sqlite3.connect(tmp)
        try:
            conn.backup(copy)
        finally:
            copy.close()
        os.replace(tmp, target)
    except (OSError, sqlite3.Error) as exc:
        tmp.unlink(missing_ok=True)
        print(f"warning: could not refresh the registry backup {target}: {exc}", file=sys.stderr)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LocalRegistry:
    """The registry of the local backend: SQLite plus an artifact folder per registered run."""

    def __init__(self, home: Path, group: str):
        self.home = home
        self.group = group
        self.db_path = home / "registry.db"
        self.artifacts = home / "registry" / group

    def _connect(self) -> sqlite3.Connection:
        return connect(self.db_path)

    @staticmethod
    def _row_to_version(row: sqlite3.Row) -> ModelVersion:
        return ModelVersion(
            group=row["grp"],
            version=row["version"],
            approval_status=row["approval_status"],
            created_at=row["created_at"],
            metrics=json.loads(row["metrics"]),
            lineage=json.loads(row["lineage"]),
            model_uri=row["model_uri"],
            evaluation_uri=row["evaluation_uri"],
            baseline_uri=row["baseline_uri"],
            note=row["note"],
            model_sha256=row["model_sha256"],
        )

    def register(
        self,
        model_archive: Path,
        evaluation: Path,
        baseline: Path | None,
        lineage: dict,
        status: str = PENDING,
    ) -> ModelVersion:
        """Copy the artifacts, then insert the next version number in one transaction."""
        if status not in APPROVAL_STATUSES:
            raise UsageError(f"approval status must be one of {APPROVAL_STATUSES}, not {status!r}")
        metrics = metrics_from_evaluation(json.loads(evaluation.read_text()))
        folder = self.artifacts / "runs" / str(lineage["run_id"])
        conn = self._connect()
        try:
            # Copies happen inside the write transaction: a folder without a row is then
            # always debris of a killed registration, never one in progress, and is collected.
            conn.execute("BEGIN IMMEDIATE")
            self._collect_orphans(conn, keep=folder.name)
            folder.mkdir(parents=True, exist_ok=True)
            model_uri = shutil.copy2(model_archive, folder / "model.tar.gz")
            evaluation_uri = shutil.copy2(evaluation, folder / "evaluation.json")
            for name in (HELD_OUT_PREDICTIONS, GOLDEN_PREDICTIONS):  # evaluate's, beside it
                if (evaluation.parent / name).is_file():
                    shutil.copy2(evaluation.parent / name, folder / name)
            baseline_uri = shutil.copy2(baseline, folder / "baseline.json") if baseline else ""
            conn.execute(
                "INSERT OR IGNORE INTO model_package_groups VALUES (?, ?)", (self.group, utc_now())
            )
            (version,) = conn.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE grp = ?",
                (self.group,),
            ).fetchone()
            conn.execute(
                "INSERT INTO model_versions (grp, version, approval_status, created_at, metrics,"
                " lineage, model_uri, evaluation_uri, baseline_uri, note, model_sha256)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?)",
                (
                    self.group,
                    version,
                    status,
                    utc_now(),
                    json.dumps(metrics),
                    json.dumps(lineage, sort_keys=True),
                    str(model_uri),
                    str(evaluation_uri),
                    str(baseline_uri),
                    file_sha256(Path(model_uri)),
                ),
            )
            conn.execute(
                "INSERT INTO approval_history VALUES (?, ?, ?, 'registered', ?, ?)",
                (self.group, version, status, current_user(), utc_now()),
            )
            conn.execute("COMMIT")
            # After the commit: a folder with this marker was registered, so even a registry
            # restored from a backup one write behind never lets it be collected.
            (folder / REGISTERED_MARKER).write_text(
                json.dumps({"group": self.group, "version": version, "at": utc_now()})
            )
            backup(conn, self.db_path)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()
        return self.describe(version)

    def _collect_orphans(self, conn: sqlite3.Connection, keep: str) -> list[str]:
        """Remove artifact folders left by a registration killed between its copies and its
        commit: no row of this (healthy, checked at connect) registry points to them, they
        carry no registered marker, and they are older than ORPHAN_MIN_AGE_S. Call inside
        the write transaction."""
        runs = self.artifacts / "runs"
        if not runs.is_dir():
            return []
        used = {
            Path(uri).parent.name
            for (uri,) in conn.execute(
                "SELECT model_uri FROM model_versions WHERE grp = ?", (self.group,)
            )
        }
        oldest = time.time() - ORPHAN_MIN_AGE_S
        orphans = [
            p
            for p in runs.iterdir()
            if p.is_dir()
            and p.name not in used | {keep}
            and not (p / REGISTERED_MARKER).exists()
            and p.stat().st_mtime < oldest
        ]
        for orphan in orphans:
            shutil.rmtree(orphan, ignore_errors=True)
        return [p.name for p in orphans]

    def list(self) -> list[ModelVersion]:
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT * FROM model_versions WHERE grp = ? ORDER BY version", (self.group,)
            ).fetchall()
        finally:
            conn.close()
        return [self._row_to_version(r) for r in rows]

    def describe(self, version: int) -> ModelVersion:
        conn = self._connect()
        try:
            row = conn.execute(
                "SELECT * FROM model_versions WHERE grp = ? AND version = ?", (self.group, version)
            ).fetchone()
        finally:
            conn.close()
        if row is None:
            raise UsageError(f"model version {version} does not exist in group {self.group!r}")
        return self._row_to_version(row)

    def set_status(self, version: int, status: str, note: str = "") -> ModelVersion:
        if status not in APPROVAL_STATUSES:
            raise UsageError(f"approval status must be one of {APPROVAL_STATUSES}, not {status!r}")
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            updated = conn.execute(
                "UPDATE model_versions SET approval_status = ?, note = ? WHERE grp = ? AND version = ?",
                (status, note, self.group, version),
            ).rowcount
            if updated:
                conn.execute(
                    "INSERT INTO approval_history VALUES (?, ?, ?, ?, ?, ?)",
                    (self.group, version, status, note, current_user(), utc_now()),
                )
            conn.execute("COMMIT")
            if updated:
                backup(conn, self.db_path)
        finally:
            conn.close()
        if not updated:
            raise UsageError(f"model version {version} does not exist in group {self.group!r}")
        return self.describe(version)

    def approve(self, version: int, note: str = "") -> ModelVersion:
        return self.set_status(version, APPROVED, note)

    def reject(self, version: int, note: str = "") -> ModelVersion:
        return self.set_status(version, REJECTED, note)

    def latest_approved(self) -> ModelVersion | None:
        approved = [v for v in self.list() if v.approval_status == APPROVED]
        return approved[-1] if approved else None

    def history(self, version: int) -> list[dict]:
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT * FROM approval_history WHERE grp = ? AND version = ? ORDER BY rowid",
                (self.group, version),
            ).fetchall()
        finally:
            conn.close()
        return [dict(r) for r in rows]
