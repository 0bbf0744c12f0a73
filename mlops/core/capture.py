"""SageMaker's data-capture format: one JSON object per line, one line per captured request.

    {"captureData": {
        "endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                           "data": "1990,2100,3,...", "encoding": "CSV"},
        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                           "data": "{\"predictions\": [...]}", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<client's id, if sent>",
                       "inferenceTime": "2026-12-01T02:03:04.567Z"},
     "eventVersion": "0"}

Files live under `<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<name>.jsonl`, as SageMaker
writes them to S3. The local endpoint writes the same (`mlops.local.capture`), so this one
reader serves both backends: it turns records into feature rows (raw values, as the
request held them: typing them is `stepkit.rows`'s, as for every other path) and predictions.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

_quote = json.encoder.encode_basestring_ascii  # a JSON string literal, in C
EVENT_VERSION = "0"
VARIANT = "AllTraffic"
CSV_TYPES = ("text/csv",)
JSON_TYPES = ("application/json",)


def _encoding(content_type: str) -> str:
    base = content_type.split(";")[0].strip().lower()
    if base in CSV_TYPES:
        return "CSV"
    if base in JSON_TYPES:
        return "JSON"
    return "BASE64"


def _payload(data: bytes, content_type: str, mode: str) -> str:
    """One side of the exchange as JSON text (built by hand: this runs on every request)."""
    encoding = _encoding(content_type)
    try:
        text = data.decode("utf-8") if encoding != "BASE64" else None
    except UnicodeDecodeError:
        encoding, text = "BASE64", None
    if text is None:
        text = base64.b64encode(data).decode("ascii")
    return (
        f'{{"observedContentType":{_quote(content_type)},"mode":"{mode}",'
        f'"data":{_quote(text)},"encoding":"{encoding}"}}'
    )


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def capture_line(
    request: bytes,
    request_type: str,
    response: bytes,
    response_type: str,
    event_id: str,
    when: datetime | str,
    inference_id: str = "",
) -> str:
    """One captured request as a JSON line (with its newline); `when` may be preformatted."""
    metadata = f'"eventId":{_quote(event_id)},'
    if inference_id:
        metadata += f'"inferenceId":{_quote(inference_id)},'
    return (
        f'{{"captureData":{{"endpointInput":{_payload(request, request_type, "INPUT")},'
        f'"endpointOutput":{_payload(response, response_type, "OUTPUT")}}},'
        f'"eventMetadata":{{{metadata}"inferenceTime":"{when if isinstance(when, str) else format_time(when)}"}},'
        f'"eventVersion":"{EVENT_VERSION}"}}\n'
    )


class CorruptRecord(ValueError):
    """A capture line that is not a record this reader can use."""


@dataclass(frozen=True)
class CapturedRequest:
    event_id: str
    inference_id: str
    time: datetime
    rows: np.ndarray  # 2-D (object), raw values, features in the model's order
    predictions: np.ndarray  # 1-D, one per row
    version: int | None = None  # the model version that answered, when known


def _text(payload: dict) -> str:
    data = payload["data"]
    if payload.get("encoding") == "BASE64":
        return base64.b64decode(data).decode("utf-8")
    return data


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _input_rows(payload: dict, features: list[str]) -> np.ndarray:
    """The request's rows as raw values (text from CSV, JSON's own values), in `features`'
    order: a request of text categories reads as well as one of numbers."""
    text = _text(payload)
    kind = _encoding(payload.get("observedContentType", ""))
    if kind == "JSON" or (kind == "BASE64" and text.lstrip()[:1] in "[{"):
        body = json.loads(text)
        if isinstance(body, dict):
            body = body.get("instances", [body])
        if body and not isinstance(body[0], list | dict):
            body = [body]
        rows = [[row[f] for f in features] if isinstance(row, dict) else row for row in body]
    else:
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if not rows or any(not isinstance(r, list) or len(r) != len(features) for r in rows):
        raise CorruptRecord(f"input rows are not {len(features)} features wide")
    matrix = np.empty((len(rows), len(features)), dtype=object)
    matrix[:] = rows
    return matrix


def _predictions(payload: dict) -> np.ndarray:
    text = _text(payload).strip()
    if text.startswith("{"):
        values = json.loads(text)["predictions"]
    elif text.startswith("["):
        values = json.loads(text)
    else:
        values = [line for line in text.splitlines() if line.strip()]
    return np.asarray(values, dtype=float).ravel()


def parse_record(line: str, features: list[str], version: int | None = None) -> CapturedRequest:
    """A capture line as rows and predictions; CorruptRecord when it cannot be used."""
    try:
        record = json.loads(line)
        data, meta = record["captureData"], record["eventMetadata"]
        rows = _input_rows(data["endpointInput"], features)
        predictions = _predictions(data["endpointOutput"])
        when = parse_time(meta["inferenceTime"])
    except CorruptRecord:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise CorruptRecord(f"{type(exc).__name__}: {exc}") from None
    if len(predictions) != len(rows):
        raise CorruptRecord(f"{len(rows)} input rows but {len(predictions)} predictions")
    return CapturedRequest(
        event_id=str(meta.get("eventId", "")),
        inference_id=str(meta.get("inferenceId", "")),
        time=when,
        rows=rows,
        predictions=predictions,
        version=version,
    )


@dataclass
class CaptureSet:
    """Captured requests read from somewhere, and how many lines could not be used."""

    requests: list[CapturedRequest] = field(default_factory=list)
    corrupt: int = 0
    files: int = 0
    first_corrupt: str = ""

    def add_lines(
        self, lines, features: list[str], version: int | None, since: datetime | None, where: str
    ) -> None:
        for number, line in enumerate(lines, 1):
            if not line.strip() or not line.endswith("\n"):
                continue  # a last line without its newline is still being written
            try:
                request = parse_record(line, features, version)
            except CorruptRecord as exc:
                self.corrupt += 1
                self.first_corrupt = self.first_corrupt or f"{where}:{number}: {exc}"
                continue
            if since is None or request.time >= since:
                self.requests.append(request)
