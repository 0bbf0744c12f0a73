"""A model card per registered version: what an approver reads before approving.

Everything on the card is read from what the pipeline already wrote: the registry
version (metrics, lineage, approval history), the evaluate step's evaluation.json (both
models' metrics, bootstrap intervals, the golden set, ROC/PR curves) and predictions.csv
(actual and predicted per held-out row), the run record (gate checks) and the validate
step's report. The card scores no model and imports no model library.

`card_facts` gathers those into one plain dict (the same facts feed the Markdown, the
self-contained HTML with its plots inline, and the SageMaker Model Card's content);
`render_markdown` / `render_html` are pure; `plots` draws with matplotlib.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlops.core.registry import ModelVersion
from mlops.core.report_format import human

CLASSIFICATION_SECTION = "binary_classification_metrics"
REGRESSION_SECTION = "regression_metrics"
HEADLINE = {
    "regression": ("mse", "rmse", "mae", "r2"),
    "binary_classification": ("auc", "log_loss", "accuracy", "precision", "recall", "f1"),
}
CALIBRATION_BINS = 10
MAX_SCATTER_POINTS = 2_000  # a scatter of more rows says no more and makes the HTML heavy
INTENDED_USE_FILE = "model_build/intended_use.md"  # the fork's own words, when it wrote them


@dataclass(frozen=True)
class CardInputs:
    """What one version's card is made of (each piece as its writer left it)."""

    version: ModelVersion
    task: str
    target: str
    features: Sequence[str]
    evaluation: Mapping
    predictions: pd.DataFrame | None = None  # evaluate's predictions.csv
    gate_checks: Sequence[str] = ()
    gate_passed: bool | None = None
    validation: Mapping | None = None  # the validate step's validation.json
    history: Sequence[Mapping] = ()  # approval history, oldest first
    champion_version: int | None = None
    intended_use: str = ""
    model_family: str = ""
    links: Mapping[str, str] = field(default_factory=dict)  # e.g. the PR, the CI run


def task_of(evaluation: Mapping) -> str:
    return "binary_classification" if CLASSIFICATION_SECTION in evaluation else "regression"


def section_of(evaluation: Mapping) -> Mapping:
    return evaluation.get(CLASSIFICATION_SECTION) or evaluation.get(REGRESSION_SECTION) or {}


def values_of(section: Mapping, names: Sequence[str]) -> dict[str, float]:
    return {
        name: float(section[name]["value"])
        for name in names
        if isinstance(section.get(name), Mapping) and "value" in section[name]
    }


def metric_rows(evaluation: Mapping, task: str) -> list[dict]:
    """Per headline metric: challenger, its 95 % bootstrap interval, the champion's value."""
    names = HEADLINE[task]
    challenger = values_of(section_of(evaluation), names)
    champion = values_of(section_of(evaluation.get("champion") or {}), names)
    intervals = evaluation.get("intervals") or {}
    return [
        {
            "metric": name,
            "value": challenger[name],
            "interval": [float(x) for x in intervals[name]] if name in intervals else None,
            "champion": champion.get(name),
        }
        for name in names
        if name in challenger
    ]


def golden_facts(evaluation: Mapping, task: str) -> dict | None:
    golden = evaluation.get("golden")
    if not golden:
        return None
    return {"rows": int(golden.get("rows", 0)), "metrics": metric_rows(golden, task)}


def data_facts(inputs: CardInputs) -> dict:
    lineage = inputs.version.lineage
    validation = inputs.validation or {}
    return {
        "source": lineage.get("data_file") or lineage.get("data_uri") or "",
        "sha256": lineage.get("data_sha256", ""),
        "rows": validation.get("rows"),
        "quarantined_rows": int(lineage.get("quarantined_rows", 0) or 0),
        "held_out_rows": int(inputs.evaluation.get("rows", 0) or 0),
        "validation": validation.get("summary")
        or ("passed" if validation.get("success") else "not recorded"),
        "validation_passed": validation.get("success"),
        "feature_snapshot": lineage.get("feature_snapshot") or {},
    }


def lineage_facts(inputs: CardInputs) -> dict:
    lineage = inputs.version.lineage
    return {
        "git_commit": lineage.get("git_commit", ""),
        "pr_number": str(lineage.get("pr_number") or ""),
        "run_id": lineage.get("run_id", ""),
        "tracking_run_id": lineage.get("tracking_run_id", ""),
        "backend": lineage.get("backend", ""),
        "model_uri": inputs.version.model_uri,
        "arn": inputs.version.arn,
        **dict(inputs.links),
    }


