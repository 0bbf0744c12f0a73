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
  Rows that fail row-level expectations, up to `--max-quarantined-pct` of all rows
  (config `data.max_quarantined_pct`), are quarantined instead: written with their
  reasons to the quarantine folder, dropped by preprocess, and the step passes
  (`stepkit.quarantine`).
With `sagemaker.processing_instance_count` > 1 the step runs twice (docs/scale.md):
`--part` on every instance, each validating its share of the input files and writing
its results (`shard-<host>.json`, no verdict, no quarantine: a row's position means
nothing in a share); then `--merge` on one instance merges them into the whole input's
report (stepkit.validation_merge), with the exit codes above.
Either way the last line printed is one sentence naming what is wrong, because
that is the line a pipeline runner reports. validation.json (machine-readable)
and validation.md (the pull-request comment section) go to the report folder.

The suite is a Great Expectations 1.x suite stored as JSON without GX's ids and
loaded into an ephemeral context. It may use the `{"$PARAMETER": name}`
references `suite_parameters` supplies at validation time.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import date
from pathlib import Path

import pandas as pd

from stepkit import UnusableInput
from stepkit.csv_input import input_files, read_csv_checked, read_csv_chunks, read_input
from stepkit.distributed import PROCESSING_RESOURCE_CONFIG, processing_hosts
from stepkit.expectations import load_suite, run_suite, run_suite_with_counts
from stepkit.quarantine import quarantine_summary, row_failures, write_quarantine
from stepkit.validation_merge import Moments, merge_results, part_result
from stepkit.validation_report import (
    build_report,
    failure_table,
    summary_line,
    unusable_report,
    write_report,
)

EXIT_PASSED, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2
# Inputs above this size are validated a chunk at a time, their results merged: memory
# stays flat (about 100 MB for a 10-column chunk) whatever the input's size. Row-level
# quarantine needs the whole input in memory, so it applies below this size only (and
# this is not data.stream_above_mb, which the steps after validate read).
STREAM_ABOVE_MB = 256
CHUNK_ROWS = 500_000
EXAMPLE_ROWS = 1000  # rows kept to describe a failure (a text column's values)
SHARD_FILE = "shard"  # a sharded validate instance's results: shard-<host>.json


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


def input_mb(raw: Path) -> float:
    return sum(f.stat().st_size for f in input_files(raw)) / 2**20


def chunk_parts(
    raw: Path, suite: dict, parameters: dict, max_mb: float, chunk_rows: int = CHUNK_ROWS
) -> tuple[list[Path], list[dict], pd.DataFrame]:
    """An input validated a chunk at a time: its files, the chunks' `part_result`s and the
    first rows (to describe a failure), memory flat."""
    files, parts, head = input_files(raw), [], None
    for path in files:
        for chunk in read_csv_chunks(path, max_mb, chunk_rows):
            if head is not None and list(chunk.columns) != list(head.columns):
                raise UnusableInput(f"{path} has other columns than {files[0]}")
            parts.append(part_result(run_suite_with_counts(chunk, suite, parameters), chunk, suite))
            head = chunk.head(EXAMPLE_ROWS) if head is None else head
    return files, parts, head


def merged_report(
    parts: list[dict], suite: dict, parameters: dict, sources: list[str], head: pd.DataFrame
) -> dict:
    """The report of a whole input from its parts' results (stepkit.validation_merge)."""
    report = build_report(merge_results(parts, parameters), suite, sources, head)
    report["rows"] = sum(p["rows"] for p in parts)
    report["summary"] = summary_line(report)
    return report


def validate_stream(
    raw: Path, suite_file: Path, max_mb: float, today: date, chunk_rows: int = CHUNK_ROWS
) -> dict:
    """The report of an input too large to hold: validated a chunk at a time and the chunks'
    results merged into the whole input's (stepkit.validation_merge), memory flat."""
    suite, parameters = load_suite(suite_file), suite_parameters(today)
    files, parts, head = chunk_parts(raw, suite, parameters, max_mb, chunk_rows)
    return merged_report(parts, suite, parameters, [str(f) for f in files], head)


def validate_shard(
    raw: Path, suite_file: Path, max_mb: float, today: date, chunk_rows: int = CHUNK_ROWS
) -> dict:
    """One instance's share of a sharded input (its files), validated a chunk at a time: what
    `merge_shards` needs of it, as JSON. No verdict here: the whole input's is the merge's."""
    suite, parameters = load_suite(suite_file), suite_parameters(today)
    files, parts, head = chunk_parts(raw, suite, parameters, max_mb, chunk_rows)
    return {
        "sources": [str(f) for f in files],
        "parts": [{**p, "moments": {c: asdict(m) for c, m in p["moments"].items()}} for p in parts],
        "head": head.to_dict(orient="split", index=False),
    }


def merge_shards(shards: list[dict], suite_file: Path, today: date) -> dict:
    """The report of the whole sharded input, from every instance's `validate_shard`."""
    if not shards:
        raise UnusableInput("no shard results to merge (did every validate instance fail?)")
    suite, parameters = load_suite(suite_file), suite_parameters(today)
    parts = [
        {**p, "moments": {c: Moments(**m) for c, m in p["moments"].items()}}
        for shard in shards
        for p in shard["parts"]
    ]
    head = pd.DataFrame(**shards[0]["head"])
    sources = [source for shard in shards for source in shard["sources"]]
    return merged_report(parts, suite, parameters, sources, head)


