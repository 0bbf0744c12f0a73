"""Training across SageMaker instances, played by two local processes: each runs train.py
with its own shard of the rows and the hosts SageMaker would name (SM_HOSTS,
SM_CURRENT_HOST), joined by XGBoost's collective tracker as the SageMaker XGBoost
container joins them. The first host writes a model close to one fitted on all rows at
once; the other writes none."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixture_project.generate import FEATURES, TARGET, generate_buildings
from fixtures.models import SMALL, Data, load, train_argv

from mlops.core.paths import REPO_ROOT
from stepkit.distributed import Hosts, training_hosts
from stepkit.splits import write_split

TRAIN = REPO_ROOT / "model_build" / "steps" / "train.py"
HOSTS = ["127.0.0.1", "localhost"]  # two names of this machine, sorted as SageMaker sorts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(folder: Path, train: Path, validation: Path, argv: list[str], env: dict):
    return subprocess.Popen(
        [sys.executable, str(TRAIN), *argv],
        env={
            **os.environ,
            **env,
            "SM_CHANNEL_TRAIN": str(train),
            "SM_CHANNEL_VALIDATION": str(validation),
            "SM_MODEL_DIR": str(folder / "model"),
            "SM_OUTPUT_DATA_DIR": str(folder / "output-data"),
            "OMP_NUM_THREADS": "1",
        },
        cwd=TRAIN.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_hosts_come_from_the_training_environment(tmp_path):
    env = {"SM_HOSTS": json.dumps(["algo-2", "algo-1"]), "SM_CURRENT_HOST": "algo-2"}
    hosts = training_hosts(env, tmp_path / "none.json")
    assert hosts == Hosts(("algo-1", "algo-2"), "algo-2") and not hosts.first
    assert hosts.file_name("train") == "train-algo-2.csv"
    alone = training_hosts({}, tmp_path / "none.json")
    assert not alone.many and alone.first and alone.file_name("train") == "train.csv"


@pytest.mark.slow  # three training processes
@pytest.mark.parametrize("streamed", [False, True], ids=["in-memory", "streamed"])
def test_two_hosts_train_one_model_close_to_a_single_host_fit(tmp_path, streamed):
    """Streamed: each host reads its share a chunk at a time (data.stream_above_mb past
    it), XGBoost's QuantileDMatrix from a DataIter inside the collective."""
    frame = generate_buildings(4000, seed=21)
    data = Data(frame, FEATURES, TARGET)
    train_rows, validation = frame.iloc[:3000], frame.iloc[3000:]
    argv = train_argv(data, "xgboost", {**SMALL["xgboost"], "num_round": 60})
    single_argv = argv
    if streamed:  # the streamed path, in one chunk per host (CHUNK_ROWS is 250,000)
        argv = [*argv, "--stream_above_mb", "0"]
    whole = write_split(train_rows, tmp_path / "all" / "train", "train").parent
    val = write_split(validation, tmp_path / "all" / "validation", "validation").parent
    port = str(free_port())
    hosts = []
    for rank, host in enumerate(HOSTS):
        shard = train_rows.iloc[rank :: len(HOSTS)]
        folder = tmp_path / host
        part = write_split(shard, folder / "train", "train").parent
        env = {"SM_HOSTS": json.dumps(HOSTS), "SM_CURRENT_HOST": host, "DMLC_TRACKER_PORT": port}
        hosts.append((folder, start(folder, part, val, argv, env)))
    single = start(tmp_path / "single", whole, val, single_argv, {})
    for folder, proc in [*hosts, (tmp_path / "single", single)]:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
        assert ("read a chunk at a time" in out) is (streamed and folder.name in HOSTS), out
    (first, _), (second, _) = hosts
    assert not (second / "model").exists()  # the first host writes the model
    curves = [(f / "output-data" / "curve.csv").read_text() for f, _ in hosts]
    assert curves[0] == curves[1] and curves[0].count("\n") > 10  # one model, built together

    import inference

    x = validation[FEATURES].astype(str)  # raw values, as a file of rows holds them
    pred_d, _ = inference.score_frame(load(first / "model"), x)
    pred_s, _ = inference.score_frame(load(tmp_path / "single" / "model"), x)
    truth = validation[TARGET].to_numpy(dtype=float)
    rmse_d = float(np.sqrt(np.mean((pred_d - truth) ** 2)))
    rmse_s = float(np.sqrt(np.mean((pred_s - truth) ** 2)))
    assert abs(rmse_d - rmse_s) <= 0.02 * rmse_s
    assert np.corrcoef(pred_d, pred_s)[0, 1] > 0.995
