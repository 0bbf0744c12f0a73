"""Cross-account IAM decisions for the three-account layout (model_deploy/accounts/), built
on tests/aws/_iam.py (its statement matching and its map from API calls to authorizations).

A request made by a role of one account is allowed when:
- the role's identity policies allow it (and none denies it): _iam.py's rule;
- if the resource belongs to another account, that resource's policy allows the role
  too (the model package group's resource policy, the bucket policy, a role's trust
  policy for sts:AssumeRole); a Deny in it wins;
- if it reads or writes an object of a bucket encrypted with a customer-managed key,
  kms:Decrypt (or GenerateDataKey) is allowed by the identity policies AND the key
  policy (a key policy's `<account>:root` principal delegates to that account's IAM
  policies, as AWS does).
Same-account requests need only the identity policy (the resource policy could allow
them alone, but the stacks never rely on that).

Resource policies are matched with _iam.py's statement matching plus a Principal check
(`*`, an account root or id, an exact role ARN). The request context carries
aws:PrincipalArn, aws:PrincipalAccount and aws:SecureTransport=true.

Assumed from AWS documentation, not verifiable offline: that a cross-account
ListModelPackages is authorized by the group's policy on `model-package/<group>/*` (the
SageMaker Developer Guide's cross-account example grants it there), and that S3 asks
KMS as the requester (kms:ViaService = s3.<region>.amazonaws.com).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import _iam
from _iam import PARTITION, REGION, Authorization, Stack, authorizations, role_policies
from botocore.client import BaseClient
from botocore.validate import validate_parameters

DEFAULT_ACCOUNT = _iam.ACCOUNT  # the account _iam.authorizations writes into name-built ARNs
ARN_ACCOUNT = re.compile(r"^arn:[^:]+:[^:]+:[^:]*:(\d{12}):")


# ---- the stacks of several accounts ------------------------------------------------------------


@dataclass
class AccountStack(Stack):
    """A template deployed in `account`: explicit resource names (RoleName, BucketName) are
    used in ARNs, so that one account's policy can name another account's role."""

    account: str = DEFAULT_ACCOUNT
    mappings: dict = field(default_factory=dict)

    def ref(self, name: str, attribute: str | None = None) -> str:
        pseudo = {
            "AWS::AccountId": self.account,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::StackName": "accounts",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters and attribute is None:
            return self.parameters[name]
        resource = self.template["Resources"][name]
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::IAM::Role":
            role = self.resolve(props["RoleName"]) if "RoleName" in props else name
            return f"arn:{PARTITION}:iam::{self.account}:role/{role}" if attribute else role
        if kind == "AWS::S3::Bucket":
            bucket = self.resolve(props.get("BucketName", name.lower()))
            return f"arn:{PARTITION}:s3:::{bucket}" if attribute == "Arn" else bucket
        if kind == "AWS::KMS::Key":
            key = f"arn:{PARTITION}:kms:{REGION}:{self.account}:key/{name.lower()}-0a1b"
            return key if attribute == "Arn" else key.rsplit("/", 1)[1]
        if kind == "AWS::SageMaker::ModelPackageGroup":
            group = self.resolve(props["ModelPackageGroupName"])
            return f"arn:{PARTITION}:sagemaker:{REGION}:{self.account}:model-package-group/{group}"
        if kind == "AWS::IAM::OIDCProvider":
            return f"arn:{PARTITION}:iam::{self.account}:oidc-provider/token.actions.githubusercontent.com"
        return f"arn:{PARTITION}:test:{REGION}:{self.account}:{name}"

    def resolve(self, node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Fn::FindInMap"}:
            table, key, item = (self.resolve(v) for v in node["Fn::FindInMap"])
            return self.template["Mappings"][table][key][item]
        if node == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        if isinstance(node, list):
            return [v for v in (self.resolve(v) for v in node) if v is not _NO_VALUE]
        return super().resolve(node)


_NO_VALUE = object()


def resources_of(stack: Stack, kind: str) -> dict[str, dict]:
    """The stack's resources of a type (those whose Condition is false left out)."""
    return {
        k: v
        for k, v in stack.template["Resources"].items()
        if v["Type"] == kind and stack.conditions.get(v.get("Condition", ""), True)
    }


