"""`mlops batch predict` on the local backend, end to end through the CLI."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mlops.cli import run
from mlops.core.config import load_config
from mlops.core.run_layout import local_held_out, predictions_file, read_held_out
from mlops.local.registry import LocalRegistry
from stepkit.splits import PREDICTION, read_predictions


def _approve(home: Path) -> None:
    LocalRegistry(home, load_config().model_package_group).approve(1, "test")


def _rows(data_csv: Path, n: int) -> pd.DataFrame:
    return pd.read_csv(data_csv, nrows=n)


def _held_out(home: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Version 1's raw held-out rows and its evaluate step's predictions for them: what
    scoring those rows must give (the same model, its own code, the same reader)."""
    version = LocalRegistry(home, load_config().model_package_group).describe(1)
    rows = read_held_out(local_held_out(version, home))
    evaluated = read_predictions(Path(predictions_file(version.evaluation_uri)))
    return rows, evaluated[PREDICTION].to_numpy()


def test_scores_in_chunks_on_workers_keeps_ids_and_rejects_bad_rows(
    registered_home, tmp_path, config_file, capsys
):
    home, _ = registered_home
    _approve(home)
    features = load_config().data.features
    held_out, evaluated = _held_out(home)
    frame = held_out.head(1200).copy()
    frame.insert(0, "key", [f"k{i}" for i in range(len(frame))])
    frame.loc[7, features[1]] = "abc"  # text in a number feature: rejected
    frame.loc[900, features[0]] = ""  # empty: a missing value, scored
    frame.loc[901, features[2]] = "inf"  # rejected
    data = tmp_path / "in.csv"
    frame.to_csv(data, index=False)
    config = config_file(lambda raw: raw["data"].update(id_column="key"))
    out = tmp_path / "out" / "scores.csv"

    code = run(
        [
            "batch", "predict", "--data", str(data), "--out", str(out), "--version", "1",
            "--workers", "2", "--chunk-rows", "250", "--config", str(config),
        ]
    )  # fmt: skip

    assert code == 0
    scored = pd.read_csv(out)
    assert list(scored.columns) == ["key", "prediction"]
    assert scored["key"].tolist() == [k for k in frame["key"] if k not in ("k7", "k901")]
    kept = np.delete(np.arange(1200), [7, 901])
    unchanged = scored["key"] != "k900"
    np.testing.assert_array_equal(scored["prediction"][unchanged], evaluated[kept][kept != 900])
    assert scored["prediction"][~unchanged].item() != evaluated[900]  # scored without it
    rejects = pd.read_csv(tmp_path / "out" / "scores.rejects.csv", dtype=str)
    assert rejects["row"].tolist() == ["8", "902"]
    assert rejects["key"].tolist() == ["k7", "k901"]
    assert rejects["reason"].tolist() == [
        f"{features[1]} is not a number: 'abc'",
        f"{features[2]} is not finite",
    ]
    assert rejects[features[2]].tolist() == [held_out.loc[7, features[2]], "inf"]  # as read
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "scored 1,198 of 1,200 rows with model version 1" in line
    assert "2 rejected (0.17%)" in line


def test_parquet_in_and_out(registered_home, tmp_path):
    home, _ = registered_home
    _approve(home)
    held_out, evaluated = _held_out(home)
    data = tmp_path / "in.parquet"
    held_out.head(300).apply(pd.to_numeric).to_parquet(data)  # typed columns, not text
    out = tmp_path / "out.parquet"
    assert run(["batch", "predict", "--data", str(data), "--out", str(out), "--stage", "prod"]) == 0
    scored = pd.read_parquet(out)
    assert list(scored.columns) == ["prediction"]
    np.testing.assert_array_equal(scored["prediction"], evaluated[:300])
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


def _children(pid: int) -> list[int]:
    """The live processes whose parent is `pid` (from /proc: the pool's workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_batch_job_leaves_no_worker_behind(registered_home, tmp_path):
    home, _ = registered_home
    _approve(home)
    held_out, _ = _held_out(home)
    data = tmp_path / "in.csv"
    pd.concat([held_out] * max(1, 20_000 // len(held_out))).to_csv(data, index=False)
    out = tmp_path / "out.csv"
    argv = ["batch", "predict", "--data", str(data), "--out", str(out),
            "--version", "1", "--workers", "2", "--chunk-rows", "100"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "mlops.cli", *argv], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not list(tmp_path.glob(".out.csv.*.tmp")):  # the workers are scoring
        assert proc.poll() is None and time.monotonic() < deadline, "the job never scored"
        time.sleep(0.05)
    workers = _children(proc.pid)  # two workers and the resource tracker
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while [p for p in workers if _alive(p)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(workers) >= 2 and [p for p in workers if _alive(p)] == []
    assert not out.exists() and list(tmp_path.glob(".out.csv.*.tmp"))  # a killed job's debris
    rows = tmp_path / "few.csv"
    held_out.head(50).to_csv(rows, index=False)
    assert run(["batch", "predict", "--data", str(rows), "--out", str(out), "--version", "1"]) == 0
    assert sorted(p.name for p in tmp_path.glob(".out.csv*")) == []  # collected by the next job
