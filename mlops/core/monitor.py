"""Production monitoring: is the traffic a stage served still like what its model learned from?

For the captured requests of a stage (`mlops.core.capture`), per model version that
answered them:

- feature drift: PSI of every feature against the version's training baseline
  (`mlops.core.drift`, the same statistic as `mlops data drift`);
- prediction drift: PSI of the predictions against the version's own predictions on its
  held-out rows, as its evaluate step wrote them (deciles of those as bins);
- model quality, when ground truth is given (joined by inference id): MSE, RMSE, MAE, R²
  against the version's evaluation metrics; a violation when the MSE is more than
  `monitor.max_mse_increase_pct` above the version's test MSE. For a binary classifier the
  labels come in any form the target had (yes/no, true/false, 1/0, text) and are compared
  with the positive label; AUC, log loss and accuracy are checked against the version's
  test figures (`monitor.max_auc_drop`, `max_log_loss_increase_pct`, `max_accuracy_drop`).

A backend implements `Monitor`; the report (a dict, JSON and Markdown) is the same for
both. Pure functions; reading captures and models is the backends' business.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np

from mlops.core import drift
from mlops.core.errors import UsageError
from mlops.core.interfaces import Progress

OK, VIOLATION, NO_DATA = "ok", "violation", "no data"
REFERENCE_BINS = 10


class Monitor(Protocol):
    """Builds the monitoring report of a stage from what its endpoint captured."""

    def report(
        self,
        stage: str,
        since: datetime | None,
        labels: dict[str, float] | None,
        progress: Progress,
    ) -> dict: ...


SINCE_FORMS = "30m, 6h, 7d or an ISO time"


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """`30m`, `6h`, `7d` (that long ago) or an ISO 8601 time; None for everything.

    Refused (exit 2, one line naming the flag and these forms): anything else, and a
    duration or time outside years 1 to 9999 in UTC with an hour to spare (a capture
    listing starts an hour early): `99999999999h`, `0001-01-01T00:00+05:00`.
    """
    if not text:
        return None
    now = now or datetime.now(UTC)
    match = re.fullmatch(r"([0-9]+)([mhd])", text.strip())
    try:
        if match:
            unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
            when = now - timedelta(**{unit: int(match.group(1))})
        else:
            when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
        _ = when.astimezone(UTC) - timedelta(hours=1)  # a time, with room for the hour
    except ValueError:
        raise UsageError(f"--since {text!r}: use {SINCE_FORMS}") from None
    except OverflowError:
        raise UsageError(
            f"--since {text!r}: not a time from year 1 to 9999: use {SINCE_FORMS}"
        ) from None
    return when


def reference_edges(values: np.ndarray, bins: int = REFERENCE_BINS) -> list[float]:
    """Inner decile edges of reference values (ties collapsed)."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
    return [float(e) for e in edges[1:-1]]


def prediction_drift(reference: np.ndarray, current: np.ndarray, threshold: float) -> dict:
    """PSI of captured predictions against the version's predictions on held-out rows."""
    edges = reference_edges(reference)
    expected = drift.bin_proportions(reference, edges)
    value = drift.psi(expected, drift.bin_proportions(current, edges))
    return {
        "psi": value,
        "threshold": threshold,
        "drifted": value > threshold,
        "bins": len(edges) + 1,
        "reference_rows": int(reference.size),
        "reference_mean": float(reference.mean()),
        "mean": float(current.mean()),
    }


def quality(
    predictions: np.ndarray, truth: np.ndarray, task: str = "regression", threshold: float = 0.5
) -> dict:
    """Metrics of predictions against ground truth: regression's, or for a binary classifier
    (probabilities against 0/1 truths) AUC, log loss and accuracy at the threshold."""
    if task == "binary_classification":
        from stepkit.scores import auc, log_loss

        truth = truth.astype(bool)
        both = bool(truth.any() and (~truth).any())
        return {
            "rows": int(truth.size),
            "auc": auc(truth, predictions) if both else float("nan"),  # needs both labels
            "log_loss": log_loss(truth, predictions),
            "accuracy": float(np.mean((predictions >= threshold) == truth)),
        }
    error = predictions - truth
    mse = float(np.mean(error**2))
    total = float(np.sum((truth - truth.mean()) ** 2))
    return {
        "rows": int(truth.size),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1 - float(np.sum(error**2)) / total if total > 0 else float("nan"),
    }


