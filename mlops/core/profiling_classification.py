"""`mlops init --task binary_classification`: the positive label, a stratified split like
the pipeline's, and the gate and smoke floor from a baseline fit.

The thresholds themselves come from mlops.core.calibrate_classification; this module
wires a profiled data set to them (the regression path is mlops.core.profiling.calibrate).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops.core.calibrate_classification import (
    ClassificationCalibration,
    calibrate_classification,
    fit_baseline_classifier,
)
from mlops.core.errors import UsageError
from mlops.core.profiling import category_key, levels

# Label pairs whose positive is known by name (compared in lower case).
KNOWN_PAIRS = {
    frozenset({"yes", "no"}): "yes",
    frozenset({"y", "n"}): "y",
    frozenset({"true", "false"}): "true",
    frozenset({"1", "0"}): "1",
    frozenset({"positive", "negative"}): "positive",
}


def positive_label(target: pd.Series) -> tuple[str, str | None]:
    """The positive label as the steps key it, and a REVIEW note when it was a guess
    (not yes/no, true/false or 1/0: the less frequent label, the usual event of interest)."""
    found = levels(target)
    if len(found) != 2:
        raise UsageError(f"target {target.name!r} is not binary: {len(found)} labels")
    named = KNOWN_PAIRS.get(frozenset(v.lower() for v in found))
    if named is not None:
        return next(v for v in found if v.lower() == named), None
    counts = target.dropna().map(category_key).value_counts()
    rare = min(found, key=lambda v: (counts[v], found.index(v) == 0))
    other = next(v for v in found if v != rare)
    note = (
        f"positive label {rare!r} is the less frequent one ({counts[rare]} rows against "
        f"{counts[other]} for {other!r}): set classification.positive_label if it is {other!r}"
    )
    return rare, note


def encode_labels(target: pd.Series, positive: str) -> np.ndarray:
    """1 for the positive label, 0 for the other."""
    return (target.map(category_key) == positive).to_numpy(int)


def strata(target: pd.Series) -> np.ndarray:
    """The labels as the preprocess step stratifies on them (its text, stripped): the class
    order decides which rows each split gets, so 0/1 codes would cut differently."""
    return target.astype(str).str.strip().to_numpy()


def stratified_indices(labels, train_ratio: float, validation_ratio: float, seed: int):
    """Row indices of train, validation and test, each with the classes in the same shares;
    the same cut as the preprocess step's stratified split of the same rows (pass `strata`)."""
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    n_train, n_val = round(len(rows) * train_ratio), round(len(rows) * validation_ratio)
    fewest = np.unique(labels, return_counts=True)[1].min()
    if min(fewest, n_val, len(rows) - n_train - n_val) < 2:
        raise UsageError(
            f"{len(rows)} rows are too few to hold both labels in every split "
            f"({train_ratio}/{validation_ratio}/rest)"
        )
    train, rest = train_test_split(rows, train_size=n_train, stratify=labels, random_state=seed)
    validation, test = train_test_split(
        rest, train_size=n_val, stratify=labels[rest], random_state=seed
    )
    return train, validation, test


def calibrate_binary(
    df: pd.DataFrame,
    features: list[str],
    categorical: list[str],
    target: pd.Series,
    positive: str,
    hyperparameters: dict,
    split: tuple[float, float, int],
    smoke_rows: int,
    threshold: float = 0.5,
) -> ClassificationCalibration:
    """Fit the template's XGBoost on the pipeline's stratified split of the rows and
    calibrate on its held-out rows (`positive`: the label that counts as 1)."""
    labels = encode_labels(target, positive)
    splits = stratified_indices(strata(target), *split)
    frame = df[features].copy()
    for name in features:
        if name not in categorical:
            frame[name] = frame[name].astype(float)
    prob = fit_baseline_classifier(frame, labels, categorical, hyperparameters, splits)
    train, _, test = splits
    return calibrate_classification(
        labels[test], prob, float(labels[train].mean()), smoke_rows, threshold
    )
