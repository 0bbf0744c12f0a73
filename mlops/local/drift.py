"""Prediction drift on this machine: rows scored by a registered version through the serving
code its artifact carries (what its endpoint runs), against the same version's predictions
on its held-out rows, which its evaluate step wrote. The rule and the PSI are
`mlops.core.monitor.prediction_drift`, the one monitoring uses.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlops.core import monitor
from mlops.core.errors import MlopsError
from mlops.core.registry import ModelVersion
from mlops.core.run_layout import predictions_file, read_predictions
from mlops.local.artifacts import unpack_version
from mlops.local.batch import ChunkScorer
from stepkit.splits import PREDICTION


@dataclass(frozen=True)
class PredictionDrift:
    result: dict  # mlops.core.monitor.prediction_drift's
    unscored: int  # rows of the data the model refused (e.g. text in a number feature)


def scores(scorer: ChunkScorer, frame: pd.DataFrame) -> np.ndarray:
    """Predictions of the rows the model can score; rows it refuses are left out."""
    predictions, reasons = scorer.predict(frame[scorer.features])
    return predictions[reasons == ""]


@contextmanager
def version_scorer(version: ModelVersion) -> Iterator[ChunkScorer]:
    """A scorer of the version's model through its own serving code, for the duration of the
    block (the artifact unpacked into a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="mlops-drift-") as tmp:
        model_dir, _ = unpack_version(version, Path(tmp))
        yield ChunkScorer(str(model_dir), None)


def reference_predictions(version: ModelVersion) -> np.ndarray:
    """The version's predictions on its own held-out rows, as its evaluate step wrote them."""
    path = Path(predictions_file(version.evaluation_uri))
    if not path.is_file():
        raise MlopsError(
            f"model version {version.version} has no held-out predictions ({path}): "
            "registered by an older release of the template"
        )
    return read_predictions(path)[PREDICTION].to_numpy(dtype=float)


def prediction_drift(
    version: ModelVersion, frame: pd.DataFrame, threshold: float
) -> PredictionDrift:
    """PSI of the version's predictions on `frame` against its predictions on its held-out
    rows; MlopsError when its model or its predictions are not on this machine."""
    reference = reference_predictions(version)
    with version_scorer(version) as scorer:
        missing = [name for name in scorer.features if name not in frame.columns]
        if missing:
            raise MlopsError(f"the data lacks the model's feature(s) {missing}")
        current = scores(scorer, frame)
    if not reference.size or not current.size:
        raise MlopsError(f"model version {version.version} scored none of the rows")
    result = monitor.prediction_drift(reference, current, threshold)
    return PredictionDrift(result, unscored=len(frame) - int(current.size))
