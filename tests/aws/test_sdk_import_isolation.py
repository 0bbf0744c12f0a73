"""Only `mlops pipeline definition|run --backend sagemaker` may import the SageMaker SDK (its
import costs seconds). Each command runs in a fresh interpreter that then reports whether
`sagemaker` was imported; test_pipeline_definition.py shows the same probe sees the SDK when
the definition is rendered."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from mlops.cli import run
try:
    code = run({argv!r})
except SystemExit as exc:  # --help
    code = exc.code
print("sagemaker" in sys.modules, code)
"""


@pytest.mark.parametrize(
    ("argv", "exit_code"),
    [
        (["--help"], "0"),
        (["models", "list"], "0"),
        (["data", "generate", "--rows", "5", "--out", "{tmp}/d.csv"], "0"),
        (["pipeline", "run", "--help"], "0"),
        (["deploy", "--help"], "0"),
        # The SageMaker registry is boto3 only; with no AWS here it fails, in one line.
        (["models", "list", "--backend", "sagemaker"], "1"),
    ],
    ids=["help", "models-list", "data-generate", "run-help", "deploy-help", "models-sagemaker"],
)
def test_command_does_not_import_the_sagemaker_sdk(argv, exit_code, tmp_path, home, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    argv = [a.format(tmp=tmp_path) for a in argv]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    imported, code = proc.stdout.strip().splitlines()[-1].split()
    assert code == exit_code, proc.stderr
    assert imported == "False"
