"""The local backend's pipeline runner: executes the step graph, one process per step.

Each step runs its script as `__main__` in a process of its own, forked from a
server that has imported the heavy libraries once (see PRELOAD). Container
paths are mapped to folders of the run, `$MLOPS_HOME/runs/<run-id>/<step>/<name>`:
processing scripts get `--<name>-dir` arguments, training scripts get
SM_CHANNEL_<NAME> and SM_MODEL_DIR, like in SageMaker. The model folder is packed
into model.tar.gz, as SageMaker does after training. Each step's output goes to
its own log.txt; progress goes to the `progress` callback.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import re
import runpy
import secrets
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlops.core.config import Config
from mlops.core.errors import GateFailed, StepFailed, UsageError
from mlops.core.gate import Verdict, check_gate
from mlops.core.graph import (
    CHAMPION,
    DATA,
    GOLDEN,
    MODEL_OUTPUT,
    SUITE,
    Pipeline,
    Step,
    hyperparameter_args,
    load_pipeline,
)
from mlops.core.lineage import check_data_file, lineage, run_parameters, sha256_file
from mlops.core.paths import REPO_ROOT
from mlops.core.registry import ModelVersion, metrics_from_evaluation
from mlops.core.run_layout import HELD_OUT_KEY
from mlops.core.task_data import check_task_data
from mlops.core.tracking import (
    FAILED,
    FINISHED,
    RunRecord,
    TrackedRun,
    Tracker,
    UntrackedRun,
    evaluation_metrics,
    flatten,
    lineage_tags,
    training_record,
)
from mlops.local.cards import write_card_or_warn
from mlops.local.registry import LocalRegistry
from mlops.local.server_process import is_running

if TYPE_CHECKING:
    from mlops.local.tuning import TuningResult

MODEL_ARCHIVE = "model.tar.gz"
EVALUATION_FILE = "evaluation.json"


@dataclass(frozen=True)
class RunResult:
    run_id: str
    run_dir: Path
    evaluation: dict
    verdict: Verdict
    version: ModelVersion | None


def new_run_id() -> str:
    """Sortable and unique across concurrent runs: UTC time plus random hex."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def _link(target: Path, folder: Path, name: str) -> Path:
    """Expose `target` as folder/name without copying (inputs can be large)."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / name
    link.symlink_to(target.resolve())
    return folder


def output_dir(run_dir: Path, step: str, output: str) -> Path:
    return run_dir / step / output


def resolve_sources(
    graph: Pipeline,
    run_dir: Path,
    data_file: Path,
    suite_file: Path,
    champion: Path | None,
    golden: Path | None = None,
) -> dict[str, Path]:
    """Source name -> local folder, for the pipeline inputs and every step output."""
    sources = {
        DATA: _link(data_file, run_dir / "inputs" / DATA, data_file.name),
        SUITE: _link(suite_file, run_dir / "inputs" / SUITE, suite_file.name),
    }
    if golden is not None:
        sources[GOLDEN] = _link(golden, run_dir / "inputs" / GOLDEN, golden.name)
    if champion is not None:
        sources[CHAMPION] = _link(champion, run_dir / "inputs" / CHAMPION, MODEL_ARCHIVE)
    for step in graph.steps:
        for out in step.outputs:
            sources[f"{step.name}.{out}"] = output_dir(run_dir, step.name, out)
    return sources


def step_command(step: Step, sources: dict[str, Path], run_dir: Path) -> tuple[list[str], dict]:
    """argv and extra environment for one step, its container paths mapped into the run."""
    own = hyperparameter_args(step.hyperparameters) if step.kind == "training" else step.arguments
    argv = [sys.executable, str(step.script_path), *(str(a) for a in own)]
    # Bytecode goes to the state dir: step folders stay lean (SageMaker ships them whole).
    env = {"PYTHONPYCACHEPREFIX": str(run_dir.parent.parent / "pycache"), "PYTHONUNBUFFERED": "1"}
    present = [i for i in step.inputs if i.source in sources]
    if step.kind == "training":
        for inp in present:
            env[f"SM_CHANNEL_{inp.name.upper()}"] = str(sources[inp.source])
        env["SM_MODEL_DIR"] = str(output_dir(run_dir, step.name, MODEL_OUTPUT))
        env["SM_OUTPUT_DATA_DIR"] = str(run_dir / step.name / "output-data")
        return argv, env
    for inp in present:
        argv += [f"--{inp.name}-dir", str(sources[inp.source])]
    for out in step.outputs:
        argv += [f"--{out}-dir", str(output_dir(run_dir, step.name, out))]
    return argv, env


def pack_model(model_dir: Path, archive: Path) -> Path:
    """model.tar.gz with the folder's files at its root, as SageMaker packs SM_MODEL_DIR."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return archive


