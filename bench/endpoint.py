"""Endpoint throughput and latency: the project's server against Flask on gunicorn.

Both serve the same model through the same inference.py with the same number of
worker processes (`mlops.local.server`: uvicorn + uvloop + httptools, raw ASGI, which
scores requests that arrive together in one predict_fn call; baseline: a minimal
Flask app on gunicorn's default sync workers, `_flask_app.py`). The server also
runs with `--no-batching`, to show what the HTTP stack alone is worth.
Single-row CSV requests come from an asyncio client that keeps connections alive
and reconnects when the server closes them (gunicorn's sync workers close after
every response). Each scenario alternates between the two servers in rounds, so
background load hits both alike.

Targets at concurrency 8: >= 1.5x the baseline's requests/s, a lower p99, and
zero errors over 20,000 requests per server.

    python bench/endpoint.py [--workers 2] [--requests 20000] [--model-archive model.tar.gz]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import CACHE, sample_csv

BENCH_DIR = Path(__file__).resolve().parent
TARGET_RATIO = 1.5


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def add(self, other: Run) -> None:
        self.latencies += other.latencies
        self.errors += other.errors
        self.seconds += other.seconds

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request_bytes(rows: list[str]) -> list[bytes]:
    return [
        (
            "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
            f"Content-Length: {len(row)}\r\n\r\n{row}"
        ).encode()
        for row in rows
    ]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server closes the connection) of one HTTP/1.1 response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    headers = {k.strip().lower(): v.strip().lower() for k, v in headers.items()}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers.get("connection") == "close"


async def load(port: int, requests: list[bytes], total: int, concurrency: int) -> Run:
    """`total` requests from `concurrency` clients; latency includes any reconnect."""
    run = Run()
    counter = iter(range(total))

    async def client() -> None:
        reader = writer = None
        for i in counter:
            start = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(requests[i % len(requests)])
                status, body, closing = await read_response(reader)
                if status != 200 or b'"predictions"' not in body:
                    run.errors += 1
                if closing:
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError, ValueError):
                run.errors += 1
                writer = None
            run.latencies.append(time.perf_counter() - start)
        if writer is not None:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    run.seconds = time.perf_counter() - start
    return run


def wait_for_ping(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not answer /ping")


OURS = "mlops.local.server"
OURS_UNBATCHED = "mlops.local.server --no-batching"
BASELINE = "flask + gunicorn (sync)"


def start_servers(model_dir: Path, workers: int, log_dir: Path) -> dict:
    env = {**os.environ, "BENCH_MODEL_DIR": str(model_dir)}
    ports = {name: free_port() for name in (OURS, OURS_UNBATCHED, BASELINE)}
    ours = [
        sys.executable, "-m", "mlops.local.server", "--model-dir", str(model_dir),
        "--workers", str(workers),
    ]  # fmt: skip
    argvs = {
        OURS: [*ours, "--port", str(ports[OURS])],
        OURS_UNBATCHED: [*ours, "--port", str(ports[OURS_UNBATCHED]), "--no-batching"],
        BASELINE: [
            sys.executable, "-m", "gunicorn", "--workers", str(workers),
            "--bind", f"127.0.0.1:{ports[BASELINE]}",
            "--chdir", str(BENCH_DIR), "--log-level", "warning", "_flask_app:app",
        ],
    }  # fmt: skip
    servers = {}
    for index, (name, argv) in enumerate(argvs.items()):
        log = (log_dir / f"server-{index}.log").open("w")
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        servers[name] = (proc, ports[name])
    for proc, port in servers.values():
        wait_for_ping(port, proc)
    return servers


def prepare_model(archive: Path | None, workdir: Path) -> Path:
    """The unpacked artifact (its code/ serves it): the archive given, or a model trained by
    the pipeline."""
    if archive is None:
        from mlops.core.config import load_config
        from mlops.local.runner import run_pipeline

        print("training a model with the local pipeline on 10,000 sample rows ...", flush=True)
        result = run_pipeline(load_config(), sample_csv(10_000), workdir / "home", lambda _: None)
        archive = Path(result.version.model_uri)
    model_dir = workdir / "model"
    model_dir.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(model_dir, filter="data")
    return model_dir


def sample_rows(count: int = 200) -> list[str]:
    lines = sample_csv(10_000).read_text().splitlines()[1 : count + 1]
    return [line.rsplit(",", 1)[0] for line in lines]  # drop the target (last column)


def measure(
    servers: dict, requests: list[bytes], total: int, concurrency: int, rounds: int
) -> dict:
    import uvloop

    runs = {name: Run() for name in servers}
    for _ in range(rounds):
        for name, (_, port) in servers.items():
            runs[name].add(uvloop.run(load(port, requests, total // rounds, concurrency)))
    return runs


def report(results: dict[int, dict[str, Run]]) -> dict:
    print(f"\n{'server':<26} {'conc':>4} {'requests':>8} {'errors':>6} {'req/s':>8} "
          f"{'p50 ms':>7} {'p99 ms':>7}")  # fmt: skip
    figures = {}
    for concurrency, runs in results.items():
        for name, run in runs.items():
            row = {
                "requests": run.requests,
                "errors": run.errors,
                "req_per_s": run.throughput,
                "p50_ms": run.percentile_ms(0.50),
                "p99_ms": run.percentile_ms(0.99),
            }
            figures[f"{name} c{concurrency}"] = row
            print(f"{name:<26} {concurrency:>4} {row['requests']:>8} {row['errors']:>6} "
                  f"{row['req_per_s']:>8.0f} {row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f}")  # fmt: skip
    return figures


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--requests", type=int, default=20_000, help="per server at concurrency 8")
    p.add_argument("--requests-c1", type=int, default=4_000, help="per server at concurrency 1")
    p.add_argument("--rounds", type=int, default=4, help="alternations between the servers")
    p.add_argument("--model-archive", type=Path, default=None)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-endpoint-") as tmp:
        model_dir = prepare_model(args.model_archive, Path(tmp))
        servers = start_servers(model_dir, args.workers, Path(tmp))
        try:
            requests = request_bytes(sample_rows())
            measure(servers, requests, 400 * len(servers), 4, 1)  # warm up
            results = {
                1: measure(servers, requests, args.requests_c1, 1, args.rounds),
                8: measure(servers, requests, args.requests, 8, args.rounds),
            }
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=30)
    print(f"workers per server: {args.workers}; single-row text/csv requests; "
          f"{os.cpu_count()} CPUs shared by servers and client")  # fmt: skip
    figures = report(results)
    at8 = results[8]
    ratio = at8[OURS].throughput / at8[BASELINE].throughput
    ratio_unbatched = at8[OURS_UNBATCHED].throughput / at8[BASELINE].throughput
    p99, p99_base = at8[OURS].percentile_ms(0.99), at8[BASELINE].percentile_ms(0.99)
    errors = sum(run.errors for runs in results.values() for run in runs.values())
    ok = ratio >= TARGET_RATIO and p99 < p99_base and errors == 0 and at8[OURS].requests >= 20_000
    print(
        f"\nconcurrency 8: {OURS} {ratio:.2f}x the baseline's requests/s (target >= "
        f"{TARGET_RATIO}), p99 {p99:.2f} ms vs {p99_base:.2f} ms (target: lower); "
        f"errors {errors} (target 0) -> {'ok' if ok else 'MISSED'}"
    )
    print(
        f"without batching (HTTP stack alone): {ratio_unbatched:.2f}x, "
        f"p99 {at8[OURS_UNBATCHED].percentile_ms(0.99):.2f} ms"
    )
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "endpoint.json").write_text(
        json.dumps(
            {
                "workers": args.workers,
                "ratio_c8": ratio,
                "ratio_c8_unbatched": ratio_unbatched,
                "results": figures,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
