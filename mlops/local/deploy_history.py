"""The local backend's deployment history: tables in $MLOPS_HOME/registry.db.

`deployments` holds every deploy attempt (refused ones included), `smoke_tests`
every smoke test of a candidate or of staging before a promotion. What is recorded,
and when, is `mlops.core.deploy`'s business; this module only stores and lists it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops.core.lineage import git_commit
from mlops.core.registry import current_user, utc_now
from mlops.core.smoke import SmokeResult
from mlops.local.registry import backup, connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    grp TEXT NOT NULL,
    stage TEXT NOT NULL,
    backend TEXT NOT NULL,
    version INTEGER,
    previous_version INTEGER,
    at TEXT NOT NULL,
    user TEXT NOT NULL,
    git_commit TEXT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('succeeded', 'failed', 'refused')),
    reason TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    smoke TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS smoke_tests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    grp TEXT NOT NULL,
    stage TEXT NOT NULL,
    version INTEGER NOT NULL,
    url TEXT NOT NULL,
    at TEXT NOT NULL,
    passed INTEGER NOT NULL,
    result TEXT NOT NULL
);
"""


def _db(home: Path):
    conn = connect(home / "registry.db")
    conn.executescript(SCHEMA)
    return conn


def record_deployment(
    home: Path,
    group: str,
    stage: str,
    backend: str,
    result: str,
    version: int | None = None,
    previous_version: int | None = None,
    reason: str = "",
    url: str = "",
    smoke: SmokeResult | None = None,
) -> None:
    conn = _db(home)
    try:
        conn.execute(
            "INSERT INTO deployments (grp, stage, backend, version, previous_version, at, user,"
            " git_commit, result, reason, url, smoke) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                group,
                stage,
                backend,
                version,
                previous_version,
                utc_now(),
                current_user(),
                git_commit(),
                result,
                reason,
                url,
                json.dumps(smoke.to_dict() if smoke else {}),
            ),
        )
        backup(conn, home / "registry.db")
    finally:
        conn.close()


def record_smoke_test(
    home: Path, group: str, stage: str, version: int, url: str, result: SmokeResult
) -> None:
    conn = _db(home)
    try:
        conn.execute(
            "INSERT INTO smoke_tests (grp, stage, version, url, at, passed, result)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                group,
                stage,
                version,
                url,
                utc_now(),
                int(result.passed),
                json.dumps(result.to_dict()),
            ),
        )
    finally:
        conn.close()


def list_deployments(
    home: Path, group: str, stage: str | None = None, limit: int = 20
) -> list[dict]:
    conn = _db(home)
    try:
        rows = conn.execute(
            "SELECT * FROM deployments WHERE grp = ? AND (? IS NULL OR stage = ?)"
            " ORDER BY id DESC LIMIT ?",
            (group, stage, stage, limit),
        ).fetchall()
    finally:
        conn.close()
    return [{**dict(r), "smoke": json.loads(r["smoke"])} for r in rows]


class LocalDeploymentLog:
    """Deploy attempts as rows of the `deployments` table in $MLOPS_HOME/registry.db."""

    def __init__(self, home: Path, group: str):
        self.home, self.group = home, group

    def record(self, stage: str, backend: str, result: str, **fields: Any) -> None:
        record_deployment(self.home, self.group, stage, backend, result, **fields)
