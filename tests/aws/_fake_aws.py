"""Fakes for the AWS calls moto cannot answer faithfully, and a recorder of every call.

`record_calls` patches botocore's one call path: each call is recorded as (service,
operation, params); a call with a fake is validated against botocore's service model
(as botocore would before sending it) and answered by the fake, others go to moto.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from _iam import ACCOUNT, REGION
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

Fake = Callable[[str, dict], dict]


def record_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[tuple[str, str, dict]], dict[tuple[str, str], Fake]]:
    """(calls, fakes): fill `fakes[(service, operation or "*")]` to answer a call."""
    calls: list[tuple[str, str, dict]] = []
    fakes: dict[tuple[str, str], Fake] = {}
    original = BaseClient._make_api_call

    def make_api_call(client, operation, params):
        service = client.meta.service_model.service_name
        calls.append((service, operation, dict(params)))
        fake = fakes.get((service, operation)) or fakes.get((service, "*"))
        if fake is None:
            return original(client, operation, params)
        shape = client.meta.service_model.operation_model(operation).input_shape
        validate_parameters(params, shape)
        response = fake(operation, params)
        response.setdefault("ResponseMetadata", {"HTTPStatusCode": 200})
        return response

    monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)
    return calls, fakes


class FakeCloudFormation:
    """Stands in for the CloudFormation API (moto's change sets drop the stack's outputs):
    a change set applies its parameters, and a stack's outputs are the template's, read from
    those parameters. Requests are still validated against botocore's service model."""

    def __init__(self) -> None:
        self.stacks: dict[str, dict] = {}
        self.change_sets: dict[tuple[str, str], dict] = {}
        self.deleted: list[str] = []
        self.executed: list[tuple[str, dict]] = []  # (stack, change set request), in order

    def stack(self, name: str, status: str, parameters: list[dict]) -> dict:
        values = {p["ParameterKey"]: p["ParameterValue"] for p in parameters}
        outputs = {
            "EndpointName": values.get("EndpointName", ""),
            "ModelVersion": values.get("ModelVersion", ""),
            "ModelPackageArn": values.get("ModelPackageArn", ""),
        }
        return {
            "StackName": name,
            "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/0a1b",
            "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
            "StackStatus": status,
            "Parameters": parameters,
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items() if v],
        }

    def __call__(self, operation: str, params: dict) -> dict:
        name = params.get("StackName", "")
        if operation == "DescribeStacks":
            if name not in self.stacks:
                raise ClientError(
                    {
                        "Error": {
                            "Code": "ValidationError",
                            "Message": f"Stack with id {name} does not exist",
                        }
                    },
                    operation,
                )
            return {"Stacks": [self.stacks[name]]}
        if operation == "CreateChangeSet":
            self.change_sets[(name, params["ChangeSetName"])] = params
            if params["ChangeSetType"] == "CREATE":
                self.stacks[name] = self.stack(name, "REVIEW_IN_PROGRESS", [])
            return {"Id": f"cs-{params['ChangeSetName']}", "StackId": name}
        if operation == "DescribeChangeSet":
            request = self.change_sets[(name, params["ChangeSetName"])]
            if self.stacks[name]["Parameters"] == request["Parameters"]:
                reason = "The submitted information didn't contain changes."
                return {"Status": "FAILED", "StatusReason": reason, "Changes": []}
            return {"Status": "CREATE_COMPLETE", "Changes": []}
        if operation == "ExecuteChangeSet":
            request = self.change_sets.pop((name, params["ChangeSetName"]))
            self.executed.append((name, request))
            done = "CREATE_COMPLETE" if request["ChangeSetType"] == "CREATE" else "UPDATE_COMPLETE"
            self.stacks[name] = self.stack(name, done, request["Parameters"])
            return {}
        if operation == "DeleteChangeSet":
            self.change_sets.pop((name, params["ChangeSetName"]), None)
            return {}
        if operation == "DescribeStackEvents":
            return {"StackEvents": []}
        if operation == "DeleteStack":
            self.stacks.pop(name, None)
            self.deleted.append(name)
            return {}
        raise KeyError(f"FakeCloudFormation does not answer {operation}")
