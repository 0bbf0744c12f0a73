"""A registered version's model artifact on this machine: unpacked, with the code it carries.

A model.tar.gz holds the model and the serving code that serves it (`code/`, see
stepkit/artifact.py). Deploys, `mlops serve`, batch scoring and drift checks all unpack
it here and load its own code, so a rollback to version 1 serves version 1's handler,
not today's checkout.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from mlops.core.errors import MlopsError
from mlops.core.registry import ModelVersion
from mlops.local.registry import file_sha256
from stepkit.artifact import CODE_DIR

MODEL_FOLDER = "model"


def version_archive(version: ModelVersion) -> Path:
    """The version's model.tar.gz on this machine, checked against the sha256 the registry
    recorded at registration; MlopsError when it is elsewhere, gone or changed since."""
    archive = Path(version.model_uri)
    if version.model_uri.startswith("s3://") or not archive.is_file():
        raise MlopsError(
            f"model of version {version.version} is not a local file: {version.model_uri}"
        )
    check_archive(archive, version)
    return archive


def check_archive(archive: Path, version: ModelVersion) -> None:
    """Refuse an archive whose bytes are not the registered ones (its inner manifest alone
    cannot tell: whoever rewrites the model can rewrite the manifest beside it). Versions
    registered before digests were recorded have none and are not checked."""
    if not version.model_sha256:
        return
    try:
        actual = file_sha256(archive)
    except OSError as exc:
        raise MlopsError(f"cannot read the model of version {version.version}: {exc}") from None
    if actual != version.model_sha256:
        raise MlopsError(
            f"refusing version {version.version}: {archive} changed since registration "
            f"(sha256 {actual[:12]}..., registered {version.model_sha256[:12]}...); "
            "re-run the pipeline to register a new version"
        )


def unpack(archive: Path, folder: Path) -> tuple[Path, Path]:
    """Extract a model.tar.gz into folder/model; (model dir, the code dir inside it)."""
    model_dir = folder / MODEL_FOLDER
    model_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(model_dir, filter="data")
    except (tarfile.TarError, OSError) as exc:
        reason = " ".join(str(exc).split())  # tarfile lists each method it tried on a line
        raise MlopsError(f"cannot unpack {archive}: {reason}") from None
    code_dir = model_dir / CODE_DIR
    if not (code_dir / "inference.py").is_file():
        raise MlopsError(
            f"{archive} carries no serving code ({CODE_DIR}/inference.py): a model trained by "
            "an older release of the template; retrain it"
        )
    return model_dir, code_dir


def unpack_version(version: ModelVersion, folder: Path) -> tuple[Path, Path]:
    """`unpack` of a registered version's archive."""
    return unpack(version_archive(version), folder)
