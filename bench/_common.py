"""Helpers shared by the benchmarks: sample data files and child-process measurements."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DATA = REPO_ROOT.parent / "shared" / "data" / "house_pricing.csv"
CACHE = REPO_ROOT / "bench" / "results"


def sample_csv(rows: int, seed: int = 11) -> Path:
    """A generated data file, cached under bench/results/ (git-ignored)."""
    path = CACHE / f"houses-{rows}-{seed}.csv"
    if not path.exists():
        from mlops.datagen import generate_houses

        CACHE.mkdir(parents=True, exist_ok=True)
        generate_houses(rows, seed).to_csv(path, index=False)
    return path


def timed_child(argv: list[str], env: dict | None = None) -> tuple[float, float]:
    """Run a command to completion; (wall seconds, peak RSS in MB of the largest descendant).

    ru_maxrss of RUSAGE_CHILDREN covers every waited-for descendant, so each
    measurement runs through a fresh `python -c` wrapper that reports its own.
    """
    wrapper = (
        "import resource, subprocess, sys;"
        "rc = subprocess.run(sys.argv[1:]).returncode;"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr);"
        "sys.exit(rc)"
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, *argv],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {argv}\n{proc.stderr}")
    peak_kb = int(proc.stderr.strip().splitlines()[-1])
    return seconds, peak_kb / 1024


def self_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
