"""The registry guards itself: no schema over an existing file, refusal beside artifacts,
a backup after every write, orphan collection that never takes a registered folder, and
the archive digest checked before use."""

import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from unit.test_registry import GROUP, register

from mlops.core.errors import MlopsError
from mlops.local.artifacts import version_archive
from mlops.local.registry import REGISTERED_MARKER, LocalRegistry, backup_path, file_sha256


def artifact_files(home: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(home)): p.read_bytes()
        for p in sorted((home / "registry").rglob("*"))
        if p.is_file()
    }


def truncate(db: Path) -> None:
    db.write_bytes(b"")


def delete(db: Path) -> None:
    db.unlink()


def corrupt(db: Path) -> None:
    with db.open("r+b") as handle:
        handle.write(os.urandom(100))  # over the header: "file is not a database"


@pytest.mark.parametrize("damage", [truncate, delete, corrupt])
def test_a_damaged_registry_is_refused_and_no_artifact_is_deleted(tmp_path, damage):
    home = tmp_path / "home"
    register(home, "r1")
    register(home, "r2")
    before = artifact_files(home)
    db = home / "registry.db"
    damage(db)
    registry = LocalRegistry(home, GROUP)
    for attempt in (registry.list, lambda: register(home, "r3"), lambda: registry.approve(1)):
        with pytest.raises(MlopsError) as caught:
            attempt()
        line = str(caught.value)
        assert "\n" not in line and str(db) in line
        assert f"cp {backup_path(db)} {db}" in line  # the recovery, runnable as printed
    assert artifact_files(home) == before
    assert damage is not delete or not db.exists()  # nothing recreated over the artifacts
    assert damage is not truncate or db.stat().st_size == 0  # no schema over the empty file


def test_the_backup_restores_every_version(tmp_path):
    home = tmp_path / "home"
    register(home, "r1")
    register(home, "r2")
    LocalRegistry(home, GROUP).approve(2, note="ok")
    db = home / "registry.db"
    truncate(db)
    for leftover in (home / "registry.db-wal", home / "registry.db-shm"):
        leftover.unlink(missing_ok=True)
    shutil.copy(backup_path(db), db)
    versions = LocalRegistry(home, GROUP).list()
    assert [(v.version, v.approval_status) for v in versions] == [
        (1, "PendingManualApproval"),
        (2, "Approved"),
    ]
    assert register(home, "r3").version == 3


def test_an_empty_file_without_artifacts_is_not_given_a_schema(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "registry.db").write_bytes(b"")
    with pytest.raises(MlopsError, match=r"empty .* delete it to start an empty registry"):
        LocalRegistry(home, GROUP).list()
    assert (home / "registry.db").stat().st_size == 0


def test_orphans_are_only_old_unmarked_folders_no_row_owns(tmp_path):
    home = tmp_path / "home"
    v1 = register(home, "r1")
    runs = Path(v1.model_uri).parent.parent
    assert (runs / "r1" / REGISTERED_MARKER).is_file()
    old = time.time() - 2 * 3600
    killed, young, lost_row = runs / "killed", runs / "young", runs / "lost-row"
    for folder in (killed, young, lost_row):
        folder.mkdir()
        (folder / "model.tar.gz").write_bytes(b"x")
    (lost_row / REGISTERED_MARKER).write_text("{}")  # registered; its row was lost
    for folder in (killed, lost_row, runs / "r1"):
        os.utime(folder, (old, old))
    register(home, "r2")
    assert sorted(p.name for p in runs.iterdir()) == ["lost-row", "r1", "r2", "young"]


def test_the_archive_digest_is_recorded_and_checked(tmp_path):
    home = tmp_path / "home"
    version = register(home, "r1")
    archive = Path(version.model_uri)
    assert version.model_sha256 == file_sha256(archive)
    assert version_archive(version) == archive
    archive.write_bytes(archive.read_bytes() + b"tampered")
    with pytest.raises(MlopsError, match=r"refusing version 1: .* changed since registration"):
        version_archive(LocalRegistry(home, GROUP).describe(1))


def test_an_older_registry_gains_the_digest_column(tmp_path):
    home = tmp_path / "home"
    register(home, "r1")
    conn = sqlite3.connect(home / "registry.db")
    conn.execute("ALTER TABLE model_versions DROP COLUMN model_sha256")
    conn.commit()
    conn.close()
    assert LocalRegistry(home, GROUP).describe(1).model_sha256 == ""  # legacy: unchecked
    assert register(home, "r2").model_sha256


def test_drift_against_a_version_refuses_a_deleted_registry(tmp_path):
    from mlops.cli.data import chosen_version
    from mlops.core.config import load_config

    home = tmp_path / "home"
    register(home, "r1")
    (home / "registry.db").unlink()
    with pytest.raises(MlopsError, match="is missing; 1 model artifact folders beside it"):
        chosen_version(load_config(), home, 1)  # not "nothing is registered yet"
    assert not (home / "registry.db").exists()
