"""A model card per registered version: what an approver reads before approving.

Everything on the card is read from what the pipeline already wrote: the registry
version (metrics, lineage, approval history), the evaluate step's evaluation.json (both
models' metrics, bootstrap intervals, the golden set, ROC/PR curves) and predictions.csv
(actual and predicted per held-out row), the run record (gate checks) and the validate
step's report. The card scores no model and imports no model library.

`card_facts` gathers those into one plain dict (the same facts feed the Markdown, the
self-contained HTML with its plots inline, and the SageMaker Model Card's content in
`mlops.core.card_content`); `render_markdown` / `render_html` are pure; the plots are
`mlops.core.card_plots`'.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from mlops.core.registry import ModelVersion
from mlops.core.report_format import human

CLASSIFICATION_SECTION = "binary_classification_metrics"
REGRESSION_SECTION = "regression_metrics"
HEADLINE = {
    "regression": ("mse", "rmse", "mae", "r2"),
    "binary_classification": ("auc", "log_loss", "accuracy", "precision", "recall", "f1"),
}
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


def render_html(facts: Mapping, figures: Sequence = ()) -> str:
    """One self-contained page: no script, no external file; plots are inline PNG.
    `figures`: mlops.core.card_plots.Plot items (title, png), which import this module."""
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
