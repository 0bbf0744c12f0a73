"""Deploys that recover (a stack left in ROLLBACK_COMPLETE), tearing a stage down with
`mlops endpoint stop --backend sagemaker`, the champion rule, and PR-scoped pipelines.

CloudFormation is botocore's Stubber here (moto neither fails a create nor keeps the
outputs of a change set); every request is still validated against the service model.
"""

from __future__ import annotations

import json

import boto3
import pytest
from _sagemaker_helpers import BUCKET, REGION, ROLE_ARN, create_package, pipeline_steps, strings
from botocore.stub import Stubber
from test_sagemaker_deploy import (
    NAMED,
    cloudformation_client,
    expect_change_set,
    missing_stack,
    stack,
    version,
)

from mlops.core.config import load_config
from mlops.core.errors import MlopsError
from mlops.core.stages import load_stage_config
from mlops.sagemaker.deploy import TEMPLATE, deploy_stack, stack_parameters, stop_stage
from mlops.sagemaker.pipeline_run import PLACEHOLDER_BUCKET, target_from

GROUP = load_config().model_package_group  # the fixture project's (tests/conftest.py)

ROLE = "arn:aws:iam::123456789012:role/cfn"
NAME = {"StackName": f"{GROUP}-staging"}


@pytest.fixture
def parameters(cfg):
    return stack_parameters(cfg, load_stage_config("staging"), version(), ROLE_ARN, BUCKET)


def test_a_stack_left_in_rollback_complete_is_deleted_and_created_again(parameters):
    client, lines = cloudformation_client(), []
    with Stubber(client) as stub:
        stub.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), NAME)
        stub.add_response("delete_stack", {}, {**NAME, "RoleARN": ROLE})
        stub.add_response("describe_stacks", stack("DELETE_IN_PROGRESS"), NAME)
        missing_stack(stub)  # gone: CloudFormation forgets a deleted stack's name
        expect_change_set(stub, "CREATE", parameters, role=ROLE)
        stub.add_response(
            "describe_change_set", {"Status": "CREATE_COMPLETE", "Changes": []}, NAMED
        )
        stub.add_response("execute_change_set", {}, NAMED)
        outputs = {"EndpointName": f"{GROUP}-staging", "ModelVersion": "2"}
        stub.add_response("describe_stacks", stack("CREATE_COMPLETE", outputs))
        result = deploy_stack(
            client,
            f"{GROUP}-staging",
            TEMPLATE.read_text(),
            parameters,
            lines.append,
            role_arn=ROLE,
            sleep=lambda s: None,
            poll=0,
        )
        stub.assert_no_pending_responses()
    assert (result.status, result.outputs["ModelVersion"]) == ("CREATE_COMPLETE", "2")
    assert "ROLLBACK_COMPLETE" in lines[0] and "deleting it to create it again" in lines[0]
    assert f"stack {GROUP}-staging: deleted" in lines


def test_a_stack_that_cannot_be_deleted_stops_the_deploy_with_the_reason(parameters):
    client = cloudformation_client()
    with Stubber(client) as stub:
        stub.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), NAME)
        stub.add_response("delete_stack", {}, NAME)
        failed = stack("DELETE_FAILED")
        failed["Stacks"][0]["StackStatusReason"] = f"Endpoint {GROUP}-staging: AccessDenied"
        stub.add_response("describe_stacks", failed, NAME)
        with pytest.raises(MlopsError, match=r"could not be deleted: Endpoint .*AccessDenied"):
            deploy_stack(
                client,
                f"{GROUP}-staging",
                "{}",
                parameters,
                lambda s: None,
                sleep=lambda s: None,
            )