def card_facts(inputs: CardInputs) -> dict:
    """Everything the card says, as plain data (JSON-ready)."""
    v = inputs.version
    return {
        "group": v.group,
        "version": v.version,
        "approval_status": v.approval_status,
        "created_at": v.created_at,
        "task": inputs.task,
        "target": inputs.target,
        "features": list(inputs.features),
        "model_family": inputs.model_family
        or v.lineage.get("params", {}).get("train", {}).get("model", ""),
        "intended_use": inputs.intended_use.strip(),
        "data": data_facts(inputs),
        "metrics": metric_rows(inputs.evaluation, inputs.task),
        "champion_version": inputs.champion_version,
        "champion_note": inputs.evaluation.get("champion_note", ""),
        "golden": golden_facts(inputs.evaluation, inputs.task),
        "gate": {"passed": inputs.gate_passed, "checks": list(inputs.gate_checks)},
        "lineage": lineage_facts(inputs),
        "params": v.lineage.get("params", {}),
        "approval_history": [dict(h) for h in inputs.history],
    }


# ---------------------------------------------------------------- text


def num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return human(value, 4)


def interval_text(interval: Sequence[float] | None) -> str:
    return f"[{num(interval[0])}, {num(interval[1])}]" if interval else "–"


def intended_use_text(facts: Mapping) -> str:
    task = "a regression" if facts["task"] == "regression" else "a binary classification"
    what = (
        f"Predicts `{facts['target']}` ({task}) from {len(facts['features'])} feature(s): "
        + ", ".join(f"`{f}`" for f in facts["features"])
        + f". Model family: {facts['model_family'] or 'unknown'}."
    )
    own = facts["intended_use"] or (
        f"_The project has not described its intended use yet: write it in `{INTENDED_USE_FILE}`._"
    )
    return what + "\n\n" + own


def metrics_table_md(rows: Sequence[Mapping], champion: bool) -> list[str]:
    head = "| metric | this version | 95 % interval |" + (" champion |" if champion else "")
    rule = "|---|---:|---|" + ("---:|" if champion else "")
    lines = [head, rule]
    for row in rows:
        line = f"| {row['metric']} | {num(row['value'])} | {interval_text(row['interval'])} |"
        lines.append(line + (f" {num(row['champion'])} |" if champion else ""))
    return lines


def has_champion(rows: Sequence[Mapping]) -> bool:
    return any(r["champion"] is not None for r in rows)


def gate_text(gate: Mapping) -> str:
    verdict = {True: "passed", False: "failed", None: "not recorded"}[gate["passed"]]
    return f"Quality gate: **{verdict}**"


