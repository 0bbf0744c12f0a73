"""`mlops monitor`: drift and quality of a stage's captured traffic; exit 1 on a violation."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops.cli.backends import open_monitor, open_registry
from mlops.cli.common import add_backend_arg, add_config_arg, config_from, home
from mlops.core import monitor
from mlops.core.errors import MlopsError, UsageError
from mlops.core.stages import STAGES


def cmd_monitor(args: argparse.Namespace) -> int:
    if args.stage not in STAGES:
        raise UsageError(f"--stage {args.stage!r}: use one of {', '.join(STAGES)}")
    cfg = config_from(args)
    since = monitor.parse_since(args.since)
    labels = None
    if args.labels:
        positive = cfg.classification.positive_label
        labels = monitor.read_labels(args.labels, cfg.data.target, task=cfg.task, positive=positive)
    registry = open_registry(args.backend, cfg.model_package_group, home())
    source = open_monitor(args.backend, cfg, registry, home())
    report = source.report(args.stage, since, labels, lambda line: print(f"  {line}", flush=True))
    folder = args.report_dir or home() / "reports" / f"monitor-{args.stage}"
    json_path, md_path = monitor.write_report(report, folder)
    print(f"report: {json_path} and {md_path.name}")
    if report["status"] == monitor.VIOLATION:
        raise MlopsError(report["summary"])
    print(report["summary"])
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "monitor",
        help="drift and quality of a stage's captured traffic (exit 1 on a violation)",
        description="Compare what a stage's endpoint captured with the model version that "
        "served it: PSI per feature against the version's training baseline, PSI of the "
        "predictions against the version's predictions on its held-out rows (its evaluate "
        "step's), and, with "
        "--labels, MSE/RMSE/MAE/R² against the version's test metrics (violation when MSE "
        "is over monitor.max_mse_increase_pct above it); for a classifier (labels as the "
        "target had them: yes/no, true/false, text) AUC, log loss and accuracy against the "
        "version's (monitor.max_auc_drop, max_log_loss_increase_pct, max_accuracy_drop). Corrupt capture lines are skipped "
        "and counted. Writes monitor.json and monitor.md. Exit 0 no violation (or no "
        "data), 1 a violation. --backend sagemaker reads the latest Model Monitor "
        "execution's violations of the stage's data-quality schedule (deployed by mlops "
        "deploy), and with --labels the endpoint's data capture in S3, credited to the "
        "version the stage serves now.",
    )
    p.add_argument("--stage", required=True, help=f"one of {', '.join(STAGES)}")
    p.add_argument("--since", default=None, help="only requests since: 30m, 6h, 7d or an ISO time")
    p.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="ground truth CSV: an inference_id column and the target column (a classifier's "
        "labels in any form the target had)",
    )
    p.add_argument(
        "--report-dir",
        type=Path,
        default=None,
        help="where monitor.json/.md go (default: $MLOPS_HOME/reports/monitor-STAGE)",
    )
    add_backend_arg(p)
    add_config_arg(p)
    p.set_defaults(func=cmd_monitor)
