"""Drift: how far each feature of a data file moved from the training baseline.

The statistic is the population stability index (PSI): the data is binned with
the bin edges that preprocessing recorded for the training split (deciles, or
one bin per value for discrete features) and compared with the training
proportions, PSI = sum over bins of (actual - expected) * ln(actual / expected).
A bin that is empty on one side counts as EPSILON so the sum stays finite.
Rule of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2 a shift worth a look.

A string categorical feature's baseline holds level frequencies instead: its PSI is
over the training levels plus one bin for levels training never saw (OTHER), so a
new category shows up as drift.

Beside the features, two more rows, each with the same threshold:
- target: the file's target column (when it has one) against the training target's
  distribution that preprocessing recorded in the baseline (same bins; label proportions
  for a classifier);
- prediction: the file scored by the baseline's model version against that version's
  predictions on its held-out rows (`mlops.core.monitor.prediction_drift`, the rule
  monitoring uses; the scoring is the backend's).
A row that cannot be computed is skipped with a one-line reason.

Pure functions on arrays and dicts; reading files and exit codes belong to the CLI.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlops.core.errors import UsageError
from stepkit.baseline import MISSING as BASELINE_MISSING
from stepkit.baseline import level_names
from stepkit.rows import typed_frame

EPSILON = 1e-4  # stands in for an empty bin's proportion
MISSING = BASELINE_MISSING  # the baseline's level for empty categorical values
OTHER = "(other)"  # the bin of levels the training split did not have


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    bins: int
    baseline_mean: float | None  # None for a categorical feature
    current_mean: float | None
    missing: int  # values left out because they are empty
    drifted: bool


def bin_proportions(values: np.ndarray, inner_edges: list[float]) -> np.ndarray:
    """Share of `values` per bin; bins as preprocessing made them (right-closed inner edges)."""
    edges = np.asarray(inner_edges, dtype=float)
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return counts / max(values.size, 1)


def psi(expected: np.ndarray, actual: np.ndarray, epsilon: float = EPSILON) -> float:
    """Population stability index of two proportion vectors over the same bins."""
    e = np.clip(np.asarray(expected, dtype=float), epsilon, None)
    a = np.clip(np.asarray(actual, dtype=float), epsilon, None)
    return float(np.sum((a - e) * np.log(a / e)))


def feature_drift(name: str, values: np.ndarray, stats: dict, threshold: float) -> FeatureDrift:
    """PSI of one feature's values against its baseline statistics."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        raise UsageError(f"column {name!r} has no values to compare with the baseline")
    expected = np.asarray(stats["proportions"], dtype=float)
    if expected.size != len(stats["bin_edges"]) + 1:
        raise UsageError(f"baseline of {name!r} has {expected.size} proportions for its bins")
    value = psi(expected, bin_proportions(present, stats["bin_edges"]))
    return FeatureDrift(
        feature=name,
        psi=value,
        bins=int(expected.size),
        baseline_mean=float(stats["mean"]),
        current_mean=float(present.mean()),
        missing=int(values.size - present.size),
        drifted=value > threshold,
    )


def level_text(values) -> np.ndarray:
    """Categorical values as the baseline names them: their category key, empty as MISSING
    (stepkit.baseline, which the preprocess step wrote the baseline with)."""
    return level_names(pd.Series(values, dtype=object)).to_numpy(dtype=object)


def categorical_drift(name: str, values, stats: dict, threshold: float) -> FeatureDrift:
    """PSI of a categorical feature over the training levels and one bin for unseen ones."""
    levels = list(stats["frequencies"])
    if len(values) == 0:
        raise UsageError(f"column {name!r} has no values to compare with the baseline")
    text = level_text(values)
    known = {level: i for i, level in enumerate(levels)}
    index = np.array([known.get(v, len(levels)) for v in text])
    actual = np.bincount(index, minlength=len(levels) + 1) / len(text)
    expected = np.array([*stats["frequencies"].values(), 0.0], dtype=float)
    value = psi(expected, actual)
    return FeatureDrift(
        feature=name,
        psi=value,
        bins=len(levels) + 1,
        baseline_mean=None,  # categories have no mean
        current_mean=None,
        missing=int((text == MISSING).sum()),
        drifted=value > threshold,
    )


