"""`mlops.core.tracking.Tracker` over MLflow's client API, for any tracking URI.

Both backends use it: locally with a SQLite store under $MLOPS_HOME, on SageMaker
with a managed tracking server's ARN (the `sagemaker-mlflow` plugin resolves it).

Every call of a run is queued on one background thread: importing MLflow and
opening its store cost seconds, which then overlap with the pipeline's steps (they
run in processes of their own) instead of adding to the run's time. The first
failure prints one warning line and turns the rest of the run's calls into no-ops:
tracking never fails a pipeline run.

A store MLflow creates on first use (a local SQLite file: its schema comes from alembic
migrations) must not be created by two processes at once: they race on the migrations
and one run goes untracked. `store_lock` serializes that: it is held while a run opens
the store and finds or creates its experiment (a second race: both create it).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from mlops.core.tracking import FINISHED, PARENT_TAG, RunRecord, metric_key, thin

WAIT_SECONDS = 120.0  # longest a run waits for its tracking calls before giving up on them
METRICS_PER_BATCH = 1000  # MLflow's log_batch limit


def warn_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class MlflowTracker:
    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        artifact_location: str | None = None,
        where: str = "",
        warn: Callable[[str], None] = warn_stderr,
        store_lock: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ):
        self.tracking_uri, self.experiment = tracking_uri, experiment
        self.artifact_location, self.warn = artifact_location, warn
        self.where = where or tracking_uri
        self.store_lock = store_lock  # held while a run opens the store (see the module doc)

    def describe(self) -> str:
        return f"experiment {self.experiment!r} in {self.where}"

    def start_run(self, name: str, tags: Mapping[str, str]) -> MlflowRun:
        return MlflowRun(self, name, dict(tags))

    def resume(self, run_id: str) -> MlflowRun:
        """An existing run, to add to it (e.g. the PR report's plots)."""
        return MlflowRun(self, "", {}, existing=run_id)


def _quiet_mlflow_logs() -> None:
    """MLflow and alembic log each schema migration at INFO: not the user's business."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


class MlflowRun:
    """One MLflow run, every call queued on a background thread (see the module doc)."""

    def __init__(self, tracker: MlflowTracker, name: str, tags: dict[str, str], existing: str = ""):
        self.tracker = tracker
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow")
        self._failed = False
        self._client: Any = None
        self._id = ""
        self.experiment_id = ""
        self.waited = 0.0  # seconds callers spent waiting on tracking: its cost to the run
        self._started = self._submit(self._start, name, tags, existing)

    # -- the background side ----------------------------------------------------------------

    def _submit(self, fn: Callable, *args: Any) -> Future:
        return self._pool.submit(self._guarded, fn, *args)

    def _guarded(self, fn: Callable, *args: Any) -> Any:
        if self._failed:
            return None
        try:
            return fn(*args)
        except Exception as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
            return None

    def _fail(self, reason: str) -> None:
        if not self._failed:
            self._failed = True
            first_line = (reason.strip().splitlines() or [""])[0][:300]
            self.tracker.warn(
                f"warning: tracking stopped, the run goes on untracked "
                f"({self.tracker.where}): {first_line}"
            )

    def _start(self, name: str, tags: dict[str, str], existing: str) -> None:
        from mlflow.tracking import MlflowClient

        _quiet_mlflow_logs()  # after the import: MLflow sets its loggers up when imported
        with self.tracker.store_lock():  # the first call opens (creates, migrates) the store
            self._client = MlflowClient(tracking_uri=self.tracker.tracking_uri)
            if existing:
                run = self._client.get_run(existing)
                self._id, self.experiment_id = existing, run.info.experiment_id
                return
            experiment = self._client.get_experiment_by_name(self.tracker.experiment)
            if experiment is None:
                self.experiment_id = self._client.create_experiment(
                    self.tracker.experiment, artifact_location=self.tracker.artifact_location
                )
            else:
                self.experiment_id = experiment.experiment_id
        run = self._client.create_run(self.experiment_id, run_name=name, tags=tags)
        self._id = run.info.run_id

    def _log(self, run_id: str, record: RunRecord, full_curves: bool = True) -> None:
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        metrics = [Metric(metric_key(k), float(v), now, 0) for k, v in record.metrics.items()]
        for name, values in record.curves.items():
            points = dict(enumerate(values)) if full_curves else thin(values)
            metrics += [Metric(metric_key(name), v, now, step) for step, v in points.items()]
        params = [Param(k, str(v)[:6000]) for k, v in record.params.items()]
        tags = [RunTag(k, str(v)[:5000]) for k, v in record.tags.items()]
        self._client.log_batch(run_id, params=params, tags=tags)
        for i in range(0, len(metrics), METRICS_PER_BATCH):
            self._client.log_batch(run_id, metrics=metrics[i : i + METRICS_PER_BATCH])
        for path in record.artifacts:
            if path.is_file():
                self._client.log_artifact(run_id, str(path))

    def _child(self, name: str, record: RunRecord, status: str) -> None:
        tags = {**record.tags, PARENT_TAG: self._id}
        child = self._client.create_run(self.experiment_id, run_name=name, tags=tags)
        child_id = child.info.run_id
        self._log(child_id, RunRecord(record.params, record.metrics, record.curves), False)
        self._client.set_terminated(child_id, status)

    # -- the caller's side: never raises ----------------------------------------------------

    def run_id(self, timeout: float = WAIT_SECONDS) -> str:
        """Waits for the run to exist (MLflow's import and store run in the background)."""
        start = time.perf_counter()
        try:
            self._started.result(timeout=timeout)
        except FutureTimeout:
            self._fail(f"the tracking store did not answer within {timeout:.0f} s")
        self.waited += time.perf_counter() - start
        return "" if self._failed else self._id

    def log(self, record: RunRecord) -> None:
        self._submit(lambda: self._log(self._id, record))

    def log_child(self, name: str, record: RunRecord, status: str = FINISHED) -> None:
        self._submit(self._child, name, record, status)

    def finish(self, status: str, timeout: float = WAIT_SECONDS) -> None:
        """End the run with `status`; '' leaves its status as it is (a resumed run)."""
        done = self._submit(lambda: status and self._client.set_terminated(self._id, status))
        start = time.perf_counter()
        try:
            done.result(timeout=timeout)
        except FutureTimeout:
            self._fail(f"the tracking store did not answer within {timeout:.0f} s")
        self.waited += time.perf_counter() - start
        self._pool.shutdown(wait=False, cancel_futures=True)
