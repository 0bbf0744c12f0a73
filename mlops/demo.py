"""`make demo`: the story of a change on the local backend, end to end.

generate data -> validate -> pipeline -> registry. Every step is a real `mlops`
command, so what the demo shows is what a user would type.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlops.cli import run
from mlops.paths import REPO_ROOT


def banner(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def step(argv: list[str]) -> None:
    print("$ mlops " + " ".join(argv), flush=True)
    code = run(argv)
    if code != 0:
        sys.exit(f"demo stopped: `mlops {' '.join(argv)}` exited {code}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=5000, help="rows of sample data (default 5000)")
    p.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "house_prices.csv")
    args = p.parse_args(argv)

    banner("1. a data scientist brings data")
    step(["data", "generate", "--rows", str(args.rows), "--seed", "7", "--out", str(args.data)])
    banner("2. the pipeline: validate, preprocess, train, evaluate, gate, register")
    step(["pipeline", "run", "--data", str(args.data)])
    banner("3. the model registry")
    step(["models", "list"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
