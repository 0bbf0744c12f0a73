"""Local hyperparameter tuning: Optuna's TPE over the training step, trials in parallel.

Each trial is the graph's training step with its hyperparameters replaced by the
trial's, run as a process of its own (as a SageMaker tuning job runs training jobs),
in `<run>/train/trial-NNN/`. While it trains, its validation curve (train.py's
curve.csv, written as it goes) is reported to Optuna, and a trial whose curve lags
the others' is stopped early (median pruning). The best trial's model continues
down the pipeline as a single training's would.

Trials run in threads that each wait on one process, so `parallel` trials use
`parallel` cores: each trial's process gets OMP_NUM_THREADS = cores // parallel in its
environment, which the model families honour (whatever library they train with); the
machinery writes no hyperparameter of its own.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlops.core.config import RangeConfig, TuningConfig
from mlops.core.errors import StepFailed
from mlops.core.graph import Step

POLL_SECONDS = 0.2
PRUNE_WARMUP_ROUNDS = 30  # no pruning before a trial has trained this many rounds
PRUNE_INTERVAL_ROUNDS = 10
# A trial is suggested without the results of the latest SUGGEST_LAG trials, so a long
# trial rarely holds the next one up; up to SUGGEST_LAG + 1 trials at once run the same
# search as one at a time.
SUGGEST_LAG = 5
CURVE = Path("output-data") / "curve.csv"
SUMMARY = Path("output-data") / "training.json"


@dataclass(frozen=True)
class Trial:
    number: int
    params: dict[str, Any]
    state: str  # COMPLETE, PRUNED or FAIL
    value: float | None
    seconds: float
    folder: Path
    error: str = ""

    @property
    def name(self) -> str:
        return trial_name(self.number)


@dataclass(frozen=True)
class TuningResult:
    objective: str
    direction: str
    trials: tuple[Trial, ...]
    best: Trial
    seconds: float

    def count(self, state: str) -> int:
        return sum(t.state == state for t in self.trials)

    def lineage(self) -> dict:
        """What the registered version records about the search that chose it."""
        return {
            "objective": self.objective,
            "direction": self.direction,
            "trials": len(self.trials),
            "pruned": self.count("PRUNED"),
            "failed": self.count("FAIL"),
            "best_trial": self.best.number,
            "best_value": self.best.value,
            "best_params": self.best.params,
            # completed trials' objective values (pruned ones stopped before the end)
            "trial_values": {t.name: t.value for t in self.trials if t.state == "COMPLETE"},
        }


# Launches one step (the trial's training) in its own process, with more environment
# variables: (process, its log file).
Launch = Callable[[Step, dict[str, str]], tuple[Any, Path]]
THREADS_ENV = "OMP_NUM_THREADS"


def trial_name(number: int) -> str:
    return f"trial-{number:03d}"


def parallelism(spec: TuningConfig, cores: int | None = None) -> int:
    """Trials at once: the config's number, else one per core; never more than the trials."""
    cores = cores or os.cpu_count() or 1
    return max(1, min(spec.parallel or cores, spec.n_trials))


def suggest(trial: Any, ranges: dict[str, RangeConfig]) -> dict[str, Any]:
    """One value per range, drawn by the Optuna trial (its sampler decides which)."""
    values: dict[str, Any] = {}
    for name, r in ranges.items():
        if r.type == "categorical":
            values[name] = trial.suggest_categorical(name, list(r.values or []))
        elif r.type == "integer":
            values[name] = trial.suggest_int(name, int(r.min), int(r.max), log=r.scale == "log")
        else:
            values[name] = trial.suggest_float(name, r.min, r.max, log=r.scale == "log")
    return values


def trial_step(step: Step, number: int, params: dict[str, Any]) -> Step:
    """The training step with the trial's hyperparameters, in a folder of its own."""
    return replace(
        step,
        name=f"{step.name}/{trial_name(number)}",
        hyperparameters={**step.hyperparameters, **params},
    )


def trial_environment(threads: int | None) -> dict[str, str]:
    """What a trial's process gets in its environment: its share of the cores, when trials
    share them (none: the family's own choice, as in a single training)."""
    return {} if threads is None else {THREADS_ENV: str(threads)}


def read_scores(curve: Path, metric: str, after: int) -> list[tuple[int, float]]:
    """(round, value) of `metric` for rounds past `after`, from a curve being written."""
    try:
        text = curve.read_text()
    except FileNotFoundError:
        return []
    lines = text.split("\n")[:-1]  # the last piece may be a line still being written
    if not lines:
        return []
    column = lines[0].split(",").index(metric)
    return [
        (int(cells[0]), float(cells[column]))
        for cells in (line.split(",") for line in lines[1:])
        if int(cells[0]) > after
    ]


def final_value(folder: Path, metric: str) -> float:
    """The objective of a finished trial: the kept (best) round's score."""
    import json

    summary = json.loads((folder / SUMMARY).read_text())
    return float(summary["best"][metric])


