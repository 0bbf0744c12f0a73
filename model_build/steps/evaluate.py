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

With `--task binary_classification` the metrics are SageMaker's
`binary_classification_metrics` (confusion matrix with actual labels outside and
predicted inside, accuracy, precision, recall, F0.5/F1/F2 and their best-constant
baselines, rates, ROC and precision-recall curves, AUC) at `--threshold`, plus
`log_loss` in the same shape; the champion check is on log loss
(`champion_log_loss_limit`).

With `--golden-dir` holding the golden set (config data.golden: raw CSV with a
header, as the source data), both models are also scored on it, with the task's
metrics, under "golden" (rows, the metrics section, "champion", the champion limit).
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from inference import Model, encode_frame, encode_labels, model_fn
from train import read_channel, read_table, split_target

MODEL_ARCHIVE = "model.tar.gz"
CURVE_POINTS = 101  # ROC and precision-recall curves are thinned to at most this many points
CLASSIFICATION = "binary_classification"


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


def _value(value: float, std: float | str = "NaN") -> dict:
    return {"value": float(value), "standard_deviation": std}


def _thin(*curves: np.ndarray) -> list[list[float]]:
    """At most CURVE_POINTS points of each curve, always keeping both ends."""
    n = len(curves[0])
    keep = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int))
    return [[float(v) for v in curve[keep]] for curve in curves]


def _fbeta(precision: float, recall: float, beta: float) -> float:
    b2 = beta * beta
    denominator = b2 * precision + recall
    return (1 + b2) * precision * recall / denominator if denominator > 0 else 0.0


def classification_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """SageMaker's binary_classification_metrics for probabilities `scores`, plus log_loss."""
    from sklearn.metrics import log_loss, precision_recall_curve, roc_auc_score, roc_curve

    y_true = np.asarray(y_true, dtype=int)
    predicted = (np.asarray(scores) >= threshold).astype(int)
    tp = int(((predicted == 1) & (y_true == 1)).sum())
    tn = int(((predicted == 0) & (y_true == 0)).sum())
    fp = int(((predicted == 1) & (y_true == 0)).sum())
    fn = int(((predicted == 0) & (y_true == 1)).sum())
    n = len(y_true)
    positives, negatives = tp + fn, tn + fp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / positives if positives else 0.0
    prevalence = positives / n if n else 0.0  # the best constant classifier says "positive"
    both = positives and negatives
    fpr, tpr, _ = roc_curve(y_true, scores) if both else (np.zeros(1), np.zeros(1), None)
    precisions, recalls, _ = precision_recall_curve(y_true, scores)
    clipped = np.clip(scores, 1e-15, 1 - 1e-15)
    row_loss = -(y_true * np.log(clipped) + (1 - y_true) * np.log(1 - clipped))
    fpr, tpr = _thin(fpr, tpr)
    precisions, recalls = _thin(precisions, recalls)
    metrics = {
        "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
        "recall": _value(recall),
        "precision": _value(precision),
        "accuracy": _value((tp + tn) / n if n else 0.0),
        "recall_best_constant_classifier": _value(1.0),
        "precision_best_constant_classifier": _value(prevalence),
        "accuracy_best_constant_classifier": _value(prevalence),
        "true_positive_rate": _value(recall),
        "true_negative_rate": _value(tn / negatives if negatives else 0.0),
        "false_positive_rate": _value(fp / negatives if negatives else 0.0),
        "false_negative_rate": _value(fn / positives if positives else 0.0),
        "receiver_operating_characteristic_curve": {
            "false_positive_rates": fpr,
            "true_positive_rates": tpr,
        },
        "precision_recall_curve": {"precisions": precisions, "recalls": recalls},
        "auc": _value(roc_auc_score(y_true, scores) if both else 0.5),
    }
    for name, beta in (("f0_5", 0.5), ("f1", 1.0), ("f2", 2.0)):
        metrics[name] = _value(_fbeta(precision, recall, beta))
        metrics[f"{name}_best_constant_classifier"] = _value(_fbeta(prevalence, 1.0, beta))
    metrics["log_loss"] = _value(log_loss(y_true, clipped, labels=[0, 1]), float(row_loss.std()))
    return metrics


def read_test(test_dir: Path, model: Model) -> tuple[object, np.ndarray]:
    """The test split as this model takes it: (features, targets as 0/1 or numbers)."""
    if model.task != CLASSIFICATION and not model.categories:
        return read_channel(test_dir)
    X, target = split_target(read_table(test_dir, model.features, list(model.categories)))
    X = encode_frame(X, model.categories) if model.categories else X.to_numpy(dtype=np.float64)
    if model.task == CLASSIFICATION:
        return X, encode_labels(target, model.class_labels)
    return X, target.astype(np.float64).to_numpy()


