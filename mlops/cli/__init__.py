"""`mlops`: the one command line of the template.

Each subcommand group lives in `mlops/cli/<group>.py` with a `register(subparsers)`;
`mlops/cli/backends.py` is the one place that picks a backend.
Errors are one line on stderr and a non-zero exit code, never a bare traceback
(set MLOPS_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sqlite3
import sys
import traceback

from mlops.core.errors import MlopsError

# A package of an optional extra (pyproject.toml) -> the extra that installs it.
EXTRAS = {"sagemaker": "aws", "sagemaker_mlflow": "aws", "matplotlib": "report",
          "mlflow": "ui", "moto": "dev", "pytest": "dev"}  # fmt: skip


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The one line naming the extra to install for a module that is not installed, or None
    when the module belongs to no extra (then it is a bug, reported as unexpected)."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return (
        f"this command needs the {top!r} package of the {extra!r} extra: "
        f"pip install -e '.[{extra}]' (or `make .venv/.dev` for everything)"
    )


COMMAND_MODULES = (
    "data",
    "pipeline",
    "models",
    "deploy",
    "report",
    "init",
    "features",
    "batch",
    "monitor",
    "ui",
    "doctor",
)

EPILOG = """\
the story of a change, on the local backend (no AWS needed):
  mlops data generate --rows 5000 --out data.csv
  mlops data validate data.csv
  mlops pipeline run --data data.csv          # registers a PendingManualApproval version
  mlops models approve 1 --note "looks good"  # what a human approver does
  mlops deploy --stage staging                # deploy + smoke test
  mlops promote                               # staging's version to prod

State lives in $MLOPS_HOME (default: .mlops/ in the repository).
A fork with its own data starts with:
  mlops init --data my.csv --target COLUMN --force   # config, suite, sample, calibrated gate
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops",
        description="GitOps MLOps for SageMaker: data checks, pipeline, registry, deployment.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"mlops.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"mlops.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MlopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (OSError, sqlite3.OperationalError) as exc:
        if os.environ.get("MLOPS_DEBUG"):
            traceback.print_exc()
        print(f"error: {os_error_line(exc)}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        line = missing_extra(exc)
        if line is None:
            return unexpected(exc)
        print(f"error: {line}", file=sys.stderr)
        return 2
    except Exception as exc:  # the last line of defence: one line, not a traceback
        return unexpected(exc)


def unexpected(exc: Exception) -> int:
    if os.environ.get("MLOPS_DEBUG"):
        traceback.print_exception(exc)
    print(
        f"error: unexpected {type(exc).__name__}: {exc} (MLOPS_DEBUG=1 shows the traceback)",
        file=sys.stderr,
    )
    return 1


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def os_error_line(exc: OSError | sqlite3.OperationalError) -> str:
    """One line for a failure of the machine rather than of the input: a full disk is named
    as such (with the file being written), other OS errors by their file and reason."""
    if isinstance(exc, sqlite3.OperationalError):
        if "disk is full" in str(exc) or "disk I/O error" in str(exc):
            return f"disk full (or failing) writing the registry database: {exc}"
        return f"registry database error: {exc}"
    where = f" writing {exc.filename}" if exc.filename else ""
    if exc.errno in DISK_FULL:
        return f"disk full: no space left on device{where}; free some space and run it again"
    what = exc.strerror or str(exc)
    return f"{what}: {exc.filename}" if exc.filename else f"system error: {what}"


def main() -> None:
    sys.exit(run())
