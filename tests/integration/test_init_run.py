"""`mlops init` calibrates from a real run of the project's own steps: the config it writes
for another model family runs and passes its own gate, with the figures evaluate wrote; a
step failing on the data stops init with one line and leaves nothing behind."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
import yaml
from fixtures.tasks import rent_frame

from mlops.cli import build_parser
from mlops.cli.init import init_project
from mlops.core import profiling
from mlops.core.config import load_config
from mlops.core.errors import StepFailed
from mlops.local.runner import run_pipeline

pytestmark = pytest.mark.slow
WRITTEN = ("model_build/config.yaml", "data_checks/expectations/rents.json")


def init_args(data: Path, target: str, *more: str):
    argv = ["init", "--data", str(data), "--target", target, "--name", "rents", *more]
    return build_parser().parse_args(argv)


@pytest.fixture
def scratch(tmp_path, monkeypatch) -> Path:
    """The temporary folder init's run goes to, to see that it is gone afterwards (beside
    what lives as long as the process: the step server's socket folder)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_init_with_scikit_learn_writes_a_config_whose_pipeline_passes_its_own_gate(
    tmp_path, scratch, capsys
):
    data = tmp_path / "rents.csv"
    rent_frame(1000, seed=11).to_csv(data, index=False)
    project = tmp_path / "project"

    cal = init_project(init_args(data, "rent", "--model", "sklearn"), project)
    out = capsys.readouterr().out
    assert "string categories: city, furnished" in out
    assert re.search(r"baseline \(sklearn\): MSE [\d.e+]+ \(95 % ", out)
    assert not list(scratch.glob("mlops-init-*"))  # the run's folder is gone
    raw = yaml.safe_load((project / WRITTEN[0]).read_text())
    assert raw["train"]["model"] == "sklearn" and "drift" in raw
    cfg = load_config(project / WRITTEN[0], root=project)

    # The pipeline of the written config on the same rows: the same split, the same model,
    # so evaluate writes the figures init calibrated from, and the gate passes.
    result = run_pipeline(cfg, data, tmp_path / "home", progress=lambda _: None)
    assert result.verdict.passed and result.version is not None
    written = result.evaluation
    mse = written["regression_metrics"]["mse"]["value"]
    low, high = written["intervals"]["mse"]
    text = (project / WRITTEN[0]).read_text()
    assert f"Baseline (sklearn): MSE {mse:.6g}\n  # (95 % interval {low:.6g} to {high:.6g})" in text
    assert f"MSE {written['naive']['mse']:.6g}, R2 {written['naive']['r2']:.4f}." in text
    assert (cal.baseline["mse"], cal.baseline["mse_interval"]) == (mse, (low, high))
    assert cal.naive["mse"] == written["naive"]["mse"] and cal.test_rows == written["rows"]
    assert cfg.gate.max_mse == profiling._round(high * 1.2, down=False) < written["naive"]["mse"]
    assert cfg.gate.min_r2 == max(0.0, profiling._round(written["intervals"]["r2"][0] - 0.02, True))


def test_a_step_failing_on_the_data_stops_init_with_one_line_and_leaves_nothing(tmp_path, scratch):
    data = tmp_path / "rents.csv"
    rows = rent_frame(150, seed=2).assign(furnished="no")
    rows.loc[7, "furnished"] = "yes"  # one row of the positive label: no stratified split
    rows.to_csv(data, index=False)
    project = tmp_path / "project"
    args = init_args(data, "furnished", "--task", "binary_classification")

    with pytest.raises(StepFailed) as failed:
        init_project(args, project)
    message = str(failed.value)
    assert message.startswith("init's run of the project's steps on rents.csv: step 'preprocess'")
    assert "too few to split" in message and "\n" not in message and "[log:" not in message
    assert not list(scratch.glob("mlops-init-*"))
    assert not [p for p in project.rglob("*") if p.is_file()]  # no config, suite, sample
