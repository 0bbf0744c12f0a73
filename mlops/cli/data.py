"""`mlops data ...`: sample data, validation, drift."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from mlops.cli.common import (
    DATA_ENV,
    add_config_arg,
    config_from,
    data_or_sample,
    home,
    version_number,
)
from mlops.core.config import Config
from mlops.core.errors import MlopsError, UsageError
from mlops.core.paths import REPORTS_DIR
from mlops.core.registry import ModelVersion

DEFAULT_REPORT_DIR = REPORTS_DIR


def cmd_generate(args: argparse.Namespace) -> int:
    import pandas as pd

    from mlops.core.datagen import COLUMNS, generate_houses, resample

    if args.rows < 1:
        raise UsageError("--rows must be at least 1")
    cfg = config_from(args)
    if cfg.columns == COLUMNS:
        df = generate_houses(args.rows, args.seed)
    elif cfg.sample_file and cfg.sample_file.is_file():
        df = resample(pd.read_csv(cfg.sample_file), args.rows, args.seed)
    else:
        raise UsageError(
            "the built-in generator knows the house-price example only; for other data it "
            f"draws from data.sample, and there is none ({cfg.sample_file})"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(f"wrote {len(df)} rows to {args.out}")
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    path = Path(data_or_sample(config_from(args), None)).resolve()
    print(f"{args.key}={path}" if args.key else path)
    return 0


def suite_path(cfg: Config) -> Path:
    """The expectation suite config names (relative paths are from the project root)."""
    return cfg.suite_file


def cmd_validate(args: argparse.Namespace) -> int:
    from model_build.steps import validate
    from stepkit import UnusableInput
    from stepkit.validation_report import failure_table, unusable_report, write_report

    cfg = config_from(args)
    report_dir = args.report_dir or DEFAULT_REPORT_DIR
    try:
        report = validate.validate_file(
            args.file, suite_path(cfg), cfg.data.max_file_mb, date.today()
        )
    except UnusableInput as exc:
        write_report(unusable_report(str(exc), [str(args.file)]), report_dir)
        raise UsageError(str(exc)) from None
    if not report["success"] and cfg.data.max_quarantined_pct > 0:
        # The pipeline's rule: a few rows failing row-level checks (a row without a target,
        # a value out of range) are set aside, within data.max_quarantined_pct.
        report = validate.validate_with_quarantine(
            args.file, suite_path(cfg), cfg.data.max_file_mb, date.today(),
            cfg.data.max_quarantined_pct,
        )[0]  # fmt: skip
    json_path, md_path = write_report(report, report_dir)
    if not report["success"]:
        print(failure_table(report))
        print(f"report: {json_path} and {md_path.name}")
        raise MlopsError(report["summary"])
    print(report["summary"])
    print(f"report: {json_path} and {md_path.name}")
    return 0


def has_registry(home_dir: Path) -> bool:
    """A registry to read: False for a home where nothing was registered, without creating
    one; a registry missing beside registered artifacts is refused (MlopsError, recovery)."""
    from mlops.local.registry import artifact_folders, connect

    db = home_dir / "registry.db"
    if db.exists() or artifact_folders(db):
        connect(db).close()  # refuses a missing, empty or corrupt registry with the recovery
        return True
    return False


def default_version(cfg: Config, home_dir: Path) -> tuple[ModelVersion, str]:
    """The champion, else the latest registered version with a training baseline."""
    from mlops.local.champion import resolve_champion
    from mlops.local.registry import LocalRegistry

    hint = "run `mlops pipeline run` first or pass --baseline FILE"
    if not has_registry(home_dir):
        raise UsageError(f"no registered model version to take a baseline from: {hint}")
    champion = resolve_champion(cfg, home_dir)
    if champion and champion.baseline_uri:
        return champion, f"model version {champion.version} (champion)"
    versions = [
        v for v in LocalRegistry(home_dir, cfg.model_package_group).list() if v.baseline_uri
    ]
    if not versions:
        raise UsageError(f"no registered model version has a training baseline: {hint}")
    return versions[-1], f"model version {versions[-1].version} (latest registered)"


def chosen_version(cfg: Config, home_dir: Path, number: int) -> tuple[ModelVersion, str]:
    """Registered version `number`, which must carry a training baseline."""
    from mlops.local.registry import LocalRegistry

    if not has_registry(home_dir):
        raise UsageError(f"model version {number} does not exist: nothing is registered yet")
    version = LocalRegistry(home_dir, cfg.model_package_group).describe(number)
    if not version.baseline_uri:
        raise UsageError(f"model version {number} has no training baseline")
    return version, f"model version {number}"


def prediction_row(version: ModelVersion | None, df, threshold: float):
    """The prediction drift row of `version`'s model on `df`, or (None, why it was skipped)."""
    from mlops.core import drift
    from mlops.local.drift import prediction_drift

    if version is None:
        return (
            None,
            "prediction drift skipped: --baseline FILE names no model version to score with",
        )
    try:
        found = prediction_drift(version, df, threshold)
    except MlopsError as exc:
        return None, f"prediction drift skipped: {exc}"
    return drift.prediction_row(found.result, found.unscored), ""


