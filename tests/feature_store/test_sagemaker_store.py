"""The SageMaker feature store against botocore's service models (Stubber), and its template.

Stubber checks every request against the real API model (parameter names, types,
required fields) and answers with shapes the model allows. What it cannot show: that
Athena accepts the SQL, that Feature Store accepts the template, that the IAM policy is
enough on a real account. Those stay unverified here.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import boto3
import pandas as pd
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from cfnlint.api import ManualArgs, lint

from mlops.core.config import load_config
from mlops.core.errors import MlopsError, UsageError
from mlops.core.feature_store import check_records, feature_group_spec
from mlops.core.paths import REPO_ROOT
from mlops.sagemaker.feature_store import (
    SageMakerFeatureStore,
    athena_point_in_time_sql,
    render_template,
)

from .conftest import EVENT_TIME, RECORD_ID, SUITE, records

REGION = "us-east-1"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
DB, TABLE = "sagemaker_featurestore", "fs_fixture_1764547200"


@pytest.fixture
def spec(fs_config):
    return feature_group_spec(load_config(fs_config), SUITE)


@pytest.fixture
def aws(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    clients = {
        name: boto3.client(name, region_name=REGION)
        for name in ("sagemaker", "sagemaker-featurestore-runtime", "athena", "s3")
    }
    stubs = {name: Stubber(client) for name, client in clients.items()}
    for stub in stubs.values():
        stub.activate()
    yield clients, stubs
    for stub in stubs.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


def store_of(spec, aws) -> SageMakerFeatureStore:
    clients, _ = aws
    return SageMakerFeatureStore(
        spec,
        clients["sagemaker"],
        clients["sagemaker-featurestore-runtime"],
        clients["athena"],
        workgroup="fs-fixture-features",
        s3=clients["s3"],
        workers=1,  # Stubber answers in order: keep the calls in order
        poll_seconds=0,
    )


def test_ingest_puts_each_record_with_typed_values(spec, aws):
    _, stubs = aws
    df = records(range(3), "2026-01-01T10:00:00.250Z")
    checked = check_records(df, spec, NOW)
    for i in range(3):
        stubs["sagemaker-featurestore-runtime"].add_response(
            "put_record",
            {},
            {
                "FeatureGroupName": "fs-fixture",
                "Record": [
                    {"FeatureName": RECORD_ID, "ValueAsString": f"c{i}"},
                    {"FeatureName": EVENT_TIME, "ValueAsString": "2026-01-01T10:00:00.250Z"},
                    {"FeatureName": "AGE", "ValueAsString": str(int(df.loc[i, "AGE"]))},
                    {"FeatureName": "SIZE", "ValueAsString": str(df.loc[i, "SIZE"])},
                    {"FeatureName": "SCORE", "ValueAsString": str(df.loc[i, "SCORE"])},
                ],
            },
        )
    result = store_of(spec, aws).ingest(checked, progress=lambda _: None)
    assert result.records == 3


def test_a_failed_put_stops_and_says_how_many_were_put(spec, aws):
    _, stubs = aws
    stubs["sagemaker-featurestore-runtime"].add_response("put_record", {}, None)
    stubs["sagemaker-featurestore-runtime"].add_client_error(
        "put_record", "ValidationError", "bad value", http_status_code=400
    )
    checked = check_records(records(range(2), "2026-01-01"), spec, NOW)
    with pytest.raises(MlopsError, match=r"failed for 1 record\(s\) of 2; 1 were put"):
        store_of(spec, aws).ingest(checked, progress=lambda _: None)


def test_get_returns_typed_values_or_none(spec, aws):
    _, stubs = aws
    rt = stubs["sagemaker-featurestore-runtime"]
    record = [
        {"FeatureName": RECORD_ID, "ValueAsString": "c1"},
        {"FeatureName": EVENT_TIME, "ValueAsString": "2026-01-01T00:00:00Z"},
        {"FeatureName": "AGE", "ValueAsString": "41"},
        {"FeatureName": "SIZE", "ValueAsString": "2.5"},
        {"FeatureName": "SCORE", "ValueAsString": "30.5"},
    ]
    expected = {"FeatureGroupName": "fs-fixture", "RecordIdentifierValueAsString": "c1"}
    rt.add_response("get_record", {"Record": record}, expected)
    rt.add_response("get_record", {}, {**expected, "RecordIdentifierValueAsString": "zz"})
    store = store_of(spec, aws)
    assert store.get("c1") == {
        RECORD_ID: "c1",
        EVENT_TIME: "2026-01-01T00:00:00Z",
        "AGE": 41,
        "SIZE": 2.5,
        "SCORE": 30.5,
    }
    assert store.get("zz") is None


RESULTS = "s3://bucket/athena-results/fs-fixture"


def _athena_query(stubs, qid: str, rows: list[list[str]] | None = None, csv_body: bytes = b""):
    """One query: its rows through GetQueryResults, or its result file through S3."""
    athena = stubs["athena"]
    athena.add_response(
        "start_query_execution",
        {"QueryExecutionId": qid},
        {
            "QueryString": ANY,
            "QueryExecutionContext": {"Database": DB},
            "WorkGroup": "fs-fixture-features",
        },
    )
    athena.add_response(
        "get_query_execution",
        {"QueryExecution": {"QueryExecutionId": qid, "Status": {"State": "RUNNING"}}},
        {"QueryExecutionId": qid},
    )
    done = {
        "QueryExecutionId": qid,
        "Status": {"State": "SUCCEEDED"},
        "ResultConfiguration": {"OutputLocation": f"{RESULTS}/{qid}.csv"},
    }
    athena.add_response("get_query_execution", {"QueryExecution": done}, {"QueryExecutionId": qid})
    if rows is not None:
        result_rows = [{"Data": [{"VarCharValue": v} for v in row]} for row in rows]
        athena.add_response(
            "get_query_results", {"ResultSet": {"Rows": result_rows}}, {"QueryExecutionId": qid}
        )
        return
    body = StreamingBody(io.BytesIO(csv_body), len(csv_body))
    stubs["s3"].add_response(
        "get_object",
        {"Body": body},
        {"Bucket": "bucket", "Key": f"athena-results/fs-fixture/{qid}.csv"},
    )


def _describe(stubs):
    stubs["sagemaker"].add_response(
        "describe_feature_group",
        {
            "FeatureGroupArn": "arn:aws:sagemaker:us-east-1:123456789012:feature-group/fs-fixture",
            "FeatureGroupName": "fs-fixture",
            "RecordIdentifierFeatureName": RECORD_ID,
            "EventTimeFeatureName": EVENT_TIME,
            "FeatureDefinitions": [{"FeatureName": RECORD_ID, "FeatureType": "String"}],
            "CreationTime": datetime(2026, 1, 1),
            "NextToken": "",
            "OfflineStoreConfig": {
                "S3StorageConfig": {"S3Uri": "s3://bucket/feature-store"},
                "DataCatalogConfig": {
                    "TableName": TABLE,
                    "Catalog": "AwsDataCatalog",
                    "Database": DB,
                },
            },
        },
        {"FeatureGroupName": "fs-fixture"},
    )


def test_snapshot_through_athena_writes_the_config_columns(spec, aws, tmp_path):
    _, stubs = aws
    _describe(stubs)
    _athena_query(stubs, "q-earliest", [["_col0"], ["2026-01-01T00:00:00.000Z"]])
    # Athena's result file: every value quoted, Glue's lower-case header.
    _athena_query(
        stubs,
        "q-snapshot",
        csv_body=b'"age","size","score"\n"41","2.5","30.5"\n"50","3.0","37.0"\n',
    )
    out = tmp_path / "snap.csv"
    snap = store_of(spec, aws).snapshot(datetime(2026, 2, 1, tzinfo=UTC), out, training=True)
    df = pd.read_csv(out)
    assert df.columns.tolist() == ["AGE", "SIZE", "SCORE"]
    assert df["AGE"].tolist() == [41, 50] and snap.rows == 2
    assert "from_iso8601_timestamp('2026-02-01T00:00:00Z')" in snap.query


def test_snapshot_before_the_first_record_is_refused(spec, aws, tmp_path):
    _, stubs = aws
    _describe(stubs)
    _athena_query(stubs, "q-earliest", [["_col0"], ["2026-01-01T00:00:00.000Z"]])
    with pytest.raises(UsageError, match="before the first record"):
        store_of(spec, aws).snapshot(datetime(2025, 1, 1, tzinfo=UTC), tmp_path / "s.csv")
    assert not (tmp_path / "s.csv").exists()


def test_failed_athena_query_is_one_line(spec, aws, tmp_path):
    _, stubs = aws
    _describe(stubs)
    stubs["athena"].add_response("start_query_execution", {"QueryExecutionId": "q1"}, None)
    stubs["athena"].add_response(
        "get_query_execution",
        {
            "QueryExecution": {
                "QueryExecutionId": "q1",
                "Status": {"State": "FAILED", "StateChangeReason": "TABLE_NOT_FOUND"},
            }
        },
        {"QueryExecutionId": "q1"},
    )
    with pytest.raises(MlopsError, match="Athena query q1 FAILED: TABLE_NOT_FOUND"):
        store_of(spec, aws).snapshot(NOW, tmp_path / "s.csv")


def test_athena_sql_applies_the_point_in_time_rule(spec):
    sql = athena_point_in_time_sql(spec, DB, TABLE, datetime(2026, 2, 1, tzinfo=UTC), spec.columns)
    assert 'ROW_NUMBER() OVER (PARTITION BY "customer" ORDER BY ' in sql
    assert 'from_iso8601_timestamp("updated_at") DESC, api_invocation_time DESC' in sql
    assert "<= from_iso8601_timestamp('2026-02-01T00:00:00Z')" in sql
    # The delete filter comes after the ranking: a deleted latest version hides the record.
    assert sql.index("row_version = 1 AND NOT is_deleted") > sql.index("ROW_NUMBER()")
    assert f'FROM "{DB}"."{TABLE}"' in sql


# ---- the CloudFormation template ---------------------------------------------------------

LINT = ManualArgs(regions=["us-east-1", "eu-west-1"])


# The committed template is linted with the others (tests/aws/test_templates.py).
def test_rendered_template_has_the_projects_columns_and_passes_cfn_lint(spec):
    text = render_template(spec)
    assert [str(m) for m in lint(text, config=LINT)] == []
    template = json.loads(text)
    group = template["Resources"]["FeatureGroup"]["Properties"]
    assert group["FeatureDefinitions"] == [
        {"FeatureName": d.name, "FeatureType": d.type} for d in spec.definitions
    ]
    assert group["OnlineStoreConfig"] == {"EnableOnlineStore": True}
    assert group["OfflineStoreConfig"]["DisableGlueTableCreation"] is False
    assert template["Parameters"]["RecordIdentifierFeatureName"]["Default"] == RECORD_ID


# Every API call mlops/sagemaker/feature_store.py makes, as the IAM action it needs.
CALLED = {
    "sagemaker:PutRecord",
    "sagemaker:GetRecord",
    "sagemaker:DescribeFeatureGroup",
    "athena:StartQueryExecution",
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "s3:GetObject",
}


def test_user_policy_grants_what_the_code_calls_and_no_wildcard_actions(spec):
    import re

    source = (REPO_ROOT / "mlops" / "sagemaker" / "feature_store.py").read_text()
    calls = set(re.findall(r"self\.(?:runtime|athena|sagemaker|s3)\.(\w+)\(", source))
    calls = (calls - {"get_paginator"}) | set(re.findall(r'get_paginator\("(\w+)"\)', source))
    camel = {"".join(p.title() for p in c.split("_")) for c in calls}
    assert camel == {a.split(":")[1] for a in CALLED}  # the list above is complete

    policy = json.loads(render_template(spec))["Resources"]["FeatureStoreUserPolicy"]
    granted = {
        action
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
    }
    assert not CALLED - granted
    assert not [a for a in granted if "*" in a]


def test_template_command_writes_the_rendered_template(fs_config, tmp_path, capsys):
    from mlops.cli import run

    out = tmp_path / "fs.json"
    assert run(["features", "template", "--out", str(out), "--config", str(fs_config)]) == 0
    group = json.loads(out.read_text())["Resources"]["FeatureGroup"]["Properties"]
    names = [d["FeatureName"] for d in group["FeatureDefinitions"]]
    assert names == [RECORD_ID, EVENT_TIME, "AGE", "SIZE", "SCORE"]
