"""Behavioural tests of the trained model: direction, invariance, minimum functionality.

The fixture data's cost rises with floor area, install year, occupants and heat pumps,
and does not depend on HAS_SOLAR or HAS_SHADE: the model must have learned that.
"""

import tarfile

import numpy as np
import pytest
from fixture_project.generate import COLUMNS, generate_buildings
from inference import model_fn

FEATURES = COLUMNS[:-1]


@pytest.fixture(scope="module")
def model(_registered_home, tmp_path_factory):
    _, result = _registered_home
    folder = tmp_path_factory.mktemp("model")
    with tarfile.open(result.version.model_uri) as tar:
        tar.extractall(folder, filter="data")
    return model_fn(str(folder))


@pytest.fixture(scope="module")
def rows():
    return generate_buildings(300, seed=123)


def predict(model, df):
    return model.booster.inplace_predict(df[FEATURES].to_numpy(float))


@pytest.mark.parametrize(
    ("column", "delta"),
    [("FLOOR_AREA", 500.0), ("INSTALL_YEAR", 10), ("BOILER_KW", 1.0), ("HEAT_PUMPS", 1)],
)
def test_more_of_a_good_thing_is_not_cheaper(model, rows, column, delta):
    base = rows[rows[column] <= rows[column].quantile(0.6)]
    bigger = base.copy()
    bigger[column] = bigger[column] + delta
    diff = predict(model, bigger) - predict(model, base)
    assert (diff >= -1000).all()  # never meaningfully cheaper
    assert diff.mean() > 0.5 * delta * {"FLOOR_AREA": 150, "INSTALL_YEAR": 5000,
                                        "BOILER_KW": 15000, "HEAT_PUMPS": 15000}[column]  # fmt: skip


@pytest.mark.parametrize("column", ["HAS_SOLAR", "HAS_SHADE"])
def test_features_without_effect_do_not_move_the_prediction(model, rows, column):
    flipped = rows.copy()
    flipped[column] = 1 - flipped[column]
    relative = np.abs(predict(model, flipped) - predict(model, rows)) / predict(model, rows)
    assert np.median(relative) < 0.01


def test_minimum_functionality_on_unseen_rows(model, rows):
    mape = np.mean(np.abs(predict(model, rows) - rows.ANNUAL_COST) / rows.ANNUAL_COST)
    assert mape < 0.03
