"""One failed expectation in words: what was expected, what was found, a few examples.

GX results are nested, differ by expectation type and can hold NaN; the report
wants one flat, JSON-safe dict per failure and short phrases a reviewer reads
at a glance ('> 0 and <= 1e+07', '2 unexpected (0.05%) e.g. [-1]').
"""

from __future__ import annotations

import json
import math

import pandas as pd

from stepkit.expectations import EXAMPLES


def _plain(value):
    """JSON-safe, finite values (NaN becomes None)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _error_message(exception_info: dict) -> str | None:
    """The first exception message of a result, in either shape GX reports them."""
    infos = [exception_info] if "raised_exception" in exception_info else exception_info.values()
    for info in infos:
        if isinstance(info, dict) and info.get("raised_exception"):
            message = str(info.get("exception_message") or "error")
            return message.removeprefix("Error: ").strip().splitlines()[0]
    return None


def column_list_difference(expected: list, observed: list) -> str:
    """What differs between an expected and an observed column list, in words."""
    missing = [c for c in expected if c not in observed]
    extra = [c for c in observed if c not in expected]
    parts = []
    if missing:
        parts.append(f"missing {missing}")
    if extra:
        parts.append(f"unexpected {extra}")
    if not parts:
        position = next(
            i for i, (a, b) in enumerate(zip(expected, observed, strict=False)) if a != b
        )
        parts.append(
            f"out of order at position {position + 1}: expected {expected[position]!r}, "
            f"found {observed[position]!r}"
        )
    return "; ".join(parts)


def describe_failure(result: dict, df: pd.DataFrame) -> dict:
    """One failed expectation as a small dict: what, where, how badly, a few examples."""
    config = result.get("expectation_config", {})
    kwargs = config.get("kwargs", {})
    details = result.get("result") or {}
    failure = {
        "expectation": config.get("type", "?"),
        "column": kwargs.get("column"),
        "observed": _plain(details.get("observed_value")),
        "unexpected_count": details.get("unexpected_count"),
        "unexpected_percent": _plain(details.get("unexpected_percent")),
        "examples": _plain(details.get("partial_unexpected_list", [])[:EXAMPLES]),
        "expected": expected_text(kwargs),
        "error": _error_message(result.get("exception_info") or {}),
        "notes": config.get("notes"),
    }
    expected_columns = kwargs.get("column_list")
    if isinstance(expected_columns, list) and isinstance(failure["observed"], list):
        failure["detail"] = column_list_difference(expected_columns, failure["observed"])
    column = failure["column"]
    if column is not None and column not in df.columns:
        failure["error"] = f"column {column!r} is missing"
    elif (
        column is not None
        and about_numbers(kwargs)
        and not pd.api.types.is_numeric_dtype(df[column])
    ):
        failure["detail"] = text_column_detail(df[column])
    return failure


def about_numbers(kwargs: dict) -> bool:
    """An expectation on numbers (bounds, a numeric type): text in its column is the finding.
    Not for one on presence or levels: a text column's empty target is not 'non-numeric'."""
    types = [str(t) for t in kwargs.get("type_list") or [kwargs.get("type_", "")]]
    return (
        kwargs.get("min_value") is not None
        or kwargs.get("max_value") is not None
        or any(t.startswith(("int", "float")) for t in types)
    )


def text_column_detail(values: pd.Series) -> str:
    """Why a column is not numeric: its type and the values that are not numbers."""
    present = values.dropna()
    text = present[pd.to_numeric(present, errors="coerce").isna()]
    detail = f"column read as {values.dtype}"
    if len(text):
        examples = ", ".join(repr(str(v)) for v in text.unique()[:EXAMPLES])
        detail += f": {len(text)} non-numeric value(s), e.g. {examples}"
    return detail


def _number(value) -> str:
    if isinstance(value, dict) and "$PARAMETER" in value:
        return f"${value['$PARAMETER']}"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    return str(value)


def expected_text(kwargs: dict) -> str:
    """What an expectation asks for, in a few words ('> 0 and <= 1e+07', 'in [0, 1]')."""
    bounds = []
    if kwargs.get("min_value") is not None:
        op = ">" if kwargs.get("strict_min") else ">="
        bounds.append(f"{op} {_number(kwargs['min_value'])}")
    if kwargs.get("max_value") is not None:
        op = "<" if kwargs.get("strict_max") else "<="
        bounds.append(f"{op} {_number(kwargs['max_value'])}")
    if bounds:
        return " and ".join(bounds)
    if "value_set" in kwargs:
        return f"in {compact(kwargs['value_set'])}"
    if "type_list" in kwargs:
        return "type " + " or ".join(map(str, kwargs["type_list"]))
    if "column_list" in kwargs:
        return f"{len(kwargs['column_list'])} columns in order"
    return ""


def compact(value, limit: int = 60) -> str:
    """A value as text of at most `limit` characters (JSON unless it is a string)."""
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failure_finding(failure: dict, with_examples: bool = True) -> str:
    """What was found, in a few words: '2 unexpected (0.05%) e.g. [-1]', 'observed 12.5'..."""
    if failure.get("detail"):
        return failure["detail"]
    if failure["error"]:
        return f"error: {failure['error']}"
    if failure["unexpected_count"]:
        pct = failure["unexpected_percent"]
        text = f"{failure['unexpected_count']} unexpected"
        text += f" ({pct:.3g}%)" if pct is not None else ""
        if with_examples and failure["examples"]:
            text += f" e.g. {compact(failure['examples'], 40)}"
        return text
    if failure["observed"] is not None:
        observed = failure["observed"]
        return f"observed {_number(observed) if isinstance(observed, float) else compact(observed)}"
    return "failed"


def failure_label(failure: dict) -> str:
    """An expectation and its column, as the table and the summary name it."""
    column = failure["column"]
    return failure["expectation"] + (f"({column})" if column else "")
