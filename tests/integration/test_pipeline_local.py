"""The local pipeline end to end: registered model, gate, errors, crash safety."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.cli import run
from mlops.local.registry import LocalRegistry

GROUP = "energy-costs"


def versions(home: Path) -> list[int]:
    return [v.version for v in LocalRegistry(home, GROUP).list()]


def test_pipeline_registers_a_pending_version_with_lineage(_registered_home, data_csv):
    home, result = _registered_home
    assert result.version.version == 1
    assert result.verdict.passed
    v = LocalRegistry(home, GROUP).describe(1)
    assert v.approval_status == "PendingManualApproval"
    assert 0 < v.metrics["mse"] < 8e7 and v.metrics["r2"] > 0.99
    assert v.metrics["rmse"] ** 2 == pytest.approx(v.metrics["mse"])
    assert len(v.lineage["data_sha256"]) == 64 and v.lineage["run_id"] == result.run_id
    assert v.lineage["params"]["train"]["max_depth"] == 3
    for step in ("validate", "preprocess", "train", "evaluate"):
        assert (result.run_dir / step / "log.txt").is_file()
    assert json.loads((result.run_dir / "run.json").read_text())["status"] == "registered"
    assert Path(v.baseline_uri).is_file()  # the training baseline travels with the version


def test_models_cli_lists_and_describes_json(registered_home, capsys):
    assert run(["models", "describe", "1", "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["version"] == 1 and described["approval_status"] == "PendingManualApproval"
    assert set(described["metrics"]) == {"mse", "rmse", "mae", "r2"}
    assert {"git_commit", "data_sha256", "params", "run_id"} <= set(described["lineage"])
    assert run(["models", "approve", "1", "--note", "ok"]) == 0
    assert run(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert [(v["version"], v["approval_status"]) for v in listed] == [(1, "Approved")]
    assert run(["models", "reject", "9"]) == 2
    assert "version 9 does not exist" in capsys.readouterr().err


def test_gate_rejects_a_weak_model_and_registers_nothing(
    registered_home, data_csv, config_file, capsys
):
    home, _ = registered_home
    weak = config_file(lambda c: c["train"]["hyperparameters"].update(num_round=1))
    code = run(["pipeline", "run", "--data", str(data_csv), "--config", str(weak)])
    err = capsys.readouterr().err
    assert code == 1
    assert "quality gate failed: mse" in err and "<= 8e+07: FAILED" in err
    assert versions(home) == [1]


def test_champion_comparison_blocks_a_regression(registered_home, data_csv, config_file, capsys):
    """With v1 approved, a challenger > 5% worse on the same rows is refused."""
    home, _ = registered_home
    assert run(["models", "approve", "1"]) == 0
    worse = config_file(lambda c: c["train"]["hyperparameters"].update(num_round=150, eta=0.1))
    code = run(["pipeline", "run", "--data", str(data_csv), "--config", str(worse)])
    out, err = capsys.readouterr()
    assert "champion: version 1" in out
    assert code == 1 and "mse vs champion" in err
    assert versions(home) == [1]


def test_missing_empty_and_targetless_data(home, tmp_path, data_csv, capsys):
    assert run(["pipeline", "run", "--data", str(tmp_path / "nope.csv")]) == 2
    assert "data file not found" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert run(["pipeline", "run", "--data", str(empty)]) == 2
    assert "empty" in capsys.readouterr().err
    assert run(["pipeline", "run", "--data", str(tmp_path)]) == 2
    assert "directory" in capsys.readouterr().err
    no_target = tmp_path / "no_target.csv"
    pd.read_csv(data_csv).drop(columns="ANNUAL_COST").to_csv(no_target, index=False)
    assert run(["pipeline", "run", "--data", str(no_target)]) == 1
    err = capsys.readouterr().err.strip()
    assert "step 'validate' failed" in err and "ANNUAL_COST" in err and "\n" not in err
    assert not (home / "registry.db").exists() or versions(home) == []


def test_bad_config_value_is_one_line(home, data_csv, config_file, capsys):
    bad = config_file(lambda c: c["gate"].update(min_r2="high"))
    assert run(["pipeline", "run", "--data", str(data_csv), "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: bad config") and "gate.min_r2" in err and "\n" not in err


def test_crashing_step_is_named_with_its_log(registered_home, data_csv, config_file, capsys):
    home, _ = registered_home
    crash = config_file(lambda c: c["train"]["hyperparameters"].update(objective="reg:nonsense"))
    assert run(["pipeline", "run", "--data", str(data_csv), "--config", str(crash)]) == 1
    err = capsys.readouterr().err.strip()
    assert "step 'train' failed (exit 1)" in err and "[log: " in err and "\n" not in err
    log = Path(err.split("[log: ")[1].rstrip("]"))
    assert "reg:nonsense" in log.read_text()
    assert versions(home) == [1]  # earlier versions intact, nothing new


def test_kill_9_mid_run_then_the_next_run_works(registered_home, data_csv):
    home, _ = registered_home
    env = {**os.environ, "MLOPS_HOME": str(home)}
    cmd = [sys.executable, "-m", "mlops.cli", "pipeline", "run", "--data", str(data_csv)]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list(home.glob("runs/*/train/log.txt")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and the step it is running
    proc.wait()
    assert versions(home) == [1]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert versions(home) == [1, 2]


SKLEARN = {"learning_rate": 0.1, "max_iter": 500, "max_leaf_nodes": 15, "early_stopping": True,
           "n_iter_no_change": 20, "random_state": 1}  # fmt: skip


def test_a_sklearn_family_run_registers_a_version_that_serves(data_csv, config_file, tmp_path):
    """train.model: sklearn, with its own hyperparameters, through the same pipeline: the
    registered version's artifact is served by the code it carries, on raw rows."""
    from mlops.core.config import load_config
    from mlops.local.artifacts import unpack_version
    from mlops.local.model_host import load_handlers
    from mlops.local.runner import run_pipeline
    from stepkit.splits import read_split

    def sklearn(raw):
        raw["train"].update(model="sklearn", hyperparameters=SKLEARN)

    cfg = load_config(config_file(sklearn))
    home = tmp_path / "home"
    result = run_pipeline(cfg, data_csv, home, progress=lambda _: None)
    version = LocalRegistry(home, GROUP).describe(result.version.version)
    assert version.lineage["params"]["train"] == {"model": "sklearn", **SKLEARN}
    assert version.metrics["r2"] > 0.99

    model_dir, code = unpack_version(version, tmp_path / "served")
    handlers = load_handlers(code)
    model = handlers.model_fn(str(model_dir))
    assert model.manifest["family"] == "sklearn" and "sklearn" in model.manifest["versions"]
    rows = read_split(Path(version.lineage["held_out_uri"])).head(50)
    body = rows[model.features].to_csv(header=False, index=False).encode()
    answer, content_type = handlers.output_fn(
        handlers.predict_fn(handlers.input_fn(body, "text/csv"), model), "application/json"
    )
    predictions = np.asarray(json.loads(answer)["predictions"])
    target = rows[cfg.data.target].astype(float).to_numpy()
    assert content_type == "application/json" and len(predictions) == 50
    assert np.mean(np.abs(predictions - target) / target) < 0.03
    evaluated = pd.read_csv(result.run_dir / "evaluate" / "evaluation" / "predictions.csv")
    np.testing.assert_allclose(predictions, evaluated["prediction"].head(50), rtol=1e-12)