def quality_check(
    measured: dict, version_metrics: dict, max_increase_pct: float, limits=None
) -> dict:
    """Measured quality against the version's test metrics; `violated` when MSE rose too far,
    or for a classifier (`limits`: the monitor config) when AUC or accuracy fell or log loss
    rose past their limits; `problems` names each."""
    if "auc" in measured:
        return classification_check(measured, version_metrics, limits or MonitorLimits())
    test_mse = version_metrics.get("mse")
    limit = test_mse * (1 + max_increase_pct / 100) if test_mse else None
    violated = limit is not None and measured["mse"] > limit
    problems = []
    if violated:
        problems.append(
            f"model quality: MSE {measured['mse']:.4g} on {measured['rows']} labelled rows is "
            f"over {limit:.4g} (test MSE {test_mse:.4g})"
        )
    return {
        **measured,
        "version_mse": test_mse,
        "max_mse": limit,
        "violated": violated,
        "problems": problems,
    }


class MonitorLimits:
    """The classifier limits of `monitor` in the config, at their defaults."""

    max_auc_drop = 0.05
    max_log_loss_increase_pct = 25.0
    max_accuracy_drop = 0.05


def classification_check(measured: dict, version_metrics: dict, limits) -> dict:
    """A classifier's AUC, log loss and accuracy on labelled traffic against its test figures."""
    found = {
        "min_auc": version_metrics.get("auc"),
        "max_log_loss": version_metrics.get("log_loss"),
        "min_accuracy": version_metrics.get("accuracy"),
    }
    if found["min_auc"] is not None:
        found["min_auc"] -= limits.max_auc_drop
    if found["max_log_loss"] is not None:
        found["max_log_loss"] *= 1 + limits.max_log_loss_increase_pct / 100
    if found["min_accuracy"] is not None:
        found["min_accuracy"] -= limits.max_accuracy_drop
    rows = measured["rows"]
    problems = []
    for metric, bound, worse in (
        ("auc", "min_auc", np.less),
        ("log_loss", "max_log_loss", np.greater),
        ("accuracy", "min_accuracy", np.less),
    ):
        value, limit = measured[metric], found[bound]
        if limit is not None and math.isfinite(value) and worse(value, limit):
            test = version_metrics[metric]
            problems.append(
                f"model quality: {metric} {value:.4g} on {rows} labelled rows is "
                f"{'under' if worse is np.less else 'over'} {limit:.4g} (test {test:.4g})"
            )
    return {
        **measured,
        **{f"version_{m}": version_metrics.get(m) for m in ("auc", "log_loss", "accuracy")},
        **found,
        "violated": bool(problems),
        "problems": problems,
    }


