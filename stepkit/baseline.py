"""The training baseline: what drift checks and monitoring compare new data with.

Written by the preprocess step from the training split (typed by `stepkit.rows`):

- `baseline.json`: per feature, decile bin edges and training proportions (numbers) or
  level frequencies (text, missing counted as its own level), and the same for the
  target; `mlops data drift` and `mlops monitor` read it (PSI);
- `statistics.json` and `constraints.json`: the same split in SageMaker Model Monitor's
  baseline format, what a stage's data-quality monitoring schedule compares captured
  traffic with.

Missing numbers are counted (`missing`) and left out of the bins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from stepkit.rows import category_keys

BASELINE_BINS = 10
MISSING = "(missing)"  # the baseline's level for empty text values
KLL_K = 2048  # Model Monitor's KLL sketch size; up to this many values fit in one level


def level_names(values: pd.Series) -> pd.Series:
    """Text values as the baseline names their levels: the category key, MISSING if empty."""
    return category_keys(values).fillna(MISSING)


def categorical_statistics(values: pd.Series) -> dict:
    """Level frequencies of a text feature in training (missing counted as its own level)."""
    return categorical_statistics_of(level_names(values).value_counts())


def categorical_statistics_of(counts: pd.Series) -> dict:
    """The same from the level counts (MISSING among them): what sharded parts merge."""
    total = int(counts.sum())
    return {
        "type": "categorical",
        "count": total,
        "levels": len(counts),
        "frequencies": {str(k): float(v) / total for k, v in counts.items()},
    }


def numeric_statistics(values: np.ndarray) -> dict:
    """Summary and decile bin edges with training proportions (for PSI drift); a discrete
    column with few values gets one bin per value. Missing values are counted, not binned."""
    values = np.asarray(values, dtype=float)
    present = values[~np.isnan(values)]
    missing = int(values.size - present.size)
    if present.size == 0:
        return {"count": 0, "missing": missing, "mean": None, "std": None, "min": None,
                "max": None, "bin_edges": [], "proportions": [1.0]}  # fmt: skip
    edges = np.unique(np.quantile(present, np.linspace(0, 1, BASELINE_BINS + 1)))
    distinct = np.unique(present) if edges.size <= BASELINE_BINS else None
    inner = inner_edges(edges, distinct)
    counts = np.bincount(np.searchsorted(inner, present, side="right"), minlength=len(inner) + 1)
    return {
        "count": int(present.size),
        "missing": missing,
        "mean": float(present.mean()),
        "std": float(present.std()),
        "min": float(present.min()),
        "max": float(present.max()),
        "bin_edges": [float(e) for e in inner],
        "proportions": [float(c) / present.size for c in counts],
    }


def inner_edges(edges: np.ndarray, distinct: np.ndarray | None) -> np.ndarray:
    """The bins' inner edges from the unique deciles; tied deciles: a discrete column (at
    most BASELINE_BINS `distinct` values; None: more) gets a bin per value."""
    if edges.size <= BASELINE_BINS and distinct is not None and distinct.size <= BASELINE_BINS:
        return distinct[1:]
    return edges[1:-1]


def target_statistics(target: pd.Series, task: str) -> dict:
    """The training target's distribution, for target drift: bins as for a number feature
    (regression), or the label's proportions (binary classification)."""
    if task == "binary_classification":
        return {"name": str(target.name), **categorical_statistics(target)}
    numbers = pd.to_numeric(target, errors="coerce").to_numpy(dtype=float)
    return {"name": str(target.name), **numeric_statistics(numbers)}


def baseline_statistics(
    train: pd.DataFrame,
    features: list[str],
    text: tuple[str, ...] = (),
    target: pd.Series | None = None,
    task: str = "regression",
) -> dict:
    """Per-feature statistics of the training split (a typed frame: floats, text keys) and,
    given the target column, the target's."""
    stats = {
        name: categorical_statistics(train[name])
        if name in text
        else numeric_statistics(train[name].to_numpy(dtype=float))
        for name in features
    }
    baseline = {"features": stats, "rows": len(train)}
    if target is not None:
        baseline["target"] = target_statistics(target, task)
    return baseline


def _kll_distribution(values: np.ndarray, rng: np.random.Generator) -> dict:
    """Ten equal-width buckets and a one-level KLL sketch (a uniform sample of <= k values)."""
    counts, edges = np.histogram(values, bins=BASELINE_BINS)
    sample = values if values.size <= KLL_K else rng.choice(values, KLL_K, replace=False)
    return kll_distribution(counts, edges, np.sort(sample))


