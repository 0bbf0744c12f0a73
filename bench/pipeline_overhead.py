"""Orchestration overhead of the local runner, and the pipeline's time and memory at scale.

For each size: the local pipeline (`mlops pipeline run`, steps as subprocesses)
against the same step functions called back to back in one process
(`_inprocess_pipeline.py`). Both are timed as whole processes, imports included.
Targets: ratio <= 1.5 at 10k rows, <= 1.1 at 1M rows; peak RSS <= 3 GB at 1M.

    python bench/pipeline_overhead.py [--sizes 10000 100000 1000000] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from _common import sample_csv, timed_child

TARGETS = {10_000: 1.5, 1_000_000: 1.1}


def measure(rows: int, repeat: int) -> dict:
    data = sample_csv(rows)
    pipeline, inprocess, peaks = [], [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            seconds, peak = timed_child(
                [sys.executable, "-m", "mlops.cli", "pipeline", "run", "--data", str(data)],
                env={"MLOPS_HOME": str(Path(tmp) / "home")},
            )
            pipeline.append(seconds)
            peaks.append(peak)
        with tempfile.TemporaryDirectory() as tmp:
            script = str(Path(__file__).parent / "_inprocess_pipeline.py")
            inprocess.append(timed_child([sys.executable, script, str(data), tmp])[0])
    p, i = statistics.median(pipeline), statistics.median(inprocess)
    return {"rows": rows, "pipeline_s": p, "inprocess_s": i, "ratio": p / i, "peak_mb": max(peaks)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3, help="runs per size (median); 1 for 1M rows")
    args = ap.parse_args()
    print(
        f"{'rows':>9} {'pipeline s':>11} {'in-process s':>13} {'ratio':>6} {'target':>7} {'peak RSS MB':>12}"
    )
    for rows in args.sizes:
        r = measure(rows, 1 if rows >= 1_000_000 else args.repeat)
        target = TARGETS.get(rows)
        verdict = "" if target is None else ("ok" if r["ratio"] <= target else "MISSED")
        print(
            f"{rows:>9} {r['pipeline_s']:>11.2f} {r['inprocess_s']:>13.2f} {r['ratio']:>6.2f} "
            f"{(f'<={target}' if target else '-'):>7} {r['peak_mb']:>12.0f} {verdict}",
            flush=True,
        )


if __name__ == "__main__":
    main()
