"""model_sklearn: scikit-learn's HistGradientBoosting (config train.model: sklearn).

HistGradientBoostingRegressor, or HistGradientBoostingClassifier for a binary target:
native categorical support (the categorical columns features.py builds), native missing
values, early stopping on the validation split (`X_val`, `y_val`). Trains and serves on
SageMaker's scikit-learn 1.9-0 framework image, whose library matches the local one.

The hyperparameters are the estimator's constructor arguments. scikit-learn has no
portable model format of its own, so the model is saved with joblib (a pickle); the
artifact's manifest records its sha256, which is checked before it is ever loaded, and
the library version, which must match the one loading it.
"""

from __future__ import annotations

import difflib
import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from stepkit.contract import Fitted, RoundCallback

NAME = "sklearn"
IMAGE = "sklearn"
LIBRARIES = ("sklearn.ensemble",)
DISTRIBUTED = False
MODEL_FILE = "model.joblib"
# The constructor arguments of HistGradientBoostingRegressor and -Classifier
# (tests/unit/test_model_families.py checks them against the installed library).
PARAMETERS = frozenset(
    {
        "categorical_features", "class_weight", "early_stopping", "interaction_cst",
        "l2_regularization", "learning_rate", "loss", "max_bins", "max_depth", "max_features",
        "max_iter", "max_leaf_nodes", "min_samples_leaf", "monotonic_cst", "n_iter_no_change",
        "quantile", "random_state", "scoring", "tol", "validation_fraction", "verbose",
        "warm_start",
    }
)  # fmt: skip
ONLY = {"class_weight": "binary_classification", "quantile": "regression"}
METRIC = {"regression": "validation:rmse", "binary_classification": "validation:logloss"}
MANY_ROWS = 100_000  # below this, one OpenMP thread is as fast (see default_threads)


def defaults(task: str) -> dict[str, Any]:
    """Small steps and many iterations, stopped early on the validation split."""
    return {
        "learning_rate": 0.05,
        "max_iter": 2000,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 20,
        "l2_regularization": 0.0,
        "early_stopping": True,
        "n_iter_no_change": 50,
        "random_state": 42,
    }


def check(params: dict[str, Any], task: str) -> str | None:
    for name in params:
        if name not in PARAMETERS:
            close = difflib.get_close_matches(name, sorted(PARAMETERS), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return f"{name!r} is not a HistGradientBoosting parameter{hint}"
        if name in ONLY and ONLY[name] != task:
            return f"{name!r} is a parameter of {ONLY[name]} only"
    if "categorical_features" in params:
        return "categorical_features is set by features.py (the categorical columns)"
    return None


def emitted_metrics(params: dict[str, Any], task: str) -> list[str]:
    return [METRIC[task]]


def _estimator(params: dict[str, Any], task: str):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    kind = (
        HistGradientBoostingClassifier
        if task == "binary_classification"
        else HistGradientBoostingRegressor
    )
    return kind(**{"categorical_features": "from_dtype", **params})


def _score(task: str, y: np.ndarray, predicted: np.ndarray) -> float:
    if task == "binary_classification":
        p = np.clip(predicted, 1e-15, 1 - 1e-15)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return float(np.sqrt(np.mean((predicted - y) ** 2)))


def default_threads(rows: int) -> int:
    """OpenMP threads: all cores only where they pay off, unless OMP_NUM_THREADS says (a
    tuning trial's share of the cores).

    Measured on 2 busy cores, 6k training rows: 2.4 s with one thread, 62 s with two (their
    spin-waits); 800 rows: 0.6 s vs 18 s. The variable is read here, not by OpenMP, which
    reads it once when the library loads, possibly before a trial's environment is set."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return (os.cpu_count() or 1) if rows >= MANY_ROWS else 1


@functools.cache
def _openmp():
    """The process's OpenMP thread pools (found once: ~10 ms; each limit then costs ~20 us)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def fit(X, y, X_val, y_val, params: dict[str, Any], task: str, on_round: RoundCallback) -> Fitted:
    model = _estimator(params, task)
    with _openmp().limit(limits=default_threads(len(y)), user_api="openmp"):
        if params.get("early_stopping", "auto") is not False:
            model.fit(X, y, X_val=X_val, y_val=y_val)
        else:
            model.fit(X, y)
    staged = model.staged_predict_proba if task == "binary_classification" else model.staged_predict
    y_val = np.asarray(y_val, dtype=float)
    with _openmp().limit(limits=default_threads(len(y_val)), user_api="openmp"):
        for iteration, predicted in enumerate(staged(X_val)):
            scores = predicted[:, 1] if predicted.ndim == 2 else predicted
            on_round(iteration, {METRIC[task]: _score(task, y_val, scores)})
    # Early stopping keeps the iterations after the best one (n_iter_no_change of them):
    # the model as fitted is what serves, so its last iteration's score is the one kept.
    return Fitted(model, best_round=model.n_iter_ - 1, rounds=model.n_iter_)


def save(model, folder: Path) -> None:
    import joblib

    Path(folder).mkdir(parents=True, exist_ok=True)
    joblib.dump(model, Path(folder) / MODEL_FILE)


def load(folder: Path):
    import joblib

    return joblib.load(Path(folder) / MODEL_FILE)


def predict(model, X):
    with _openmp().limit(limits=default_threads(len(X)), user_api="openmp"):
        if hasattr(model, "predict_proba"):
            return model.predict_proba(X)[:, 1]
        return model.predict(X)
