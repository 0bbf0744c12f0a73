"""inference: SageMaker framework handler functions for the XGBoost model.

Loaded by SageMaker's XGBoost 3.2-0 serving container (SAGEMAKER_PROGRAM=inference.py)
and, unchanged, by the local endpoint server and the evaluate step. A request holds
raw feature rows as in the source CSV, without the target:

- text/csv:          one row per line, no header, features in the training order
- application/json:  a list of rows (lists of numbers), or a list of objects keyed
                     by feature name; one row or one object alone, and
                     `{"instances": [...]}`, are accepted too

String categorical features (manifest `categories`) take their values as text; a value
never seen in training, or an empty one, is scored as a missing value, never refused.

The answer is the prediction: a price for regression, the probability of the positive
class for binary classification. Ask for labels with an Accept parameter, which
invoke_endpoint passes through to the container:

- `Accept: application/json; labels=true`  `{"predictions": [...], "labels": ["yes", ...]}`
- `Accept: text/csv; labels=true`          one label per line

A label is the positive class when its probability is at least the manifest's threshold.

Bad input raises `InvalidInput` (the server answers 400) or
`UnsupportedContentType` (415); nothing here can take the server down.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

MANIFEST_FILE = "manifest.json"
CSV = "text/csv"
JSON = "application/json"


class InvalidInput(ValueError):
    """The request body cannot be scored; the message says why."""


class UnsupportedContentType(ValueError):
    """The request's content type is neither text/csv nor application/json."""


class ModelIntegrityError(RuntimeError):
    """The model file does not match the sha256 recorded in its manifest."""


@dataclass(frozen=True)
class Model:
    booster: xgb.Booster
    features: list[str]
    manifest: dict

    @property
    def task(self) -> str:
        return self.manifest.get("task", "regression")

    @property
    def categories(self) -> dict[str, list[str]]:
        """Categorical feature -> its levels, in the order training encoded them."""
        return self.manifest.get("categories") or {}

    @cached_property
    def category_codes(self) -> list[dict[str, float] | None]:
        """Per feature: level -> code for a categorical feature, None for a numeric one."""
        return [
            {level: float(i) for i, level in enumerate(self.categories[name])}
            if name in self.categories
            else None
            for name in self.features
        ]

    @property
    def class_labels(self) -> list[str] | None:
        """[negative, positive] for binary classification, as the training labels read."""
        return self.manifest.get("class_labels")

    @property
    def threshold(self) -> float:
        return float(self.manifest.get("threshold", 0.5))


class TextRows(list):
    """Rows that did not parse as numbers: scored only by a model with categorical features."""

    def __init__(self, rows: list, numeric_error: str):
        super().__init__(rows)
        self.numeric_error = numeric_error  # the answer a numbers-only model gives


class Predictions(np.ndarray):
    """Scores that remember the model's class labels, so output_fn can answer with labels."""

    labels: tuple[str, str] | None = None
    threshold: float = 0.5

    def __array_finalize__(self, obj: object) -> None:
        self.labels = getattr(obj, "labels", None)
        self.threshold = getattr(obj, "threshold", 0.5)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_fn(model_dir: str) -> Model:
    """Load the booster after checking its sha256 against the manifest."""
    manifest = json.loads((Path(model_dir) / MANIFEST_FILE).read_text())
    model_path = Path(model_dir) / manifest["model_file"]
    actual = _sha256(model_path)
    if actual != manifest["model_sha256"]:
        raise ModelIntegrityError(
            f"{model_path.name}: sha256 {actual} does not match the manifest's "
            f"{manifest['model_sha256']}; refusing to load"
        )
    booster = xgb.Booster()
    booster.load_model(model_path)
    booster.set_param({"nthread": 1})  # one request, one thread: the server scales by workers
    return Model(booster, list(manifest["features"]), manifest)


def _base_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _parse_csv(text: str) -> np.ndarray | TextRows:
    rows = [line for line in text.splitlines() if line.strip()]
    if not rows:
        raise InvalidInput("empty body: send one CSV row of features per line")
    try:
        return np.loadtxt(
            io.StringIO("\n".join(rows)), delimiter=",", dtype=np.float64, ndmin=2, comments=None
        )
    except ValueError as exc:
        message = f"CSV rows must hold numbers only (no header row): {exc}"
    # Text values (or quoted commas): the model decides whether it takes them.
    records = list(csv.reader(rows))
    if len({len(r) for r in records}) != 1:
        raise InvalidInput("CSV rows have different numbers of values")
    return TextRows(records, message)


def _parse_json(text: str) -> np.ndarray | list[dict]:
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
        payload = [payload]  # one row given as a flat list of numbers
    if not all(isinstance(row, list) for row in payload):
        raise InvalidInput("JSON rows must all be lists of numbers or all be objects")
    if len({len(row) for row in payload}) != 1:
        raise InvalidInput("JSON rows have different lengths")
    try:
        return _as_numbers(payload)
    except InvalidInput as exc:
        if "non-numeric" not in str(exc):
            raise
        return TextRows(payload, str(exc))


def _as_numbers(rows: list[list]) -> np.ndarray:
    for row in rows:
        for value in row:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(f"non-numeric value {str(value)[:40]!r}")
    try:
        return np.asarray(rows, dtype=np.float64)
    except OverflowError:
        raise InvalidInput("a number is too large") from None


def input_fn(request_body: bytes | str, request_content_type: str) -> np.ndarray | list[dict]:
    """Parse a request body into rows; validation against the model is in predict_fn."""
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