def test_stop_deletes_the_stage_stack_with_the_cloudformation_role(cfg, monkeypatch):
    monkeypatch.setenv("MLOPS_CFN_ROLE_ARN", ROLE)
    client, lines = cloudformation_client(), []
    serving = stack("UPDATE_COMPLETE", {"EndpointName": f"{GROUP}-staging", "ModelVersion": "4"})
    monitoring = f"{GROUP}-staging-monitoring"
    no_monitoring = (
        "describe_stacks",
        "ValidationError",
        f"Stack with id {monitoring} does not exist",
        {"StackName": monitoring},
    )  # (tests/aws/test_sagemaker_deploy_monitoring.py stops a stage that has one)
    with Stubber(client) as stub:
        stub.add_client_error(*no_monitoring[:3], expected_params=no_monitoring[3])
        stub.add_response("describe_stacks", serving, NAME)
        stub.add_response("describe_stacks", serving, NAME)
        stub.add_response("delete_stack", {}, {**NAME, "RoleARN": ROLE})
        missing_stack(stub)
        assert stop_stage(cfg, "staging", lines.append, client, sleep=lambda s: None) == (
            4,
            f"{GROUP}-staging",
        )
        stub.add_client_error(*no_monitoring[:3], expected_params=no_monitoring[3])
        missing_stack(stub)
        assert stop_stage(cfg, "staging", lines.append, client) is None  # nothing left to stop
        stub.assert_no_pending_responses()
    assert lines == [f"deleting stack {GROUP}-staging", f"stack {GROUP}-staging: deleted"]


def test_stop_on_sagemaker_asks_first_and_ci_passes_yes(monkeypatch, capsys):
    from mlops.cli import run

    deleted: list[str] = []
    monkeypatch.setattr(
        "mlops.sagemaker.deploy.stop_stage",
        lambda cfg, stage, progress: deleted.append(stage) or (3, f"{GROUP}-{stage}"),
    )
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert run(["endpoint", "stop", "--stage", "prod", "--backend", "sagemaker"]) == 2
    assert "needs a confirmation: pass --yes" in capsys.readouterr().err
    assert deleted == []

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "staging")  # the wrong stage
    assert run(["endpoint", "stop", "--stage", "prod", "--backend", "sagemaker"]) == 1
    assert deleted == [] and "nothing deleted" in capsys.readouterr().out
    monkeypatch.setattr("builtins.input", lambda prompt: "prod")
    assert run(["endpoint", "stop", "--stage", "prod", "--backend", "sagemaker"]) == 0
    assert run(["endpoint", "stop", "--stage", "prod", "--backend", "sagemaker", "--yes"]) == 0
    assert deleted == ["prod", "prod"]
    assert f"deleted stack {GROUP}-prod (it served version 3)" in capsys.readouterr().out


# ---- the champion: what prod serves, on SageMaker as locally -------------------------------


def test_champion_is_what_prod_serves_not_the_latest_approved(aws, cfg):
    from mlops.sagemaker.champion import resolve_champion
    from mlops.sagemaker.registry import SageMakerRegistry

    first = create_package("Approved", model_url="s3://b/v1/model.tar.gz")
    create_package("Approved", model_url="s3://b/v2/model.tar.gz")
    registry = SageMakerRegistry(cfg.model_package_group, boto3.client("sagemaker"), None)
    client = cloudformation_client()
    prod = {"StackName": f"{GROUP}-prod"}
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id x does not exist"
        )
        assert resolve_champion(registry, client).version == 2  # nothing deployed: newest
        outputs = {
            "EndpointName": f"{GROUP}-prod",
            "ModelVersion": "1",
            "ModelPackageArn": first,
        }
        stub.add_response("describe_stacks", stack("UPDATE_COMPLETE", outputs), prod)
        champion = resolve_champion(registry, client)
    assert (champion.version, champion.model_uri) == (1, "s3://b/v1/model.tar.gz")


# ---- PR-scoped pipelines --------------------------------------------------------------------


@pytest.fixture(scope="module")
def pr_rendered(cfg, target):
    from mlops.sagemaker.pipeline_definition import pr_target, render_pipeline

    return render_pipeline(cfg, pr_target(cfg, target, "7"))


