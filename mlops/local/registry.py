"""Model registry: model package group, numbered versions, approval status, metrics, lineage.

`LocalRegistry` keeps it in SQLite under $MLOPS_HOME. Every write is one
`BEGIN IMMEDIATE` transaction, so concurrent registrations from several processes
get distinct, gapless version numbers, and a process killed mid-way leaves either
a whole version or none. Artifacts are copied into a folder named after the run
*before* the row is inserted: a crash leaves at worst an unreferenced folder,
never a row pointing at missing files.

It implements `mlops.core.interfaces.Registry`, as the SageMaker Model Registry
backend (`mlops.sagemaker.registry`) does.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from mlops.core.errors import UsageError
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


def connect(db_path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, with a busy timeout."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, timeout=60, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=60000")
    conn.executescript(SCHEMA)
    return conn


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
                "INSERT INTO model_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '')",
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
                ),
            )
            conn.execute(
                "INSERT INTO approval_history VALUES (?, ?, ?, 'registered', ?, ?)",
                (self.group, version, status, current_user(), utc_now()),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()
        return self.describe(version)

    def _collect_orphans(self, conn: sqlite3.Connection, keep: str) -> list[str]:
        """Remove artifact folders no version points to (left by a registration killed
        between its copies and its commit). Call inside the write transaction."""
        runs = self.artifacts / "runs"
        if not runs.is_dir():
            return []
        used = {
            Path(uri).parent.name
            for (uri,) in conn.execute(
                "SELECT model_uri FROM model_versions WHERE grp = ?", (self.group,)
            )
        }
        orphans = [p for p in runs.iterdir() if p.is_dir() and p.name not in used | {keep}]
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