def baseline_columns(df, baseline: dict) -> dict[str, np.ndarray]:
    """The baseline's features present in a DataFrame, typed as training typed them
    (`stepkit.rows`: numbers as floats, NaN when missing; text features as category keys).
    Read the file as text (`stepkit.splits.read_split`): "NA" is then a level, as it was
    in training, not a missing value. UsageError for text where the baseline has numbers."""
    features = baseline["features"]
    names = [n for n in features if n in df.columns]
    text = [n for n in names if features[n].get("type") == "categorical"]
    typed, reasons = typed_frame(df[names], names, text)
    bad = np.flatnonzero(reasons != "")
    if bad.size:
        raise UsageError(
            f"row {bad[0] + 1}: {reasons[bad[0]]} ({bad.size} row(s) like it): "
            "run `mlops data validate` first"
        )
    return {name: typed[name].to_numpy() for name in names}


def compare(columns: dict[str, np.ndarray], baseline: dict, threshold: float) -> list[FeatureDrift]:
    """Drift of every baseline feature; `columns` are `baseline_columns`' typed columns."""
    features = baseline["features"]
    missing = [name for name in features if name not in columns]
    if missing:
        raise UsageError(f"the data lacks baseline feature(s) {missing}")
    return [
        categorical_drift(name, columns[name], stats, threshold)
        if stats.get("type") == "categorical"
        else feature_drift(name, columns[name], stats, threshold)
        for name, stats in features.items()
    ]


def target_drift(df, baseline: dict, threshold: float) -> tuple[FeatureDrift | None, str]:
    """The target column's drift against the training target, or (None, why it was skipped)."""
    stats = baseline.get("target")
    if not stats:
        return None, "target drift skipped: the baseline has no target statistics"
    name = stats["name"]
    if name not in df.columns:
        return None, f"target drift skipped: the data has no {name!r} column"
    if stats.get("type") == "categorical":
        return categorical_drift(name, df[name].to_numpy(dtype=object), stats, threshold), ""
    # as the baseline took the training target: a value that is not a number is missing
    values = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)
    return feature_drift(name, values, stats, threshold), ""


def prediction_row(result: dict, unscored: int = 0) -> FeatureDrift:
    """`mlops.core.monitor.prediction_drift`'s result as a drift row; `unscored` rows the
    model refused are counted as missing."""
    return FeatureDrift(
        feature="prediction",
        psi=float(result["psi"]),
        bins=int(result["bins"]),
        baseline_mean=float(result["reference_mean"]),
        current_mean=float(result["mean"]),
        missing=unscored,
        drifted=bool(result["drifted"]),
    )


def load_baseline(path: Path) -> dict:
    """A baseline.json written by preprocessing, checked for the fields drift needs."""
    try:
        baseline = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"baseline file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"baseline {path} is not readable JSON: {exc}") from None
    features = baseline.get("features") if isinstance(baseline, dict) else None
    if not isinstance(features, dict) or not features:
        raise UsageError(f"baseline {path} has no 'features' statistics")
    for name, stats in features.items():
        if stats.get("type") == "categorical":
            if not isinstance(stats.get("frequencies"), dict) or not stats["frequencies"]:
                raise UsageError(f"baseline {path}: categorical feature {name!r} lacks frequencies")
            continue
        if not {"bin_edges", "proportions", "mean"} <= set(stats):
            raise UsageError(f"baseline {path}: feature {name!r} lacks bin_edges/proportions/mean")
    target = baseline.get("target")
    if target is not None and not (
        isinstance(target, dict)
        and "name" in target
        and (
            isinstance(target.get("frequencies"), dict)
            if target.get("type") == "categorical"
            else {"bin_edges", "proportions", "mean"} <= set(target)
        )
    ):
        raise UsageError(f"baseline {path}: its target statistics are incomplete")
    return baseline


def extra_rows(report: dict) -> list[tuple[str, dict]]:
    """The target and prediction rows that were computed, each with its label."""
    rows = []
    if report.get("target"):
        rows.append((f"target: {report['target']['feature']}", report["target"]))
    if report.get("prediction"):
        rows.append((f"prediction: {report.get('model_label') or 'model'}", report["prediction"]))
    return rows


def summary_line(report: dict) -> str:
    threshold = f"{report['threshold']:g}"
    drifted = [f for f in report["features"] if f["drifted"]]
    others = extra_rows(report)
    moved = [(label, row) for label, row in others if row["drifted"]]
    if not drifted and not moved:
        top = max(report["features"], key=lambda f: f["psi"])
        also = "".join(f"; {label} {row['psi']:.3f}" for label, row in others)
        return (
            f"no drift: every feature's PSI <= {threshold} "
            f"(highest {top['feature']} {top['psi']:.3f}){also}"
        )
    parts = []
    if drifted:
        named = ", ".join(f"{f['feature']} {f['psi']:.3f}" for f in drifted)
        parts.append(
            f"drift in {len(drifted)} of {len(report['features'])} features "
            f"(PSI > {threshold}): {named}"
        )
    parts += [f"{label} drifted (PSI {row['psi']:.3f} > {threshold})" for label, row in moved]
    return "; ".join(parts)


