"""The validation report and its three renderings: one summary line, a table, Markdown.

The summary line is the last thing a failed step prints (what a pipeline runner
shows), the table is for a terminal or a log, and validation.json plus
validation.md go to the report folder: the machine-readable report and the
data-validation section of the pull-request comment.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from stepkit.failures import compact, describe_failure, failure_finding, failure_label
from stepkit.quarantine import quarantine_markdown

SUMMARY_ITEMS = 4  # failed expectations named in the one-line summary


def summary_line(report: dict) -> str:
    """The one line a pipeline runner shows: verdict, count, the first failures by name."""
    if report.get("unusable"):
        return f"unusable input: {report['unusable']}"
    if report["success"]:
        return f"validation passed: {report['evaluated']} expectations on {report['rows']} rows"
    failures = report["failures"]
    named = "; ".join(
        f"{failure_label(f)} {compact(failure_finding(f), 80)}" for f in failures[:SUMMARY_ITEMS]
    )
    more = f"; and {len(failures) - SUMMARY_ITEMS} more" if len(failures) > SUMMARY_ITEMS else ""
    return (
        f"validation failed: {len(failures)} of {report['evaluated']} expectations: {named}{more}"
    )


def build_report(result: dict, suite: dict, sources: list[str], df: pd.DataFrame) -> dict:
    """The validation report: verdict, what was checked, and each failed expectation."""
    results = result.get("results", [])
    failures = [describe_failure(r, df) for r in results if not r.get("success")]
    report = {
        "success": bool(result.get("success")) and not failures,
        "suite": suite.get("name", ""),
        "data": sources,
        "rows": len(df),
        "columns": [str(c) for c in df.columns],
        "evaluated": len(results),
        "failed": len(failures),
        "failures": failures,
    }
    report["summary"] = summary_line(report)
    return report


def unusable_report(message: str, sources: list[str]) -> dict:
    """The report of an input that could not be validated at all."""
    report = {"success": False, "unusable": message, "data": sources, "failures": []}
    report["summary"] = summary_line(report)
    return report


def failure_table(report: dict) -> str:
    """The failed expectations as a fixed-width table for a terminal or a log."""
    rows = [(failure_label(f), f["expected"] or "", failure_finding(f)) for f in report["failures"]]
    first = max([len("EXPECTATION"), *(len(r[0]) for r in rows)])
    second = max([len("EXPECTED"), *(len(r[1]) for r in rows)])
    lines = [f"{'EXPECTATION':<{first}}  {'EXPECTED':<{second}}  FOUND"]
    lines += [f"{a:<{first}}  {b:<{second}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict) -> str:
    """The data-validation section of the pull-request comment."""
    data = ", ".join(f"`{Path(s).name}`" for s in report.get("data", [])) or "the input"
    if report.get("unusable"):
        return f"### Data validation: ❌ unusable input\n\n{data}: {_md(report['unusable'])}\n"
    scope = f"Suite `{report['suite']}` on {data}: {report['rows']:,} rows, {len(report['columns'])} columns."
    if report["success"]:
        text = f"### Data validation: ✅ all {report['evaluated']} expectations passed\n\n{scope}\n"
        if report.get("quarantine", {}).get("rows"):
            text += "\n" + quarantine_markdown(report["quarantine"])
        return text
    lines = [
        f"### Data validation: ❌ {report['failed']} of {report['evaluated']} expectations failed",
        "",
        scope,
        "",
        "| Expectation | Column | Expected | Found | Examples |",
        "|---|---|---|---|---|",
    ]
    for f in report["failures"]:
        examples = ", ".join(compact(e, 30) for e in f["examples"]) if f["examples"] else ""
        column = f"`{f['column']}`" if f["column"] else ""
        lines.append(
            f"| `{f['expectation']}` | {column} | {_md(f['expected'])} | "
            f"{_md(failure_finding(f, with_examples=False))} | {_md(examples)} |"
        )
    return "\n".join(lines) + "\n"


def write_report(report: dict, report_dir: Path) -> tuple[Path, Path]:
    """validation.json and validation.md in `report_dir`."""
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = report_dir / "validation.json", report_dir / "validation.md"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    md_path.write_text(render_markdown(report))
    return json_path, md_path
