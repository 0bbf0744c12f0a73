"""Parity: every step of the local graph is a pipeline step with the same script, arguments,
inputs and outputs, and the pipeline's gate uses the local gate's numbers."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from evaluate import champion_mse_limit as evaluate_limit

from mlops.core.gate import champion_mse_limit
from mlops.core.paths import REPO_ROOT
from model_build.pipeline import hyperparameters


def resolve(value, definition: dict):
    """A constant argument, or a parameter (possibly wrapped in Join) at its default, as text."""
    if isinstance(value, str):
        return value
    if "Std:Join" in value:
        join = value["Std:Join"]
        return join["On"].join(resolve(v, definition) for v in join["Values"])
    name = value["Get"].removeprefix("Parameters.")
    (param,) = [p for p in definition["Parameters"] if p["Name"] == name]
    return str(param["DefaultValue"])


def upload(rendered, uri: str) -> bytes:
    return next(u.body for u in rendered.uploads if u.uri == uri)


def bundle(rendered, uri: str) -> dict[str, bytes]:
    if not uri.endswith(".tar.gz"):
        uri = uri.rstrip("/") + "/sourcedir.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(upload(rendered, uri))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_every_local_step_is_a_pipeline_step_of_the_same_kind(graph, steps):
    kinds = {"processing": "Processing", "training": "Training"}
    for step in graph.steps:
        assert steps[step.name]["Type"] == kinds[step.kind], step.name


@pytest.mark.parametrize("name", ["validate", "preprocess", "evaluate"])
def test_processing_steps_run_the_same_script_with_the_same_arguments(
    name, graph, steps, definition, rendered
):
    local = graph.step(name)
    args = steps[name]["Arguments"]
    resolved = [resolve(a, definition) for a in args["AppSpecification"]["ContainerArguments"]]
    assert resolved == list(local.arguments)
    inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
    script = local.script.rsplit("/", 1)[1]
    entrypoint = upload(rendered, inputs["entrypoint"]["S3Uri"]).decode()
    assert entrypoint.rstrip().endswith(f'python3 {script} "$@"')
    files = bundle(rendered, inputs["code"]["S3Uri"])
    assert files[script] == (REPO_ROOT / local.script).read_bytes()
    for inp in local.inputs:
        assert inputs[inp.name]["LocalPath"] == inp.container_path
    outputs = {o["OutputName"]: o["S3Output"] for o in args["ProcessingOutputConfig"]["Outputs"]}
    assert {k: v["LocalPath"] for k, v in outputs.items()} == {
        o.name: o.container_path for o in local.outputs
    }


def test_training_step_gets_the_same_hyperparameters_and_script(graph, steps, rendered):
    local = graph.step("train")
    args = steps["train"]["Arguments"]
    assert args["HyperParameters"] == hyperparameters(local)
    pairs = [item for k, v in args["HyperParameters"].items() for item in (f"--{k}", v)]
    assert pairs == list(local.arguments)
    channels = {c["ChannelName"]: c for c in args["InputDataConfig"]}
    assert {i.name for i in local.inputs} <= set(channels)
    for inp in local.inputs:  # SM_CHANNEL_<NAME> is /opt/ml/input/data/<name>
        assert inp.container_path == f"/opt/ml/input/data/{inp.name}"
        assert channels[inp.name]["ContentType"] == "text/csv"
    code = channels["code"]["DataSource"]["S3DataSource"]["S3Uri"]
    assert bundle(rendered, code)["train.py"] == (REPO_ROOT / local.script).read_bytes()
    drivers = channels["sm_drivers"]["DataSource"]["S3DataSource"]["S3Uri"]
    source = json.loads(upload(rendered, f"{drivers}/sourcecode.json"))
    assert (source["entry_script"], source["source_dir"]) == ("train.py", code)


def test_data_flows_between_the_same_steps(graph, steps):
    for step in graph.steps:
        args = steps[step.name]["Arguments"]
        if step.kind == "processing":
            uris = {i["InputName"]: i["S3Input"]["S3Uri"] for i in args["ProcessingInputs"]}
        else:
            uris = {
                c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                for c in args["InputDataConfig"]
            }
        for inp in step.inputs:
            if "." not in inp.source:
                continue
            producer, output = inp.source.split(".")
            expected = (
                "Steps.train.ModelArtifacts.S3ModelArtifacts"
                if graph.step(producer).kind == "training"
                else f"Steps.{producer}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"
            )
            assert uris[inp.name] == {"Get": expected}, (step.name, inp.name)


def test_gate_thresholds_are_the_same_numbers(graph, definition):
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert defaults["MaxMse"] == graph.gate.max_mse
    assert defaults["MinR2"] == graph.gate.min_r2
    assert defaults["MaxRegressionPct"] == graph.gate.max_regression_pct


@pytest.mark.parametrize(("champion_mse", "pct"), [(4.0e7, 5.0), (1.0, 0.0), (3.3e7, 12.5)])
def test_evaluate_writes_the_champion_limit_the_local_gate_computes(champion_mse, pct):
    report = {"champion": {"regression_metrics": {"mse": {"value": champion_mse}}}}
    assert evaluate_limit(report, pct) == champion_mse_limit(champion_mse, pct)


def test_without_a_champion_the_limit_never_binds():
    import sys

    assert evaluate_limit({"regression_metrics": {}}, 5.0) == sys.float_info.max


def test_bundles_carry_what_the_containers_need(steps, rendered):
    def code(name):
        inputs = {
            i["InputName"]: i["S3Input"] for i in steps[name]["Arguments"]["ProcessingInputs"]
        }
        return bundle(rendered, inputs["code"]["S3Uri"])

    assert {"evaluate.py", "inference.py", "train.py"} <= set(code("evaluate"))
    requirements = code("validate")["requirements.txt"].decode().split()
    assert "great-expectations==1.24.1" in requirements
    assert "requirements.txt" not in code("preprocess")
    for name in ("validate", "preprocess", "evaluate"):
        assert not any(f.endswith(".pyc") or "__pycache__" in f for f in code(name))


# ------------------------------------------------ the gate decided the same way on both sides


def sagemaker_gate_passes(conditions: list[dict], evaluation: dict, definition: dict) -> bool:
    """The ConditionStep's conditions evaluated as SageMaker does: JsonGet paths read from
    evaluation.json, parameters at their defaults; every condition must hold."""
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}

    def value(operand):
        if "Std:JsonGet" in operand:
            found = evaluation
            for key in operand["Std:JsonGet"]["Path"].split("."):
                found = found[key]  # a missing key fails the execution on SageMaker too
            return float(found)
        return float(defaults[operand["Get"].removeprefix("Parameters.")])

    compare = {"LessThanOrEqualTo": float.__le__, "GreaterThanOrEqualTo": float.__ge__}
    return all(
        compare[c["Type"]](value(c["LeftValue"]), value(c["RightValue"])) for c in conditions
    )


def regression_evaluation(mse, r2, golden_mse, golden_r2, golden_champion_mse=None) -> dict:
    """evaluation.json as evaluate writes it (limits from its own functions), no champion on
    the new split: only the golden set can fail the gate here."""
    pct = 5.0
    evaluation = {"regression_metrics": {"mse": {"value": mse}, "r2": {"value": r2}}}
    evaluation["champion_mse_limit"] = evaluate_limit(evaluation, pct)
    golden = {"rows": 40, "regression_metrics": {"mse": {"value": golden_mse}, "r2": {"value": golden_r2}}}  # fmt: skip
    if golden_champion_mse is not None:
        golden["champion"] = {"regression_metrics": {"mse": {"value": golden_champion_mse}}}
    golden["champion_mse_limit"] = evaluate_limit(golden, pct)
    evaluation["golden"] = golden
    return evaluation


@pytest.mark.parametrize(
    ("golden_mse", "golden_r2", "golden_champion_mse", "passes"),
    [
        (3.0e7, 0.95, None, True),  # no champion: the golden limit never binds
        (3.0e7, 0.85, None, False),  # golden r2 under min_r2 0.9
        (3.0e7, 0.95, 2.0e7, False),  # golden mse 50 % over the champion's (5 % allowed)
        (2.09e7, 0.95, 2.0e7, True),  # 4.5 % over: within the allowance
    ],
)
def test_sagemaker_conditions_decide_the_golden_rule_as_the_local_gate(
    graph, steps, definition, golden_mse, golden_r2, golden_champion_mse, passes
):
    from mlops.core.gate import check_gate

    assert graph.gate.max_regression_pct == 5.0 and graph.gate.min_r2 == 0.9
    evaluation = regression_evaluation(3.0e7, 0.97, golden_mse, golden_r2, golden_champion_mse)
    without_golden = {k: v for k, v in evaluation.items() if k != "golden"}
    assert check_gate(without_golden, graph.gate).passed  # the golden rule alone decides
    conditions = steps["gate"]["Arguments"]["Conditions"]
    assert check_gate(evaluation, graph.gate).passed is passes
    assert sagemaker_gate_passes(conditions, evaluation, definition) is passes
