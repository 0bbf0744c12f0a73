"""The template tests itself, as ZenML's e2e template does: derive a fork in a temporary
folder from a data set generated here (not house prices), run `mlops init` there, review
the config the way a person would (declare one behaviour), then run that fork's own
project tests and its demo: pipeline on the sample, approval, staging deploy with smoke
test, promotion, prod smoke test. The fork touches model_build/ and data_checks/ only."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _serving import deploy_config_copy

from mlops.core.paths import REPO_ROOT
from mlops.local.server import WATCH_PID_ENV

pytestmark = pytest.mark.slow

# What a fork is: the template's files, without state, caches or local data.
FORK_PARTS = ("mlops", "model_build", "data_checks", "model_deploy", "stepkit", "tests")
FORK_FILES = ("pyproject.toml", "Makefile")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "results")
EXPECTED_TOUCHED = {
    "model_build/config.yaml",
    "model_build/data/sample.csv",
    "data_checks/expectations/trial_fork.json",
}


def trial_data(rows: int = 400, seed: int = 5) -> pd.DataFrame:
    """A small clinical-style regression set: a visit id, a constant clinic code, a 1/2
    code, ages, and a positive target that rises with bmi and blood pressure."""
    rng = np.random.default_rng(seed)
    age = rng.integers(19, 80, rows)
    sex = rng.integers(1, 3, rows)
    bmi = np.round(rng.normal(26.4, 4.4, rows).clip(18, 43), 1)
    bp = np.round(rng.normal(94.6, 13.8, rows).clip(62, 133), 1)
    glucose = np.round(rng.normal(91.3, 11.5, rows), 1)
    progression = 152 + 9.5 * (bmi - 26.4) + 1.2 * (bp - 94.6) + 0.3 * (age - 48)
    progression = progression + 0.8 * (glucose - 91.3) + rng.normal(0, 35, rows)
    return pd.DataFrame(
        {
            "visit_id": np.arange(1, rows + 1),
            "age": age,
            "sex": sex,
            "bmi": bmi,
            "bp": bp,
            "glucose": glucose,
            "clinic": 3,
            "progression": np.round(progression.clip(25, 346)),
        }
    )


def make_fork(folder: Path) -> Path:
    for part in FORK_PARTS:
        shutil.copytree(REPO_ROOT / part, folder / part, ignore=IGNORE)
    for name in FORK_FILES:
        shutil.copy2(REPO_ROOT / name, folder / name)
    return folder


def touched(fork: Path) -> set[str]:
    """Files the fork added or changed, compared with the template."""
    out = set()
    for path in fork.rglob("*"):
        rel = path.relative_to(fork)
        if path.is_dir() or {"__pycache__", ".pytest_cache"} & set(rel.parts):
            continue
        original = REPO_ROOT / rel
        if not original.is_file() or not filecmp.cmp(original, path, shallow=False):
            out.add(str(rel))
    return out


def in_fork(fork: Path, env: dict, *argv: str, timeout: int = 600):
    """`python argv...` inside the fork: its own mlops/ comes first on the path."""
    return subprocess.run(
        [sys.executable, *argv], cwd=fork, env=env, capture_output=True, text=True, timeout=timeout
    )


def story(fork: Path, env: dict, out: Path, tests: str = "tests/project") -> dict:
    """What every fork runs: its own tests, its demo (pipeline, approval, staging deploy and
    smoke test, promotion, batch scoring, captured traffic and the monitor; endpoints kept
    for the caller, who stops them) and the PR report of the demo's run, written to `out`.
    Returns each one's CompletedProcess; any exit but 0 fails the test."""
    done = {}
    done["tests"] = in_fork(fork, env, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", tests)
    demo = ["-m", "mlops.cli.demo", "--keep-endpoints", "--traffic-rows", "150"]
    done["demo"] = in_fork(fork, env, *demo)
    report = ["-m", "mlops", "report", "pr", "--out", str(out / "pr-report.md"),
              "--report-dir", f"{env['MLOPS_HOME']}/reports", "--plots-dir", str(out / "plots")]  # fmt: skip
    done["report"] = in_fork(fork, env, *report)
    for name, result in done.items():
        assert result.returncode == 0, f"{name}:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    return done


def stop_endpoints(fork: Path, env: dict) -> None:
    for stage in ("staging", "prod"):
        in_fork(fork, env, "-m", "mlops", "endpoint", "stop", "--stage", stage)


@pytest.fixture
def fork_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update(
        MLOPS_HOME=str(tmp_path / "home"),
        MLOPS_DEPLOY_DIR=str(deploy_config_copy(tmp_path / "deploy")),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONPATH="",
    )
    env[WATCH_PID_ENV] = str(os.getpid())
    return env


def test_a_fork_with_its_own_data_is_green_with_config_edits_only(tmp_path, fork_env):
    fork = make_fork(tmp_path / "fork")
    data = tmp_path / "trial.csv"
    trial_data().to_csv(data, index=False)
    init = ["-m", "mlops", "init", "--data", str(data), "--name", "trial-fork"]

    refused = in_fork(fork, fork_env, *init, "--target", "progression")
    assert refused.returncode == 2 and "--force" in refused.stderr
    unusable = in_fork(fork, fork_env, *init, "--target", "outcome", "--force")
    assert unusable.returncode == 2 and unusable.stderr.count("\n") == 1
    assert "no column 'outcome'" in unusable.stderr

    done = in_fork(fork, fork_env, *init, "--target", "progression", "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "left out visit_id: ID-like" in done.stdout
    assert "left out clinic: constant" in done.stdout
    assert re.search(r"baseline \(xgboost\): MSE [\d.e+]+ \(95 % ", done.stdout)
    assert "only 80 held-out rows" in done.stdout  # 400 rows: the small-data warning

    # The review: declare that progression must not fall as bmi rises.
    config = fork / "model_build" / "config.yaml"
    text = config.read_text()
    assert re.search(r"candidates, not proof\): bmi \+0\.\d\d", text)  # the strongest
    config.write_text(text.replace("monotonic_increasing: []", "monotonic_increasing: [bmi]"))

    try:
        done = story(fork, fork_env, tmp_path)
    finally:
        stop_endpoints(fork, fork_env)
    tests, demo = done["tests"], done["demo"]
    assert (
        "PASSED tests/project/test_model.py::test_declared_monotonic_behaviour_holds[bmi up]"
        in (tests.stdout)
    )
    assert "✅ passing" in (tmp_path / "pr-report.md").read_text()
    assert "endpoint name trial-fork-prod" in demo.stdout
    smoke = re.findall(r"smoke test passed: 20 rows, MAPE ([\d.]+)% \(max ([\d.]+)%\)", demo.stdout)
    assert len(smoke) >= 2 and all(float(m) < float(limit) for m, limit in smoke)
    metrics = re.search(r"test metrics: (.*)", demo.stdout).group(1)
    print(f"fork figures: {metrics}; smoke MAPE {smoke[-1][0]}% (max {smoke[-1][1]}%)")

    assert touched(fork) == EXPECTED_TOUCHED
