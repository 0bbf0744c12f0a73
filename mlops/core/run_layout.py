"""Where a pipeline run's outputs are, on either backend, and the one reader of each.

A run writes every step output to `<run>/<step>/<output>/`: locally under
`$MLOPS_HOME/runs/<run id>/`, on SageMaker under `s3://<bucket>/<prefix>/runs/<execution
id>/`. Which step writes what is the pipeline declaration's (`Pipeline.held_out`,
`.evaluation`, `.baseline`, `.model`); the file names are these. Smoke tests, drift,
monitoring and the PR report find a run's held-out rows and its evaluate step's
predictions here, and nowhere else.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlops.core.errors import MlopsError
from mlops.core.graph import Pipeline
from mlops.core.registry import ModelVersion
from stepkit.splits import GOLDEN_PREDICTIONS, HELD_OUT_PREDICTIONS, read_predictions, read_split

EVALUATION_FILE = "evaluation.json"
BASELINE_FILE = "baseline.json"
MODEL_ARCHIVE = "model.tar.gz"
RUNS = "runs"
__all__ = ["GOLDEN_PREDICTIONS", "HELD_OUT_PREDICTIONS", "read_predictions", "read_split"]


def relative(output: str) -> str:
    """`"preprocess.test"` -> `"preprocess/test"`: an output's folder within its run."""
    step, name = output.split(".", 1)
    return f"{step}/{name}"


def run_dir(home: Path, run_id: str) -> Path:
    return Path(home) / RUNS / str(run_id)


def held_out_folder(home: Path, run_id: str, graph: Pipeline) -> Path:
    """The raw held-out rows of a local run (CSV with a header, as the input)."""
    return run_dir(home, run_id) / relative(graph.held_out)


def evaluation_folder(home: Path, run_id: str, graph: Pipeline) -> Path:
    """evaluation.json and the predictions files of a local run."""
    return run_dir(home, run_id) / relative(graph.evaluation)


def model_archive(home: Path, run_id: str, graph: Pipeline) -> Path:
    """The packed model of a local run (the runner packs a training step's model folder)."""
    step = graph.model.split(".", 1)[0]
    return run_dir(home, run_id) / step / "output" / MODEL_ARCHIVE


def s3_output(run_prefix: str, output: str) -> str:
    """`s3://<bucket>/<prefix>/runs/<execution id>` and an output -> its folder URI."""
    return f"{run_prefix.rstrip('/')}/{relative(output)}"


def s3_run_prefix(uri: str, output: str) -> str:
    """The run prefix of an S3 URI inside `output`'s folder (e.g. a version's baseline.json,
    which SageMaker resolves even when its step came from the cache)."""
    marker = f"/{relative(output)}/"
    if not uri.startswith("s3://") or marker not in uri:
        raise ValueError(f"{uri} is not inside a run's {relative(output)}/ folder")
    return uri.split(marker, 1)[0]


def predictions_file(evaluation_uri: str, golden: bool = False) -> str:
    """The predictions file beside an evaluation.json (a local path or an S3 URI)."""
    name = GOLDEN_PREDICTIONS if golden else HELD_OUT_PREDICTIONS
    return evaluation_uri.rsplit("/", 1)[0] + "/" + name


HELD_OUT_KEY = "held_out_uri"  # lineage: where a version's held-out rows are
LEGACY_HELD_OUT = "preprocess.test"  # versions registered before the key existed


def version_held_out(version: ModelVersion, home: Path) -> str:
    """Where a registered version's held-out rows are: a local folder or an S3 prefix."""
    recorded = version.lineage.get(HELD_OUT_KEY)
    if recorded:
        return str(recorded)
    run_id = version.lineage.get("run_id")
    if not run_id:
        raise MlopsError(f"model version {version.version} has no run_id in its lineage")
    return str(run_dir(home, run_id) / relative(LEGACY_HELD_OUT))


def local_held_out(version: ModelVersion, home: Path) -> Path:
    """A local version's held-out folder; MlopsError when it is not on this machine."""
    where = version_held_out(version, home)
    path = Path(where)
    if where.startswith("s3://") or not path.is_dir() or not any(path.glob("*.csv")):
        raise MlopsError(
            f"held-out rows of model version {version.version} not found: {where} (the run "
            f"{version.lineage.get('run_id', '?')} is missing from $MLOPS_HOME)"
        )
    return path


def read_held_out(folder: Path, nrows: int | None = None) -> pd.DataFrame:
    """A run's held-out rows as text, exactly as the input had them."""
    return read_split(folder, nrows)
