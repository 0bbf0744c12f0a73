"""Step bundles: what a sourcedir.tar.gz carries, and that it runs on its own.

In a SageMaker container only the bundle exists: a step that imports the
support package `stepkit` must ship it beside the script, or it fails at import
time on AWS while passing every local run.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

from mlops.core.code_bundle import STEPS_DIR, bundle_files

from mlops.core.paths import REPO_ROOT
from model_build.pipeline import BUNDLE_EXTRAS, SERVING_SCRIPT, step_bundle

STEPKIT = sorted(f"stepkit/{path.name}" for path in (REPO_ROOT / "stepkit").glob("*.py"))


def _names(bundle: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tar:
        return tar.getnames()


def test_validate_bundle_carries_stepkit_and_nothing_of_the_machinery():
    bundle = step_bundle(STEPS_DIR, "validate.py", BUNDLE_EXTRAS["validate"])
    names = _names(bundle)
    assert names == sorted(["requirements.txt", "validate.py", *STEPKIT])
    assert "stepkit/validation_report.py" in names and "stepkit/__init__.py" in names
    assert step_bundle(STEPS_DIR, "validate.py", BUNDLE_EXTRAS["validate"]) == bundle


def test_scripts_that_do_not_import_stepkit_do_not_carry_it():
    assert not [n for n in bundle_files(STEPS_DIR / SERVING_SCRIPT) if n.startswith("stepkit/")]
    assert list(bundle_files(STEPS_DIR / "preprocess.py")) == ["preprocess.py"]


def test_validate_runs_from_its_extracted_bundle_alone(tmp_path):
    """`python validate.py --help` in a folder holding only the bundle, with the repository
    off the path (no site processing, so no editable install: only the libraries)."""
    with tarfile.open(
        fileobj=io.BytesIO(step_bundle(STEPS_DIR, "validate.py")), mode="r:gz"
    ) as tar:
        tar.extractall(tmp_path, filter="data")
    libraries = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sorted(libraries))}

    def python(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-S", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert python("-c", "import mlops").returncode != 0  # the repository is not reachable
    proc = python("validate.py", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--raw-dir" in proc.stdout and "--max-file-mb" in proc.stdout
    found = python("-c", "import stepkit; print(stepkit.__file__)")
    assert Path(found.stdout.strip()).parent == tmp_path / "stepkit"


def test_stepkit_imports_only_the_standard_library_and_the_data_libraries():
    """stepkit travels into containers that hold no `mlops` and no `model_build`."""
    import ast

    allowed = set(sys.stdlib_module_names) | {"pandas", "numpy", "great_expectations", "stepkit"}
    for path in sorted((REPO_ROOT / "stepkit").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            assert {n.split(".")[0] for n in names} <= allowed, (path.name, names)