@dataclass
class Accounts:
    """The stacks of a layout, by account id: answers who owns a resource and its policies."""

    stacks: dict[str, AccountStack]

    def role(self, arn: str) -> tuple[AccountStack, str]:
        """(stack, logical id) of the role with this ARN."""
        for stack in self.stacks.values():
            for logical in resources_of(stack, "AWS::IAM::Role"):
                if stack.ref(logical, "Arn") == arn:
                    return stack, logical
        raise KeyError(f"no stack of the layout has the role {arn}")

    def identity_policies(self, role_arn: str) -> list[dict]:
        stack, logical = self.role(role_arn)
        return role_policies(stack, logical)

    def bucket(self, name: str) -> tuple[AccountStack, str] | None:
        for stack in self.stacks.values():
            for logical in resources_of(stack, "AWS::S3::Bucket"):
                if stack.ref(logical) == name:
                    return stack, logical
        return None

    def bucket_policy(self, name: str) -> dict | None:
        stack, logical = self.bucket(name)
        for resource in resources_of(stack, "AWS::S3::BucketPolicy").values():
            if resource["Properties"]["Bucket"] == {"Ref": logical}:
                return stack.resolve(resource["Properties"]["PolicyDocument"])
        return None

    def bucket_key(self, name: str) -> tuple[str, dict] | None:
        """(key ARN, key policy) of a bucket encrypted with a key of its stack, else None."""
        stack, logical = self.bucket(name)
        encryption = stack.template["Resources"][logical]["Properties"].get("BucketEncryption")
        for rule in (encryption or {}).get("ServerSideEncryptionConfiguration", []):
            key = rule["ServerSideEncryptionByDefault"].get("KMSMasterKeyID")
            if isinstance(key, dict) and "Fn::GetAtt" in key:
                target = key["Fn::GetAtt"]
                logical_key = target[0] if isinstance(target, list) else target.split(".")[0]
                policy = stack.template["Resources"][logical_key]["Properties"]["KeyPolicy"]
                return stack.ref(logical_key, "Arn"), stack.resolve(policy)
        return None

    def group_policy(self, account: str, group: str) -> dict | None:
        stack = self.stacks[account]
        for resource in resources_of(stack, "AWS::SageMaker::ModelPackageGroup").values():
            props = resource["Properties"]
            if stack.resolve(props["ModelPackageGroupName"]) == group:
                return stack.resolve(props.get("ModelPackageGroupPolicy"))
        return None

    def trust_policy(self, role_arn: str) -> dict:
        stack, logical = self.role(role_arn)
        resource = stack.template["Resources"][logical]["Properties"]
        return stack.resolve(resource["AssumeRolePolicyDocument"])


# ---- decisions -----------------------------------------------------------------------------


def account_of_role(role_arn: str) -> str:
    return role_arn.split(":")[4]


def _principal_matches(statement: dict, role_arn: str) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, dict) or "AWS" not in principal:
        return False
    account = account_of_role(role_arn)
    accepted = {role_arn, account, f"arn:{PARTITION}:iam::{account}:root"}
    return any(p == "*" or p in accepted for p in _iam._as_list(principal["AWS"]))


def resource_policy_allows(policy: dict | None, role_arn: str, request: Authorization) -> bool:
    """Some statement of the resource (or key, or trust) policy allows `role_arn` this request
    and none denies it."""
    if not policy:
        return False
    context = (
        ("aws:PrincipalArn", role_arn),
        ("aws:PrincipalAccount", account_of_role(role_arn)),
        ("aws:SecureTransport", "true"),
        *request.context,
    )
    full = Authorization(request.action, request.resource, context)
    # A trust policy's statements name no Resource: the role itself is it.
    statements = [
        s if "Resource" in s or "NotResource" in s else {**s, "Resource": "*"}
        for s in _iam._as_list(policy["Statement"])
    ]
    matching = [
        s
        for s in statements
        if _principal_matches(s, role_arn) and _iam._statement_matches(s, full)
    ]
    if any(s["Effect"] == "Deny" for s in matching):
        return False
    return any(s["Effect"] == "Allow" for s in matching)


def _identity_allows(policies: list[dict], request: Authorization) -> bool:
    context = (("aws:SecureTransport", "true"), *request.context)
    return _iam.allowed(policies, Authorization(request.action, request.resource, context))


@dataclass(frozen=True)
class Check:
    """One authorization a call needs, with the resource's owner and the policy that must
    also allow it when that owner is another account (None: the identity policy alone)."""

    request: Authorization
    owner: str
    resource_policy: tuple[str, dict | None] | None = None  # (what it is, document)


S3_OBJECT_READS = {"GetObject", "HeadObject"}
S3_OBJECT_WRITES = {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}


def _in_account(request: Authorization, account: str) -> Authorization:
    """_iam.authorizations writes ARNs it builds from names in its fixed account: those
    resources are the caller's (ARNs taken from parameters keep their own account)."""
    resource = request.resource.replace(f":{DEFAULT_ACCOUNT}:", f":{account}:")
    return Authorization(request.action, resource, request.context)


