"""preprocess: split raw rows into train/validation/test and record the training baseline.

Runs unchanged as a SageMaker Processing job (scikit-learn image) and under the
local runner. Outputs are what SageMaker's XGBoost expects: CSV, target first,
no header. Trees are scale-invariant, so nothing is fitted here: the only
preprocessing serving needs is the feature order, which `train` ships in the
model's manifest. The baseline (per-feature quantiles and histograms of the
training split; level frequencies for string categorical features; the same for the
target, its label proportions for a classifier) is what
`mlops data drift` and `mlops monitor` compare new data against; beside it,
statistics.json and constraints.json are the same training split in SageMaker Model
Monitor's baseline format, what a stage's data-quality monitoring schedule compares
captured traffic with.

For `--task binary_classification` the splits are stratified by the label, so each
holds the classes in the proportions of the whole file; a target without exactly two
values stops here with one line saying so.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

BASELINE_BINS = 10
MISSING = "(missing)"  # the baseline's level for empty categorical values
KLL_K = 2048  # Model Monitor's KLL sketch size; up to this many values fit in one level


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def read_raw(input_dir: Path, columns: list[str]) -> pd.DataFrame:
    """All CSV files in `input_dir`, concatenated, with exactly `columns` in that order."""
    files = sorted(input_dir.glob("*.csv")) if input_dir.is_dir() else [input_dir]
    if not files:
        raise FileNotFoundError(f"no .csv file in {input_dir}")
    df = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"input lacks column(s) {missing}; has {list(df.columns)}")
    if df.empty:
        raise ValueError("input has no data rows")
    return df[columns]


def drop_quarantined(df: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    """The input without the rows the validate step quarantined (positions in the input)."""
    return df.drop(index=df.index[sorted(set(rows))]).reset_index(drop=True) if rows else df


def quarantined_rows(folder: Path | None) -> list[int]:
    """validate's rows.json, or [] (no folder: nothing was quarantined)."""
    path = folder / "rows.json" if folder else None
    return [int(r) for r in json.loads(path.read_text())] if path and path.is_file() else []


def split_data(
    df: pd.DataFrame,
    train_ratio: float,
    validation_ratio: float,
    seed: int,
    stratify: pd.Series | None = None,
) -> Splits:
    """Shuffle with `seed` and cut into train/validation/test by the ratios; with `stratify`,
    each split keeps the classes in the same proportions."""
    if stratify is not None:
        return stratified_split(df, train_ratio, validation_ratio, seed, stratify)
    order = np.random.default_rng(seed).permutation(len(df))
    n_train = round(len(df) * train_ratio)
    n_val = round(len(df) * validation_ratio)
    if n_train < 1 or n_val < 1 or len(df) - n_train - n_val < 1:
        raise ValueError(f"{len(df)} rows are too few to split {train_ratio}/{validation_ratio}")
    parts = np.split(order, [n_train, n_train + n_val])
    train, validation, test = (df.iloc[idx].reset_index(drop=True) for idx in parts)
    return Splits(train, validation, test)


def stratified_split(
    df: pd.DataFrame, train_ratio: float, validation_ratio: float, seed: int, labels: pd.Series
) -> Splits:
    from sklearn.model_selection import train_test_split

    n_train = round(len(df) * train_ratio)
    n_val = round(len(df) * validation_ratio)
    n_test = len(df) - n_train - n_val
    if min(labels.value_counts().min(), n_val, n_test) < 2 or n_train < 2:
        raise ValueError(
            f"{len(df)} rows are too few to split {train_ratio}/{validation_ratio} "
            "with both classes in every split"
        )
    labels = labels.reset_index(drop=True)
    df = df.reset_index(drop=True)
    train, rest = train_test_split(df, train_size=n_train, stratify=labels, random_state=seed)
    validation, test = train_test_split(
        rest, train_size=n_val, stratify=labels[rest.index], random_state=seed
    )
    return Splits(*(part.reset_index(drop=True) for part in (train, validation, test)))


