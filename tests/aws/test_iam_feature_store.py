"""The build role and the feature store: with bootstrap's FeatureStoreUserPolicyArn set, the
BuildRole holds feature-store.yml's managed policy, and the two together allow what
`mlops pipeline run --backend sagemaker --from-feature-store` does (the Athena snapshot,
then the run's uploads); unset, the role has no access to the store.

Evaluated offline with tests/aws/_iam.py against both templates' own policy documents.
The build workflow does not run this step today (it trains on $MLOPS_DATA_FILE), so the
calls are listed here from mlops/sagemaker/feature_store.py and pipeline_run.py, with
the ones Athena makes with the caller's credentials; that Athena needs no more on a real
account stays unverified.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _iam import ACCOUNT, BUCKET, REGION, Authorization, Stack, allowed, role_policies
from cfnlint.decode.cfn_yaml import loads as load_cfn_yaml

from mlops.core.config import load_config

GROUP = load_config().model_package_group  # the fixture project's (tests/conftest.py)
REPO_ROOT = Path(__file__).resolve().parents[2]
POLICY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/{GROUP}-features-FeatureStoreUserPolicy-X1"
TABLE = f"arn:aws:glue:{REGION}:{ACCOUNT}:table/sagemaker_featurestore/{GROUP}_1764547200"
SHA = "ab" * 32


class FeatureStoreStack(Stack):
    """feature-store.yml: `Ref AthenaWorkGroup` is the workgroup's name."""

    def ref(self, name: str, attribute: str | None = None) -> str:
        if name == "AthenaWorkGroup":
            return f"{self.parameters['FeatureGroupName']}-features"
        return super().ref(name, attribute)


def bootstrap(policy_arn: str) -> Stack:
    parameters = {
        "GitHubOrg": "octo",
        "GitHubRepo": "models",
        "DefaultBranch": "main",
        "ModelPackageGroupName": GROUP,
        "ExistingOIDCProviderArn": "",
        "DispatchEventType": "model-approved",
        "FeatureStoreUserPolicyArn": policy_arn,
    }
    template = load_cfn_yaml((REPO_ROOT / "model_deploy" / "bootstrap.yml").read_text())
    return Stack(
        template, parameters, {"CreateOIDCProvider": True, "UseFeatureStore": bool(policy_arn)}
    )


def feature_store_policy() -> dict:
    template = load_cfn_yaml((REPO_ROOT / "model_deploy" / "feature-store.yml").read_text())
    stack = FeatureStoreStack(
        template,
        {
            "FeatureGroupName": GROUP,
            "ArtifactBucket": BUCKET,
            "OfflineStorePrefix": template["Parameters"]["OfflineStorePrefix"]["Default"],
        },
    )
    return stack.resolve(template["Resources"]["FeatureStoreUserPolicy"]["Properties"])[
        "PolicyDocument"
    ]


def build_role_policies(policy_arn: str) -> list[dict]:
    """The BuildRole's inline policies, and the managed ones it holds that we can read."""
    stack = bootstrap(policy_arn)
    role = stack.template["Resources"]["BuildRole"]["Properties"]
    condition, held, not_held = role["ManagedPolicyArns"]["Fn::If"]
    chosen = held if stack.conditions[condition] else not_held
    managed = [] if chosen == {"Ref": "AWS::NoValue"} else stack.resolve(chosen)
    assert managed in ([], [POLICY_ARN])
    return role_policies(stack, "BuildRole") + [feature_store_policy() for _ in managed]


def arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


# The snapshot (mlops/sagemaker/feature_store.py), as IAM checks.
SNAPSHOT = [
    Authorization("sagemaker:DescribeFeatureGroup", arn("sagemaker", f"feature-group/{GROUP}")),
    *(
        Authorization(f"athena:{action}", arn("athena", f"workgroup/{GROUP}-features"))
        for action in ("StartQueryExecution", "GetQueryExecution", "GetQueryResults")
    ),
    # Athena runs the query with the caller's permissions: the Glue table, the offline
    # store's objects, and the result file it writes and the snapshot then reads.
    *(Authorization(f"glue:{a}", TABLE) for a in ("GetTable", "GetPartitions")),
    Authorization("glue:GetDatabase", arn("glue", "database/sagemaker_featurestore")),
    Authorization("s3:GetObject", f"arn:aws:s3:::{BUCKET}/feature-store/{ACCOUNT}/x.parquet"),
    Authorization("s3:ListBucket", f"arn:aws:s3:::{BUCKET}"),
    Authorization("s3:PutObject", f"arn:aws:s3:::{BUCKET}/athena-results/{GROUP}/q1.csv"),
    Authorization("s3:GetObject", f"arn:aws:s3:::{BUCKET}/athena-results/{GROUP}/q1.csv"),
]
# The run (mlops/sagemaker/pipeline_run.py): the snapshot file and its query, under data/.
RUN = [
    Authorization("s3:PutObject", f"arn:aws:s3:::{BUCKET}/{GROUP}/data/{SHA}/snapshot.csv"),
    Authorization(
        "s3:PutObject",
        f"arn:aws:s3:::{BUCKET}/{GROUP}/data/feature-snapshot-queries/{SHA}.sql",
    ),
]


def test_with_the_policy_the_build_role_can_train_from_the_store():
    policies = build_role_policies(POLICY_ARN)
    assert [str(c) for c in SNAPSHOT + RUN if not allowed(policies, c)] == []


@pytest.mark.parametrize("check", SNAPSHOT[:4], ids=str)
def test_without_it_the_build_role_has_no_access_to_the_store(check):
    policies = build_role_policies("")
    assert not allowed(policies, check)
    assert all(allowed(policies, c) for c in RUN)  # a run on a CSV is as before
