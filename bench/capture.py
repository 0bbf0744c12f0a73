"""Endpoint throughput with data capture at 100 % against capture off.

Two servers of the same model and code (`mlops.local.server`, same workers): one whose
instance folder holds a `capture.json` asking for every request (SageMaker's JSON Lines
written under a temporary folder), one without, and a second one without (the A/A control:
how far two identical servers differ on this machine). Single-row CSV requests at
concurrency 8 (the client of `bench/endpoint.py`) in many short rounds; each round visits the
three servers in a rotated order, and the figure is the median over rounds of the paired
ratio capture-on / capture-off, next to the median A/A ratio. Pairing within a round and
rotating the order keep a burst of background load, or a server's place in the round, from
deciding the result (whole-run totals swung by +-14 % between identical servers here).
Target: capture costs at most 10 % of requests/s.

    python bench/capture.py [--workers 2] [--rounds 24] [--requests-per-round 1500]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import CACHE
from endpoint import (
    Run,
    free_port,
    load,
    measure,
    prepare_model,
    request_bytes,
    sample_rows,
    wait_for_ping,
)

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


def start(model_dir: Path, workers: int, log: Path) -> tuple:
    port = free_port()
    argv = [sys.executable, "-m", "mlops.local.server", "--model-dir", str(model_dir),
            "--workers", str(workers), "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT)
    wait_for_ping(port, proc)
    return proc, port


def in_process(model_dir: Path, root: Path, blocks: int = 20) -> float:
    """Capture's CPU cost alone: the ASGI app called directly, capture on vs off, in
    alternating blocks of 500 requests (no sockets, no second process): time ratio."""
    import asyncio
    import time

    from mlops.local.capture import Capture, CaptureSettings
    from mlops.local.endpoint_app import EndpointApp, ServerSettings
    from mlops.local.model_host import load_model

    handlers, model = load_model(model_dir)
    settings = ServerSettings(str(model_dir), endpoint_name="bench")
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


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU of a server and its workers so far. CPU per request does not
    depend on how busy the rest of the machine is, unlike requests/s."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def paired_rounds(servers: dict, requests: list[bytes], per_round: int, rounds: int) -> tuple:
    """Per server: all its requests as one Run and its CPU seconds; per round: each
    server's requests/s. Round r starts at server r mod 3, so no server always runs first."""
    import uvloop

    names = list(servers)
    totals = {name: Run() for name in names}
    cpu = dict.fromkeys(names, 0.0)
    per_round_rates: list[dict[str, float]] = []
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        rates = {}
        for name in order:
            proc, port = servers[name]
            before = server_cpu_seconds(proc.pid)
            run = uvloop.run(load(port, requests, per_round, 8))
            cpu[name] += server_cpu_seconds(proc.pid) - before
            totals[name].add(run)
            rates[name] = run.throughput
        per_round_rates.append(rates)
    return totals, cpu, per_round_rates


def median_ratio(rates: list[dict[str, float]], a: str, b: str) -> float:
    return statistics.median(r[a] / r[b] for r in rates)


def quartiles(rates: list[dict[str, float]], a: str, b: str) -> tuple[float, float]:
    q = statistics.quantiles([r[a] / r[b] for r in rates], n=4)
    return q[0], q[2]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--rounds", type=int, default=24)
    p.add_argument("--requests-per-round", type=int, default=1500)
    p.add_argument("--model-archive", type=Path, default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        root = Path(tmp)
        model_dir = prepare_model(args.model_archive, root)
        captured = root / "capture"
        servers = {
            OFF: start(instance(root, "off", model_dir, None), args.workers, root / "off.log"),
            ON: start(instance(root, "on", model_dir, captured), args.workers, root / "on.log"),
            CONTROL: start(instance(root, "control", model_dir, None), args.workers,
                           root / "control.log"),
        }  # fmt: skip
        try:
            requests = request_bytes(sample_rows())
            measure(servers, requests, 800, 4, 1)  # warm up
            runs, cpu, rates = paired_rounds(
                servers, requests, args.requests_per_round, args.rounds
            )
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=30)
        ratio_in_process = in_process(model_dir, root)
        lines = sum(len(f.read_text().splitlines()) for f in captured.rglob("*.jsonl"))
        size_mb = sum(f.stat().st_size for f in captured.rglob("*.jsonl")) / 2**20
    on_off = median_ratio(rates, ON, OFF)
    aa = median_ratio(rates, CONTROL, OFF)
    on_q1, on_q3 = quartiles(rates, ON, OFF)
    aa_q1, aa_q3 = quartiles(rates, CONTROL, OFF)
    loss = 1 - on_off
    errors = sum(run.errors for run in runs.values())
    print(f"workers per server: {args.workers}; concurrency 8; single-row text/csv requests; "
          f"{args.rounds} rounds of {args.requests_per_round} requests per server")  # fmt: skip
    for name, run in runs.items():
        print(f"{name:<18} {run.requests:>7} requests  {run.throughput:>7.0f} req/s  "
              f"p50 {run.percentile_ms(0.5):.2f} ms  p99 {run.percentile_ms(0.99):.2f} ms  "
              f"errors {run.errors}")  # fmt: skip
    print(
        f"per-round ratio, median [quartiles]: capture on / off {on_off:.3f} "
        f"[{on_q1:.3f}, {on_q3:.3f}]; A/A control / off {aa:.3f} [{aa_q1:.3f}, {aa_q3:.3f}]"
    )
    cpu_us = {name: 1e6 * cpu[name] / runs[name].requests for name in runs}
    print(f"server CPU per request: capture on {cpu_us[ON]:.0f} us, off {cpu_us[OFF]:.0f} us, "
          f"A/A {cpu_us[CONTROL]:.0f} us -> on / off {cpu_us[ON] / cpu_us[OFF]:.3f}, "
          f"A/A / off {cpu_us[CONTROL] / cpu_us[OFF]:.3f}")  # fmt: skip
    print(f"captured {lines:,} records ({size_mb:.1f} MB of JSON Lines)")
    print(f"in process (the app alone, no HTTP): capture on takes {ratio_in_process:.3f}x the "
          f"time of capture off per request")  # fmt: skip
    ok = loss <= TARGET_LOSS and errors == 0 and lines >= runs[ON].requests
    print(f"capture at 100 % costs {loss * 100:.1f}% of requests/s (median paired round; target "
          f"<= {TARGET_LOSS * 100:.0f}%) -> {'ok' if ok else 'MISSED'}")  # fmt: skip
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "capture.json").write_text(
        json.dumps(
            {
                "on_req_per_s": runs[ON].throughput,
                "off_req_per_s": runs[OFF].throughput,
                "median_round_ratio_on_off": on_off,
                "median_round_ratio_a_a": aa,
                "loss": loss,
                "in_process_ratio": ratio_in_process,
                "server_cpu_us_per_request": cpu_us,
                "captured": lines,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