def binary_labels(target: pd.Series) -> pd.Series:
    """The target as text, checked to hold exactly two values (any spelling: 0/1, yes/no)."""
    text = target.astype(str).str.strip()
    if target.isna().any() or (text == "").any():
        raise ValueError(f"target {target.name} has empty values: every row needs a label")
    distinct = sorted(text.unique())
    if len(distinct) != 2:
        shown = ", ".join(distinct[:5]) + (", ..." if len(distinct) > 5 else "")
        raise ValueError(
            f"binary_classification needs target {target.name} to hold exactly two values; "
            f"it has {len(distinct)}: {shown}"
        )
    return text


def categorical_statistics(values: pd.Series) -> dict:
    """Level frequencies of a string feature in training (missing counted as its own level)."""
    text = values.astype("string").str.strip().fillna("").replace("", MISSING)
    counts = text.value_counts()
    return {
        "type": "categorical",
        "count": len(text),
        "levels": len(counts),
        "frequencies": {str(k): float(v) / len(text) for k, v in counts.items()},
    }


def numeric_statistics(values: np.ndarray) -> dict:
    """Summary and decile bin edges with training proportions (for PSI drift); a discrete
    column with few values gets one bin per value."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, BASELINE_BINS + 1)))
    inner = edges[1:-1]
    if edges.size <= BASELINE_BINS:  # tied deciles: a discrete feature gets a bin per value
        distinct = np.unique(values)
        inner = distinct[1:] if distinct.size <= BASELINE_BINS else inner
    counts = np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(inner) + 1)
    return {
        "count": int(values.size),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
        "bin_edges": [float(e) for e in inner],
        "proportions": [float(c) / values.size for c in counts],
    }


def target_statistics(target: pd.Series, task: str) -> dict:
    """The training target's distribution, for target drift: bins as for a numeric feature
    (regression), or the label's proportions (binary classification)."""
    if task == "binary_classification":
        return {"name": str(target.name), **categorical_statistics(target)}
    return {"name": str(target.name), **numeric_statistics(target.to_numpy(dtype=float))}


def baseline_statistics(
    train: pd.DataFrame,
    features: list[str],
    categorical: tuple[str, ...] = (),
    target: str | None = None,
    task: str = "regression",
) -> dict:
    """Per-feature statistics of the training split (level frequencies for categorical
    features) and, given `target`, the target's."""
    stats = {
        name: categorical_statistics(train[name])
        if name in categorical
        else numeric_statistics(train[name].to_numpy(dtype=float))
        for name in features
    }
    baseline = {"features": stats, "rows": len(train)}
    if target is not None:
        baseline["target"] = target_statistics(train[target], task)
    return baseline


def _kll_distribution(values: np.ndarray, rng: np.random.Generator) -> dict:
    """Ten equal-width buckets and a one-level KLL sketch (a uniform sample of <= k values)."""
    counts, edges = np.histogram(values, bins=BASELINE_BINS)
    sample = values if values.size <= KLL_K else rng.choice(values, KLL_K, replace=False)
    return {
        "kll": {
            "buckets": [
                {"lower_bound": float(lo), "upper_bound": float(hi), "count": float(c)}
                for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
            ],
            "sketch": {
                "parameters": {"c": 0.64, "k": float(KLL_K)},
                "data": [[float(v) for v in np.sort(sample)]],
            },
        }
    }


