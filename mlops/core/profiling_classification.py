"""`mlops init --task binary_classification`: which of a target's two labels is positive.

The gate and smoke floor come from mlops.core.calibrate_classification, on what the
project's own evaluate step wrote (the regression path is mlops.core.profiling.calibrate).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
