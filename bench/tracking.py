"""Tracking overhead: `mlops pipeline run` on 10k rows with MLflow tracking on vs off.

Both homes are warmed up by one untimed run first (creating the MLflow store runs its
schema migrations once per home: reported apart). Target: overhead <= 5 % of the run.

    python bench/tracking.py [--rows 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from _common import CACHE, timed_child

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
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    mutate(raw)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def pipeline(data: Path, home: Path, config: Path) -> float:
    argv = [sys.executable, "-m", "mlops.cli", "pipeline", "run", "--data", str(data)]
    return timed_child([*argv, "--config", str(config)], env={"MLOPS_HOME": str(home)})[0]


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
        for _ in range(args.repeat):  # alternate, so load drifts hit both alike
            for mode in ("off", "on"):
                times[mode].append(pipeline(data, homes[mode], configs[mode]))
        runs = sorted((homes["on"] / "runs").iterdir())
        tracked = json.loads((runs[-1] / "run.json").read_text()).get("tracking", {})
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    overhead = (on - off) / off * 100
    print(f"rows {args.rows}, {args.repeat} runs each (median wall-clock, whole process)")
    print(f"  tracking off   {off:6.2f} s   {' '.join(f'{t:.2f}' for t in times['off'])}")
    print(f"  tracking on    {on:6.2f} s   {' '.join(f'{t:.2f}' for t in times['on'])}")
    print(f"  first run with a new store (schema migrations): {first['on']:.2f} s "
          f"vs {first['off']:.2f} s untracked")  # fmt: skip
    print(f"  last tracked run id: {tracked.get('run_id') or '(none)'}")
    verdict = "ok" if overhead <= TARGET_PCT else "ABOVE TARGET"
    print(
        f"overhead {overhead:+.1f} % (ratio {on / off:.3f}; target <= {TARGET_PCT:g} %): {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
