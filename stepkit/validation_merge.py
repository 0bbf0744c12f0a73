"""One validation result from the results of the parts of a data set (chunks of a file too
large for memory, or the shards of a sharded input), equal to the result of the whole.

Great Expectations validates a DataFrame in memory. A data set in parts is validated part
by part (`part_result`: the suite's result with counts, and the moments of the columns
whose mean or spread the suite bounds), then merged per expectation:

- a row-wise expectation (values not null, between, in a set, ...): its counts are sums,
  and the verdict follows from them and `mostly`, as GX decides it;
- the row count: the sum, against the bounds;
- a column's mean and standard deviation: from the parts' counts, means and sums of
  squared deviations (Chan et al.'s pairwise update: exact, not an average of averages);
- a column's type: the type the whole column would read as (a part with decimals makes
  the whole column decimal; a part with text, text), judged as GX judged that part;
- the columns: every part has the file's header.

Any other expectation type passes only when it passed on every part (`EXACT_TYPES` lists
the ones merged exactly).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

ROW_COUNT = "expect_table_row_count_to_be_between"
MEAN = "expect_column_mean_to_be_between"
STDEV = "expect_column_stdev_to_be_between"
TYPE_LIST = "expect_column_values_to_be_in_type_list"
OF_TYPE = "expect_column_values_to_be_of_type"
COLUMNS = "expect_table_columns_to_match_ordered_list"
MOMENT_TYPES = (MEAN, STDEV)
EXACT_TYPES = (ROW_COUNT, MEAN, STDEV, TYPE_LIST, OF_TYPE, COLUMNS)  # and every row-wise type
EXAMPLES = 5


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations of a column's numbers (mergeable)."""

    count: int
    mean: float
    m2: float

    @staticmethod
    def of(values: pd.Series) -> Moments:
        numbers = pd.to_numeric(values, errors="coerce").dropna().astype(float)
        if numbers.empty:
            return Moments(0, 0.0, 0.0)
        mean = float(numbers.mean())
        return Moments(len(numbers), mean, float(((numbers - mean) ** 2).sum()))

    def __add__(self, other: Moments) -> Moments:
        if not other.count:
            return self
        if not self.count:
            return other
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / n
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
        return Moments(n, mean, m2)

    @property
    def stdev(self) -> float:
        """The sample standard deviation, as pandas (and so GX) computes it."""
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else float("nan")


def part_result(result: dict, frame: pd.DataFrame, suite: dict) -> dict:
    """What the merge needs of one part: its GX result (SUMMARY format, counts included),
    its row count and the moments of the columns the suite bounds the mean or spread of."""
    columns = {
        e["kwargs"]["column"] for e in suite["expectations"] if e.get("type") in MOMENT_TYPES
    }
    moments = {c: Moments.of(frame[c]) for c in columns if c in frame.columns}
    return {"result": result, "rows": len(frame), "moments": moments}


def _bound(value: Any, parameters: dict) -> Any:
    if isinstance(value, dict) and "$PARAMETER" in value:
        return parameters.get(value["$PARAMETER"])
    return value


def within(value: float, kwargs: dict, parameters: dict) -> bool:
    """GX's between: inclusive bounds unless strict, a missing bound open."""
    low, high = (
        _bound(kwargs.get("min_value"), parameters),
        _bound(kwargs.get("max_value"), parameters),
    )
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if low is not None and (value <= low if kwargs.get("strict_min") else value < low):
        return False
    return not (high is not None and (value >= high if kwargs.get("strict_max") else value > high))


def _type_rank(observed: Any) -> int:
    """How wide a column's type is when parts are read apart: text > decimals > the rest."""
    name = str(observed).lower()
    if name in ("object", "str", "string") or name.startswith(("string", "str")):
        return 2
    return 1 if name.startswith("float") else 0


def _row_wise(results: list[dict], kwargs: dict) -> dict:
    counts = {
        key: sum(int(r["result"].get(key) or 0) for r in results)
        for key in ("element_count", "unexpected_count", "missing_count")
    }
    present = counts["element_count"] - counts["missing_count"]
    unexpected = counts["unexpected_count"]
    share = unexpected / present if present else 0.0
    mostly = kwargs.get("mostly", 1)
    success = unexpected == 0 if mostly >= 1 else (1 - share) >= mostly
    examples = [v for r in results for v in r["result"].get("partial_unexpected_list") or []]
    merged = {
        **counts,
        "unexpected_percent": 100 * share,
        "unexpected_percent_total": (
            100 * unexpected / counts["element_count"] if counts["element_count"] else 0.0
        ),
        "missing_percent": (
            100 * counts["missing_count"] / counts["element_count"]
            if counts["element_count"]
            else 0.0
        ),
        "partial_unexpected_list": examples[:EXAMPLES],
    }
    return {"success": success, "result": merged}


def merge_one(results: list[dict], parts: Sequence[dict], parameters: dict) -> dict:
    """One expectation's merged result (GX's shape: success, expectation_config, result)."""
    config = results[0]["expectation_config"]
    kind, kwargs = config.get("type"), config.get("kwargs", {})
    merged: dict[str, Any] = {"expectation_config": config}
    if kind == ROW_COUNT:
        rows = sum(p["rows"] for p in parts)
        merged.update(success=within(rows, kwargs, parameters), result={"observed_value": rows})
    elif kind in MOMENT_TYPES:
        total = sum((p["moments"][kwargs["column"]] for p in parts), Moments(0, 0.0, 0.0))
        value = total.mean if kind == MEAN else total.stdev
        value = value if total.count else None
        merged.update(success=within(value, kwargs, parameters), result={"observed_value": value})
    elif kind in (TYPE_LIST, OF_TYPE):
        widest = max(results, key=lambda r: _type_rank(r["result"].get("observed_value")))
        merged.update(success=bool(widest.get("success")), result=widest.get("result", {}))
    elif results and "unexpected_count" in (results[0].get("result") or {}):
        merged.update(_row_wise(results, kwargs))
    else:  # the columns (one header for every part), and any type not merged exactly
        failed = [r for r in results if not r.get("success")]
        merged.update(success=not failed, result=(failed or results)[0].get("result", {}))
    for key in ("exception_info",):
        if key in results[0]:
            merged[key] = next(
                (r[key] for r in results if r[key].get("raised_exception")), results[0][key]
            )
    return merged


def merge_results(parts: Sequence[dict], parameters: dict) -> dict:
    """The GX-shaped result of the whole data set, from its parts' `part_result`s."""
    lists = [p["result"]["results"] for p in parts]
    results = [merge_one(list(same), parts, parameters) for same in zip(*lists, strict=True)]
    return {"success": all(r["success"] for r in results), "results": results}
