"""Fault probe: the heavy half of the fault harness (the light half is in the suite,
tests/unit/test_cli_inputs.py). Prints figures; asserts nothing, so a slow machine does
not fail it. What it does, each against real processes:

- fuzz: N requests to a real endpoint server (random CSV/JSON bodies, 200,000-byte
  fields, quoted fields across lines, heads from 1 to 127 KiB, pipelined POSTs), counting
  answers by status class; then 40 clients each sending a 5.5 MB body at once while
  /ping is timed (the buffered-bytes cap answers 503 past 48 MB);
- registry damage: truncate, delete, corrupt registry.db beside registered artifacts, then
  list and register: how many are refused and how many artifact files disappear;
- kill -9: `batch predict` with 2 workers killed while scoring, K times: workers left alive.

    python bench/fault_probe.py [--requests 2000] [--kills 3]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [
    str(HERE.parent / "tests"),
    str(HERE.parent / "tests" / "integration"),
    str(HERE.parent / "model_build" / "steps"),
]
os.environ.setdefault(
    "MLOPS_CONFIG", str(HERE.parent / "tests" / "fixture_project" / "model_build" / "config.yaml")
)


def random_body(rng: random.Random) -> tuple[bytes, str]:
    kind = rng.randrange(6)
    if kind == 0:
        return b"1," + b'"' + b"x" * 200_000 + b'"' + b",3", "text/csv"  # over csv's field limit
    if kind == 1:
        return b'2001,"a\nb",3,2.0,0.5,2,1,0\n2001,2500.5,3,2.0,0.5,2,1,0', "text/csv"
    if kind == 2:
        cells = [
            rng.choice(["1", "", "nan", "inf", "abc", "1e400", '"q,q"', "-0"]) for _ in range(8)
        ]
        return ",".join(cells).encode(), "text/csv"
    if kind == 3:
        return rng.randbytes(rng.randrange(1, 2000)), rng.choice(["text/csv", "application/json"])
    if kind == 4:
        return b'{"instances": [[' + b"1," * rng.randrange(1, 20) + b"1]]}", "application/json"
    return b"2001,2500.5,3,2.0,0.5,2,1,0", "text/csv"


def status_class(code: int) -> str:
    return f"{code // 100}xx" if code else "reset"


def one_request(port: int, body: bytes, content_type: str, head_kib: int = 0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": content_type}
    if head_kib:
        headers["X-Pad"] = "p" * (head_kib * 1024)
    try:
        conn.request("POST", "/invocations", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def pipelined(port: int, count: int) -> Counter:
    body = b"2001,2500.5,3,2.0,0.5,2,1,0"
    one = (
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    answers = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(one * count)
        while answers.count(b"HTTP/1.1 ") < count:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answers += chunk
    codes = [int(c) for c in re.findall(rb"HTTP/1\.1 (\d{3}) ", answers)]
    return Counter(status_class(c) for c in codes) + Counter({"reset": count - len(codes)})


def fuzz(port: int, requests: int) -> Counter:
    rng = random.Random(23)
    counts: Counter = Counter()
    for i in range(requests):
        body, content_type = random_body(rng)
        head_kib = rng.choice([0, 0, 0, 1, 60, 65, 100, 127]) if i % 10 == 0 else 0
        status = one_request(port, body, content_type, head_kib)
        key = status_class(status)
        if head_kib > 64:
            key = f"head>{64}KiB:{status}"
        counts[key] += 1
    return counts + pipelined(port, 3000)


def flood_and_ping(url: str, port: int, clients: int = 40) -> tuple[Counter, float]:
    """`clients` 5.5 MB bodies at once; the slowest /ping meanwhile (seconds)."""
    from mlops.local.server_process import ping

    body = b"2001,2500.5,3,2.0,0.5,2,1,0\n" * (5_500_000 // 28)
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(one_request(port, body, "text/csv")))
        for _ in range(clients)
    ]
    for t in threads:
        t.start()
    slowest = 0.0
    while any(t.is_alive() for t in threads):
        start = time.monotonic()
        ping(url, timeout=10)
        slowest = max(slowest, time.monotonic() - start)
        time.sleep(0.05)
    return Counter(status_class(c) for c in results), slowest


def registry_damage(tmp: Path) -> dict[str, str]:
    from unit.test_registry import GROUP, register

    from mlops.core.errors import MlopsError
    from mlops.local.registry import LocalRegistry

    outcome = {}
    for damage in ("truncate", "delete", "corrupt"):
        home = tmp / damage / "home"
        register(home, "r1")
        register(home, "r2")
        files = sorted(p for p in (home / "registry").rglob("*") if p.is_file())
        db = home / "registry.db"
        if damage == "truncate":
            db.write_bytes(b"")
        elif damage == "delete":
            db.unlink()
        else:
            with db.open("r+b") as handle:
                handle.write(os.urandom(100))
        refused = 0
        attempts = (lambda h=home: LocalRegistry(h, GROUP).list(), lambda h=home: register(h, "r3"))
        for attempt in attempts:
            try:
                attempt()
            except MlopsError:
                refused += 1
        lost = sum(not p.exists() for p in files)
        outcome[damage] = f"{refused}/2 refused, {lost} of {len(files)} artifact files lost"
    return outcome


def batch_kills(tmp: Path, archive: Path, kills: int) -> list[int]:
    """Workers alive 15 s after each kill -9 of a scoring `batch predict`."""
    import pandas as pd
    from fixture_project.generate import TARGET, generate_buildings
    from unit.test_registry import GROUP

    from mlops.local.registry import LocalRegistry

    home = tmp / "batch-home"
    art = tmp / "art"
    art.mkdir()
    (art / "evaluation.json").write_text('{"regression_metrics": {"mse": {"value": 1.0}}}')
    registry = LocalRegistry(home, GROUP)
    registry.register(archive, art / "evaluation.json", None, {"run_id": "probe"})
    registry.approve(1)
    data = tmp / "rows.csv"
    pd.DataFrame(generate_buildings(20_000, seed=5)).drop(columns=[TARGET]).to_csv(
        data, index=False
    )
    env = {**os.environ, "MLOPS_HOME": str(home)}
    left = []
    for k in range(kills):
        out = tmp / f"out{k}.csv"
        argv = [sys.executable, "-m", "mlops.cli", "batch", "predict", "--data", str(data),
                "--out", str(out), "--version", "1", "--workers", "2", "--chunk-rows", "100"]  # fmt: skip
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not list(tmp.glob(f".out{k}.csv.*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.05)
        children = [int(p) for p in subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()]  # fmt: skip
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(15)
        alive = [p for p in children if Path(f"/proc/{p}").exists()]
        for pid in alive:  # the probe cleans up what it found
            os.kill(pid, signal.SIGKILL)
        left.append(len(alive))
    return left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()

    from _serving import running_server
    from fixture_project.generate import TARGET, generate_buildings
    from fixtures.artifacts import pack, train_artifact

    with tempfile.TemporaryDirectory(prefix="fault-probe-") as name:
        tmp = Path(name)
        model_dir = train_artifact(tmp / "train", generate_buildings(400, seed=2), TARGET)
        archive = pack(model_dir, tmp / "model.tar.gz")
        with running_server(model_dir, tmp / "server") as server:
            start = time.perf_counter()
            counts = fuzz(server.port, args.requests)
            print(f"fuzz: {args.requests} requests + 3000 pipelined in "
                  f"{time.perf_counter() - start:.1f} s: {dict(sorted(counts.items()))}")  # fmt: skip
            flood, slowest = flood_and_ping(server.url, server.port)
            print(f"flood: 40 x 5.5 MB bodies: {dict(sorted(flood.items()))}; "
                  f"slowest /ping meanwhile {slowest:.2f} s")  # fmt: skip
        for damage, outcome in registry_damage(tmp).items():
            print(f"registry {damage}: {outcome}")
        left = batch_kills(tmp, archive, args.kills)
        print(f"batch kill -9: {len(left)} kills, workers left alive after 15 s: {left}")
        shutil.rmtree(tmp / "batch-home", ignore_errors=True)


if __name__ == "__main__":
    main()