def test_a_pr_pipeline_has_its_own_name_and_prefix_and_registers_nothing(pr_rendered, cfg):
    group = cfg.model_package_group
    definition = json.loads(pr_rendered.definition)
    assert pr_rendered.name == f"{group}-pr-7"
    steps = pipeline_steps(definition)
    assert "register" not in steps and "gate-failed" in steps
    assert not any(s["Type"] == "RegisterModel" for s in steps.values())
    assert "ModelPackageGroupName" not in pr_rendered.definition
    ours = [s for s in strings(definition) if s.startswith(f"s3://{BUCKET}/")]
    assert ours and all(s.startswith(f"s3://{BUCKET}/{group}/pr/7/") for s in ours), ours
    assert all(u.uri.startswith(f"s3://{BUCKET}/{group}/pr/7/") for u in pr_rendered.uploads)


def task_configs(tmp_path) -> dict[str, str | None]:
    """A config of each task the config accepts (None: the fixture project's own)."""
    from typing import get_args

    from fixtures.tasks import CHURN_CONFIG, project_config

    from mlops.core.config import Config

    configs = {
        load_config().task: None,
        "binary_classification": str(project_config(CHURN_CONFIG, tmp_path)),
    }
    assert set(configs) == set(get_args(Config.model_fields["task"].annotation)), (
        "a task without a PR-scope render: add its fixture config here"
    )
    return configs


def test_every_tasks_pr_definition_registers_nothing_and_says_what_it_runs(
    tmp_path, monkeypatch, capsys
):
    """The PR execution role cannot CreateModelPackage: a register step in any task's PR
    pipeline would fail every passing PR run. `mlops pipeline definition --scope pr` is what
    a reviewer reads."""
    from mlops.cli import run

    monkeypatch.setenv("MLOPS_PR_NUMBER", "7")
    for task, config in task_configs(tmp_path).items():
        out = tmp_path / f"{task}.json"
        flags = ["--config", config] if config else []
        code = run(["pipeline", "definition", "--scope", "pr", "--out", str(out), *flags])
        assert code == 0, task
        steps = pipeline_steps(json.loads(out.read_text()))
        assert "register" not in steps and "gate-failed" in steps, task
        assert not any(s["Type"] == "RegisterModel" for s in steps.values()), task
        group = load_config(config).model_package_group
        line = next(x for x in capsys.readouterr().err.splitlines() if x.startswith(group))
        assert line == (
            f"{group}-pr-7: validate, preprocess, train, evaluate, gate, gate-failed; "
            f"registers nothing; writes under s3://{PLACEHOLDER_BUCKET}/{group}/pr/7/"
        ), task


def test_scope_pr_needs_a_pr_number(cfg, monkeypatch):
    import argparse

    from mlops.core.errors import UsageError

    args = argparse.Namespace(region=REGION, role_arn=ROLE_ARN, bucket=BUCKET, scope="pr")
    monkeypatch.delenv("MLOPS_PR_NUMBER", raising=False)
    monkeypatch.setenv("GITHUB_REF", "refs/heads/main")
    with pytest.raises(UsageError, match="--scope pr needs the PR number"):
        target_from(cfg, args)
    monkeypatch.setenv("GITHUB_REF", "refs/pull/12/merge")
    target = target_from(cfg, args)
    assert (target.pipeline_name, target.prefix, target.registers) == (
        f"{cfg.model_package_group}-pr-12",
        f"{cfg.model_package_group}/pr/12",
        False,
    )
    assert target_from(cfg, argparse.Namespace(**{**vars(args), "scope": "main"})).registers


def test_main_pipeline_registers_pending_whatever_the_caller_passes(definition):
    """The approval status is not a parameter: StartPipelineExecution cannot set it."""
    names = {p["Name"] for p in definition["Parameters"]}
    assert not any("Approval" in n for n in names)
    (register,) = [s for s in pipeline_steps(definition).values() if s["Type"] == "RegisterModel"]
    assert register["Arguments"]["ModelApprovalStatus"] == "PendingManualApproval"
