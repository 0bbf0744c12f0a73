"""Endpoint throughput with data capture at 100 % against capture off.

Two servers of the same model and code (`mlops.local.server`, same workers): one whose
instance folder holds a `capture.json` asking for every request (SageMaker's JSON Lines
written under a temporary folder), one without. Single-row CSV requests at concurrency 8,
alternating between the two in rounds so background load hits both alike (the client of
`bench/endpoint.py`). Target: capture costs at most 10 % of requests/s.

    python bench/capture.py [--workers 2] [--requests 20000] [--model-archive model.tar.gz]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import CACHE
from endpoint import free_port, measure, prepare_model, request_bytes, sample_rows, wait_for_ping

TARGET_LOSS = 0.10
ON, OFF, CONTROL = "capture 100%", "capture off", "capture off (A/A)"


def instance(root: Path, name: str, model_dir: Path, capture_to: Path | None) -> Path:
    """An instance folder like a deployment's: model/ and, to capture, capture.json."""
    from mlops.local.capture import CaptureSettings, write_capture_settings

    folder = root / name
    shutil.copytree(model_dir, folder / "model")
    if capture_to is not None:
        write_capture_settings(folder, CaptureSettings(str(capture_to), "bench", "v1-bench", 100))
    return folder / "model"


def start(model_dir: Path, code_dir: Path, workers: int, log: Path) -> tuple:
    port = free_port()
    argv = [sys.executable, "-m", "mlops.local.server", "--model-dir", str(model_dir),
            "--code-dir", str(code_dir), "--workers", str(workers), "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT)
    wait_for_ping(port, proc)
    return proc, port


def in_process(model_dir: Path, code_dir: Path, root: Path, blocks: int = 20) -> float:
    """Capture's CPU cost alone: the ASGI app called directly, capture on vs off, in
    alternating blocks of 500 requests (no sockets, no second process): time ratio."""
    import asyncio
    import time

    from mlops.local.capture import Capture, CaptureSettings
    from mlops.local.endpoint_app import EndpointApp, ServerSettings
    from mlops.local.model_host import load_handlers

    handlers = load_handlers(code_dir)
    model = handlers.model_fn(str(model_dir))
    settings = ServerSettings(str(model_dir), str(code_dir), endpoint_name="bench")
    capture = Capture(CaptureSettings(str(root / "inproc"), "bench", "v1-inproc", 100))
    apps = {
        OFF: EndpointApp(settings, handlers, model),
        ON: EndpointApp(settings, handlers, model, capture),
    }
    body = request_bytes(sample_rows(1))[0].split(b"\r\n\r\n", 1)[1]
    scope = {"type": "http", "method": "POST", "path": "/invocations",
             "headers": [(b"content-type", b"text/csv")]}  # fmt: skip

    async def block(app) -> float:
        start = time.perf_counter()
        for _ in range(500):
            messages = [{"type": "http.request", "body": body, "more_body": False}]

            async def receive(messages=messages):
                return messages.pop(0)

            async def send(_):
                pass

            await app(dict(scope), receive, send)
        return time.perf_counter() - start

    async def run() -> dict:
        spent = dict.fromkeys(apps, 0.0)
        for _ in range(blocks):
            for name, app in apps.items():
                spent[name] += await block(app)
        return spent

    spent = asyncio.run(run())
    capture.close()
    return spent[ON] / spent[OFF]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--requests", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--model-archive", type=Path, default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        root = Path(tmp)
        model_dir, code_dir = prepare_model(args.model_archive, root)
        captured = root / "capture"
        servers = {
            OFF: start(instance(root, "off", model_dir, None), code_dir, args.workers,
                       root / "off.log"),
            ON: start(instance(root, "on", model_dir, captured), code_dir, args.workers,
                      root / "on.log"),
            # a second server without capture: how far two identical servers differ here
            CONTROL: start(instance(root, "control", model_dir, None), code_dir, args.workers,
                           root / "control.log"),
        }  # fmt: skip
        try:
            requests = request_bytes(sample_rows())
            measure(servers, requests, 800, 4, 1)  # warm up
            runs = measure(servers, requests, args.requests, 8, args.rounds)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=30)
        ratio_in_process = in_process(model_dir, code_dir, root)
        lines = sum(len(f.read_text().splitlines()) for f in captured.rglob("*.jsonl"))
        size_mb = sum(f.stat().st_size for f in captured.rglob("*.jsonl")) / 2**20
    on, off, control = runs[ON], runs[OFF], runs[CONTROL]
    loss = 1 - on.throughput / off.throughput
    noise = abs(1 - control.throughput / off.throughput)
    errors = on.errors + off.errors + control.errors
    print(f"workers per server: {args.workers}; concurrency 8; single-row text/csv requests")
    for name, run in runs.items():
        print(f"{name:<14} {run.requests:>7} requests  {run.throughput:>7.0f} req/s  "
              f"p50 {run.percentile_ms(0.5):.2f} ms  p99 {run.percentile_ms(0.99):.2f} ms  "
              f"errors {run.errors}")  # fmt: skip
    print(f"captured {lines:,} records ({size_mb:.1f} MB of JSON Lines); two servers without "
          f"capture differ by {noise * 100:.1f}% on this machine now (the noise floor)")  # fmt: skip
    print(f"in process (the app alone, no HTTP): capture on takes {ratio_in_process:.3f}x the "
          f"time of capture off per request")  # fmt: skip
    ok = loss <= TARGET_LOSS and errors == 0 and lines >= on.requests
    print(f"capture at 100 % costs {loss * 100:.1f}% of requests/s (target <= "
          f"{TARGET_LOSS * 100:.0f}%) -> {'ok' if ok else 'MISSED'}")  # fmt: skip
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "capture.json").write_text(
        json.dumps(
            {
                "on_req_per_s": on.throughput,
                "off_req_per_s": off.throughput,
                "loss": loss,
                "noise_a_a": noise,
                "in_process_ratio": ratio_in_process,
                "captured": lines,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