def kll_distribution(counts: np.ndarray, edges: np.ndarray, sample: np.ndarray) -> dict:
    """Model Monitor's `kll` distribution: bucket counts between edges, one sketch level."""
    return {
        "kll": {
            "buckets": [
                {"lower_bound": float(lo), "upper_bound": float(hi), "count": float(c)}
                for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
            ],
            "sketch": {
                "parameters": {"c": 0.64, "k": float(KLL_K)},
                "data": [[float(v) for v in sample]],
            },
        }
    }


def string_baseline(name: str, column: pd.Series) -> tuple[dict, dict]:
    """Model Monitor's statistics and constraints of a text feature."""
    keys = category_keys(column)
    counts = keys.dropna().astype(str).value_counts()
    return string_baseline_of_counts(name, counts, int(keys.isna().sum()))


def string_baseline_of_counts(name: str, counts: pd.Series, missing: int) -> tuple[dict, dict]:
    """The same from the column's level counts and its count of missing values (what the
    parts of a sharded column merge: stepkit.baseline_merge)."""
    present = int(counts.sum())
    statistics = {
        "name": name,
        "inferred_type": "String",
        "string_statistics": {
            "common": {"num_present": present, "num_missing": missing},
            "distinct_count": float(counts.size),
            "distribution": {
                "categorical": {
                    "buckets": [{"value": str(v), "count": int(c)} for v, c in counts.items()]
                }
            },
        },
    }
    constraints = {
        "name": name,
        "inferred_type": "String",
        "completeness": float(present / max(present + missing, 1)),
        "string_constraints": {"domains": sorted(str(v) for v in counts.index)},
    }
    return statistics, constraints


def number_baseline(name: str, column: pd.Series, rng: np.random.Generator) -> tuple[dict, dict]:
    """Model Monitor's statistics and constraints of a number feature."""
    numbers = pd.to_numeric(column, errors="coerce")
    values = numbers.dropna().to_numpy(dtype=float)
    present = values.size > 0
    figures = {
        "count": int(values.size),
        "missing": int(numbers.isna().sum()),
        "sum": float(values.sum()),
        "mean": float(values.mean()) if present else 0.0,
        "std": float(values.std()) if present else 0.0,
        "min": float(values.min()) if present else None,
        "max": float(values.max()) if present else None,
        "integral": bool(np.all(values == np.round(values))),
    }
    return number_baseline_of(
        name, figures, _kll_distribution(values if present else np.zeros(1), rng)
    )


def number_baseline_of(
    name: str, figures: Mapping[str, Any], distribution: dict
) -> tuple[dict, dict]:
    """The same from the column's figures (count, missing, sum, mean, std, min, max,
    integral) and its distribution: what the parts of a sharded column merge too
    (stepkit.baseline_merge)."""
    empty = figures["count"] == 0
    kind = "Integral" if not empty and figures["integral"] else "Fractional"
    statistics = {
        "name": name,
        "inferred_type": kind,
        "numerical_statistics": {
            "common": {"num_present": figures["count"], "num_missing": figures["missing"]},
            "mean": 0.0 if empty else figures["mean"],
            "sum": figures["sum"],
            "std_dev": 0.0 if empty else figures["std"],
            "min": 0.0 if empty else figures["min"],
            "max": 0.0 if empty else figures["max"],
            "distribution": distribution,
        },
    }
    constraints = {
        "name": name,
        "inferred_type": kind,
        "completeness": float(figures["count"] / max(figures["count"] + figures["missing"], 1)),
        "num_constraints": {"is_non_negative": bool(empty or figures["min"] >= 0)},
    }
    return statistics, constraints


def model_monitor_baseline(
    train: pd.DataFrame, features: list[str], seed: int = 0, text: tuple[str, ...] = ()
) -> tuple[dict, dict]:
    """(statistics, constraints) of the training split in SageMaker Model Monitor's schema."""
    rng = np.random.default_rng(seed)
    stats, constraints = [], []
    for name in features:
        if name in text:
            feature_stats, feature_constraints = string_baseline(name, train[name])
        else:
            feature_stats, feature_constraints = number_baseline(name, train[name], rng)
        stats.append(feature_stats)
        constraints.append(feature_constraints)
    statistics = {"version": 0.0, "dataset": {"item_count": len(train)}, "features": stats}
    return statistics, monitor_constraints(constraints)


def monitor_constraints(features: list[dict]) -> dict:
    """constraints.json: the features' constraints and how Model Monitor compares them."""
    monitoring = {
        "evaluate_constraints": "Enabled",
        "emit_metrics": "Enabled",
        "datatype_check_threshold": 1.0,
        "domain_content_threshold": 1.0,
        "distribution_constraints": {
            "perform_comparison": "Enabled",
            "comparison_threshold": 0.1,
            "comparison_method": "Robust",
        },
    }
    return {"version": 0.0, "features": features, "monitoring_config": monitoring}
