"""validate: check the raw input against the expectation suite before anything is trained on it.

Runs unchanged as a SageMaker Processing job and under the local runner, and
backs `mlops data validate`. Self-contained: it never imports the `mlops`
machinery, and Great Expectations is imported only when a suite is run.

Two kinds of failure, two exit codes:
- 2, unusable input: the file cannot be read as the CSV the suite describes
  (missing, a directory, empty, header only, binary, not UTF-8, another
  delimiter, a duplicated or missing header, ragged rows, over the size limit);
- 1, expectations failed: the file reads, but the data breaks the suite.
Either way the last line printed is one sentence naming what is wrong, because
that is the line a pipeline runner reports. validation.json (machine-readable)
and validation.md (the pull-request comment section) go to the report folder.

The suite is a Great Expectations 1.x suite stored as JSON without GX's ids and
loaded into an ephemeral context. It may use `{"$PARAMETER": "current_year"}`
or `{"$PARAMETER": "today"}`: their values are supplied at validation time.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import functools
import json
import math
import re
import sys
import uuid
import warnings
from datetime import date
from pathlib import Path

import pandas as pd

EXIT_PASSED, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2
HEAD_BYTES = 1 << 16  # header and content sniffing read this much
EXAMPLES = 5  # example values kept per failed expectation
SUMMARY_ITEMS = 4  # failed expectations named in the one-line summary
OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}
SIGNATURES = {  # leading bytes of formats people send by mistake
    b"\x1f\x8b": "a gzip archive",
    b"PK\x03\x04": "a zip archive (an Excel workbook?)",
    b"PAR1": "a Parquet file",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office document",
    b"%PDF": "a PDF document",
}


class UnusableInput(Exception):
    """The input cannot be validated at all; the message is one line saying why."""


# ---------------------------------------------------------------- reading input


def _size_text(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size} bytes"


def check_file(path: Path, max_mb: float) -> int:
    """Refuse what is not a readable, non-empty file within the size limit; return its size."""
    if not path.exists():
        raise UnusableInput(f"no such file: {path}")
    if path.is_dir():
        raise UnusableInput(f"{path} is a directory, expected a CSV file")
    if not path.is_file():
        raise UnusableInput(f"{path} is not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise UnusableInput(f"{path} is empty (0 bytes)")
    if size > max_mb * 2**20:
        raise UnusableInput(f"{path} is {_size_text(size)}, over the limit of {max_mb:g} MB")
    return size


def decode_head(path: Path, head: bytes) -> str:
    """The first bytes as text; refuse binary and non-UTF-8 content."""
    for magic, kind in SIGNATURES.items():
        if head.startswith(magic):
            raise UnusableInput(f"{path.name} is {kind}, expected CSV text")
    if b"\x00" in head:
        raise UnusableInput(f"{path.name} looks binary (it contains NUL bytes), expected CSV text")
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise UnusableInput(_not_utf8(path, exc.object[exc.start], exc.start)) from None
    return text.removeprefix("\ufeff")


def _not_utf8(path: Path, byte: int, offset: int) -> str:
    return (
        f"{path.name} is not UTF-8 text (byte 0x{byte:02x} at offset {offset}); re-save it as UTF-8"
    )


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_header(path: Path, text: str, more_follows: bool) -> list[str]:
    """Column names from the first line; refuse a header that is not one."""
    first, newline, _ = text.partition("\n")
    if not newline and more_follows:
        raise UnusableInput(
            f"{path.name}: the first line is over {HEAD_BYTES} bytes, not a CSV header"
        )
    first = first.rstrip("\r")
    if not first.strip():
        raise UnusableInput(f"{path.name}: the first line is blank, expected a header row")
    names = next(csv.reader([first]))
    if len(names) == 1:
        for delimiter, label in OTHER_DELIMITERS.items():
            if delimiter in first:
                raise UnusableInput(
                    f"{path.name} is {label}-separated ({delimiter!r} in the header), "
                    "expected comma-separated values"
                )
    named = [n for n in names if n.strip()]
    if named and all(_looks_numeric(n) for n in named):
        raise UnusableInput(
            f"{path.name} has no header row: the first line looks like data ({first[:60]})"
        )
    empty = [i for i, name in enumerate(names, 1) if not name.strip()]
    if empty:
        raise UnusableInput(f"{path.name}: header has no name for column(s) {empty}")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise UnusableInput(f"{path.name}: duplicated header column(s) {duplicated}")
    return names


def _ragged_message(path: Path, parser_message: str, columns: int) -> str:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", parser_message)
    if found:
        _, line, saw = found.groups()
        return f"{path.name}: ragged rows: line {line} has {saw} fields, the header has {columns}"
    return f"{path.name} cannot be parsed as CSV: {parser_message.strip().splitlines()[-1]}"


def find_short_rows(path: Path, columns: int) -> tuple[int, int, int]:
    """(first line number, its field count, how many) of rows with fewer fields than the header.

    pandas fills missing trailing fields with NaN silently, so this full scan runs
    only when the last column has a missing value.
    """
    first, fields, count = 0, 0, 0
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        next(reader, None)
        for row in reader:
            if row and len(row) < columns:
                if not count:
                    first, fields = reader.line_num, len(row)
                count += 1
    return first, fields, count


def _utf8_error_offset(path: Path) -> tuple[int, int]:
    """(byte, file offset) of the first invalid UTF-8 sequence (on the error path only)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            pending = len(decoder.getstate()[0])  # an unfinished character from the last block
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                return exc.object[exc.start], offset - pending + exc.start
            offset += len(block)
    return 0, offset


