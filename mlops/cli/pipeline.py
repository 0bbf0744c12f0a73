"""`mlops pipeline ...`: run the training pipeline, print its SageMaker definition."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.cli.backends import open_pipeline_runner
from mlops.cli.common import add_backend_arg, add_config_arg, config_from, data_or_sample, home
from mlops.core.errors import UsageError


def cmd_run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    extra = None
    if args.from_feature_store:
        from mlops.cli.features import snapshot_for_training

        if args.data is not None:
            raise UsageError("--data and --from-feature-store exclude each other")
        data, extra = snapshot_for_training(cfg, args)
    elif args.as_of:
        raise UsageError("--as-of needs --from-feature-store")
    else:
        data = data_or_sample(cfg, args.data)
    return open_pipeline_runner(args.backend, cfg, home(), args).run(str(data), extra_lineage=extra)


def cmd_definition(args: argparse.Namespace) -> int:
    from mlops.sagemaker.pipeline_run import print_definition

    return print_definition(config_from(args), args)


def add_target_args(parser: argparse.ArgumentParser) -> None:
    """Where a SageMaker pipeline runs: the bootstrap stack's outputs (flags or environment)."""
    group = parser.add_argument_group("SageMaker target (--backend sagemaker)")
    group.add_argument("--region", help="AWS region (default: $AWS_REGION / $AWS_DEFAULT_REGION)")
    group.add_argument(
        "--role-arn", help="SageMaker execution role ARN (default: $MLOPS_SAGEMAKER_ROLE_ARN)"
    )
    group.add_argument("--bucket", help="artifact bucket (default: $MLOPS_ARTIFACT_BUCKET)")


def add_scope_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scope",
        choices=("main", "pr"),
        default="main",
        help="sagemaker: main (the pipeline that registers) or pr: the PR's own pipeline "
        "<group>-pr-<n> writing under <group>/pr/<n>/ and registering nothing; the PR "
        "number comes from $MLOPS_PR_NUMBER or GITHUB_REF (default: main)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    pipe = sub.add_parser("pipeline", help="run the training pipeline or print its definition")
    psub = pipe.add_subparsers(dest="pipeline_command", required=True, metavar="COMMAND")

    run = psub.add_parser(
        "run",
        help="the steps model_build/pipeline.py declares, the gate, register",
        description="Run the training pipeline model_build/pipeline.py declares (its steps, "
        "then the quality gate, then registration). Exit 0 when a model version was "
        "registered (as PendingManualApproval), 1 when a step or the quality gate "
        "failed (nothing is registered then), 2 on bad input. With --backend sagemaker: "
        "upload code and data, upsert and start the SageMaker pipeline, wait and report. "
        "With a train.tuning section in the config, training is a hyperparameter search "
        "(Optuna trials in parallel locally; a SageMaker tuning job). Each run is tracked "
        "in MLflow (`mlops ui --mlflow`; on SageMaker a managed tracking server, when configured).",
    )
    run.add_argument(
        "--data",
        default=None,
        help="raw CSV (default: the committed sample, data.sample in the config); "
        "with --backend sagemaker also an s3:// object",
    )
    add_backend_arg(run)
    add_config_arg(run)
    add_target_args(run)
    run.add_argument(
        "--from-feature-store",
        action="store_true",
        help="train on a point-in-time snapshot of the feature store instead of --data; "
        "its as-of time, query and sha256 go into the version's lineage",
    )
    run.add_argument(
        "--as-of", metavar="TIME", help="with --from-feature-store: snapshot time (default now)"
    )
    run.add_argument("--git-commit", help="lineage: the commit (default: git rev-parse HEAD)")
    add_scope_arg(run)
    run.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="sagemaker: wait for the execution and report each step (default: wait)",
    )
    run.add_argument(
        "--poll-seconds", type=float, default=30.0, help="sagemaker: status poll interval"
    )
    run.set_defaults(func=cmd_run)

    definition = psub.add_parser(
        "definition",
        help="the SageMaker pipeline definition JSON (offline, no credentials)",
        description="Render the SageMaker pipeline definition JSON of the pipeline "
        "model_build/pipeline.py declares, offline. Without a role and bucket, clearly fake "
        "placeholders are used. --scope pr renders what a pull request runs (its own "
        "pipeline and prefix, no register step); the steps it runs go to stderr.",
    )
    add_config_arg(definition)
    add_target_args(definition)
    add_scope_arg(definition)
    definition.add_argument("--out", type=Path, help="write to this file instead of stdout")
    definition.set_defaults(func=cmd_definition)
