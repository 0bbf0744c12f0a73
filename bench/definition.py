"""`mlops pipeline definition` against the bare SDK import it cannot avoid.

Prints the median wall time of each over N fresh processes (interleaved, so both see the
same machine load) and their ratio. Target: definition < 3x the import.

    python bench/definition.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 3.0


def offline_env(home: str) -> dict[str, str]:
    """No credentials, no AWS config, no instance metadata: as offline as a CI fork."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_"))}
    env.update(
        HOME=home,
        AWS_DEFAULT_REGION="us-east-1",  # the bare import needs one; the definition sets its own
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


def wall_seconds(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        argv,
        env=env,
        cwd=REPO_ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    python = sys.executable
    commands = {
        "import sagemaker.mlops.workflow": [python, "-c", "import sagemaker.mlops.workflow"],
        "mlops pipeline definition": [python, "-m", "mlops.cli", "pipeline", "definition"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as home:
        env = offline_env(home)
        for argv in commands.values():  # warm the file cache once
            wall_seconds(argv, env)
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(wall_seconds(argv, env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        spread = f"min {min(values):.2f}s, max {max(values):.2f}s"
        print(f"{name:<32} median {medians[name]:.2f}s  ({spread}, {args.runs} runs)")
    ratio = medians["mlops pipeline definition"] / medians["import sagemaker.mlops.workflow"]
    verdict = "ok" if ratio < TARGET_RATIO else "ABOVE TARGET"
    print(f"ratio definition / import: {ratio:.2f} (target < {TARGET_RATIO:g}): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