def read_csv_checked(path: Path, max_mb: float) -> pd.DataFrame:
    """One CSV file as a DataFrame, or UnusableInput with one line naming the problem."""
    path = Path(path)
    size = check_file(path, max_mb)
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
    names = parse_header(path, decode_head(path, head), more_follows=size > len(head))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            df = pd.read_csv(path, encoding="utf-8-sig")
    except pd.errors.ParserError as exc:
        raise UnusableInput(_ragged_message(path, str(exc), len(names))) from None
    except UnicodeDecodeError:
        raise UnusableInput(_not_utf8(path, *_utf8_error_offset(path))) from None
    if df.empty:
        raise UnusableInput(f"{path.name} has a header but no data rows")
    if df.iloc[:, -1].isna().any():
        line, fields, count = find_short_rows(path, len(names))
        if count:
            raise UnusableInput(
                f"{path.name}: ragged rows: line {line} has {fields} fields, the header has "
                f"{len(names)} ({count} short row(s))"
            )
    return df


def input_files(raw: Path) -> list[Path]:
    """The CSV files of an input: the file itself, or every *.csv in a folder."""
    if not raw.exists():
        raise UnusableInput(f"no such file or folder: {raw}")
    if raw.is_dir():
        files = sorted(raw.glob("*.csv"))
        if not files:
            raise UnusableInput(f"no .csv file in {raw}")
        return files
    return [raw]


def read_input(raw: Path, max_mb: float) -> pd.DataFrame:
    """All CSV files of an input, checked one by one and concatenated (as preprocess reads them)."""
    files = input_files(raw)
    frames = [read_csv_checked(f, max_mb) for f in files]
    for f, frame in zip(files[1:], frames[1:], strict=True):
        if list(frame.columns) != list(frames[0].columns):
            raise UnusableInput(f"{f} has other columns than {files[0]}")
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def load_suite(path: Path) -> dict:
    """A suite JSON file as a dict (not yet a GX object: that needs the GX import)."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.json"))
        if len(found) != 1:
            raise UnusableInput(f"expected one suite .json file in {path}, found {len(found)}")
        path = found[0]
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnusableInput(f"expectation suite not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnusableInput(f"expectation suite {path} is not readable JSON: {exc}") from None
    if not isinstance(suite, dict) or not isinstance(suite.get("expectations"), list):
        raise UnusableInput(f"expectation suite {path} has no 'expectations' list")
    return suite


# ------------------------------------------------------------ running the suite


def suite_parameters(today: date) -> dict:
    """Values for `$PARAMETER` references a suite may use."""
    return {"current_year": today.year, "today": today.isoformat()}


@functools.cache
def _batch_definition():
    """One ephemeral GX context per process, with a pandas whole-dataframe batch definition."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("raw").add_dataframe_asset("raw")
    return context, asset.add_batch_definition_whole_dataframe("all rows")