def label_values(labels, positive: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth labels in any form the target had (yes/no, true/false, 1/0, text) as 1.0
    for the positive label and 0.0 for the other, and which are present. Compared without
    case: a CSV says True where the config says "true". `positive` None: the larger of the
    two (1, "yes", "true"), as training decides. UsageError for more than two labels."""
    import pandas as pd

    from stepkit.rows import MISSING_NUMBER_TEXT, category_keys

    keys = category_keys(pd.Series(labels, dtype=object)).map(
        lambda k: None if k is None or k.lower() in MISSING_NUMBER_TEXT else k.lower()
    )
    present = keys.notna().to_numpy()
    distinct = sorted(set(keys[present]))
    if len(distinct) > 2:
        shown = ", ".join(distinct[:5])
        raise UsageError(f"labels hold {len(distinct)} values ({shown}); the target has two")
    wanted = str(positive).strip().lower() if positive is not None else (distinct or [""])[-1]
    if positive is not None and len(distinct) == 2 and wanted not in distinct:
        raise UsageError(
            f"labels hold {distinct[0]} and {distinct[1]}, not the positive label {positive!r}"
        )
    return (keys == wanted).to_numpy(dtype=float), present


def read_labels(
    path: Path,
    target: str,
    id_column: str = "inference_id",
    task: str = "regression",
    positive: str | None = None,
) -> dict[str, float]:
    """Ground truth: a CSV with an `inference_id` column and the target column (a number,
    or a classifier's label in any form, as 1.0 positive / 0.0); rows without one skipped."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise UsageError(f"labels file not found: {path}") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read labels {path}: {exc}") from None
    missing = [c for c in (id_column, target) if c not in frame.columns]
    if missing:
        raise UsageError(f"labels {path} lacks column(s) {missing}")
    if task == "binary_classification":
        values, keep = label_values(frame[target], positive)
        values = pd.Series(values)
    else:
        values = pd.to_numeric(frame[target], errors="coerce")
        keep = values.notna().to_numpy()
    keep = keep & (frame[id_column].str.strip() != "").to_numpy()
    return dict(zip(frame.loc[keep, id_column], values[keep].astype(float), strict=True))


def join_labels(requests: list, labels: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and truths of one-row requests whose inference id (else event id) is labelled."""
    predictions, truths = [], []
    for request in requests:
        key = request.inference_id or request.event_id
        if key in labels and len(request.predictions) == 1:
            predictions.append(request.predictions[0])
            truths.append(labels[key])
    return np.asarray(predictions, dtype=float), np.asarray(truths, dtype=float)


def feature_columns(rows: np.ndarray, baseline: dict) -> dict[str, np.ndarray]:
    """Captured raw rows (in the baseline's feature order) typed as the model's reader typed
    them when it scored them (`mlops.core.drift.baseline_columns`)."""
    import pandas as pd

    frame = pd.DataFrame(list(rows), columns=list(baseline["features"]), dtype=object)
    return drift.baseline_columns(frame, baseline)


def version_section(
    version: int,
    rows: np.ndarray,
    predictions: np.ndarray,
    baseline: dict,
    reference: np.ndarray | None,
    threshold: float,
    min_rows: int,
    quality_result: dict | None,
) -> dict:
    """The report of one version's traffic; `violations` lists what crossed a line."""
    section = {"version": version, "rows": len(rows), "violations": []}
    if len(rows) < min_rows:
        section["note"] = f"{len(rows)} captured rows, fewer than monitor.min_rows {min_rows}"
        section["quality"] = quality_result
        if quality_result and quality_result["violated"]:
            section["violations"].append(quality_violation(quality_result))
        return section
    results = drift.compare(feature_columns(rows, baseline), baseline, threshold)
    section["features"] = [asdict(r) for r in results]
    for r in results:
        if r.drifted:
            section["violations"].append(
                f"version {version}: feature {r.feature} drifted (PSI {r.psi:.3f} > {threshold:g})"
            )
    if reference is not None and reference.size:
        section["prediction_drift"] = prediction_drift(reference, predictions, threshold)
        if section["prediction_drift"]["drifted"]:
            section["violations"].append(
                f"version {version}: predictions drifted "
                f"(PSI {section['prediction_drift']['psi']:.3f} > {threshold:g})"
            )
    section["quality"] = quality_result
    if quality_result and quality_result["violated"]:
        section["violations"].append(quality_violation(quality_result))
    return section


def quality_violation(q: dict) -> str:
    return "; ".join(q["problems"])


def build_report(
    stage: str,
    endpoint_name: str,
    backend: str,
    since: datetime | None,
    sections: list[dict],
    requests: int,
    corrupt: int,
    source: str,
    first_corrupt: str = "",
) -> dict:
    violations = [v for s in sections for v in s["violations"]]
    rows = sum(s["rows"] for s in sections)
    if corrupt and not rows:  # traffic there was, none of it readable: not "no data"
        violations.append(
            f"none of {corrupt} captured line(s) could be read"
            + (f" (first: {first_corrupt})" if first_corrupt else "")
        )
    status = VIOLATION if violations else (OK if rows else NO_DATA)
    report = {
        "stage": stage,
        "endpoint_name": endpoint_name,
        "backend": backend,
        "source": source,
        "since": since.isoformat() if since else None,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "requests": requests,
        "rows": rows,
        "corrupt_lines": corrupt,
        "first_corrupt": first_corrupt,
        "versions": sections,
        "violations": violations,
        "status": status,
    }
    report["summary"] = summary_line(report)
    return report


def summary_line(report: dict) -> str:
    skipped = (
        f"; {report['corrupt_lines']} corrupt capture line(s) skipped"
        if report["corrupt_lines"]
        else ""
    )
    head = f"{report['stage']}: {report['requests']:,} captured requests, {report['rows']:,} rows"
    if report["status"] == NO_DATA:
        return f"{report['stage']}: no captured requests to monitor{skipped}"
    if report["status"] == OK:
        return f"{head}: no violation{skipped}"
    return (
        f"{head}: {len(report['violations'])} violation(s): "
        + "; ".join(report["violations"])
        + skipped
    )


def _num(value) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) and math.isfinite(value) else "-"


def render_markdown(report: dict) -> str:
    icon = {OK: "✅", VIOLATION: "⚠️", NO_DATA: "ℹ️"}[report["status"]]
    lines = [
        f"## Monitoring {report['stage']}: {icon} {report['status']}",
        "",
        f"Endpoint `{report['endpoint_name']}` ({report['backend']}), "
        f"{report['requests']:,} captured requests, {report['rows']:,} rows"
        + (f" since {report['since']}" if report["since"] else "")
        + f"; {report['corrupt_lines']} corrupt capture line(s) skipped. Source: {report['source']}.",
        "",
    ]
    if report["violations"]:
        lines += ["**Violations**", ""] + [f"- {v}" for v in report["violations"]] + [""]
    for s in report["versions"]:
        lines += [f"### Model version {s['version']}: {s['rows']:,} rows", ""]
        if s.get("note"):
            lines += [s["note"], ""]
        if s.get("features"):
            lines += [
                "| Feature | PSI | Training mean | Mean | Drift |",
                "|---|---:|---:|---:|---|",
            ]
            for f in s["features"]:
                lines.append(
                    f"| `{f['feature']}` | {f['psi']:.3f} | {_num(f['baseline_mean'])} | "
                    f"{_num(f['current_mean'])} | {'⚠️ yes' if f['drifted'] else 'no'} |"
                )
            lines.append("")
        p = s.get("prediction_drift")
        if p:
            lines += [
                f"Predictions: PSI {p['psi']:.3f} against {p['reference_rows']:,} held-out "
                f"predictions (mean {_num(p['mean'])} vs {_num(p['reference_mean'])})"
                + (" ⚠️ drifted" if p["drifted"] else ""),
                "",
            ]
        q = s.get("quality")
        if q and "auc" in q:
            lines += [
                f"Quality on {q['rows']:,} labelled rows: AUC {_num(q['auc'])} (min "
                f"{_num(q['min_auc'])}), log loss {_num(q['log_loss'])} (max "
                f"{_num(q['max_log_loss'])}), accuracy {_num(q['accuracy'])} (min "
                f"{_num(q['min_accuracy'])})" + (" ⚠️" if q["violated"] else ""),
                "",
            ]
        elif q:
            lines += [
                f"Quality on {q['rows']:,} labelled rows: MSE {_num(q['mse'])} (limit "
                f"{_num(q['max_mse'])}), RMSE {_num(q['rmse'])}, MAE {_num(q['mae'])}, "
                f"R² {_num(q['r2'])}" + (" ⚠️" if q["violated"] else ""),
                "",
            ]
    for finding in report.get("sagemaker_violations", []):
        lines.append(
            f"- `{finding.get('feature_name', '')}` {finding.get('constraint_check_type', '')}: {finding.get('description', '')}"
        )
    return "\n".join(lines).rstrip() + "\n"


def write_report(report: dict, folder: Path) -> tuple[Path, Path]:
    """monitor.json and monitor.md in `folder`, each written whole (temp file, rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in (
        ("monitor.json", json.dumps(report, indent=2, default=str) + "\n"),
        ("monitor.md", render_markdown(report)),
    ):
        path = folder / name
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        paths.append(path)
    return paths[0], paths[1]
