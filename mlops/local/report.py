"""The PR report's data on the local backend: the run's evaluate outputs, the plots.

`build_report` gathers what a run's evaluate step wrote (evaluation.json and
predictions.csv, found through `mlops.core.run_layout` and the declared pipeline) and
`mlops.core.report` holds the report's shape and renders it. No model is loaded here:
the champion's drift, too, is read off the predictions the evaluate step wrote.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from mlops.core import drift, monitor, run_layout
from mlops.core.errors import MlopsError
from mlops.core.gate import MAX_REGRESSION_PCT
from mlops.core.graph import Pipeline, load_pipeline
from mlops.core.lineage import lineage, sha256_file
from mlops.core.registry import ModelVersion
from mlops.core.report import (
    DataSection,
    Lineage,
    Report,
    RunRecord,
    confusion_of,
    from_evaluation,
    lineage_of,
    read_data_section,
    roc_curve_of,
    run_url,
)
from mlops.core.report_format import classification_charts, human, report_charts
from mlops.local.champion import resolve_champion
from mlops.local.drift import reference_predictions
from mlops.local.registry import LocalRegistry
from mlops.local.server_process import is_running
from stepkit.artifact import archive_manifest
from stepkit.rows import typed_frame
from stepkit.splits import CHAMPION, PREDICTION, Y

NO_MATPLOTLIB = "PNG plots skipped: matplotlib is not installed (`pip install -e '.[report]'`)."


def read_run(run_dir: Path) -> RunRecord:
    """A run's run.json (a run still going, or killed, has none yet: status 'running')."""
    path = run_dir / "run.json"
    if not path.is_file():
        return RunRecord(run_dir.name, run_dir, "running")
    data = json.loads(path.read_text())
    gate = data.get("gate") or {}
    tracking = data.get("tracking") or {}
    return RunRecord(
        run_id=data.get("run_id", run_dir.name),
        run_dir=run_dir,
        status=data.get("status", "unknown"),
        error=data.get("error", ""),
        gate_checks=tuple(gate.get("checks", ())),
        version=data.get("version"),
        data_file=data.get("data_file", ""),
        tracking_run_id=tracking.get("run_id", ""),
        tracking_experiment=tracking.get("experiment", ""),
        tuning=data.get("tuning") or {},
        feature_snapshot=data.get("feature_snapshot") or {},
        champion_version=data.get("champion_version"),
    )


def settle_run(run: RunRecord, registry: LocalRegistry) -> RunRecord:
    """A run whose record still says 'running' (killed, perhaps right after registering):
    the registry, written in one transaction, says whether it registered a version."""
    if run.status not in ("running", "unknown"):
        return run
    registered = [v for v in registry.list() if v.lineage.get("run_id") == run.run_id]
    if registered:
        return replace(run, status="registered", version=registered[-1].version)
    pid = _recorded_pid(run.run_dir)
    if pid and not is_running(pid):
        return replace(run, status="killed", error="the run was killed before it finished")
    return run


def _recorded_pid(run_dir: Path) -> int | None:
    try:
        return int(json.loads((run_dir / "run.json").read_text()).get("pid") or 0) or None
    except (OSError, ValueError):
        return None


def latest_run_dir(home: Path) -> Path | None:
    """The newest run with a run.json (run ids sort by start time)."""
    runs = Path(home) / run_layout.RUNS
    done = sorted(p for p in runs.iterdir() if (p / "run.json").is_file()) if runs.is_dir() else []
    return done[-1] if done else None