# A Python exception's own line ("xgboost.core.XGBoostError: ..."), as opposed to what a
# library may print after it (a C++ "[bt] (3) libxgboost.so(...)" backtrace).
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Failure|Interrupt)\b(:.*)?$")


def _last_error_line(log: Path) -> str:
    """The step's own error line: its last exception line, else its last line."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    for line in reversed(lines):
        if EXCEPTION_LINE.match(line):
            return line
    return lines[-1] if lines else "(no output)"


# Libraries the steps import, loaded once by a fork server: each step still runs in a
# process of its own (own argv, environment, working directory and log, as in a
# container), forked from one that already paid the imports (~4 s for Great
# Expectations alone), instead of a fresh interpreter per step. The steps to run add
# theirs (the model family's LIBRARIES; Great Expectations when a step validates); the
# fork server starts once per process, with the list of the first run in it.
PRELOAD = ("numpy", "pandas", "mlops.local.runner")
VALIDATION_LIBRARY = "great_expectations"
_step_libraries: list[str] = []


def preload(libraries: tuple[str, ...]) -> None:
    """Have the step server import these libraries too (before it starts)."""
    _step_libraries.extend(name for name in libraries if name not in _step_libraries)


def _step_context() -> multiprocessing.context.ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([*PRELOAD, *_step_libraries])
    return ctx


RUNNER_PID_ENV = "MLOPS_RUNNER_PID"


def _die_with(runner_pid: int) -> None:
    """End this step process when the runner is gone (a killed runner leaves no step behind).

    A step is a child of the fork server, not of the runner, so the parent-death signal
    alone would wait for the fork server; `die_with` also polls the runner's pid."""
    from mlops.local.lifeline import die_with

    die_with(runner_pid)


def _run_script(argv: list[str], env: dict[str, str], log: str) -> None:
    """In the step's own process: `python script args...` with output to the step's log."""
    if env.get(RUNNER_PID_ENV, "").isdigit():
        _die_with(int(env[RUNNER_PID_ENV]))
    Path(log).with_name("step.pid").write_text(str(os.getpid()))
    os.environ.update(env)
    sys.pycache_prefix = env.get("PYTHONPYCACHEPREFIX")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    os.chdir(REPO_ROOT)
    script = argv[1]
    sys.argv = argv[1:]
    sys.path.insert(0, str(Path(script).parent))  # siblings import as in the container
    # Support packages (stepkit/) ship beside the script in a bundle; here they are at the
    # root (importable through the editable install too; this is the fallback).
    if str(REPO_ROOT) not in sys.path:
        sys.path.append(str(REPO_ROOT))
    runpy.run_path(script, run_name="__main__")


def start_step(
    step: Step, sources: dict[str, Path], run_dir: Path, env: dict[str, str] | None = None
) -> tuple[multiprocessing.Process, Path]:
    """Start one step's process (with `env` added to its environment); returns it and the
    step's log file."""
    argv, extra_env, log = step_launch(step, sources, run_dir, env)
    proc = _step_context().Process(target=_run_script, args=(argv, extra_env, str(log)))
    proc.start()
    return proc, log


def step_launch(
    step: Step, sources: dict[str, Path], run_dir: Path, env: dict[str, str] | None = None
) -> tuple[list[str], dict[str, str], Path]:
    """argv, extra environment and the fresh log file of one step about to start."""
    argv, extra_env = step_command(step, sources, run_dir)
    extra_env = {**extra_env, **(env or {}), RUNNER_PID_ENV: str(os.getpid())}
    log = run_dir / step.name / "log.txt"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("$ " + " ".join(argv) + "\n")
    return argv, extra_env, log


