"""`mlops models ...`: the model registry (list, describe, approve, reject, card)."""

from __future__ import annotations

import argparse

from mlops.cli.backends import open_registry
from mlops.cli.common import (
    add_backend_arg,
    add_config_arg,
    config_from,
    home,
    print_json,
    version_number,
)
from mlops.core.interfaces import Registry
from mlops.core.registry import ModelVersion


def registry_from(args: argparse.Namespace) -> Registry:
    cfg = config_from(args)
    return open_registry(args.backend, cfg.model_package_group, home())


def describe_dict(v: ModelVersion) -> dict:
    """The fields DESIGN.md promises for `models describe --json`."""
    return v.to_dict()


def _metric(v: ModelVersion, name: str) -> str:
    return f"{v.metrics[name]:.4g}" if name in v.metrics else "-"


def cmd_list(args: argparse.Namespace) -> int:
    reg = registry_from(args)
    versions = reg.list()
    if args.json:
        print_json([describe_dict(v) for v in versions])
        return 0
    if not versions:
        print(f"no model versions in group {reg.group!r} yet: run `mlops pipeline run`")
        return 0
    # The task's two headline metrics: a classifier's versions carry auc and log_loss.
    first, second = ("auc", "log_loss") if "auc" in versions[-1].metrics else ("mse", "r2")
    print(
        f"{'VERSION':>7}  {'STATUS':<22} {first.upper():>10} {second.upper():>8}  "
        f"{'CREATED':<25} GIT"
    )
    for v in versions:
        commit = (v.lineage.get("git_commit") or "")[:10]
        print(
            f"{v.version:>7}  {v.approval_status:<22} {_metric(v, first):>10} "
            f"{_metric(v, second):>8}  {v.created_at:<25} {commit}"
        )
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    v = registry_from(args).describe(args.version)
    if args.json:
        print_json(describe_dict(v))
        return 0
    print(f"version:         {v.version} ({v.group})")
    print(f"approval_status: {v.approval_status}" + (f"  ({v.note})" if v.note else ""))
    print(f"created_at:      {v.created_at}")
    print("metrics:         " + "  ".join(f"{k}={val:.6g}" for k, val in v.metrics.items()))
    for key in ("git_commit", "pr_number", "data_sha256", "run_id"):
        print(f"{key + ':':<17}{v.lineage.get(key) or '-'}")
    print(f"model:           {v.model_uri}")
    if v.arn:
        print(f"arn:             {v.arn}")
    return 0


def cmd_set_status(args: argparse.Namespace) -> int:
    reg = registry_from(args)
    v = (
        reg.approve(args.version, args.note)
        if args.approve
        else reg.reject(args.version, args.note)
    )
    print(f"model version {v.version} is now {v.approval_status}")
    if args.backend == "local":  # the card carries the approval history: rewrite it
        from mlops.local.cards import write_card_or_warn

        write_card_or_warn(config_from(args), home(), v.version, print, quiet=True)
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    """Write the version's card afresh (local) and print where it is; --open shows it."""
    cfg = config_from(args)
    if args.backend == "sagemaker":
        from mlops.sagemaker.model_card import attach_card

        arn = attach_card(cfg, registry_from(args), args.version)
        print(f"model card of version {args.version} attached to {arn}")
        print("see it in SageMaker Studio: the model version's Model card tab")
        return 0
    from mlops.local.cards import write_card

    path = write_card(cfg, home(), args.version)
    print(f"model card of version {args.version}: {path}")
    print(f"markdown: {path.with_name('card.md')}")
    if args.open:
        import webbrowser

        if not webbrowser.open(path.as_uri()):
            print(f"no browser found here: open {path.as_uri()}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="the model registry: list, describe, approve, reject")
    msub = models.add_subparsers(dest="models_command", required=True, metavar="COMMAND")

    lst = msub.add_parser("list", help="all versions of the model package group")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(func=cmd_list)

    desc = msub.add_parser("describe", help="one version: status, metrics, lineage")
    desc.add_argument("version", type=version_number)
    desc.add_argument("--json", action="store_true", help="machine-readable output")
    desc.set_defaults(func=cmd_describe)

    for name, approve in (("approve", True), ("reject", False)):
        p = msub.add_parser(name, help=f"{name} a version (what a human approver does)")
        p.add_argument("version", type=version_number)
        p.add_argument("--note", default="", help="why; kept in the approval history")
        p.set_defaults(func=cmd_set_status, approve=approve)

    card = msub.add_parser(
        "card",
        help="a version's model card: intended use, data, metrics, gate, plots, lineage",
        description="Write the version's model card ($MLOPS_HOME/cards/GROUP/vN/card.html, "
        "self-contained, and card.md) from what its run wrote, and print where it is. "
        "--backend sagemaker: (re)attach the SageMaker Model Card to the model package.",
    )
    card.add_argument("version", type=int)
    card.add_argument("--open", action="store_true", help="open the HTML card in a browser")
    card.set_defaults(func=cmd_card)

    for p in msub.choices.values():
        add_backend_arg(p)
        add_config_arg(p)
