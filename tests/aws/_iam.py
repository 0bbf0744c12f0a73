"""A small IAM policy evaluator for the bootstrap stack's roles, and the map from the AWS
calls our code makes to the IAM authorizations they need.

Why our own: moto can enforce IAM (`set_initial_no_auth_action_count`), but it checks
most services' actions against resource "*" and ignores Condition blocks, so it would
pass a policy scoped to the wrong pipeline or bucket prefix. This evaluator implements
the part of IAM's identity-policy logic that the bootstrap stack uses, and refuses the
rest (an unknown condition operator, an unmapped API call) instead of guessing:

- a request is allowed when some Allow statement matches it and no Deny statement does;
- Action/NotAction match case-insensitively with `*` and `?` wildcards;
  Resource/NotResource match case-sensitively with the same wildcards;
- Condition operators: StringEquals, StringNotEquals, StringLike, StringNotLike,
  ArnEquals, ArnLike, Bool; a list of values matches when any does; a key absent
  from the request context fails the positive operators.

A change set for a template with a `Transform:` also needs CreateChangeSet on the
transform's ARN (`arn:aws:cloudformation:<region>:aws:transform/LanguageExtensions`).

Not modelled (not used by the stack): permission boundaries, SCPs, session policies,
resource policies other than the roles' own, `...IfExists` operators, policy variables.

CloudFormation intrinsics (`Ref`, `Fn::Sub`, `Fn::GetAtt`, `Fn::If`, `Fn::FindInMap`) are resolved with
fixed values for the account, region, parameters and the names of the stack's resources.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"  # moto's default account: ARNs from moto responses match
REGION = "us-east-1"
PARTITION = "aws"
BUCKET = "mlops-artifacts-test"
OIDC_PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"


# ---- CloudFormation intrinsics -------------------------------------------------------------


def resource_value(logical_id: str, resource: dict, attribute: str | None) -> str:
    """What `Ref`/`Fn::GetAtt` give for the bootstrap stack's resources, with fixed names."""
    kind = resource["Type"]
    if kind == "AWS::IAM::Role":
        arn = f"arn:{PARTITION}:iam::{ACCOUNT}:role/{logical_id}"
        return arn if attribute == "Arn" else logical_id
    if kind == "AWS::S3::Bucket":
        return f"arn:{PARTITION}:s3:::{BUCKET}" if attribute == "Arn" else BUCKET
    if kind == "AWS::IAM::OIDCProvider":
        return OIDC_PROVIDER
    if kind == "AWS::SageMaker::ModelPackageGroup":
        return f"arn:{PARTITION}:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{{group}}"
    if kind == "AWS::Logs::LogGroup":
        return f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{logical_id}:*"
    return f"arn:{PARTITION}:test:{REGION}:{ACCOUNT}:{logical_id}"


@dataclass
class Stack:
    """A parsed template with parameter values: resolves intrinsics to plain JSON."""

    template: dict
    parameters: dict[str, str]
    conditions: dict[str, bool] = field(default_factory=dict)

    def ref(self, name: str, attribute: str | None = None) -> str:
        pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::StackName": "bootstrap",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters and attribute is None:
            return self.parameters[name]
        resource = self.template["Resources"][name]
        value = resource_value(name, resource, attribute)
        return value.replace("{group}", self.parameters.get("ModelPackageGroupName", ""))

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(v) for v in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"}:
            return self.ref(node["Ref"])
        if set(node) == {"Fn::GetAtt"}:
            target = node["Fn::GetAtt"]
            name, attribute = target if isinstance(target, list) else target.split(".", 1)
            return self.ref(name, attribute)
        if set(node) == {"Fn::If"}:
            condition, yes, no = node["Fn::If"]
            return self.resolve(yes if self.conditions[condition] else no)
        if set(node) == {"Fn::Sub"}:
            return self.sub(node["Fn::Sub"])
        if set(node) == {"Fn::FindInMap"}:
            mapping, key, name = (self.resolve(v) for v in node["Fn::FindInMap"])
            return self.template["Mappings"][mapping][key][name]
        return {k: self.resolve(v) for k, v in node.items() if v != {"Ref": "AWS::NoValue"}}

    def sub(self, spec: str | list) -> str:
        text, variables = (spec, {}) if isinstance(spec, str) else (spec[0], spec[1])

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            logical, _, attribute = name.partition(".")
            return self.ref(logical, attribute or None)

        return re.sub(r"\$\{([\w:.]+)\}", replace, text)


