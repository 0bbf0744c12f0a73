"""The XGBoost family's feature importance (what the model card plots): the feature the
target depends on most has the most gain; a feature no tree uses has none."""

from __future__ import annotations

import model_xgboost
import numpy as np
import pandas as pd


def test_the_strongest_feature_has_the_most_gain():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"STRONG": rng.normal(size=2000), "WEAK": rng.normal(size=2000),
                      "CONSTANT": np.ones(2000)})  # fmt: skip
    y = 10 * X["STRONG"] + X["WEAK"] + rng.normal(scale=0.1, size=2000)
    params = {**model_xgboost.defaults("regression"), "num_round": 50, "max_depth": 3}
    fitted = model_xgboost.fit(X[:1500], y[:1500], X[1500:], y[1500:], params, "regression",
                               lambda *_: None)  # fmt: skip
    gains = model_xgboost.importance(fitted.model)
    assert set(gains) == {"STRONG", "WEAK", "CONSTANT"}
    assert gains["STRONG"] > 10 * gains["WEAK"] > 0
    assert gains["CONSTANT"] == 0.0
