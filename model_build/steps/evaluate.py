"""evaluate: score the model (and the champion, when given) on the held-out test split.

Runs unchanged as a SageMaker Processing job and under the local runner. Writes
evaluation.json in SageMaker's model quality format:
`{"regression_metrics": {"mse": {"value": ..., "standard_deviation": ...}, ...}}`.
When a champion model is given, it is scored on the same rows and its metrics
are written under "champion", so the gate compares like with like.

`champion_mse_limit` is the highest challenger MSE the champion check allows,
champion MSE x (1 + max_regression_pct / 100), or the largest float when no
champion was scored. It is always present so that a SageMaker ConditionStep,
which has no arithmetic, can compare against it with JsonGet.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from inference import Model, model_fn
from train import read_channel

MODEL_ARCHIVE = "model.tar.gz"


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """MSE, RMSE, MAE, R² with SageMaker's {"value", "standard_deviation"} shape."""
    errors = y_pred - y_true
    squared = errors**2
    mse = float(squared.mean())
    total = float(((y_true - y_true.mean()) ** 2).sum())
    r2 = 1.0 - float(squared.sum()) / total if total > 0 else 0.0
    return {
        "mse": {"value": mse, "standard_deviation": float(squared.std())},
        "rmse": {"value": float(np.sqrt(mse)), "standard_deviation": "NaN"},
        "mae": {
            "value": float(np.abs(errors).mean()),
            "standard_deviation": float(np.abs(errors).std()),
        },
        "r2": {"value": r2, "standard_deviation": "NaN"},
    }


def evaluate_model(model: Model, X: np.ndarray, y: np.ndarray) -> dict:
    return regression_metrics(y, model.booster.inplace_predict(X))


def load_archive(archive: Path, workdir: Path) -> Model:
    """Unpack a model.tar.gz (as SageMaker produces it) and load it through inference.model_fn."""
    with tarfile.open(archive) as tar:
        tar.extractall(workdir, filter="data")
    return model_fn(str(workdir))


def champion_mse_limit(report: dict, max_regression_pct: float) -> float:
    """The champion check's MSE limit; without a champion there is nothing to regress against."""
    champion = report.get("champion")
    if not champion:
        return sys.float_info.max
    return champion["regression_metrics"]["mse"]["value"] * (1.0 + max_regression_pct / 100.0)


def read_golden(folder: Path, features: list[str], target: str) -> tuple[np.ndarray, np.ndarray]:
    """The golden set: raw CSV file(s) with a header, as the source data (target included)."""
    import pandas as pd

    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    df = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    return df[features].to_numpy(dtype=float), df[target].to_numpy(dtype=float)


def score_golden(
    folder: Path, archive: Path, champion: Path | None, max_regression_pct: float
) -> dict | None:
    """Challenger and champion on the golden set, in evaluation.json's shape; None without one."""
    if not folder.is_dir() or not any(folder.glob("*.csv")):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        model = load_archive(archive, Path(tmp))
        X, y = read_golden(folder, model.features, model.manifest["target"])
        golden = {"rows": len(y), "regression_metrics": evaluate_model(model, X, y)}
    if champion is not None:
        with tempfile.TemporaryDirectory() as tmp:
            old = load_archive(champion, Path(tmp))
            Xc, yc = read_golden(folder, old.features, model.manifest["target"])
            golden["champion"] = {"regression_metrics": evaluate_model(old, Xc, yc)}
    golden["champion_mse_limit"] = champion_mse_limit(golden, max_regression_pct)
    return golden


def find_archive(path: Path) -> Path | None:
    if path.is_file():
        return path
    found = sorted(path.glob(MODEL_ARCHIVE)) if path.is_dir() else []
    return found[0] if found else None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", type=Path, default=Path("/opt/ml/processing/model"))
    p.add_argument("--test-dir", type=Path, default=Path("/opt/ml/processing/test"))
    p.add_argument("--champion-dir", type=Path, default=Path("/opt/ml/processing/champion"))
    p.add_argument("--evaluation-dir", type=Path, default=Path("/opt/ml/processing/evaluation"))
    p.add_argument("--golden-dir", type=Path, default=Path("/opt/ml/processing/golden"))
    p.add_argument("--max-regression-pct", type=float, default=0.0)
    args = p.parse_args(argv)

    X, y = read_channel(args.test_dir)
    archive = find_archive(args.model_dir)
    if archive is None:
        raise FileNotFoundError(f"no {MODEL_ARCHIVE} in {args.model_dir}")
    with tempfile.TemporaryDirectory() as tmp:
        report = {"regression_metrics": evaluate_model(load_archive(archive, Path(tmp)), X, y)}
    champion = find_archive(args.champion_dir)
    if champion is not None:
        with tempfile.TemporaryDirectory() as tmp:
            report["champion"] = {
                "regression_metrics": evaluate_model(load_archive(champion, Path(tmp)), X, y)
            }
    report["champion_mse_limit"] = champion_mse_limit(report, args.max_regression_pct)
    golden = score_golden(args.golden_dir, archive, champion, args.max_regression_pct)
    if golden:
        report["golden"] = golden
    report["test_rows"] = len(y)
    args.evaluation_dir.mkdir(parents=True, exist_ok=True)
    (args.evaluation_dir / "evaluation.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v["value"] for k, v in report["regression_metrics"].items()}))


if __name__ == "__main__":
    main()
