"""The smoke test of an endpoint: real held-out rows through a real sagemaker-runtime client.

The same code tests a local endpoint (`endpoint_url` = the local server) and a
SageMaker endpoint (`endpoint_url=None`: boto3's own endpoint and credentials).
It sends each row alone (timing every request) and then all rows in one request,
and checks: HTTP 200, exactly one finite prediction per row, the batch agrees
with the single-row answers, and the MAPE against the true prices is within the
configured tolerance (`smoke_test` in model_build/config.yaml). A binary classifier
is asked for labels too (`Accept: application/json; labels=true`), and the share of
rows whose label is the true one must reach `smoke_test.min_accuracy`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlops.core.config import Config
from mlops.core.errors import MlopsError
from mlops.core.registry import ModelVersion
from mlops.core.run_layout import local_held_out, read_held_out
from stepkit.artifact import archive_manifest

LOCAL_REGION = "us-east-1"


@dataclass(frozen=True)
class SmokeRows:
    """Feature rows (as CSV lines, no target) and their true targets (numbers or labels)."""

    lines: list[str]
    targets: list[float | str]
    source: str


@dataclass(frozen=True)
class AccuracyFloor:
    """A classifier's smoke criterion: labels right on at least this share of the rows."""

    min_accuracy: float


def smoke_limit(cfg: Config) -> float | AccuracyFloor:
    """What the smoke test checks for the config's task: the max MAPE (%) or an accuracy floor."""
    if cfg.task == "binary_classification":
        return AccuracyFloor(cfg.smoke_test.min_accuracy)
    return cfg.smoke_test.max_mape_pct


@dataclass(frozen=True)
class SmokeResult:
    passed: bool
    reason: str
    endpoint_name: str
    rows: int
    mape_pct: float | None = None
    max_mape_pct: float | None = None
    p50_ms: float | None = None
    max_ms: float | None = None
    accuracy: float | None = None
    min_accuracy: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        head = "smoke test passed" if self.passed else f"smoke test FAILED: {self.reason}"
        figures = []
        if self.mape_pct is not None:
            figures.append(f"MAPE {self.mape_pct:.2f}% (max {self.max_mape_pct:g}%)")
        if self.accuracy is not None:
            figures.append(f"accuracy {self.accuracy:.3f} (min {self.min_accuracy:g})")
        if self.p50_ms is not None:
            figures.append(f"latency p50 {self.p50_ms:.1f} ms, max {self.max_ms:.1f} ms")
        return f"{head}: {self.rows} rows" + (", " + ", ".join(figures) if figures else "")


def smoke_rows(frame: pd.DataFrame, features: list[str], target: str, source: str) -> SmokeRows:
    """Held-out rows (text, as the input had them) as CSV request lines and their targets;
    a row without a target cannot be judged and is left out."""
    missing = [c for c in [*features, target] if c not in frame.columns]
    if missing:
        raise MlopsError(f"{source} lacks column(s) {missing}")
    frame = frame[frame[target].astype(str).str.strip() != ""]
    if frame.empty:
        raise MlopsError(f"no rows with a target in {source}")
    lines = []
    for values in frame[features].itertuples(index=False, name=None):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(values)  # quotes text with commas
        lines.append(buffer.getvalue())
    return SmokeRows(lines, [_target(v) for v in frame[target]], source)


def rows_for_version(version: ModelVersion, home: Path, rows: int) -> SmokeRows:
    """The first `rows` of the version's held-out rows (the run that trained it), with the
    features its model expects, in its order (from the model's manifest)."""
    try:
        manifest = archive_manifest(Path(version.model_uri))
    except (OSError, KeyError, ValueError, RuntimeError, tarfile.TarError) as exc:
        raise MlopsError(f"cannot read model version {version.version}'s manifest: {exc}") from None
    folder = local_held_out(version, home)
    frame = read_held_out(folder, rows)
    return smoke_rows(frame, manifest["features"], manifest["target"], str(folder))


def _target(text: str) -> float | str:
    """A number for a regression target, the label's text for a classifier's."""
    try:
        return float(text)
    except ValueError:
        return text.strip()


def label_key(value: object) -> str:
    """A label compared as text: 1, 1.0 and "1" are the same label."""
    try:
        number = float(str(value))
    except ValueError:
        return str(value).strip()
    return str(int(number)) if number.is_integer() else repr(number)


