"""validate: check the raw input against the expectation suite before anything is trained on it.

Runs unchanged as a SageMaker Processing job and under the local runner, and
backs `mlops data validate`. It never imports the `mlops` machinery: the CSV
checks, the Great Expectations plumbing and the report rendering live in
`stepkit/`, which ships in this step's bundle, and Great Expectations is
imported only when a suite is run.

Two kinds of failure, two exit codes:
- 2, unusable input: the file cannot be read as the CSV the suite describes
  (missing, a directory, empty, header only, binary, not UTF-8, another
  delimiter, a duplicated or missing header, ragged rows, over the size limit);
- 1, expectations failed: the file reads, but the data breaks the suite.
Either way the last line printed is one sentence naming what is wrong, because
that is the line a pipeline runner reports. validation.json (machine-readable)
and validation.md (the pull-request comment section) go to the report folder.

The suite is a Great Expectations 1.x suite stored as JSON without GX's ids and
loaded into an ephemeral context. It may use the `{"$PARAMETER": name}`
references `suite_parameters` supplies at validation time.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import pandas as pd

from stepkit import UnusableInput
from stepkit.csv_input import input_files, read_csv_checked, read_input
from stepkit.expectations import load_suite, run_suite
from stepkit.validation_report import (
    build_report,
    failure_table,
    unusable_report,
    write_report,
)

EXIT_PASSED, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2


def suite_parameters(today: date) -> dict:
    """Values for `$PARAMETER` references a suite may use.

    FORK: a suite that needs another run-time value (a date window, a reference
    count) gets it here.
    """
    return {"current_year": today.year, "today": today.isoformat()}


def validate_data(df: pd.DataFrame, suite: dict, sources: list[str], today: date) -> dict:
    """The validation report of a DataFrame read from `sources`."""
    return build_report(run_suite(df, suite, suite_parameters(today)), suite, sources, df)


def validate_input(raw: Path, suite_file: Path, max_mb: float, today: date) -> dict:
    """The step's input: a CSV file or a folder of them, read, checked and validated."""
    suite = load_suite(suite_file)
    df = read_input(raw, max_mb)
    return validate_data(df, suite, [str(f) for f in input_files(raw)], today)


def validate_file(path: Path, suite_file: Path, max_mb: float, today: date) -> dict:
    """Exactly one CSV file, read, checked and validated (a folder is unusable input here)."""
    suite = load_suite(suite_file)
    return validate_data(read_csv_checked(path, max_mb), suite, [str(path)], today)


def exit_code(report: dict) -> int:
    """0 passed, 1 expectations failed, 2 unusable input."""
    if report.get("unusable"):
        return EXIT_UNUSABLE
    return EXIT_PASSED if report["success"] else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raw-dir", type=Path, default=Path("/opt/ml/processing/input"))
    p.add_argument("--suite-dir", type=Path, default=Path("/opt/ml/processing/suite"))
    p.add_argument("--report-dir", type=Path, default=Path("/opt/ml/processing/report"))
    p.add_argument("--max-file-mb", type=float, default=2048, help="refuse larger input files")
    args = p.parse_args(argv)

    try:
        report = validate_input(args.raw_dir, args.suite_dir, args.max_file_mb, date.today())
    except UnusableInput as exc:
        report = unusable_report(str(exc), [str(args.raw_dir)])
    write_report(report, args.report_dir)
    if report["failures"]:
        print(failure_table(report), flush=True)
    stream = sys.stdout if report["success"] else sys.stderr
    print(report["summary"], file=stream, flush=True)
    return exit_code(report)


if __name__ == "__main__":
    sys.exit(main())
