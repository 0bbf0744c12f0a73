"""What a crash or a full disk leaves is named and collected: the step's own error line,
runs stuck "running" marked crashed, a killed job's temporary files, "disk full" said."""

import json
import os
import subprocess
import sys

import pytest

from mlops.cli import run
from mlops.local.batch import collect_dead_temps
from mlops.local.runner import _last_error_line, mark_crashed_runs

XGBOOST_LOG = """\
[0] validation-rmse:4123.5
Traceback (most recent call last):
  File "train.py", line 40, in <module>
xgboost.core.XGBoostError: [06:10:11] /workspace/src/learner.cc:754: Check failed: eta > 0
Stack trace:
  [bt] (0) /usr/lib/libxgboost.so(+0x22dbbc) [0x7f1c]
  [bt] (1) /usr/lib/libxgboost.so(XGBoosterUpdateOneIter+0x70) [0x7f1d]
"""


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_runner_quotes_the_exception_line_not_a_native_backtrace(tmp_path):
    log = tmp_path / "step.log"
    log.write_text(XGBOOST_LOG)
    assert _last_error_line(log).startswith("xgboost.core.XGBoostError: [06:10:11]")
    log.write_text("reading data.csv\nerror: column 'x' is missing\n")
    assert _last_error_line(log) == "error: column 'x' is missing"  # no exception: last line


def test_runs_left_running_by_a_dead_process_are_marked_crashed(tmp_path):
    runs = tmp_path / "runs"
    for run_id, pid in (("dead", dead_pid()), ("alive", os.getpid()), ("done", None)):
        (runs / run_id).mkdir(parents=True)
        status = "registered" if pid is None else "running"
        (runs / run_id / "run.json").write_text(json.dumps({"status": status, "pid": pid}))
    assert mark_crashed_runs(tmp_path) == ["dead"]
    record = json.loads((runs / "dead" / "run.json").read_text())
    assert record["status"] == "crashed" and "ended before the run did" in record["error"]
    assert json.loads((runs / "alive" / "run.json").read_text())["status"] == "running"
    assert mark_crashed_runs(tmp_path) == []


def test_only_a_dead_jobs_temporary_files_are_collected(tmp_path):
    dead, mine = dead_pid(), os.getpid()
    (tmp_path / f".out.csv.{dead}.tmp").write_text("partial")
    (tmp_path / f".out.csv.{mine}.tmp").write_text("in progress")
    (tmp_path / f"mlops-batch-{dead}.x1.tmp").mkdir()
    (tmp_path / "out.csv").write_text("kept")
    collect_dead_temps(tmp_path, ".out.csv.")
    collect_dead_temps(tmp_path, "mlops-batch-")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".out.csv.{mine}.tmp", "out.csv"]


def test_a_full_disk_is_named_as_such(capsys):
    assert run(["data", "generate", "--rows", "5", "--out", "/dev/full"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: disk full: no space left on device") and err.count("\n") == 1
    assert "unexpected" not in err


def test_a_planted_link_in_the_shared_lock_folder_is_not_followed(tmp_path, monkeypatch):
    from mlops.core.errors import MlopsError
    from mlops.local.port_lock import LOCK_DIR_ENV, claim_port, lock_path

    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path / "locks"))
    target = tmp_path / "precious"
    target.write_text("root's file")
    lock_path(18080).symlink_to(target)
    with pytest.raises(MlopsError, match="is a symbolic link: refusing to follow it"):
        claim_port(18080, tmp_path / "home", "staging")
    assert target.read_text() == "root's file"


def test_a_fifo_as_batch_input_is_refused_not_read(tmp_path, capsys):
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    assert run(["batch", "predict", "--data", str(fifo), "--out", str(tmp_path / "o.csv")]) == 2
    assert capsys.readouterr().err == f"error: input {fifo} is not a regular file\n"
