"""`mlops features ...`: the project's feature group (ingest, snapshot as of a time, get)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from mlops.cli.backends import open_feature_store
from mlops.cli.common import add_backend_arg, add_config_arg, config_from, home
from mlops.cli.data import suite_path
from mlops.core.config import Config
from mlops.core.errors import MlopsError, UsageError
from mlops.core.feature_store import (
    FeatureGroupSpec,
    FeatureStore,
    Snapshot,
    check_records,
    feature_group_spec,
    format_time,
    resolve_as_of,
)

# An ingest is a batch of records, not a training set: the suite's row-count and
# aggregate expectations (mean, stdev...) are checked on the snapshot the pipeline
# trains on. Every per-value expectation runs before anything is written.
BATCH_LEVEL = ("expect_table_row_count", "expect_column_mean", "expect_column_median")
BATCH_LEVEL += ("expect_column_stdev", "expect_column_sum", "expect_column_quantile")
BATCH_LEVEL += ("expect_column_min", "expect_column_max", "expect_column_proportion")


EPILOG = """\
example:
  mlops features ingest --data january.csv        # first versions
  mlops features ingest --data february.csv       # later event times: new versions
  mlops features snapshot --as-of 2026-02-01 --out train.csv
  mlops features get CUSTOMER-42
  mlops pipeline run --from-feature-store --as-of 2026-02-01
"""


def load_suite(cfg: Config) -> dict:
    from stepkit import UnusableInput
    from stepkit.expectations import load_suite as read_suite

    try:
        return read_suite(suite_path(cfg))
    except UnusableInput as exc:
        raise UsageError(str(exc)) from None


def project_spec(cfg: Config) -> FeatureGroupSpec:
    return feature_group_spec(cfg, load_suite(cfg))


def per_record_suite(suite: dict) -> dict:
    kept = [e for e in suite.get("expectations", []) if not e["type"].startswith(BATCH_LEVEL)]
    return {**suite, "expectations": kept}


def validate_records(df: pd.DataFrame, cfg: Config, suite: dict, source: Path) -> None:
    """The project's suite on the records' columns; MlopsError (exit 1) naming the failures."""
    from model_build.steps import validate
    from stepkit.validation_report import failure_table

    report = validate.validate_data(
        df[cfg.columns], per_record_suite(suite), [str(source)], date.today()
    )
    if not report["success"]:
        print(failure_table(report))
        raise MlopsError(f"{report['summary']}; nothing was ingested")


def read_records(path: Path, cfg: Config) -> pd.DataFrame:
    from stepkit import UnusableInput
    from stepkit.csv_input import read_csv_checked

    try:
        return read_csv_checked(path, cfg.data.max_file_mb)
    except UnusableInput as exc:
        raise UsageError(str(exc)) from None


def cmd_ingest(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    suite = load_suite(cfg)
    spec = feature_group_spec(cfg, suite)
    df = read_records(args.data, cfg)
    records = check_records(df, spec, datetime.now(UTC))
    print(f"checking {len(records)} records against the suite ({suite_path(cfg).name})")
    validate_records(df, cfg, suite, args.data)
    store = open_feature_store(args.backend, spec, home(), args)
    result = store.ingest(records)
    print(
        f"ingested {result.records} records into feature group {spec.name!r} "
        f"({result.new_ids} new ids, {result.versions_added} new versions of stored ids)"
    )
    return 0


def take_snapshot(
    cfg: Config, backend: str, as_of: str | None, out: Path, training: bool, args
) -> Snapshot:
    """The point-in-time table as of `as_of` (default now) written to `out`."""
    spec = project_spec(cfg)
    store: FeatureStore = open_feature_store(backend, spec, home(), args)
    return store.snapshot(resolve_as_of(as_of, datetime.now(UTC)), out, training=training)


def snapshot_for_training(cfg: Config, args: argparse.Namespace) -> tuple[Path, dict]:
    """`pipeline run --from-feature-store`: the snapshot file and its lineage entry."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    out = home() / "feature_store" / "snapshots" / f"{stamp}.csv"
    snap = take_snapshot(cfg, args.backend, args.as_of, out, True, args)
    print(
        f"feature snapshot: {snap.rows} records of {snap.feature_group!r} as of "
        f"{format_time(snap.as_of)} (sha256 {snap.sha256[:12]}) -> {out}"
    )
    return out, {"feature_snapshot": snap.lineage()}