def checks(
    accounts: Accounts, account: str, service: str, operation: str, params: dict
) -> list[Check]:
    """The authorizations one call made from `account` needs, with whose policies decide."""
    if service == "sts" and operation == "GetCallerIdentity":
        return []  # needs no permission
    if service == "sts" and operation == "AssumeRole":
        target = params["RoleArn"]
        request = Authorization("sts:AssumeRole", target)
        return [
            Check(request, account_of_role(target), ("trust policy", accounts.trust_policy(target)))
        ]
    found: list[Check] = []
    for request in authorizations(service, operation, params):
        request = _in_account(request, account)
        match = ARN_ACCOUNT.match(request.resource)
        owner = match.group(1) if match else account
        policy = None
        if service == "sagemaker" and operation == "ListModelPackages":
            group_arn = str(params.get("ModelPackageGroupName", ""))
            group_match = ARN_ACCOUNT.match(group_arn)
            if group_match and group_match.group(1) != account:
                owner = group_match.group(1)
                group = group_arn.rsplit("/", 1)[1]
                on_group = Authorization(
                    request.action,
                    f"arn:{PARTITION}:sagemaker:{REGION}:{owner}:model-package/{group}/*",
                )
                found.append(Check(request, account))  # identity: no resource-level permission
                found.append(
                    Check(
                        on_group,
                        owner,
                        ("model package group policy", accounts.group_policy(owner, group)),
                    )
                )
                continue
        if (
            request.resource.startswith(f"arn:{PARTITION}:sagemaker:")
            and "model-package/" in request.resource
        ):
            group = request.resource.split("model-package/", 1)[1].split("/")[0]
            policy = ("model package group policy", accounts.group_policy(owner, group))
        if service == "s3":
            bucket = params["Bucket"]
            where = accounts.bucket(bucket)
            owner = where[0].account if where else account
            policy = (
                f"bucket policy of {bucket}",
                accounts.bucket_policy(bucket) if where else None,
            )
            key = accounts.bucket_key(bucket) if where else None
            kms_action = (
                "kms:Decrypt"
                if operation in S3_OBJECT_READS
                else "kms:GenerateDataKey"
                if operation in S3_OBJECT_WRITES
                else None
            )
            if key and kms_action:
                via = (("kms:ViaService", f"s3.{REGION}.amazonaws.com"),)
                decrypt = Authorization(kms_action, key[0], via)
                found.append(
                    Check(decrypt, key[0].split(":")[4], (f"key policy of {key[0]}", key[1]))
                )
        found.append(Check(request, owner, policy if owner != account else None))
    return found


def denial(accounts: Accounts, role_arn: str, check: Check) -> str | None:
    """Why `role_arn` may not make this request (None: allowed)."""
    account = account_of_role(role_arn)
    if not _identity_allows(accounts.identity_policies(role_arn), check.request):
        return f"{role_arn}'s identity policy does not allow {check.request}"
    kms = check.request.action.startswith("kms:")
    if (check.owner != account or kms) and check.resource_policy is not None:
        what, document = check.resource_policy
        if not resource_policy_allows(document, role_arn, check.request):
            return f"the {what} (account {check.owner}) does not allow {role_arn} {check.request}"
    elif check.owner != account and check.request.action != "sts:AssumeRole":
        return f"{check.request} is in account {check.owner}: no resource policy grants {role_arn}"
    return None


def denials(accounts: Accounts, calls: list[tuple[str, str, str, dict]]) -> list[str]:
    """Each authorization some recorded call (role ARN, service, operation, params) needs
    and the layout's policies refuse, once, with the policy that refuses it."""
    missing: list[str] = []
    for role_arn, service, operation, params in calls:
        if (service, operation) in _iam.TOLERATED:
            continue
        for check in checks(accounts, account_of_role(role_arn), service, operation, params):
            why = denial(accounts, role_arn, check)
            if why and f"{why} (for {service}.{operation})" not in missing:
                missing.append(f"{why} (for {service}.{operation})")
    return missing


# ---- recording calls with the account and role that made them --------------------------------


Fake = Any  # (operation, params, original call) -> response


def record_role_calls(monkeypatch, roles_by_key: dict[str, str]):
    """(calls, fakes): every botocore call as (role ARN, service, operation, params), the role
    found from the call's access key (`roles_by_key`, filled as the test assumes roles).
    `fakes[(service, operation)]` answers a call: fake(client, operation, params, original)."""
    calls: list[tuple[str, str, str, dict]] = []
    fakes: dict[tuple[str, str], Fake] = {}
    original = BaseClient._make_api_call

    def make_api_call(client, operation, params):
        service = client.meta.service_model.service_name
        key = client._request_signer._credentials.get_frozen_credentials().access_key
        calls.append(
            (roles_by_key.get(key, f"unknown key {key}"), service, operation, dict(params))
        )
        fake = fakes.get((service, operation)) or fakes.get((service, "*"))
        if fake is None:
            return original(client, operation, params)
        validate_parameters(
            params, client.meta.service_model.operation_model(operation).input_shape
        )
        response = fake(client, operation, params, original)
        response.setdefault("ResponseMetadata", {"HTTPStatusCode": 200})
        return response

    monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)
    return calls, fakes
