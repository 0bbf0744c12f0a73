"""The PR report: data checks, the challenger next to the champion, the gate, lineage.

The challenger is the model of one pipeline run; the champion is the registered version
that run's evaluate step scored beside it, on the same held-out rows. Every number comes
from what the evaluate step wrote (evaluation.json: both models' metrics, the golden
set's, the bootstrap intervals, the confusion matrix) and the gate's verdict is
`mlops.core.gate.check_gate` on that same file: the report scores no model and computes
no metric. The Markdown is the PR comment and the job summary.

The first half of this module is pure (data in, Markdown out); the second half reads
the reports dir and registry versions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from mlops.core.gate import Verdict, check_gate
from mlops.core.graph import Rule
from mlops.core.registry import metrics_from_evaluation
from mlops.core.report_format import human, human_delta, human_pct
from mlops.core.uncertainty import small_test_warning

METRICS = ("mse", "rmse", "mae", "r2")
CLASSIFICATION_METRICS = ("auc", "log_loss", "accuracy", "precision", "recall", "f1")
HIGHER_IS_BETTER = frozenset({"r2", "auc", "accuracy", "precision", "recall", "f1"})
PRIMARY_METRIC = "mse"  # the gate's comparison with the champion uses it
CLASSIFICATION_PRIMARY_METRIC = "log_loss"
CLASSIFICATION_SECTION = "binary_classification_metrics"  # evaluation.json's, for a classifier
MARKER = "<!-- mlops-pr-report -->"  # lets tools find the comment
PASSING = "✅ passing"
FAILING = "❌ failing"
NOT_RUN = "not run"
MAX_COMMENT_CHARS = 60_000  # GitHub's limit for a comment is 65,536


# ---------------------------------------------------------------- pure: data in


@dataclass(frozen=True)
class RunRecord:
    """What a run's run.json says: how far it got, the gate, the registered version."""

    run_id: str
    run_dir: Path
    status: str  # registered | failed | running
    error: str = ""
    gate_checks: tuple[str, ...] = ()
    version: int | None = None
    data_file: str = ""
    tracking_run_id: str = ""  # the MLflow run of this pipeline run
    tracking_experiment: str = ""
    tuning: dict = field(default_factory=dict)  # the search, when train.tuning is on
    feature_snapshot: dict = field(default_factory=dict)
    champion_version: int | None = None  # the registered version its evaluate step scored


@dataclass(frozen=True)
class Lineage:
    """Where one model comes from: the row of the lineage table."""

    git_commit: str
    data_sha256: str
    data_file: str
    run_id: str
    registry: str  # "v1 Approved", "v3 PendingManualApproval", "not registered"
    params: dict = field(default_factory=dict)
    feature_snapshot: dict = field(default_factory=dict)  # when trained from the store


@dataclass(frozen=True)
class DataSection:
    """One data check (validation or drift) as read from the reports dir."""

    title: str
    status: str  # passed | failed | drift | no drift | ran | not run
    body: str = ""  # the check's own Markdown section, embedded as is
    summary: str = ""  # the one-line summary from its JSON


@dataclass(frozen=True)
class MetricRow:
    name: str
    champion: float | None
    challenger: float
    delta: float | None
    delta_pct: float | None
    change: str  # better | worse | same | ""


@dataclass(frozen=True)
class Report:
    run: RunRecord | None
    rows: int = 0  # held-out rows both models were scored on
    challenger: dict[str, float] | None = None
    champion: dict[str, float] | None = None
    champion_version: int | None = None
    champion_note: str = ""  # why the champion was not scored, when it was not
    verdict: Verdict | None = None  # the pipeline's gate on the run's evaluation.json
    allowed_regression_pct: float | None = None  # how much worse than the champion may be
    challenger_lineage: Lineage | None = None
    champion_lineage: Lineage | None = None
    validation: DataSection = DataSection("Data validation", NOT_RUN)
    drift: DataSection = DataSection("Data drift", NOT_RUN)
    plots: tuple[str, ...] = ()
    artifact_url: str = ""
    charts: tuple[str, ...] = ()  # Markdown (Mermaid) drawn in the comment itself
    golden: dict | None = None  # evaluation.json's "golden": both models on the reference rows
    plots_note: str = ""  # why PNG plots are missing, when they are
    # binary classification: the challenger's confusion matrix at the decision threshold
    confusion: dict[str, int] | None = None  # tn, fp, fn, tp
    threshold: float | None = None
    class_labels: tuple[str, str] | None = None
    # The challenger's 95 % bootstrap intervals over the held-out rows, per metric.
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    # The new data against the champion (mlops.local.report.champion_drift): target and
    # prediction drift rows, as `mlops data drift` computes them; None without a champion.
    champion_drift: dict | None = None


