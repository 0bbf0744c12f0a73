"""Data capture on the local endpoint, in SageMaker's format (`mlops.core.capture`).

A deployment writes `capture.json` into the server instance's folder (what to capture,
where, how often to rotate); the server finds it beside its model and records a sample
of its successful invocations, `local.data_capture_percent` of them, as JSON Lines under
`$MLOPS_HOME/capture/<endpoint>/AllTraffic/yyyy/mm/dd/hh/`, SageMaker's S3 layout. Each
worker process writes its own file, named after the instance (so the version that
answered is known) and rotated every `local.capture_rotate_seconds`. Lines are collected
and written together every FLUSH_SECONDS (one write per batch, not per request).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlops.core.capture import VARIANT, CaptureSet, capture_line

log = logging.getLogger("mlops.local.server")

CAPTURE_FILE = "capture.json"
FLUSH_SECONDS = 0.2  # captured lines reach their file at most this late
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

    def __init__(self, settings: CaptureSettings, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.clock = clock  # seconds since the epoch
        self.second, self.second_text = -1, ""
        self.handle = None
        self.period_end = 0.0
        self.pending: list[str] = []  # whole lines not yet written
        self.flush_scheduled = False
        # eventIds: UUID-shaped, a random per-process prefix and a counter (uuid4 per
        # request costs more than the rest of the record)
        self.id_prefix = uuid.uuid4().hex[:20]
        self.count = 0
        atexit.register(self.close)  # a worker that stops keeps what it captured

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
        now = self.clock()
        if self.handle is None or now >= self.period_end:
            self.rotate(now)
        second = int(now)
        if second != self.second:  # strftime once a second, not once a request
            self.second = second
            self.second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        when = f"{self.second_text}.{int((now - second) * 1000):03d}Z"
        self.count += 1
        p, n = self.id_prefix, f"{self.count:012x}"
        event_id = f"{p[:8]}-{p[8:12]}-{p[12:16]}-{p[16:20]}-{n}"
        self.pending.append(
            capture_line(
                request, request_type, response, response_type, event_id, when, inference_id
            )
        )
        self.schedule_flush()

    def schedule_flush(self) -> None:
        """Lines reach the file FLUSH_SECONDS after the first of them, together: one write
        per batch instead of one per request (a write can stall when the disk is busy)."""
        if self.flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not serving (tests, tools): write at once
            self.flush()
            return
        self.flush_scheduled = True
        loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.pending and self.handle is not None:
            lines, self.pending = "".join(self.pending), []
            try:
                self.handle.write(lines)  # whole lines only: a reader never sees half a record
                self.handle.flush()
            except OSError as exc:  # a full disk costs the capture, never the answers
                log.warning("data capture failed: %s", exc)

    def rotate(self, now: float) -> None:
        self.close()  # flushes what the old file's period holds
        period = self.settings.rotate_seconds
        self.period_end = now // period * period + period
        path = self.file_for(datetime.fromtimestamp(now, UTC))
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = path.open("a", buffering=1 << 20)  # written by flush(), whole lines

    def close(self) -> None:
        self.flush()
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def capture_files(home: Path, endpoint_name: str) -> list[Path]:
    folder = capture_root(home) / endpoint_name / VARIANT
    return sorted(folder.glob("*/*/*/*/*.jsonl")) if folder.is_dir() else []


def captured_lines(home: Path, endpoint_name: str) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in capture_files(home, endpoint_name))


def wait_for_capture(
    home: Path, endpoint_name: str, at_least: int, timeout: float = 10 * FLUSH_SECONDS + 5
) -> int:
    """Wait until the servers' pending lines reached the files (they write every
    FLUSH_SECONDS); the number of captured lines then."""
    deadline = time.monotonic() + timeout
    while (count := captured_lines(home, endpoint_name)) < at_least:
        if time.monotonic() > deadline:
            break
        time.sleep(FLUSH_SECONDS / 2)
    return count


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