def string_baseline(name: str, column: pd.Series) -> tuple[dict, dict]:
    """Model Monitor's statistics and constraints of a string categorical feature."""
    present = column.dropna().astype(str)
    counts = present.value_counts()
    statistics = {
        "name": name,
        "inferred_type": "String",
        "string_statistics": {
            "common": {"num_present": int(present.size), "num_missing": int(column.isna().sum())},
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
        "completeness": float(present.size / max(len(column), 1)),
        "string_constraints": {"domains": sorted(str(v) for v in counts.index)},
    }
    return statistics, constraints


def model_monitor_baseline(
    train: pd.DataFrame, features: list[str], seed: int = 0, categorical: tuple[str, ...] = ()
) -> tuple:
    """(statistics, constraints) of the training split in SageMaker Model Monitor's schema."""
    rng = np.random.default_rng(seed)
    stats, constraints = [], []
    for name in features:
        if name in categorical:
            feature_stats, feature_constraints = string_baseline(name, train[name])
            stats.append(feature_stats)
            constraints.append(feature_constraints)
            continue
        column = pd.to_numeric(train[name], errors="coerce")
        values = column.dropna().to_numpy(dtype=float)
        integral = bool(values.size) and bool(np.all(values == np.round(values)))
        kind = "Integral" if integral else "Fractional"
        stats.append(
            {
                "name": name,
                "inferred_type": kind,
                "numerical_statistics": {
                    "common": {
                        "num_present": int(values.size),
                        "num_missing": int(column.isna().sum()),
                    },
                    "mean": float(values.mean()),
                    "sum": float(values.sum()),
                    "std_dev": float(values.std()),
                    "min": float(values.min()),
                    "max": float(values.max()),
                    "distribution": _kll_distribution(values, rng),
                },
            }
        )
        constraints.append(
            {
                "name": name,
                "inferred_type": kind,
                "completeness": float(values.size / max(len(column), 1)),
                "num_constraints": {"is_non_negative": bool(values.min() >= 0)},
            }
        )
    statistics = {"version": 0.0, "dataset": {"item_count": len(train)}, "features": stats}
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
    return statistics, {"version": 0.0, "features": constraints, "monitoring_config": monitoring}


def to_xgboost_csv(df: pd.DataFrame, features: list[str], target: str) -> pd.DataFrame:
    """Target first, then the features in order: the layout SageMaker's XGBoost reads."""
    return df[[target, *features]]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--features", required=True, help="comma-separated feature columns, in order")
    p.add_argument("--target", required=True)
    p.add_argument("--train-ratio", type=float, required=True)
    p.add_argument("--validation-ratio", type=float, required=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--task", choices=("regression", "binary_classification"), default="regression")
    p.add_argument("--categorical", default="", help="comma-separated string features")
    p.add_argument("--raw-dir", type=Path, default=Path("/opt/ml/processing/input"))
    p.add_argument(
        "--quarantine-dir",
        type=Path,
        default=Path("/opt/ml/processing/quarantine"),
        help="validate's quarantine folder: its rows.json lists the rows to leave out",
    )
    for name in ("train", "validation", "test", "baseline"):
        p.add_argument(f"--{name}-dir", type=Path, default=Path(f"/opt/ml/processing/{name}"))
    args = p.parse_args(argv)
    features = args.features.split(",")
    categorical = tuple(c for c in args.categorical.split(",") if c)

    df = read_raw(args.raw_dir, [*features, args.target])
    rows = quarantined_rows(args.quarantine_dir)
    df = drop_quarantined(df, rows)
    if rows:
        print(f"left out {len(rows)} quarantined row(s)")
    labels = binary_labels(df[args.target]) if args.task == "binary_classification" else None
    splits = split_data(df, args.train_ratio, args.validation_ratio, args.seed, labels)
    for name in ("train", "validation", "test"):
        out = getattr(args, f"{name}_dir")
        out.mkdir(parents=True, exist_ok=True)
        frame = to_xgboost_csv(getattr(splits, name), features, args.target)
        frame.to_csv(out / f"{name}.csv", header=False, index=False)
        print(f"{name}: {len(frame)} rows")
    args.baseline_dir.mkdir(parents=True, exist_ok=True)
    baseline = baseline_statistics(splits.train, features, categorical, args.target, args.task)
    (args.baseline_dir / "baseline.json").write_text(json.dumps(baseline, indent=2))
    statistics, constraints = model_monitor_baseline(
        splits.train, features, args.seed, tuple(categorical)
    )
    (args.baseline_dir / "statistics.json").write_text(json.dumps(statistics, indent=2))
    (args.baseline_dir / "constraints.json").write_text(json.dumps(constraints, indent=2))


if __name__ == "__main__":
    main()
