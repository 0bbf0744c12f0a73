"""inference: SageMaker framework handler functions for the XGBoost model.

Loaded by SageMaker's XGBoost 3.2-0 serving container (SAGEMAKER_PROGRAM=inference.py)
and, unchanged, by the local endpoint server and the evaluate step. A request holds
raw feature rows as in the source CSV, without the target:

- text/csv:          one row per line, no header, features in the training order
- application/json:  a list of rows (lists of numbers), or a list of objects keyed
                     by feature name; one row or one object alone, and
                     `{"instances": [...]}`, are accepted too

Bad input raises `InvalidInput` (the server answers 400) or
`UnsupportedContentType` (415); nothing here can take the server down.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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


def _parse_csv(text: str) -> np.ndarray:
    rows = [line for line in text.splitlines() if line.strip()]
    if not rows:
        raise InvalidInput("empty body: send one CSV row of features per line")
    if len({row.count(",") for row in rows}) != 1:
        raise InvalidInput("CSV rows have different numbers of values")
    try:
        return np.loadtxt(
            io.StringIO("\n".join(rows)), delimiter=",", dtype=np.float64, ndmin=2, comments=None
        )
    except ValueError as exc:
        raise InvalidInput(f"CSV rows must hold numbers only (no header row): {exc}") from None


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
    return _as_numbers(payload)


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


def predict_fn(input_data: np.ndarray | list[dict], model: Model) -> np.ndarray:
    """Predicted prices, one per row."""
    matrix = to_matrix(input_data, model.features)
    return model.booster.inplace_predict(matrix)


def output_fn(prediction: np.ndarray, accept: str | None = JSON) -> tuple[str, str]:
    """CSV (one prediction per line) or JSON `{"predictions": [...]}`; JSON unless CSV is asked for."""
    values = [float(v) for v in np.asarray(prediction).ravel()]
    if not all(math.isfinite(v) for v in values):
        raise InvalidInput("the model produced a non-finite prediction")
    if _base_type(accept) == CSV:
        return "\n".join(repr(v) for v in values) + "\n", CSV
    return json.dumps({"predictions": values}), JSON
