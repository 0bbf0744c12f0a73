"""The training baseline from the parts of a sharded training split, equal to the whole's.

With `sagemaker.processing_instance_count` > 1 each preprocess instance holds a share of
the training rows. It writes `baseline_part` (mergeable statistics of its share); one
instance then merges the parts (`merged_baseline`) into the files `stepkit.baseline`
writes for a whole split: baseline.json, and Model Monitor's statistics.json and
constraints.json.

Exact (as for the whole split, up to float rounding): row, present and missing counts,
sums, means, standard deviations (Chan et al.'s pairwise update), minimum, maximum,
category counts, integrality, distinct values of a discrete column (up to the bins).

Quantiles (decile bin edges, bin proportions, Model Monitor's buckets and sketch) come
from a **quantile summary** per part: its sorted values when it holds at most
`SUMMARY_POINTS` of them (the merge is then exact), else that many evenly spaced order
statistics, each standing for n / SUMMARY_POINTS values. A merged quantile is then off
by at most 1 / SUMMARY_POINTS of the rows in rank (0.05 %). Apache DataSketches' KLL
sketch does the same with a proven bound while streaming; a part here is in memory
anyway, and the processing image would need its wheels shipped.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from stepkit.baseline import (
    BASELINE_BINS,
    KLL_K,
    MISSING,
    categorical_statistics_of,
    inner_edges,
    kll_distribution,
    monitor_constraints,
    number_baseline_of,
    string_baseline_of_counts,
)
from stepkit.rows import category_keys
from stepkit.validation_merge import Moments

SUMMARY_POINTS = 2048
PART_FORMAT = 1


def quantile_summary(values: np.ndarray, points: int = SUMMARY_POINTS) -> dict:
    """Sorted values with weights: all of them (weight 1) up to `points`, else `points`
    evenly spaced order statistics, each weighing n / points."""
    ordered = np.sort(np.asarray(values, dtype=float))
    if ordered.size <= points:
        return {"values": ordered.tolist(), "weights": [1.0] * int(ordered.size)}
    ranks = ((np.arange(points) + 0.5) * ordered.size / points).astype(int)
    return {"values": ordered[ranks].tolist(), "weights": [ordered.size / points] * points}


def merged_summary(summaries: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The parts' summaries as one: values sorted, with their weights."""
    values = np.concatenate([np.asarray(s["values"], dtype=float) for s in summaries])
    weights = np.concatenate([np.asarray(s["weights"], dtype=float) for s in summaries])
    order = np.argsort(values, kind="stable")
    return values[order], weights[order]


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantiles of sorted weighted points, a point of weight w standing for w copies of its
    value: with whole weights exactly numpy's default (linear) quantiles of the copies."""
    ends = np.cumsum(weights)
    rank = np.asarray(q, dtype=float) * (ends[-1] - 1)
    low, high = np.floor(rank), np.ceil(rank)
    at_low = values[np.minimum(np.searchsorted(ends, low, side="right"), values.size - 1)]
    at_high = values[np.minimum(np.searchsorted(ends, high, side="right"), values.size - 1)]
    return at_low + (rank - low) * (at_high - at_low)


def numeric_part(values: np.ndarray) -> dict:
    """What the merge needs of one part's numeric column (NaN: missing)."""
    values = np.asarray(values, dtype=float)
    present = values[~np.isnan(values)]
    distinct, counts = np.unique(present, return_counts=True)
    mean = float(present.mean()) if present.size else 0.0
    return {
        "count": int(present.size),
        "missing": int(values.size - present.size),
        "sum": float(present.sum()),
        "mean": mean,
        "m2": float(((present - mean) ** 2).sum()),
        "min": float(present.min()) if present.size else None,
        "max": float(present.max()) if present.size else None,
        "integral": bool(np.all(present == np.round(present))),
        # a discrete column's every value and count: its bins and deciles merge exactly
        "distinct": (
            {"values": distinct.tolist(), "counts": counts.tolist()}
            if distinct.size <= BASELINE_BINS + 1
            else None
        ),
        "summary": quantile_summary(present),
    }


def text_part(values: pd.Series) -> dict:
    """Category counts (category keys) and missing values of one part's text column."""
    keys = category_keys(values)
    counts = keys.dropna().astype(str).value_counts()
    return {
        "missing": int(keys.isna().sum()),
        "counts": {str(k): int(v) for k, v in counts.items()},
    }


def baseline_part(
    train: pd.DataFrame,
    features: list[str],
    text: tuple[str, ...],
    target: pd.Series,
    task: str,
) -> dict:
    """One part's mergeable statistics (train: a typed frame, as `baseline_statistics` takes)."""
    return {
        "format": PART_FORMAT,
        "rows": len(train),
        "features": features,
        "text": list(text),
        "task": task,
        "columns": {
            name: text_part(train[name])
            if name in text
            else numeric_part(train[name].to_numpy(dtype=float))
            for name in features
        },
        "target": {
            "name": str(target.name),
            **(
                text_part(target)
                if task == "binary_classification"
                else numeric_part(pd.to_numeric(target, errors="coerce").to_numpy(dtype=float))
            ),
        },
    }


