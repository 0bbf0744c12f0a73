"""`mlops init`: a fork's config, starter suite and sample, written from its own data."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import textwrap
from datetime import date
from pathlib import Path

import yaml

from mlops.core import profiling
from mlops.core.config import DEFAULT_CONFIG, load_config
from mlops.core.deploy import endpoint_name
from mlops.core.errors import UsageError
from mlops.core.paths import REPO_ROOT
from mlops.core.stages import STAGES

# What the written config starts from; the gate and smoke test are calibrated.
HYPERPARAMETERS = {
    "objective": "reg:squarederror",
    "max_depth": 3,
    "eta": 0.05,
    "subsample": 0.9,
    "min_child_weight": 1,
    "num_round": 3000,
    "early_stopping_rounds": 50,
    "seed": 42,
}
SPLIT = (0.6, 0.2, 42)  # train ratio, validation ratio, seed
SMOKE_ROWS = 20
SAMPLE = "model_build/data/sample.csv"

CONFIG_TEMPLATE = """\
# Written by `mlops init` from {source} ({rows} rows) on {today}.
# Review the lines marked REVIEW, then commit this file, the suite and the sample.

model_package_group: {name}   # names the pipeline, endpoints and stacks too

data:
  # REVIEW: left out: {left_out}
  features: {features}
  target: {target}
  expectation_suite: {suite}
  max_file_mb: 2048          # larger inputs are refused before they are read
  # A small committed sample (the demo, tests/project/ and PR CI run on it).
  sample: {sample}

preprocess:
  train_ratio: {train}
  validation_ratio: {validation}      # the rest is the held-out test split
  seed: {seed}

train:
  # Passed to xgboost.train; num_round and early_stopping_rounds are its arguments.
  hyperparameters:
{hyperparameters}

gate:
  # REVIEW: calibrated on {test_rows} held-out rows. Baseline: MSE {b_mse:.6g}
  # (95 % interval {b_mse_lo:.6g} to {b_mse_hi:.6g}), R2 {b_r2:.4f}; predicting the mean:
  # MSE {n_mse:.6g}, R2 {n_r2:.4f}.
  max_mse: {max_mse}
  min_r2: {min_r2}
  # A challenger may be at most this much worse (MSE, %) than the approved
  # champion scored on the same held-out rows.
  max_regression_pct: 5.0

drift:
  statistic: psi             # population stability index, per feature
  threshold: 0.2
  fail_on_drift: false

smoke_test:
  rows: {smoke_rows}
  # REVIEW: the baseline's MAPE was {b_mape:.3g} % on all held-out rows; {smoke_rows} rows
  # stay under this in 99 % of draws, with a fifth more room.
  max_mape_pct: {max_mape_pct}

behaviour:
  # REVIEW: features the prediction must not go down (or up) with, all else equal;
  # tests/project/ checks them on the model trained from the sample.
  # Rank correlation with the target (candidates, not proof): {candidates}
  monotonic_increasing: []
  monotonic_decreasing: []
"""


def render_config(
    name: str,
    source: str,
    prof: profiling.Profile,
    cal: profiling.Calibration,
    suite: str,
    candidates: dict[str, float],
) -> str:
    b, n = cal.baseline, cal.naive
    left_out = ", ".join(f"{c} ({why})" for c, why in prof.left_out.items()) or "nothing"
    return CONFIG_TEMPLATE.format(
        source=source,
        rows=prof.rows,
        today=date.today().isoformat(),
        name=name,
        left_out=left_out,
        features=json.dumps(prof.feature_names),
        target=json.dumps(prof.target.name),
        suite=suite,
        sample=SAMPLE,
        train=SPLIT[0],
        validation=SPLIT[1],
        seed=SPLIT[2],
        hyperparameters=textwrap.indent(yaml.safe_dump(HYPERPARAMETERS, sort_keys=False), "    "),
        test_rows=cal.test_rows,
        b_mse=b["mse"],
        b_mse_lo=b["mse_interval"][0],
        b_mse_hi=b["mse_interval"][1],
        b_r2=b["r2"],
        n_mse=n["mse"],
        n_r2=n["r2"],
        max_mse=f"{cal.max_mse:.6g}",
        min_r2=cal.min_r2,
        smoke_rows=cal.smoke_rows,
        b_mape=b["mape_pct"],
        max_mape_pct=cal.max_mape_pct,
        candidates=", ".join(f"{k} {v:+.2f}" for k, v in candidates.items()) or "none over 0.3",
    )


def read_data(path: Path):
    from stepkit import UnusableInput
    from stepkit.csv_input import read_csv_checked

    try:
        return read_csv_checked(path, max_mb=2048)
    except UnusableInput as exc:
        raise UsageError(str(exc)) from None


def write_temp(destination: Path, text: str) -> Path:
    """`text` in a temporary file beside `destination` (os.replace then moves it there)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.stem}.", suffix=destination.suffix
    )
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return Path(tmp)


def check_staged(config: Path, suite: Path, sample: Path) -> None:
    """The written config loads and the sample passes the written suite: else nothing moves."""
    from model_build.steps import validate

    load_config(config, root=REPO_ROOT)
    report = validate.validate_file(sample, suite, 2048, date.today())
    if not report["success"]:
        raise UsageError(f"the sample fails its own starter suite: {report['summary']}")