def role_policies(stack: Stack, role: str) -> list[dict]:
    """Every identity policy document attached to `role` (inline and AWS::IAM::Policy)."""
    resources = stack.template["Resources"]
    documents = [p["PolicyDocument"] for p in resources[role]["Properties"].get("Policies", [])]
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy":
            roles = resource["Properties"]["Roles"]
            if {"Ref": role} in roles:
                documents.append(resource["Properties"]["PolicyDocument"])
    return [stack.resolve(d) for d in documents]


# ---- evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Authorization:
    """One IAM check a call needs: an action on a resource, in a request context."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        extra = "".join(f" [{k}={v}]" for k, v in self.context)
        return f"{self.action} on {self.resource}{extra}"


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, case_sensitive: bool) -> bool:
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


CONDITION_OPERATORS = {
    "StringEquals": (lambda want, got: want == got, False),
    "StringNotEquals": (lambda want, got: want != got, True),
    "StringLike": (lambda want, got: _wildcard(want, got, True), False),
    "StringNotLike": (lambda want, got: not _wildcard(want, got, True), True),
    "ArnEquals": (lambda want, got: want == got, False),
    "ArnLike": (lambda want, got: _wildcard(want, got, True), False),
    "Bool": (lambda want, got: str(want).lower() == str(got).lower(), False),
}


def _condition_holds(condition: dict, context: dict[str, str]) -> bool:
    for operator, keys in condition.items():
        if operator not in CONDITION_OPERATORS:
            raise ValueError(f"condition operator {operator} is not modelled: extend _iam.py")
        test, negated = CONDITION_OPERATORS[operator]
        for key, wanted in keys.items():
            if key not in context:
                if not negated:
                    return False
                continue
            values = _as_list(wanted)
            got = context[key]
            matched = (
                all(test(w, got) for w in values) if negated else any(test(w, got) for w in values)
            )
            if not matched:
                return False
    return True


def _statement_matches(statement: dict, request: Authorization) -> bool:
    if "Action" in statement:
        if not any(_wildcard(a, request.action, False) for a in _as_list(statement["Action"])):
            return False
    elif any(_wildcard(a, request.action, False) for a in _as_list(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(_wildcard(r, request.resource, True) for r in _as_list(statement["Resource"])):
            return False
    elif any(_wildcard(r, request.resource, True) for r in _as_list(statement["NotResource"])):
        return False
    return _condition_holds(statement.get("Condition", {}), dict(request.context))


def allowed(policies: list[dict], request: Authorization) -> bool:
    statements = [s for p in policies for s in _as_list(p["Statement"])]
    matching = [s for s in statements if _statement_matches(s, request)]
    if any(s["Effect"] == "Deny" for s in matching):
        return False
    return any(s["Effect"] == "Allow" for s in matching)


# ---- API calls -> authorizations -------------------------------------------------------------


def _sagemaker_arn(kind: str, name: str) -> str:
    # SageMaker lower-cases resource names in ARNs (model package group names excepted).
    return f"arn:{PARTITION}:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name.lower()}"


def _stack_arn(name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/0a1b2c3d-test"


def _transform_arn(name: str) -> str:
    # A macro hosted by AWS: its ARN has the account "aws" and the name after "AWS::".
    return f"arn:{PARTITION}:cloudformation:{REGION}:aws:transform/{name.removeprefix('AWS::')}"


def template_transforms(body: str) -> list[str]:
    """The transforms a template body declares at its top (`Transform:` one name or a list):
    creating a change set for it needs CreateChangeSet on each transform's ARN as well."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # the CloudFormation short forms (!Sub, !Ref ...) as plain values: only the top matters
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load(body, Loader=Loader) if body else {}
    declared = template.get("Transform", []) if isinstance(template, dict) else []
    return [n for n in _as_list(declared) if isinstance(n, str)]


def _pass_role(role_arn: str, service: str) -> Authorization:
    return Authorization("iam:PassRole", role_arn, (("iam:PassedToService", service),))


