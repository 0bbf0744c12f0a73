"""`mlops data ...`: sample data, validation, drift."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.errors import UsageError


def cmd_generate(args: argparse.Namespace) -> int:
    from mlops.datagen import generate_houses

    if args.rows < 1:
        raise UsageError("--rows must be at least 1")
    df = generate_houses(args.rows, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(f"wrote {len(df)} rows to {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="generate, validate and compare data files")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")

    gen = data_sub.add_parser(
        "generate",
        help="write sample house-price data with the reference schema",
        description="Sample data: the reference schema, realistic ranges, a noisy "
        "linear price; the same seed gives the same file.",
    )
    gen.add_argument("--rows", type=int, required=True, help="number of rows")
    gen.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    gen.add_argument("--out", type=Path, required=True, help="CSV file to write")
    gen.set_defaults(func=cmd_generate)