def cmd_init(args: argparse.Namespace) -> int:
    data = args.data.resolve()
    name = profiling.project_name(args.name or data.stem)
    suite_rel = f"data_checks/expectations/{name.replace('-', '_')}.json"
    config_file, suite_file = DEFAULT_CONFIG, REPO_ROOT / suite_rel
    sample_file = REPO_ROOT / SAMPLE
    if data == sample_file.resolve():
        raise UsageError(f"{args.data} is where the sample goes: pass the data from elsewhere")
    existing = [p for p in (config_file, suite_file, sample_file) if p.exists()]
    if existing and not args.force:
        names = ", ".join(str(p.relative_to(REPO_ROOT)) for p in existing)
        raise UsageError(f"{names} exist: --force replaces them (the example's are meant to go)")

    df = read_data(args.data)
    prof = profiling.profile(df, args.target, args.task, keep=args.keep)
    print(f"profiled {args.data}: {prof.rows} rows, {len(prof.features)} features")
    for column, why in prof.left_out.items():
        print(f"  left out {column}: {why} (--keep {column} keeps it)")
    print("calibrating: a quick baseline fit and the mean predictor on held-out rows ...")
    cal = profiling.calibrate(
        df, prof.feature_names, prof.target.name, HYPERPARAMETERS, SPLIT, SMOKE_ROWS
    )
    print_calibration(cal)

    candidates = profiling.monotonic_candidates(df, prof.feature_names, prof.target.name)
    suite = profiling.starter_suite(prof, name.replace("-", "_"), args.data.name)
    sample = profiling.sample_rows(df, prof.columns)
    files = {
        config_file: render_config(name, args.data.name, prof, cal, suite_rel, candidates),
        suite_file: json.dumps(suite, indent=2) + "\n",
        sample_file: sample.to_csv(index=False),
    }
    temps: dict[Path, Path] = {}
    try:
        for dest, text in files.items():
            temps[dest] = write_temp(dest, text)
        check_staged(temps[config_file], temps[suite_file], temps[sample_file])
        for dest, tmp in temps.items():
            os.replace(tmp, dest)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    print_written(name, files, len(sample), suite)
    return 0


def print_calibration(cal: profiling.Calibration) -> None:
    b, n = cal.baseline, cal.naive
    print(f"  held-out rows: {cal.test_rows}")
    print(
        f"  baseline (XGBoost): MSE {b['mse']:.4g} (95 % {b['mse_interval'][0]:.4g} to "
        f"{b['mse_interval'][1]:.4g}), R2 {b['r2']:.4f} (95 % {b['r2_interval'][0]:.4f} to "
        f"{b['r2_interval'][1]:.4f}), MAPE {b['mape_pct']:.3g} %"
    )
    print(
        f"  naive (training mean): MSE {n['mse']:.4g}, R2 {n['r2']:.4f}, MAPE {n['mape_pct']:.3g} %"
    )
    print(f"  gate: max_mse {cal.max_mse:.6g}, min_r2 {cal.min_r2}")
    print(f"  smoke test: max_mape_pct {cal.max_mape_pct} on {cal.smoke_rows} rows")
    for warning in cal.warnings:
        print(f"  warning: {warning}")


def print_written(name: str, files: dict[Path, str], sample_rows: int, suite: dict) -> None:
    config, suite_file, sample = files
    print("wrote:")
    print(f"  {config.relative_to(REPO_ROOT)}")
    print(f"  {suite_file.relative_to(REPO_ROOT)} ({len(suite['expectations'])} expectations)")
    print(f"  {sample.relative_to(REPO_ROOT)} ({sample_rows} rows)")
    print("names that follow from the project name:")
    print(f"  model package group {name}; pipeline {name}-pipeline")
    for stage in STAGES:
        print(f"  {stage}: endpoint and stack {endpoint_name(name, stage)}")
    print(
        f"  AWS bootstrap: aws cloudformation deploy --stack-name {name}-bootstrap "
        f"--template-file model_deploy/bootstrap.yml --capabilities CAPABILITY_IAM "
        f"--parameter-overrides ModelPackageGroupName={name} GitHubOrg=... GitHubRepo=..."
    )
    print("review before committing:")
    print("  - the lines marked REVIEW in the config (left-out columns, gate, smoke test,")
    print("    behaviour: declare features the prediction must rise or fall with)")
    print("  - the suite's bounds: observed ranges widened by half; set what is possible")
    print("next: make test && make demo")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init",
        help="write a fork's config, starter suite and sample from its own data",
        description="Profile a CSV and write model_build/config.yaml, a starter Great "
        "Expectations suite in data_checks/expectations/ and the committed sample "
        f"{SAMPLE}. The gate thresholds and the smoke-test tolerance are calibrated from "
        "a quick baseline fit and a mean predictor on held-out rows (figures shown). "
        "Constant and ID-like columns are left out unless --keep names them. Exit 2 on "
        "unusable input (no such column, constant or empty target, too few rows).",
        epilog="example: mlops init --data ~/diabetes.csv --target progression --force",
    )
    p.add_argument("--data", type=Path, required=True, help="CSV with a header row (only read)")
    p.add_argument("--target", required=True, help="the column to predict")
    p.add_argument(
        "--task", choices=profiling.TASKS, default="regression", help="(default: regression)"
    )
    p.add_argument("--name", help="project name (default: from the data file's name)")
    p.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="COLUMN",
        help="keep a column init would leave out (repeatable)",
    )
    p.add_argument(
        "--force", action="store_true", help="replace an existing config, suite or sample"
    )
    p.set_defaults(func=cmd_init)
