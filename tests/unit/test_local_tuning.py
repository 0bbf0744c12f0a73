"""Local tuning's pieces: Optuna draws within the config's ranges, a trial's step differs
from the pipeline's only in the tuned hyperparameters, parallel trials share the cores
through their environment (whatever the family), a curve is read while being written,
the search does not depend on timing, and warm workers run trial after trial."""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from pathlib import Path

import pytest

from mlops.core.config import load_config
from mlops.core.errors import StepFailed
from mlops.core.graph import load_pipeline
from mlops.local.trial_workers import WarmWorkers
from mlops.local.tuning import (
    THREADS_ENV,
    parallelism,
    read_scores,
    suggest,
    trial_environment,
    trial_step,
    tune,
)

RANGES = {
    "max_depth": {"type": "integer", "min": 2, "max": 9},
    "eta": {"type": "continuous", "min": 0.001, "max": 0.5, "scale": "log"},
    "subsample": {"type": "continuous", "min": 0.5, "max": 1.0},
    "grow_policy": {"type": "categorical", "values": ["depthwise", "lossguide"]},
}


@pytest.fixture
def tuned_cfg(config_file):
    def mutate(raw):
        raw["train"]["tuning"] = {"ranges": RANGES, "n_trials": 3, "parallel": 8}

    return load_config(config_file(mutate))


def test_suggestions_stay_in_their_ranges(tuned_cfg):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(40):
        values = suggest(study.ask(), tuned_cfg.train.tuning.ranges)
        assert isinstance(values["max_depth"], int) and 2 <= values["max_depth"] <= 9
        assert 0.001 <= values["eta"] <= 0.5 and 0.5 <= values["subsample"] <= 1.0
        assert values["grow_policy"] in ("depthwise", "lossguide")


def test_a_trial_changes_only_the_tuned_hyperparameters(tuned_cfg):
    step = load_pipeline(tuned_cfg).step("train")
    trial = trial_step(step, 7, {"max_depth": 4, "eta": 0.2})
    assert trial.name == "train/trial-007" and trial.script == step.script
    assert trial.hyperparameters == {**step.hyperparameters, "max_depth": 4, "eta": 0.2}
    assert step.hyperparameters["max_depth"] == tuned_cfg.train.hyperparameters["max_depth"]
    assert "nthread" not in trial.hyperparameters  # threads are the environment's business


def test_parallel_trials_get_their_share_of_the_cores_in_their_environment():
    assert trial_environment(3) == {THREADS_ENV: "3"}
    assert trial_environment(None) == {}  # one at a time: the family's own choice


def test_parallelism_is_capped_by_trials(tuned_cfg):
    assert parallelism(tuned_cfg.train.tuning, cores=16) == 3  # 8 asked, 3 trials


def test_read_scores_skips_the_line_being_written(tmp_path):
    curve = tmp_path / "curve.csv"
    assert read_scores(curve, "validation:rmse", -1) == []
    curve.write_text("round,validation:mae,validation:rmse\n0,3,9.5\n1,2,8.5\n2,1,7.")
    assert read_scores(curve, "validation:rmse", -1) == [(0, 9.5), (1, 8.5)]
    assert read_scores(curve, "validation:rmse", 0) == [(1, 8.5)]


class Finished:
    """A trial process that has already exited."""

    def __init__(self, exitcode: int):
        self.exitcode = exitcode

    def join(self, timeout=None):
        pass

    def terminate(self):
        pass


def fake_training(run_dir: Path, metric: str, launched: list, fail: set[int] = frozenset()):
    """A Launch that writes what train.py writes, with a score that falls with max_depth."""

    def launch(step, env):
        launched.append((step, env))
        out = run_dir / step.name / "output-data"
        out.mkdir(parents=True)
        score = 10.0 - step.hyperparameters["max_depth"]
        (out / "curve.csv").write_text(f"round,{metric}\n0,{score + 1}\n1,{score}\n")
        (out / "training.json").write_text(json.dumps({"best": {metric: score}}))
        number = int(step.name.rsplit("-", 1)[1])
        return Finished(1 if number in fail else 0), run_dir / step.name / "log.txt"

    return launch


