"""Parity: the two backends run the same declared pipeline (model_build/pipeline.py).

Every declared step is a pipeline step with the same script, image, arguments, inputs and
outputs; every gate rule is one condition with the same metric, comparison and threshold
(a pipeline parameter of the same name and value); and the condition step decides as the
local gate does on the same evaluation.json."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from _sagemaker_helpers import REGION

from mlops.core.graph import Param, hyperparameter_args
from mlops.sagemaker.pipeline_definition import CONDITIONS, hyperparameters
from stepkit.metrics import champion_limit

CONDITION_TYPES = {op: name.removeprefix("Condition") for op, name in CONDITIONS.items()}


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


def image_uri(cfg, image: str) -> str:
    from sagemaker.core import image_uris  # the render imported the SDK already

    return image_uris.retrieve(image, REGION, version=cfg.sagemaker.image_versions[image])


def test_every_declared_step_is_a_pipeline_step_in_the_same_order(graph, definition):
    kinds = {"processing": "Processing", "training": "Training"}
    declared = [(s.name, kinds[s.kind]) for s in graph.steps]
    assert [(s["Name"], s["Type"]) for s in definition["Steps"][: len(declared)]] == declared
    # each waits for the one before, as the local runner runs them
    previous = [None, *([s.name] for s in graph.steps[:-1])]
    assert [s.get("DependsOn") for s in definition["Steps"][: len(declared)]] == previous


def test_processing_steps_run_the_same_script_image_and_arguments(
    graph, cfg, steps, definition, rendered
):
    processing = [s for s in graph.steps if s.kind == "processing"]
    assert len(processing) >= 3
    for local in processing:
        args = steps[local.name]["Arguments"]
        assert args["AppSpecification"]["ImageUri"] == image_uri(cfg, local.image), local.name
        container_args = args["AppSpecification"]["ContainerArguments"]
        assert [resolve(a, definition) for a in container_args] == [
            str(a) for a in local.arguments
        ], local.name
        for mine, theirs in zip(local.arguments, container_args, strict=True):
            if isinstance(mine, Param):  # a parameter of the same name, not a constant
                assert json.dumps(theirs).count(f"Parameters.{mine.name}") == 1, local.name
        inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
        script = local.script.rsplit("/", 1)[1]
        entrypoint = upload(rendered, inputs["entrypoint"]["S3Uri"]).decode()
        assert entrypoint.rstrip().endswith(f'python3 {script} "$@"'), local.name
        assert bundle(rendered, inputs["code"]["S3Uri"])[script] == local.script_path.read_bytes()
        for inp in local.inputs:
            if inp.source == "golden" and cfg.golden_file is None:
                assert inp.name not in inputs
                continue
            assert inputs[inp.name]["LocalPath"] == local.container_path(inp.name), local.name
        outputs = {
            o["OutputName"]: o["S3Output"] for o in args["ProcessingOutputConfig"]["Outputs"]
        }
        assert {k: v["LocalPath"] for k, v in outputs.items()} == {
            name: local.container_path(name) for name in local.outputs
        }


def test_training_step_gets_the_same_script_image_and_hyperparameters(graph, cfg, steps, rendered):
    local = graph.step(graph.model_step)
    args = steps[local.name]["Arguments"]
    assert args["AlgorithmSpecification"]["TrainingImage"] == image_uri(cfg, local.image)
    assert args["HyperParameters"] == hyperparameters(local)
    # SageMaker passes them as `--name value`, as the local runner does
    pairs = [item for k, v in args["HyperParameters"].items() for item in (f"--{k}", v)]
    assert pairs == list(hyperparameter_args(local.hyperparameters))
    channels = {c["ChannelName"]: c for c in args["InputDataConfig"]}
    assert {i.name for i in local.inputs} <= set(channels)
    for inp in local.inputs:  # SM_CHANNEL_<NAME> is /opt/ml/input/data/<name>
        assert local.container_path(inp.name) == f"/opt/ml/input/data/{inp.name}"
        assert channels[inp.name]["ContentType"] == "text/csv"
    code = channels["code"]["DataSource"]["S3DataSource"]["S3Uri"]
    assert bundle(rendered, code)["train.py"] == local.script_path.read_bytes()
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
                f"Steps.{producer}.ModelArtifacts.S3ModelArtifacts"
                if graph.step(producer).kind == "training"
                else f"Steps.{producer}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"
            )
            assert uris[inp.name] == {"Get": expected}, (step.name, inp.name)


def json_get(path: str) -> dict:
    evaluation = {"Get": "Steps.evaluate.PropertyFiles.evaluation"}
    return {"Std:JsonGet": {"PropertyFile": evaluation, "Path": path}}


def test_every_gate_rule_is_one_condition_with_the_same_threshold(graph, steps, definition):
    conditions = steps["gate"]["Arguments"]["Conditions"]
    defaults = {p["Name"]: p for p in definition["Parameters"]}
    assert len(conditions) == len(graph.gate) >= 3
    for rule in graph.gate:
        if isinstance(rule.threshold, Param):
            right = {"Get": f"Parameters.{rule.threshold.name}"}
            parameter = defaults[rule.threshold.name]
            assert (parameter["Type"], parameter["DefaultValue"]) == ("Float", rule.threshold.value)
        else:
            right = json_get(rule.threshold)
        expected = {
            "Type": CONDITION_TYPES[rule.op],
            "LeftValue": json_get(rule.metric),
            "RightValue": right,
        }
        assert conditions.count(expected) == 1, rule.label


def test_every_declared_parameter_is_a_pipeline_parameter_once(graph, definition):
    names = [p["Name"] for p in definition["Parameters"]]
    assert len(names) == len(set(names))
    declared = graph.params
    assert "MaxRegressionPct" in declared and "MaxMse" in declared  # arguments and gate
    for name, param in declared.items():
        (found,) = [p for p in definition["Parameters"] if p["Name"] == name]
        assert (found["Type"], found["DefaultValue"]) == ("Float", param.value)


def test_bundles_carry_what_the_containers_need(steps, rendered):
    def code(name):
        inputs = {
            i["InputName"]: i["S3Input"] for i in steps[name]["Arguments"]["ProcessingInputs"]
        }
        return bundle(rendered, inputs["code"]["S3Uri"])

    assert {"evaluate.py", "stepkit/code_loader.py"} <= set(code("evaluate"))
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
    """evaluation.json as evaluate writes it (limits from stepkit.metrics), no champion on
    the new split: only the golden set can fail the gate here."""
    pct = 5.0
    evaluation = {"regression_metrics": {"mse": {"value": mse}, "r2": {"value": r2}}}
    evaluation["champion_mse_limit"] = champion_limit("regression", None, pct)
    golden = {"rows": 40, "regression_metrics": {"mse": {"value": golden_mse}, "r2": {"value": golden_r2}}}  # fmt: skip
    champion = None
    if golden_champion_mse is not None:
        champion = {"regression_metrics": {"mse": {"value": golden_champion_mse}}}
        golden["champion"] = champion
    golden["champion_mse_limit"] = champion_limit("regression", champion, pct)
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
    graph, cfg, steps, definition, golden_mse, golden_r2, golden_champion_mse, passes
):
    from mlops.core.gate import check_gate

    assert cfg.gate.max_regression_pct == 5.0 and cfg.gate.min_r2 == 0.9
    evaluation = regression_evaluation(3.0e7, 0.97, golden_mse, golden_r2, golden_champion_mse)
    without_golden = {k: v for k, v in evaluation.items() if k != "golden"}
    assert check_gate(without_golden, graph.gate).passed  # the golden rule alone decides
    conditions = steps["gate"]["Arguments"]["Conditions"]
    assert check_gate(evaluation, graph.gate).passed is passes
    assert sagemaker_gate_passes(conditions, evaluation, definition) is passes
