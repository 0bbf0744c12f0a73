"""The SageMaker definition of a binary classifier with string categorical features (the
churn fixture project): same steps and arguments as the local graph, a condition step
reading SageMaker's binary_classification_metrics, and the classifier's thresholds as
pipeline parameters."""

from __future__ import annotations

import json

import pytest
from _sagemaker_helpers import BUCKET, REGION, ROLE_ARN, pipeline_steps
from fixtures.tasks import CHURN_CONFIG, project_config
from test_parity import resolve

from mlops.core.config import load_config
from mlops.core.graph import load_pipeline
from stepkit.metrics import champion_limit

pytestmark = pytest.mark.aws


@pytest.fixture(scope="module")
def churn(tmp_path_factory):
    from mlops.sagemaker.pipeline_definition import Target, render_pipeline

    cfg = load_config(project_config(CHURN_CONFIG, tmp_path_factory.mktemp("churn")))
    target = Target(REGION, ROLE_ARN, BUCKET, cfg.model_package_group)
    graph = load_pipeline(cfg)
    definition = json.loads(render_pipeline(cfg, target, graph).definition)
    return cfg, graph, definition, pipeline_steps(definition)


def json_get(path: str) -> dict:
    evaluation = {"Get": "Steps.evaluate.PropertyFiles.evaluation"}
    return {"Std:JsonGet": {"PropertyFile": evaluation, "Path": path}}


def test_gate_reads_auc_and_log_loss_from_the_classification_report(churn):
    _, _, _, steps = churn
    auc = json_get("binary_classification_metrics.auc.value")
    loss = json_get("binary_classification_metrics.log_loss.value")
    assert steps["gate"]["Arguments"]["Conditions"] == [
        {"Type": "GreaterThanOrEqualTo", "LeftValue": auc,
         "RightValue": {"Get": "Parameters.MinAuc"}},
        {"Type": "LessThanOrEqualTo", "LeftValue": loss,
         "RightValue": {"Get": "Parameters.MaxLogLoss"}},
        {"Type": "LessThanOrEqualTo", "LeftValue": loss,
         "RightValue": json_get("champion_log_loss_limit")},
    ]  # fmt: skip
    message = json.dumps(steps["gate-failed"]["Arguments"]["ErrorMessage"])
    assert " >= MinAuc " in message and "Parameters.MaxLogLoss" in message
    # the classifier's main pipeline registers when the gate passes
    assert [s["Name"] for s in steps["gate"]["Arguments"]["IfSteps"]] == ["register"]


def test_thresholds_are_the_configs_numbers_and_no_regression_parameter_is_left(churn):
    cfg, graph, definition, _ = churn
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert defaults["MinAuc"] == graph.params["MinAuc"].value == cfg.gate.min_auc
    assert defaults["MaxLogLoss"] == graph.params["MaxLogLoss"].value == cfg.gate.max_log_loss
    assert defaults["MaxRegressionPct"] == cfg.gate.max_regression_pct
    assert "MaxMse" not in defaults and "MinR2" not in defaults


@pytest.mark.parametrize("name", ["validate", "preprocess", "evaluate"])
def test_processing_steps_get_the_task_arguments(churn, name):
    _, graph, definition, steps = churn
    args = steps[name]["Arguments"]["AppSpecification"]["ContainerArguments"]
    resolved = [resolve(a, definition) for a in args]
    assert resolved == [str(a) for a in graph.step(name).arguments]
    if name == "preprocess":
        assert resolved[resolved.index("--task") + 1] == "binary_classification"
        assert resolved[resolved.index("--categorical") + 1] == "plan,region"


def test_training_gets_categories_labels_and_threshold(churn):
    _, graph, _, steps = churn
    hp = steps["train"]["Arguments"]["HyperParameters"]
    assert hp["task"] == "binary_classification"
    assert hp["categorical"] == "plan,region"
    assert (hp["positive_label"], hp["threshold"], hp["max_categories"]) == ("yes", "0.5", "50")
    assert hp == {k: str(v) for k, v in graph.step("train").hyperparameters.items()}


@pytest.mark.parametrize(("champion", "pct"), [(0.4, 5.0), (0.25, 0.0)])
def test_the_log_loss_limit_evaluate_writes_is_the_champions_times_the_allowance(champion, pct):
    report = {"binary_classification_metrics": {"log_loss": {"value": champion}}}
    limit = champion_limit("binary_classification", report, pct)
    assert limit == pytest.approx(champion * (1 + pct / 100), rel=1e-12)


