"""Data capture on the local endpoint, in SageMaker's format (`mlops.core.capture`).

A deployment writes `capture.json` into the server instance's folder (what to capture,
where, how often to rotate); the server finds it beside its model and records a sample
of its successful invocations, `local.data_capture_percent` of them, as JSON Lines under
`$MLOPS_HOME/capture/<endpoint>/AllTraffic/yyyy/mm/dd/hh/`, SageMaker's S3 layout. Each
worker process writes its own file, named after the instance (so the version that
answered is known) and rotated every `local.capture_rotate_seconds`. Lines are written
whole, one `write` each, so a reader never sees half a record of a live file.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlops.core.capture import VARIANT, CaptureSet, capture_line

log = logging.getLogger("mlops.local.server")

CAPTURE_FILE = "capture.json"
INFERENCE_ID_HEADER = b"x-amzn-sagemaker-inference-id"
VERSION_IN_NAME = re.compile(r"-v(\d+)-")


@dataclass(frozen=True)
class CaptureSettings:
    folder: str  # $MLOPS_HOME/capture
    endpoint_name: str
    instance: str  # v<version>-...: names the files, so each record's version is known
    percent: int
    rotate_seconds: int = 3600


def capture_root(home: Path) -> Path:
    return home / "capture"


def write_capture_settings(instance_folder: Path, settings: CaptureSettings) -> None:
    (instance_folder / CAPTURE_FILE).write_text(json.dumps(asdict(settings), indent=2))


def open_capture(model_dir: str) -> Capture | None:
    """The capture of the server whose model is `model_dir`, if its deployment asked for one."""
    path = Path(model_dir).parent / CAPTURE_FILE
    try:
        settings = CaptureSettings(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    return Capture(settings) if settings.percent > 0 else None


class Tap:
    """One sampled request: keeps its body as the app reads it, then records the exchange."""

    def __init__(self, capture: Capture, scope: dict, receive: Callable):
        self.capture, self.scope, self.inner = capture, scope, receive
        self.chunks: list[bytes] = []

    async def receive(self) -> dict:
        message = await self.inner()
        self.chunks.append(message.get("body", b""))
        return message

    def record(self, status: int, headers: list, body: bytes) -> None:
        if status != 200:
            return
        try:
            self._write(headers, body)
        except OSError as exc:  # a full disk costs the capture, never the answer
            log.warning("data capture failed: %s", exc)

    def _write(self, headers: list, body: bytes) -> None:
        request_headers = {k.lower(): v for k, v in self.scope["headers"]}
        response_type = next((v for k, v in headers if k == b"content-type"), b"")
        self.capture.write(
            b"".join(self.chunks),
            request_headers.get(b"content-type", b"").decode("latin-1"),
            body,
            response_type.decode("latin-1"),
            request_headers.get(INFERENCE_ID_HEADER, b"").decode("latin-1"),
        )


class Capture:
    """Writes sampled invocations to the current capture file of this process."""

    def __init__(self, settings: CaptureSettings, clock: Callable[[], datetime] | None = None):
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.handle = None
        self.period_end = 0.0
        # eventIds: UUID-shaped, a random per-process prefix and a counter (uuid4 per
        # request costs more than the rest of the record)
        self.id_prefix = uuid.uuid4().hex[:20]
        self.count = 0

    def tap(self, scope: dict, receive: Callable) -> Tap | None:
        """A Tap for a sampled POST, else None (nothing to do for this request)."""
        if scope.get("method") != "POST" or random.random() * 100 >= self.settings.percent:
            return None
        return Tap(self, scope, receive)

    def file_for(self, when: datetime) -> Path:
        s = self.settings
        hour = Path(s.folder) / s.endpoint_name / VARIANT / when.strftime("%Y/%m/%d/%H")
        name = f"{when.strftime('%M-%S-%f')[:9]}-{s.instance}-{os.getpid()}.jsonl"
        return hour / name

    def write(
        self,
        request: bytes,
        request_type: str,
        response: bytes,
        response_type: str,
        inference_id: str = "",
    ) -> None:
        when = self.clock()
        if self.handle is None or when.timestamp() >= self.period_end:
            self.rotate(when)
        self.count += 1
        p, n = self.id_prefix, f"{self.count:012x}"
        event_id = f"{p[:8]}-{p[8:12]}-{p[12:16]}-{p[16:20]}-{n}"
        line = capture_line(
            request, request_type, response, response_type, event_id, when, inference_id
        )
        self.handle.write(line)

    def rotate(self, when: datetime) -> None:
        self.close()
        period = self.settings.rotate_seconds
        start = when.timestamp() // period * period
        self.period_end = start + period
        path = self.file_for(when)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = path.open("a", buffering=1)  # line-buffered: whole lines reach the file

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def capture_files(home: Path, endpoint_name: str) -> list[Path]:
    folder = capture_root(home) / endpoint_name / VARIANT
    return sorted(folder.glob("*/*/*/*/*.jsonl")) if folder.is_dir() else []


def version_of(path: Path) -> int | None:
    match = VERSION_IN_NAME.search("-" + path.name)
    return int(match.group(1)) if match else None


def read_local_capture(
    home: Path,
    endpoint_name: str,
    features_of: Callable[[int | None], list[str]],
    since: datetime | None = None,
) -> CaptureSet:
    """Every captured request of a stage's endpoint (since `since`), corrupt lines counted."""
    found = CaptureSet()
    for path in capture_files(home, endpoint_name):
        version = version_of(path)
        found.files += 1
        with path.open(errors="replace") as lines:
            found.add_lines(lines, features_of(version), version, since, str(path))
    return found


def stage_capture(home: Path, instance_folder: Path, endpoint_name: str, local_stage) -> None:
    """Write the capture settings of a stage's server instance (`local` of its stage config)."""
    write_capture_settings(
        instance_folder,
        CaptureSettings(
            folder=str(capture_root(home)),
            endpoint_name=endpoint_name,
            instance=instance_folder.name,
            percent=local_stage.data_capture_percent,
            rotate_seconds=local_stage.capture_rotate_seconds,
        ),
    )