def cmd_drift(args: argparse.Namespace) -> int:
    from mlops.core import drift
    from stepkit import UnusableInput
    from stepkit.csv_input import read_csv_checked
    from stepkit.splits import read_split

    cfg = config_from(args)
    version = None
    if args.baseline:
        baseline_file, label = args.baseline, f"`{args.baseline.name}`"
    else:
        version, label = (
            chosen_version(cfg, home(), args.version)
            if args.version is not None
            else default_version(cfg, home())
        )
        baseline_file = Path(version.baseline_uri)
    baseline = drift.load_baseline(baseline_file)
    try:
        read_csv_checked(args.file, cfg.data.max_file_mb)  # one line for an unusable file
    except UnusableInput as exc:
        raise UsageError(str(exc)) from None
    df = read_split(args.file)  # every value as written, typed below as training typed it
    threshold = cfg.drift.threshold
    results = drift.compare(drift.baseline_columns(df, baseline), baseline, threshold)
    target, target_skipped = drift.target_drift(df, baseline, threshold)
    prediction, prediction_skipped = prediction_row(version, df, threshold)
    report = drift.drift_report(
        results,
        threshold,
        cfg.drift.fail_on_drift,
        data=str(args.file),
        baseline=str(baseline_file),
        rows=len(df),
        baseline_label=label,
        target=target,
        prediction=prediction,
        skipped=tuple(why for why in (target_skipped, prediction_skipped) if why),
        model_label=f"model v{version.version}" if version else "",
    )
    json_path, md_path = drift.write_report(report, args.report_dir or DEFAULT_REPORT_DIR)
    print(f"baseline: {label} ({baseline_file})")
    print(drift.render_table(report))
    for note in report["skipped"]:
        print(note)
    print(f"report: {json_path} and {md_path.name}")
    if report["drifted"] and cfg.drift.fail_on_drift:
        raise MlopsError(report["summary"])
    if report["drifted"]:
        print(f"warning: {report['summary']} (drift.fail_on_drift is false)", file=sys.stderr)
    else:
        print(report["summary"])
    return 0


def add_report_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=None,
        help="where the JSON and Markdown reports go (default: reports/ in the repository, "
        "where `mlops report pr` reads them)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="generate, validate and compare data files")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")

    gen = data_sub.add_parser(
        "generate",
        help="write sample data with the config's schema",
        description="Sample data with the config's columns; the same seed gives the same "
        "file. For the house-price example: realistic ranges and a noisy linear price. "
        "For any other data set: rows drawn with replacement from data.sample.",
    )
    gen.add_argument("--rows", type=int, required=True, help="number of rows")
    gen.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    gen.add_argument("--out", type=Path, required=True, help="CSV file to write")
    add_config_arg(gen)
    gen.set_defaults(func=cmd_generate)

    path = data_sub.add_parser(
        "path",
        help="print the data file the commands use by default",
        description=f"Print the data file commands use when given none: ${DATA_ENV} when "
        "set (CI sets it from the repository variable of the same name), else the "
        "committed sample (data.sample in the config).",
    )
    path.add_argument(
        "--key", help="print KEY=PATH (a line for $GITHUB_OUTPUT) instead of the path alone"
    )
    add_config_arg(path)
    path.set_defaults(func=cmd_path)

    val = data_sub.add_parser(
        "validate",
        help="check a CSV file against the expectation suite",
        description="Run the Great Expectations suite named by data.expectation_suite in "
        "the config on FILE. Exit 0 when every expectation holds, or when the rows failing "
        "row-level checks (a row without a target, a value out of range) are within "
        "data.max_quarantined_pct, as the pipeline quarantines them (the summary counts "
        "them); 1 when any fails (a table names each one), 2 when the file is unusable (missing, empty, binary, "
        "not UTF-8, another delimiter, bad header, ragged rows, over data.max_file_mb). "
        "Writes validation.json and validation.md (the PR comment section).",
    )
    val.add_argument("file", type=Path, metavar="FILE", help="CSV file with a header row")
    add_report_dir_arg(val)
    add_config_arg(val)
    val.set_defaults(func=cmd_validate)

    dr = data_sub.add_parser(
        "drift",
        help="drift (PSI) of a CSV file's features, target and predictions against training",
        description="Population stability index of FILE against a training baseline: "
        "--baseline FILE, else the baseline registered with the champion model version, "
        "else with the latest registered version. One row per feature; a 'target' row when "
        "FILE has the target column (against the training target's distribution); a "
        "'prediction' row: FILE scored by that version's model through its own serving "
        "code, against its predictions on its held-out rows (skipped with --baseline, "
        "which names no version). Exit 1 when any PSI is over drift.threshold and "
        "drift.fail_on_drift is true; otherwise drift is a warning. Writes drift.json and "
        "drift.md.",
    )
    dr.add_argument("file", type=Path, metavar="FILE", help="CSV file with a header row")
    against = dr.add_mutually_exclusive_group()
    against.add_argument(
        "--baseline", type=Path, default=None, help="baseline.json written by preprocessing"
    )
    against.add_argument(
        "--version",
        type=version_number,
        default=None,
        metavar="N",
        help="compare with registered version N: its baseline and its model (default: the "
        "champion, else the latest registered version)",
    )
    add_report_dir_arg(dr)
    add_config_arg(dr)
    dr.set_defaults(func=cmd_drift)
