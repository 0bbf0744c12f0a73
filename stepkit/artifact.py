"""The model artifact: what the train step writes to SM_MODEL_DIR (packed as model.tar.gz).

    manifest.json   the model's contract: family, task, raw input columns (and which are
                    text), target, class labels and threshold, hyperparameters, library
                    versions, and the sha256 of every other file below
    model/          the model family's own files (XGBoost JSON, ...): never loaded unchecked
    features.json   the fitted preprocessing's state (features.py fit -> transform)
    code/           the serving code: endpoint_handler.py, inference.py, the siblings they
                    import and stepkit/; the code every reader of this model runs

A model therefore always travels with the code that serves it: a champion trained a
year ago is scored by its own code, not by today's checkout.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from stepkit.bundle import bundle_files

MANIFEST = "manifest.json"
MODEL_DIR = "model"
FEATURES_FILE = "features.json"
CODE_DIR = "code"
SERVING_ENTRY = "endpoint_handler.py"  # imports inference.py, which imports the rest
FORMAT = 2  # 1: the booster and its manifest only, served by the checkout's code


class IntegrityError(RuntimeError):
    """A file of the artifact does not match the sha256 its manifest records."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_serving_code(steps_dir: Path, model_dir: Path, root: Path | None = None) -> list[str]:
    """The serving entry's bundle (it, its siblings, stepkit/) into `model_dir/code/`."""
    files = bundle_files(steps_dir / SERVING_ENTRY, root or steps_dir.parent.parent)
    target = model_dir / CODE_DIR
    for name, path in files.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / name)
    return sorted(files)


def artifact_files(model_dir: Path) -> dict[str, str]:
    """sha256 of every file in the artifact but the manifest, by relative path."""
    return {
        path.relative_to(model_dir).as_posix(): sha256_file(path)
        for path in sorted(model_dir.rglob("*"))
        if path.is_file() and path.name != MANIFEST and "__pycache__" not in path.parts
    }


def write_manifest(model_dir: Path, fields: dict) -> dict:
    """The manifest over the files now in `model_dir`, written last."""
    manifest = {"format": FORMAT, **fields, "files": artifact_files(model_dir)}
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def read_manifest(model_dir: Path) -> dict:
    """The manifest, after checking every file it lists (code included) is unchanged."""
    path = Path(model_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise IntegrityError(f"{path} is missing: not a model artifact") from None
    except ValueError as exc:
        raise IntegrityError(f"{path} is not valid JSON: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise IntegrityError(
            f"{path}: artifact format {manifest.get('format', 1)}, this code reads {FORMAT} "
            "(a model trained by an older release of the template: retrain it)"
        )
    for name, expected in manifest["files"].items():
        file = Path(model_dir) / name
        if not file.is_file():
            raise IntegrityError(f"{name} is listed in the manifest but missing; refusing it")
        actual = sha256_file(file)
        if actual != expected:
            raise IntegrityError(
                f"{name}: sha256 {actual[:12]}… does not match the manifest's "
                f"{expected[:12]}…; refusing to load"
            )
    return manifest


def archive_manifest(archive: Path) -> dict:
    """The manifest of a packed model.tar.gz, read without unpacking the rest (unchecked:
    for what a model expects, not for loading it)."""
    import tarfile

    with tarfile.open(archive) as tar:
        member = tar.extractfile(MANIFEST)
        if member is None:
            raise IntegrityError(f"{archive} holds no {MANIFEST}")
        return json.loads(member.read())
