"""`mlops init`'s calibration on data sets of several sizes: what the gate becomes, how
wide the held-out intervals are, and how long init takes.

Each set gets a whole `mlops init` (profile, staged files, a run of the project's own
preprocess, train and evaluate steps in a temporary folder, the calibration from what
evaluate wrote) into a temporary project folder: the checkout is never written.
Data: scikit-learn's bundled diabetes set (442 rows, real, not what the template was
built around), the example's committed sample (10,000 houses), and a 300-row slice of
it. Prints, per set: held-out rows, the model's test MSE and the ratio of its 95 %
bootstrap interval (high / low), the calibrated max_mse as a ratio of the model's MSE
and of the mean predictor's, min_r2, max_mape_pct, and init's seconds (the first set's
include starting the step server, which imports the libraries once per process).
Run: .venv/bin/python bench/init_calibration.py
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

import pandas as pd


def datasets() -> dict[str, tuple[pd.DataFrame, str]]:
    from sklearn.datasets import load_diabetes

    from mlops.core.config import DEFAULT_CONFIG, load_config

    example = load_config(DEFAULT_CONFIG)
    houses = pd.read_csv(example.sample_file)
    diabetes = load_diabetes(as_frame=True, scaled=False).frame
    return {
        "diabetes (442)": (diabetes, "target"),
        "example sample (10000)": (houses, example.data.target),
        "example slice (300)": (houses.head(300), example.data.target),
    }


def init(data: Path, target: str, project: Path):
    """`mlops init --data DATA --target TARGET` into `project` (its printout swallowed); the
    calibration it wrote."""
    from mlops.cli import build_parser
    from mlops.cli.init import init_project

    args = build_parser().parse_args(["init", "--data", str(data), "--target", target])
    with contextlib.redirect_stdout(io.StringIO()):
        cal = init_project(args, project)
    return cal


def main() -> int:
    print(
        f"{'data':<24}{'test':>6}{'MSE':>11}{'CI hi/lo':>10}{'max/base':>10}"
        f"{'max/naive':>11}{'min_r2':>8}{'mape%':>7}{'s':>7}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, (df, target)) in enumerate(datasets().items()):
            data = Path(tmp) / f"set{index}.csv"
            df.to_csv(data, index=False)
            start = time.perf_counter()
            cal = init(data, target, Path(tmp) / f"project{index}")
            seconds = time.perf_counter() - start
            b, n = cal.baseline, cal.naive
            low, high = b["mse_interval"]
            print(
                f"{name:<24}{cal.test_rows:>6}{b['mse']:>11.4g}{high / low:>10.2f}"
                f"{cal.max_mse / b['mse']:>10.2f}{cal.max_mse / n['mse']:>11.3f}"
                f"{cal.min_r2:>8.3f}{cal.max_mape_pct:>7.3g}{seconds:>7.1f}"
            )
            for warning in cal.warnings:
                print(f"  warning: {warning}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
