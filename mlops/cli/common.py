"""Arguments and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from mlops.cli.backends import BACKENDS
from mlops.core.config import Config, load_config
from mlops.core.errors import UsageError
from mlops.core.paths import mlops_home


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="config file (default: $MLOPS_CONFIG, else model_build/config.yaml)",
    )


def add_backend_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend", choices=BACKENDS, default="local", help="where to run (default: local)"
    )


def config_from(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


DATA_ENV = "MLOPS_DATA_FILE"  # CI sets it from a repository variable; empty means unset


def data_or_sample(cfg: Config, data: str | Path | None) -> str | Path:
    """The data a command was given, else $MLOPS_DATA_FILE, else the committed sample."""
    if data or os.environ.get(DATA_ENV):
        return data or os.environ[DATA_ENV]
    if cfg.sample_file is None:
        raise UsageError(f"no --data given, ${DATA_ENV} unset and the config names no data.sample")
    return cfg.sample_file


MAX_INT = 2**63 - 1  # SQLite's INTEGER: a larger count or version is refused, not overflowed


def positive_int(text: str) -> int:
    """argparse type: a whole number from 1 to 2**63-1 (row counts, workers, limits)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    if value > MAX_INT:
        raise argparse.ArgumentTypeError(f"{value} is too large")
    return value


def version_number(text: str) -> int:
    """argparse type: a model version number."""
    return positive_int(text)


def port_number(text: str) -> int:
    """argparse type: a TCP port (1 .. 65535)."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (1 to 65535)")
    return value


def home() -> Path:
    """$MLOPS_HOME, refused in one line when it exists and is not a folder."""
    path = mlops_home()
    if path.exists() and not path.is_dir():
        raise UsageError(f"MLOPS_HOME {path} is not a folder: point MLOPS_HOME at a folder")
    return path


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))
