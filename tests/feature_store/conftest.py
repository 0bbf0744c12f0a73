"""A tiny feature-store project of the tests' own: config, suite and record generator.

Its columns are not the example's: record id CUSTOMER, event time UPDATED_AT,
features AGE (int) and SIZE (float), target SCORE (a learnable linear function).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

RECORD_ID, EVENT_TIME = "CUSTOMER", "UPDATED_AT"
FEATURES, TARGET = ["AGE", "SIZE"], "SCORE"

SUITE = {
    "name": "fs_fixture",
    "expectations": [
        {
            "type": "expect_table_columns_to_match_ordered_list",
            "kwargs": {"column_list": [*FEATURES, TARGET]},
        },
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 500}},
        {
            "type": "expect_column_values_to_be_in_type_list",
            "kwargs": {"column": "AGE", "type_list": ["int64"]},
        },
        {
            "type": "expect_column_values_to_be_in_type_list",
            "kwargs": {"column": "SIZE", "type_list": ["int64", "float64"]},
        },
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "AGE"}},
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "AGE", "min_value": 0, "max_value": 120},
        },
    ],
}


def config_dict(suite: Path, feature_store: bool = True) -> dict:
    cfg = {
        "model_package_group": "fs-fixture",
        "data": {"features": FEATURES, "target": TARGET, "expectation_suite": str(suite)},
        "preprocess": {"train_ratio": 0.6, "validation_ratio": 0.2, "seed": 1},
        "train": {
            "hyperparameters": {
                "objective": "reg:squarederror",
                "max_depth": 3,
                "eta": 0.3,
                "num_round": 60,
                "seed": 1,
            }
        },
        "gate": {"max_mse": 50.0, "min_r2": 0.8, "max_regression_pct": 5.0},
        "drift": {"threshold": 0.2},
    }
    if feature_store:
        cfg["feature_store"] = {"record_id": RECORD_ID, "event_time": EVENT_TIME}
    return cfg


def records(ids, when: str, seed: int = 0) -> pd.DataFrame:
    """One version of each id at `when`; different seeds give different values."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    age = rng.integers(18, 90, n)
    size = rng.uniform(1, 10, n).round(3)
    return pd.DataFrame(
        {
            RECORD_ID: [f"c{i}" for i in ids],
            EVENT_TIME: when,
            "AGE": age,
            "SIZE": size,
            TARGET: (0.5 * age + 4 * size + rng.normal(0, 1, n)).round(3),
        }
    )


@pytest.fixture
def fs_config(tmp_path: Path) -> Path:
    """A config file with a feature store configured (its suite beside it)."""
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps(SUITE))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_dict(suite)))
    return path


@pytest.fixture
def write_csv(tmp_path: Path):
    def write(df: pd.DataFrame, name: str) -> Path:
        path = tmp_path / name
        df.to_csv(path, index=False)
        return path

    return write