def score(model: Model, test_dir: Path, threshold: float) -> tuple[dict, int]:
    """({"regression_metrics": ...} or {"binary_classification_metrics": ...}, rows scored)."""
    X, y = read_test(test_dir, model)
    if model.task == CLASSIFICATION:
        scores = model.booster.inplace_predict(X)
        return {"binary_classification_metrics": classification_metrics(y, scores, threshold)}, len(
            y
        )
    return {"regression_metrics": evaluate_model(model, X, y)}, len(y)


def load_archive(archive: Path, workdir: Path) -> Model:
    """Unpack a model.tar.gz (as SageMaker produces it) and load it through inference.model_fn."""
    with tarfile.open(archive) as tar:
        tar.extractall(workdir, filter="data")
    return model_fn(str(workdir))


def champion_log_loss_limit(report: dict, max_regression_pct: float) -> float:
    """The classifier's champion check: log loss at most this much above the champion's."""
    champion = report.get("champion")
    if not champion:
        return sys.float_info.max
    value = champion["binary_classification_metrics"]["log_loss"]["value"]
    return value * (1.0 + max_regression_pct / 100.0)


def champion_mse_limit(report: dict, max_regression_pct: float) -> float:
    """The champion check's MSE limit; without a champion there is nothing to regress against."""
    champion = report.get("champion")
    if not champion:
        return sys.float_info.max
    return champion["regression_metrics"]["mse"]["value"] * (1.0 + max_regression_pct / 100.0)


def golden_as_split(folder: Path, features: list[str], target: str, out: Path) -> int:
    """The golden set (raw CSV file(s) with a header, as the source data) written in the
    test split's layout (target first, no header) into `out`; its row count."""
    import pandas as pd

    files = sorted(folder.glob("*.csv"))
    frames = [pd.read_csv(f, dtype=str, keep_default_na=False) for f in files]
    df = pd.concat(frames, ignore_index=True)
    missing = [c for c in [*features, target] if c not in df.columns]
    if missing:
        raise ValueError(f"golden set lacks column(s) {missing}; has {list(df.columns)}")
    out.mkdir(parents=True, exist_ok=True)
    df[[target, *features]].to_csv(out / "golden.csv", header=False, index=False)
    return len(df)


def score_golden(
    folder: Path,
    archive: Path,
    champion: Path | None,
    max_regression_pct: float,
    threshold: float = 0.5,
) -> dict | None:
    """Challenger and champion on the golden set, in evaluation.json's shape (the task's
    metrics section, "champion", the task's champion limit); None without one."""
    if not folder.is_dir() or not any(folder.glob("*.csv")):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        model = load_archive(archive, Path(tmp) / "model")
        split = Path(tmp) / "golden"
        golden_as_split(folder, model.features, model.manifest["target"], split)
        golden, rows = score(model, split, threshold)
        golden = {"rows": rows, **golden}
        if champion is not None:
            old = load_archive(champion, Path(tmp) / "champion")
            old_split = Path(tmp) / "golden-champion"
            golden_as_split(folder, old.features, model.manifest["target"], old_split)
            golden["champion"], _ = score(old, old_split, threshold)
    if model.task == CLASSIFICATION:
        golden["champion_log_loss_limit"] = champion_log_loss_limit(golden, max_regression_pct)
    else:
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
    p.add_argument("--task", choices=("regression", CLASSIFICATION), default="regression")
    p.add_argument("--threshold", type=float, default=0.5)
    args = p.parse_args(argv)

    archive = find_archive(args.model_dir)
    if archive is None:
        raise FileNotFoundError(f"no {MODEL_ARCHIVE} in {args.model_dir}")
    with tempfile.TemporaryDirectory() as tmp:
        report, rows = score(load_archive(archive, Path(tmp)), args.test_dir, args.threshold)
    champion = find_archive(args.champion_dir)
    if champion is not None:
        with tempfile.TemporaryDirectory() as tmp:
            report["champion"], _ = score(
                load_archive(champion, Path(tmp)), args.test_dir, args.threshold
            )
    section = (
        "binary_classification_metrics" if args.task == CLASSIFICATION else "regression_metrics"
    )
    if section not in report.get("champion", report):
        raise ValueError(
            f"the champion is a model of another task than {args.task}: its metrics cannot be "
            "compared (a task change needs a new model_package_group)"
        )
    if args.task == CLASSIFICATION:
        report["champion_log_loss_limit"] = champion_log_loss_limit(report, args.max_regression_pct)
        metrics = report["binary_classification_metrics"]
    else:
        report["champion_mse_limit"] = champion_mse_limit(report, args.max_regression_pct)
        metrics = report["regression_metrics"]
    golden = score_golden(
        args.golden_dir, archive, champion, args.max_regression_pct, args.threshold
    )
    if golden:
        report["golden"] = golden
    report["test_rows"] = rows
    args.evaluation_dir.mkdir(parents=True, exist_ok=True)
    (args.evaluation_dir / "evaluation.json").write_text(json.dumps(report, indent=2))
    print(
        json.dumps(
            {k: v["value"] for k, v in metrics.items() if isinstance(v, dict) and "value" in v}
        )
    )


if __name__ == "__main__":
    main()