def _counted(distincts: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Few-valued parts' values with their counts summed per value."""
    values = np.concatenate([np.asarray(d["values"], dtype=float) for d in distincts])
    counts = np.concatenate([np.asarray(d["counts"], dtype=float) for d in distincts])
    distinct, where = np.unique(values, return_inverse=True)
    return distinct, np.bincount(where, weights=counts, minlength=distinct.size)


def _numbers(parts: list[dict]) -> dict:
    """Numeric parts merged: counts, sums, moments (pairwise, exact), range, summary."""
    count = sum(p["count"] for p in parts)
    moments = sum((Moments(p["count"], p["mean"], p["m2"]) for p in parts), Moments(0, 0.0, 0.0))
    present = [p for p in parts if p["count"]]
    distinct = None
    if all(p["distinct"] is not None for p in parts):  # few values: counted exactly
        values, weights = _counted([p["distinct"] for p in parts])
        distinct = values
    else:
        values, weights = merged_summary([p["summary"] for p in parts])
    return {
        "count": count,
        "missing": sum(p["missing"] for p in parts),
        "sum": math.fsum(p["sum"] for p in parts),
        "mean": moments.mean,
        "std": math.sqrt(moments.m2 / count) if count else 0.0,  # numpy's (population) std
        "min": min((p["min"] for p in present), default=None),
        "max": max((p["max"] for p in present), default=None),
        "integral": all(p["integral"] for p in parts),
        "distinct": distinct,
        "values": values,
        "weights": weights,
    }


def _texts(parts: list[dict]) -> tuple[pd.Series, int]:
    """Text parts merged: category counts (most frequent first) and the missing count."""
    counts: dict[str, int] = {}
    for p in parts:
        for key, n in p["counts"].items():
            counts[key] = counts.get(key, 0) + n
    ordered = pd.Series(counts, dtype="int64").sort_values(ascending=False, kind="stable")
    return ordered, sum(p["missing"] for p in parts)


def numeric_statistics(merged: dict) -> dict:
    """`stepkit.baseline.numeric_statistics` of the whole column, from merged parts."""
    if not merged["count"]:
        return {"count": 0, "missing": merged["missing"], "mean": None, "std": None, "min": None,
                "max": None, "bin_edges": [], "proportions": [1.0]}  # fmt: skip
    values, weights = merged["values"], merged["weights"]
    edges = np.unique(weighted_quantiles(values, weights, np.linspace(0, 1, BASELINE_BINS + 1)))
    inner = inner_edges(edges, merged["distinct"])
    bins = np.searchsorted(inner, values, side="right")
    counts = np.bincount(bins, weights=weights, minlength=len(inner) + 1)
    return {
        "count": merged["count"],
        "missing": merged["missing"],
        "mean": merged["mean"],
        "std": merged["std"],
        "min": merged["min"],
        "max": merged["max"],
        "bin_edges": [float(e) for e in inner],
        "proportions": [float(c) / weights.sum() for c in counts],
    }


def categorical_statistics(counts: pd.Series, missing: int) -> dict:
    """`stepkit.baseline.categorical_statistics` of the whole column, from merged parts."""
    levels = counts.copy()
    if missing:
        levels[MISSING] = levels.get(MISSING, 0) + missing
    return categorical_statistics_of(levels)


def _kll_distribution(merged: dict) -> dict:
    """Model Monitor's distribution: ten equal-width buckets over the merged summary, and
    the summary's quantiles at KLL_K ranks as the sketch's one level."""
    values, weights = merged["values"], merged["weights"]
    if not values.size:
        values, weights = np.zeros(1), np.ones(1)
    counts, edges = np.histogram(values, bins=BASELINE_BINS, weights=weights)
    if weights.sum() <= KLL_K and np.all(weights == 1):
        sample = values
    else:
        sample = weighted_quantiles(values, weights, np.linspace(0, 1, KLL_K))
    return kll_distribution(counts, edges, np.sort(sample))


def merged_baseline(parts: list[dict]) -> tuple[dict, dict, dict]:
    """(baseline.json, statistics.json, constraints.json) of the whole training split, from
    its parts' `baseline_part`s (every part of the same features, text columns and task)."""
    first = parts[0]
    features, text = first["features"], set(first["text"])
    for part in parts[1:]:
        if (part["features"], part["text"], part["task"]) != (
            features, first["text"], first["task"]
        ):  # fmt: skip
            raise ValueError("baseline parts of different features, text columns or tasks")
    stats, monitor, constraints = {}, [], []
    for name in features:
        columns = [p["columns"][name] for p in parts]
        if name in text:
            counts, missing = _texts(columns)
            stats[name] = categorical_statistics(counts, missing)
            feature_stats, feature_constraints = string_baseline_of_counts(name, counts, missing)
        else:
            merged = _numbers(columns)
            stats[name] = numeric_statistics(merged)
            feature_stats, feature_constraints = number_baseline_of(
                name, merged, _kll_distribution(merged)
            )
        monitor.append(feature_stats)
        constraints.append(feature_constraints)
    targets = [p["target"] for p in parts]
    if first["task"] == "binary_classification":
        target = categorical_statistics(*_texts(targets))
    else:
        target = numeric_statistics(_numbers(targets))
    rows = sum(p["rows"] for p in parts)
    baseline = {"features": stats, "rows": rows, "target": {"name": targets[0]["name"], **target}}
    statistics = {"version": 0.0, "dataset": {"item_count": rows}, "features": monitor}
    return baseline, statistics, monitor_constraints(constraints)
