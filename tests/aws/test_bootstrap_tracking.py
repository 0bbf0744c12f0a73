"""bootstrap.yml for tracking and tuning: the MLflow server is optional (off by default),
its output is the variable the SageMaker backend reads, logging runs grants nothing over
the registry, and the execution role may run the tuning jobs the pipeline renders."""

from __future__ import annotations

from pathlib import Path

from cfnlint.api import ManualArgs, lint
from cfnlint.decode.cfn_yaml import loads as load_cfn_yaml

from mlops.sagemaker.tracking import TRACKING_ARN_ENV

BOOTSTRAP = Path(__file__).resolve().parents[2] / "model_deploy" / "bootstrap.yml"


def template() -> dict:
    return load_cfn_yaml(BOOTSTRAP.read_text())


def actions(policy: dict) -> set[str]:
    found: set[str] = set()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        value = statement["Action"]
        found.update([value] if isinstance(value, str) else value)
    return found


def test_the_tracking_server_is_optional_and_off_by_default():
    t = template()
    assert t["Parameters"]["CreateMlflowTrackingServer"]["Default"] == "false"
    for name in ("MlflowTrackingServer", "MlflowTrackingServerRole", "MlflowTrackingPolicy"):
        assert t["Resources"][name]["Condition"] == "CreateMlflowServer", name
    output = t["Outputs"]["MlflowTrackingServerArn"]
    assert output["Condition"] == "CreateMlflowServer"
    assert TRACKING_ARN_ENV in output["Description"]


def test_with_the_server_on_the_template_still_lints_clean():
    text = BOOTSTRAP.read_text().replace(
        'CreateMlflowTrackingServer:\n    Type: String\n    Default: "false"',
        'CreateMlflowTrackingServer:\n    Type: String\n    Default: "true"',
    )
    assert text != BOOTSTRAP.read_text()
    assert [str(m) for m in lint(text, config=ManualArgs(regions=["us-east-1"]))] == []


def test_logging_runs_grants_nothing_over_models_or_deploys():
    policy = template()["Resources"]["MlflowTrackingPolicy"]
    assert policy["Properties"]["Roles"] == [{"Ref": "PrRole"}, {"Ref": "BuildRole"}]
    granted = actions(policy)
    assert all(a.startswith(("sagemaker-mlflow:", "sagemaker:")) for a in granted)
    assert not any("ModelPackage" in a or "Endpoint" in a or a == "sagemaker:*" for a in granted)
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        assert statement["Resource"] == {
            "Fn::GetAtt": ["MlflowTrackingServer", "TrackingServerArn"]
        }


def test_the_execution_role_may_run_tuning_jobs():
    policy = template()["Resources"]["SageMakerTuningPolicy"]
    assert policy["Properties"]["Roles"] == [
        {"Ref": "SageMakerExecutionRole"},
        {"Ref": "PrSageMakerExecutionRole"},
    ]
    assert {
        "sagemaker:CreateHyperParameterTuningJob",
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:StopHyperParameterTuningJob",
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
    } <= actions(policy)
