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
ON, OFF = "capture 100%", "capture off"


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
        }  # fmt: skip
        try:
            requests = request_bytes(sample_rows())
            measure(servers, requests, 800, 4, 1)  # warm up
            runs = measure(servers, requests, args.requests, 8, args.rounds)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=30)
        lines = sum(len(f.read_text().splitlines()) for f in captured.rglob("*.jsonl"))
        size_mb = sum(f.stat().st_size for f in captured.rglob("*.jsonl")) / 2**20
    on, off = runs[ON], runs[OFF]
    loss = 1 - on.throughput / off.throughput
    errors = on.errors + off.errors
    print(f"workers per server: {args.workers}; concurrency 8; single-row text/csv requests")
    for name, run in runs.items():
        print(f"{name:<14} {run.requests:>7} requests  {run.throughput:>7.0f} req/s  "
              f"p50 {run.percentile_ms(0.5):.2f} ms  p99 {run.percentile_ms(0.99):.2f} ms  "
              f"errors {run.errors}")  # fmt: skip
    print(f"captured {lines:,} records ({size_mb:.1f} MB of JSON Lines)")
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
                "captured": lines,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
