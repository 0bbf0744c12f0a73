"""Config loading: the shipped config is valid; a bad value names the key and the reason."""

import pytest

from mlops.core.config import load_config
from mlops.core.errors import UsageError


def test_shipped_config_loads():
    cfg = load_config()
    assert cfg.data.target == "ANNUAL_COST"
    assert cfg.columns[-1] == "ANNUAL_COST" and len(cfg.columns) == 9
    assert cfg.train.hyperparameters["num_round"] >= 1
    assert 0 < cfg.preprocess.train_ratio + cfg.preprocess.validation_ratio < 1


@pytest.mark.parametrize(
    ("mutate", "key", "reason"),
    [
        (
            lambda c: c["preprocess"].update(train_ratio=1.5),
            "preprocess.train_ratio",
            "less than 1",
        ),
        (lambda c: c["preprocess"].update(validation_ratio=0.5), "preprocess", "test split"),
        (lambda c: c["gate"].update(max_mse="lots"), "gate.max_mse", "valid number"),
        (lambda c: c["gate"].pop("min_r2"), "gate.min_r2", "Field required"),
        (lambda c: c["train"]["hyperparameters"].update(num_round=0), "train", "num_round"),
        (lambda c: c["data"].update(features=[]), "data.features", "at least 1"),
        (lambda c: c["data"]["features"].append("ANNUAL_COST"), "data", "also listed as a feature"),
        (lambda c: c.update(unknown_section={}), "unknown_section", "Extra inputs"),
        (lambda c: c.update(model_package_group="bad name!"), "model_package_group", "pattern"),
    ],
)
def test_bad_config_names_key_and_reason(config_file, mutate, key, reason):
    with pytest.raises(UsageError) as err:
        load_config(config_file(mutate))
    assert key in str(err.value)
    assert reason in str(err.value)


def test_missing_and_unparseable_config(tmp_path):
    with pytest.raises(UsageError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(UsageError, match="mapping"):
        load_config(bad)


def counts(processing: int, training: int):
    def mutate(raw: dict) -> None:
        raw["sagemaker"].update(
            processing_instance_count=processing, training_instance_count=training
        )

    return mutate


def test_instance_counts_above_one_are_taken(config_file):
    cfg = load_config(config_file(counts(3, 3)))  # xgboost, the fixture's family, distributes
    sm = cfg.sagemaker
    assert (sm.processing_instance_count, sm.training_instance_count) == (3, 3)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda raw: counts(1, 2)(raw) or raw.update(train={"model": "sklearn"}),
            r"sagemaker\.training_instance_count: the sklearn family trains on one instance",
        ),
    ],
    ids=["a-family-that-cannot-distribute"],
)
def test_counts_a_step_cannot_use_are_refused_in_one_line(config_file, mutate, message):
    """A count the steps would not use is refused, never paid for and silently ignored."""
    with pytest.raises(UsageError, match=message) as refused:
        load_config(config_file(mutate))
    assert "\n" not in str(refused.value)
