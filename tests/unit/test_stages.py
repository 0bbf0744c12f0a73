"""Stage configs and which version a stage gets (the resolution both backends use)."""

import json

import pytest

from mlops.core.errors import MlopsError, UsageError
from mlops.core.registry import APPROVED, PENDING, REJECTED, ModelVersion
from mlops.core.stages import (
    STAGES,
    deploy_dir,
    load_stage_config,
    parse_stage_config,
    resolve_version,
)

VALID = {
    "stage": "staging",
    "model_version": None,
    "local": {"port": 8081},
    "sagemaker": {
        "instance_type": "ml.m5.large",
        "instance_count": 1,
        "data_capture_percent": 100,
        "autoscaling": {
            "enabled": False,
            "min": 1,
            "max": 2,
            "target_invocations_per_instance": 100,
        },
    },
}


def with_change(path: str, value):
    data = json.loads(json.dumps(VALID))
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[last] = value
    return data


def test_the_committed_stage_configs_load_and_differ_only_in_settings():
    configs = {stage: load_stage_config(stage) for stage in STAGES}
    assert [c.stage for c in configs.values()] == list(STAGES)
    assert configs["staging"].local.port != configs["prod"].local.port
    assert all(c.model_version is None for c in configs.values())  # no pin on main
    assert configs["prod"].sagemaker.instance_count >= configs["staging"].sagemaker.instance_count


def test_defaults_for_optional_keys():
    config = parse_stage_config(
        {k: v for k, v in VALID.items() if k != "model_version"} | {"local": {"port": 9000}}
    )
    assert config.model_version is None
    assert config.local.workers == 1


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("local.port", 0, "local.port"),
        ("local.port", 70000, "local.port"),
        ("local.colour", "blue", "local.colour"),
        ("model_version", 0, "model_version"),
        ("model_version", "latest", "model_version"),
        ("sagemaker.instance_type", "m5.large", "sagemaker.instance_type"),
        ("sagemaker.instance_count", 0, "sagemaker.instance_count"),
        ("sagemaker.data_capture_percent", 101, "sagemaker.data_capture_percent"),
        ("sagemaker.autoscaling.min", 3, "min \\(3\\) is above max"),
        ("stage", "Prod!", "stage"),
    ],
)
def test_bad_values_are_refused_naming_the_key(path, value, message):
    with pytest.raises(UsageError, match=message):
        parse_stage_config(with_change(path, value))


def test_deploy_dir_override_and_file_name_must_match_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_DEPLOY_DIR", str(tmp_path))
    assert deploy_dir() == tmp_path.resolve()
    (tmp_path / "prod-config.json").write_text(json.dumps(VALID))  # says staging
    with pytest.raises(UsageError, match="says stage 'staging', expected 'prod'"):
        load_stage_config("prod")
    (tmp_path / "staging-config.json").write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_stage_config("staging")
    (tmp_path / "staging-config.json").unlink()
    with pytest.raises(UsageError, match="not found"):
        load_stage_config("staging")


class FakeRegistry:
    group = "energy-costs"

    def __init__(self, statuses: dict[int, str]):
        self.versions = {
            n: ModelVersion(self.group, n, s, "2026-01-01", {}, {}, f"/m/{n}.tar.gz")
            for n, s in statuses.items()
        }

    def describe(self, version: int) -> ModelVersion:
        if version not in self.versions:
            raise UsageError(f"model version {version} does not exist")
        return self.versions[version]

    def latest_approved(self) -> ModelVersion | None:
        approved = [v for n, v in sorted(self.versions.items()) if v.approval_status == APPROVED]
        return approved[-1] if approved else None


STAGE = parse_stage_config(VALID)
PINNED = STAGE.model_copy(update={"model_version": 1})


@pytest.mark.parametrize(
    ("statuses", "stage", "requested", "expected"),
    [
        ({1: APPROVED, 2: APPROVED, 3: PENDING}, STAGE, None, 2),  # latest approved
        ({1: APPROVED, 2: APPROVED}, PINNED, None, 1),  # the pin wins over latest
        ({1: APPROVED, 2: APPROVED}, PINNED, 2, 2),  # --version wins over the pin
        ({1: APPROVED, 2: REJECTED}, STAGE, 1, 1),
    ],
)
def test_resolve_version(statuses, stage, requested, expected):
    assert resolve_version(FakeRegistry(statuses), stage, requested).version == expected


@pytest.mark.parametrize(
    ("statuses", "stage", "requested", "error", "message"),
    [
        ({1: PENDING}, STAGE, None, MlopsError, "no Approved model version"),
        ({}, STAGE, None, MlopsError, "no Approved model version"),
        ({1: PENDING}, STAGE, 1, MlopsError, "1 \\(requested\\) is PendingManualApproval"),
        ({1: REJECTED, 2: APPROVED}, PINNED, None, MlopsError, "pinned in staging-config.json"),
        ({1: APPROVED}, STAGE, 7, UsageError, "does not exist"),
    ],
)
def test_resolve_version_refuses(statuses, stage, requested, error, message):
    with pytest.raises(error, match=message):
        resolve_version(FakeRegistry(statuses), stage, requested)