class _Objective:
    """Runs one trial per call: launch, report the curve, prune, read the final score."""

    def __init__(
        self, step: Step, spec: TuningConfig, launch: Launch, run_dir: Path, threads: int | None
    ):
        self.step, self.spec, self.launch = step, spec, launch
        self.run_dir, self.threads = run_dir, threads
        self.seconds: dict[int, float] = {}
        self.errors: dict[int, str] = {}
        self.stopping = threading.Event()

    def __call__(self, trial: Any, params: dict[str, Any]) -> float:
        import optuna

        if self.stopping.is_set():
            raise StepFailed("tuning stopped")
        start = time.perf_counter()
        step = trial_step(self.step, trial.number, params)
        folder = self.run_dir / step.name
        metric = self.spec.objective.metric
        proc, log = self.launch(step, trial_environment(self.threads))
        last = -1
        try:
            while proc.exitcode is None:
                proc.join(POLL_SECONDS)
                for round_, value in read_scores(folder / CURVE, metric, last):
                    trial.report(value, round_)
                    last = round_
                if self.stopping.is_set():
                    raise StepFailed("tuning stopped")
                if self.spec.early_stopping and proc.exitcode is None and trial.should_prune():
                    proc.terminate()
                    proc.join()
                    raise optuna.TrialPruned(f"pruned at round {last}")
            if proc.exitcode != 0:
                message = f"{step.name} failed (exit {proc.exitcode}) [log: {log}]"
                self.errors[trial.number] = message
                raise StepFailed(message)
            return final_value(folder, metric)
        finally:
            if proc.exitcode is None:  # interrupted: leave no trial process behind
                proc.terminate()
                proc.join()
            self.seconds[trial.number] = time.perf_counter() - start


def _study(spec: TuningConfig) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(
        seed=spec.seed,
        n_startup_trials=max(1, min(8, spec.n_trials // 2)),
        constant_liar=True,  # pending trials count as bad, so TPE spreads out
    )
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=2,
            n_warmup_steps=PRUNE_WARMUP_ROUNDS,
            interval_steps=PRUNE_INTERVAL_ROUNDS,
        )
        if spec.early_stopping
        else optuna.pruners.NopPruner()
    )
    return optuna.create_study(direction=spec.objective.direction, sampler=sampler, pruner=pruner)


def suggestion_lag(parallel: int) -> int:
    """How many of the latest trials' results a new trial is suggested without."""
    return max(SUGGEST_LAG, parallel - 1)


def tune(
    step: Step,
    spec: TuningConfig,
    launch: Launch,
    run_dir: Path,
    progress: Callable[[str], None] = print,
    parallel: int | None = None,
) -> TuningResult:
    """Search the config's ranges; raise StepFailed when no trial completed.

    Trial k is suggested once every trial before k - lag is told to the study (and the
    last `lag` count as pending, Optuna's constant liar): the suggestions, and so the
    trials and the best one, are the same one at a time or `parallel` at once (up to
    lag + 1; with early stopping, which trials are pruned depends on timing)."""
    import optuna

    parallel = parallel or parallelism(spec)
    # Parallel trials share the cores; one trial at a time keeps the family's own choice.
    threads = max(1, (os.cpu_count() or 1) // parallel) if parallel > 1 else None
    objective = _Objective(step, spec, launch, run_dir, threads)
    study = _study(spec)
    metric = spec.objective.metric
    progress(
        f"      tuning: {spec.n_trials} trials, {parallel} at a time, "
        f"{spec.objective.direction} {metric}"
    )
    start = time.perf_counter()
    _search(study, objective, spec.n_trials, parallel, metric, progress)
    seconds = time.perf_counter() - start
    trials = tuple(
        Trial(
            number=t.number,
            params=dict(t.params),
            state=t.state.name,
            value=t.value,
            seconds=round(objective.seconds.get(t.number, 0.0), 3),
            folder=run_dir / f"{step.name}/{trial_name(t.number)}",
            error=objective.errors.get(t.number, ""),
        )
        for t in sorted(study.trials, key=lambda t: t.number)
    )
    completed = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE.name]
    if not completed:
        first_error = next((t.error for t in trials if t.error), "every trial was pruned")
        raise StepFailed(f"tuning: no trial completed ({first_error})")
    best = next(t for t in trials if t.number == study.best_trial.number)
    return TuningResult(metric, spec.objective.direction, trials, best, seconds)


def _search(
    study: Any,
    objective: _Objective,
    n_trials: int,
    parallel: int,
    metric: str | None,
    progress: Callable[[str], None],
) -> None:
    """Ask, run (`parallel` at once) and tell `n_trials` trials, results told in trial order."""
    from concurrent.futures import ThreadPoolExecutor

    import optuna

    lag = suggestion_lag(parallel)
    asked: list[Any] = []
    running: list[Any] = []

    def tell(number: int) -> None:
        trial = asked[number]
        try:
            frozen = study.tell(trial, running[number].result())
        except optuna.TrialPruned:
            frozen = study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        except StepFailed:
            frozen = study.tell(trial, state=optuna.trial.TrialState.FAIL)
        value = "" if frozen.value is None else f" {metric}={frozen.value:.6g}"
        progress(f"      {trial_name(frozen.number)} {frozen.state.name.lower()}{value}")

    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="trial")
    try:
        told = 0
        for number in range(n_trials):
            while told < number - lag:
                tell(told)
                told += 1
            asked.append(study.ask())
            # drawn here, in trial order, not in the trial's thread: what the study knows
            # when a trial's values are drawn must not depend on timing
            params = suggest(asked[-1], objective.spec.ranges)
            running.append(pool.submit(objective, asked[-1], params))
        for number in range(told, n_trials):
            tell(number)
    except BaseException:
        objective.stopping.set()  # interrupted: running trials stop, waiting ones never start
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
