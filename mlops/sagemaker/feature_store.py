"""The feature store on SageMaker: PutRecord/GetRecord, snapshots through Athena.

The feature group itself is CloudFormation (`model_deploy/feature-store.yml`, rendered
with the project's columns by `render_template`). Ingest calls the
sagemaker-featurestore-runtime `PutRecord` for each record, a few in parallel: the
records were checked before the first call, but SageMaker has no multi-record
transaction, so a failure part-way leaves the records already put (each one a valid
version; the error says how many). Snapshots run the point-in-time rule in Athena over
the offline store's Glue table: per record id, the latest version (by event time, then
write time) at or before the as-of time, dropped if that version is a delete.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mlops.core.errors import MlopsError, UsageError
from mlops.core.feature_store import (
    FeatureGroupSpec,
    IngestResult,
    Progress,
    Snapshot,
    check_as_of,
    parse_time,
)
from mlops.core.paths import REPO_ROOT

TEMPLATE = REPO_ROOT / "model_deploy" / "feature-store.yml"
WORKGROUP_ENV = "MLOPS_ATHENA_WORKGROUP"
BATCH = 1000  # records per progress line
DONE_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")


def event_time_text(value: pd.Timestamp) -> str:
    """yyyy-MM-ddTHH:mm:ss[.SSS]Z: the event-time forms Feature Store accepts (UTC)."""
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    millis = value.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def to_record(row: dict, spec: FeatureGroupSpec) -> list[dict[str, str]]:
    """A checked record as PutRecord's `Record`; missing values are left out, as the API wants."""
    out = []
    for name in spec.columns:
        value = row[name]
        if name == spec.event_time:
            text = event_time_text(pd.Timestamp(value))
        elif value is None or (isinstance(value, float) and value != value):
            continue
        elif spec.type_of(name) == "Integral":
            text = str(int(value))
        else:
            text = str(value)
        out.append({"FeatureName": name, "ValueAsString": text})
    return out


def from_record(record: list[dict[str, str]], spec: FeatureGroupSpec) -> dict:
    """GetRecord's `Record` back to typed values."""
    casts = {"Integral": int, "Fractional": float, "String": str}
    known = {d.name: casts[d.type] for d in spec.definitions}
    return {f["FeatureName"]: known.get(f["FeatureName"], str)(f["ValueAsString"]) for f in record}


def athena_name(column: str) -> str:
    """Glue lower-cases column names; quote them for Athena."""
    return '"' + column.lower().replace('"', '""') + '"'


def athena_point_in_time_sql(
    spec: FeatureGroupSpec, database: str, table: str, as_of: datetime, columns: list[str]
) -> str:
    """The same point-in-time rule as the local store, in Athena (Trino) SQL."""
    rid, et = athena_name(spec.record_id), athena_name(spec.event_time)
    cols = ", ".join(athena_name(c) for c in columns)
    cutoff = event_time_text(pd.Timestamp(as_of.astimezone(UTC)))
    return (
        f"SELECT {cols} FROM (\n"
        f"  SELECT *, ROW_NUMBER() OVER (PARTITION BY {rid} ORDER BY "
        f"from_iso8601_timestamp({et}) DESC, api_invocation_time DESC, write_time DESC) "
        "AS row_version\n"
        f'  FROM "{database}"."{table}"\n'
        f"  WHERE from_iso8601_timestamp({et}) <= from_iso8601_timestamp('{cutoff}')\n"
        f") WHERE row_version = 1 AND NOT is_deleted\nORDER BY {rid}"
    )


def earliest_sql(spec: FeatureGroupSpec, database: str, table: str) -> str:
    et = athena_name(spec.event_time)
    return (
        f"SELECT to_iso8601(min(from_iso8601_timestamp({et}))) "
        f'FROM "{database}"."{table}" WHERE NOT is_deleted'
    )


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (`!Ref x` -> {"Ref": "x"}), for rendering."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def render_template(spec: FeatureGroupSpec) -> str:
    """`model_deploy/feature-store.yml` with the project's feature definitions, as JSON."""
    template = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # a SafeLoader
    props = template["Resources"]["FeatureGroup"]["Properties"]
    props["FeatureDefinitions"] = [
        {"FeatureName": d.name, "FeatureType": d.type} for d in spec.definitions
    ]
    for name, value in (
        ("FeatureGroupName", spec.name),
        ("RecordIdentifierFeatureName", spec.record_id),
        ("EventTimeFeatureName", spec.event_time),
    ):
        template["Parameters"][name]["Default"] = value
    return json.dumps(template, indent=2) + "\n"


