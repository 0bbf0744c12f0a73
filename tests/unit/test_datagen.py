"""Sample data: reference schema and types, deterministic, price driven by the features."""

import numpy as np
import pandas as pd
import pytest

from mlops.cli import run
from mlops.core.datagen import COLUMNS, generate_houses

INTEGER_COLUMNS = ["YEAR_BUILT", "NUM_BEDROOMS", "GARAGE_SPACES", "FRONT_PORCH", "DECK", "PRICE"]
FLOAT_COLUMNS = ["SQUARE_FEET", "NUM_BATHROOMS", "LOT_ACRES"]


def test_schema_and_types_match_the_reference():
    df = generate_houses(2000, seed=1)
    assert list(df.columns) == COLUMNS
    assert all(pd.api.types.is_integer_dtype(df[c]) for c in INTEGER_COLUMNS)
    assert all(pd.api.types.is_float_dtype(df[c]) for c in FLOAT_COLUMNS)
    assert df.notna().all().all()


def test_ranges_are_realistic():
    df = generate_houses(20_000, seed=2)
    assert df.YEAR_BUILT.between(1957, 2019).all()
    assert df.SQUARE_FEET.between(600, 6000).all()
    assert set(df.NUM_BEDROOMS) == {2, 3, 4, 5, 6}
    assert set(df.NUM_BATHROOMS) == {1.0, 1.5, 2.0, 2.5, 3.0}
    assert set(df.GARAGE_SPACES) == {0, 1, 2, 3}
    assert set(df.FRONT_PORCH) == {0, 1} and set(df.DECK) == {0, 1}
    assert 350_000 < df.PRICE.mean() < 520_000
    assert (df.PRICE > 0).all()


def test_same_seed_same_data_other_seed_other_data():
    pd.testing.assert_frame_equal(generate_houses(500, 9), generate_houses(500, 9))
    assert not generate_houses(500, 9).equals(generate_houses(500, 10))


def test_price_depends_on_features_with_noise():
    df = generate_houses(5000, seed=4)
    X = np.c_[np.ones(len(df)), df[COLUMNS[:-1]].to_numpy(float)]
    coef, *_ = np.linalg.lstsq(X, df.PRICE.to_numpy(float), rcond=None)
    residual_sd = np.std(df.PRICE - X @ coef)
    assert coef[2] == pytest.approx(150, rel=0.02)  # $ per square foot
    assert 2000 < residual_sd < 4000  # noise, not a deterministic formula


def test_cli_writes_csv(tmp_path, capsys):
    out = tmp_path / "sub" / "houses.csv"
    assert run(["data", "generate", "--rows", "100", "--seed", "5", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == COLUMNS and len(df) == 100
    assert run(["data", "generate", "--rows", "0", "--out", str(out)]) == 2
    assert "--rows" in capsys.readouterr().err
