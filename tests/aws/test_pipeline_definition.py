"""The SageMaker pipeline definition: built offline, the expected steps, parameters and gate."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from _sagemaker_helpers import ROLE_ARN, pipeline_steps, strings

from mlops.core.lineage import run_parameters
from mlops.sagemaker import pipeline_definition as p
from stepkit.bundle import bundle_files as stepkit_bundle

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_steps_and_their_order(definition):
    top = [(s["Name"], s["Type"]) for s in definition["Steps"]]
    assert top == [
        ("validate", "Processing"),
        ("preprocess", "Processing"),
        ("train", "Training"),
        ("evaluate", "Processing"),
        ("gate", "Condition"),
    ]
    assert [s.get("DependsOn") for s in definition["Steps"][:4]] == [
        None,
        ["validate"],
        ["preprocess"],
        ["train"],
    ]
    gate = definition["Steps"][4]["Arguments"]
    assert [(s["Name"], s["Type"]) for s in gate["IfSteps"]] == [("register", "RegisterModel")]
    assert [(s["Name"], s["Type"]) for s in gate["ElseSteps"]] == [("gate-failed", "Fail")]


def test_parameters_default_to_the_config(definition, cfg, target):
    params = {q["Name"]: q for q in definition["Parameters"]}
    sm = cfg.sagemaker
    expected = {
        "InputDataUri": ("String", f"s3://{target.bucket}/energy-costs/data/input/"),
        "ProcessingInstanceType": ("String", sm.processing_instance_type),
        "TrainingInstanceType": ("String", sm.training_instance_type),
        "MaxMse": ("Float", cfg.gate.max_mse),
        "MinR2": ("Float", cfg.gate.min_r2),
        "MaxRegressionPct": ("Float", cfg.gate.max_regression_pct),
        "GitCommit": ("String", "unknown"),
        "PrNumber": ("String", "none"),
        "DataSha256": ("String", "unknown"),
    }
    for name, (kind, default) in expected.items():
        assert (params[name]["Type"], params[name]["DefaultValue"]) == (kind, default), name
    champion = params["ChampionModelUri"]["DefaultValue"]
    assert champion.startswith(f"s3://{target.bucket}/energy-costs/code/")
    assert champion.endswith("/no-champion.txt")
    # No caller may choose the approval status of what the pipeline registers.
    assert "ModelApprovalStatus" not in params


def test_images_instances_and_caching(steps, cfg):
    versions = cfg.sagemaker.image_versions
    sklearn = f"sagemaker-scikit-learn:{versions['sklearn']}-cpu-py3"
    xgboost = f"sagemaker-xgboost:{versions['xgboost']}"
    for name, image in (("validate", sklearn), ("preprocess", sklearn), ("evaluate", xgboost)):
        args = steps[name]["Arguments"]
        assert args["AppSpecification"]["ImageUri"].endswith(image), name
        assert args["ProcessingResources"]["ClusterConfig"]["InstanceType"] == {
            "Get": "Parameters.ProcessingInstanceType"
        }
        assert args["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
        assert args["RoleArn"] == ROLE_ARN
    train = steps["train"]["Arguments"]
    assert train["AlgorithmSpecification"]["TrainingImage"].endswith(xgboost)
    # A constant: no run can ask for instances the steps would not use.
    assert train["ResourceConfig"]["InstanceCount"] == 1
    for name in ("validate", "preprocess", "train", "evaluate"):
        assert steps[name]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}


def test_gate_checks_mse_r2_and_the_champion_limit(steps):
    gate = steps["gate"]["Arguments"]["Conditions"]
    evaluation = {"Get": "Steps.evaluate.PropertyFiles.evaluation"}

    def json_get(path):
        return {"Std:JsonGet": {"PropertyFile": evaluation, "Path": path}}

    mse, r2 = json_get("regression_metrics.mse.value"), json_get("regression_metrics.r2.value")
    assert gate == [
        {"Type": "LessThanOrEqualTo", "LeftValue": mse, "RightValue": {"Get": "Parameters.MaxMse"}},
        {
            "Type": "GreaterThanOrEqualTo",
            "LeftValue": r2,
            "RightValue": {"Get": "Parameters.MinR2"},
        },
        {
            "Type": "LessThanOrEqualTo",
            "LeftValue": mse,
            "RightValue": json_get("champion_mse_limit"),
        },
        # the fixture project has a golden set (data.golden): gate.py's golden rules
        {
            "Type": "GreaterThanOrEqualTo",
            "LeftValue": json_get("golden.regression_metrics.r2.value"),
            "RightValue": {"Get": "Parameters.MinR2"},
        },
        {
            "Type": "LessThanOrEqualTo",
            "LeftValue": json_get("golden.regression_metrics.mse.value"),
            "RightValue": json_get("golden.champion_mse_limit"),
        },
    ]
    assert steps["evaluate"]["PropertyFiles"] == [
        {
            "PropertyFileName": "evaluation",
            "OutputName": "evaluation",
            "FilePath": "evaluation.json",
        }
    ]


def test_fail_message_names_every_rule_with_its_values(steps, graph):
    values = steps["gate-failed"]["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    text = "".join(v if isinstance(v, str) else json.dumps(v) for v in values)
    assert text.startswith("quality gate failed")
    for rule in graph.gate:
        assert f" {rule.label}: {rule.metric} " in text, rule.label
        assert f'"Path": "{rule.metric}"' in text, rule.label
    for fragment in (
        ' <= MaxMse {"Get": "Parameters.MaxMse"}',
        ' >= MinR2 {"Get": "Parameters.MinR2"}',
        ' <= golden.champion_mse_limit {"Std:JsonGet"',
    ):
        assert fragment in text


def test_registration_pending_with_metrics_and_lineage(steps, cfg):
    args = steps["register"]["Arguments"]
    assert args["ModelPackageGroupName"] == cfg.model_package_group
    assert args["ModelApprovalStatus"] == "PendingManualApproval"  # a constant, not a parameter
    quality = args["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert quality["ContentType"] == "application/json"
    assert quality["S3Uri"]["Std:Join"]["Values"] == [
        {"Get": "Steps.evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"},
        "evaluation.json",
    ]
    baseline = args["ModelMetrics"]["ModelDataQuality"]["Statistics"]["S3Uri"]["Std:Join"]
    assert baseline["Values"][1] == "baseline.json"
    metadata = args["CustomerMetadataProperties"]
    assert metadata["git_commit"] == {"Get": "Parameters.GitCommit"}
    assert metadata["pr_number"] == {"Get": "Parameters.PrNumber"}
    assert metadata["data_sha256"] == {"Get": "Parameters.DataSha256"}
    assert metadata["data_file"] == {"Get": "Parameters.InputDataUri"}
    assert metadata["run_id"] == {"Get": "Execution.PipelineExecutionId"}
    # where the version's raw held-out rows are: the step's own output, cached or not
    assert metadata["held_out_uri"] == {
        "Get": "Steps.preprocess.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"
    }
    # the run's settings as the local lineage records them (mlops.core.lineage)
    flat = {k: v for k, v in metadata.items() if k.startswith("params.")}
    assert flat == {
        f"params.{section}.{key}": str(value)
        for section, values in run_parameters(cfg).items()
        for key, value in values.items()
    }
    assert metadata["params.train.model"] == "xgboost"
    assert metadata["params.train.max_depth"] == str(cfg.train.hyperparameters["max_depth"])
    assert metadata["params.gate.max_mse"] == str(cfg.gate.max_mse)
    container = args["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == {"Get": "Steps.train.ModelArtifacts.S3ModelArtifacts"}
    assert container["Image"].endswith(
        f"sagemaker-xgboost:{cfg.sagemaker.image_versions['xgboost']}"
    )
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "endpoint_handler.py"
    assert args["ModelPackageDescription"] == (
        "energy-costs: xgboost model, served on the SageMaker xgboost 3.2-0 image"
    )


def bundle_files(rendered, uri: str) -> dict[str, bytes]:
    body = next(u.body for u in rendered.uploads if u.uri == uri)
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_every_code_object_the_definition_names_is_uploaded(rendered, definition, target):
    uploaded = {u.uri for u in rendered.uploads}
    named = {s for s in strings(definition) if s.startswith(target.uri("code"))}
    assert len(named) >= 10, named
    for uri in named:
        assert uri in uploaded or any(u.startswith(uri.rstrip("/") + "/") for u in uploaded), uri


def test_serving_starts_from_the_models_own_code_with_no_index(rendered, steps):
    """The serving container copies SAGEMAKER_SUBMIT_DIRECTORY to /opt/ml/code and runs
    `pip install .` there (sagemaker-containers `_modules.import_module`): the folder is the
    artifact's code/ (extracted by SageMaker before the container starts, so no S3 download
    from the instance), and pip builds with the image's setuptools and never asks an index
    (pip >= 25.3 fetched setuptools from one: no endpoint in a VPC without internet started)."""
    env = steps["register"]["Arguments"]["InferenceSpecification"]["Containers"][0]["Environment"]
    assert env == {
        "SAGEMAKER_PROGRAM": "endpoint_handler.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "PIP_NO_INDEX": "1",
        "PIP_NO_BUILD_ISOLATION": "0",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    # nothing for pip to fetch: the handler's bundle has no requirements file, and no
    # serving bundle is uploaded any more (the model carries its code)
    serving = stepkit_bundle(REPO_ROOT / "model_build" / "steps" / "endpoint_handler.py", REPO_ROOT)
    assert "requirements.txt" not in serving and "setup.py" not in serving
    assert not any(s.startswith("s3://") for s in env.values())


def test_the_training_bundle_ships_the_serving_code_it_copies_into_the_model(rendered, steps):
    """train.py writes code/ into the artifact from its own folder: in the training job
    that is the bundle, so the handler and its imports must be in it."""
    channels = {c["ChannelName"]: c for c in steps["train"]["Arguments"]["InputDataConfig"]}
    code = channels["code"]["DataSource"]["S3DataSource"]["S3Uri"]
    files = bundle_files(rendered, code)
    assert {"train.py", "families.py", "model_xgboost.py", "model_sklearn.py"} <= set(files)
    serving = stepkit_bundle(REPO_ROOT / "model_build" / "steps" / "endpoint_handler.py", REPO_ROOT)
    assert set(serving) <= set(files)


def copy_checkout(destination: Path) -> Path:
    """The files a render reads, in another folder (as a second checkout would hold them)."""
    for folder in ("model_build/steps", "stepkit"):
        shutil.copytree(
            REPO_ROOT / folder,
            destination / folder,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    return destination


def test_same_code_elsewhere_renders_the_same_bytes(cfg, target, rendered, tmp_path):
    again = p.render_pipeline(cfg, target, repo_root=copy_checkout(tmp_path))
    assert again.definition == rendered.definition
    assert again.uploads == rendered.uploads


def test_editing_one_step_changes_only_its_own_keys(cfg, target, definition, tmp_path):
    checkout = copy_checkout(tmp_path)
    script = checkout / "model_build" / "steps" / "preprocess.py"
    script.write_text(script.read_text() + "\n# a change\n")
    changed = pipeline_steps(
        json.loads(p.render_pipeline(cfg, target, repo_root=checkout).definition)
    )
    before = pipeline_steps(definition)
    differing = {name for name in before if before[name] != changed[name]}
    assert differing == {"preprocess"}


def test_definition_command_runs_offline_without_credentials(tmp_path):
    """A fresh process with no AWS settings at all; it does import the SDK (the check below
    that other commands don't is therefore able to fail)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_"))}
    env.update(
        HOME=str(tmp_path),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    out = tmp_path / "definition.json"
    code = (
        "import sys\nfrom mlops.cli import run\n"
        f"rc = run(['pipeline', 'definition', '--out', {str(out)!r}])\n"
        "print('sagemaker' in sys.modules)\nsys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
    assert "placeholder role/bucket" in proc.stderr
    written = json.loads(out.read_text())
    assert [s["Name"] for s in written["Steps"]] == [
        "validate",
        "preprocess",
        "train",
        "evaluate",
        "gate",
    ]
    assert written["Steps"][0]["Arguments"]["RoleArn"] == (
        "arn:aws:iam::000000000000:role/mlops-sagemaker-execution"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role-arn", "mlops-role", "--bucket", "b"], "full IAM role ARN"),
    ],
)
def test_bad_target_is_a_usage_error(args, message, capsys):
    from mlops.cli import run

    assert run(["pipeline", "definition", *args]) == 2
    assert message in capsys.readouterr().err


def test_an_image_version_the_sdk_does_not_know_is_one_line_naming_the_key(cfg, target, rendered):
    from mlops.core.errors import UsageError

    versions = {**cfg.sagemaker.image_versions, "xgboost": "9.9-9"}
    bad = cfg.model_copy(
        update={"sagemaker": cfg.sagemaker.model_copy(update={"image_versions": versions})}
    )
    with pytest.raises(UsageError) as err:
        p.render_pipeline(bad, target)
    message = str(err.value)
    assert "sagemaker.image_versions.xgboost '9.9-9'" in message and "\n" not in message


def test_an_image_without_a_configured_version_is_one_line_naming_the_step(cfg, target):
    from mlops.core.errors import UsageError

    versions = {"sklearn": cfg.sagemaker.image_versions["sklearn"]}
    bad = cfg.model_copy(
        update={"sagemaker": cfg.sagemaker.model_copy(update={"image_versions": versions})}
    )
    with pytest.raises(UsageError, match="step train runs on the 'xgboost' image, but config "):
        p.render_pipeline(bad, target)


def test_validate_installs_only_the_wheels_its_bundle_ships(rendered, steps, wheels_dir):
    """No job needs the internet: the requirements file forbids an index, and the wheels
    are in the bundle (works in a VPC without NAT and with network isolation)."""
    inputs = steps["validate"]["Arguments"]["ProcessingInputs"]
    code = next(i["S3Input"]["S3Uri"] for i in inputs if i["InputName"] == "code")
    bundle = code + "sourcedir.tar.gz"  # the code prefix the job extracts the bundle from
    files = bundle_files(rendered, bundle)
    lines = files["requirements.txt"].decode().splitlines()
    assert lines[1:3] == ["--no-index", "--find-links wheels"]
    assert "great-expectations==1.24.1" in lines
    shipped = sorted(p.name for p in (wheels_dir / "validate").glob("*.whl"))
    assert sorted(n.removeprefix("wheels/") for n in files if n.startswith("wheels/")) == shipped
    assert rendered.missing_wheels == ()


def test_a_render_without_wheels_names_the_step_that_lacks_them(cfg, target, tmp_path):
    from mlops.sagemaker.pipeline_definition import render_pipeline

    rendered = render_pipeline(cfg, target, wheels_dir=tmp_path)
    assert rendered.missing_wheels == ("validate",)


def test_a_declared_parameter_named_like_one_of_the_templates_is_refused(cfg, target, graph):
    """A Param named GitCommit would silently become the lineage's commit parameter."""
    from dataclasses import replace

    from mlops.core.errors import UsageError
    from mlops.core.graph import Param, Rule

    rule = Rule("x", "regression_metrics.mse.value", "<=", Param("GitCommit", 1.0))
    with pytest.raises(UsageError, match="Param GitCommit has the name of a pipeline parameter"):
        p.render_pipeline(cfg, target, replace(graph, gate=(rule,)))
