"""`mlops report ...`: the PR comment, and the summary of a registered model version."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mlops.cli.common import (
    add_backend_arg,
    add_config_arg,
    config_from,
    home,
    version_number,
)
from mlops.core.errors import UsageError
from mlops.core.paths import REPORTS_DIR


def write_all(text: str, paths: list[Path]) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")


def run_dir_from(args: argparse.Namespace, home_dir: Path) -> Path | None:
    from mlops.core.run_layout import run_dir
    from mlops.local.report import latest_run_dir

    if args.run is None:
        return latest_run_dir(home_dir)
    found = run_dir(home_dir, args.run)
    if not found.is_dir():
        raise UsageError(f"no pipeline run {args.run!r} under {found.parent}")
    return found


def cmd_pr(args: argparse.Namespace) -> int:
    from mlops.core.report import passing, render_markdown
    from mlops.local.report import build_report

    cfg = config_from(args)
    home_dir = home()
    plots_dir = args.plots_dir or args.report_dir / "plots"
    report = build_report(
        cfg, home_dir, run_dir_from(args, home_dir), args.report_dir, plots_dir, os.environ
    )
    text = render_markdown(report) + "\n".join(approver_sections(cfg, home_dir, report, args))
    write_all(text, args.out)
    for name in report.plots:
        print(f"wrote {plots_dir / name}")
    if report.run is not None and report.run.tracking_run_id and cfg.tracking.enabled:
        attach_plots(
            cfg, home_dir, report.run.tracking_run_id, [plots_dir / n for n in report.plots]
        )
    print(f"challenger: {'passing' if passing(report) else 'failing'}")
    return 0


CARD_IN_REPORT = "model-card.html"  # beside the report: the `pr-report` artifact carries it


def card_lines(cfg, home_dir: Path, report, args: argparse.Namespace) -> list[str]:
    """The challenger's model card, copied into the report dir, and where to find it."""
    import shutil

    from mlops.core.report import run_url
    from mlops.local.cards import write_card

    run = report.run
    if run is None or run.version is None:
        return ["No model card: this run registered no version (the card is written at "
                "registration)."]  # fmt: skip
    card = write_card(cfg, home_dir, run.version)
    args.report_dir.mkdir(parents=True, exist_ok=True)
    copied = shutil.copy2(card, args.report_dir / CARD_IN_REPORT)
    print(f"wrote {copied}")
    url = run_url(os.environ)
    where = f"`{CARD_IN_REPORT}` in the `pr-report` artifact of [this run]({url})"
    return [
        f"The challenger's model card (version {run.version}: intended use, data, metrics "
        f"with intervals beside the champion's, golden set, gate, plots, lineage): "
        + (where if url else f"`{copied}`")
        + "."
    ]


def cost_lines(cfg, report) -> list[str]:
    """What this run would cost on SageMaker (its steps' seconds on the configured
    instances) and each stage's endpoint per month."""
    import json

    from mlops.core.cost import cost_markdown, stage_costs, step_costs
    from mlops.core.errors import MlopsError
    from mlops.core.graph import load_pipeline

    seconds: dict[str, float] = {}
    if report.run is not None:
        try:
            steps = json.loads((report.run.run_dir / "run.json").read_text()).get("steps", {})
            seconds = {name: float(step["seconds"]) for name, step in steps.items()}
        except (OSError, ValueError, KeyError, TypeError):
            seconds = {}
    try:
        endpoints = stage_costs()
    except MlopsError:
        endpoints = []
    run_steps = step_costs(cfg, load_pipeline(cfg), seconds)
    lines = cost_markdown(run_steps, endpoints)
    if run_steps:
        lines.insert(0, "Step times are this run's; on SageMaker each job adds its start-up.")
        lines.insert(1, "")
    return lines


def approver_sections(cfg, home_dir: Path, report, args: argparse.Namespace) -> list[str]:
    return ["", "### Model card", "", *card_lines(cfg, home_dir, report, args), "",
            "### Cost on SageMaker (estimate)", "", *cost_lines(cfg, report), ""]  # fmt: skip


def attach_plots(cfg, home_dir: Path, tracking_run_id: str, plots: list[Path]) -> None:
    """The report's plots join the pipeline run's tracked run (never fails the report)."""
    if not plots:
        return
    from mlops.core.tracking import RunRecord
    from mlops.local.tracking import local_tracker

    run = local_tracker(cfg, home_dir).resume(tracking_run_id)
    run.log(RunRecord(artifacts=plots))
    run.finish("")


def cmd_model(args: argparse.Namespace) -> int:
    from mlops.cli.backends import open_registry
    from mlops.core.report import render_version

    cfg = config_from(args)
    registry = open_registry(args.backend, cfg.model_package_group, home())
    if args.version is None:
        versions = registry.list()
        if not versions:
            raise UsageError(f"no model versions in group {cfg.model_package_group!r} yet")
        version = versions[-1]
    else:
        version = registry.describe(args.version)
    write_all(render_version(version, args.backend), args.out)
    return 0


def add_out_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        action="append",
        required=True,
        metavar="FILE",
        help='Markdown file to write; repeat to write several (e.g. "$GITHUB_STEP_SUMMARY")',
    )


def register(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="Markdown reports: the PR comment, a model version")
    rsub = report.add_subparsers(dest="report_command", required=True, metavar="COMMAND")

    pr = rsub.add_parser(
        "pr",
        help="the PR comment: data checks, challenger vs champion, gate, lineage",
        description="The challenger (the model of a pipeline run, the latest by default) next "
        "to the champion that run compared it with (the version serving prod, else the latest "
        "approved), on the same held-out rows: every number is what the run's evaluate step "
        "wrote (evaluation.json, predictions.csv); no model is scored again. Data checks are "
        "read from the report dir (validation.json/.md, drift.json/.md). Writes plots as PNG "
        "to the plots dir. Exit 0 when the report was written, whatever its verdict: the "
        "pipeline's exit code is the check.",
    )
    add_out_arg(pr)
    pr.add_argument("--run", default=None, help="pipeline run id (default: the latest run)")
    pr.add_argument(
        "--report-dir",
        type=Path,
        default=REPORTS_DIR,
        help="where `mlops data validate/drift --report-dir` wrote (default: reports/)",
    )
    pr.add_argument(
        "--plots-dir",
        type=Path,
        default=None,
        help="PNG plots go here (default: REPORT_DIR/plots)",
    )
    add_config_arg(pr)
    pr.set_defaults(func=cmd_pr)

    model = rsub.add_parser(
        "model",
        help="one registered model version: status, metrics, lineage, next step",
        description="Markdown summary of a registered version (the latest by default), "
        "e.g. for the job summary after the pipeline ran on main.",
    )
    add_out_arg(model)
    model.add_argument(
        "--version", type=version_number, default=None, help="default: the latest version"
    )
    add_backend_arg(model)
    add_config_arg(model)
    model.set_defaults(func=cmd_model)
