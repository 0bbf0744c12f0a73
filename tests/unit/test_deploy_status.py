"""`mlops endpoint status`: warnings, the env format CI reads, the SageMaker variant."""

import pytest

import mlops.core.deploy as deploy
import mlops.sagemaker.deploy as sagemaker_deploy
from mlops.cli import run
from mlops.cli.backends import deployment_log
from mlops.cli.deploy import env_lines
from mlops.core.config import load_config
from mlops.core.errors import MlopsError
from mlops.core.registry import APPROVED, PENDING, REJECTED, ModelVersion
from mlops.core.stages import load_stage_config
from mlops.local.deploy_history import list_deployments


def test_warnings_name_what_to_act_on():
    assert deploy.status_warnings("prod", 2, APPROVED, "healthy", None) == []
    assert deploy.status_warnings("prod", 2, REJECTED, "healthy", None) == [
        "WARNING: version 2 is Rejected but serving prod"
    ]
    assert deploy.status_warnings("prod", 2, PENDING, "healthy", 2) == [
        "WARNING: version 2 is PendingManualApproval but serving prod"
    ]
    pinned = deploy.status_warnings("prod", 2, APPROVED, "down", 1)
    assert pinned == [
        "WARNING: the prod endpoint is down",
        "WARNING: prod-config.json pins version 1 but version 2 serves prod: "
        "run `mlops deploy --stage prod`",
    ]


def test_env_lines_for_one_stage_and_for_all():
    report = [
        {"stage": "staging", "version": 3, "url": "http://127.0.0.1:8081",
         "endpoint_name": "g-staging", "health": "healthy", "approval_status": APPROVED},
        {"stage": "prod", "version": None, "url": None, "endpoint_name": None,
         "health": "not deployed", "approval_status": None},
    ]  # fmt: skip
    assert env_lines(report[1:], prefixed=False) == [
        "version=",
        "url=",
        "endpoint_name=",
        "health=not deployed",
        "approval_status=",
    ]
    assert "staging_version=3" in env_lines(report, prefixed=True)
    assert "prod_version=" in env_lines(report, prefixed=True)


def stacks_serving(live: dict):
    """Stands in for the CloudFormation read: the stack of each stage says what it serves."""
    return lambda cfg, stage_config, registry: live.get(stage_config.stage)


class FakeRegistry:
    group = "energy-costs"

    def describe(self, version):
        status = REJECTED if version == 4 else APPROVED
        return ModelVersion(self.group, version, status, "", {}, {}, "s3://b/m.tar.gz")


def test_sagemaker_status_reads_the_stacks(monkeypatch, capsys):
    monkeypatch.setattr(
        sagemaker_deploy, "live_version", stacks_serving({"prod": (4, "energy-costs-prod")})
    )
    cfg, registry = load_config(), FakeRegistry()
    deployer = sagemaker_deploy.SageMakerDeployer(cfg, registry)
    prod = deployer.stage_status("prod")
    assert (prod["version"], prod["endpoint_name"], prod["approval_status"]) == (
        4,
        "energy-costs-prod",
        REJECTED,
    )
    assert prod["warnings"] == ["WARNING: version 4 is Rejected but serving prod"]
    assert deployer.stage_status("staging")["deployed"] is False
    assert load_stage_config("prod").stage == "prod"


def test_status_env_lines_through_the_cli(home, capsys):
    assert run(["endpoint", "status", "--stage", "prod", "--env"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "version=" and "health=not deployed" in out
    assert run(["endpoint", "status", "--env"]) == 0  # every stage: keys prefixed
    assert "staging_version=" in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(
    "argv",
    [
        ["endpoint", "status", "--format", "env"],  # the old twin of --env/--json is gone
        ["endpoint", "status", "--json", "--env"],
    ],
)
def test_status_output_flags(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        run(argv)
    assert exc.value.code == 2


@pytest.mark.parametrize("argv", [["deploy", "--stage", "qa"], ["endpoint", "stop"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        run(argv)
    assert exc.value.code == 2


class FakeDeployment:
    endpoint_name = "energy-costs-staging"
    smoke = None


def test_sagemaker_deploys_dispatch_with_the_resolved_version_and_are_recorded(home, monkeypatch):
    calls = []

    def deploy_stage(cfg, stage_config, version, registry, progress):
        calls.append((stage_config.stage, version.version))
        return FakeDeployment()

    monkeypatch.setattr(sagemaker_deploy, "deploy_stage", deploy_stage)
    cfg, registry = load_config(), FakeRegistry()
    deployer = sagemaker_deploy.SageMakerDeployer(cfg, registry)
    log = deployment_log(cfg, home)
    staging = load_stage_config("staging")
    outcome = deploy.deploy(staging, registry, deployer, log, 3, lambda _: None)
    assert calls == [("staging", 3)] and outcome.url == "energy-costs-staging"
    with pytest.raises(MlopsError, match="Rejected, not Approved"):
        deploy.deploy(staging, registry, deployer, log, 4)
    rows = list_deployments(home, cfg.model_package_group)
    assert [(r["backend"], r["version"], r["result"]) for r in rows] == [
        ("sagemaker", 4, "refused"),
        ("sagemaker", 3, "succeeded"),
    ]