def test_the_sagemaker_registry_reads_a_classifiers_evaluation(aws):
    """evaluation.json as the evaluate step writes it, registered as the RegisterModel step
    does (ModelMetrics.ModelQuality), read back by the registry as the task's metrics."""
    import boto3
    import numpy as np

    from mlops.sagemaker.registry import SageMakerRegistry
    from stepkit.metrics import classification_metrics

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    scores = np.clip(0.4 * y + rng.uniform(0, 0.6, 300), 0, 1)
    evaluation = {"binary_classification_metrics": classification_metrics(y, scores, 0.5)}
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    key = "churn/runs/exec1/evaluate/evaluation/evaluation.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(evaluation, allow_nan=False))
    sagemaker.create_model_package_group(ModelPackageGroupName="churn")
    sagemaker.create_model_package(
        ModelPackageGroupName="churn",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "xgboost:3.2-0", "ModelDataUrl": f"s3://{BUCKET}/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["text/csv", "application/json"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{key}"}
            }
        },
    )
    (version,) = SageMakerRegistry("churn").list()
    expected = evaluation["binary_classification_metrics"]
    assert version.metrics == {
        name: expected[name]["value"]
        for name in ("auc", "log_loss", "accuracy", "precision", "recall", "f1")
    }


def test_without_a_golden_set_the_gate_has_no_golden_condition(churn):
    cfg, _, _, steps = churn
    assert cfg.golden_file is None  # the churn fixture has none: today's three conditions
    assert "golden" not in json.dumps(steps["gate"]["Arguments"])


@pytest.fixture(scope="module")
def churn_with_golden(tmp_path_factory):
    """The churn project with a golden set configured (its rows do not matter to rendering)."""
    import yaml
    from fixtures.tasks import churn_frame

    from mlops.sagemaker.pipeline_definition import Target, render_pipeline

    folder = tmp_path_factory.mktemp("churn-golden")
    golden = folder / "golden.csv"
    churn_frame(40, seed=3).to_csv(golden, index=False)
    path = project_config(CHURN_CONFIG, folder)
    raw = yaml.safe_load(path.read_text())
    raw["data"]["golden"] = str(golden)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    cfg = load_config(path)
    target = Target(REGION, ROLE_ARN, BUCKET, cfg.model_package_group)
    graph = load_pipeline(cfg)
    definition = json.loads(render_pipeline(cfg, target, graph).definition)
    return cfg, graph, definition, pipeline_steps(definition)


def classification_evaluation(golden_auc, golden_loss, golden_champion_loss=None) -> dict:
    """evaluation.json as evaluate writes it: a good challenger, no champion on the new split."""
    pct, task = 5.0, "binary_classification"
    evaluation = {
        "binary_classification_metrics": {"auc": {"value": 0.85}, "log_loss": {"value": 0.4}}
    }
    evaluation["champion_log_loss_limit"] = champion_limit(task, None, pct)
    metrics = {"auc": {"value": golden_auc}, "log_loss": {"value": golden_loss}}
    golden = {"rows": 40, "binary_classification_metrics": metrics}
    champion = None
    if golden_champion_loss is not None:
        champion = {"binary_classification_metrics": {"log_loss": {"value": golden_champion_loss}}}
        golden["champion"] = champion
    golden["champion_log_loss_limit"] = champion_limit(task, champion, pct)
    evaluation["golden"] = golden
    return evaluation


@pytest.mark.parametrize(
    ("golden_auc", "golden_loss", "golden_champion_loss", "passes"),
    [
        (0.85, 0.40, None, True),
        (0.70, 0.40, None, False),  # golden auc under min_auc
        (0.85, 0.40, 0.30, False),  # golden log loss 33 % over the champion's (5 % allowed)
        (0.85, 0.31, 0.30, True),  # 3.3 % over: within the allowance
    ],
)
def test_sagemaker_conditions_decide_the_golden_rule_as_the_local_gate(
    churn_with_golden, golden_auc, golden_loss, golden_champion_loss, passes
):
    from test_parity import sagemaker_gate_passes

    from mlops.core.gate import check_gate

    cfg, graph, definition, steps = churn_with_golden
    assert cfg.gate.min_auc > 0.70 and cfg.gate.max_regression_pct == 5.0
    evaluation = classification_evaluation(golden_auc, golden_loss, golden_champion_loss)
    without_golden = {k: v for k, v in evaluation.items() if k != "golden"}
    assert check_gate(without_golden, graph.gate).passed  # the golden rule alone decides
    conditions = steps["gate"]["Arguments"]["Conditions"]
    assert len(conditions) == 5
    assert check_gate(evaluation, graph.gate).passed is passes
    assert sagemaker_gate_passes(conditions, evaluation, definition) is passes