def gx_suite(suite: dict, name: str):
    """A GX suite from its JSON; a bad expectation is UnusableInput, never silently dropped.

    (`gx.ExpectationSuite(**json)` logs and skips an expectation it cannot build.)
    """
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    expectations = []
    for index, config in enumerate(json.loads(json.dumps(suite["expectations"])), 1):
        try:
            expectations.append(ExpectationConfiguration(**config).to_domain_obj())
        except Exception as exc:  # GX raises several types for a bad configuration
            reason = " ".join(str(exc).split())
            kind = config.get("type") if isinstance(config, dict) else None
            raise UnusableInput(
                f"expectation suite {suite.get('name', '')!r}: expectation {index} ({kind}) "
                f"is not valid: {reason}"
            ) from None
    return gx.ExpectationSuite(**{**suite, "name": name, "expectations": expectations})


def _run_gx(df: pd.DataFrame, suite: dict, parameters: dict, result_format: dict | str) -> dict:
    import great_expectations as gx
    from great_expectations.exceptions import SuiteParameterError

    context, batch_definition = _batch_definition()
    name = f"{suite.get('name', 'suite')}-{uuid.uuid4().hex[:8]}"
    gx_suite_ = context.suites.add(gx_suite(suite, name))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch_definition, suite=gx_suite_)
    )
    order = {e.id: i for i, e in enumerate(gx_suite_.expectations)}
    try:
        result = definition.run(
            batch_parameters={"dataframe": df},
            expectation_parameters=parameters,
            result_format=result_format,
        ).to_json_dict()
    except SuiteParameterError as exc:
        raise UnusableInput(
            f"expectation suite {suite.get('name', '')!r}: {exc}; this validator supplies "
            f"{sorted(parameters)}"
        ) from None
    finally:
        context.validation_definitions.delete(name)
        context.suites.delete(name)
    # GX reports in its own order; the suite's order reads better (table checks first).
    result["results"].sort(key=lambda r: order.get(r["expectation_config"].get("id"), len(order)))
    return result


def run_suite(df: pd.DataFrame, suite: dict, parameters: dict) -> dict:
    """The GX result (as JSON) of `suite` on `df`; details are computed only when something fails.

    A pass needs only booleans, which is the cheap result format; on failure the
    suite runs again with counts and example values.
    """
    result = _run_gx(df, suite, parameters, "BOOLEAN_ONLY")
    if result["success"]:
        return result
    return _run_gx(
        df, suite, parameters, {"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES}
    )


# -------------------------------------------------------------------- reporting


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
    elif column is not None and not pd.api.types.is_numeric_dtype(df[column]):
        failure["detail"] = text_column_detail(df[column])
    return failure


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
        return f"in {_compact(kwargs['value_set'])}"
    if "type_list" in kwargs:
        return "type " + " or ".join(map(str, kwargs["type_list"]))
    if "column_list" in kwargs:
        return f"{len(kwargs['column_list'])} columns in order"
    return ""


def _compact(value, limit: int = 60) -> str:
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
            text += f" e.g. {_compact(failure['examples'], 40)}"
        return text
    if failure["observed"] is not None:
        observed = failure["observed"]
        return (
            f"observed {_number(observed) if isinstance(observed, float) else _compact(observed)}"
        )
    return "failed"


def failure_label(failure: dict) -> str:
    column = failure["column"]
    return failure["expectation"] + (f"({column})" if column else "")


def summary_line(report: dict) -> str:
    """The one line a pipeline runner shows: verdict, count, the first failures by name."""
    if report.get("unusable"):
        return f"unusable input: {report['unusable']}"
    if report["success"]:
        return f"validation passed: {report['evaluated']} expectations on {report['rows']} rows"
    failures = report["failures"]
    named = "; ".join(
        f"{failure_label(f)} {_compact(failure_finding(f), 80)}" for f in failures[:SUMMARY_ITEMS]
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
        return f"### Data validation: ✅ all {report['evaluated']} expectations passed\n\n{scope}\n"
    lines = [
        f"### Data validation: ❌ {report['failed']} of {report['evaluated']} expectations failed",
        "",
        scope,
        "",
        "| Expectation | Column | Expected | Found | Examples |",
        "|---|---|---|---|---|",
    ]
    for f in report["failures"]:
        examples = ", ".join(_compact(e, 30) for e in f["examples"]) if f["examples"] else ""
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
    if report.get("unusable"):
        return EXIT_UNUSABLE
    return EXIT_PASSED if report["success"] else EXIT_FAILED


# ------------------------------------------------------------------------- main


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
