"""Warm workers for local tuning: each trial runs in a worker that stays up between trials.

A trial is the training step's script run as `__main__` with the trial's arguments,
environment and log, as a step process runs it (mlops.local.runner). Started afresh per
trial, every trial would pay the same start-up again (the step's own modules imported,
the serving bundle's files parsed): on 10k rows that is about as long as the training.
A worker, forked once from the runner's step server (the libraries already imported),
runs trial after trial in its own process and keeps those warm; the process environment,
working directory, arguments and output are set for each trial and put back after it.

A trial handle answers like a multiprocessing.Process (exitcode, join, terminate), so the
tuner treats a trial the same way whichever runs it. Stopping a trial (pruning) ends its
worker; the next trial gets a new one.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import sys
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from mlops.core.graph import Step
from mlops.core.paths import REPO_ROOT

KILLED = -15  # the exit code a stopped trial reports, as a terminated process would


def _script_exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)  # sys.exit("message"), as the interpreter prints it
    return 1


def run_script_here(argv: list[str], env: dict[str, str], log: str) -> int:
    """Run `python script args...` in this process with `env` added and output to `log`;
    the exit code it would have had. This process's state is put back afterwards."""
    saved_env, saved_argv, saved_path = os.environ.copy(), sys.argv[:], sys.path[:]
    saved_out, saved_err = os.dup(1), os.dup(2)
    try:
        Path(log).with_name("step.pid").write_text(str(os.getpid()))
        os.environ.update(env)
        fd = os.open(log, os.O_WRONLY | os.O_APPEND)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.chdir(REPO_ROOT)
        sys.argv = argv[1:]
        sys.path.insert(0, str(Path(argv[1]).parent))  # siblings import as in the container
        if str(REPO_ROOT) not in sys.path:
            sys.path.append(str(REPO_ROOT))
        runpy.run_path(argv[1], run_name="__main__")
        return 0
    except SystemExit as exc:
        return _script_exit_code(exc)
    except BaseException:  # the script's own failure: its traceback goes to its log
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv, sys.path[:] = saved_argv, saved_path


def serve_trials(conn: Connection, runner_pid: int, on_start: Callable[[int], None]) -> None:
    """A worker's life: run each (argv, env, log) it is sent, answer its exit code.
    `on_start(runner_pid)` first (the runner's: end with the runner)."""
    on_start(runner_pid)
    # print() writes to descriptors 1 and 2, which each trial points at its log (whatever
    # objects this process inherited as sys.stdout and sys.stderr)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 (for the worker's life)
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        argv, env, log = job
        sys.pycache_prefix = env.get("PYTHONPYCACHEPREFIX")
        conn.send(run_script_here(argv, env, log))


def _nothing(runner_pid: int) -> None:
    pass


class _Worker:
    def __init__(self, context: Any, on_start: Callable[[int], None]) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve_trials, args=(child, os.getpid(), on_start))
        self.process.start()
        child.close()

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


class TrialRun:
    """One trial on a worker, with the part of multiprocessing.Process the tuner uses."""

    def __init__(self, pool: WarmWorkers, worker: _Worker) -> None:
        self._pool, self._worker, self._code = pool, worker, None

    @property
    def exitcode(self) -> int | None:
        if self._code is None:
            self._collect(0)
        return self._code

    def join(self, timeout: float | None = None) -> None:
        if self._code is None:
            self._collect(timeout)

    def terminate(self) -> None:
        if self._code is None:
            self._code = KILLED
            self._pool.discard(self._worker)

    def _collect(self, timeout: float | None) -> None:
        worker = self._worker
        try:
            answered = worker.conn.poll(timeout)
            code = worker.conn.recv() if answered else None
        except (EOFError, OSError):  # the worker died with the trial (killed, crashed)
            answered, code = True, None
        if not answered:
            if worker.process.is_alive():
                return
            answered = True
        if code is None:
            self._code = worker.process.exitcode or KILLED
            self._pool.discard(worker)
        else:
            self._code = code
            self._pool.release(worker)


class WarmWorkers:
    """Workers started as trials need them (one per trial running at once), each running
    one trial at a time; `launch` is what mlops.local.tuning expects of a launcher."""

    def __init__(
        self, context: Any, command: Callable, on_start: Callable[[int], None] = _nothing
    ) -> None:
        # command(step, env) -> (argv, environment, log file): the step as the runner runs it;
        # on_start(runner pid) runs first in each worker (a module-level function)
        self._context, self._command, self._on_start = context, command, on_start
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._lock = threading.Lock()

    def launch(self, step: Step, env: dict[str, str]) -> tuple[TrialRun, Path]:
        argv, full_env, log = self._command(step, env)
        with self._lock:
            worker = self._idle.pop() if self._idle else None
            if worker is None:
                worker = _Worker(self._context, self._on_start)
                self._all.append(worker)
        worker.conn.send((argv, full_env, str(log)))
        return TrialRun(self, worker), log

    def release(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def discard(self, worker: _Worker) -> None:
        worker.stop()
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)

    def close(self) -> None:
        with self._lock:
            workers, self._all, self._idle = self._all, [], []
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
            worker.process.join(timeout=5)
            worker.stop()

    def __enter__(self) -> WarmWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