def to_matrix(rows: np.ndarray | list[dict], features: list[str]) -> np.ndarray:
    """Rows in the model's feature order, checked for shape and finiteness."""
    if isinstance(rows, TextRows):
        raise InvalidInput(rows.numeric_error)
    if isinstance(rows, list):
        unknown = sorted({k for row in rows for k in row} - set(features))
        missing = sorted({f for row in rows for f in features if f not in row})
        if unknown or missing:
            raise InvalidInput(
                f"objects need exactly {features}; missing {missing}, unknown {unknown[:10]}"
            )
        rows = _as_numbers([[row[f] for f in features] for row in rows])
    if rows.ndim != 2 or rows.shape[1] != len(features):
        width = rows.shape[1] if rows.ndim == 2 else 0
        raise InvalidInput(
            f"each row needs {len(features)} values ({','.join(features)}), got {width}"
        )
    if not np.isfinite(rows).all():
        raise InvalidInput("NaN or infinite values are not accepted")
    return rows


def category_key(value: object) -> str | None:
    """The text a categorical value is known by, the same in training and serving:
    1, 1.0, "1" and "1.0" are all "1"; empty, NaN and None are missing (None)."""
    if value is None or isinstance(value, list | dict):
        return None
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        if not math.isfinite(number):
            return None
        return str(int(number)) if number.is_integer() else repr(number)
    text = str(value).strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return category_key(number) if math.isfinite(number) else None


def category_keys(values: pd.Series) -> pd.Series:
    """`category_key` of every value, computed once per distinct value."""
    distinct = values.dropna().unique()
    return values.map({v: category_key(v) for v in distinct}).astype(object)


def encode_categories(values: pd.Series, levels: list[str]) -> pd.Series:
    """A categorical column with exactly `levels`; any other value becomes missing."""
    keys = category_keys(values)
    keys = keys.where(keys.isin(levels))
    return pd.Series(pd.Categorical(keys, categories=levels), index=values.index, name=values.name)


def _number(name: str, value: object) -> float:
    """A numeric feature's value from a request (a number, or text that reads as one)."""
    if not isinstance(value, bool) and isinstance(value, int | float | str):
        try:
            return float(value)
        except (ValueError, OverflowError):
            pass
    raise InvalidInput(f"{name}: non-numeric value {str(value)[:40]!r}")


def encode_frame(frame: pd.DataFrame, categories: dict[str, list[str]]) -> pd.DataFrame:
    """Raw feature columns -> what the booster takes: floats, and categoricals with fixed levels."""
    columns = {}
    for name in frame.columns:
        if name in categories:
            columns[name] = encode_categories(frame[name], categories[name])
            continue
        column = frame[name]
        if column.dtype == object:
            column = column.map({v: _number(name, v) for v in column.unique()})
        columns[name] = column.astype(np.float64)
    return pd.DataFrame(columns, index=frame.index)


def encode_labels(target: pd.Series, class_labels: list[str]) -> np.ndarray:
    """0/1 targets from labels as read ("no"/"yes", 0/1...), by the manifest's [negative, positive]."""
    keys = category_keys(target)
    unknown = keys[~keys.isin(class_labels)]
    if not unknown.empty:
        raise ValueError(
            f"label {unknown.iloc[0]!r} is not one of the training labels {class_labels}"
        )
    return (keys == class_labels[1]).to_numpy(dtype=np.float64)


def _records(rows: np.ndarray | list, features: list[str]) -> list[list]:
    """Request rows as lists of values in the model's feature order, checked for width."""
    if isinstance(rows, np.ndarray):
        records = rows.tolist() if rows.ndim == 2 else []
    elif rows and all(isinstance(row, dict) for row in rows):
        unknown = sorted({k for row in rows for k in row} - set(features))
        missing = sorted({f for row in rows for f in features if f not in row})
        if unknown or missing:
            raise InvalidInput(
                f"objects need exactly {features}; missing {missing}, unknown {unknown[:10]}"
            )
        records = [[row[f] for f in features] for row in rows]
    else:
        records = list(rows)
    widths = {len(r) if isinstance(r, list) else -1 for r in records}
    if widths != {len(features)}:
        width = max(widths, default=0)
        raise InvalidInput(
            f"each row needs {len(features)} values ({','.join(features)}), got {width}"
        )
    return records


def to_codes(rows: np.ndarray | list, model: Model) -> np.ndarray:
    """Request rows as a float matrix for a model with categorical features: numbers as they
    are, a category as its index in the manifest's levels (the code training gave it), a
    missing or never-seen one as NaN. XGBoost reads the codes by the booster's feature types.

    Plain Python per value: a request's few rows cost microseconds here, where building a
    pandas categorical frame costs milliseconds (bench/tasks.py)."""
    features, codes = model.features, model.category_codes
    records = _records(rows, features)
    out = np.empty((len(records), len(features)), dtype=np.float64)
    for r, record in enumerate(records):
        for c, value in enumerate(record):
            if isinstance(value, list | dict):
                raise InvalidInput(f"values must be numbers or strings, got {str(value)[:40]!r}")
            table = codes[c]
            if table is None:
                out[r, c] = _number(features[c], value)
            else:
                key = category_key(value)
                out[r, c] = table.get(key, np.nan) if key is not None else np.nan
    numeric = [c for c, table in enumerate(codes) if table is None]
    if numeric and not np.isfinite(out[:, numeric]).all():
        raise InvalidInput("NaN or infinite values are not accepted")
    return out


def predict_fn(input_data: np.ndarray | list, model: Model) -> np.ndarray:
    """One prediction per row: a price, or the positive class's probability."""
    if model.categories:
        scores = model.booster.inplace_predict(to_codes(input_data, model))
    else:
        scores = model.booster.inplace_predict(to_matrix(input_data, model.features))
    if model.class_labels is None:
        return scores
    out = np.asarray(scores, dtype=np.float64).view(Predictions)
    out.labels, out.threshold = tuple(model.class_labels), model.threshold
    return out


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