def cmd_snapshot(args: argparse.Namespace) -> int:
    snap = take_snapshot(config_from(args), args.backend, args.as_of, args.out, args.training, args)
    print(
        f"wrote {snap.rows} records as of {format_time(snap.as_of)} to {snap.path} "
        f"(sha256 {snap.sha256[:12]})"
    )
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    spec = project_spec(config_from(args))
    record = open_feature_store(args.backend, spec, home(), args).get(args.id)
    if record is None:
        raise UsageError(f"no record {args.id!r} in feature group {spec.name!r}")
    print(json.dumps(record, indent=2, sort_keys=True))
    return 0


def cmd_template(args: argparse.Namespace) -> int:
    from mlops.sagemaker.feature_store import render_template

    text = render_template(project_spec(config_from(args)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(text)
    tmp.replace(args.out)
    print(f"wrote {args.out}: the feature group's CloudFormation template with its columns")
    return 0


def add_store_args(parser: argparse.ArgumentParser) -> None:
    add_backend_arg(parser)
    add_config_arg(parser)
    group = parser.add_argument_group("SageMaker Feature Store (--backend sagemaker)")
    group.add_argument("--region", help="AWS region (default: $AWS_REGION / $AWS_DEFAULT_REGION)")
    group.add_argument(
        "--athena-workgroup",
        help="workgroup for snapshots (default: $MLOPS_ATHENA_WORKGROUP, else the "
        "feature-store stack's <group>-features)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    features = sub.add_parser(
        "features",
        help="the feature store: ingest records, point-in-time snapshots, lookups",
        description="One feature group per project: feature_store.record_id and "
        "feature_store.event_time in the config name its id and event-time columns; the "
        "features and target are its other columns. Local backend: Parquet + DuckDB "
        "(offline) and SQLite (online) under $MLOPS_HOME/feature_store/.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fsub = features.add_subparsers(dest="features_command", required=True, metavar="COMMAND")

    ingest = fsub.add_parser(
        "ingest",
        help="check and write records; a later event time adds a version",
        description="Check FILE (id and event-time columns present, event times ISO-8601 "
        "and not in the future beyond feature_store.future_tolerance_seconds, no duplicate "
        "(id, event time)), run the project's expectation suite on its columns (per-value "
        "expectations; row-count and aggregate ones are checked on the snapshot a pipeline "
        "trains on), then write every record or none. Exit 2 bad input, 1 suite failed.",
    )
    ingest.add_argument("--data", type=Path, required=True, metavar="FILE", help="CSV records")
    add_store_args(ingest)
    ingest.set_defaults(func=cmd_ingest)

    snap = fsub.add_parser(
        "snapshot",
        help="a point-in-time table: per id, the latest version at or before --as-of",
        description="Write, for each record id, the latest version whose event time is at "
        "or before --as-of (default now). .parquet writes Parquet, anything else CSV. "
        "Exit 2 when --as-of is before the first record.",
    )
    snap.add_argument("--as-of", metavar="TIME", help="ISO-8601 time, UTC unless it says")
    snap.add_argument("--out", type=Path, required=True, metavar="FILE", help="file to write")
    snap.add_argument(
        "--training",
        action="store_true",
        help="only the config's columns (features, target), as `mlops pipeline run` reads them",
    )
    add_store_args(snap)
    snap.set_defaults(func=cmd_snapshot)

    get = fsub.add_parser("get", help="the latest version of a record (online store), as JSON")
    get.add_argument("id", metavar="ID", help="record id")
    add_store_args(get)
    get.set_defaults(func=cmd_get)

    template = fsub.add_parser(
        "template",
        help="the feature group's CloudFormation template, with the project's columns",
        description="Render model_deploy/feature-store.yml with the feature definitions "
        "derived from the config and the suite's types (JSON), ready for "
        "`aws cloudformation deploy --template-file FILE --parameter-overrides "
        "ArtifactBucket=...`. Offline, no credentials.",
    )
    template.add_argument("--out", type=Path, required=True, metavar="FILE")
    add_config_arg(template)
    template.set_defaults(func=cmd_template)