def pack_training_output(step: Step, sources: dict[str, Path], run_dir: Path) -> None:
    """model.tar.gz of a training step's model folder; downstream steps read the archive,
    as they would read S3ModelArtifacts."""
    model_dir = output_dir(run_dir, step.name, MODEL_OUTPUT)
    archive_dir = run_dir / step.name / "output"
    pack_model(model_dir, archive_dir / MODEL_ARCHIVE)
    sources[f"{step.name}.{MODEL_OUTPUT}"] = archive_dir


def run_step(step: Step, sources: dict[str, Path], run_dir: Path) -> float:
    """Run one step to completion; raise StepFailed naming it and its log. Returns seconds."""
    start = time.perf_counter()
    proc, log = start_step(step, sources, run_dir)
    proc.join()
    if proc.exitcode != 0:
        raise StepFailed(
            f"step '{step.name}' failed (exit {proc.exitcode}): {_last_error_line(log)} "
            f"[log: {log}]"
        )
    if step.kind == "training":
        pack_training_output(step, sources, run_dir)
    return time.perf_counter() - start


def quarantine_of(sources: dict[str, Path], step: Step) -> dict | None:
    """The rows a validation step quarantined (count, share, sample, file), or None."""
    folder = sources.get(f"{step.name}.report")
    report_file = folder / "validation.json" if folder else None
    if not report_file or not report_file.is_file():
        return None
    quarantine = json.loads(report_file.read_text()).get("quarantine")
    if not quarantine or not quarantine.get("rows"):
        return None
    quarantine_dir = sources.get(f"{step.name}.quarantine")
    return {**quarantine, "file": str(quarantine_dir / "quarantine.csv") if quarantine_dir else ""}


def quarantine_line(quarantine: dict) -> str:
    first = quarantine["sample"][0] if quarantine.get("sample") else {}
    example = f"; e.g. row {first['row']}: {first['quarantine_reason']}" if first else ""
    return (
        f"      quarantined {quarantine['rows']} of {quarantine['total_rows']} rows "
        f"({quarantine['pct']:g} %, limit {quarantine['max_pct']:g} %){example} "
        f"[{quarantine['file']}]"
    )


def write_run_record(run_dir: Path, summary: dict) -> None:
    tmp = run_dir / "run.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, run_dir / "run.json")


def run_tuning(
    step: Step,
    graph: Pipeline,
    sources: dict[str, Path],
    run_dir: Path,
    progress: Callable[[str], None],
    tracked: TrackedRun,
) -> TuningResult:
    """The training step as a hyperparameter search; the best trial's model and curve
    become the step's outputs, each trial a child run of the tracked run."""
    from mlops.local.trial_workers import WarmWorkers
    from mlops.local.tuning import tune

    assert graph.tuning is not None
    with WarmWorkers(
        _step_context(), lambda s, env: step_launch(s, sources, run_dir, env), _die_with
    ) as workers:
        result = tune(step, graph.tuning, workers.launch, run_dir, progress)
    step_dir = run_dir / step.name
    for name in (MODEL_OUTPUT, "output-data"):
        shutil.copytree(result.best.folder / name, step_dir / name, dirs_exist_ok=True)
    pack_training_output(step, sources, run_dir)
    for trial in result.trials:
        record = training_record(trial.folder / "output-data")
        record.params.update(flatten(trial.params, "train."))
        record.tags.update(trial=str(trial.number), state=trial.state)
        record.metrics["seconds"] = trial.seconds
        status = FINISHED if trial.state == "COMPLETE" else FAILED
        tracked.log_child(f"{run_dir.name}/{trial.name}", record, status)
    progress(
        f"      best: {result.best.name} {result.objective}={result.best.value:.6g} "
        f"({result.count('COMPLETE')} completed, {result.count('PRUNED')} pruned, "
        f"{result.count('FAIL')} failed)"
    )
    return result


