"""A SageMaker Model Card on each registered model package (UpdateModelPackage's ModelCard).

The same facts as the local card (mlops.core.model_card), read from the package: its
evaluation.json in S3 (the ModelQuality statistics the pipeline registered), its
customer metadata (lineage) and the gate the pipeline declares, checked on that file.
SageMaker Studio shows the card on the model version's page. A package card follows
the model card JSON schema without `model_package_details`; the card's status is
`Draft` until the version is approved, as the approver has not signed it yet.
"""

from __future__ import annotations

import json
from typing import Any

from mlops.core.card_content import MODEL_CARD_MAX_CHARS, sagemaker_content
from mlops.core.config import Config
from mlops.core.errors import MlopsError
from mlops.core.gate import check_gate
from mlops.core.graph import load_pipeline
from mlops.core.model_card import CardInputs, card_facts, task_of
from mlops.core.registry import APPROVED, ModelVersion
from mlops.sagemaker.registry import SageMakerRegistry, aws_errors, split_s3_uri

CARD_STATUS = {APPROVED: "Approved"}  # any other approval status: "Draft"


def read_evaluation(s3: Any, uri: str) -> dict:
    if not uri:
        return {}
    bucket, key = split_s3_uri(uri)
    with aws_errors(f"cannot read {uri}"):
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def card_content(cfg: Config, version: ModelVersion, evaluation: dict) -> str:
    """The ModelCardContent string of a version; MlopsError if it outgrows the API's limit."""
    verdict = check_gate(evaluation, load_pipeline(cfg).gate) if evaluation else None
    inputs = CardInputs(
        version=version,
        task=task_of(evaluation) if evaluation else cfg.task,
        target=cfg.data.target,
        features=cfg.data.features,
        evaluation=evaluation,
        gate_checks=[str(c) for c in verdict.checks] if verdict else (),
        gate_passed=verdict.passed if verdict else None,
        history=[{"approval_status": version.approval_status, "note": version.note}],
        intended_use=_intended_use(cfg),
    )
    content = json.dumps(sagemaker_content(card_facts(inputs), evaluation), sort_keys=True)
    if len(content) > MODEL_CARD_MAX_CHARS:
        raise MlopsError(
            f"the model card of version {version.version} is {len(content)} characters; "
            f"SageMaker takes at most {MODEL_CARD_MAX_CHARS}"
        )
    return content


def _intended_use(cfg: Config) -> str:
    from mlops.core.model_card import INTENDED_USE_FILE

    path = cfg.resolve(INTENDED_USE_FILE)
    return path.read_text() if path.is_file() else ""


def attach_card(cfg: Config, registry: SageMakerRegistry, version_number: int) -> str:
    """Write the version's card onto its model package; returns the package ARN."""
    version = registry.describe(version_number)
    content = card_content(cfg, version, read_evaluation(registry.s3, version.evaluation_uri))
    with aws_errors(f"cannot attach the model card to {version.arn}"):
        registry.sagemaker.update_model_package(
            ModelPackageArn=version.arn,
            ModelCard={
                "ModelCardContent": content,
                "ModelCardStatus": CARD_STATUS.get(version.approval_status, "Draft"),
            },
        )
    return version.arn
