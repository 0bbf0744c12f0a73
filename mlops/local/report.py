"""The PR report's data on the local backend: the run, both models scored, the plots.

`build_report` gathers; `mlops.core.report` holds the report's shape and renders it.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path

from mlops.core import drift
from mlops.core.errors import MlopsError
from mlops.core.graph import build_graph
from mlops.core.lineage import lineage, sha256_file
from mlops.core.report import (
    Lineage,
    Report,
    RunRecord,
    classification_metrics,
    confusion_counts,
    gate_verdict,
    lineage_of,
    read_data_section,
    regression_metrics,
    run_url,
)
from mlops.core.report_format import classification_charts, human, report_charts
from mlops.core.uncertainty import bootstrap_intervals
from mlops.local.champion import resolve_champion
from mlops.local.registry import LocalRegistry
from mlops.local.runner import MODEL_ARCHIVE, output_dir
from mlops.local.server_process import is_running

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

    return True


def latest_run_dir(home: Path) -> Path | None:
    """The newest run with a run.json (run ids sort by start time)."""
    runs = home / "runs"
    done = sorted(p for p in runs.iterdir() if (p / "run.json").is_file()) if runs.is_dir() else []
    return done[-1] if done else None


def read_test_split(folder: Path):
    """(X, y) of a split folder: CSV files, target first, no header."""
    import numpy as np

    files = sorted(folder.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no test split in {folder}")
    data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return data[:, 1:], data[:, 0]


def read_test_table(folder: Path, features: list[str], categorical: list[str]):
    """A split folder as raw rows (a DataFrame of the features) and the target as read:
    for a model with string categories or text labels."""
    import pandas as pd

    files = sorted(folder.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no test split in {folder}")
    names = ["__target__", *features]
    text = {name: str for name in ["__target__", *categorical]}
    table = pd.concat(
        [
            pd.read_csv(f, header=None, names=names, dtype=text, keep_default_na=False)
            for f in files
        ],
        ignore_index=True,
    )
    return table[features], table["__target__"]


def targets_for(model, target):
    """0/1 for a classifier (by its manifest's labels), numbers for a regression."""
    from model_build.steps.inference import encode_labels

    if model.class_labels is not None:
        return encode_labels(target, model.class_labels)
    return target.astype(float).to_numpy()


def model_rows(model, frame):
    """Rows of a raw feature frame in the form predict_fn takes for this model."""
    if model.categories:
        return frame[model.features].astype(object).values.tolist()
    return frame[model.features].to_numpy(dtype=float)


def load_model(archive: Path, workdir: Path):
    """A model.tar.gz loaded through the serving code's model_fn (sha256 checked)."""
    from model_build.steps.inference import model_fn

    with tarfile.open(archive) as tar:
        tar.extractall(workdir, filter="data")
    return model_fn(str(workdir))


def predict(model, X):
    from model_build.steps.inference import predict_fn

    return predict_fn(X, model)


def align(X, from_features: list[str], to_features: list[str]):
    """X's columns (in `from_features` order) reordered for a model expecting `to_features`."""
    if from_features == to_features:
        return X
    return X[:, [from_features.index(f) for f in to_features]]


def write_plots(y, challenger_pred, champion_pred, plots_dir: Path) -> list[Path]:
    """predicted_vs_actual.png and residuals.png for the challenger (and the champion); none
    without matplotlib (the `report` extra): the comment's Mermaid charts do not need it."""
    try:
        import matplotlib
    except ImportError:
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
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
    y, challenger_prob, champion_prob, threshold: float, labels, plots_dir: Path
) -> list[Path]:
    """roc_curve.png (challenger and champion) and confusion_matrix.png (challenger); none
    without matplotlib (the `report` extra), as for write_plots."""
    try:
        import matplotlib
    except ImportError:
        return []

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

    plots_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 6))
    if champion_prob is not None:
        RocCurveDisplay.from_predictions(
            y, champion_prob, name="champion", ax=ax, curve_kwargs={"color": "tab:gray"}
        )
    RocCurveDisplay.from_predictions(
        y,
        challenger_prob,
        name="challenger",
        ax=ax,
        curve_kwargs={"color": "tab:blue"},
        plot_chance_level=True,
    )
    ax.set(title="ROC curve (held-out rows)")
    roc = plots_dir / "roc_curve.png"
    fig.savefig(roc, dpi=100, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    predicted = (challenger_prob >= threshold).astype(int)
    ConfusionMatrixDisplay.from_predictions(
        y.astype(int), predicted, labels=[0, 1], display_labels=list(labels), ax=ax, colorbar=False
    )
    ax.set(title=f"Confusion matrix (challenger, threshold {threshold:g})")
    matrix = plots_dir / "confusion_matrix.png"
    fig.savefig(matrix, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return [roc, matrix]


def run_paths(graph, run_dir: Path) -> tuple[Path, Path]:
    """(model archive, test split folder) of a local run, as the runner lays them out."""
    evaluate = graph.step(graph.evaluation_step)
    test_source = next(i.source for i in evaluate.inputs if i.name == "test")
    step, output = test_source.split(".")
    return run_dir / graph.model_step / "output" / MODEL_ARCHIVE, output_dir(run_dir, step, output)


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


def _golden_of(run_dir: Path, graph) -> dict | None:
    """The run's golden-set scores (the evaluate step's), or None."""
    path = output_dir(run_dir, graph.evaluation_step, "evaluation") / "evaluation.json"
    try:
        return json.loads(path.read_text()).get("golden")
    except (OSError, ValueError):
        return None


def champion_drift(cfg, home: Path, champion, rows, target) -> dict:
    """The new data against the champion: the target of the challenger run's held-out rows
    against the champion's training target, and the champion's predictions on those rows
    against its predictions on its own held-out rows (both the PSI of `mlops data drift`).

    The held-out rows, not the whole new file: they are a random share of it, the rows both
    models were just scored on, and they are what a reviewer reads the metrics on."""
    from mlops.local.drift import prediction_drift

    threshold = cfg.drift.threshold
    section = {"version": champion.version, "rows": len(rows), "threshold": threshold}
    skipped = []
    try:
        baseline = drift.load_baseline(Path(champion.baseline_uri))
    except MlopsError as exc:
        baseline = {}
        skipped.append(f"target drift skipped: {exc}")
    target_row = None
    if baseline:
        import pandas as pd

        labels = (baseline.get("target") or {}).get("type") == "categorical"
        values = pd.Series(target).to_numpy() if labels else pd.to_numeric(pd.Series(target))
        frame = rows.reset_index(drop=True).assign(**{cfg.data.target: values})
        target_row, why = drift.target_drift(frame, baseline, threshold)
        skipped += [why] if why else []
    try:
        found = prediction_drift(champion, home, rows, threshold)
        prediction = drift.prediction_row(found.result, found.unscored)
    except MlopsError as exc:
        prediction = None
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


def build_report(
    cfg,
    home: Path,
    run_dir: Path | None,
    reports_dir: Path,
    plots_dir: Path | None,
    env: Mapping[str, str],
) -> Report:
    """Read the run, score challenger and champion on the run's test rows, write the plots."""
    graph = build_graph(cfg)
    sections = {
        "validation": read_data_section(reports_dir, "validation", "Data validation"),
        "drift": read_data_section(reports_dir, "drift", "Data drift"),
    }
    if run_dir is None:
        return Report(run=None, gate=graph.gate, **sections)
    run = settle_run(read_run(run_dir), LocalRegistry(home, cfg.model_package_group))
    validating = [s.name for s in graph.steps if any(o.name == "quarantine" for o in s.outputs)]
    run_validation = output_dir(run_dir, validating[0], "report") if validating else run_dir
    if _has_quarantine(run_validation):  # the run's own section says what it set aside
        sections["validation"] = read_data_section(run_validation, "validation", "Data validation")
    archive, test_dir = run_paths(graph, run_dir)
    if not archive.is_file() or not test_dir.is_dir():
        return Report(run=run, gate=graph.gate, **sections)

    champion = resolve_champion(cfg, home)
    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(archive, Path(tmp) / "challenger")
        tabular = model.categories or model.class_labels is not None
        if tabular:
            frame, target = read_test_table(test_dir, model.features, list(model.categories))
            X, y = model_rows(model, frame), targets_for(model, target)
        else:
            import pandas as pd

            X, y = read_test_split(test_dir)
            frame, target = pd.DataFrame(X, columns=model.features), y
        challenger_pred = predict(model, X)
        champion_pred, note = None, ""
        if champion is None:
            note = "No approved champion yet: the challenger is reported alone."
        elif not Path(champion.model_uri).is_file():
            note = f"Champion v{champion.version}'s model is not on this machine ({champion.model_uri}): not scored."
        else:
            old = load_model(Path(champion.model_uri), Path(tmp) / "champion")
            if set(old.features) != set(model.features):
                note = (
                    f"Champion v{champion.version} uses other features ({', '.join(old.features)}): "
                    "it cannot be scored on the challenger's rows."
                )
            elif (old.class_labels is None) != (model.class_labels is None):
                note = f"Champion v{champion.version} is a model of another task: not scored."
            elif tabular:
                champion_pred = predict(old, model_rows(old, frame))
            else:
                champion_pred = predict(old, align(X, model.features, old.features))
    new_data_drift = (
        champion_drift(cfg, home, champion, frame, target) if champion_pred is not None else None
    )

    golden = _golden_of(run_dir, graph)
    classifier = model.class_labels is not None
    threshold = float(model.threshold)
    label = f"champion v{champion.version}" if champion_pred is not None else "champion"
    if classifier:
        challenger_metrics = classification_metrics(y, challenger_pred, threshold)
        champion_metrics = (
            classification_metrics(y, champion_pred, threshold)
            if champion_pred is not None
            else None
        )
        plots = (
            write_classification_plots(
                y, challenger_pred, champion_pred, threshold, model.class_labels, plots_dir
            )
            if plots_dir
            else []
        )
        charts = classification_charts(y, challenger_pred, champion_pred, label)
    else:
        challenger_metrics = regression_metrics(y, challenger_pred)
        champion_metrics = (
            regression_metrics(y, champion_pred) if champion_pred is not None else None
        )
        plots = write_plots(y, challenger_pred, champion_pred, plots_dir) if plots_dir else []
        charts = report_charts(y, challenger_pred, champion_pred, label, cfg.data.target)
    return Report(
        run=run,
        rows=len(y),
        challenger=challenger_metrics,
        champion=champion_metrics,
        champion_version=champion.version if champion and champion_metrics else None,
        champion_note=note,
        verdict=gate_verdict(challenger_metrics, champion_metrics, graph.gate, golden),
        golden=golden,
        gate=graph.gate,
        challenger_lineage=challenger_lineage(cfg, home, run),
        champion_lineage=lineage_of(champion) if champion_metrics else None,
        plots=tuple(p.name for p in plots),
        artifact_url=run_url(env),
        charts=tuple(charts),
        plots_note="" if plots or not plots_dir else NO_MATPLOTLIB,
        confusion=confusion_counts(y, challenger_pred, threshold) if classifier else None,
        threshold=threshold if classifier else None,
        class_labels=tuple(model.class_labels) if classifier else None,
        # bootstrap intervals are of the regression metrics
        intervals={} if classifier else bootstrap_intervals(y, challenger_pred),
        champion_drift=new_data_drift,
        **sections,
    )
