"""train: XGBoost with early stopping on the validation split.

Runs unchanged in SageMaker's XGBoost 3.2-0 framework container (script mode)
and under the local runner. Reads the channels from SM_CHANNEL_TRAIN /
SM_CHANNEL_VALIDATION (CSV, target first, no header), hyperparameters as
`--name value` arguments, and writes to SM_MODEL_DIR, which SageMaker (or the
local runner) packs into model.tar.gz:

- xgboost-model.json  the booster in XGBoost's own JSON format (never pickle)
- manifest.json       feature names and order, sha256 of the model file, versions; the
                      task, the levels of each categorical feature and, for binary
                      classification, the two labels (negative, positive) and the threshold

String categorical features (`--categorical a,b`) use XGBoost's native categorical
support: the `--max_categories` most frequent levels of the training split are kept
(rarer ones score as missing, with a warning) and recorded, so that evaluate and
inference.py encode every row exactly as training did.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from inference import category_keys, encode_frame, encode_labels

MODEL_FILE = "xgboost-model.json"
MANIFEST_FILE = "manifest.json"
# Arguments of xgboost.train itself; every other hyperparameter is a booster parameter.
TRAIN_ARGS = ("num_round", "early_stopping_rounds")
CURVE_FILE = "curve.csv"
SUMMARY_FILE = "training.json"
CURVE_PRINT_EVERY = 25  # rounds between metric lines in the log (SageMaker's tuner reads them)


def parse_value(text: str) -> int | float | str:
    """Hyperparameters arrive as strings: give numbers back their type."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_hyperparameters(pairs: list[str]) -> dict[str, int | float | str]:
    """`['--max_depth', '3', '--eta', '0.05']` -> `{'max_depth': 3, 'eta': 0.05}`."""
    if len(pairs) % 2:
        raise ValueError(f"hyperparameters must come as --name value pairs, got {pairs}")
    params = {}
    for flag, value in zip(pairs[::2], pairs[1::2], strict=True):
        if not flag.startswith("--"):
            raise ValueError(f"expected --name before {value!r}, got {flag!r}")
        params[flag[2:].replace("-", "_")] = parse_value(value)
    return params