def runtime_client(endpoint_url: str | None, region: str | None = None) -> Any:
    """A sagemaker-runtime client: for a local URL with placeholder credentials (the local
    server does not check signatures), for None the real service with your AWS setup."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30
    )
    if endpoint_url is None:
        return boto3.client("sagemaker-runtime", region_name=region, config=config)
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=endpoint_url,
        region_name=region or LOCAL_REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=config,
    )


def parse_predictions(body: bytes, content_type: str) -> list[float]:
    """Predictions from a JSON `{"predictions": [...]}` (or a bare list) or CSV response."""
    text = body.decode("utf-8")
    if "json" in content_type:
        payload = json.loads(text)
        values = payload["predictions"] if isinstance(payload, dict) else payload
        return [float(v) for v in values]
    return [float(v) for line in text.splitlines() for v in line.split(",") if v.strip()]


def mape_pct(predictions: list[float], targets: list[float]) -> float:
    """Mean absolute percentage error over the rows whose target is not zero."""
    pairs = [(p, t) for p, t in zip(predictions, targets, strict=True) if t != 0]
    if not pairs:
        raise MlopsError("every target is zero: MAPE is undefined")
    return 100.0 * sum(abs(p - t) / abs(t) for p, t in pairs) / len(pairs)


LABELS_ACCEPT = "application/json; labels=true"


def _invoke(
    client: Any, endpoint_name: str, body: str, labels: list[str] | None = None
) -> tuple[list[float], float]:
    """Predictions and milliseconds; with `labels` given, the answer's labels are appended to it."""
    start = time.perf_counter()
    accept = "application/json" if labels is None else LABELS_ACCEPT
    response = client.invoke_endpoint(
        EndpointName=endpoint_name, ContentType="text/csv", Accept=accept, Body=body
    )
    payload = response["Body"].read()
    elapsed_ms = (time.perf_counter() - start) * 1000
    status = response["ResponseMetadata"]["HTTPStatusCode"]
    if status != 200:
        raise MlopsError(f"HTTP {status}")
    if labels is not None:
        answer = json.loads(payload.decode("utf-8"))
        if not isinstance(answer, dict) or "labels" not in answer:
            raise MlopsError(f"no labels in the answer to Accept: {LABELS_ACCEPT}")
        labels.extend(str(label) for label in answer["labels"])
    return parse_predictions(payload, response.get("ContentType", "")), elapsed_ms


def run_smoke_test(
    client: Any, endpoint_name: str, rows: SmokeRows, max_mape_pct: float | AccuracyFloor
) -> SmokeResult:
    """Send the rows one by one, then together; never raises for a failing endpoint.

    `max_mape_pct` is the regression's limit, or an AccuracyFloor for a classifier."""
    from botocore.exceptions import BotoCoreError, ClientError

    n = len(rows.lines)
    floor = max_mape_pct if isinstance(max_mape_pct, AccuracyFloor) else None
    limits = {"min_accuracy": floor.min_accuracy} if floor else {"max_mape_pct": max_mape_pct}

    def failed(reason: str, **figures: float) -> SmokeResult:
        return SmokeResult(False, reason, endpoint_name, n, **limits, **figures)

    singles, latencies = [], []
    labels: list[str] | None = [] if floor else None
    try:
        for index, line in enumerate(rows.lines, 1):
            predictions, ms = _invoke(client, endpoint_name, line, labels)
            if len(predictions) != 1:
                return failed(f"row {index}: {len(predictions)} predictions for one row")
            singles.append(predictions[0])
            latencies.append(ms)
        batch, _ = _invoke(client, endpoint_name, "\n".join(rows.lines))
    except ClientError as exc:
        return failed(f"request rejected: {exc}")
    except (BotoCoreError, MlopsError, OSError, ValueError, KeyError) as exc:
        return failed(f"request failed: {type(exc).__name__}: {exc}")
    latency = {"p50_ms": statistics.median(latencies), "max_ms": max(latencies)}
    if not all(math.isfinite(p) for p in singles + batch):
        return failed("a prediction is not a finite number", **latency)
    if len(batch) != n:
        return failed(f"{len(batch)} predictions for a batch of {n} rows", **latency)
    if any(abs(a - b) > 1e-6 * max(1.0, abs(a)) for a, b in zip(singles, batch, strict=True)):
        return failed("batch predictions differ from single-row predictions", **latency)
    if floor is not None:
        return accuracy_result(endpoint_name, rows, labels or [], floor, latency)
    error = mape_pct(singles, rows.targets)
    if error > max_mape_pct:
        return failed(f"MAPE {error:.2f}% exceeds {max_mape_pct:g}%", mape_pct=error, **latency)
    return SmokeResult(True, "", endpoint_name, n, error, max_mape_pct, **latency)


def accuracy_result(
    endpoint_name: str, rows: SmokeRows, labels: list[str], floor: AccuracyFloor, latency: dict
) -> SmokeResult:
    """The classifier's verdict: the share of rows whose answered label is the true one."""
    n = len(rows.lines)
    if len(labels) != n:
        reason = f"{len(labels)} labels for {n} rows"
        return SmokeResult(False, reason, endpoint_name, n, min_accuracy=floor.min_accuracy)
    right = sum(label_key(a) == label_key(t) for a, t in zip(labels, rows.targets, strict=True))
    accuracy = right / n
    passed = accuracy >= floor.min_accuracy
    reason = "" if passed else f"accuracy {accuracy:.3f} is below {floor.min_accuracy:g}"
    return SmokeResult(
        passed,
        reason,
        endpoint_name,
        n,
        accuracy=accuracy,
        min_accuracy=floor.min_accuracy,
        **latency,
    )


def smoke_test_endpoint(
    endpoint_name: str,
    rows: SmokeRows,
    max_mape_pct: float | AccuracyFloor,
    endpoint_url: str | None = None,
    region: str | None = None,
) -> SmokeResult:
    """The smoke test through a fresh client; endpoint_url None means SageMaker itself."""
    return run_smoke_test(runtime_client(endpoint_url, region), endpoint_name, rows, max_mape_pct)
