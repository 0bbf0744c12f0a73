"""Row-level quarantine: a few bad rows are set aside with their reasons instead of failing a run.

An expectation that judges values one row at a time (`expect_column_values_to_be_between`,
`..._to_not_be_null`, `..._to_be_in_set`...) names the rows it rejects. When every
failure of a suite is of that kind and the rejected rows are at most
`data.max_quarantined_pct` of all rows, those rows go to `quarantine.csv` (each with
the expectations it broke) and the rest must pass the whole suite again. Anything
else fails the run as before: a table-level failure (columns, types, row count,
aggregates) or more bad rows than the configured share.

Preprocess drops the rows listed in `rows.json` (positions in the concatenated input,
read in the same file order) so the data itself is never rewritten.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from stepkit.expectations import EXAMPLES, _run_gx

QUARANTINE_FILE = "quarantine.csv"
ROWS_FILE = "rows.json"
REASON = "quarantine_reason"
ROW = "row"
# Column-map expectations GX evaluates on the column's dtype, not row by row: table-level.
TABLE_LEVEL_SUFFIXES = ("_to_be_of_type", "_to_be_in_type_list")
SAMPLE_ROWS = 5


@dataclass(frozen=True)
class RowFailures:
    """Row position -> the expectations it broke, or why the failures are not row-level."""

    reasons: dict[int, list[str]] = field(default_factory=dict)
    table_level: list[str] = field(default_factory=list)


def _label(config: dict) -> str:
    column = config.get("kwargs", {}).get("column")
    return config.get("type", "?") + (f"({column})" if column else "")


def row_failures(df: pd.DataFrame, suite: dict, parameters: dict) -> RowFailures:
    """Which rows break which expectation (one GX run listing every unexpected index)."""
    result = _run_gx(
        df, suite, parameters, {"result_format": "COMPLETE", "partial_unexpected_count": EXAMPLES}
    )
    found = RowFailures()
    for item in result["results"]:
        if item["success"]:
            continue
        config = item.get("expectation_config", {})
        indices = (item.get("result") or {}).get("unexpected_index_list")
        if config.get("type", "").endswith(TABLE_LEVEL_SUFFIXES) or not isinstance(indices, list):
            found.table_level.append(_label(config))
            continue
        for index in indices:
            position = index if isinstance(index, int) else None
            if position is None:  # GX may report {"index": i} rows for some expectations
                found.table_level.append(_label(config))
                break
            found.reasons.setdefault(position, []).append(_label(config))
    return found


def quarantine_summary(df: pd.DataFrame, reasons: dict[int, list[str]], limit_pct: float) -> dict:
    """Counts and a sample of quarantined rows, as the report and the lineage record them."""
    rows = sorted(reasons)
    sample = [
        {ROW: row, REASON: "; ".join(reasons[row]), **_plain_row(df.iloc[row])}
        for row in rows[:SAMPLE_ROWS]
    ]
    return {
        "rows": len(rows),
        "pct": round(100 * len(rows) / max(len(df), 1), 4),
        "max_pct": limit_pct,
        "total_rows": len(df),
        "sample": sample,
    }


def _plain_row(series: pd.Series) -> dict:
    return {
        str(k): (None if pd.isna(v) else v.item() if hasattr(v, "item") else v)
        for k, v in series.items()
    }


def write_quarantine(df: pd.DataFrame, reasons: dict[int, list[str]], folder: Path) -> None:
    """quarantine.csv (the rows, their position and reasons) and rows.json, each atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = sorted(reasons)
    table = df.iloc[rows].copy()
    table.insert(0, REASON, ["; ".join(reasons[r]) for r in rows])
    table.insert(0, ROW, rows)
    _atomic(folder / QUARANTINE_FILE, table.to_csv(index=False))
    _atomic(folder / ROWS_FILE, json.dumps(rows))


def read_quarantined_rows(folder: Path | None) -> list[int]:
    """The row positions a validate step quarantined ([] when none or no folder)."""
    if folder is None or not (Path(folder) / ROWS_FILE).is_file():
        return []
    return [int(r) for r in json.loads((Path(folder) / ROWS_FILE).read_text())]


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def quarantine_markdown(summary: dict) -> str:
    """The quarantine part of the data-validation section: count, share, a sample with reasons."""
    lines = [
        f"**{summary['rows']:,} of {summary['total_rows']:,} rows quarantined** "
        f"({summary['pct']:g} %, limit {summary['max_pct']:g} %): set aside with their reasons "
        f"in `{QUARANTINE_FILE}`, not trained on.",
        "",
        "| Row | Reason |",
        "|---|---|",
    ]
    lines += [f"| {r[ROW]} | {r[REASON]} |" for r in summary["sample"]]
    return "\n".join(lines) + "\n"
