"""`mlops init` on both tasks with string categories, then the fork's pipeline and staging
deploy: the thresholds init calibrated and the figures the pipeline and smoke test reached.

Each data set gets its own fork of this checkout in a temporary folder (as
tests/integration/test_template_fork*.py do), so the checkout is never written.
Data: a generated subscription set (400 rows, yes/no-like labels "left"/"stayed", two
string categories, a near-unique string code), scikit-learn's bundled breast-cancer set
(569 rows, real, 0/1 labels, numbers only) and a generated rent set (500 rows,
regression, a string city and a string furnishing flag, a near-unique street code).
The rent set is initialised twice: with the default model family and with
`--model sklearn`. Prints the calibrated gate and smoke limits, the pipeline's test
metrics, the smoke result and the seconds of each stage (init includes its own run of
the preprocess, train and evaluate steps). Run: .venv/bin/python bench/init_tasks.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("mlops", "model_build", "data_checks", "model_deploy", "stepkit")
# The generator the template self-test forks from (tests/fixtures/tasks.py).
sys.path.insert(0, str(ROOT / "tests"))
from fixtures.tasks import subscription_data  # noqa: E402


def rents(rows: int = 500, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(["Lyon", "Paris", "Nantes", "Lille", "Nice"], rows)
    furnished = rng.choice(["yes", "no"], rows)
    area = rng.uniform(15, 140, rows).round(1)
    per_m2 = pd.Series(city).map({"Lyon": 14, "Paris": 28, "Nantes": 12, "Lille": 11, "Nice": 18})
    rent = area * per_m2.to_numpy() * np.where(furnished == "yes", 1.15, 1.0)
    return pd.DataFrame(
        {
            "street": [
                f"{v} rue {w}" for v, w in zip(rng.integers(1, 400, rows), range(rows), strict=True)
            ],
            "city": city,
            "furnished": furnished,
            "area_sqm": area,
            "rooms": np.clip((area / 25).round(), 1, None).astype(int),
            "rent": (rent + rng.normal(0, 120, rows)).round().clip(150, None),
        }
    )


def breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    return frame.rename(columns=lambda c: re.sub(r"\W+", "_", c))


def fork(folder: Path) -> Path:
    for part in PARTS:
        shutil.copytree(ROOT / part, folder / part, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml",):
        shutil.copy2(ROOT / name, folder / name)
    return folder


def run(folder: Path, env: dict, *argv: str) -> tuple[str, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mlops", *argv], cwd=folder, env=env, capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(f"mlops {' '.join(argv)} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout, time.perf_counter() - start


def measure(name: str, df: pd.DataFrame, target: str, task: str, tmp: Path, *more: str) -> None:
    folder = fork(tmp / name)
    data = tmp / f"{name}.csv"
    df.to_csv(data, index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update(MLOPS_HOME=str(tmp / f"{name}-home"), PYTHONPATH="", PYTHONDONTWRITEBYTECODE="1")
    argv = ["init", "--data", str(data), "--target", target, "--task", task, "--name", name]
    out, t_init = run(folder, env, *argv, *more, "--force")
    cfg = yaml.safe_load((folder / "model_build" / "config.yaml").read_text())
    print(f"\n== {name}: {len(df)} rows, task {task}, model {cfg['train']['model']}")
    for line in out.splitlines():
        if re.match(r"\s+(left out|string categories|positive label|baseline|naive|warning)", line):
            print(line)
    print(f"  calibrated gate {cfg['gate']}; smoke {cfg['smoke_test']}")
    out, t_run = run(folder, env, "pipeline", "run")
    print("  pipeline " + re.search(r"metrics: (.*)", out).group(1))
    for line in re.findall(r"gate: .*", out):
        print("  " + line)
    run(folder, env, "models", "approve", "1", "--note", "bench")
    try:
        out, t_deploy = run(folder, env, "deploy", "--stage", "staging")
    finally:
        subprocess.run(
            [sys.executable, "-m", "mlops", "endpoint", "stop", "--stage", "staging"],
            cwd=folder, env=env, capture_output=True,
        )  # fmt: skip
    print("  staging " + re.search(r"smoke test \w+: .*", out).group(0))
    print(f"  seconds: init {t_init:.1f}, pipeline {t_run:.1f}, deploy+smoke {t_deploy:.1f}")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        measure("subs", subscription_data(), "status", "binary_classification", Path(tmp))
        measure("cancer", breast_cancer(), "target", "binary_classification", Path(tmp))
        measure("rent", rents(), "rent", "regression", Path(tmp))
        measure("rent-sklearn", rents(), "rent", "regression", Path(tmp), "--model", "sklearn")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
