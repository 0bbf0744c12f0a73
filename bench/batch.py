"""Batch scoring throughput and memory: `mlops batch predict` against the physical limit.

The limit: read the same CSV into memory with pandas and call the booster's
`inplace_predict` once on every row, on all cores (what a hand-written script does,
holding the whole file in memory). Ours streams the file in chunks through the
version's handler on a process pool and writes the output file. Each runs in its own
process; peak RSS is the sum over the process tree (workers included), sampled.

Targets: rows/s >= 0.5 of the limit at 1M rows; peak RSS flat from 1M to 10M rows and
under 1 GB. The 10M-row file is generated in chunks (never held in memory) and cached.

    python bench/batch.py [--rows 1000000] [--large-rows 10000000] [--model-archive A]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from _common import CACHE, sample_csv, timed_child

TARGET_RATIO = 0.5
TARGET_RSS_MB = 1024


def big_csv(rows: int, chunk: int = 1_000_000) -> Path:
    """A generated file of `rows` rows, written chunk by chunk (cached under bench/results/)."""
    path = CACHE / f"houses-{rows}-chunked.csv"
    if path.exists():
        return path
    from mlops.core.datagen import generate_houses

    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    for i, start in enumerate(range(0, rows, chunk)):
        frame = generate_houses(min(chunk, rows - start), seed=100 + i)
        frame.to_csv(tmp, mode="a", header=i == 0, index=False)
    os.replace(tmp, path)
    return path


def limit_child(data: str, archive: str) -> None:
    """The physical limit: whole file into memory, one inplace_predict on all cores (the
    booster loaded by the family code the artifact carries)."""
    import tarfile

    import pandas as pd

    from stepkit.code_loader import load_code

    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        manifest = json.loads((Path(tmp) / "manifest.json").read_text())
        families = load_code(Path(tmp) / "code", "families")
        booster = families.family(manifest["family"]).load(Path(tmp) / "model")
    booster.set_param({"nthread": len(os.sched_getaffinity(0))})
    frame = pd.read_csv(data)
    predictions = booster.inplace_predict(frame[manifest["features"]].to_numpy(float))
    assert len(predictions) == len(frame)


def ours_child(data: str, archive: str, out: str) -> None:
    from mlops.core.batch import BatchJob
    from mlops.core.registry import APPROVED, ModelVersion
    from mlops.local.batch import LocalBatchScorer

    version = ModelVersion("bench", 1, APPROVED, "", {}, {}, archive)
    job = BatchJob(data, out, version, workers=len(os.sched_getaffinity(0)))
    result = LocalBatchScorer().predict(job, lambda _: None)
    assert result.scored == result.rows, result


def train_archive(workdir: Path) -> Path:
    from mlops.core.config import load_config
    from mlops.local.runner import run_pipeline

    print("training a model with the local pipeline on 10,000 sample rows ...", flush=True)
    result = run_pipeline(load_config(), sample_csv(10_000), workdir / "home", lambda _: None)
    return Path(result.version.model_uri)


def run(kind: str, data: Path, archive: Path, out: Path) -> tuple[float, float]:
    argv = [sys.executable, __file__, "--child", kind, str(data), str(archive), str(out)]
    return timed_child(argv)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--large-rows", type=int, default=10_000_000, help="0 skips the RSS check")
    p.add_argument("--model-archive", type=Path, default=None)
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        kind, data, archive, out = args.child
        limit_child(data, archive) if kind == "limit" else ours_child(data, archive, out)
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        archive = args.model_archive or train_archive(Path(tmp))
        data = big_csv(args.rows)
        out = Path(tmp) / "scores.csv"
        limit_s, limit_mb = run("limit", data, archive, out)
        ours_s, ours_mb = run("ours", data, archive, out)
        figures = {
            "rows": args.rows,
            "limit_rows_per_s": args.rows / limit_s,
            "limit_peak_rss_mb": limit_mb,
            "ours_rows_per_s": args.rows / ours_s,
            "ours_peak_rss_mb": ours_mb,
        }
        ratio = limit_s / ours_s
        print(f"{args.rows:,} rows, {len(os.sched_getaffinity(0))} cores")
        print(f"limit (read all + one inplace_predict): {limit_s:6.1f} s  "
              f"{args.rows / limit_s:>10,.0f} rows/s  peak RSS {limit_mb:7.0f} MB")  # fmt: skip
        print(f"mlops batch predict (streamed, pool):   {ours_s:6.1f} s  "
              f"{args.rows / ours_s:>10,.0f} rows/s  peak RSS {ours_mb:7.0f} MB")  # fmt: skip
        print(f"throughput ratio {ratio:.2f} (target >= {TARGET_RATIO}) -> "
              f"{'ok' if ratio >= TARGET_RATIO else 'MISSED'}")  # fmt: skip
        if args.large_rows:
            large = big_csv(args.large_rows)
            large_s, large_mb = run("ours", large, archive, out)
            figures |= {"large_rows": args.large_rows, "large_peak_rss_mb": large_mb,
                        "large_rows_per_s": args.large_rows / large_s}  # fmt: skip
            ok = large_mb < TARGET_RSS_MB and large_mb < 1.5 * ours_mb
            print(f"mlops batch predict, {args.large_rows:,} rows: {large_s:6.1f} s  "
                  f"{args.large_rows / large_s:>10,.0f} rows/s  peak RSS {large_mb:7.0f} MB "
                  f"(vs {ours_mb:.0f} MB at {args.rows:,}; target flat and < "
                  f"{TARGET_RSS_MB} MB) -> {'ok' if ok else 'MISSED'}")  # fmt: skip
        figures["ratio"] = ratio
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "batch.json").write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
