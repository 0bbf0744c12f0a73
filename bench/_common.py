"""Helpers shared by the benchmarks: sample data files and child-process measurements."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DATA = REPO_ROOT.parent / "shared" / "data" / "house_pricing.csv"
CACHE = REPO_ROOT / "bench" / "results"


def sample_csv(rows: int, seed: int = 11) -> Path:
    """A generated data file, cached under bench/results/ (git-ignored)."""
    path = CACHE / f"houses-{rows}-{seed}.csv"
    if not path.exists():
        from mlops.core.datagen import generate_houses

        CACHE.mkdir(parents=True, exist_ok=True)
        generate_houses(rows, seed).to_csv(path, index=False)
    return path


def timed_child(argv: list[str], env: dict | None = None) -> tuple[float, float]:
    """Run a command to completion; (wall seconds, peak RSS in MB of its process tree).

    The tree (the command, the runner's fork server and the step processes) is
    sampled every 20 ms and its RSS summed: an upper bound, since forked
    processes share pages. getrusage would miss processes nobody waits for.
    """
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        total = 0
        with contextlib.suppress(psutil.Error):
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
        peak = max(peak, total)
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"benchmark command failed ({proc.returncode}): {argv}\n{proc.stderr.read()}"
        )
    return seconds, peak / 2**20


def self_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
