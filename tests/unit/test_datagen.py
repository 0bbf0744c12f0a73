"""Sample data: the example's generator (schema from its own module, deterministic, target
driven by the features) and `mlops data generate` for a project with another schema."""

import numpy as np
import pandas as pd
import pytest
from fixture_project.generate import COLUMNS as FIXTURE_COLUMNS

from mlops.cli import run
from mlops.core.config import load_config
from mlops.core.datagen import (
    COLUMNS,
    PRICE_COEFFICIENTS,
    PRICE_NOISE_SD,
    generate_houses,
    resample,
)

TARGET = COLUMNS[-1]


def test_schema_and_types():
    df = generate_houses(2000, seed=1)
    assert list(df.columns) == COLUMNS
    assert all(pd.api.types.is_numeric_dtype(df[c]) for c in COLUMNS)
    assert pd.api.types.is_integer_dtype(df[TARGET])
    assert df.notna().all().all()


def test_targets_are_positive_and_binary_columns_are_binary():
    df = generate_houses(20_000, seed=2)
    assert (df[TARGET] > 0).all()
    no_effect = [c for c, coef in PRICE_COEFFICIENTS.items() if coef == 0]
    assert no_effect and all(set(df[c]) == {0, 1} for c in no_effect)


def test_same_seed_same_data_other_seed_other_data():
    pd.testing.assert_frame_equal(generate_houses(500, 9), generate_houses(500, 9))
    assert not generate_houses(500, 9).equals(generate_houses(500, 10))


def test_target_depends_on_features_with_noise():
    df = generate_houses(5000, seed=4)
    X = np.c_[np.ones(len(df)), df[COLUMNS[:-1]].to_numpy(float)]
    coef, *_ = np.linalg.lstsq(X, df[TARGET].to_numpy(float), rcond=None)
    residual_sd = np.std(df[TARGET] - X @ coef)
    largest = max(PRICE_COEFFICIENTS, key=lambda c: abs(PRICE_COEFFICIENTS[c] * df[c].std()))
    fitted = dict(zip(COLUMNS[:-1], coef[1:], strict=True))
    assert fitted[largest] == pytest.approx(PRICE_COEFFICIENTS[largest], rel=0.02)
    assert 0.7 * PRICE_NOISE_SD < residual_sd < 1.3 * PRICE_NOISE_SD


def test_resample_draws_rows_of_the_sample_deterministically():
    sample = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    drawn = resample(sample, 50, seed=3)
    assert len(drawn) == 50 and list(drawn.columns) == ["a", "b"]
    assert set(map(tuple, drawn.to_numpy())) <= set(map(tuple, sample.to_numpy()))
    pd.testing.assert_frame_equal(drawn, resample(sample, 50, seed=3))
    with pytest.raises(ValueError):
        resample(sample, 0)


def test_cli_draws_from_the_projects_sample(tmp_path, capsys):
    out = tmp_path / "sub" / "more.csv"
    assert run(["data", "generate", "--rows", "100", "--seed", "5", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == FIXTURE_COLUMNS and len(df) == 100
    sample = pd.read_csv(load_config().sample_file)
    assert df.merge(sample.drop_duplicates(), how="left", indicator=True)["_merge"].eq("both").all()
    assert run(["data", "generate", "--rows", "0", "--out", str(out)]) == 2
    assert "--rows" in capsys.readouterr().err


def test_cli_without_a_sample_says_so(tmp_path, config_file, capsys):
    cfg = config_file(lambda raw: raw["data"].pop("sample"))
    out = tmp_path / "more.csv"
    assert run(["data", "generate", "--rows", "5", "--out", str(out), "--config", str(cfg)]) == 2
    assert "data.sample" in capsys.readouterr().err and not out.exists()
