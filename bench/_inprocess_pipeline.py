"""The pipeline's step functions called back to back in one process (the overhead baseline).

Same scripts, same arguments, same files as the local runner, minus the runner:
no subprocesses, no per-step interpreter start, no logs. Usage: DATA_CSV WORK_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "model_build" / "steps"))

import evaluate  # noqa: E402
import preprocess  # noqa: E402
import train  # noqa: E402
import validate  # noqa: E402

from mlops.core.config import load_config  # noqa: E402
from mlops.core.graph import hyperparameter_args, load_pipeline  # noqa: E402
from mlops.local.runner import pack_model  # noqa: E402


def main() -> None:
    data, work = Path(sys.argv[1]), Path(sys.argv[2])
    cfg = load_config()
    graph = load_pipeline(cfg)
    raw = work / "raw"
    raw.mkdir(parents=True)
    (raw / data.name).symlink_to(data.resolve())
    suite = work / "suite"
    suite.mkdir()
    (suite / "suite.json").symlink_to(cfg.suite_file)
    validate.main([*map(str, graph.step("validate").arguments), "--raw-dir", str(raw),
                   "--suite-dir", str(suite), "--report-dir", str(work / "report")])  # fmt: skip
    split_dirs = []
    for name in ("train", "validation", "test", "baseline"):
        split_dirs += [f"--{name}-dir", str(work / name)]
    preprocess.main([*map(str, graph.step("preprocess").arguments), "--raw-dir", str(raw),
                     *split_dirs])  # fmt: skip
    train.main([*hyperparameter_args(graph.step("train").hyperparameters),
                "--model-dir", str(work / "model"), "--output-data-dir", str(work / "output-data"),
                "--train", str(work / "train"), "--validation", str(work / "validation")])  # fmt: skip
    pack_model(work / "model", work / "output" / "model.tar.gz")
    evaluate.main(["--model-dir", str(work / "output"), "--test-dir", str(work / "test"),
                   "--champion-dir", str(work / "none"), "--evaluation-dir", str(work / "ev")])  # fmt: skip


if __name__ == "__main__":
    main()
