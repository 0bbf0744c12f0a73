"""`mlops pipeline run --backend sagemaker --from-feature-store`: the snapshot's as-of, rows,
sha256 and query (its hash, and the S3 object holding it) reach the registered version's
metadata through pipeline parameters; runs without the store send none of them."""

from __future__ import annotations

import argparse
import hashlib

import boto3
import pytest
from _sagemaker_helpers import BUCKET, REGION, ROLE_ARN, pipeline_steps

import mlops.sagemaker.pipeline_run as pipeline_run
from mlops.core.lineage import sha256_file
from mlops.sagemaker.pipeline_run import SageMakerPipelineRunner
from mlops.sagemaker.registry import lineage_from_metadata

QUERY = (
    'SELECT "AGE", "SIZE", "SCORE" FROM (SELECT *, row_number() OVER (PARTITION BY '
    '"customer" ORDER BY "updated_at" DESC) AS version FROM "db"."t" WHERE "updated_at" '
    "<= '2026-02-01T00:00:00Z' AND NOT is_deleted) WHERE version = 1"
)
AS_OF = "2026-02-01T00:00:00Z"
PARAMETERS = {
    "FeatureSnapshotFeatureGroup": "feature_snapshot.feature_group",
    "FeatureSnapshotAsOf": "feature_snapshot.as_of",
    "FeatureSnapshotRows": "feature_snapshot.rows",
    "FeatureSnapshotSha256": "feature_snapshot.sha256",
    "FeatureSnapshotQuerySha256": "feature_snapshot.query_sha256",
    "FeatureSnapshotQueryUri": "feature_snapshot.query_uri",
}


def test_register_step_records_the_snapshot_parameters_default_none(definition):
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert {name: defaults[name] for name in PARAMETERS} == dict.fromkeys(PARAMETERS, "none")
    register = next(s for s in pipeline_steps(definition).values() if s["Type"] == "RegisterModel")
    metadata = register["Arguments"]["CustomerMetadataProperties"]
    for name, key in PARAMETERS.items():
        assert metadata[key] == {"Get": f"Parameters.{name}"}


@pytest.fixture
def run_on_moto(aws, rendered, target, monkeypatch):
    """A SageMaker runner against moto (the session's render reused), and what it started."""
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    monkeypatch.setattr(
        "mlops.sagemaker.pipeline_definition.render_pipeline", lambda *_a, **_k: rendered
    )
    starts: list[dict] = []
    sagemaker.meta.events.register(
        "provide-client-params.sagemaker.StartPipelineExecution",
        lambda params, **_: starts.append(dict(params)),
    )
    aws_clients = (sagemaker, s3, boto3.client("cloudformation"))
    monkeypatch.setattr(pipeline_run, "clients", lambda region: aws_clients)
    args = argparse.Namespace(
        data=None,  # --from-feature-store: the runner is handed the snapshot file
        region=REGION,
        role_arn=ROLE_ARN,
        bucket=BUCKET,
        git_commit="0123abcd" * 5,
        wait=False,
        poll_seconds=0.0,
    )

    def run(cfg, data, extra=None) -> dict[str, str]:
        assert SageMakerPipelineRunner(cfg, args).run(str(data), extra_lineage=extra) == 0
        return {p["Name"]: p["Value"] for p in starts[-1]["PipelineParameters"]}

    return run, s3


def test_a_run_from_a_snapshot_records_it_and_stores_its_query(cfg, data_csv, run_on_moto, capsys):
    run, s3 = run_on_moto
    digest = sha256_file(data_csv)
    snapshot = {"as_of": AS_OF, "rows": 10000, "sha256": digest, "query": QUERY}
    snapshot["feature_group"] = "energy-costs"
    params = run(cfg, data_csv, {"feature_snapshot": {**snapshot, "backend": "sagemaker"}})

    query_digest = hashlib.sha256(QUERY.encode()).hexdigest()
    query_uri = f"s3://{BUCKET}/energy-costs/data/feature-snapshot-queries/{query_digest}.sql"
    assert {name: params[name] for name in PARAMETERS} == {
        "FeatureSnapshotFeatureGroup": "energy-costs",
        "FeatureSnapshotAsOf": AS_OF,
        "FeatureSnapshotRows": "10000",
        "FeatureSnapshotSha256": digest,
        "FeatureSnapshotQuerySha256": query_digest,
        "FeatureSnapshotQueryUri": query_uri,
    }
    assert params["DataSha256"] == digest  # the file the run trained on is the snapshot
    assert params["InputDataUri"].endswith(f"/{digest}/{data_csv.name}")
    key = query_uri.removeprefix(f"s3://{BUCKET}/")
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode() == QUERY
    assert (
        f"snapshot: as of {AS_OF}, 10000 rows; its query in {query_uri}" in capsys.readouterr().out
    )

    # What the registry reads back: the same snapshot as the local backend records it.
    metadata = {key: params[name] for name, key in PARAMETERS.items()}
    lineage = lineage_from_metadata({**metadata, "git_commit": "c", "data_sha256": digest})
    assert lineage["feature_snapshot"] == {
        "feature_group": "energy-costs",
        "as_of": AS_OF,
        "rows": 10000,
        "sha256": digest,
        "query_sha256": query_digest,
        "query_uri": query_uri,
    }
    assert not any(k.startswith("feature_snapshot.") for k in lineage)
    # ...and the PR report names it as it does a local version's.
    from mlops.core.report import snapshot_text

    cell = snapshot_text(lineage["feature_snapshot"])
    assert cell.startswith(f"`energy-costs` as of {AS_OF}, 10000 rows, sha256 ")


def test_a_run_without_the_store_sends_no_snapshot_parameters(cfg, data_csv, run_on_moto):
    run, _ = run_on_moto
    params = run(cfg, data_csv)
    assert set(params) == {"InputDataUri", "GitCommit", "PrNumber", "DataSha256"}
    defaults = lineage_from_metadata(dict.fromkeys(PARAMETERS.values(), "none"))
    assert "feature_snapshot" not in defaults and not any("feature_snapshot" in k for k in defaults)
