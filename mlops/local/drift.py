"""Prediction drift on this machine: rows scored by a registered version through its own
packaged serving code (`inference.py` as the version stored it, what its endpoint runs),
against the same version's predictions on its held-out split. The rule and the PSI are
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
from mlops.core.batch import PREDICTION_COLUMN
from mlops.core.errors import MlopsError
from mlops.core.registry import ModelVersion
from mlops.core.smoke import held_out_file
from mlops.local.batch import ChunkScorer, unpack_version


@dataclass(frozen=True)
class PredictionDrift:
    result: dict  # mlops.core.monitor.prediction_drift's
    unscored: int  # rows of the data the model refused (an empty or non-numeric feature)


def scores(scorer: ChunkScorer, frame: pd.DataFrame) -> np.ndarray:
    """Predictions of the rows the model can score; rows it refuses are left out."""
    if not scorer.model.categories:
        return scorer.score(frame, 0).scored[PREDICTION_COLUMN].to_numpy(dtype=float)
    # A model with string categories takes rows of raw values (ChunkScorer's float matrix
    # would turn every category into "not a number").
    raw = frame[scorer.features].astype(object)
    predictions, errors = scorer.predict(raw.where(raw.notna(), None).values.tolist())
    return predictions[errors == ""]


@contextmanager
def version_scorer(version: ModelVersion, home: Path) -> Iterator[ChunkScorer]:
    """A scorer of the version's model through the serving code stored with it, for the
    duration of the block (model and code unpacked into a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="mlops-drift-") as tmp:
        unpack_version(version, Path(tmp), home=home)
        yield ChunkScorer(str(Path(tmp) / "code"), str(Path(tmp) / "model"), None)


def held_out_rows(version: ModelVersion, home: Path, scorer: ChunkScorer) -> pd.DataFrame:
    """The version's held-out split (CSV, target first, no header) as feature columns."""
    text = {name: str for name in scorer.model.categories}
    frame = pd.read_csv(
        held_out_file(version, home),
        header=None,
        names=["__target__", *scorer.features],
        dtype=text,
    )
    return frame[scorer.features]


def prediction_drift(
    version: ModelVersion, home: Path, frame: pd.DataFrame, threshold: float
) -> PredictionDrift:
    """PSI of the version's predictions on `frame` against its predictions on its held-out
    rows; MlopsError when the model, its code or its held-out rows are not on this machine."""
    with version_scorer(version, home) as scorer:
        missing = [name for name in scorer.features if name not in frame.columns]
        if missing:
            raise MlopsError(f"the data lacks the model's feature(s) {missing}")
        reference = scores(scorer, held_out_rows(version, home, scorer))
        current = scores(scorer, frame)
    if not reference.size or not current.size:
        raise MlopsError(f"model version {version.version} scored none of the rows")
    result = monitor.prediction_drift(reference, current, threshold)
    return PredictionDrift(result, unscored=len(frame) - int(current.size))