def write_plots(y, challenger_pred, champion_pred, plots_dir: Path) -> list[Path]:
    """predicted_vs_actual.png and residuals.png for the challenger (and the champion); none
    without matplotlib (the `report` extra): the comment's Mermaid charts do not need it."""
    try:
        import matplotlib
    except ImportError:
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    readable = FuncFormatter(lambda value, _: human(value))

    def axes_readable(ax) -> None:  # few ticks, short labels: '250 k', not '250000'
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(MaxNLocator(5))
            axis.set_major_formatter(readable)

    plots_dir.mkdir(parents=True, exist_ok=True)
    series = [("challenger", challenger_pred, "tab:blue")]
    if champion_pred is not None:
        series.insert(0, ("champion", champion_pred, "tab:gray"))

    fig, ax = plt.subplots(figsize=(6, 6))
    for name, pred, color in series:
        ax.scatter(y, pred, s=6, alpha=0.5, label=name, color=color)
    lo, hi = float(np.min(y)), float(np.max(y))
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1, label="perfect")
    ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual (held-out rows)")
    axes_readable(ax)
    ax.legend()
    scatter = plots_dir / "predicted_vs_actual.png"
    fig.savefig(scatter, dpi=100, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    residuals = [np.asarray(pred) - np.asarray(y) for _, pred, _ in series]
    bins = np.histogram_bin_edges(np.concatenate(residuals), bins=50)
    for (name, _, color), res in zip(series, residuals, strict=True):
        ax.hist(res, bins=bins, alpha=0.5, label=name, color=color)
    ax.axvline(0, color="black", linewidth=1)
    ax.set(xlabel="predicted − actual", ylabel="rows", title="Residuals (held-out rows)")
    axes_readable(ax)
    ax.legend()
    hist = plots_dir / "residuals.png"
    fig.savefig(hist, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return [scatter, hist]


def write_classification_plots(
    curves: dict[str, tuple[list[float], list[float]]],
    confusion: dict[str, int],
    labels: tuple[str, str],
    threshold: float | None,
    plots_dir: Path,
) -> list[Path]:
    """roc_curve.png (each model's curve, as the evaluate step wrote its points) and
    confusion_matrix.png (the challenger's counts); none without matplotlib (the `report`
    extra), as for write_plots."""
    try:
        import matplotlib
    except ImportError:
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots_dir.mkdir(parents=True, exist_ok=True)
    colors = {"challenger": "tab:blue"}
    fig, ax = plt.subplots(figsize=(6, 6))
    for name, (fpr, tpr) in curves.items():
        ax.plot(fpr, tpr, label=name, color=colors.get(name, "tab:gray"))
    ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1, label="chance")
    ax.set(
        xlabel="false positive rate",
        ylabel="true positive rate",
        title="ROC curve (held-out rows)",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.legend(loc="lower right")
    roc = plots_dir / "roc_curve.png"
    fig.savefig(roc, dpi=100, bbox_inches="tight")
    plt.close(fig)

    counts = np.array([[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]])
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.imshow(counts, cmap="Blues")
    for (row, col), count in np.ndenumerate(counts):
        dark = count > counts.max() / 2
        ax.text(col, row, str(count), ha="center", va="center", color="white" if dark else "black")
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=list(labels),
        yticklabels=list(labels),
        xlabel="predicted",
        ylabel="actual",
        title="Confusion matrix (challenger"
        + (f", threshold {threshold:g})" if threshold is not None else ")"),
    )
    matrix = plots_dir / "confusion_matrix.png"
    fig.savefig(matrix, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return [roc, matrix]


def challenger_lineage(cfg, home: Path, run: RunRecord) -> Lineage:
    """From the registry when the run registered a version; else rebuilt as the runner would."""
    if run.version is not None:
        v = LocalRegistry(home, cfg.model_package_group).describe(run.version)
        return lineage_of(v)
    data = Path(run.data_file) if run.data_file else None
    sha = sha256_file(data) if data and data.is_file() else ""
    built = lineage(cfg, data or Path(""), run.run_id, sha, backend="local")
    why = (
        "gate failed" if run.gate_checks else "run failed" if run.status == "failed" else run.status
    )
    return Lineage(
        built["git_commit"],
        sha,
        run.data_file,
        run.run_id,
        f"not registered ({why})",
        built["params"],
        run.feature_snapshot,
    )


def read_evaluation(folder: Path) -> dict | None:
    """The run's evaluation.json, or None when its evaluate step did not finish."""
    try:
        return json.loads((folder / run_layout.EVALUATION_FILE).read_text())
    except (OSError, ValueError):
        return None


def read_held_out_predictions(folder: Path) -> pd.DataFrame | None:
    """The evaluate step's predictions.csv beside its evaluation.json, or None."""
    path = folder / run_layout.HELD_OUT_PREDICTIONS
    return run_layout.read_predictions(path) if path.is_file() else None


def champion_of(cfg, home: Path, run: RunRecord, evaluation: dict) -> ModelVersion | None:
    """The registered version the run's evaluate step scored as its champion: the one its
    run.json records (for a run recorded without it, the champion a run would get now)."""
    if not evaluation.get("champion"):
        return None
    if run.champion_version is None:
        return resolve_champion(cfg, home)
    try:
        return LocalRegistry(home, cfg.model_package_group).describe(run.champion_version)
    except MlopsError:
        return None


def typed_target(rows: pd.DataFrame, baseline: dict) -> pd.DataFrame:
    """The held-out rows' target typed as the baseline has it (numbers, or category keys)."""
    stats = baseline.get("target") or {}
    name = stats.get("name")
    if name not in rows.columns:
        return rows  # target_drift says it is missing
    text = [name] if stats.get("type") == "categorical" else []
    frame, _ = typed_frame(rows[[name]], [name], text)
    return frame


def champion_drift(
    champion: ModelVersion, rows: pd.DataFrame, champion_pred: np.ndarray, threshold: float
) -> dict:
    """The new data against the champion: the target of the challenger run's held-out rows
    against the champion's training target, and the champion's predictions on those rows
    (the evaluate step's) against its predictions on its own held-out rows (both the PSI
    of `mlops data drift`).

    The held-out rows, not the whole new file: they are a random share of it, the rows both
    models were just scored on, and they are what a reviewer reads the metrics on."""
    section: dict = {"version": champion.version, "rows": len(rows), "threshold": threshold}
    skipped = []
    target_row = None
    try:
        baseline = drift.load_baseline(Path(champion.baseline_uri))
    except MlopsError as exc:
        skipped.append(f"target drift skipped: {exc}")
    else:
        target_row, why = drift.target_drift(typed_target(rows, baseline), baseline, threshold)
        skipped += [why] if why else []
    prediction = None
    try:
        result = monitor.prediction_drift(reference_predictions(champion), champion_pred, threshold)
        prediction = drift.prediction_row(result)
    except MlopsError as exc:
        skipped.append(f"prediction drift skipped: {exc}")
    section["target"] = asdict(target_row) if target_row else None
    section["prediction"] = asdict(prediction) if prediction else None
    section["skipped"] = skipped
    return section


def _has_quarantine(report_dir: Path) -> bool:
    try:
        data = json.loads((report_dir / "validation.json").read_text())
    except (OSError, ValueError):
        return False
    return bool((data.get("quarantine") or {}).get("rows"))


def run_validation(run_dir: Path, pipeline: Pipeline) -> DataSection | None:
    """The run's own validation section when its validate step set rows aside (it says
    which), else None."""
    validating = [s.name for s in pipeline.steps if "quarantine" in s.outputs]
    if not validating:
        return None
    folder = run_dir / run_layout.relative(f"{validating[0]}.report")
    if not _has_quarantine(folder):
        return None
    return read_data_section(folder, "validation", "Data validation")


def allowed_regression_pct(pipeline: Pipeline) -> float | None:
    """How much worse than the champion the declared gate lets a challenger be, if it says."""
    found = pipeline.params.get(MAX_REGRESSION_PCT)
    return float(found.value) if found is not None else None


def classifier_context(evaluation: dict, manifest: dict) -> dict:
    """A classifier's decision threshold and class labels (negative, positive), from the
    challenger's manifest; nothing for a regression."""
    if confusion_of(evaluation) is None:
        return {}
    labels = manifest.get("class_labels") or ("0", "1")
    return {"threshold": manifest.get("threshold"), "class_labels": tuple(map(str, labels))}


def pictures(
    evaluation: dict,
    predictions: pd.DataFrame | None,
    context: dict,
    champion_label: str,
    target: str,
    plots_dir: Path | None,
) -> dict:
    """The report's charts (Mermaid, drawn in the comment) and PNG plots (when matplotlib
    is installed), all from the evaluate step's predictions and evaluation.json."""
    if predictions is None:
        return {}
    y = predictions[Y].to_numpy(dtype=float)
    pred = predictions[PREDICTION].to_numpy(dtype=float)
    old = predictions[CHAMPION].to_numpy(dtype=float)
    champion_pred = old if evaluation.get("champion") and not np.isnan(old).all() else None
    confusion = confusion_of(evaluation)
    if confusion is None:
        charts = report_charts(y, pred, champion_pred, champion_label, target)
        plots = write_plots(y, pred, champion_pred, plots_dir) if plots_dir else []
    else:
        charts = classification_charts(y, pred, champion_pred, champion_label)
        curves = {
            name: curve
            for name, curve in (
                (champion_label, roc_curve_of(evaluation.get("champion") or {})),
                ("challenger", roc_curve_of(evaluation)),
            )
            if curve is not None
        }
        plots = (
            write_classification_plots(
                curves, confusion, context["class_labels"], context["threshold"], plots_dir
            )
            if plots_dir
            else []
        )
    return {
        "charts": tuple(charts),
        "plots": tuple(p.name for p in plots),
        "plots_note": "" if plots or not plots_dir else NO_MATPLOTLIB,
    }


def champion_note(evaluation: dict, champion) -> str:
    """Why no champion figures are shown, when they are not (evaluate says when it could
    not score the champion)."""
    if evaluation.get("champion"):
        return ""
    if evaluation.get("champion_note"):
        return f"Champion v{champion.version if champion else '?'}: {evaluation['champion_note']}."
    return "No approved champion yet: the challenger is reported alone."


def build_report(
    cfg,
    home: Path,
    run_dir: Path | None,
    report_dir: Path,
    plots_dir: Path | None,
    env: Mapping[str, str],
) -> Report:
    """The report of a run (None: no run found) from what its evaluate step wrote, with the
    data checks of `report_dir`; PNG plots go to `plots_dir` (None: no plots)."""
    pipeline = load_pipeline(cfg)
    common = {
        "validation": read_data_section(report_dir, "validation", "Data validation"),
        "drift": read_data_section(report_dir, "drift", "Data drift"),
        "allowed_regression_pct": allowed_regression_pct(pipeline),
    }
    if run_dir is None:
        return Report(run=None, **common)
    run = settle_run(read_run(run_dir), LocalRegistry(home, cfg.model_package_group))
    common["validation"] = run_validation(run_dir, pipeline) or common["validation"]
    folder = run_layout.evaluation_folder(home, run.run_id, pipeline)
    evaluation = read_evaluation(folder)
    if evaluation is None:
        return Report(run=run, **common)
    champion = champion_of(cfg, home, run, evaluation)
    label = f"champion v{champion.version}" if champion else "champion"
    predictions = read_held_out_predictions(folder)
    archive = run_layout.model_archive(home, run.run_id, pipeline)
    context = classifier_context(evaluation, archive_manifest(archive) if archive.is_file() else {})
    drawn = pictures(evaluation, predictions, context, label, cfg.data.target, plots_dir)
    new_data_drift = None
    if champion is not None and predictions is not None:
        held_out = run_layout.read_held_out(run_layout.held_out_folder(home, run.run_id, pipeline))
        new_data_drift = champion_drift(
            champion, held_out, predictions[CHAMPION].to_numpy(dtype=float), cfg.drift.threshold
        )
    return from_evaluation(
        run,
        evaluation,
        pipeline.gate,
        champion_version=champion.version if champion else None,
        champion_note=champion_note(evaluation, champion),
        challenger_lineage=challenger_lineage(cfg, home, run),
        champion_lineage=lineage_of(champion) if champion else None,
        artifact_url=run_url(env),
        champion_drift=new_data_drift,
        **context,
        **drawn,
        **common,
    )