# ---------------------------------------------------------------- pure: evaluation.json in


def confusion_of(evaluation: dict) -> dict[str, int] | None:
    """A classifier's confusion matrix as the evaluate step wrote it (actual outside,
    predicted inside) as tn/fp/fn/tp; None for a regression."""
    matrix = (evaluation.get(CLASSIFICATION_SECTION) or {}).get("confusion_matrix")
    if not matrix:
        return None
    return {
        "tn": int(matrix["0"]["0"]),
        "fp": int(matrix["0"]["1"]),
        "fn": int(matrix["1"]["0"]),
        "tp": int(matrix["1"]["1"]),
    }


def intervals_of(evaluation: dict) -> dict[str, tuple[float, float]]:
    """The challenger's bootstrap intervals, per metric, as the evaluate step wrote them."""
    return {
        name: (float(low), float(high))
        for name, (low, high) in evaluation.get("intervals", {}).items()
    }


def roc_curve_of(evaluation: dict) -> tuple[list[float], list[float]] | None:
    """(false positive rates, true positive rates) of a classifier's ROC curve, thinned by
    the evaluate step; None for a regression."""
    curve = (evaluation.get(CLASSIFICATION_SECTION) or {}).get(
        "receiver_operating_characteristic_curve"
    )
    if not curve:
        return None
    return list(curve["false_positive_rates"]), list(curve["true_positive_rates"])


def from_evaluation(
    run: RunRecord, evaluation: dict, gate: tuple[Rule, ...], **context: object
) -> Report:
    """The report of a run that got through its evaluate step: the numbers are
    evaluation.json's, the verdict the pipeline's gate rules on it; `context` is the rest
    (lineage, plots, drift, data sections...)."""
    champion = evaluation.get("champion")
    return Report(
        run=run,
        rows=int(evaluation.get("rows", 0)),
        challenger=metrics_from_evaluation(evaluation),
        champion=metrics_from_evaluation(champion) if champion else None,
        verdict=check_gate(evaluation, gate),
        golden=evaluation.get("golden"),
        intervals=intervals_of(evaluation),
        confusion=confusion_of(evaluation),
        **context,
    )


def primary_metric(metrics: Mapping[str, float]) -> str:
    """The metric the champion comparison is on: log loss for a classifier, else MSE."""
    return (
        CLASSIFICATION_PRIMARY_METRIC
        if CLASSIFICATION_PRIMARY_METRIC in metrics
        else PRIMARY_METRIC
    )


def change_of(metric: str, delta: float) -> str:
    """'better' or 'worse' for a challenger-minus-champion delta (R² up is better, errors down)."""
    if delta == 0:
        return "same"
    improved = delta > 0 if metric in HIGHER_IS_BETTER else delta < 0
    return "better" if improved else "worse"


def metric_rows(challenger: dict[str, float], champion: dict[str, float] | None) -> list[MetricRow]:
    """One row per metric: both values, the delta (challenger − champion) and its %."""
    rows = []
    for name in (*METRICS, *CLASSIFICATION_METRICS):
        if name not in challenger:
            continue
        new = challenger[name]
        old = champion.get(name) if champion else None
        if old is None:
            rows.append(MetricRow(name, None, new, None, None, ""))
            continue
        delta = new - old
        pct = delta / abs(old) * 100.0 if old else None
        rows.append(MetricRow(name, old, new, delta, pct, change_of(name, delta)))
    return rows