def test_tune_runs_each_trial_with_its_values_and_keeps_the_best(tuned_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    step = load_pipeline(tuned_cfg).step("train")
    spec = tuned_cfg.train.tuning.model_copy(update={"n_trials": 4, "early_stopping": False})
    launched: list = []
    metric = spec.objective.metric
    result = tune(step, spec, fake_training(tmp_path, metric, launched), tmp_path,
                  progress=lambda _: None, parallel=2)  # fmt: skip
    assert len(launched) == 4 and result.count("COMPLETE") == 4
    assert all(env == {THREADS_ENV: "2"} for _, env in launched)  # 4 cores, 2 at a time
    for trial_run, _ in launched:
        tuned = {k: v for k, v in trial_run.hyperparameters.items() if k in RANGES}
        assert set(tuned) == set(RANGES)
    depths = [t.params["max_depth"] for t in result.trials]
    assert result.best.params["max_depth"] == max(depths)
    assert result.best.value == 10.0 - max(depths)
    assert result.lineage()["trial_values"][result.best.name] == result.best.value


def test_tune_fails_in_one_line_when_no_trial_completes(tuned_cfg, tmp_path):
    step = load_pipeline(tuned_cfg).step("train")
    spec = tuned_cfg.train.tuning.model_copy(update={"n_trials": 2, "early_stopping": False})
    launch = fake_training(tmp_path, spec.objective.metric, [], fail={0, 1})
    with pytest.raises(StepFailed, match=r"tuning: no trial completed \(train/trial-000 failed"):
        tune(step, spec, launch, tmp_path, progress=lambda _: None, parallel=1)


class Running:
    """A trial process that exits `seconds` after it started."""

    def __init__(self, seconds: float):
        self.ends = time.monotonic() + seconds

    @property
    def exitcode(self):
        return 0 if time.monotonic() >= self.ends else None

    def join(self, timeout=None):
        time.sleep(max(0.0, min(timeout or 0.0, self.ends - time.monotonic())))

    def terminate(self):
        self.ends = 0.0


def test_the_search_is_the_same_one_at_a_time_or_in_parallel(tuned_cfg, tmp_path, monkeypatch):
    """Trials of uneven length finish out of order in parallel: the suggestions (so the
    trials and the best) must not depend on which finished first."""
    monkeypatch.setattr("mlops.local.tuning.POLL_SECONDS", 0.005)
    step = load_pipeline(tuned_cfg).step("train")
    spec = tuned_cfg.train.tuning.model_copy(update={"n_trials": 12, "early_stopping": False})

    def search(parallel: int) -> list:
        folder = tmp_path / f"p{parallel}"
        written = fake_training(folder, spec.objective.metric, [])

        def launch(step, env):
            _, log = written(step, env)
            return Running(0.04 * (int(step.name[-1]) % 3 == 0)), log

        result = tune(step, spec, launch, folder, progress=lambda _: None, parallel=parallel)
        return [(t.params, t.value) for t in result.trials] + [result.best.number]

    assert search(1) == search(3)


def test_warm_workers_run_trial_after_trial_in_one_process(tmp_path):
    """A worker keeps its process between trials and puts the environment back; a stopped
    trial ends its worker and the next trial gets a new one."""
    script = tmp_path / "step.py"
    script.write_text(
        "import os, sys, time\n"
        "print(os.getpid(), os.environ.get('TRIAL'), os.environ.get('LEFT_BEHIND'))\n"
        "os.environ['LEFT_BEHIND'] = 'yes'\n"
        "if sys.argv[1] == 'fail': sys.exit('bad trial')\n"
        "if sys.argv[1] == 'hang': time.sleep(60)\n"
    )

    def command(step, env):
        log = tmp_path / f"{step}.log"
        log.write_text("")
        return [sys.executable, str(script), step], env, log

    with WarmWorkers(multiprocessing.get_context("fork"), command) as workers:
        runs = []
        for name in ("one", "two", "fail"):
            trial, log = workers.launch(name, {"TRIAL": name})
            trial.join(30)
            runs.append((trial.exitcode, log.read_text().split()))
        hang, _ = workers.launch("hang", {})
        hang.join(0.2)
        assert hang.exitcode is None
        hang.terminate()
        after, log = workers.launch("after", {})
        after.join(30)
        after_pid = log.read_text().split()[0]
    (one, out1), (two, out2), (failed, out3) = runs
    assert (one, two, failed) == (0, 0, 1)
    assert out1[0] == out2[0] == out3[0] != after_pid  # one warm process, then a new one
    assert out1[1:] == ["one", "None"] and out2[1:] == ["two", "None"]  # env put back
    assert out3[-2:] == ["bad", "trial"] and hang.exitcode != 0
