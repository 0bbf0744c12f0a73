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

import pytest

from mlops.core.errors import UsageError
from mlops.core.paths import REPO_ROOT
from mlops.sagemaker.pipeline_definition import SERVING_SCRIPT, bundle_contents, step_bundle
from stepkit.bundle import bundle_files

STEPS_DIR = REPO_ROOT / "model_build" / "steps"

STEPKIT = sorted(f"stepkit/{path.name}" for path in (REPO_ROOT / "stepkit").glob("*.py"))


def _names(bundle: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tar:
        return tar.getnames()


def test_validate_bundle_carries_stepkit_and_nothing_of_the_machinery():
    bundle = step_bundle(STEPS_DIR / "validate.py", ("requirements.txt",))
    names = _names(bundle)
    assert names == sorted(["requirements.txt", "validate.py", *STEPKIT])
    assert "stepkit/validation_report.py" in names and "stepkit/__init__.py" in names
    assert step_bundle(STEPS_DIR / "validate.py", ("requirements.txt",)) == bundle


def test_a_shipped_python_file_brings_its_own_imports():
    """train ships the serving handler (it copies it into the model): the handler's
    closure comes with it, beside train's own."""
    shipped = bundle_contents(STEPS_DIR / "train.py", (SERVING_SCRIPT,))
    serving = bundle_files(STEPS_DIR / SERVING_SCRIPT, REPO_ROOT)
    own = bundle_files(STEPS_DIR / "train.py", REPO_ROOT)
    assert set(shipped) == set(serving) | set(own)
    assert set(serving) - set(own)  # the handler needs modules train does not import
    for name, path in {**own, **serving}.items():
        assert shipped[name] == path.read_bytes(), name


def test_requirements_install_from_the_shipped_wheels_only(tmp_path):
    (tmp_path / "great_expectations-1.24.1-py3-none-any.whl").write_bytes(b"wheel")
    files = bundle_contents(STEPS_DIR / "validate.py", ("requirements.txt",), wheels=tmp_path)
    lines = files["requirements.txt"].decode().splitlines()
    assert lines[1:3] == ["--no-index", "--find-links wheels"]
    assert lines[3:] == (STEPS_DIR / "requirements.txt").read_text().splitlines()
    assert files["wheels/great_expectations-1.24.1-py3-none-any.whl"] == b"wheel"


def test_a_shipped_file_that_is_not_there_is_one_line():
    with pytest.raises(UsageError, match=r"^validate.py ships nothing.txt, which is not in "):
        bundle_contents(STEPS_DIR / "validate.py", ("nothing.txt",))


def test_the_bundle_is_byte_for_byte_the_same_from_the_same_files():
    first = step_bundle(STEPS_DIR / "evaluate.py")
    assert step_bundle(STEPS_DIR / "evaluate.py") == first
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        assert {m.mtime for m in tar.getmembers()} == {0}
        assert {(m.uid, m.gid, m.uname, m.gname) for m in tar.getmembers()} == {(0, 0, "", "")}


def test_validate_runs_from_its_extracted_bundle_alone(tmp_path):
    """`python validate.py --help` in a folder holding only the bundle, with the repository
    off the path (no site processing, so no editable install: only the libraries)."""
    with tarfile.open(
        fileobj=io.BytesIO(step_bundle(STEPS_DIR / "validate.py")), mode="r:gz"
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
    """stepkit travels into containers that hold no `mlops` and no `model_build`: it may
    import what every image the steps run on has (scikit-learn included: both framework
    images ship it), and Great Expectations, whose wheels validate's bundle ships."""
    import ast

    from containers.images import load_images

    in_every_image = {"numpy", "pandas", "scikit-learn"}
    assert all(in_every_image <= set(image.packages) for image in load_images().values())
    allowed = set(sys.stdlib_module_names) | {
        "pandas", "numpy", "sklearn", "great_expectations", "stepkit"
    }  # fmt: skip
    for path in sorted((REPO_ROOT / "stepkit").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            assert {n.split(".")[0] for n in names} <= allowed, (path.name, names)
