"""The local feature store at 1M records: ingest and snapshot throughput, peak RSS, and
the snapshot's cost against reading the same rows from one CSV file.

python bench/feature_store.py [--rows 1000000] [--update-share 0.2] [--repeat 3]

Each phase runs in a child process (wall time and peak RSS of that process): ingest of
N records from CSV (checks + Parquet + SQLite, without the GX suite, which
`mlops features ingest` runs first), ingest of a later version of a share of them,
a point-in-time snapshot to CSV (all columns, and the training columns the pipeline
reads; those also to Parquet), and, as the baseline, pandas reading the same rows from one CSV. Snapshot and
read phases run --repeat times; the median is shown (the machine is shared). Goals
(issue 16): peak RSS under 1 GB, snapshot within 3x of the CSV read.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

RECORD_ID, EVENT_TIME = "ENTITY_ID", "EVENT_TIME"
VALUES = ["F_INT", "F_FLOAT", "F_FLOAT2", "TARGET"]
START = datetime(2026, 1, 1, tzinfo=UTC)


def spec():
    from mlops.core.feature_store import FeatureDefinition, FeatureGroupSpec

    types = {"F_INT": "Integral", "F_FLOAT": "Fractional", "F_FLOAT2": "Fractional"}
    return FeatureGroupSpec(
        name="bench",
        record_id=RECORD_ID,
        event_time=EVENT_TIME,
        value_columns=tuple(VALUES),
        definitions=(
            FeatureDefinition(RECORD_ID, "String"),
            FeatureDefinition(EVENT_TIME, "String"),
            *(FeatureDefinition(c, types.get(c, "Fractional")) for c in VALUES),
        ),
    )


def generate(rows: int, ids: np.ndarray, days: tuple[int, int], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    seconds = rng.integers(days[0] * 86400, days[1] * 86400, len(ids))
    times = pd.Timestamp(START) + pd.to_timedelta(seconds, unit="s")
    return pd.DataFrame(
        {
            RECORD_ID: ids,
            EVENT_TIME: times.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "F_INT": rng.integers(0, 1000, len(ids)),
            "F_FLOAT": rng.normal(0, 1, len(ids)).round(6),
            "F_FLOAT2": rng.uniform(0, 100, len(ids)).round(4),
            "TARGET": rng.normal(50, 10, len(ids)).round(4),
        }
    )


def phase_ingest(home: Path, data: Path) -> None:
    from mlops.core.feature_store import check_records
    from mlops.local.feature_store import LocalFeatureStore

    s = spec()
    df = pd.read_csv(data)
    records = check_records(df, s, datetime.now(UTC))
    LocalFeatureStore(s, home).ingest(records, progress=lambda _: None)


def phase_snapshot(home: Path, out: Path, as_of: str, training: bool = False) -> None:
    from mlops.local.feature_store import LocalFeatureStore

    LocalFeatureStore(spec(), home).snapshot(datetime.fromisoformat(as_of), out, training)


def phase_query(home: Path, as_of: str) -> None:
    """The point-in-time rule alone, its rows in memory (Arrow), no file: where the time
    goes. (A count(*) over the rule would let DuckDB skip reading the value columns.)"""
    from mlops.local.feature_store import LocalFeatureStore, point_in_time_sql

    store = LocalFeatureStore(spec(), home)
    when = datetime.fromisoformat(as_of)
    sql = point_in_time_sql(store.spec, store._source(), when, VALUES, store._superseded_source())
    store._duckdb().sql(sql).to_arrow_table()


def phase_read_csv(data: Path) -> None:
    pd.read_csv(data)


def median_child(repeat: int, *argv: str) -> tuple[float, float, float]:
    """`child` run `repeat` times: the median wall and CPU, the highest peak RSS."""
    runs = [child(*argv) for _ in range(repeat)]
    return (
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        max(r[2] for r in runs),
    )


def child(*argv: str) -> tuple[float, float, float]:
    """(wall s, CPU s of all threads, peak RSS MB) of one phase in a fresh process.

    Times cover the work only, not interpreter start and imports: this machine is
    shared, and start-up under load would swamp the comparison. RSS is the process peak.
    """
    out = subprocess.run(
        [sys.executable, __file__, *argv], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[-3]), float(out[-2]), float(out[-1])


def report_phase(work) -> None:
    """Run `work()`, then print its wall and CPU seconds and the process's peak RSS."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{wall:.4f} {cpu:.4f} {peak:.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--update-share", type=float, default=0.2)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each snapshot/read phase")
    ap.add_argument(
        "--phase",
        choices=["ingest", "snapshot", "snapshot_training", "query", "read_csv"],
        help=argparse.SUPPRESS,
    )
    ap.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--as-of", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        import duckdb  # noqa: F401  (imported before the clock starts, in every phase)

        from mlops.local import feature_store  # noqa: F401

        phases = {
            "ingest": lambda: phase_ingest(args.home, args.data),
            "snapshot": lambda: phase_snapshot(args.home, args.data, args.as_of),
            "snapshot_training": lambda: phase_snapshot(args.home, args.data, args.as_of, True),
            "query": lambda: phase_query(args.home, args.as_of),
            "read_csv": lambda: phase_read_csv(args.data),
        }
        report_phase(phases[args.phase])
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-fs-"))
    try:
        n, updated = args.rows, int(args.rows * args.update_share)
        ids = np.arange(n)
        v1, v2 = work / "v1.csv", work / "v2.csv"
        generate(n, ids, (0, 30), seed=1).to_csv(v1, index=False)
        rng = np.random.default_rng(2)
        generate(updated, rng.choice(ids, updated, replace=False), (40, 60), 3).to_csv(
            v2, index=False
        )
        home = work / "home"
        i1 = child("--phase", "ingest", "--home", str(home), "--data", str(v1))
        i2 = child("--phase", "ingest", "--home", str(home), "--data", str(v2))
        snap, train = work / "snapshot.csv", work / "training.csv"
        as_of = (START + timedelta(days=90)).isoformat()
        at = ("--home", str(home), "--as-of", as_of)
        r = args.repeat
        sn = median_child(r, "--phase", "snapshot", *at, "--data", str(snap))
        st = median_child(r, "--phase", "snapshot_training", *at, "--data", str(train))
        parquet = work / "training.parquet"
        sp = median_child(r, "--phase", "snapshot_training", *at, "--data", str(parquet))
        rows = sum(1 for _ in snap.open()) - 1
        qr = median_child(r, "--phase", "query", *at)
        rd = median_child(r, "--phase", "read_csv", "--data", str(snap))
        rt = median_child(r, "--phase", "read_csv", "--data", str(train))
        offline_mb = sum(p.stat().st_size for p in home.rglob("*.parquet")) / 2**20
        print(f"records: {n:,} first versions + {updated:,} later versions; snapshot {rows:,} rows")
        print(f"snapshot and read phases: median of {r} runs")
        print("phase                          wall s   CPU s      per s (wall)  peak RSS")
        for label, (wall, cpu, rss), count in (
            (f"ingest {n:,}", i1, n),
            (f"ingest {updated:,} more", i2, updated),
            ("snapshot as-of to CSV", sn, rows),
            ("  read the same rows from CSV", rd, rows),
            ("snapshot --training to CSV", st, rows),
            ("  read the same rows from CSV", rt, rows),
            ("snapshot --training to Parquet", sp, rows),
            ("the rule alone, in memory", qr, rows),
        ):
            print(f"{label:<30} {wall:7.2f} {cpu:7.2f} {count / wall:>13,.0f} {rss:7.0f} MB")
        print(
            f"offline store: {offline_mb:.1f} MB Parquet (v1 as CSV: {v1.stat().st_size / 2**20:.1f} MB)"
        )
        peak = max(i1[2], i2[2], sn[2], st[2])
        print(f"ratio rule alone / CSV read: {qr[0] / rt[0]:.2f}x wall, {qr[1] / rt[1]:.2f}x CPU")
        for label, made, read in (
            ("snapshot", sn, rd),
            ("training snapshot", st, rt),
            ("training snapshot as Parquet", sp, rt),
        ):
            wall_ratio, cpu_ratio = made[0] / read[0], made[1] / read[1]
            verdict = "met" if wall_ratio <= 3 else "MISSED"
            print(
                f"ratio {label} / CSV read: {wall_ratio:.2f}x wall, {cpu_ratio:.2f}x CPU "
                f"(goal <= 3x: {verdict})"
            )
        print(
            f"peak RSS of the store: {peak:.0f} MB (goal < 1024 MB: {'met' if peak < 1024 else 'MISSED'})"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
