"""validate: check the raw input before anything is trained on it (minimal version)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--raw-dir", type=Path, default=Path("/opt/ml/processing/input"))
    p.add_argument("--suite-dir", type=Path, default=Path("/opt/ml/processing/suite"))
    p.add_argument("--report-dir", type=Path, default=Path("/opt/ml/processing/report"))
    p.add_argument("--max-file-mb", type=float, default=2048)
    args = p.parse_args(argv)
    suite = json.loads(next(args.suite_dir.glob("*.json")).read_text())
    df = pd.concat(pd.read_csv(f) for f in sorted(args.raw_dir.glob("*.csv")))
    expected = suite["columns"]
    if list(df.columns) != expected:
        sys.exit(f"columns {list(df.columns)} != {expected}")
    args.report_dir.mkdir(parents=True, exist_ok=True)
    (args.report_dir / "validation.json").write_text(json.dumps({"success": True}))


if __name__ == "__main__":
    main()
