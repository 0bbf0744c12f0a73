"""Where a config's relative paths point, which config is the default, and what the
committed sample and declared behaviour must satisfy."""

from pathlib import Path

import pytest
import yaml

from mlops.cli import run
from mlops.cli.common import data_or_sample
from mlops.core.config import (
    CONFIG_ENV,
    DEFAULT_CONFIG,
    default_config_path,
    load_config,
    project_root,
)
from mlops.core.errors import UsageError
from mlops.core.paths import REPO_ROOT


def write(folder: Path, raw: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load(default_config_path().read_text())


def test_paths_start_from_the_folder_above_model_build(tmp_path, raw):
    cfg = load_config(write(tmp_path / "proj" / "model_build", raw))
    assert cfg.root == (tmp_path / "proj").resolve()
    assert cfg.suite_file == cfg.root / raw["data"]["expectation_suite"]
    assert cfg.sample_file == cfg.root / raw["data"]["sample"]


def test_a_config_elsewhere_resolves_from_the_project_the_command_runs_in(
    tmp_path, raw, monkeypatch
):
    """An experiment config copied to another folder (bench/tuning.py, a user's own) names
    the project's files relative to the project root, not to the folder it was copied to."""
    project = default_config_path().resolve().parent.parent  # the fixture project
    path = write(tmp_path / "experiments", raw)  # the fixture's relative paths, unchanged
    monkeypatch.chdir(tmp_path)  # wherever the command is started from
    assert project_root(path) == REPO_ROOT.resolve()
    assert project_root(path, project=project) == project.resolve()
    moved = {**raw, "data": {**raw["data"]}}
    for key in ("expectation_suite", "sample", "golden"):
        if raw["data"].get(key):
            moved["data"][key] = str((project / raw["data"][key]).relative_to(REPO_ROOT))
    cfg = load_config(write(tmp_path / "experiments", moved))
    assert cfg.root == REPO_ROOT.resolve()
    assert cfg.suite_file.is_file() and cfg.sample_file.is_file()
    assert load_config(path, root=tmp_path).root == tmp_path.resolve()


def test_the_fixture_projects_files_resolve():
    cfg = load_config()
    assert cfg.suite_file.is_file() and cfg.sample_file.is_file()
    assert cfg.root != DEFAULT_CONFIG.parent.parent  # not the example's


def test_mlops_config_names_the_default(monkeypatch, tmp_path, raw):
    other = write(tmp_path / "x", {**raw, "model_package_group": "other-group"})
    monkeypatch.setenv(CONFIG_ENV, str(other))
    assert load_config().model_package_group == "other-group"
    monkeypatch.delenv(CONFIG_ENV)
    assert default_config_path() == DEFAULT_CONFIG


def test_behaviour_names_features_only(config_file):
    with pytest.raises(UsageError, match=r"not features.*NOPE"):
        load_config(config_file(lambda c: c["behaviour"].update(monotonic_increasing=["NOPE"])))


def test_a_command_without_data_uses_the_sample(config_file):
    cfg = load_config()
    assert data_or_sample(cfg, None) == cfg.sample_file
    assert data_or_sample(cfg, "given.csv") == "given.csv"
    no_sample = load_config(config_file(lambda c: c["data"].pop("sample")))
    with pytest.raises(UsageError, match=r"data\.sample"):
        data_or_sample(no_sample, None)


def test_pipeline_run_without_data_or_sample_fails_in_one_line(config_file, home, capsys):
    path = config_file(lambda c: c["data"].pop("sample"))
    assert run(["pipeline", "run", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "data.sample" in err


def test_data_path_prints_the_sample_or_mlops_data_file(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("MLOPS_DATA_FILE", raising=False)
    assert run(["data", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(load_config().sample_file)
    monkeypatch.setenv("MLOPS_DATA_FILE", "")  # an unset repository variable
    assert run(["data", "path", "--key", "file"]) == 0
    assert capsys.readouterr().out.strip() == f"file={load_config().sample_file}"
    monkeypatch.setenv("MLOPS_DATA_FILE", str(tmp_path / "other.csv"))
    assert run(["data", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "other.csv")
