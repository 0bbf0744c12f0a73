"""Each registered version's serving code, stored by content under $MLOPS_HOME/serving-code/.

SageMaker keeps the `sourcedir.tar.gz` a version was registered with; locally the
same holds: at registration the handler bundle (inference.py, the siblings and support
packages it imports) is copied to `serving-code/<sha256>/` and its digest recorded in
the version's lineage (`serving_code_sha256`). A deployment or `mlops serve` of that
version copies that folder, so a rollback to version 1 serves version 1's handler, not
today's checkout. Identical code is stored once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from mlops.core.code_bundle import STEPS_DIR, bundle_files, handler_sources
from mlops.core.errors import MlopsError

STORE = "serving-code"
LINEAGE_KEY = "serving_code_sha256"
HANDLER = "inference.py"


def code_digest(files: dict[str, Path]) -> str:
    """sha256 over the archive names and contents, in name order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name].read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def store_serving_code(home: Path, steps_dir: Path = STEPS_DIR) -> str:
    """Copy the handler bundle into the store (once per content); returns its sha256."""
    files = bundle_files(steps_dir / HANDLER, root=steps_dir.parent.parent)
    sha = code_digest(files)
    target = home / STORE / sha
    if target.is_dir():
        return sha
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=target.parent))
    for name, path in files.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, tmp / name)
    try:
        os.replace(tmp, target)  # a folder appears whole or not at all
    except OSError:  # stored meanwhile by a concurrent registration
        shutil.rmtree(tmp, ignore_errors=True)
    return sha


def copy_serving_code(home: Path, lineage: dict, target: Path, steps_dir: Path = STEPS_DIR) -> str:
    """Put a version's serving code in `target`; returns where it came from.

    Versions registered before code was stored fall back to the checkout's handler
    (and say so)."""
    sha = lineage.get(LINEAGE_KEY)
    if not sha:
        target.mkdir(parents=True, exist_ok=True)
        for source in handler_sources(steps_dir):
            shutil.copy2(source, target / source.name)
        return f"{steps_dir} (no serving code was stored with this version)"
    source = home / STORE / sha
    if not (source / HANDLER).is_file():
        raise MlopsError(
            f"the serving code of this version ({LINEAGE_KEY} {sha[:12]}) is missing "
            f"from {home / STORE}"
        )
    shutil.copytree(source, target, dirs_exist_ok=True)
    return f"serving code {sha[:12]}"