def read_channel(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) from every CSV in a channel folder: target first, no header."""
    files = sorted(path.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no .csv file in channel {path}")
    data = pd.concat([pd.read_csv(f, header=None) for f in files]).to_numpy(dtype=np.float64)
    return data[:, 1:], data[:, 0]


def read_table(path: Path, features: list[str], categorical: list[str]) -> pd.DataFrame:
    """A channel as a frame: the target (as read) then the features, categoricals as text."""
    files = sorted(path.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no .csv file in channel {path}")
    names = ["__target__", *features]
    text = {name: str for name in ["__target__", *categorical]}
    frames = [
        pd.read_csv(f, header=None, names=names, dtype=text, keep_default_na=False) for f in files
    ]
    return pd.concat(frames, ignore_index=True)


def split_target(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    return table.drop(columns="__target__"), table["__target__"]


AFFIRMATIVE = ("1", "yes", "true", "y", "positive", "pos")


def class_labels(target: pd.Series, positive_label: str | None = None) -> list[str]:
    """[negative, positive]: the two values of a binary target (1, yes, true is positive)."""
    keys = category_keys(target)
    if keys.isna().any():
        raise ValueError(f"target has {int(keys.isna().sum())} empty value(s)")
    distinct = sorted(keys.unique().tolist())
    if len(distinct) != 2:
        shown = ", ".join(distinct[:5]) + (", ..." if len(distinct) > 5 else "")
        raise ValueError(
            f"binary_classification needs a target with exactly two values; it has "
            f"{len(distinct)}: {shown}"
        )
    if positive_label is not None:
        positive = str(positive_label)
        if positive not in distinct:
            raise ValueError(f"positive_label {positive!r} is not a target value: {distinct}")
    else:
        known = [v for v in distinct if v.lower() in AFFIRMATIVE]
        numeric = all(v.lstrip("-").replace(".", "", 1).isdigit() for v in distinct)
        if numeric:
            positive = max(distinct, key=float)
        else:
            positive = known[0] if len(known) == 1 else distinct[1]
    return [next(v for v in distinct if v != positive), positive]


def fit_categories(
    frame: pd.DataFrame, categorical: list[str], max_categories: int
) -> tuple[dict[str, list[str]], list[str]]:
    """The levels kept for each categorical feature, and a warning per capped feature."""
    categories, warnings = {}, []
    for name in categorical:
        counts = category_keys(frame[name]).value_counts()
        if counts.empty:
            raise ValueError(f"categorical feature {name} has no values in the training split")
        kept = counts.index[:max_categories]
        if len(counts) > max_categories:
            dropped = int(counts.iloc[max_categories:].sum())
            warnings.append(
                f"warning: {name} has {len(counts)} levels; kept the {max_categories} most "
                f"frequent, {dropped} training rows of rarer levels score as missing"
            )
        categories[name] = sorted(str(level) for level in kept)
    return categories, warnings


def default_threads(rows: int) -> int:
    """OpenMP threads for XGBoost: all cores only where they pay off.

    Measured on 2 cores with 6k training rows: 2 threads are no faster than one
    (0.74 s vs 0.77 s), and on a busy machine their spin-waits make training up to
    10x slower. Set `nthread` in the hyperparameters to override.
    """
    return (os.cpu_count() or 1) if rows >= 100_000 else 1


class CurveWriter(xgb.callback.TrainingCallback):
    """Appends each round's validation metrics to a CSV as training goes, and prints them
    every `print_every` rounds as `validation:<metric>=<value>`."""

    def __init__(self, path: Path, print_every: int = CURVE_PRINT_EVERY):
        self.path, self.print_every = path, print_every
        self.file = None
        self.scores: list[dict[str, float]] = []  # per round

    def after_iteration(self, model, epoch: int, evals_log: dict) -> bool:
        scores = {
            f"{data}:{metric}": values[-1]
            for data, metrics in evals_log.items()
            for metric, values in metrics.items()
        }
        self.scores.append(scores)
        if self.file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = self.path.open("w", buffering=1)  # line-buffered: readable while training
            self.file.write(",".join(["round", *scores]) + "\n")
        self.file.write(",".join([str(epoch), *(f"{v:.10g}" for v in scores.values())]) + "\n")
        if epoch % self.print_every == 0:
            print(" ".join(f"{k}={v:.10g}" for k, v in scores.items()), flush=True)
        return False

    def after_training(self, model):
        if self.file is not None:
            self.file.close()
        return model


def train_model(
    X_train: np.ndarray | pd.DataFrame,
    y_train: np.ndarray,
    X_val: np.ndarray | pd.DataFrame,
    y_val: np.ndarray,
    params: dict,
    feature_names: list[str],
    callbacks: list | None = None,
) -> xgb.Booster:
    """Fit a booster, stopping when validation RMSE stops improving."""
    booster_params = {k: v for k, v in params.items() if k not in TRAIN_ARGS}
    booster_params.setdefault("eval_metric", "rmse")
    booster_params.setdefault("nthread", default_threads(len(y_train)))
    # A frame carries categorical columns; a plain matrix is all numbers.
    categorical = isinstance(X_train, pd.DataFrame)
    dtrain = xgb.DMatrix(
        X_train, label=y_train, feature_names=feature_names, enable_categorical=categorical
    )
    dval = xgb.DMatrix(
        X_val, label=y_val, feature_names=feature_names, enable_categorical=categorical
    )
    return xgb.train(
        booster_params,
        dtrain,
        num_boost_round=int(params["num_round"]),
        evals=[(dval, "validation")],
        early_stopping_rounds=params.get("early_stopping_rounds"),
        verbose_eval=False,
        callbacks=callbacks,
    )


def training_summary(booster: xgb.Booster, rounds: int, scores: list[dict]) -> dict:
    """Rounds trained, the best round (the one kept) and its validation scores."""
    best = getattr(booster, "best_iteration", None)
    best = rounds - 1 if best is None else int(best)
    return {"rounds": rounds, "best_iteration": best, "best": scores[best] if scores else {}}


def keep_best_rounds(booster: xgb.Booster) -> xgb.Booster:
    """Drop the trees grown after the best validation score, so any reader predicts alike."""
    best = getattr(booster, "best_iteration", None)
    if best is None or best + 1 >= booster.num_boosted_rounds():
        return booster
    return booster[: best + 1]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(
    model_path: Path,
    feature_names: list[str],
    target: str,
    params: dict,
    booster: xgb.Booster,
    task: dict | None = None,
) -> dict:
    import sklearn

    return {
        **(task or {"task": "regression"}),
        "model_file": model_path.name,
        "model_format": "xgboost-json",
        "model_sha256": sha256_file(model_path),
        "features": feature_names,
        "target": target,
        "preprocessing": "none: trees are scale-invariant; features are taken in this order",
        "num_trees": booster.num_boosted_rounds(),
        "hyperparameters": params,
        "versions": {
            "python": platform.python_version(),
            "xgboost": xgb.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__,
        },
    }


def save_model(booster: xgb.Booster, model_dir: Path, manifest_extra: dict) -> Path:
    """Write the booster and its manifest; return the manifest path."""
    model_dir.mkdir(parents=True, exist_ok=True)
    model_path = model_dir / MODEL_FILE
    booster.save_model(model_path)
    manifest = build_manifest(model_path, booster=booster, **manifest_extra)
    manifest_path = model_dir / MANIFEST_FILE
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest_path


def prepare_tables(args: argparse.Namespace, features: list[str], params: dict) -> tuple:
    """Train and validation inputs for a classifier or for string categorical features,
    and the manifest fields that let evaluate and serving encode rows the same way."""
    categorical = [c for c in args.categorical.split(",") if c]
    X_train, target_train = split_target(read_table(args.train, features, categorical))
    X_val, target_val = split_target(read_table(args.validation, features, categorical))
    categories, warnings = fit_categories(X_train, categorical, args.max_categories)
    for line in warnings:
        print(line)
    task: dict = {"task": args.task, "categories": categories}
    if args.task == "binary_classification":
        objective = str(params.setdefault("objective", "binary:logistic"))
        if not objective.startswith("binary:"):
            raise ValueError(f"binary_classification needs a binary: objective, not {objective}")
        params.setdefault("eval_metric", "logloss")
        labels = class_labels(target_train, args.positive_label)
        task.update(class_labels=labels, threshold=args.threshold)
        y_train, y_val = encode_labels(target_train, labels), encode_labels(target_val, labels)
        print(f"labels: {labels[0]!r} -> 0, {labels[1]!r} -> 1 (positive)")
    else:
        y_train = target_train.astype(np.float64).to_numpy()
        y_val = target_val.astype(np.float64).to_numpy()
    return encode_frame(X_train, categories), y_train, encode_frame(X_val, categories), y_val, task


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--features", required=True, help="comma-separated feature names, in order")
    p.add_argument("--target", required=True)
    p.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    )
    p.add_argument(
        "--train",
        type=Path,
        default=Path(os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")),
    )
    p.add_argument(
        "--validation",
        type=Path,
        default=Path(os.environ.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation")),
    )
    p.add_argument(
        "--output-data-dir",
        type=Path,
        default=Path(os.environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")),
    )
    p.add_argument("--task", choices=("regression", "binary_classification"), default="regression")
    p.add_argument("--categorical", default="", help="comma-separated string features")
    p.add_argument("--max_categories", type=int, default=256)
    p.add_argument("--positive_label", default=None)
    p.add_argument("--threshold", type=float, default=0.5)
    args, rest = p.parse_known_args(argv)
    params = parse_hyperparameters(rest)
    features = args.features.split(",")

    if args.task == "regression" and not args.categorical:
        X_train, y_train = read_channel(args.train)
        X_val, y_val = read_channel(args.validation)
        if X_train.shape[1] != len(features):
            raise ValueError(
                f"train data has {X_train.shape[1]} feature columns, expected {len(features)}"
            )
        task = None
    else:
        X_train, y_train, X_val, y_val, task = prepare_tables(args, features, params)
    curve = CurveWriter(args.output_data_dir / CURVE_FILE)
    booster = train_model(X_train, y_train, X_val, y_val, params, features, [curve])
    rounds = booster.num_boosted_rounds()
    summary = training_summary(booster, rounds, curve.scores)
    booster = keep_best_rounds(booster)
    save_model(
        booster,
        args.model_dir,
        {"feature_names": features, "target": args.target, "params": params, "task": task},
    )
    (args.output_data_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    print(f"trained {rounds} rounds; kept the best {booster.num_boosted_rounds()}")
    # Last: the values a SageMaker tuning job takes as the objective (the kept round's).
    print(" ".join(f"{k}={v:.10g}" for k, v in summary["best"].items()))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