def render_markdown(facts: Mapping, plot_files: Sequence[str] = ()) -> str:
    """The card as Markdown (plots as links to files beside it, when there are any)."""
    data, lineage = facts["data"], facts["lineage"]
    champion = has_champion(facts["metrics"])
    lines = [
        f"# Model card: {facts['group']} version {facts['version']}",
        "",
        f"Status: **{facts['approval_status']}** · registered {facts['created_at']}",
        "",
        "## Intended use",
        "",
        intended_use_text(facts),
        "",
        "## Data",
        "",
        f"- source: `{data['source'] or '–'}`",
        f"- sha256: `{data['sha256'] or '–'}`",
        f"- rows: {data['rows'] if data['rows'] is not None else '–'}; quarantined: "
        f"{data['quarantined_rows']}; held-out rows scored: {data['held_out_rows']}",
        f"- validation: {data['validation']}",
        "",
        "## Metrics on the held-out rows",
        "",
        *metrics_table_md(facts["metrics"], champion),
        "",
    ]
    if champion:
        lines += [f"Champion: version {facts['champion_version']}, scored on the same rows.", ""]
    else:
        lines += [facts["champion_note"] or "No champion was scored beside this version.", ""]
    if facts["golden"]:
        golden = facts["golden"]
        lines += [
            f"## Golden set ({golden['rows']} reviewed rows)",
            "",
            *metrics_table_md(golden["metrics"], has_champion(golden["metrics"])),
            "",
        ]
    lines += ["## Quality gate", "", gate_text(facts["gate"]), ""]
    lines += [f"- {check}" for check in facts["gate"]["checks"]]
    if plot_files:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plot_files]
    lines += ["", "## Lineage", "", "| | |", "|---|---|"]
    lines += [f"| {k} | `{v}` |" for k, v in lineage.items() if v]
    lines += ["", "## Approval history", "", "| when | status | by | note |", "|---|---|---|---|"]
    lines += [
        f"| {h.get('at', '')} | {h.get('approval_status', '')} | {h.get('user', '')} | "
        f"{h.get('note', '')} |"
        for h in facts["approval_history"]
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- plots


@dataclass(frozen=True)
class Plot:
    name: str  # file stem: predicted_vs_actual, roc_curve...
    title: str
    png: bytes


def _figure_png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _pyplot():
    """matplotlib with a backend that needs no screen; None when it is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def thinned(frame: pd.DataFrame, limit: int = MAX_SCATTER_POINTS) -> pd.DataFrame:
    return frame if len(frame) <= limit else frame.sample(limit, random_state=0)


def regression_plots(plt, predictions: pd.DataFrame) -> list[Plot]:
    rows = thinned(predictions)
    y, pred = rows["y"].to_numpy(float), rows["prediction"].to_numpy(float)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(y, pred, s=5, alpha=0.4, color="tab:blue")
    lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1)
    ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
    scatter = Plot("predicted_vs_actual", "Predicted vs actual (held-out rows)", _figure_png(fig))
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(pred, pred - y, s=5, alpha=0.4, color="tab:blue")
    ax.axhline(0, color="black", linewidth=1)
    ax.set(xlabel="predicted", ylabel="predicted − actual", title="Residuals")
    return [scatter, Plot("residuals", "Residuals (held-out rows)", _figure_png(fig))]


def calibration(y: np.ndarray, prob: np.ndarray, bins: int = CALIBRATION_BINS):
    """(mean predicted probability, observed share of positives, rows) per probability bin."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    kept = counts > 0
    mean_prob = np.bincount(which, prob, bins)[kept] / counts[kept]
    observed = np.bincount(which, y, bins)[kept] / counts[kept]
    return mean_prob, observed, counts[kept]


def classification_plots(plt, evaluation: Mapping, predictions: pd.DataFrame | None) -> list[Plot]:
    section = section_of(evaluation)
    out = []
    roc = section.get("receiver_operating_characteristic_curve")
    if roc:
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(roc["false_positive_rates"], roc["true_positive_rates"], color="tab:blue")
        ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
        out.append(Plot("roc_curve", "ROC curve (held-out rows)", _figure_png(fig)))
    pr = section.get("precision_recall_curve")
    if pr:
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(pr["recalls"], pr["precisions"], color="tab:blue")
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve")
        out.append(Plot("precision_recall", "Precision-recall (held-out rows)", _figure_png(fig)))
    if predictions is not None and len(predictions):
        mean_prob, observed, _ = calibration(
            predictions["y"].to_numpy(float), predictions["prediction"].to_numpy(float)
        )
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(mean_prob, observed, marker="o", color="tab:blue")
        ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1)
        ax.set(xlabel="predicted probability", ylabel="observed share", title="Calibration")
        out.append(Plot("calibration", "Calibration (held-out rows)", _figure_png(fig)))
    return out


def importance_plot(plt, importance: Mapping[str, float]) -> Plot:
    names = sorted(importance, key=lambda n: importance[n])
    total = sum(importance.values()) or 1.0  # a share reads better than a raw gain (1e14)
    fig, ax = plt.subplots(figsize=(5, 0.3 * len(names) + 1))
    ax.barh(names, [100 * importance[n] / total for n in names], color="tab:blue")
    ax.set(xlabel="share of the model's importance (%)", title="Feature importance")
    return Plot("feature_importance", "Feature importance", _figure_png(fig))


def plots(evaluation: Mapping, predictions: pd.DataFrame | None) -> list[Plot]:
    """The card's plots; none without matplotlib. Feature importance only where evaluate
    wrote one (the model family offers it)."""
    plt = _pyplot()
    if plt is None:
        return []
    if task_of(evaluation) == "regression":
        out = regression_plots(plt, predictions) if predictions is not None else []
    else:
        out = classification_plots(plt, evaluation, predictions)
    importance = evaluation.get("feature_importance")
    if importance:
        out.append(importance_plot(plt, importance))
    return out


# ---------------------------------------------------------------- HTML

STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem}
td.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:.9em}
.status{font-weight:bold}.passed{color:#17692e}.failed{color:#a1161b}
figure{display:inline-block;margin:.5rem}figcaption{text-align:center;font-size:.9em}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def metrics_table_html(rows: Sequence[Mapping]) -> str:
    champion = has_champion(rows)
    head = "<tr><th>metric</th><th>this version</th><th>95 % interval</th>" + (
        "<th>champion</th>" if champion else ""
    )
    body = "".join(
        f"<tr><td>{_e(r['metric'])}</td><td class=n>{num(r['value'])}</td>"
        f"<td>{interval_text(r['interval'])}</td>"
        + (f"<td class=n>{num(r['champion'])}</td>" if champion else "")
        + "</tr>"
        for r in rows
    )
    return f"<table>{head}</tr>{body}</table>"


def _paragraphs(text: str) -> str:
    """The intended-use text: code spans and paragraphs, everything else escaped."""
    parts = []
    for para in text.split("\n\n"):
        italic = len(para) > 2 and para.startswith("_") and para.endswith("_")
        pieces = _e(para[1:-1] if italic else para).split("`")
        body = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))
        parts.append(f"<p><em>{body}</em></p>" if italic else f"<p>{body}</p>")
    return "".join(parts)


def render_html(facts: Mapping, figures: Sequence[Plot] = ()) -> str:
    """One self-contained page: no script, no external file; plots are inline PNG."""
    data, gate = facts["data"], facts["gate"]
    verdict = {True: "passed", False: "failed", None: "not recorded"}[gate["passed"]]
    rows = [
        ("source", data["source"] or "–"),
        ("sha256", data["sha256"] or "–"),
        ("rows", data["rows"] if data["rows"] is not None else "–"),
        ("quarantined rows", data["quarantined_rows"]),
        ("held-out rows scored", data["held_out_rows"]),
        ("validation", data["validation"]),
    ]
    data_table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    champion = (
        f"<p>Champion: version {_e(facts['champion_version'])}, scored on the same rows.</p>"
        if has_champion(facts["metrics"])
        else f"<p>{_e(facts['champion_note'] or 'No champion was scored beside this version.')}</p>"
    )
    golden = ""
    if facts["golden"]:
        golden = (
            f"<h2>Golden set ({facts['golden']['rows']} reviewed rows)</h2>"
            + metrics_table_html(facts["golden"]["metrics"])
        )
    checks = "".join(f"<li>{_e(c)}</li>" for c in gate["checks"])
    pictures = (
        "".join(
            f'<figure><img alt="{_e(p.title)}" src="data:image/png;base64,'
            f'{base64.b64encode(p.png).decode()}"><figcaption>{_e(p.title)}</figcaption></figure>'
            for p in figures
        )
        or "<p>No plots (matplotlib is not installed).</p>"
    )
    lineage = "".join(
        f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>"
        for k, v in facts["lineage"].items()
        if v
    )
    history = "".join(
        f"<tr><td>{_e(h.get('at', ''))}</td><td>{_e(h.get('approval_status', ''))}</td>"
        f"<td>{_e(h.get('user', ''))}</td><td>{_e(h.get('note', ''))}</td></tr>"
        for h in facts["approval_history"]
    )
    title = f"Model card: {facts['group']} version {facts['version']}"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f"<p>Status: <span class=status>{_e(facts['approval_status'])}</span> · registered "
        f"{_e(facts['created_at'])}</p>"
        f"<h2>Intended use</h2>{_paragraphs(intended_use_text(facts))}"
        f"<h2>Data</h2><table>{data_table}</table>"
        f"<h2>Metrics on the held-out rows</h2>{metrics_table_html(facts['metrics'])}{champion}"
        f"{golden}"
        f"<h2>Quality gate</h2><p class='{verdict}'>Quality gate: {verdict}</p><ul>{checks}</ul>"
        f"<h2>Plots</h2>{pictures}"
        f"<h2>Lineage</h2><table>{lineage}</table>"
        "<h2>Approval history</h2><table><tr><th>when</th><th>status</th><th>by</th>"
        f"<th>note</th></tr>{history}</table>"
        "</body></html>\n"
    )


# ---------------------------------------------------------------- SageMaker Model Card content

