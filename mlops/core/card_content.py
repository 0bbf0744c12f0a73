"""The model card as SageMaker's model package card content (the ModelCard of
CreateModelPackage / UpdateModelPackage): snake_case keys of AWS's model card JSON schema,
without `model_package_details`, which a package's card omits. Pure: facts in, dict out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from mlops.core.model_card import intended_use_text, section_of

MODEL_CARD_MAX_CHARS = 100_000  # botocore's ModelCardContent: a string of at most this


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number_metrics(rows: Sequence[Mapping], prefix: str = "") -> list[dict]:
    metrics = []
    for row in rows:
        metrics.append(
            {"name": f"{prefix}{row['metric']}", "type": "number", "value": row["value"]}
        )
        if row["interval"]:
            low, high = row["interval"]
            metrics += [
                {"name": f"{prefix}{row['metric']} 95% low", "type": "number", "value": low},
                {"name": f"{prefix}{row['metric']} 95% high", "type": "number", "value": high},
            ]
    return [m for m in metrics if math.isfinite(m["value"])]


def _champion_metrics(rows: Sequence[Mapping]) -> list[dict]:
    return [
        {"name": f"champion {r['metric']}", "type": "number", "value": r["champion"]}
        for r in rows
        if r["champion"] is not None and math.isfinite(r["champion"])
    ]


def roc_metric(evaluation: Mapping) -> list[dict]:
    roc = section_of(evaluation).get("receiver_operating_characteristic_curve")
    if not roc:
        return []
    points = [
        [float(x), float(y)]
        for x, y in zip(roc["false_positive_rates"], roc["true_positive_rates"], strict=True)
    ]
    return [
        {
            "name": "ROC curve",
            "type": "linear_graph",
            "value": points,
            "x_axis_name": "false positive rate",
            "y_axis_name": "true positive rate",
        }
    ]


def sagemaker_content(facts: Mapping, evaluation: Mapping) -> dict:
    """The card as SageMaker's model package model card content (snake_case keys of the
    model card JSON schema, without model_package_details, which a package card omits)."""
    data, lineage, gate = facts["data"], facts["lineage"], facts["gate"]
    verdict = {True: "passed", False: "failed", None: "not recorded"}[gate["passed"]]
    train_params = facts["params"].get("train", {})
    held_out = {
        "name": "held-out rows",
        "evaluation_observation": _clip(
            f"{data['held_out_rows']} held-out rows of the run's own split; quality gate "
            f"{verdict}: " + "; ".join(gate["checks"]),
            2096,
        ),
        "datasets": [d for d in [data["source"]] if d][:10],
        "metadata": {"data_sha256": str(data["sha256"]), "rows": str(data["rows"])},
        "metric_groups": [
            {
                "name": "this version",
                "metric_data": _number_metrics(facts["metrics"]) + roc_metric(evaluation),
            },
        ],
    }
    champion = _champion_metrics(facts["metrics"])
    if champion:
        held_out["metric_groups"].append(
            {"name": f"champion v{facts['champion_version']}", "metric_data": champion}
        )
    details = [held_out]
    if facts["golden"]:
        details.append(
            {
                "name": "golden set",
                "evaluation_observation": f"{facts['golden']['rows']} reviewed reference rows",
                "metric_groups": [
                    {
                        "name": "this version",
                        "metric_data": _number_metrics(facts["golden"]["metrics"]),
                    }
                ],
            }
        )
    custom = {
        "git_commit": lineage.get("git_commit", ""),
        "pr_number": lineage.get("pr_number", ""),
        "run_id": lineage.get("run_id", ""),
        "tracking_run_id": lineage.get("tracking_run_id", ""),
        "data_sha256": data["sha256"],
        "quarantined_rows": str(data["quarantined_rows"]),
        "validation": data["validation"],
        "gate": verdict,
    }
    return {
        "model_overview": {
            "model_description": _clip(intended_use_text(facts).split("\n\n")[0], 1024),
            "model_creator": "sagemaker-gitops-template pipeline",
            "model_artifact": [lineage["model_uri"]] if lineage.get("model_uri") else [],
            "algorithm_type": _clip(str(facts["model_family"] or "unknown"), 1024),
            "problem_type": facts["task"],
        },
        "intended_uses": {
            "purpose_of_model": _clip(intended_use_text(facts).split("\n\n")[0], 2048),
            "intended_uses": _clip(facts["intended_use"] or "not described yet", 2048),
        },
        "training_details": {
            "training_job_details": {
                "training_datasets": [d for d in [data["source"]] if d],
                "hyper_parameters": [
                    {"name": str(k), "value": _clip(str(v), 255)} for k, v in train_params.items()
                ][:100],
            }
        },
        "evaluation_details": details,
        "additional_information": {
            "custom_details": {k: _clip(str(v), 1024) for k, v in custom.items() if v != ""},
        },
    }
