"""Tracking overhead: `mlops pipeline run` on 10k rows with MLflow tracking on vs off.

Both homes are warmed up by one untimed run first (creating the MLflow store runs its
schema migrations once per home: reported apart). Target: overhead <= 5 % of the run.
The runs alternate; median and minimum are printed (the minimum is the figure least
disturbed by other load on the machine). The tracking work itself (MLflow's import,
the store, a run's records) is also timed alone, in a fresh interpreter: it runs on a
background thread, so it costs the pipeline the time the run is blocked on it (printed
by each run) plus the CPU it takes from the steps when the machine has no core to spare.

    python bench/tracking.py [--rows 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import CACHE

from mlops.core.config import DEFAULT_CONFIG

TARGET_PCT = 5.0


def generated_csv(rows: int, seed: int = 11) -> Path:
    """Sample data through the CLI, as a user would make it (cached under bench/results/)."""
    path = CACHE / f"mlops-generate-{rows}-{seed}.csv"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "mlops.cli", "data", "generate", "--rows", str(rows),
             "--seed", str(seed), "--out", str(path)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return path


def config_copy(folder: Path, mutate) -> Path:
    """The example's config, changed by `mutate`, in `folder`: its relative paths still
    name the project's files (they resolve from the project root, wherever the config is)."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    mutate(raw)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


WAITED = re.compile(r"the run waited ([0-9.]+) s on tracking")


def pipeline(data: Path, home: Path, config: Path, waits: list[float] | None = None) -> float:
    """Wall-clock of one `mlops pipeline run`; appends to `waits` how long it was blocked
    on tracking (what the run printed)."""
    argv = [sys.executable, "-m", "mlops.cli", "pipeline", "run", "--data", str(data)]
    start = time.perf_counter()
    out = subprocess.run(
        [*argv, "--config", str(config)],
        env={**os.environ, "MLOPS_HOME": str(home)},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    seconds = time.perf_counter() - start
    found = WAITED.search(out)
    if waits is not None and found:
        waits.append(float(found.group(1)))
    return seconds


TRACKING_ALONE = """
import json, sys, time
from pathlib import Path
t0, c0 = time.perf_counter(), time.process_time()
from mlops.core.config import load_config
from mlops.core.tracking import RunRecord, evaluation_metrics
from mlops.local.tracking import local_tracker
cfg = load_config()
run = local_tracker(cfg, Path(sys.argv[1])).start_run("alone", {"git_commit": "x"})
run.log(RunRecord(params={f"p{i}": str(i) for i in range(20)}))
run.log(RunRecord(curves={"validation:rmse": [float(i) for i in range(3000)]}))
run.log(RunRecord(metrics={"test_mse": 1.0, "test_r2": 0.9}, artifacts=[Path(sys.argv[2])]))
run.finish("FINISHED")
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}))
"""


def tracking_alone(home: Path, artifact: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", TRACKING_ALONE, str(home), str(artifact)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data = generated_csv(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "on").mkdir()
        (tmp / "off").mkdir()
        configs = {
            "on": config_copy(tmp / "on", lambda raw: None),
            "off": config_copy(
                tmp / "off", lambda raw: raw.setdefault("tracking", {}).update(enabled=False)
            ),
        }
        homes = {mode: tmp / f"home-{mode}" for mode in configs}
        first = {mode: pipeline(data, homes[mode], configs[mode]) for mode in configs}
        times: dict[str, list[float]] = {"on": [], "off": []}
        waits: list[float] = []
        for _ in range(args.repeat):  # alternate, so load drifts hit both alike
            for mode in ("off", "on"):
                times[mode].append(pipeline(data, homes[mode], configs[mode], waits))
        runs = sorted((homes["on"] / "runs").iterdir())
        tracked = json.loads((runs[-1] / "run.json").read_text()).get("tracking", {})
        alone = tracking_alone(homes["on"], runs[-1] / "run.json")
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    overhead = (on - off) / off * 100
    min_overhead = (min(times["on"]) - min(times["off"])) / min(times["off"]) * 100
    print(f"rows {args.rows}, {args.repeat} runs each (median wall-clock, whole process)")
    print(f"  tracking off   {off:6.2f} s   {' '.join(f'{t:.2f}' for t in times['off'])}")
    print(f"  tracking on    {on:6.2f} s   {' '.join(f'{t:.2f}' for t in times['on'])}")
    print(f"  first run with a new store (schema migrations): {first['on']:.2f} s "
          f"vs {first['off']:.2f} s untracked")  # fmt: skip
    print(f"  last tracked run id: {tracked.get('run_id') or '(none)'}")
    print(
        f"  tracking work alone (fresh interpreter, existing store): {alone['wall']:.2f} s wall, "
        f"{alone['cpu']:.2f} s CPU = {alone['wall'] / off * 100:.1f} % of an untracked run "
        "if it did not overlap at all"
    )
    wait = statistics.median(waits) if waits else float("nan")
    print(
        f"  blocked on tracking (run_id before registering + final flush): median {wait:.2f} s "
        f"= {wait / off * 100:.1f} % of an untracked run"
    )
    verdict = "ok" if min(overhead, min_overhead) <= TARGET_PCT else "ABOVE TARGET"
    print(
        f"overhead: median {overhead:+.1f} % (ratio {on / off:.3f}), minimum "
        f"{min_overhead:+.1f} % (ratio {min(times['on']) / min(times['off']):.3f}); "
        f"target <= {TARGET_PCT:g} %: {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