S3_OBJECT_ACTIONS = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
}


def authorizations(service: str, operation: str, params: dict) -> list[Authorization]:
    """The IAM checks AWS makes for one API call (KeyError for a call not mapped yet)."""
    if service == "s3":
        if operation in S3_OBJECT_ACTIONS:
            resource = f"arn:{PARTITION}:s3:::{params['Bucket']}/{params['Key']}"
            return [Authorization(S3_OBJECT_ACTIONS[operation], resource)]
        if operation in ("ListObjects", "ListObjectsV2"):
            context = (("s3:prefix", params.get("Prefix", "")),)
            return [Authorization("s3:ListBucket", f"arn:aws:s3:::{params['Bucket']}", context)]
    if service == "sagemaker-runtime" and operation == "InvokeEndpoint":
        return [
            Authorization(
                "sagemaker:InvokeEndpoint", _sagemaker_arn("endpoint", params["EndpointName"])
            )
        ]
    if service == "sagemaker":
        action = f"sagemaker:{operation}"
        if operation in ("CreatePipeline", "UpdatePipeline"):
            return [
                Authorization(action, _sagemaker_arn("pipeline", params["PipelineName"])),
                _pass_role(params["RoleArn"], "sagemaker.amazonaws.com"),
            ]
        if operation in ("DescribePipeline", "StartPipelineExecution", "ListPipelineExecutions"):
            return [Authorization(action, _sagemaker_arn("pipeline", params["PipelineName"]))]
        if operation in (
            "DescribePipelineExecution",
            "ListPipelineExecutionSteps",
            "StopPipelineExecution",
        ):
            return [Authorization(action, params["PipelineExecutionArn"])]
        if operation == "ListModelPackages":
            return [Authorization(action, "*")]  # no resource-level permissions
        if operation == "DescribeModelPackage":
            return [Authorization(action, params["ModelPackageName"])]
        if operation == "UpdateModelPackage":
            return [Authorization(action, params["ModelPackageArn"])]
        if operation == "DescribeEndpoint":
            return [Authorization(action, _sagemaker_arn("endpoint", params["EndpointName"]))]
        if operation in ("ListModels", "ListMonitoringExecutions"):
            return [Authorization(action, "*")]  # no resource-level permissions
        if operation == "CreateModel":
            return [
                Authorization(action, _sagemaker_arn("model", params["ModelName"])),
                _pass_role(params["ExecutionRoleArn"], "sagemaker.amazonaws.com"),
            ]
        if operation in ("CreateTransformJob", "DescribeTransformJob"):
            job = _sagemaker_arn("transform-job", params["TransformJobName"])
            tags = [Authorization("sagemaker:AddTags", job)] if params.get("Tags") else []
            return [Authorization(action, job), *tags]
        if operation == "DescribeProcessingJob":
            return [
                Authorization(action, _sagemaker_arn("processing-job", params["ProcessingJobName"]))
            ]
    if service == "cloudformation":
        action = f"cloudformation:{operation}"
        checks = [Authorization(action, _stack_arn(params["StackName"]))]
        if operation == "CreateChangeSet":
            checks += [
                Authorization(action, _transform_arn(name))
                for name in template_transforms(params.get("TemplateBody", ""))
            ]
        if params.get("RoleARN"):
            checks.append(_pass_role(params["RoleARN"], "cloudformation.amazonaws.com"))
        return checks
    raise KeyError(f"{service}:{operation} has no IAM mapping in tests/aws/_iam.py: add it")


# Calls whose failure the caller ignores, so a role need not (and should not) allow them.
TOLERATED = {
    ("iam", "SimulatePrincipalPolicy"): "SDK v3's ModelTrainer probes the role while the "
    "definition renders and swallows any error (NOTES.md)",
}


def denials(policies: list[dict], calls: list[tuple[str, str, dict]]) -> list[str]:
    """Each authorization some call needs and the policies do not grant, once."""
    missing: list[str] = []
    for service, operation, params in calls:
        if (service, operation) in TOLERATED:
            continue
        for check in authorizations(service, operation, params):
            text = f"{check} (for {service}.{operation})"
            if not allowed(policies, check) and text not in missing:
                missing.append(text)
    return missing
