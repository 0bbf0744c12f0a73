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


def home() -> Path:
    return mlops_home()


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))
