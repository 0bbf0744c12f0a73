"""Fixtures of the AWS-API tests: one offline render per session, moto, fake credentials.

Nothing here reaches AWS: moto answers in process, and the pipeline definition is
rendered by the real SageMaker SDK with every S3 write recorded instead of sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _sagemaker_helpers import BUCKET, REGION, ROLE_ARN, pipeline_steps

from mlops.core.config import load_config
from mlops.core.graph import load_pipeline


@pytest.fixture(scope="session", autouse=True)
def wheels_dir(tmp_path_factory):
    """What `make wheels` leaves for the validate step, as one small fixed file: bundles (and
    so the golden definition) stay deterministic, and runs find the wheels they require."""
    from mlops.sagemaker.pipeline_definition import WHEELS_ENV

    root = tmp_path_factory.mktemp("wheels")
    (root / "validate").mkdir()
    (root / "validate" / "great_expectations-1.24.1-py3-none-any.whl").write_bytes(b"wheel\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(WHEELS_ENV, str(root))
        yield root


@pytest.fixture(scope="session")
def cfg():
    return load_config()


@pytest.fixture(scope="session")
def graph(cfg):
    """The fixture project's declared pipeline (model_build/pipeline.py)."""
    return load_pipeline(cfg)


@pytest.fixture(scope="session")
def target(cfg):
    from mlops.sagemaker.pipeline_definition import Target

    return Target(region=REGION, role_arn=ROLE_ARN, bucket=BUCKET, prefix=cfg.model_package_group)


@pytest.fixture(scope="session")
def rendered(cfg, target):
    """The pipeline rendered once per session (the SDK import alone costs seconds)."""
    from mlops.sagemaker.pipeline_definition import render_pipeline

    return render_pipeline(cfg, target)


@pytest.fixture(scope="session")
def definition(rendered) -> dict:
    return json.loads(rendered.definition)


@pytest.fixture(scope="session")
def steps(definition) -> dict[str, dict]:
    return pipeline_steps(definition)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """moto for every AWS service, with fake credentials and no ~/.aws of the user."""
    from moto import mock_aws

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    with mock_aws():
        yield
