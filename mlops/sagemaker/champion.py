"""The champion a SageMaker run compares its challenger with: the version prod serves.

The same rule as the local backend (`mlops.local.champion`): what the prod stage
serves, else (nothing deployed yet) the newest Approved version. "Latest approved" alone
could name a version that was approved and then rolled back in prod.
"""

from __future__ import annotations

from typing import Any

from mlops.core.registry import ModelVersion
from mlops.sagemaker.registry import SageMakerRegistry, aws_errors
from mlops.sagemaker.stage_stack import served_version, stack_name

PROD = "prod"


def resolve_champion(registry: SageMakerRegistry, cloudformation: Any) -> ModelVersion | None:
    name = stack_name(registry.group, PROD)
    with aws_errors(f"cannot read which version stack {name} serves"):
        served = served_version(cloudformation, name)
    if served is not None:
        return registry.describe(served[0])
    return registry.latest_approved()
