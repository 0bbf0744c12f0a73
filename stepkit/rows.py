"""Raw rows as a model takes them: the one reader of feature values, for every path.

Training reads the split files, evaluation the held-out and golden rows, the endpoint
its requests, batch scoring and monitoring their files and captures: all of them turn
raw values into a typed frame here, so a value means the same everywhere.

- A number feature is a float. Empty, `nan`, `NA`, `null` and `None` are a missing
  value (NaN); the model family decides what a missing value means (XGBoost and
  scikit-learn's HistGradientBoosting learn it). Text that is not a number, and
  infinity, make the row unscorable, with the reason.
- A text feature (a category) is kept as its key (`category_key`): 1, 1.0 and "1" are
  the same level, surrounding blanks do not count, and an empty value is missing.
  Which levels the model knows is the fitted preprocessing's business (features.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

# Spellings of "no value" in a number column (they can never be numbers themselves).
MISSING_NUMBER_TEXT = frozenset({"", "nan", "na", "n/a", "null", "none"})


class RowError(ValueError):
    """Rows that cannot be scored; `reasons` holds one entry per row ("" when it can be)."""

    def __init__(self, reasons: np.ndarray):
        self.reasons = reasons
        bad = np.flatnonzero(reasons != "")
        first = int(bad[0]) if bad.size else 0
        where = f"row {first + 1}: " if len(reasons) > 1 else ""
        super().__init__(f"{where}{reasons[first]}")


def category_key(value: object) -> str | None:
    """The text a category value is known by, the same in training and serving:
    1, 1.0, "1" and "1.0" are all "1"; True is "true"; empty, NaN and None are missing."""
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
    """`category_key` of every value, computed once per distinct value (None for missing)."""
    distinct = values.dropna().unique()
    if pd.api.types.is_bool_dtype(values) or (
        values.dtype == object and any(isinstance(v, bool | np.bool_) for v in values.to_numpy())
    ):
        # True == 1 and False == 0 (as dict keys, and for unique()), but "true" and "1" are
        # different levels
        keys = pd.Series([category_key(v) for v in values], index=values.index, dtype=object)
    else:
        keys = values.map({v: category_key(v) for v in distinct}).astype(object)
    return keys.where(keys.notna(), None)


@functools.lru_cache(maxsize=1024)
def _levels(levels: tuple[str, ...]) -> tuple[pd.CategoricalDtype, dict[str, int]]:
    return pd.CategoricalDtype(list(levels)), {level: i for i, level in enumerate(levels)}


def as_category(keys: pd.Series | np.ndarray, levels: Sequence[str]) -> pd.Categorical:
    """Category keys as a categorical with exactly `levels` (in that order: a level's code is
    its position); a key outside them, or None, is missing. What pandas' own constructor
    does, ~25x cheaper for a request's few rows (it hashes the levels on every call)."""
    dtype, index = _levels(tuple(levels))
    raw = keys.to_numpy(dtype=object) if isinstance(keys, pd.Series) else keys
    codes = np.fromiter((index.get(key, -1) for key in raw), dtype=np.int64, count=len(raw))
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _number(name: str, value: object) -> tuple[float, str]:
    """One raw value as a float (NaN for missing) and the reason it is not a number ("")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan, ""
    if isinstance(value, bool | np.bool_):
        return math.nan, f"{name}: a number is needed, not true/false"
    if isinstance(value, int | float | np.integer | np.floating):
        try:
            return float(value), ""
        except OverflowError:  # an integer past the float range
            return math.inf, ""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in MISSING_NUMBER_TEXT:
            return math.nan, ""
        try:
            return float(text), ""
        except ValueError:
            pass
    return math.nan, f"{name} is not a number: {str(value)[:40]!r}"


def _numbers(name: str, column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A column as floats (NaN for missing) and per value the reason it is not one."""
    reasons = np.full(len(column), "", dtype=object)
    if pd.api.types.is_bool_dtype(column):
        reasons[:] = f"{name}: a number is needed, not true/false"
        return np.full(len(column), np.nan), reasons
    if pd.api.types.is_numeric_dtype(column):
        values = np.array(column.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    else:
        # The fast path for text; what it cannot read (missing spellings, blanks, words,
        # huge integers) and JSON's true/false (which it would read as 1/0) go one by one.
        raw = column.to_numpy(dtype=object)
        try:
            numeric = pd.to_numeric(column, errors="coerce")
            values = np.array(numeric.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
        except (OverflowError, TypeError, ValueError):
            values = np.full(len(column), np.nan)
        slow = np.isnan(values)
        if column.dtype == object:
            slow |= np.fromiter((isinstance(v, bool | np.bool_) for v in raw), bool, len(raw))
        for i in np.flatnonzero(slow):
            values[i], reasons[i] = _number(name, raw[i])
    infinite = np.isinf(values)
    if infinite.any():
        reasons[infinite & (reasons == "")] = f"{name} is not finite"
        values = np.where(infinite, np.nan, values)  # `values` may be a read-only view
    return values, reasons


def _float_frame(rows: np.ndarray, columns: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """`typed_frame` of a float matrix without text features (what a request of numbers
    parses into): one frame over the matrix, instead of a column at a time, which costs
    ten times as much for a request of one row. The same values and reasons."""
    values = rows.astype(np.float64, copy=False)
    reasons = np.full(len(values), "", dtype=object)
    infinite = np.isinf(values)
    if infinite.any():
        for row in np.flatnonzero(infinite.any(axis=1)):
            reasons[row] = f"{columns[int(np.argmax(infinite[row]))]} is not finite"
        values = np.where(infinite, np.nan, values)
    return pd.DataFrame(values, columns=columns), reasons


SMALL_ROWS = 256  # up to this many records (an endpoint's request) are typed value by value


def _few_records(
    rows: Sequence[Sequence], columns: list[str], text: set[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """`typed_frame` of a few records, value by value: a request of one row costs ~0.1 ms
    here against ~2.5 ms a column at a time in pandas. The same values and reasons."""
    reasons = np.full(len(rows), "", dtype=object)
    out: dict[str, object] = {}
    for j, name in enumerate(columns):
        if name in text:
            keys = [category_key(row[j]) for row in rows]
            out[name] = pd.Series(keys, dtype=object)  # object: a missing key stays None
            continue
        values = np.empty(len(rows), dtype=np.float64)
        for i, row in enumerate(rows):
            values[i], why = _number(name, row[j])
            if not why and math.isinf(values[i]):
                values[i], why = math.nan, f"{name} is not finite"
            if why and not reasons[i]:
                reasons[i] = why
        out[name] = values
    return pd.DataFrame(out), reasons


def typed_frame(
    rows: pd.DataFrame | Sequence[Sequence] | np.ndarray, columns: list[str], text: Sequence[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Raw rows (a frame with these columns, or records in this column order) as a frame of
    floats and category keys, and per row the first reason it cannot be scored ("")."""
    if isinstance(rows, np.ndarray) and rows.ndim == 2 and rows.dtype.kind == "f" and not text:
        return _float_frame(rows, columns)
    if isinstance(rows, list) and len(rows) <= SMALL_ROWS:
        return _few_records(rows, columns, set(text))
    if isinstance(rows, pd.DataFrame):
        frame = rows
    elif isinstance(rows, np.ndarray) and rows.ndim == 2 and rows.dtype.kind == "f":
        frame = pd.DataFrame(rows, columns=columns)
    else:
        frame = pd.DataFrame(list(rows), columns=columns, dtype=object)
    text = set(text)
    out: dict[str, object] = {}
    reasons = np.full(len(frame), "", dtype=object)
    for name in columns:
        if name in text:
            # object, not pandas' inferred text dtype: a missing key stays None
            out[name] = pd.Series(
                category_keys(frame[name]).to_numpy(dtype=object), index=frame.index, dtype=object
            )
            continue
        values, why = _numbers(name, frame[name])
        out[name] = values
        first = (reasons == "") & (why != "")
        reasons[first] = why[first]
    return pd.DataFrame(out, index=frame.index), reasons


def checked_frame(
    rows: pd.DataFrame | Sequence[Sequence] | np.ndarray, columns: list[str], text: Sequence[str]
) -> pd.DataFrame:
    """`typed_frame`, raising RowError when any row cannot be scored."""
    frame, reasons = typed_frame(rows, columns, text)
    if (reasons != "").any():
        raise RowError(reasons)
    return frame