def check_inputs(cfg: Config, data_file: Path) -> None:
    """Fail early, with one line, on inputs the steps could not use."""
    check_data_file(data_file)
    if not cfg.suite_file.is_file():
        raise UsageError(
            f"expectation suite not found: {cfg.suite_file} (config data.expectation_suite)"
        )
    golden = cfg.golden_file
    if golden is not None and not golden.is_file():
        raise UsageError(f"golden evaluation set not found: {golden} (config data.golden)")


def mark_crashed_runs(home: Path) -> list[str]:
    """Runs whose record says "running" although their process is gone (killed, or the disk
    filled before the record could be written) are marked "crashed"; their ids."""
    crashed = []
    for record in sorted((home / "runs").glob("*/run.json")):
        try:
            summary = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        pid = summary.get("pid")
        if summary.get("status") != "running" or not isinstance(pid, int) or is_running(pid):
            continue
        summary.update(
            status="crashed", error=f"the run's process (pid {pid}) ended before the run did"
        )
        with contextlib.suppress(OSError):
            write_run_record(record.parent, summary)
            crashed.append(record.parent.name)
    return crashed


def start_run(home: Path, progress: Callable[[str], None]) -> tuple[str, Path]:
    for crashed in mark_crashed_runs(home):
        progress(f"run {crashed} was interrupted: marked crashed")
    run_id = new_run_id()
    run_dir = home / "runs" / run_id
    run_dir.mkdir(parents=True)
    progress(f"run {run_id}  ({run_dir})")
    return run_id, run_dir


def execute(
    graph: Pipeline,
    sources: dict[str, Path],
    run_dir: Path,
    progress: Callable[[str], None],
    after_step: Callable[[Step, float], None] = lambda step, seconds: None,
    steps: tuple[str, ...] | None = None,
) -> None:
    """Run the graph's steps in order (or only `steps`); StepFailed names the one that failed."""
    chosen = [s for s in graph.steps if steps is None or s.name in steps]
    preload(_libraries_of(graph, chosen))
    for index, step in enumerate(chosen, 1):
        progress(f"[{index}/{len(chosen)}] {step.name:<11} {step.description}")
        start = time.perf_counter()
        run_step(step, sources, run_dir)
        seconds = time.perf_counter() - start
        progress(f"      {step.name:<11} done in {seconds:.1f}s")
        after_step(step, seconds)


def _libraries_of(graph: Pipeline, steps: list[Step]) -> tuple[str, ...]:
    """The model family's libraries, and Great Expectations when one of `steps` (or what it
    imports) uses it."""
    from mlops.core.model_family import model_family
    from stepkit.bundle import bundle_files, imported_names

    train = graph.step(graph.model_step)
    libraries = list(model_family(str(train.hyperparameters.get("model") or "")).LIBRARIES)
    for step in steps:
        files = bundle_files(step.script_path, REPO_ROOT).values()
        if any(VALIDATION_LIBRARY in imported_names(f) for f in files):
            libraries.append(VALIDATION_LIBRARY)
            break
    return tuple(libraries)


def read_evaluation(graph: Pipeline, sources: dict[str, Path]) -> dict:
    """evaluation.json of a run that got past its evaluation step."""
    return json.loads((sources[graph.evaluation] / EVALUATION_FILE).read_text())