MODEL_CARD_MAX_CHARS = 100_000  # botocore's ModelCardContent: a string of at most this


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number_metrics(rows: Sequence[Mapping], prefix: str = "") -> list[dict]:
    metrics = []
    for row in rows:
        metrics.append(
            {"name": f"{prefix}{row['metric']}", "type": "number", "value": row["value"]}
        )
        if row["interval"]:
            low, high = row["interval"]
            metrics += [
                {"name": f"{prefix}{row['metric']} 95% low", "type": "number", "value": low},
                {"name": f"{prefix}{row['metric']} 95% high", "type": "number", "value": high},
            ]
    return [m for m in metrics if math.isfinite(m["value"])]


def _champion_metrics(rows: Sequence[Mapping]) -> list[dict]:
    return [
        {"name": f"champion {r['metric']}", "type": "number", "value": r["champion"]}
        for r in rows
        if r["champion"] is not None and math.isfinite(r["champion"])
    ]


def roc_metric(evaluation: Mapping) -> list[dict]:
    roc = section_of(evaluation).get("receiver_operating_characteristic_curve")
    if not roc:
        return []
    points = [
        [float(x), float(y)]
        for x, y in zip(roc["false_positive_rates"], roc["true_positive_rates"], strict=True)
    ]
    return [
        {
            "name": "ROC curve",
            "type": "linear_graph",
            "value": points,
            "x_axis_name": "false positive rate",
            "y_axis_name": "true positive rate",
        }
    ]


def sagemaker_content(facts: Mapping, evaluation: Mapping) -> dict:
    """The card as SageMaker's model package model card content (snake_case keys of the
    model card JSON schema, without model_package_details, which a package card omits)."""
    data, lineage, gate = facts["data"], facts["lineage"], facts["gate"]
    verdict = {True: "passed", False: "failed", None: "not recorded"}[gate["passed"]]
    train_params = facts["params"].get("train", {})
    held_out = {
        "name": "held-out rows",
        "evaluation_observation": _clip(
            f"{data['held_out_rows']} held-out rows of the run's own split; quality gate "
            f"{verdict}: " + "; ".join(gate["checks"]),
            2096,
        ),
        "datasets": [d for d in [data["source"]] if d][:10],
        "metadata": {"data_sha256": str(data["sha256"]), "rows": str(data["rows"])},
        "metric_groups": [
            {
                "name": "this version",
                "metric_data": _number_metrics(facts["metrics"]) + roc_metric(evaluation),
            },
        ],
    }
    champion = _champion_metrics(facts["metrics"])
    if champion:
        held_out["metric_groups"].append(
            {"name": f"champion v{facts['champion_version']}", "metric_data": champion}
        )
    details = [held_out]
    if facts["golden"]:
        details.append(
            {
                "name": "golden set",
                "evaluation_observation": f"{facts['golden']['rows']} reviewed reference rows",
                "metric_groups": [
                    {
                        "name": "this version",
                        "metric_data": _number_metrics(facts["golden"]["metrics"]),
                    }
                ],
            }
        )
    custom = {
        "git_commit": lineage.get("git_commit", ""),
        "pr_number": lineage.get("pr_number", ""),
        "run_id": lineage.get("run_id", ""),
        "tracking_run_id": lineage.get("tracking_run_id", ""),
        "data_sha256": data["sha256"],
        "quarantined_rows": str(data["quarantined_rows"]),
        "validation": data["validation"],
        "gate": verdict,
    }
    return {
        "model_overview": {
            "model_description": _clip(intended_use_text(facts).split("\n\n")[0], 1024),
            "model_creator": "sagemaker-gitops-template pipeline",
            "model_artifact": [lineage["model_uri"]] if lineage.get("model_uri") else [],
            "algorithm_type": _clip(str(facts["model_family"] or "unknown"), 1024),
            "problem_type": facts["task"],
        },
        "intended_uses": {
            "purpose_of_model": _clip(intended_use_text(facts).split("\n\n")[0], 2048),
            "intended_uses": _clip(facts["intended_use"] or "not described yet", 2048),
        },
        "training_details": {
            "training_job_details": {
                "training_datasets": [d for d in [data["source"]] if d],
                "hyper_parameters": [
                    {"name": str(k), "value": _clip(str(v), 255)} for k, v in train_params.items()
                ][:100],
            }
        },
        "evaluation_details": details,
        "additional_information": {
            "custom_details": {k: _clip(str(v), 1024) for k, v in custom.items() if v != ""},
        },
    }
