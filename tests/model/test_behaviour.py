"""Behavioural tests of the trained model: direction, invariance, minimum functionality.

The sample data's price rises with size, age-newness, rooms and garage, and does
not depend on FRONT_PORCH or DECK: the model must have learned that.
"""

import tarfile

import numpy as np
import pytest
from inference import model_fn

from mlops.core.datagen import COLUMNS, generate_houses

FEATURES = COLUMNS[:-1]


@pytest.fixture(scope="module")
def model(_registered_home, tmp_path_factory):
    _, result = _registered_home
    folder = tmp_path_factory.mktemp("model")
    with tarfile.open(result.version.model_uri) as tar:
        tar.extractall(folder, filter="data")
    return model_fn(str(folder))


@pytest.fixture(scope="module")
def houses():
    return generate_houses(300, seed=123)


def predict(model, df):
    return model.booster.inplace_predict(df[FEATURES].to_numpy(float))


@pytest.mark.parametrize(
    ("column", "delta"),
    [("SQUARE_FEET", 500.0), ("YEAR_BUILT", 10), ("NUM_BATHROOMS", 1.0), ("GARAGE_SPACES", 1)],
)
def test_more_of_a_good_thing_is_not_cheaper(model, houses, column, delta):
    base = houses[houses[column] <= houses[column].quantile(0.6)]
    bigger = base.copy()
    bigger[column] = bigger[column] + delta
    diff = predict(model, bigger) - predict(model, base)
    assert (diff >= -1000).all()  # never meaningfully cheaper
    assert diff.mean() > 0.5 * delta * {"SQUARE_FEET": 150, "YEAR_BUILT": 5000,
                                        "NUM_BATHROOMS": 15000, "GARAGE_SPACES": 15000}[column]  # fmt: skip


@pytest.mark.parametrize("column", ["FRONT_PORCH", "DECK"])
def test_features_without_effect_do_not_move_the_price(model, houses, column):
    flipped = houses.copy()
    flipped[column] = 1 - flipped[column]
    relative = np.abs(predict(model, flipped) - predict(model, houses)) / predict(model, houses)
    assert np.median(relative) < 0.01


def test_minimum_functionality_on_unseen_houses(model, houses):
    mape = np.mean(np.abs(predict(model, houses) - houses.PRICE) / houses.PRICE)
    assert mape < 0.03
