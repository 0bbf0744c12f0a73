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

A split larger than `--stream-above-mb` (config data.stream_above_mb, 64 MB) is scored a
chunk at a time.

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
    STREAM_ABOVE_MB,
    TARGET,
    Y,
    read_split,
    read_split_chunks,
    split_mb,
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


@dataclass
class Scored:
    """Rows scored by the challenger (and the champion): what the report is made of."""

    target: pd.Series  # as read
    y: np.ndarray
    predicted: np.ndarray
    champion: np.ndarray  # NaN where the champion was not scored
    champion_note: str = ""

    def predictions(self) -> pd.DataFrame:
        return pd.DataFrame({TARGET: self.target.to_numpy(), Y: self.y,
                             PREDICTION: self.predicted, CHAMPION: self.champion})  # fmt: skip


def scored(rows: pd.DataFrame, challenger: Scorer, champion: Scorer | None) -> Scored:
    model = challenger.model
    y = targets(rows, model)
    predicted = challenger.score(rows)
    champion_predicted, note = np.full(len(rows), np.nan), ""
    if champion is not None:
        if champion.model.task != model.task:
            raise ValueError(
                f"the champion is a model of another task ({champion.model.task}) than "
                f"{model.task}: a task change needs a new model_package_group"
            )
        missing = champion.missing(rows)
        if missing:  # a feature the project dropped since: nothing to compare on these rows
            note = f"the champion was not scored: these rows lack its feature(s) {missing}"
        else:
            champion_predicted = champion.score(rows)
    return Scored(rows[model.manifest["target"]], y, predicted, champion_predicted, note)


def report_of(
    rows: Scored, challenger: Scorer, champion: Scorer | None, max_regression_pct: float
) -> dict:
    """The evaluation section of these scored rows."""
    model = challenger.model
    task, threshold = model.task, model.threshold
    y, predicted = rows.y, rows.predicted
    report = metrics.task_metrics(task, y, predicted, threshold)
    if rows.champion_note:
        report["champion_note"] = rows.champion_note
        print(f"warning: {rows.champion_note}")
    elif champion is not None:
        report["champion"] = metrics.task_metrics(task, y, rows.champion, champion.model.threshold)
    report[metrics.LIMITS[task]] = metrics.champion_limit(
        task, report.get("champion"), max_regression_pct
    )
    report["intervals"] = metrics.bootstrap_intervals(task, y, predicted)
    naive = float(challenger.manifest.get("naive_prediction", np.mean(y)))
    report["naive"] = metrics.naive_metrics(task, y, naive, threshold)
    report["rows"] = len(y)
    # Optional in a model family: the model card plots it when the family offers it.
    importance = getattr(getattr(model, "family", None), "importance", None)
    if importance is not None:
        report["feature_importance"] = importance(model.fitted)
    return report


def evaluate(
    rows: pd.DataFrame, challenger: Scorer, champion: Scorer | None, max_regression_pct: float
) -> tuple[dict, pd.DataFrame]:
    """(the evaluation section of these rows, their predictions file)."""
    result = scored(rows, challenger, champion)
    return report_of(result, challenger, champion, max_regression_pct), result.predictions()


def evaluate_split(
    folder: Path,
    challenger: Scorer,
    champion: Scorer | None,
    max_regression_pct: float,
    predictions_file: Path,
    stream_above_mb: float = STREAM_ABOVE_MB,
) -> dict:
    """`evaluate` a split folder and write its predictions file. A split over
    `stream_above_mb` is scored a chunk at a time, its predictions appended as they come:
    only the numbers the metrics need are held (four floats a row)."""
    if split_mb(folder) <= stream_above_mb:
        report, predictions = evaluate(read_split(folder), challenger, champion,
                                       max_regression_pct)  # fmt: skip
        predictions.to_csv(predictions_file, index=False)
        return report
    parts: list[Scored] = []
    done = 0
    for k, chunk in enumerate(read_split_chunks(folder)):
        part = scored(chunk, challenger, champion)
        part.predictions().to_csv(predictions_file, mode="a" if k else "w", header=not k,
                                  index=False)  # fmt: skip
        part.target = part.target.iloc[:0]  # written: the text is not kept
        parts.append(part)
        done += len(part.y)
        print(f"  {done:,} rows scored", flush=True)
    whole = Scored(
        pd.Series(dtype=object),
        *(np.concatenate([getattr(p, name) for p in parts]) for name in ("y", "predicted",
                                                                         "champion")),
        parts[0].champion_note,
    )  # fmt: skip
    return report_of(whole, challenger, champion, max_regression_pct)


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
    p.add_argument(
        "--stream-above-mb",
        type=float,
        default=STREAM_ABOVE_MB,
        help="a split larger than this is scored a chunk at a time",
    )
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
        report = evaluate_split(args.test_dir, challenger, champion, args.max_regression_pct,
                                out / HELD_OUT_PREDICTIONS, args.stream_above_mb)  # fmt: skip
        if has_rows(args.golden_dir):
            report["golden"] = evaluate_split(
                args.golden_dir, challenger, champion, args.max_regression_pct,
                out / GOLDEN_PREDICTIONS, args.stream_above_mb,
            )  # fmt: skip
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