def run_pipeline(
    cfg: Config,
    data_file: Path,
    home: Path,
    progress: Callable[[str], None] = print,
    champion: ModelVersion | None = None,
    graph: Pipeline | None = None,
    extra_lineage: dict | None = None,
    tracker: Tracker | None = None,
) -> RunResult:
    """Run every step, check the gate, register the model. Raises on failure, registering nothing.

    With a tracker, the run (passed or failed) is also a tracked run: parameters, curves,
    metrics, lineage and the registered version; the version's lineage names the run.
    """
    data_file = Path(data_file)
    check_inputs(cfg, data_file)
    for warning in check_task_data(cfg, data_file):
        progress(warning)
    graph = graph or load_pipeline(cfg)
    run_id, run_dir = start_run(home, progress)
    data_sha256 = sha256_file(data_file)
    run_lineage = lineage(cfg, data_file, run_id, data_sha256, "local", extra_lineage)
    tracked: TrackedRun = UntrackedRun()
    if tracker is not None:
        progress(f"tracking: {tracker.describe()}")
        tracked = tracker.start_run(run_id, {"mlops.run_id": run_id, **lineage_tags(run_lineage)})
        tracked.log(RunRecord(params=flatten(run_parameters(cfg))))
    champion_archive = Path(champion.model_uri) if champion else None
    if champion:
        progress(f"champion: version {champion.version} (scored on the same test rows)")
    sources = resolve_sources(
        graph, run_dir, data_file, cfg.suite_file, champion_archive, cfg.golden_file
    )
    summary: dict = {
        "run_id": run_id,
        "data_file": str(data_file),
        "status": "running",
        "pid": os.getpid(),
        "champion_version": champion.version if champion else None,  # what evaluate scored
        "steps": {},
    }
    summary.update(extra_lineage or {})
    write_run_record(run_dir, summary)  # a killed run still says what it was
    tuning: TuningResult | None = None

    def after_step(step: Step, seconds: float) -> None:
        summary["steps"][step.name] = {"status": "succeeded", "seconds": round(seconds, 3)}
        quarantine = quarantine_of(sources, step)
        if quarantine:
            summary["quarantine"] = quarantine
            progress(quarantine_line(quarantine))
        tracked.log(step_record(step, graph, run_dir, seconds, tuning))

    try:
        if graph.tuning is None:
            execute(graph, sources, run_dir, progress, after_step)
        else:  # the model step is a search; the steps around it run as usual
            names = [s.name for s in graph.steps]
            cut = names.index(graph.model_step)
            execute(graph, sources, run_dir, progress, after_step, tuple(names[:cut]))
            progress(f"[{cut + 1}/{len(names)}] {graph.model_step:<11} hyperparameter tuning")
            start = time.perf_counter()
            step = graph.step(graph.model_step)
            tuning = run_tuning(step, graph, sources, run_dir, progress, tracked)
            summary["tuning"] = tuning.lineage()
            run_lineage["params"]["train"].update(tuning.best.params)
            run_lineage["tuning"] = tuning.lineage()
            after_step(step, time.perf_counter() - start)
            execute(graph, sources, run_dir, progress, after_step, tuple(names[cut + 1 :]))
        evaluation = read_evaluation(graph, sources)
        verdict = check_gate(evaluation, graph.gate)
        metrics = metrics_from_evaluation(evaluation)
        progress("metrics: " + "  ".join(f"{k}={v:.6g}" for k, v in metrics.items()))
        for check in verdict.checks:
            progress(f"gate:    {check}")
        summary["gate"] = {"passed": verdict.passed, "checks": [str(c) for c in verdict.checks]}
        tracked.log(RunRecord(tags={"gate": "passed" if verdict.passed else "failed"}))
        if not verdict.passed:
            failed = "; ".join(str(c) for c in verdict.failures)
            raise GateFailed(f"quality gate failed: {failed}; nothing registered (run {run_id})")
        tracking_run = tracked.run_id()
        if tracking_run:
            run_lineage["tracking_run_id"] = tracking_run
        archive = sources[graph.model] / MODEL_ARCHIVE
        check_serving_code(archive)
        version = LocalRegistry(home, cfg.model_package_group).register(
            model_archive=archive,
            evaluation=sources[graph.evaluation] / EVALUATION_FILE,
            baseline=sources[graph.baseline] / "baseline.json",
            lineage={
                **run_lineage,
                HELD_OUT_KEY: str(sources[graph.held_out]),
                **(
                    {"quarantined_rows": summary["quarantine"]["rows"]}
                    if "quarantine" in summary
                    else {}
                ),
            },
        )
        summary.update(status="registered", version=version.version)
        write_run_record(run_dir, summary)  # the card reads the gate's checks from it
        write_card_or_warn(cfg, home, version.version, progress)
        return RunResult(run_id, run_dir, evaluation, verdict, version)
    except BaseException as exc:
        summary.update(status="failed", error=str(exc) or type(exc).__name__)
        raise
    finally:
        if tracker is not None:
            summary["tracking"] = {"run_id": tracked.run_id(), "experiment": tracker.experiment}
        write_run_record(run_dir, summary)
        finish_tracking(tracked, summary, run_dir / "run.json", progress)


