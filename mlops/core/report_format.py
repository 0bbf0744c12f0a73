"""Numbers and charts for the PR comment: `89.3 M` rather than `8.92571e+07`, and plots that
GitHub draws inside the comment itself (Mermaid `xychart-beta`), no image host or click needed.
"""

from __future__ import annotations

import math

SUFFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
DECILES = 10


def human(value: float | None, digits: int = 3) -> str:
    """`89257100.0` -> `89.3 M`, `4623.1` -> `4.62 k`, `0.99825` -> `0.998`; '–' for None."""
    if value is None:
        return "–"
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    for bound, suffix in SUFFIXES:
        if size >= bound:
            return f"{_sig(value / bound, digits)} {suffix}"
    return _sig(value, digits)


def _sig(value: float, digits: int) -> str:
    if value == 0:
        return "0"
    text = f"{value:.{digits}g}"
    if "e" in text:  # tiny values: keep the exponent readable
        return f"{value:.{digits - 1}e}"
    return text


def human_delta(delta: float | None, pct: float | None = None) -> str:
    """`+3.99 M (+81 %)`; the sign always shown."""
    if delta is None:
        return "–"
    text = ("+" if delta >= 0 else "-") + human(abs(delta))
    return f"{text} ({human_pct(pct)})" if pct is not None else text


def human_pct(pct: float | None, sign: bool = True) -> str:
    """`+81 %`, `-4.53 %`, `+32,500 %`."""
    if pct is None:
        return "–"
    size = abs(pct)
    text = f"{size:,.0f}" if size >= 1000 else _sig(size, 3)
    return (("+" if pct >= 0 else "-") if sign else "") + f"{text} %"


def deciles(y, predictions: dict[str, object]) -> tuple[list[str], dict[str, list[float]]]:
    """Rows sorted by actual value, cut in tenths: mean actual and mean prediction per tenth."""
    import numpy as np

    y = np.asarray(y, dtype=float)
    order = np.argsort(y, kind="stable")
    parts = [p for p in np.array_split(order, min(DECILES, len(y))) if len(p)]
    labels = [f"D{i + 1}" for i in range(len(parts))]
    means = {"actual": [float(y[p].mean()) for p in parts]}
    for name, pred in predictions.items():
        pred = np.asarray(pred, dtype=float)
        means[name] = [float(pred[p].mean()) for p in parts]
    return labels, means


def scale_for(values: list[float]) -> tuple[float, str]:
    """A divisor and its suffix so that axis numbers stay short (prices in k or M)."""
    top = max((abs(v) for v in values), default=0.0)
    for bound, suffix in SUFFIXES:
        if top >= bound:
            return bound, f" ({suffix})"
    return 1.0, ""


def mermaid_xychart(
    title: str, labels: list[str], series: dict[str, list[float]], y_label: str, bar: str = ""
) -> str:
    """A Mermaid xychart: `series` as lines (`bar` names one drawn as bars instead)."""
    values = [v for s in series.values() for v in s]
    divisor, suffix = scale_for(values)
    lo = min(0.0, min(values) / divisor) if values else 0.0
    hi = max(values) / divisor if values else 1.0
    lines = [
        "```mermaid",
        "xychart-beta",
        f'    title "{title}"',
        "    x-axis [" + ", ".join(f'"{label}"' for label in labels) + "]",
        f'    y-axis "{y_label}{suffix}" {_axis(lo)} --> {_axis(hi * 1.05)}',
    ]
    for name, points in series.items():
        kind = "bar" if name == bar else "line"
        lines.append(f"    {kind} [" + ", ".join(_axis(p / divisor) for p in points) + "]")
    lines.append("```")
    return "\n".join(lines)


def _axis(value: float) -> str:
    return f"{value:.4g}"


def report_charts(y, challenger_pred, champion_pred, champion_name: str, target: str) -> list[str]:
    """Predicted vs actual by decile, and the mean absolute error by decile, as Mermaid charts
    with a line under each naming the series in drawing order (xychart has no legend)."""
    import numpy as np

    predictions = {"challenger": challenger_pred}
    if champion_pred is not None:
        predictions[champion_name] = champion_pred
    labels, means = deciles(y, predictions)
    order = " · ".join(
        f"{i + 1}: {name}" for i, name in enumerate(["actual (bars)", *list(predictions)])
    )
    first = mermaid_xychart(
        f"Mean {target} by tenth of actual {target} (held-out rows)",
        labels,
        means,
        target,
        bar="actual",
    )
    y_arr = np.asarray(y, dtype=float)
    sorted_rows = np.array_split(np.argsort(y_arr, kind="stable"), len(labels))
    errors = {
        name: [
            float(np.abs(np.asarray(p, float)[rows] - y_arr[rows]).mean()) for rows in sorted_rows
        ]
        for name, p in predictions.items()
    }
    second = mermaid_xychart(
        "Mean absolute error by tenth of actual value", labels, errors, f"|error| in {target}"
    )
    return [
        first,
        f"Series: {order}.",
        second,
        "Series: " + " · ".join(f"{i + 1}: {name}" for i, name in enumerate(predictions)) + ".",
    ]


def classification_charts(y, challenger_prob, champion_prob, champion_name: str) -> list[str]:
    """A classifier's calibration as a Mermaid chart: rows sorted by the challenger's score and
    cut in tenths; per tenth the observed positive rate (bars) and each model's mean predicted
    probability (lines) on the same rows."""
    import numpy as np

    y_arr = np.asarray(y, dtype=float)
    score = np.asarray(challenger_prob, dtype=float)
    parts = [
        p
        for p in np.array_split(np.argsort(score, kind="stable"), min(DECILES, len(y_arr)))
        if len(p)
    ]
    labels = [f"D{i + 1}" for i in range(len(parts))]
    series = {"observed": [float(y_arr[p].mean()) for p in parts]}
    series["challenger"] = [float(score[p].mean()) for p in parts]
    if champion_prob is not None:
        old = np.asarray(champion_prob, dtype=float)
        series[champion_name] = [float(old[p].mean()) for p in parts]
    chart = mermaid_xychart(
        "Observed positive rate and mean predicted probability by tenth of the challenger's score",
        labels,
        series,
        "positive rate",
        bar="observed",
    )
    names = ["observed rate (bars)", *list(series)[1:]]
    return [chart, "Series: " + " · ".join(f"{i + 1}: {n}" for i, n in enumerate(names)) + "."]
