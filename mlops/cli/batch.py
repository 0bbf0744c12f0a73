"""`mlops batch predict`: score a whole file with a model version."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mlops.cli.backends import open_batch_scorer, open_deployer, open_registry
from mlops.cli.common import (
    add_backend_arg,
    add_config_arg,
    config_from,
    home,
    positive_int,
    version_number,
)
from mlops.core.batch import BatchJob, check_batch_version
from mlops.core.config import Config
from mlops.core.errors import UsageError
from mlops.core.interfaces import Registry
from mlops.core.registry import ModelVersion
from mlops.core.stages import STAGES, load_stage_config, resolve_version


def stage_version(
    cfg: Config, registry: Registry, backend: str, stage: str
) -> tuple[ModelVersion, str]:
    """The version serving `stage`; if nothing serves it, the one a deploy would pick."""
    deployer = open_deployer(backend, cfg, registry, home())
    serving = deployer.current_version(stage)
    if serving is None:  # this backend cannot tell cheaply: ask the stage itself
        status = deployer.stage_status(stage)
        serving = status.get("version") if status.get("deployed") else None
    if serving is not None:
        return registry.describe(serving), f"serving {stage}"
    return resolve_version(registry, load_stage_config(stage), None), f"{stage}'s pick"


class TtyProgress:
    """One line on stderr rewritten in place, only on a terminal (logs stay clean)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.active = self.stream.isatty()
        self.width = 0

    def __call__(self, line: str) -> None:
        if self.active:
            self.width = max(self.width, len(line))
            self.stream.write("\r" + line.ljust(self.width))
            self.stream.flush()

    def clear(self) -> None:
        if self.active and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def cmd_predict(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    if args.version is not None and args.stage is not None:
        raise UsageError("give --version or --stage, not both")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    data = Path(str(args.data))
    if not str(args.data).startswith("s3://") and data.exists() and not data.is_file():
        raise UsageError(f"input {data} is not a regular file")  # a FIFO would block for ever
    registry = open_registry(args.backend, cfg.model_package_group, home())
    if args.version is not None:
        version, why = registry.describe(args.version), "requested"
    else:
        version, why = stage_version(cfg, registry, args.backend, args.stage or "prod")
    check_batch_version(version, cfg.batch.require_approved)
    print(f"model version {version.version} ({why}, {version.approval_status})", flush=True)
    job = BatchJob(
        data=str(args.data),
        out=str(args.out),
        version=version,
        id_column=cfg.data.id_column,
        chunk_rows=args.chunk_rows or cfg.batch.chunk_rows,
        max_reject_pct=cfg.batch.max_reject_pct,
        workers=args.workers or len(os.sched_getaffinity(0)),
    )
    progress = TtyProgress()
    try:
        result = open_batch_scorer(args.backend, cfg, args).predict(job, progress)
    finally:
        progress.clear()
    print(result.summary())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    batch = sub.add_parser("batch", help="score whole files with a model version")
    batch_sub = batch.add_subparsers(dest="batch_command", required=True, metavar="COMMAND")
    p = batch_sub.add_parser(
        "predict",
        help="score a CSV or Parquet file with a model version",
        description="Score every row of --data with a model version (--version N, or the "
        "version serving --stage; default: prod's) and write --out. Local: the file is "
        "streamed in chunks of batch.chunk_rows through the serving code its artifact carries, on "
        "every core; the column data.id_column, when configured, is carried through; rows "
        "that cannot be scored go to <out>.rejects.csv with the reason, and the job fails "
        "(exit 1, nothing written) when they are more than batch.max_reject_pct of the "
        "rows. SageMaker: a batch transform job from the version's model package, input "
        "and output on S3 (headerless CSV, the id column first when configured). "
        "Format by extension: .csv or .parquet.",
    )
    p.add_argument("--data", required=True, help="input file (CSV with a header, or Parquet)")
    p.add_argument("--out", required=True, help="output file (.csv or .parquet)")
    p.add_argument(
        "--version", type=version_number, default=None, help="model version to score with"
    )
    p.add_argument("--stage", choices=STAGES, default=None, help="use the version serving STAGE")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="worker processes (default: one per core)",
    )
    p.add_argument(
        "--chunk-rows",
        type=positive_int,
        default=None,
        help="rows per chunk (default: batch.chunk_rows)",
    )
    add_backend_arg(p)
    add_config_arg(p)
    p.set_defaults(func=cmd_predict)