def flatten(params: Mapping, prefix: str = "") -> dict[str, object]:
    """`{"train": {"eta": 0.1}}` -> `{"train.eta": 0.1}`."""
    flat: dict[str, object] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def params_diff(champion: Mapping, challenger: Mapping) -> list[tuple[str, object, object]]:
    """(key, champion value, challenger value) for every parameter that differs; None = absent."""
    old, new = flatten(champion), flatten(challenger)
    return [
        (key, old.get(key), new.get(key))
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]


def passing(report: Report) -> bool:
    """A challenger passes when its run got through evaluation and the gate holds on it."""
    return (
        report.run is not None
        and report.challenger is not None
        and report.verdict is not None
        and report.verdict.passed
    )


def run_url(env: Mapping[str, str]) -> str:
    """The GitHub Actions run page (where the plots artifact is), or '' outside Actions."""
    keys = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    if not all(env.get(k) for k in keys):
        return ""
    return (
        f"{env['GITHUB_SERVER_URL']}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    )


# ---------------------------------------------------------------- pure: Markdown out


def fmt(value: float | None) -> str:
    return human(value)


def fmt_delta(value: float | None) -> str:
    return human_delta(value)


def fmt_pct(value: float | None) -> str:
    return human_pct(value)


def short(text: str, n: int = 12) -> str:
    return f"`{text[:n]}`" if text else "–"


def champion_label(report: Report) -> str:
    return f"champion v{report.champion_version}" if report.champion_version else "champion"


def comparison(report: Report) -> str:
    """One sentence: how the challenger compares with the champion on the primary metric."""
    if report.champion is None:
        return "no champion to compare with (challenger only)"
    primary = primary_metric(report.challenger)
    row = next(r for r in metric_rows(report.challenger, report.champion) if r.name == primary)
    if row.change == "same":
        return f"{primary} equal to {champion_label(report)}'s"
    direction = "lower" if row.delta < 0 else "higher"
    sentence = (
        f"{primary} {human_pct(row.delta_pct or 0, sign=False)} {direction} than "
        f"{champion_label(report)}"
    )
    allowed = report.allowed_regression_pct
    if row.change == "worse" and allowed is not None:
        within = (row.delta_pct or 0) <= allowed
        sentence += f" ({'within' if within else 'beyond'} the +{allowed:g} % the gate allows)"
    return sentence


def headline(report: Report) -> str:
    """The first line: passing or failing, and why, in words a reviewer reads at a glance."""
    if report.run is None:
        return f"## {FAILING}: no pipeline run found"
    if report.challenger is None:
        reason = report.run.error or f"run status {report.run.status}"
        return f"## {FAILING}: the pipeline did not produce a model ({reason})"
    if not passing(report):  # which checks failed is the gate section's job, said once
        names = ", ".join(c.metric for c in report.verdict.failures) if report.verdict else ""
        on = f" on {names}" if names else ""
        return f"## {FAILING}: quality gate failed{on}; {comparison(report)}"
    return f"## {PASSING}: {comparison(report)}"


def metrics_table(report: Report) -> list[str]:
    rows = metric_rows(report.challenger, report.champion)
    if report.champion is None:
        return [
            "| metric | challenger |",
            "|---|---:|",
            *(f"| {r.name} | {fmt(r.challenger)} |" for r in rows),
        ]
    lines = [
        f"| metric | {champion_label(report)} | challenger | Δ | |",
        "|---|---:|---:|---:|---|",
    ]
    for row in rows:
        mark = {"better": "🟢 better", "worse": "🔴 worse"}.get(row.change, row.change)
        lines.append(
            f"| {row.name} | {fmt(row.champion)} | {fmt(row.challenger)} | "
            f"{human_delta(row.delta, row.delta_pct)} | {mark} |"
        )
    return lines


def golden_lines(report: Report) -> list[str]:
    """Both models on the reviewed golden rows: what a shifted split cannot hide."""
    golden = report.golden or {}
    new = metrics_from_evaluation(golden)
    old = metrics_from_evaluation(golden["champion"]) if golden.get("champion") else None
    table = metrics_table(replace(report, challenger=new, champion=old))
    return [f"### Golden set: {golden.get('rows', '?')} reviewed reference rows", "", *table]


def confusion_lines(report: Report) -> list[str]:
    """The challenger's confusion matrix at the decision threshold (binary classification)."""
    if report.confusion is None:
        return []
    c = report.confusion
    negative, positive = report.class_labels or ("0", "1")
    at = f", threshold {report.threshold:g}" if report.threshold is not None else ""
    return [
        f"### Confusion matrix (challenger{at})",
        "",
        f"| actual ↓ predicted → | {negative} | {positive} |",
        "|---|---:|---:|",
        f"| {negative} | {c['tn']} | {c['fp']} |",
        f"| {positive} | {c['fn']} | {c['tp']} |",
    ]


def interval_lines(report: Report) -> list[str]:
    """The challenger's bootstrap intervals, and a warning when the held-out set is small."""
    if not report.intervals:
        return []
    spans = ", ".join(
        f"{name} {fmt(low)} to {fmt(high)}" for name, (low, high) in report.intervals.items()
    )
    lines = ["", f"Challenger, 95 % bootstrap interval over these rows: {spans}."]
    warning = small_test_warning(report.rows, report.intervals)
    return lines + (["", f"⚠️ {warning}."] if warning else [])


def gate_lines(report: Report) -> list[str]:
    if report.verdict is not None:
        lines = [
            f"- {'✅' if c.passed else '❌'} {c.metric} {human(c.value)} {c.op} "
            f"{human(c.threshold)}: {'ok' if c.passed else 'FAILED'}"
            for c in report.verdict.checks
        ]
        if report.champion is None:
            lines.append("- no champion: the comparison check did not apply")
        return lines
    if report.run is not None and report.run.gate_checks:
        return [f"- {c}" for c in report.run.gate_checks]
    return [f"- {NOT_RUN}: the run stopped before the gate"]


def snapshot_text(snap: dict) -> str:
    """Which feature-store snapshot a model learned from, in one table cell."""
    if not snap:
        return "–"
    return (
        f"`{snap.get('feature_group', '?')}` as of {snap.get('as_of', '?')}, "
        f"{snap.get('rows', '?')} rows, sha256 {short(str(snap.get('sha256', '')))}"
    )


def lineage_lines(report: Report) -> list[str]:
    sides = [("challenger", report.challenger_lineage)]
    if report.champion_lineage is not None:
        sides.insert(0, (champion_label(report), report.champion_lineage))
    lines = [
        "| | " + " | ".join(name for name, _ in sides) + " |",
        "|---|" + "---|" * len(sides),
    ]
    fields = (
        ("registry", lambda s: s.registry),
        ("git commit", lambda s: short(s.git_commit)),
        ("data sha256", lambda s: short(s.data_sha256)),
        ("data file", lambda s: f"`{Path(s.data_file).name}`" if s.data_file else "–"),
        ("pipeline run", lambda s: f"`{s.run_id}`" if s.run_id else "–"),
    )
    if any(s is not None and s.feature_snapshot for _, s in sides):
        fields += (("feature snapshot", lambda s: snapshot_text(s.feature_snapshot)),)
    for label, get in fields:
        lines.append(f"| {label} | " + " | ".join(get(s) if s else "–" for _, s in sides) + " |")
    if report.champion_lineage is None or report.challenger_lineage is None:
        return lines
    diff = params_diff(report.champion_lineage.params, report.challenger_lineage.params)
    lines.append("")
    if not diff:
        lines.append("Parameters: same as the champion's.")
        return lines
    lines += [
        f"Parameters that differ from {champion_label(report)}'s:",
        "",
        f"| parameter | {champion_label(report)} | challenger |",
        "|---|---|---|",
    ]
    lines += [f"| `{k}` | {_param(old)} | {_param(new)} |" for k, old, new in diff]
    return lines


def _param(value: object) -> str:
    return "–" if value is None else f"`{value}`"


def champion_drift_lines(report: Report) -> list[str]:
    """Target and prediction drift of the new held-out rows against the champion."""
    section = report.champion_drift
    if not section:
        return []
    label = champion_label(report)
    rows = []
    if section.get("target"):
        rows.append((f"target `{section['target']['feature']}`", section["target"]))
    if section.get("prediction"):
        rows.append((f"prediction ({label})", section["prediction"]))
    lines = [
        f"### Drift of the new data against {label}",
        "",
        f"The challenger run's {section['rows']:,} held-out rows: their target against "
        f"{label}'s training target, and {label}'s predictions on them against its "
        f"predictions on its own held-out rows. PSI threshold {section['threshold']:g}.",
    ]
    if rows:
        lines += [
            "",
            f"| | PSI | {label} mean | new rows mean | Drift |",
            "|---|---:|---:|---:|---|",
        ]
        lines += [
            f"| {name} | {row['psi']:.3f} | {fmt(row['baseline_mean'])} | "
            f"{fmt(row['current_mean'])} | {'⚠️ yes' if row['drifted'] else 'no'} |"
            for name, row in rows
        ]
    lines += [f"\n{note}." for note in section.get("skipped", [])]
    return lines


def data_section_lines(section: DataSection) -> list[str]:
    """The check's own Markdown section when it wrote one; else a line from its status."""
    if section.body.strip():
        return [section.body.strip()]
    icon = {"passed": "✅ ", "no drift": "✅ ", "failed": "❌ ", "drift": "⚠️ "}.get(
        section.status, ""
    )
    lines = [f"### {section.title}: {icon}{section.status}"]
    if section.summary:
        lines += ["", section.summary]
    return lines


def plots_lines(report: Report) -> list[str]:
    lines: list[str] = []
    for chart in report.charts:
        lines += [chart, ""]
    if report.plots:
        where = (
            f"the `pr-report` artifact of [this run]({report.artifact_url})"
            if report.artifact_url
            else "the plots folder"
        )
        lines.append(f"PNG versions: {', '.join(f'`{p}`' for p in report.plots)} in {where}.")
    elif report.plots_note and report.charts:
        lines.append(report.plots_note)
    return ["### Plots", "", *lines] if lines else []


def render_markdown(report: Report, max_chars: int = MAX_COMMENT_CHARS) -> str:
    """The whole report; the same text serves as PR comment and job summary.

    GitHub refuses comments over 65,536 characters: past `max_chars`, the data
    checks' own sections shrink to their one-line summaries (the full ones are in
    the artifact).
    """
    text = _render(report)
    if len(text) <= max_chars:
        return text
    shrunk = {
        name: DataSection(s.title, s.status, "", s.summary or "(full section in the artifact)")
        for name, s in (("validation", report.validation), ("drift", report.drift))
    }
    return _render(replace(report, **shrunk))


def tracking_lines(run: RunRecord) -> list[str]:
    if not run.tracking_run_id:
        return []
    return [
        f"Tracked as MLflow run `{run.tracking_run_id}` in experiment "
        f"`{run.tracking_experiment}` (`mlops ui --mlflow` shows it with its curves and trials)."
    ]


def tuning_lines(tuning: Mapping) -> list[str]:
    """The search in a few lines: trials, objective, the best trial and its values."""
    best = tuning.get("best_value")
    lines = [
        f"{tuning.get('trials', 0)} trials ({tuning.get('pruned', 0)} stopped early, "
        f"{tuning.get('failed', 0)} failed), {tuning.get('direction', '')} "
        f"`{tuning.get('objective', '')}`; best: trial {tuning.get('best_trial')} "
        f"({fmt(best)}).",
        "",
        "| hyperparameter | best trial |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {_param(v)} |" for name, v in tuning.get("best_params", {}).items()]
    return lines


def _render(report: Report) -> str:
    lines = [MARKER, headline(report), ""]
    if report.run is not None:
        lines.append(f"Pipeline run `{report.run.run_id}`: {report.run.status}.")
        lines += tracking_lines(report.run)
    if report.challenger is not None:
        lines += [
            "",
            f"### Metrics on the same {report.rows} held-out rows (the challenger run's test split)",
            "",
            *metrics_table(report),
        ]
        lines += interval_lines(report)
        if report.champion is None:
            lines += ["", report.champion_note or "No champion: challenger only."]
        confusion = confusion_lines(report)
        if confusion:
            lines += ["", *confusion]
    if report.golden:
        lines += ["", *golden_lines(report)]
    lines += ["", "### Quality gate", "", *gate_lines(report)]
    if report.run is not None and report.run.tuning:
        lines += ["", "### Tuning", "", *tuning_lines(report.run.tuning)]
    lines += ["", *data_section_lines(report.validation), "", *data_section_lines(report.drift)]
    new_data_drift = champion_drift_lines(report)
    if new_data_drift:
        lines += ["", *new_data_drift]
    if report.challenger_lineage is not None:
        lines += ["", "### Lineage", "", *lineage_lines(report)]
    plots = plots_lines(report)
    if plots:
        lines += ["", *plots]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- loading


def read_data_section(reports_dir: Path, stem: str, title: str) -> DataSection:
    """`<stem>.md` (the check's own PR section) and the status from `<stem>.json`."""
    md, js = reports_dir / f"{stem}.md", reports_dir / f"{stem}.json"
    if not md.is_file() and not js.is_file():
        return DataSection(title, NOT_RUN)
    body = md.read_text() if md.is_file() else ""
    status, summary = "ran", ""
    if js.is_file():
        try:
            data = json.loads(js.read_text())
            status, summary = section_status(data), str(data.get("summary", ""))
        except (json.JSONDecodeError, AttributeError):
            status = "unreadable"
    return DataSection(title, status, body, summary)


def section_status(data: dict) -> str:
    """passed/failed for validation, drift/no drift for drift: from the keys the checks write."""
    for key in ("drifted", "drift_detected"):
        if isinstance(data.get(key), bool):
            return "drift" if data[key] else "no drift"
    for key in ("success", "passed"):
        if isinstance(data.get(key), bool):
            return "passed" if data[key] else "failed"
    return "ran"


def lineage_of(version) -> Lineage:
    """A registered version's lineage as a table column."""
    lin = version.lineage
    return Lineage(
        git_commit=lin.get("git_commit", ""),
        data_sha256=lin.get("data_sha256", ""),
        data_file=lin.get("data_file", ""),
        run_id=lin.get("run_id", ""),
        registry=f"v{version.version} {version.approval_status}",
        params=lin.get("params", {}),
        feature_snapshot=lin.get("feature_snapshot") or {},
    )


# ---------------------------------------------------------------- a registered version


def render_version(version, backend: str) -> str:
    """A registered model version as Markdown: the summary of a pipeline run on main."""
    lin = lineage_of(version)
    lines = [
        MARKER,
        f"## Model version {version.version} registered as {version.approval_status}",
        "",
        f"Model package group `{version.group}` ({backend} registry)."
        + (f" ARN: `{version.arn}`" if version.arn else ""),
        "",
        "| metric | value |",
        "|---|---:|",
        *(
            f"| {m} | {fmt(version.metrics.get(m))} |"
            for m in (*METRICS, *CLASSIFICATION_METRICS)
            if m in version.metrics
        ),
        "",
        "| lineage | |",
        "|---|---|",
        f"| git commit | {short(lin.git_commit)} |",
        f"| pull request | {version.lineage.get('pr_number') or '–'} |",
        f"| data sha256 | {short(lin.data_sha256)} |",
        f"| pipeline run | `{lin.run_id or '–'}` |",
    ]
    if version.approval_status == "PendingManualApproval":
        lines += [
            "",
            "Next: a reviewer approves it "
            f"(`mlops models approve {version.version} --backend {backend}`); "
            "approval starts the deploy workflow (staging, then prod behind review).",
        ]
    return "\n".join(lines) + "\n"
