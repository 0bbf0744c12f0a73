"""A stage's CloudFormation stack: its name, what it says it serves, and deleting it.

Kept apart from `deploy.py` so that the pipeline run (which needs the champion: the
version prod serves) can read a stack without importing the deploy machinery.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mlops.core.deploy import endpoint_name
from mlops.core.errors import MlopsError
from mlops.core.interfaces import Progress

POLL_SECONDS = 15.0
# CloudFormation refuses to update a stack whose first create rolled back; it can only
# be deleted (then created again).
UNUPDATABLE = "ROLLBACK_COMPLETE"


def stack_name(group: str, stage: str) -> str:
    return endpoint_name(group, stage)


def describe_stack(cloudformation: Any, name: str) -> dict | None:
    """The stack, or None when no stack of that name exists (deleted ones included)."""
    from botocore.exceptions import ClientError

    try:
        return cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            return None
        raise


def stack_outputs(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def served_version(cloudformation: Any, name: str) -> tuple[int, str] | None:
    """(model version, endpoint name) a stage stack serves; None unless a deploy completed."""
    stack = describe_stack(cloudformation, name)
    if stack is None or not stack["StackStatus"].endswith("_COMPLETE"):
        return None
    if stack["StackStatus"].startswith(("DELETE", "ROLLBACK")):
        return None
    outputs = stack_outputs(stack)
    if "ModelVersion" not in outputs or "EndpointName" not in outputs:
        return None
    return int(outputs["ModelVersion"]), outputs["EndpointName"]


def delete_stack(
    cloudformation: Any,
    name: str,
    progress: Progress = print,
    role_arn: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = POLL_SECONDS,
) -> None:
    """Delete `name` and wait until it is gone; MlopsError if CloudFormation cannot."""
    request = {"StackName": name}
    if role_arn:
        request["RoleARN"] = role_arn  # the role that created the resources deletes them
    cloudformation.delete_stack(**request)
    progress(f"deleting stack {name}")
    while True:
        stack = describe_stack(cloudformation, name)
        if stack is None or stack["StackStatus"] == "DELETE_COMPLETE":
            progress(f"stack {name}: deleted")
            return
        if stack["StackStatus"] == "DELETE_FAILED":
            raise MlopsError(
                f"stack {name} could not be deleted: "
                f"{stack.get('StackStatusReason', 'no reason given')}"
            )
        sleep(poll)
