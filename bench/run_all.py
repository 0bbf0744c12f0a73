"""Run every benchmark in bench/ (each prints its own figures and ratios).

python bench/run_all.py [--quick]     # --quick: skip the 1M-row sizes
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    args = ap.parse_args()
    scripts = sorted(
        p for p in HERE.glob("*.py") if not p.name.startswith("_") and p.name != "run_all.py"
    )
    failed = []
    for script in scripts:
        print(f"\n## {script.name}", flush=True)
        argv = [sys.executable, str(script)]
        if args.quick and script.name == "pipeline_overhead.py":
            argv += ["--sizes", "10000", "100000"]
        if subprocess.run(argv, cwd=HERE.parent).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