def drift_report(
    results: list[FeatureDrift],
    threshold: float,
    fail_on_drift: bool,
    data: str,
    baseline: str,
    rows: int,
    baseline_label: str = "",
    target: FeatureDrift | None = None,
    prediction: FeatureDrift | None = None,
    skipped: tuple[str, ...] = (),
    model_label: str = "",
) -> dict:
    """The drift report: thresholds, sources, one entry per feature, the target and
    prediction rows (None when skipped, with the reason in `skipped`)."""
    rows_checked = [*results, *(r for r in (target, prediction) if r is not None)]
    report = {
        "statistic": "psi",
        "threshold": threshold,
        "fail_on_drift": fail_on_drift,
        "drifted": any(r.drifted for r in rows_checked),
        "data": data,
        "baseline": baseline,
        "baseline_label": baseline_label or f"`{Path(baseline).name}`",
        "rows": rows,
        "features": [asdict(r) for r in results],
        "target": asdict(target) if target else None,
        "prediction": asdict(prediction) if prediction else None,
        "model_label": model_label,
        "skipped": list(skipped),
    }
    report["summary"] = summary_line(report)
    return report


def _mean(value: float | None) -> str:
    return f"{value:.6g}" if value is not None and math.isfinite(value) else "-"


def render_table(report: dict) -> str:
    """Per-feature drift as a fixed-width table, then the target and prediction rows."""
    rows = [(f["feature"], f) for f in report["features"]] + extra_rows(report)
    width = max(len("FEATURE"), *(len(label) for label, _ in rows))
    lines = [
        f"{'FEATURE':<{width}}  {'PSI':>7}  {'BINS':>4}  {'TRAIN MEAN':>12}  {'MEAN':>12}  DRIFT"
    ]
    for label, f in rows:
        lines.append(
            f"{label:<{width}}  {f['psi']:>7.3f}  {f['bins']:>4}  "
            f"{_mean(f['baseline_mean']):>12}  {_mean(f['current_mean']):>12}  "
            + ("yes" if f["drifted"] else "-")
        )
    return "\n".join(lines)


def markdown_rows(report: dict) -> list[str]:
    """The drift table's Markdown rows: features, then the target and the predictions (whose
    'training mean' is the mean held-out prediction)."""
    rows = [(f"`{f['feature']}`", f) for f in report["features"]]
    if report.get("target"):
        rows.append((f"target `{report['target']['feature']}`", report["target"]))
    if report.get("prediction"):
        rows.append((f"prediction ({report.get('model_label') or 'model'})", report["prediction"]))
    return [
        f"| {label} | {f['psi']:.3f} | {_mean(f['baseline_mean'])} | "
        f"{_mean(f['current_mean'])} | {'⚠️ yes' if f['drifted'] else 'no'} |"
        for label, f in rows
    ]


def render_markdown(report: dict) -> str:
    """The drift section of the pull-request comment."""
    drifted = sum(f["drifted"] for f in report["features"])
    moved = [label.split(":")[0] for label, row in extra_rows(report) if row["drifted"]]
    parts = [f"{drifted} of {len(report['features'])} features drifted"] if drifted else []
    parts += [f"{name} drifted" for name in moved]
    head = (
        f"### Data drift: ⚠️ {', '.join(parts)}" if parts else "### Data drift: ✅ nothing drifted"
    )
    lines = [
        head,
        "",
        f"PSI per feature of `{Path(report['data']).name}` ({report['rows']:,} rows) against "
        f"the training baseline of {report['baseline_label']}; threshold {report['threshold']:g}"
        + (", failing the check." if report["fail_on_drift"] else ", warning only."),
        "",
        "| Feature | PSI | Training mean | Mean | Drift |",
        "|---|---:|---:|---:|---|",
        *markdown_rows(report),
    ]
    if report.get("prediction"):
        lines += [
            "",
            "The prediction row compares the model's predictions on this file with its "
            "predictions on its own held-out rows.",
        ]
    lines += [f"\n{note}." for note in report.get("skipped", [])]
    return "\n".join(lines) + "\n"


def write_report(report: dict, report_dir: Path) -> tuple[Path, Path]:
    """drift.json and drift.md in `report_dir`."""
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = report_dir / "drift.json", report_dir / "drift.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(render_markdown(report))
    return json_path, md_path