def validate_with_quarantine(
    raw: Path, suite_file: Path, max_mb: float, today: date, max_pct: float
) -> tuple[dict, dict[int, list[str]], pd.DataFrame]:
    """The step's verdict with row-level quarantine (see stepkit.quarantine): the report, the
    quarantined rows with their reasons, and the data as read."""
    suite = load_suite(suite_file)
    df = read_input(raw, max_mb)
    sources = [str(f) for f in input_files(raw)]
    report = validate_data(df, suite, sources, today)
    if report["success"] or max_pct <= 0:
        return report, {}, df
    found = row_failures(df, suite, suite_parameters(today))
    if found.table_level or not found.reasons:
        return report, {}, df
    share = 100 * len(found.reasons) / len(df)
    if share > max_pct:
        report["summary"] += (
            f" ({len(found.reasons)} rows fail row-level checks: {share:.3g} % is above "
            f"data.max_quarantined_pct {max_pct:g} %)"
        )
        return report, {}, df
    clean = df.drop(index=df.index[sorted(found.reasons)]).reset_index(drop=True)
    clean_report = validate_data(clean, suite, sources, today)
    if not clean_report["success"]:  # e.g. too few rows left: the table-level verdict stands
        return report, {}, df
    clean_report["quarantine"] = quarantine_summary(df, found.reasons, max_pct)
    clean_report["summary"] += (
        f"; {len(found.reasons)} row(s) quarantined ({share:.3g} %, limit {max_pct:g} %)"
    )
    return clean_report, found.reasons, df


def exit_code(report: dict) -> int:
    """0 passed, 1 expectations failed, 2 unusable input."""
    if report.get("unusable"):
        return EXIT_UNUSABLE
    return EXIT_PASSED if report["success"] else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raw-dir", type=Path, default=Path("/opt/ml/processing/raw"))
    p.add_argument("--suite-dir", type=Path, default=Path("/opt/ml/processing/suite"))
    p.add_argument("--report-dir", type=Path, default=Path("/opt/ml/processing/report"))
    p.add_argument("--max-file-mb", type=float, default=2048, help="refuse larger input files")
    p.add_argument("--quarantine-dir", type=Path, default=Path("/opt/ml/processing/quarantine"))
    p.add_argument(
        "--max-quarantined-pct",
        type=float,
        default=0.0,
        help="rows failing row-level expectations, up to this share, are quarantined",
    )
    p.add_argument(
        "--stream-above-mb",
        type=float,
        default=STREAM_ABOVE_MB,
        help="larger inputs are validated a chunk at a time (without quarantine)",
    )
    p.add_argument(
        "--part",
        action="store_true",
        help="validate this instance's share of a sharded input; write its results, no verdict",
    )
    p.add_argument(
        "--merge", action="store_true", help="the verdict of a sharded input, from --parts-dir"
    )
    p.add_argument("--parts-dir", type=Path, default=Path("/opt/ml/processing/parts"))
    p.add_argument("--resource-config", type=Path, default=PROCESSING_RESOURCE_CONFIG)
    args = p.parse_args(argv)
    if args.part:
        return validate_part_main(args)

    reasons: dict[int, list[str]] = {}
    df = pd.DataFrame()
    try:
        if args.merge:
            report = merge_shards(read_shards(args.parts_dir), args.suite_dir, date.today())
        elif input_mb(args.raw_dir) > args.stream_above_mb:
            report = validate_stream(args.raw_dir, args.suite_dir, args.max_file_mb, date.today())
        else:
            report, reasons, df = validate_with_quarantine(
                args.raw_dir,
                args.suite_dir,
                args.max_file_mb,
                date.today(),
                args.max_quarantined_pct,
            )
    except UnusableInput as exc:
        report = unusable_report(str(exc), [str(args.raw_dir)])
    if report["success"]:
        write_quarantine(df, reasons, args.quarantine_dir)  # rows.json exists even when empty
    write_report(report, args.report_dir)
    if report["failures"]:
        print(failure_table(report), flush=True)
    stream = sys.stdout if report["success"] else sys.stderr
    print(report["summary"], file=stream, flush=True)
    return exit_code(report)


def read_shards(folder: Path) -> list[dict]:
    """Every instance's `validate_shard` result in a folder (shard*.json)."""
    return [json.loads(f.read_text()) for f in sorted(Path(folder).glob(f"{SHARD_FILE}*.json"))]


def validate_part_main(args: argparse.Namespace) -> int:
    """One instance of a sharded validate: its results as shard-<host>.json in the report
    folder (beside the other instances'); exit 2 only when its share is unusable."""
    hosts = processing_hosts(args.resource_config)
    try:
        shard = validate_shard(args.raw_dir, args.suite_dir, args.max_file_mb, date.today())
    except UnusableInput as exc:
        print(f"{hosts.current}: {exc}", file=sys.stderr, flush=True)
        return EXIT_UNUSABLE
    args.report_dir.mkdir(parents=True, exist_ok=True)
    (args.report_dir / hosts.file_name(SHARD_FILE, ".json")).write_text(json.dumps(shard))
    rows = sum(p["rows"] for p in shard["parts"])
    print(f"{hosts.current}: {rows} rows validated; the verdict is the merge's", flush=True)
    return EXIT_PASSED


if __name__ == "__main__":
    sys.exit(main())
