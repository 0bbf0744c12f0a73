"""Behavioural tests of the trained model: direction, invariance, minimum functionality.

The fixture data's cost rises with floor area, install year, occupants and heat pumps,
and does not depend on HAS_SOLAR or HAS_SHADE: the model must have learned that.
"""

import numpy as np
import pytest
from fixture_project.generate import FEATURES, generate_buildings
from fixtures.models import unpack

from stepkit.artifact import CODE_DIR
from stepkit.code_loader import load_code


@pytest.fixture(scope="module")
def model(_registered_home, tmp_path_factory):
    """The registered version, loaded by the serving code its artifact carries."""
    _, result = _registered_home
    folder = unpack(result.version.model_uri, tmp_path_factory.mktemp("model"))
    handler = load_code(folder / CODE_DIR)
    return handler, handler.model_fn(str(folder))


@pytest.fixture(scope="module")
def rows():
    return generate_buildings(300, seed=123)


def predict(model, df):
    handler, loaded = model
    predictions, reasons = handler.score_frame(loaded, df[FEATURES])
    assert (reasons == "").all()
    return predictions


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