class SageMakerFeatureStore:
    """`mlops.core.feature_store.FeatureStore` on SageMaker Feature Store and Athena."""

    backend = "sagemaker"

    def __init__(
        self,
        spec: FeatureGroupSpec,
        sagemaker: Any,
        runtime: Any,
        athena: Any,
        workgroup: str,
        s3: Any = None,
        workers: int = 8,
        poll_seconds: float = 2.0,
    ):
        self.spec = spec
        self.sagemaker, self.runtime, self.athena, self.s3 = sagemaker, runtime, athena, s3
        self.workgroup, self.workers, self.poll_seconds = workgroup, workers, poll_seconds

    @classmethod
    def from_args(cls, spec: FeatureGroupSpec, args: argparse.Namespace) -> SageMakerFeatureStore:
        import boto3

        region = (
            getattr(args, "region", None)
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
        )
        if not region:
            raise UsageError("no AWS region: pass --region or set AWS_REGION")
        workgroup = (
            getattr(args, "athena_workgroup", None)
            or os.environ.get(WORKGROUP_ENV)
            or f"{spec.name}-features"
        )
        return cls(
            spec,
            boto3.client("sagemaker", region_name=region),
            boto3.client("sagemaker-featurestore-runtime", region_name=region),
            boto3.client("athena", region_name=region),
            workgroup,
            boto3.client("s3", region_name=region),
        )

    # --- ingest and get ------------------------------------------------------------

    def _put(self, record: list[dict[str, str]]) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.runtime.put_record(FeatureGroupName=self.spec.name, Record=record)
        except (ClientError, BotoCoreError) as exc:
            return str(exc)
        return None

    def ingest(self, records: pd.DataFrame, progress: Progress = print) -> IngestResult:
        rows = records.to_dict("records")
        put = 0
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for start in range(0, len(rows), BATCH):
                chunk = [to_record(r, self.spec) for r in rows[start : start + BATCH]]
                errors = [e for e in pool.map(self._put, chunk) if e]
                put += len(chunk) - len(errors)
                if errors:
                    raise MlopsError(
                        f"PutRecord failed for {len(errors)} record(s) of {len(rows)}; "
                        f"{put} were put and stay: {errors[0]}"
                    )
                progress(f"put {put}/{len(rows)} records into {self.spec.name}")
        # The online store cannot say cheaply which ids are new: report records only.
        return IngestResult(len(rows), new_ids=0, versions_added=len(rows))

    def get(self, record_id: str) -> dict | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.runtime.get_record(
                FeatureGroupName=self.spec.name, RecordIdentifierValueAsString=record_id
            )
        except ClientError as exc:
            raise MlopsError(f"GetRecord on {self.spec.name}: {exc}") from None
        record = answer.get("Record")
        return from_record(record, self.spec) if record else None

    # --- snapshot ------------------------------------------------------------------

    def offline_table(self) -> tuple[str, str]:
        described = self.sagemaker.describe_feature_group(FeatureGroupName=self.spec.name)
        catalog = described.get("OfflineStoreConfig", {}).get("DataCatalogConfig")
        if not catalog:
            raise MlopsError(f"feature group {self.spec.name} has no offline store Glue table")
        return catalog["Database"], catalog["TableName"]

    def run_query(self, sql: str, database: str) -> tuple[str, dict]:
        """Run one Athena query to completion: (query id, its final QueryExecution)."""
        started = self.athena.start_query_execution(
            QueryString=sql,
            QueryExecutionContext={"Database": database},
            WorkGroup=self.workgroup,
        )
        qid = started["QueryExecutionId"]
        while True:
            status = self.athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
            state = status["Status"]["State"]
            if state in DONE_STATES:
                break
            time.sleep(self.poll_seconds)
        if state != "SUCCEEDED":
            reason = status["Status"].get("StateChangeReason", "no reason given")
            raise MlopsError(f"Athena query {qid} {state}: {reason}")
        return qid, status

    def query(self, sql: str, database: str) -> list[list[str]]:
        """A small query's rows as text, header row first (paged through the API)."""
        qid, _ = self.run_query(sql, database)
        rows: list[list[str]] = []
        pages = self.athena.get_paginator("get_query_results")
        for page in pages.paginate(QueryExecutionId=qid):
            for row in page["ResultSet"]["Rows"]:
                rows.append([cell.get("VarCharValue", "") for cell in row["Data"]])
        return rows

    def download_result(self, status: dict, columns: list[str], dest: Path) -> int:
        """Athena's result CSV, streamed from S3 (a million rows would be a thousand
        GetQueryResults pages), with the config's column spelling as its header."""
        location = status["ResultConfiguration"]["OutputLocation"]
        bucket, _, key = location.removeprefix("s3://").partition("/")
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
        lines = (line.decode("utf-8") for line in body.iter_lines(keepends=True))
        reader = csv.reader(lines)
        next(reader, None)  # Athena's header: Glue's lower-case names
        with dest.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            rows = 0
            for row in reader:
                writer.writerow(row)
                rows += 1
        return rows

    def snapshot(self, as_of: datetime, out: Path, training: bool = False) -> Snapshot:
        if out.suffix.lower() == ".parquet":
            raise UsageError("--backend sagemaker writes CSV snapshots: use a .csv --out")
        database, table = self.offline_table()
        first = self.query(earliest_sql(self.spec, database, table), database)
        earliest = first[1][0] if len(first) > 1 else ""
        check_as_of(
            as_of, parse_time(earliest, "earliest event time") if earliest else None, self.spec.name
        )
        columns = list(self.spec.value_columns) if training else self.spec.columns
        sql = athena_point_in_time_sql(self.spec, database, table, as_of, columns)
        _, status = self.run_query(sql, database)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            rows = self.download_result(status, columns, tmp)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        with out.open("rb") as f:
            sha = hashlib.file_digest(f, "sha256").hexdigest()
        return Snapshot(
            as_of=as_of,
            query=sql,
            rows=rows,
            sha256=sha,
            path=out,
            backend=self.backend,
            feature_group=self.spec.name,
            extra={"athena_workgroup": self.workgroup},
        )
