"""evaluate: score the model (and the champion, when given) on the held-out rows, once for all.

Runs unchanged as a SageMaker processing job (on the model family's image) and under
the local runner. Each model is loaded from its own artifact by its own serving code
(`code/` inside it): the champion is scored exactly as its endpoint scores, even when
this checkout's code has changed since. Both score the same raw held-out rows (and the
golden set's, config data.golden), and the step writes what every later reader uses:

- evaluation.json   the task's metrics in SageMaker's model quality format, the
                    champion's under "champion", the champion check's limit, 95 %
                    bootstrap intervals, the naive predictor's metrics, and the same for
                    the golden set under "golden" (stepkit/metrics.py)
- predictions.csv   per held-out row: target, y, challenger and champion predictions
- golden_predictions.csv  the same for the golden rows

The PR report, the gate, `mlops init`'s calibration, drift and monitoring read these and
never score the models again. The model's serving contract is checked here too.
"""

from __future__ import annotations

import argparse
import json
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from stepkit import metrics
from stepkit.artifact import CODE_DIR
from stepkit.code_loader import load_code
from stepkit.contract import check_handler, check_model
from stepkit.splits import (
    CHAMPION,
    GOLDEN_PREDICTIONS,
    HELD_OUT_PREDICTIONS,
    PREDICTION,
    TARGET,
    Y,
    read_split,
)

MODEL_ARCHIVE = "model.tar.gz"


@dataclass
class Scorer:
    """A model loaded by its own serving code."""

    handler: ModuleType
    model: object

    @property
    def manifest(self) -> dict:
        return getattr(self.model, "manifest", {})

    def missing(self, rows: pd.DataFrame) -> list[str]:
        """The model's features these rows lack."""
        return [f for f in self.model.features if f not in rows.columns]

    def score(self, rows: pd.DataFrame) -> np.ndarray:
        missing = self.missing(rows)
        if missing:
            raise ValueError(f"the rows lack the model's feature(s) {missing}")
        predictions, reasons = self.handler.score_frame(self.model, rows)
        bad = np.flatnonzero(reasons != "")
        if bad.size:
            raise ValueError(
                f"{bad.size} row(s) cannot be scored, e.g. row {bad[0] + 1}: {reasons[bad[0]]}"
            )
        return predictions


def load_archive(archive: Path, workdir: Path) -> Scorer:
    """Unpack a model.tar.gz and load it with the serving code it carries."""
    with tarfile.open(archive) as tar:
        tar.extractall(workdir, filter="data")
    handler = load_code(workdir / CODE_DIR)
    check_handler(handler)
    model = handler.model_fn(str(workdir))
    check_model(model)
    return Scorer(handler, model)


def targets(rows: pd.DataFrame, model) -> np.ndarray:
    """The target as metrics take it: numbers, or 0/1 by the model's class labels."""
    from stepkit.rows import category_keys

    target = rows[model.manifest["target"]]
    if model.class_labels is None:
        values = pd.to_numeric(target, errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:  # a metric over them would be NaN, and the gate's verdict meaningless
            raise ValueError(
                f"{bad.size} row(s) have no numeric target {target.name}, e.g. row "
                f"{bad[0] + 1}: {str(target.iloc[bad[0]])!r}"
            )
        return values
    keys = category_keys(target)
    unknown = keys[~keys.isin(model.class_labels)]
    if not unknown.empty:
        raise ValueError(f"label {unknown.iloc[0]!r} is not one of {model.class_labels}")
    return (keys == model.class_labels[1]).to_numpy(dtype=float)


def evaluate(
    rows: pd.DataFrame, challenger: Scorer, champion: Scorer | None, max_regression_pct: float
) -> tuple[dict, pd.DataFrame]:
    """(the evaluation section of these rows, their predictions file)."""
    model = challenger.model
    task, threshold = model.task, model.threshold
    y = targets(rows, model)
    predicted = challenger.score(rows)
    report = metrics.task_metrics(task, y, predicted, threshold)
    champion_predicted = np.full(len(rows), np.nan)
    if champion is not None:
        if champion.model.task != task:
            raise ValueError(
                f"the champion is a model of another task ({champion.model.task}) than "
                f"{task}: a task change needs a new model_package_group"
            )
        missing = champion.missing(rows)
        if missing:  # a feature the project dropped since: nothing to compare on these rows
            report["champion_note"] = (
                f"the champion was not scored: these rows lack its feature(s) {missing}"
            )
            print(f"warning: {report['champion_note']}")
        else:
            champion_predicted = champion.score(rows)
            report["champion"] = metrics.task_metrics(
                task, y, champion_predicted, champion.model.threshold
            )
    report[metrics.LIMITS[task]] = metrics.champion_limit(
        task, report.get("champion"), max_regression_pct
    )
    report["intervals"] = metrics.bootstrap_intervals(task, y, predicted)
    naive = float(challenger.manifest.get("naive_prediction", np.mean(y)))
    report["naive"] = metrics.naive_metrics(task, y, naive, threshold)
    report["rows"] = len(rows)
    # Optional in a model family: the model card plots it when the family offers it.
    importance = getattr(getattr(model, "family", None), "importance", None)
    if importance is not None:
        report["feature_importance"] = importance(model.fitted)
    predictions = pd.DataFrame(
        {
            TARGET: rows[model.manifest["target"]],
            Y: y,
            PREDICTION: predicted,
            CHAMPION: champion_predicted,
        }
    )
    return report, predictions


def find_archive(path: Path) -> Path | None:
    if path.is_file():
        return path
    found = sorted(path.glob(MODEL_ARCHIVE)) if path.is_dir() else []
    return found[0] if found else None


def has_rows(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.csv"))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", type=Path, default=Path("/opt/ml/processing/model"))
    p.add_argument("--test-dir", type=Path, default=Path("/opt/ml/processing/test"))
    p.add_argument("--champion-dir", type=Path, default=Path("/opt/ml/processing/champion"))
    p.add_argument("--golden-dir", type=Path, default=Path("/opt/ml/processing/golden"))
    p.add_argument("--evaluation-dir", type=Path, default=Path("/opt/ml/processing/evaluation"))
    p.add_argument("--max-regression-pct", type=float, default=0.0)
    args = p.parse_args(argv)

    archive = find_archive(args.model_dir)
    if archive is None:
        raise FileNotFoundError(f"no {MODEL_ARCHIVE} in {args.model_dir}")
    champion_archive = find_archive(args.champion_dir)
    out = args.evaluation_dir
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        challenger = load_archive(archive, Path(tmp) / "challenger")
        champion = (
            load_archive(champion_archive, Path(tmp) / "champion") if champion_archive else None
        )
        report, predictions = evaluate(
            read_split(args.test_dir), challenger, champion, args.max_regression_pct
        )
        predictions.to_csv(out / HELD_OUT_PREDICTIONS, index=False)
        if has_rows(args.golden_dir):
            golden, golden_predictions = evaluate(
                read_split(args.golden_dir), challenger, champion, args.max_regression_pct
            )
            report["golden"] = golden
            golden_predictions.to_csv(out / GOLDEN_PREDICTIONS, index=False)
    report["test_rows"] = report["rows"]
    (out / "evaluation.json").write_text(json.dumps(report, indent=2))
    section = report[metrics.SECTIONS[challenger.model.task]]
    print(
        json.dumps(
            {k: v["value"] for k, v in section.items() if isinstance(v, dict) and "value" in v}
        )
    )


if __name__ == "__main__":
    main()
