"""Data validation: time and peak memory next to a plain `pandas.read_csv` of the same file.

For each size, one fresh process times, turn about, a plain `pandas.read_csv`
and what the validate step does (checked read + the Great Expectations suite),
after imports and a warm-up (the GX import is reported apart); times are medians
of --repeat rounds. Peak memory comes from two fresh processes: one that only
reads, one that validates.
Target: validation adds no more than 3x the read time at 1M rows.
Also validates the labs' reference file when ../shared is there.

    python bench/validation.py [--sizes 10000 100000 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import REFERENCE_DATA, REPO_ROOT, sample_csv

TARGET_RATIO = 3.0
SUITE = REPO_ROOT / "data_checks" / "expectations" / "house_prices.json"


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, because ru_maxrss survives exec and would report the
    parent's peak (the parent generated the 1M-row sample)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, path: Path, repeat: int) -> dict:
    """Runs inside a fresh process: timings and peak RSS of one mode."""
    from datetime import date

    import pandas as pd

    sys.path.insert(0, str(REPO_ROOT / "model_build" / "steps"))
    import validate

    from stepkit.csv_input import read_csv_checked
    from stepkit.expectations import load_suite

    out: dict = {}
    if mode == "validate":
        start = time.perf_counter()
        import great_expectations  # noqa: F401

        out["gx_import_s"] = time.perf_counter() - start
        suite = load_suite(SUITE)
        warm = pd.read_csv(path, nrows=2000)
        validate.validate_data(warm, suite, [str(path)], date.today())  # context + first run
    pd.read_csv(path, nrows=1000)
    out["rss_before_mb"] = peak_rss_mb()
    read, checked, gx, success = [], [], [], None
    for _ in range(repeat):  # interleaved, so both see the same machine load
        start = time.perf_counter()
        df = pd.read_csv(path)
        read.append(time.perf_counter() - start)
        del df
        if mode == "validate":
            start = time.perf_counter()
            df = read_csv_checked(path, 4096)
            checked.append(time.perf_counter() - start)
            start = time.perf_counter()
            report = validate.validate_data(df, suite, [str(path)], date.today())
            gx.append(time.perf_counter() - start)
            success = report["success"]
            del df
    out["peak_rss_mb"] = peak_rss_mb()
    out["read_s"] = statistics.median(read)
    if mode == "validate":
        out.update(
            checked_read_s=statistics.median(checked),
            suite_s=statistics.median(gx),
            success=success,
            summary=report["summary"],
        )
    return out


def measure(mode: str, path: Path, repeat: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path), "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def one_bad_price(rows: int) -> Path:
    """The same sample with a single negative price: the failure path (details computed)."""
    path = sample_csv(rows).with_name(f"houses-{rows}-bad-price.csv")
    if not path.exists():
        import pandas as pd

        df = pd.read_csv(sample_csv(rows))
        df.loc[len(df) // 2, "PRICE"] = -1
        df.to_csv(path, index=False)
    return path


def _mb(result: dict) -> str:
    """Peak RSS, with the RSS after imports and warm-up in brackets."""
    return f"{result['peak_rss_mb']:.0f} ({result['rss_before_mb']:.0f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.repeat)))
        return 0

    files = [(f"{n:,}", sample_csv(n)) for n in args.sizes]
    files.append((f"{max(args.sizes):,} + 1 bad price", one_bad_price(max(args.sizes))))
    print(
        f"{'rows':>24} {'MB':>6} {'read_csv s':>10} {'checked read s':>14} {'suite s':>8} "
        f"{'added/read':>10} {'peak MB read':>14} {'peak MB validate':>16}  result"
    )
    verdict = 0
    gx_imports = []
    for label, path in files:
        r = measure("read", path, args.repeat)
        v = measure("validate", path, args.repeat)
        gx_imports.append(v["gx_import_s"])
        added = v["checked_read_s"] + v["suite_s"] - v["read_s"]
        ratio = added / v["read_s"]
        print(
            f"{label:>24} {path.stat().st_size / 2**20:>6.1f} {v['read_s']:>10.3f} "
            f"{v['checked_read_s']:>14.3f} {v['suite_s']:>8.3f} {ratio:>9.2f}x "
            f"{_mb(r):>14} {_mb(v):>16}  "
            + ("pass" if v["success"] else "fail: " + v["summary"][:60])
        )
        if label == f"{1_000_000:,}" and ratio > TARGET_RATIO:
            verdict = 1
    print(
        f"\nGX import (once per process, not in the figures): {statistics.median(gx_imports):.1f} s"
    )
    print("added/read = (checked read + suite - plain read_csv) / plain read_csv")
    print("peak MB: peak RSS of the process (RSS after imports and warm-up in brackets)")
    if 1_000_000 in args.sizes:
        print(
            f"target at 1M rows: added/read <= {TARGET_RATIO:g}x -> {'MET' if not verdict else 'MISSED'}"
        )
    if REFERENCE_DATA.is_file():
        ref = measure("validate", REFERENCE_DATA, 1)
        print(f"\nreference file {REFERENCE_DATA.name}: {ref['summary']}")
    else:
        print(f"\nreference file {REFERENCE_DATA} absent: skipped")
    return verdict


if __name__ == "__main__":
    sys.exit(main())
