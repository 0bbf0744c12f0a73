"""The template tests itself, as ZenML's e2e template does: derive a fork in a temporary
folder from a data set generated here (not house prices), run `mlops init` there, review
the config the way a person would (declare one behaviour), then run that fork's own
project tests, its demo (pipeline on the sample, approval, staging deploy with smoke
test, promotion, prod smoke test, batch scoring, the monitor; the demo's printed examples
are run as pasted) and its PR report. The fork touches model_build/ and data_checks/ only.

The helpers here (`make_fork`, `story`...) serve the other forks too:
test_template_fork_classification.py, test_template_fork_features.py."""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
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


def story(
    fork: Path, env: dict, out: Path, tests: str = "tests/project", data: Path | None = None
) -> dict:
    """What every fork runs: its own tests, its demo (pipeline, approval, staging deploy and
    smoke test, promotion, batch scoring, captured traffic and the monitor; endpoints kept
    for the caller, who stops them; on `data` instead of the sample when given) and the PR
    report of the demo's run, written to `out`.
    Returns each one's CompletedProcess; any exit but 0 fails the test."""
    done = {}
    done["tests"] = in_fork(fork, env, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", tests)
    demo = ["-m", "mlops.cli.demo", "--keep-endpoints", "--traffic-rows", "150"]
    demo += ["--data", str(data)] if data else []
    done["demo"] = in_fork(fork, env, *demo)
    report = ["-m", "mlops", "report", "pr", "--out", str(out / "pr-report.md"),
              "--report-dir", f"{env['MLOPS_HOME']}/reports", "--plots-dir", str(out / "plots")]  # fmt: skip
    done["report"] = in_fork(fork, env, *report)
    for name, result in done.items():
        assert result.returncode == 0, f"{name}:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    return done


DEMO_STEPS = (
    "a data scientist brings data",
    "$ mlops pipeline run",
    "human approver",
    "$ mlops deploy --stage staging",
    "$ mlops endpoint test --stage staging",
    "$ mlops promote",
    "$ mlops endpoint test --stage prod",
    "smoke test passed",
    "$ mlops batch predict",
    "rows with model version",
    "$ mlops monitor --stage prod --labels",
)


def demo_as_printed(out: str, home: Path, group: str) -> None:
    """The demo told the story in order, kept both stages serving version 1, recorded both
    deploys, and the examples it printed work as pasted."""
    from mlops.local.deploy_history import list_deployments
    from mlops.local.endpoints import read_endpoint
    from mlops.local.registry import LocalRegistry

    where = 0
    for step in DEMO_STEPS:  # each after the one before
        where = out.index(step, where)
    prod = read_endpoint(home, "prod")
    assert prod.version == 1 and read_endpoint(home, "staging").version == 1
    assert len(running_servers(home)) == 2  # --keep-endpoints kept staging and prod
    history = [(d["stage"], d["version"], d["result"]) for d in list_deployments(home, group)]
    assert history == [("prod", 1, "succeeded"), ("staging", 1, "succeeded")]
    assert [v.approval_status for v in LocalRegistry(home, group).list()] == ["Approved"]
    curl = re.search(r"^  (curl .*)$", out, re.M).group(1)
    assert f"{prod.url}/invocations" in curl
    answer = subprocess.run(curl, shell=True, capture_output=True, text=True, check=True).stdout
    assert json.loads(answer)["predictions"][0] > 0
    snippet = re.search(r"python - <<'EOF'\n(.*?)\n  EOF", out, re.S).group(1)
    pasted = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(snippet)], capture_output=True, text=True, check=True
    )
    assert '"predictions"' in pasted.stdout


def running_servers(home: Path) -> list[int]:
    from mlops.local.server_process import is_server

    pids = []
    for pid_file in (home / "endpoints").glob("*/*/*.pid"):
        pid = int(pid_file.read_text())
        if is_server(pid, pid_file.parent.name):
            pids.append(pid)
    return pids


def stop_endpoints(fork: Path, env: dict) -> None:
    """Cleanup: stop every server the fork's demo left under its home, in this process (two
    `mlops endpoint stop` subprocesses cost a Python start each; `endpoint stop` itself is
    tested in test_deploy.py, and the demo runs it when it does not keep its endpoints)."""
    from mlops.local.endpoints import stop_all_servers

    stop_all_servers(Path(env["MLOPS_HOME"]))


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
    said = done.stdout  # what init told the user
    assert "left out visit_id: ID-like" in done.stdout
    assert "left out clinic: constant" in done.stdout
    assert re.search(r"baseline \(xgboost\): MSE [\d.e+]+ \(95 % ", done.stdout)
    assert "only 80 held-out rows" in done.stdout  # 400 rows: the small-data warning

    # The review: declare that progression must not fall as bmi rises.
    config = fork / "model_build" / "config.yaml"
    text = config.read_text()
    assert re.search(r"candidates, not proof\): bmi \+0\.\d\d", text)  # the strongest
    config.write_text(text.replace("monotonic_increasing: []", "monotonic_increasing: [bmi]"))

    sample = fork / "model_build" / "data" / "sample.csv"
    before = sample.read_bytes()
    try:
        done = story(fork, fork_env, tmp_path)
        demo_as_printed(done["demo"].stdout, Path(fork_env["MLOPS_HOME"]), "trial-fork")
    finally:
        stop_endpoints(fork, fork_env)
    assert running_servers(Path(fork_env["MLOPS_HOME"])) == []
    assert sample.read_bytes() == before  # the demo only ever reads the data
    tests, demo = done["tests"], done["demo"]
    assert (
        "PASSED tests/project/test_model.py::test_declared_monotonic_behaviour_holds[bmi up]"
        in (tests.stdout)
    )
    assert "✅ passing" in (tmp_path / "pr-report.md").read_text()
    assert "endpoint name trial-fork-prod" in demo.stdout
    # The smoke limit beats predicting the mean: with more than 20 rows when 20 cannot.
    naive_mape = float(re.search(r"naive \(training mean\):.* MAPE ([\d.]+) %", said).group(1))
    smoke = re.findall(
        r"smoke test passed: (\d+) rows, MAPE ([\d.]+)% \(max ([\d.]+)%\)", demo.stdout
    )
    assert len(smoke) >= 2 and all(float(m) < float(limit) < naive_mape for _, m, limit in smoke)
    metrics = re.search(r"test metrics: (.*)", demo.stdout).group(1)
    print(
        f"fork figures: {metrics}; smoke MAPE {smoke[-1][1]}% (max {smoke[-1][2]}%, "
        f"{smoke[-1][0]} rows; the mean predictor's MAPE {naive_mape}%)"
    )

    assert touched(fork) == EXPECTED_TOUCHED
