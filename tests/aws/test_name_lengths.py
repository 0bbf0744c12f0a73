"""A model package group too long for any name the deploy derives from it is refused when the
config loads (it used to pass config and bootstrap and break the first monitoring stack), and
the table of derived names (mlops/core/names.py) is the code's and the templates' own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cfnlint.decode.cfn_yaml import loads as load_cfn_yaml

from mlops.core.errors import UsageError
from mlops.core.names import MAX_VERSION, derived_names, longest_group

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "model_deploy"


def sub(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)


def test_each_derived_name_is_the_one_the_deploy_builds(cfg):
    from mlops.core.deploy import endpoint_name
    from mlops.sagemaker.batch import model_name
    from mlops.sagemaker.monitor import monitoring_stack_name, schedule_name
    from mlops.sagemaker.pipeline_definition import pipeline_name

    group = cfg.model_package_group
    monitoring = load_cfn_yaml((DEPLOY / "monitoring-template.yml").read_text())["Resources"]
    definition = monitoring["DataQualityJobDefinition"]["Properties"]["JobDefinitionName"][
        "Fn::Sub"
    ]
    schedule = monitoring["MonitoringSchedule"]["Properties"]["MonitoringScheduleName"]["Fn::Sub"]
    built = {("model package group", group), ("batch model", model_name(group, MAX_VERSION)),
             ("pipeline", pipeline_name(cfg))}  # fmt: skip
    from mlops.core import names, stages

    assert names.STAGES == stages.STAGES
    for stage in stages.STAGES:
        endpoint = endpoint_name(group, stage)
        values = {
            "EndpointName": endpoint,
            "ModelVersion": str(MAX_VERSION),
            "DefinitionId": "0" * 8,
        }
        assert sub(schedule, values) == schedule_name(endpoint)
        built |= {
            ("endpoint", endpoint),
            ("monitoring schedule", schedule_name(endpoint)),
            ("data quality job definition", sub(definition, values)),
            ("monitoring stack", monitoring_stack_name(group, stage)),
        }
    assert {(what, name) for what, name, _ in derived_names(group)} == built


def test_the_longest_group_loads_and_one_more_character_is_one_line(cfg, tmp_path):
    import yaml

    from mlops.core.config import default_config_path, load_config

    raw = yaml.safe_load(default_config_path().read_text())
    assert longest_group() == 37
    for length, fits in ((37, True), (38, False)):
        raw["model_package_group"] = "g" * length
        path = tmp_path / f"config-{length}.yaml"
        path.write_text(yaml.safe_dump(raw))
        if fits:
            assert load_config(path, root=cfg.root).model_package_group == "g" * length
            continue
        with pytest.raises(UsageError) as error:
            load_config(path, root=cfg.root)
        message = str(error.value)
        assert "\n" not in message
        assert "data quality job definition name" in message and "use at most 37" in message


def test_bootstrap_refuses_what_config_refuses():
    parameter = load_cfn_yaml((DEPLOY / "bootstrap.yml").read_text())["Parameters"][
        "ModelPackageGroupName"
    ]
    assert parameter["MaxLength"] == longest_group()
