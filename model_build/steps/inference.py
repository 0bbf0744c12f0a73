"""inference: the SageMaker handler functions, for whichever model family trained the model.

Shipped inside every model artifact (`code/`) and loaded from there by SageMaker's
serving container (behind endpoint_handler.py), the local endpoint, batch scoring,
drift and monitoring, and the evaluate step. A request holds raw feature rows as in the
source CSV, without the target:

- text/csv:          one row per line, no header, features in the training order; an
                     empty field is a missing value
- application/json:  a list of rows (lists of values), or a list of objects keyed by
                     feature name; one row or one object alone, and `{"instances": [...]}`,
                     are accepted too; null is a missing value

Each row is typed by `stepkit.rows` (numbers, text categories, missing values), prepared
by the project's fitted preprocessing (`features.transform`, with the state training
saved) and scored by the model family. The answer is the prediction: the value for
regression, the probability of the positive class for binary classification. Ask for
labels with an Accept parameter, which invoke_endpoint passes through to the container:

- `Accept: application/json; labels=true`  `{"predictions": [...], "labels": ["yes", ...]}`
- `Accept: text/csv; labels=true`          one label per line

A label is the positive class when its probability is at least the manifest's threshold.
Bad input raises `InvalidInput` (the server answers 400) or `UnsupportedContentType`
(415); nothing here can take the server down. `score_frame` scores a file's rows for
the machinery (batch, drift, monitoring), one reason per row it cannot score.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import families
import features
import numpy as np
import pandas as pd

from stepkit.artifact import FEATURES_FILE, MODEL_DIR, read_manifest
from stepkit.rows import RowError, checked_frame, typed_frame

CSV = "text/csv"
JSON = "application/json"


class InvalidInput(ValueError):
    """The request body cannot be scored; the message says why."""


class UnsupportedContentType(ValueError):
    """The request's content type is neither text/csv nor application/json."""


@dataclass(frozen=True)
class Model:
    """A loaded model: the family's fitted model, the preprocessing state, the manifest.
    The machinery reads only the ServingModel properties (stepkit/contract.py)."""

    manifest: dict
    family: ModuleType
    fitted: Any
    state: dict

    @property
    def features(self) -> list[str]:
        return list(self.manifest["features"])

    @property
    def text_features(self) -> list[str]:
        return list(self.manifest.get("text_features", []))

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def class_labels(self) -> list[str] | None:
        return self.manifest.get("class_labels")

    @property
    def threshold(self) -> float:
        return float(self.manifest.get("threshold", 0.5))


class Predictions(np.ndarray):
    """Scores that remember the model's class labels, so output_fn can answer with labels."""

    labels: tuple[str, str] | None = None
    threshold: float = 0.5

    def __array_finalize__(self, obj: object) -> None:
        self.labels = getattr(obj, "labels", None)
        self.threshold = getattr(obj, "threshold", 0.5)


def model_fn(model_dir: str) -> Model:
    """Load the model after checking every file of the artifact against its manifest."""
    folder = Path(model_dir)
    manifest = read_manifest(folder)
    family = families.family(manifest["family"])
    state = json.loads((folder / FEATURES_FILE).read_text())
    return Model(manifest, family, family.load(folder / MODEL_DIR), state)


def _base_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


# A large body's numbers are parsed this many lines at a time: one np.loadtxt call holds
# the GIL throughout (0.3-0.5 s for 200,000 lines), and while it does the endpoint's event
# loop cannot answer /ping; between blocks it can.
NUMBER_BLOCK_LINES = 8192


def _numbers(lines: list[str]) -> np.ndarray:
    """Rows of numbers only, parsed a block at a time; ValueError for anything else (text,
    empty fields, rows of different widths)."""
    blocks = [
        np.loadtxt(io.StringIO("\n".join(lines[start : start + NUMBER_BLOCK_LINES])),
                   delimiter=",", ndmin=2, comments=None)
        for start in range(0, len(lines), NUMBER_BLOCK_LINES)
    ]  # fmt: skip
    if len({block.shape[1] for block in blocks}) > 1:
        raise ValueError("rows of different widths")
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def _blank(row: list[str]) -> bool:
    """A line with nothing on it (skipped, as blank lines are on the numbers' path)."""
    return not row or (len(row) == 1 and not row[0].strip())


def _parse_csv(text: str) -> np.ndarray | list[list[str]]:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise InvalidInput("empty body: send one CSV row of features per line")
    try:  # numbers only: the fast path
        return _numbers(lines)
    except ValueError:
        pass
    try:  # text, empty fields, quoted commas and line breaks (read from the text, not the
        # lines: a quoted field across lines keeps its line break)
        return [row for row in csv.reader(io.StringIO(text)) if not _blank(row)]
    except csv.Error as exc:
        raise InvalidInput(f"unreadable CSV: {exc}") from None


