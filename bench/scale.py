"""The local pipeline past memory: wall time and peak RSS (whole process tree) at 1M and
10M generated rows, and the ratios between them.

Targets (issue #26): at 10M rows, peak RSS <= 1.5 GB and time <= 12x the 1M-row time.
The 1M-row file (47 MB) is read whole by every step; the 10M-row one (474 MB) is past
data.stream_above_mb (256 MB), so every step reads it a chunk at a time (docs/scale.md).
Each run is `mlops pipeline run --data <file>` in a fresh $MLOPS_HOME; the process tree
(the command, the runner's step server, the step processes) is sampled every 50 ms and
its RSS summed (an upper bound: forked processes share pages). Each step's own peak is
attributed through the step.pid file the runner writes in the step's folder. A run
whose tree passes --stop-mb is stopped (the machine is shared): the figure printed is
then "> stop" with the step that was running.

    python bench/scale.py [--sizes 1000000 10000000] [--stop-mb 4000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import CACHE

TARGET_PEAK_MB = 1500
TARGET_TIME_RATIO = 12.0
CHUNK_ROWS = 1_000_000
SAMPLE_SECONDS = 0.05


def generated_csv(rows: int, seed: int = 11) -> Path:
    """Generated houses, written a million rows at a time (cached under bench/results/)."""
    path = CACHE / f"houses-chunked-{rows}-{seed}.csv"
    if path.exists():
        return path
    from mlops.core.datagen import generate_houses

    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    with partial.open("w") as out:
        for start in range(0, rows, CHUNK_ROWS):
            chunk = generate_houses(min(CHUNK_ROWS, rows - start), seed + start // CHUNK_ROWS)
            chunk.to_csv(out, index=False, header=start == 0)
    partial.rename(path)
    return path


def step_pids(home: Path) -> dict[int, str]:
    """pid -> step name, from the step.pid files of the run under way."""
    found = {}
    for pid_file in (home / "runs").glob("*/*/step.pid"):
        with contextlib.suppress(OSError, ValueError):
            found[int(pid_file.read_text())] = pid_file.parent.name
    return found


def measure(data: Path, stop_mb: float) -> dict:
    """One pipeline run: wall seconds, peak tree RSS, each step's peak, how it ended."""
    import psutil

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops.cli", "pipeline", "run", "--data", str(data)],
            env={**os.environ, "MLOPS_HOME": str(home)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        root, peak, steps, stopped = psutil.Process(proc.pid), 0.0, {}, None
        names: dict[int, str] = {}
        while proc.poll() is None:
            total = 0.0
            with contextlib.suppress(psutil.Error):
                names.update(step_pids(home))
                for p in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        rss = p.memory_info().rss / 2**20
                        total += rss
                        step = names.get(p.pid)
                        if step:
                            steps[step] = max(steps.get(step, 0.0), rss)
            peak = max(peak, total)
            if total > stop_mb:
                running = [names[p.pid] for p in root.children(recursive=True) if p.pid in names]
                stopped = running[-1] if running else "?"
                for p in [*root.children(recursive=True), root]:
                    with contextlib.suppress(psutil.Error):
                        p.kill()
                proc.wait()
                break
            time.sleep(SAMPLE_SECONDS)
        seconds = time.perf_counter() - start
        error = proc.stderr.read().strip().splitlines()[-1:] if proc.returncode else []
    return {"seconds": seconds, "peak_mb": peak, "steps": steps, "stopped": stopped,
            "exit": proc.returncode, "error": error[0] if error else ""}  # fmt: skip


def line(rows: int, m: dict, stop_mb: float) -> str:
    peak = f"> {stop_mb:,.0f} MB (stopped in {m['stopped']})" if m["stopped"] else (
        f"{m['peak_mb']:,.0f} MB"
    )  # fmt: skip
    steps = ", ".join(f"{k} {v:,.0f}" for k, v in m["steps"].items())
    ended = "" if m["exit"] == 0 or m["stopped"] else f"  exit {m['exit']}: {m['error']}"
    return f"{rows:>11,} rows  {m['seconds']:8.1f} s  peak {peak}  [steps MB: {steps}]{ended}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--stop-mb", type=float, default=4000, help="stop a run past this RSS")
    args = ap.parse_args()
    results = {}
    for rows in args.sizes:
        data = generated_csv(rows)
        results[rows] = measure(data, args.stop_mb)
        print(line(rows, results[rows], args.stop_mb), flush=True)
    small, large = min(results), max(results)
    if small != large and not results[large]["stopped"]:
        ratio = results[large]["seconds"] / results[small]["seconds"]
        peak = results[large]["peak_mb"]
        print(
            f"{large:,} vs {small:,} rows: time x{ratio:.1f} (target <= {TARGET_TIME_RATIO:g}), "
            f"peak {peak:,.0f} MB (target <= {TARGET_PEAK_MB:,}): "
            f"{'ok' if ratio <= TARGET_TIME_RATIO and peak <= TARGET_PEAK_MB else 'BELOW TARGET'}"
        )
    elif small != large:
        print(f"{large:,} rows: stopped past {args.stop_mb:,.0f} MB (target <= {TARGET_PEAK_MB:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
