"""stepkit.artifact: the manifest's digests over every file, a changed or missing file
refused by name, and the serving code shipped in code/."""

from __future__ import annotations

import json
import tarfile

import pytest

from mlops.core.paths import REPO_ROOT
from stepkit.artifact import (
    FORMAT,
    IntegrityError,
    archive_manifest,
    copy_serving_code,
    read_manifest,
    sha256_file,
    write_manifest,
)

STEPS_DIR = REPO_ROOT / "model_build" / "steps"


@pytest.fixture
def artifact(tmp_path):
    folder = tmp_path / "artifact"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "weights.json").write_text('{"w": [1, 2]}')
    (folder / "features.json").write_text('{"columns": ["a"]}')
    copy_serving_code(STEPS_DIR, folder, REPO_ROOT)
    write_manifest(folder, {"family": "test", "task": "regression"})
    return folder


def test_the_manifest_lists_every_file_with_its_sha256(artifact):
    manifest = read_manifest(artifact)
    files = {p.relative_to(artifact).as_posix() for p in artifact.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == files - {"manifest.json"}
    for name, digest in manifest["files"].items():
        assert digest == sha256_file(artifact / name)
    assert manifest["format"] == FORMAT and manifest["family"] == "test"


def test_the_serving_code_ships_with_its_siblings_and_stepkit(artifact):
    code = {p.relative_to(artifact / "code").as_posix() for p in (artifact / "code").rglob("*.py")}
    assert {"endpoint_handler.py", "inference.py", "features.py", "families.py",
            "stepkit/rows.py", "stepkit/artifact.py", "stepkit/contract.py"} <= code  # fmt: skip
    assert not {"train.py", "evaluate.py", "preprocess.py", "validate.py"} & code
    for name in ("inference.py", "stepkit/rows.py"):
        root = STEPS_DIR if "/" not in name else REPO_ROOT
        assert (artifact / "code" / name).read_bytes() == (root / name).read_bytes()


@pytest.mark.parametrize("name", ["model/weights.json", "features.json", "code/inference.py"])
def test_a_changed_file_is_refused_by_name(artifact, name):
    with (artifact / name).open("a") as f:
        f.write(" ")
    with pytest.raises(IntegrityError, match=rf"^{name}: sha256 .* refusing to load$"):
        read_manifest(artifact)


def test_a_missing_file_and_a_missing_manifest_are_refused(artifact):
    (artifact / "features.json").unlink()
    with pytest.raises(
        IntegrityError, match=r"features\.json is listed in the manifest but missing"
    ):
        read_manifest(artifact)
    (artifact / "manifest.json").unlink()
    with pytest.raises(IntegrityError, match="is missing: not a model artifact"):
        read_manifest(artifact)


def test_an_older_format_says_to_retrain(artifact):
    manifest = json.loads((artifact / "manifest.json").read_text())
    (artifact / "manifest.json").write_text(json.dumps({**manifest, "format": 1}))
    with pytest.raises(IntegrityError, match=r"artifact format 1, this code reads 2 .*retrain"):
        read_manifest(artifact)


def test_the_manifest_of_a_packed_archive_is_read_without_unpacking(artifact, tmp_path):
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(artifact.iterdir()):
            tar.add(path, arcname=path.name)
    assert archive_manifest(archive) == read_manifest(artifact)
