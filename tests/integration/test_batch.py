"""`mlops batch predict` on the local backend, end to end through the CLI."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.cli import run
from mlops.core.config import load_config
from mlops.local.registry import LocalRegistry


def _approve(home: Path) -> None:
    LocalRegistry(home, load_config().model_package_group).approve(1, "test")


def _rows(data_csv: Path, n: int) -> pd.DataFrame:
    return pd.read_csv(data_csv, nrows=n)


def _expected(home: Path, frame: pd.DataFrame, tmp_path: Path) -> np.ndarray:
    """The version's booster on the same rows, through the handler: the reference."""
    version = LocalRegistry(home, load_config().model_package_group).describe(1)
    folder = tmp_path / "reference"
    with tarfile.open(version.model_uri) as tar:
        tar.extractall(folder, filter="data")
    steps = Path(__file__).resolve().parents[2] / "model_build" / "steps"
    sys.path.insert(0, str(steps))
    import inference

    model = inference.model_fn(str(folder))
    return inference.predict_fn(frame[model.features].to_numpy(float), model)


def test_scores_in_chunks_on_workers_keeps_ids_and_rejects_bad_rows(
    registered_home, data_csv, tmp_path, config_file, capsys
):
    home, _ = registered_home
    _approve(home)
    cfg = load_config()
    features = cfg.data.features
    frame = _rows(data_csv, 1200)
    frame.insert(0, "key", [f"k{i}" for i in range(len(frame))])
    frame[features[1]] = frame[features[1]].astype(object)
    frame.loc[7, features[1]] = "abc"
    frame.loc[900, features[0]] = None
    data = tmp_path / "in.csv"
    frame.to_csv(data, index=False)
    config = config_file(lambda raw: raw["data"].update(id_column="key"))
    out = tmp_path / "out" / "scores.csv"

    code = run(
        [
            "batch",
            "predict",
            "--data",
            str(data),
            "--out",
            str(out),
            "--version",
            "1",
            "--workers",
            "2",
            "--chunk-rows",
            "250",
            "--config",
            str(config),
        ]
    )

    assert code == 0
    scored = pd.read_csv(out)
    assert list(scored.columns) == ["key", "prediction"]
    assert len(scored) == 1198
    assert "k7" not in set(scored["key"]) and "k900" not in set(scored["key"])
    assert scored["key"].tolist() == [k for k in frame["key"] if k not in ("k7", "k900")]
    good = frame.drop(index=[7, 900])
    good = good.assign(**{features[1]: pd.to_numeric(good[features[1]])})
    np.testing.assert_allclose(scored["prediction"], _expected(home, good, tmp_path), rtol=1e-6)
    rejects = pd.read_csv(tmp_path / "out" / "scores.rejects.csv")
    assert rejects["row"].tolist() == [8, 901]
    assert rejects["key"].tolist() == ["k7", "k900"]
    assert rejects["reason"].tolist() == [
        f"{features[1]} is not a number: 'abc'",
        f"{features[0]} is empty",
    ]
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "scored 1,198 of 1,200 rows with model version 1" in line
    assert "2 rejected (0.17%)" in line


def test_parquet_in_and_out(registered_home, data_csv, tmp_path):
    home, _ = registered_home
    _approve(home)
    frame = _rows(data_csv, 300)
    data = tmp_path / "in.parquet"
    frame.to_parquet(data)
    out = tmp_path / "out.parquet"
    assert run(["batch", "predict", "--data", str(data), "--out", str(out), "--stage", "prod"]) == 0
    scored = pd.read_parquet(out)
    assert list(scored.columns) == ["prediction"]
    np.testing.assert_allclose(scored["prediction"], _expected(home, frame, tmp_path), rtol=1e-6)
    assert not (tmp_path / "out.rejects.csv").exists()


def test_too_many_rejects_fail_and_write_nothing(
    registered_home, data_csv, tmp_path, config_file, capsys
):
    home, _ = registered_home
    _approve(home)
    feature = load_config().data.features[2]
    frame = _rows(data_csv, 100).astype({feature: object})
    frame.loc[:4, feature] = "x"  # 5 % of the rows
    work = tmp_path / "work"
    work.mkdir()
    data = work / "in.csv"
    frame.to_csv(data, index=False)
    config = config_file(lambda raw: raw.setdefault("batch", {}).update(max_reject_pct=4.0))
    out = work / "out.csv"
    code = run(
        [
            "batch",
            "predict",
            "--data",
            str(data),
            "--out",
            str(out),
            "--version",
            "1",
            "--config",
            str(config),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "5 of 100 rows (5.00%)" in err and f"row 1: {feature} is not a number" in err
    assert [p.name for p in work.iterdir()] == ["in.csv"]


def test_bad_inputs_are_one_line_errors(registered_home, data_csv, tmp_path, capsys):
    home, _ = registered_home
    features = load_config().data.features
    frame = _rows(data_csv, 20)
    data = tmp_path / "in.csv"
    frame.to_csv(data, index=False)
    out = str(tmp_path / "out.csv")

    assert run(["batch", "predict", "--data", str(data), "--out", out, "--version", "1"]) == 1
    assert "not Approved" in capsys.readouterr().err
    _approve(home)
    frame.drop(columns=[features[-1]]).to_csv(data, index=False)
    assert run(["batch", "predict", "--data", str(data), "--out", out, "--version", "1"]) == 2
    assert f"lacks the model's feature column(s) ['{features[-1]}']" in capsys.readouterr().err
    data.write_text("")
    assert run(["batch", "predict", "--data", str(data), "--out", out, "--version", "1"]) == 2
    assert "is empty" in capsys.readouterr().err
    assert run(["batch", "predict", "--data", str(data), "--out", out + ".txt"]) == 2
    assert "unknown format '.txt'" in capsys.readouterr().err
    assert not Path(out).exists()


@pytest.mark.parametrize("value, reason", [("", "is empty"), ("inf", "is not finite")])
def test_feature_matrix_reasons(value, reason):
    from mlops.local.batch import feature_matrix

    frame = pd.read_csv(__import__("io").StringIO(f"a,b\n1,2\n3,{value}\n"))
    matrix, reasons = feature_matrix(frame, ["a", "b"])
    assert matrix[0].tolist() == [1.0, 2.0]
    assert reasons.tolist() == ["", f"b {reason}"]
    json.dumps(reasons.tolist())