def check_serving_code(archive: Path) -> None:
    """Refuse to register a model whose serving code breaks the contract (stepkit.contract):
    the handler in the archive's code/ must define every contract function."""
    from stepkit.artifact import CODE_DIR
    from stepkit.contract import ContractError, check_handler_source

    handler = f"{CODE_DIR}/inference.py"
    with tarfile.open(archive) as tar:
        try:
            member = tar.extractfile(handler)
        except KeyError:
            member = None
        if member is None:
            raise StepFailed(f"not registered: {archive} holds no {handler} (the serving code)")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "inference.py"
            path.write_bytes(member.read())
            try:
                check_handler_source(path)
            except ContractError as exc:
                raise StepFailed(
                    f"not registered: {str(exc).replace(str(path), handler)}"
                ) from None


def step_record(
    step: Step, graph: Pipeline, run_dir: Path, seconds: float, tuning: TuningResult | None
) -> RunRecord:
    """What a finished step adds to the tracked run."""
    record = RunRecord(metrics={f"seconds_{step.name}": seconds})
    if step.name == graph.model_step:
        trained = training_record(run_dir / step.name / "output-data")
        record.curves, record.metrics = trained.curves, {**record.metrics, **trained.metrics}
        record.artifacts.append(run_dir / step.name / "output-data" / "curve.csv")
        if tuning is not None:
            record.params.update(flatten(tuning.best.params, "tuned."))
            record.params.update(
                {"tuning.trials": str(len(tuning.trials)), "tuning.objective": tuning.objective}
            )
            record.tags.update(best_trial=str(tuning.best.number))
            record.metrics.update(
                tuning_pruned=float(tuning.count("PRUNED")), seconds_tuning=tuning.seconds
            )
    if step.name == graph.evaluation_step:
        evaluation_file = run_dir / graph.evaluation.replace(".", "/") / EVALUATION_FILE
        if evaluation_file.is_file():
            record.metrics.update(evaluation_metrics(json.loads(evaluation_file.read_text())))
            record.artifacts.append(evaluation_file)
    return record


def finish_tracking(
    tracked: TrackedRun, summary: dict, run_json: Path, progress: Callable[[str], None]
) -> None:
    """Close the tracked run: status, registered version, the run summary as an artifact."""
    tags = {"status": summary.get("status", "failed")}
    if "version" in summary:
        tags["registered_version"] = str(summary["version"])
    if "error" in summary:
        tags["error"] = summary["error"][:500]
    tracked.log(RunRecord(tags=tags, artifacts=[run_json]))
    tracked.finish(FINISHED if summary.get("status") == "registered" else FAILED)
    if tracked.run_id():
        waited = getattr(tracked, "waited", 0.0)
        progress(
            f"tracked: run {tracked.run_id()} (see it with `mlops ui --mlflow`; the run waited "
            f"{waited:.2f} s on tracking)"
        )


class LocalPipelineRunner:
    """`mlops.core.interfaces.PipelineRunner` on this machine: the champion is what prod serves."""

    def __init__(self, cfg: Config, home: Path):
        self.cfg, self.home = cfg, home

    def run(
        self, data: str, progress: Callable[[str], None] = print, extra_lineage: dict | None = None
    ) -> int:
        from mlops.local.champion import resolve_champion  # reads deploy state, not preloaded

        champion = resolve_champion(self.cfg, self.home)
        tracker = None
        if self.cfg.tracking.enabled:
            from mlops.local.tracking import local_tracker

            tracker = local_tracker(self.cfg, self.home)
        result = run_pipeline(
            self.cfg,
            Path(data),
            self.home,
            progress,
            champion,
            extra_lineage=extra_lineage,
            tracker=tracker,
        )
        v = result.version
        print(f"registered model version {v.version} as {v.approval_status} (run {result.run_id})")
        print(f"next: mlops models approve {v.version}   # a human approver's decision")
        return 0
