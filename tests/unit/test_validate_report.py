"""The validation report (stepkit): the one-line summary, the table and the PR-comment Markdown."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import validate

from stepkit.failures import (
    column_list_difference,
    expected_text,
    failure_finding,
    text_column_detail,
)
from stepkit.validation_report import (
    render_markdown,
    summary_line,
    unusable_report,
    write_report,
)


def failure(expectation="expect_column_values_to_be_between", column="A", **kw) -> dict:
    base = {
        "expectation": expectation,
        "column": column,
        "observed": None,
        "unexpected_count": None,
        "unexpected_percent": None,
        "examples": [],
        "expected": "",
        "error": None,
        "notes": None,
    }
    return {**base, **kw}


def report(failures: list[dict]) -> dict:
    r = {
        "success": not failures,
        "suite": "s",
        "data": ["/x/data.csv"],
        "rows": 1234,
        "columns": ["A", "B"],
        "evaluated": 20,
        "failed": len(failures),
        "failures": failures,
    }
    r["summary"] = summary_line(r)
    return r


@pytest.mark.parametrize(
    ("expected", "observed", "words"),
    [
        (["A", "B", "C"], ["A", "C"], "missing ['B']"),
        (["A", "B"], ["A", "B", "Z"], "unexpected ['Z']"),
        (["A", "B"], ["B"], "missing ['A']"),
        (["A", "B", "C"], ["A", "C", "B"], "out of order at position 2: expected 'B', found 'C'"),
    ],
)
def test_column_list_difference(expected, observed, words):
    assert column_list_difference(expected, observed) == words


def test_summary_names_the_first_failures_on_one_line():
    fails = [
        failure(column=f"C{i}", unexpected_count=i + 1, unexpected_percent=0.1, examples=[-1])
        for i in range(6)
    ]
    line = report(fails)["summary"]
    assert line.startswith(
        "validation failed: 6 of 20 expectations: "
        "expect_column_values_to_be_between(C0) 1 unexpected (0.1%) e.g. [-1]; "
    )
    assert line.endswith("; and 2 more") and "\n" not in line and "(C4)" not in line


def test_findings_in_words():
    assert failure_finding(failure(observed=435.336184)) == "observed 435.336"
    assert failure_finding(failure(observed=50)) == "observed 50"
    assert failure_finding(failure(error="column 'A' is missing")) == (
        "error: column 'A' is missing"
    )
    assert expected_text({"min_value": 0.0, "strict_min": True, "max_value": 1e7}) == (
        "> 0 and <= 10000000"
    )
    assert expected_text({"value_set": [0, 1]}) == "in [0, 1]"
    assert expected_text({"type_list": ["int64"]}) == "type int64"


def test_text_column_detail():
    values = pd.Series(["1", "2.5", "big", None, "big", "n/a"], dtype=object)
    assert text_column_detail(values) == (
        "column read as object: 3 non-numeric value(s), e.g. 'big', 'n/a'"
    )


def test_markdown_pass_fail_and_unusable(tmp_path):
    passed = render_markdown(report([]))
    assert passed.startswith("### Data validation: ✅ all 20 expectations passed")
    assert "`data.csv`: 1,234 rows, 2 columns" in passed
    failed = render_markdown(
        report([failure(unexpected_count=2, examples=["a|b"], expected=">= 0")])
    )
    assert failed.startswith("### Data validation: ❌ 1 of 20 expectations failed")
    assert "| `expect_column_values_to_be_between` | `A` | >= 0 | 2 unexpected | a\\|b |" in failed
    unusable = unusable_report("data.csv is empty (0 bytes)", ["/x/data.csv"])
    assert validate.exit_code(unusable) == 2
    json_path, md_path = write_report(unusable, tmp_path / "r")
    assert json.loads(json_path.read_text())["summary"] == (
        "unusable input: data.csv is empty (0 bytes)"
    )
    assert "❌ unusable input" in md_path.read_text()


def test_a_failure_on_presence_in_a_text_column_is_not_called_non_numeric():
    """A yes/no target with empty values failed its not-null expectation, and the report
    said "394 non-numeric value(s), e.g. 'no', 'yes'"."""
    from stepkit.failures import describe_failure

    df = pd.DataFrame({"churned": ["yes", None, "no"]})
    result = {
        "expectation_config": {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "churned"},
        },
        "result": {"unexpected_count": 1, "unexpected_percent": 33.3},
    }
    assert failure_finding(describe_failure(result, df)) == "1 unexpected (33.3%)"
    typed = {
        "expectation_config": {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "churned", "min_value": 0},
        },
        "result": {},
    }
    assert "non-numeric" in failure_finding(describe_failure(typed, df))
