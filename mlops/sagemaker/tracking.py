"""SageMaker experiment tracking: pipeline executions as runs on a managed MLflow server.

The server is named by its ARN, in config (`tracking.sagemaker_tracking_server_arn`)
or in $MLOPS_MLFLOW_TRACKING_ARN (the bootstrap stack's `MlflowTrackingServerArn`
output); MLflow reaches it through the `sagemaker-mlflow` plugin, signed with the
caller's AWS credentials. With none configured, tracking is skipped with one line.

`mlops pipeline run --backend sagemaker` opens the run when it starts the execution
and closes it when the execution ends, passed or failed: parameters, lineage, the
evaluation metrics (read from the execution's evaluation.json in S3), the execution
and model package ARNs. The registered package gets the run id in its metadata, so
the registry version links back to the run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from mlops.core.config import Config
from mlops.core.lineage import run_parameters
from mlops.core.mlflow_tracker import MlflowTracker
from mlops.core.run_layout import EVALUATION_FILE, RUNS, s3_output
from mlops.core.tracking import (
    FAILED,
    FINISHED,
    RunRecord,
    TrackedRun,
    UntrackedRun,
    evaluation_metrics,
    flatten,
    lineage_tags,
)
from mlops.sagemaker.registry import split_s3_uri

TRACKING_ARN_ENV = "MLOPS_MLFLOW_TRACKING_ARN"
TRACKING_RUN_KEY = "tracking_run_id"  # CustomerMetadataProperties key on the package


def tracking_server_arn(cfg: Config) -> str:
    return os.environ.get(TRACKING_ARN_ENV) or cfg.tracking.sagemaker_tracking_server_arn


def sagemaker_tracker(
    cfg: Config, say: Callable[[str], None] = lambda line: print(line, file=sys.stderr)
) -> MlflowTracker | None:
    """The managed server's tracker; None (and one line saying why) when there is none."""
    if not cfg.tracking.enabled:
        return None
    arn = tracking_server_arn(cfg)
    if not arn:
        say(
            "tracking: skipped (no SageMaker MLflow tracking server: set "
            f"${TRACKING_ARN_ENV} or tracking.sagemaker_tracking_server_arn)"
        )
        return None
    if importlib.util.find_spec("sagemaker_mlflow") is None:
        say("tracking: skipped (the sagemaker-mlflow plugin is not installed: the aws extra)")
        return None
    return MlflowTracker(arn, cfg.experiment, where=arn)


def evaluation_uri(target: Any, execution_arn: str, evaluation: str) -> str:
    """Where the execution's evaluation.json is: in the folder of the declared pipeline's
    `evaluation` output ("evaluate.evaluation"), laid out as mlops.core.run_layout says."""
    execution_id = execution_arn.rsplit("/", 1)[-1]
    return f"{s3_output(target.uri(RUNS, execution_id), evaluation)}/{EVALUATION_FILE}"


def read_evaluation(s3: Any, uri: str) -> dict:
    """evaluation.json of an execution, or {} when evaluate did not get to write it."""
    bucket, key = split_s3_uri(uri)
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception:  # a step before evaluate failed: nothing to read, nothing to fail
        return {}


class ExecutionTracking:
    """One pipeline execution as one tracked run (never raises)."""

    def __init__(self, tracker: MlflowTracker | None, cfg: Config, evaluation: str):
        """`evaluation`: the declared pipeline's evaluation output (`Pipeline.evaluation`)."""
        self.tracker, self.cfg, self.evaluation = tracker, cfg, evaluation
        self.run: TrackedRun = UntrackedRun()

    def start(self, execution_arn: str, lineage: dict[str, str]) -> None:
        if self.tracker is None:
            return
        print(f"tracking: {self.tracker.describe()}")
        name = execution_arn.rsplit("/", 1)[-1]
        self.run = self.tracker.start_run(
            name, {"execution_arn": execution_arn, **lineage_tags(lineage)}
        )
        self.run.log(RunRecord(params=flatten(run_parameters(self.cfg))))

    def finish(self, sagemaker: Any, s3: Any, target: Any, execution_arn: str, report: Any) -> None:
        """Metrics, status and registered package; the package's metadata gets the run id."""
        if self.tracker is None:
            return
        evaluation = read_evaluation(s3, evaluation_uri(target, execution_arn, self.evaluation))
        status = getattr(report, "status", "Unknown")
        package = getattr(report, "model_package_arn", "") if report else ""
        tags = {"status": status, "gate": "passed" if package else "not passed"}
        if package:
            tags["model_package_arn"] = package
        self.run.log(RunRecord(metrics=evaluation_metrics(evaluation), tags=tags))
        self.run.finish(FINISHED if package else FAILED)
        run_id = self.run.run_id()
        if run_id and package:
            link_package(sagemaker, package, run_id)
        if run_id:
            print(f"tracked: run {run_id} in {self.tracker.where}")


def link_package(sagemaker: Any, package_arn: str, run_id: str) -> None:
    """The registry version names its tracked run, where the caller may update packages.

    The bootstrap's CI roles may not (UpdateModelPackage also approves): there the link is
    the package's `run_id` metadata, the execution id, which is the tracked run's name.
    """
    try:
        sagemaker.update_model_package(
            ModelPackageArn=package_arn, CustomerMetadataProperties={TRACKING_RUN_KEY: run_id}
        )
    except Exception as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        print(
            f"note: run {run_id} not written into {package_arn} ({reason}); the run is named "
            "after the execution id, the package's run_id",
            file=sys.stderr,
        )