def _parse_json(text: str) -> list:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"malformed JSON: {exc}") from None
    except ValueError as exc:  # e.g. an integer past Python's 4,300-digit conversion limit
        raise InvalidInput(f"unreadable JSON: {str(exc)[:120]}") from None
    except RecursionError:
        raise InvalidInput("malformed JSON: nested too deeply") from None
    if isinstance(payload, dict):
        payload = payload.get("instances", [payload])
    if not isinstance(payload, list) or not payload:
        raise InvalidInput("JSON body must be a non-empty list of rows or of objects")
    if all(isinstance(row, dict) for row in payload):
        return payload
    if not any(isinstance(row, list | dict) for row in payload):
        payload = [payload]  # one row given as a flat list of values
    if not all(isinstance(row, list) for row in payload):
        raise InvalidInput("JSON rows must all be lists of values or all be objects")
    return payload


def input_fn(request_body: bytes | str, request_content_type: str) -> np.ndarray | list:
    """Parse a request body into rows; checking them against the model is predict_fn's."""
    kind = _base_type(request_content_type)
    if kind not in (CSV, JSON):
        raise UnsupportedContentType(
            f"content type {request_content_type!r} is not supported; use {CSV} or {JSON}"
        )
    if isinstance(request_body, bytes | bytearray):
        try:
            request_body = bytes(request_body).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("body is not UTF-8 text") from None
    if not request_body.strip():
        raise InvalidInput("empty body")
    return _parse_csv(request_body) if kind == CSV else _parse_json(request_body)


def records(rows: np.ndarray | list, model: Model) -> np.ndarray | list[list]:
    """Request rows as records in the model's feature order, checked for width."""
    names = model.features
    if isinstance(rows, np.ndarray):
        width = rows.shape[1] if rows.ndim == 2 else 0
        if width != len(names):
            raise InvalidInput(
                f"each row needs {len(names)} values ({','.join(names)}), got {width}"
            )
        return rows
    if rows and all(isinstance(row, dict) for row in rows):
        unknown = sorted({k for row in rows for k in row} - set(names))
        missing = sorted({f for row in rows for f in names if f not in row})
        if unknown or missing:
            raise InvalidInput(
                f"objects need exactly {names}; missing {missing}, unknown {unknown[:10]}"
            )
        rows = [[row[f] for f in names] for row in rows]
    for number, row in enumerate(rows, 1):
        width = len(row) if isinstance(row, list) else 0
        if width != len(names):
            where = f"row {number} has {width} values; " if len(rows) > 1 else ""
            raise InvalidInput(
                f"{where}each row needs {len(names)} values ({','.join(names)}), got {width}"
            )
    if [str(v).strip() for v in rows[0]] == names:
        raise InvalidInput("send rows without a header: the first row names the features")
    for row in rows:
        for value in row:
            if isinstance(value, list | dict):
                raise InvalidInput(f"values must be numbers or text, got {str(value)[:40]!r}")
    return rows


def _scores(frame: pd.DataFrame, model: Model) -> np.ndarray:
    X = features.transform(frame, model.state)
    return np.asarray(model.family.predict(model.fitted, X), dtype=np.float64)


def predict_fn(input_data: np.ndarray | list, model: Model) -> np.ndarray:
    """One prediction per row: the value, or the positive class's probability."""
    try:
        frame = checked_frame(records(input_data, model), model.features, model.text_features)
    except RowError as exc:
        raise InvalidInput(str(exc)) from None
    scores = _scores(frame, model)
    if model.class_labels is None:
        return scores
    out = scores.view(Predictions)
    out.labels, out.threshold = tuple(model.class_labels), model.threshold
    return out


def score_frame(model: Model, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A file's rows (a frame with the feature columns, values as read): one prediction
    per row (NaN where it cannot be scored) and the reason per row ("" when scored)."""
    typed, reasons = typed_frame(frame[model.features], model.features, model.text_features)
    predictions = np.full(len(typed), np.nan)
    good = reasons == ""
    if good.any():
        predictions[good] = _scores(typed[good], model)
    return predictions, reasons


def _wants_labels(accept: str | None) -> bool:
    params = (accept or "").lower().replace(" ", "").split(";")[1:]
    return any(p in ("labels=true", "labels=1") for p in params)


def output_fn(prediction: np.ndarray, accept: str | None = JSON) -> tuple[str, str]:
    """CSV (one prediction per line) or JSON `{"predictions": [...]}`; JSON unless CSV is asked for.

    With `labels=true` in Accept, a classifier's answer carries its labels too (see above)."""
    values = [float(v) for v in np.asarray(prediction).ravel()]
    if not all(math.isfinite(v) for v in values):
        raise InvalidInput("the model produced a non-finite prediction")
    labels = getattr(prediction, "labels", None)
    if labels is not None and _wants_labels(accept):
        threshold = prediction.threshold
        named = [labels[1] if v >= threshold else labels[0] for v in values]
        if _base_type(accept) == CSV:
            return "\n".join(named) + "\n", CSV
        return json.dumps({"predictions": values, "labels": named}), JSON
    if _base_type(accept) == CSV:
        return "\n".join(repr(v) for v in values) + "\n", CSV
    return json.dumps({"predictions": values}), JSON
