"""train: fit the preprocessing and the model family on the training split.

Runs unchanged as a SageMaker training job (script mode, on the family's framework
image) and under the local runner. Reads the channels from SM_CHANNEL_TRAIN /
SM_CHANNEL_VALIDATION (raw rows: CSV with a header, as the input), hyperparameters as
`--name value` arguments, and writes the model artifact (stepkit/artifact.py) to
SM_MODEL_DIR, which SageMaker (or the local runner) packs into model.tar.gz.

The validation split only stops training early; the held-out test split is evaluate's.
Each round's validation scores go to `curve.csv` and, every CURVE_PRINT_EVERY rounds,
to the log as `validation:<metric>=<value>` (SageMaker's tuner reads those lines).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import families
import features
import numpy as np
import pandas as pd

from stepkit.artifact import FEATURES_FILE, MODEL_DIR, copy_serving_code, write_manifest
from stepkit.contract import Batches, FeatureSpec
from stepkit.distributed import joined, training_hosts
from stepkit.rows import category_keys, checked_frame
from stepkit.splits import STREAM_ABOVE_MB, read_split, read_split_chunks, split_mb

CURVE_FILE = "curve.csv"
SUMMARY_FILE = "training.json"
CURVE_PRINT_EVERY = 25  # rounds between metric lines in the log
AFFIRMATIVE = ("1", "yes", "true", "y", "positive", "pos")
# A training split too large to hold is streamed; features.fit then sees a uniform sample
# of this many of its rows (~150 MB of text for 10 columns).
FIT_SAMPLE_ROWS = 250_000
# Arguments of this script; every other `--name value` pair is a hyperparameter.
OWN_ARGS = ("model", "features", "target", "task", "categorical", "max_categories",
            "positive_label", "threshold", "stream_above_mb")  # fmt: skip


# How Python's str() (the local runner) and SageMaker write booleans and None.
LITERALS = {"True": True, "true": True, "False": False, "false": False, "None": None}


def parse_value(text: str) -> Any:
    """Hyperparameters arrive as strings: give numbers, booleans, None, and lists and
    mappings (written as JSON) back their type."""
    if text in LITERALS:
        return LITERALS[text]
    if text.startswith(("[", "{")):
        try:
            return json.loads(text)
        except ValueError:
            return text
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_hyperparameters(pairs: list[str]) -> dict[str, Any]:
    """`['--max_depth', '3', '--eta', '0.05']` -> `{'max_depth': 3, 'eta': 0.05}`."""
    if len(pairs) % 2:
        raise ValueError(f"hyperparameters must come as --name value pairs, got {pairs}")
    params = {}
    for flag, value in zip(pairs[::2], pairs[1::2], strict=True):
        if not flag.startswith("--"):
            raise ValueError(f"expected --name before {value!r}, got {flag!r}")
        params[flag[2:].replace("-", "_")] = parse_value(value)
    return params


def class_labels(target: pd.Series, positive_label: str | None = None) -> list[str]:
    """[negative, positive]: the two values of a binary target (1, yes, true is positive)."""
    keys = category_keys(target)
    return class_labels_of(keys.dropna().unique().tolist(), int(keys.isna().sum()), positive_label)


def class_labels_of(distinct: list[str], empty: int, positive_label: str | None) -> list[str]:
    """`class_labels` from a target's distinct values and its count of empty ones."""
    if empty:
        raise ValueError(f"target has {empty} empty value(s)")
    distinct = sorted(distinct)
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
    elif all(v.lstrip("-").replace(".", "", 1).isdigit() for v in distinct):
        positive = max(distinct, key=float)
    else:
        known = [v for v in distinct if v.lower() in AFFIRMATIVE]
        positive = known[0] if len(known) == 1 else distinct[1]
    return [next(v for v in distinct if v != positive), positive]


def encode_target(target: pd.Series, labels: list[str] | None) -> np.ndarray:
    """The target as the family learns it: numbers, or 0/1 by [negative, positive]."""
    if labels is None:
        values = pd.to_numeric(target, errors="coerce").to_numpy(dtype=np.float64)
        if np.isnan(values).any():
            raise ValueError(
                f"target has {int(np.isnan(values).sum())} empty or non-numeric value(s)"
            )
        return values
    keys = category_keys(target)
    unknown = keys[~keys.isin(labels)]
    if not unknown.empty:
        raise ValueError(f"label {unknown.iloc[0]!r} is not one of the training labels {labels}")
    return (keys == labels[1]).to_numpy(dtype=np.float64)


class Curve:
    """Each round's validation scores: to curve.csv as training goes (line-buffered, so a
    tuner reads it live), and to the log every `print_every` rounds."""

    def __init__(self, path: Path, print_every: int = CURVE_PRINT_EVERY):
        self.path, self.print_every = path, print_every
        self.file = None
        self.scores: list[dict[str, float]] = []

    def __call__(self, round_: int, scores: dict[str, float]) -> None:
        self.scores.append(scores)
        if self.file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = self.path.open("w", buffering=1)
            self.file.write(",".join(["round", *scores]) + "\n")
        self.file.write(",".join([str(round_), *(f"{v:.10g}" for v in scores.values())]) + "\n")
        if round_ % self.print_every == 0:
            print(" ".join(f"{k}={v:.10g}" for k, v in scores.items()), flush=True)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def library_versions(family) -> dict[str, str]:
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }
    for name in family.LIBRARIES:
        module = sys.modules.get(name.split(".")[0])
        if module is not None:
            versions[module.__name__] = getattr(module, "__version__", "")
    return versions


def train(
    train_rows: pd.DataFrame,
    validation_rows: pd.DataFrame,
    spec: FeatureSpec,
    family,
    params: dict,
    positive_label: str | None,
    on_round,
    share=lambda value: value,
) -> tuple:
    """(fitted model, preprocessing state, class labels or None, training target summary).

    On several hosts (stepkit.distributed) each has a shard of the rows: what is fitted
    once (labels, the preprocessing, the naive answer) is the first host's, `share`d."""
    labels = share(
        class_labels(train_rows[spec.target], positive_label)
        if spec.task == "binary_classification"
        else None
    )
    y, y_val = (
        encode_target(train_rows[spec.target], labels),
        encode_target(validation_rows[spec.target], labels),
    )
    typed = checked_frame(train_rows[spec.features], spec.features, spec.text)
    typed_val = checked_frame(validation_rows[spec.features], spec.features, spec.text)
    state = share(features.fit(typed.assign(**{spec.target: y}), spec))
    X, X_val = features.transform(typed, state), features.transform(typed_val, state)
    fitted = family.fit(X, y, X_val, y_val, params, spec.task, on_round)
    return fitted, state, labels, share(float(y.mean()))


@dataclass
class TargetPass:
    """What the first pass over a streamed training split learns: its rows, its target's
    values (a classifier's counts per key, else the sum) and a sample for features.fit."""

    rows: int = 0
    counts: pd.Series | None = None  # key -> rows (classifier); NaN key: empty values
    total: float = 0.0
    bad: int = 0  # empty or non-numeric targets (regression)
    sample: pd.DataFrame | None = None
    sample_keys: np.ndarray = field(default_factory=lambda: np.empty(0))


def sampled(seen: TargetPass, chunk: pd.DataFrame, keys: np.ndarray, size: int) -> None:
    """Keep the `size` rows with the smallest random keys so far: a uniform sample without
    replacement of all rows seen (a bottom-k sample), whatever the chunks."""
    if len(seen.sample_keys) >= size:  # only rows that beat the sample's largest key
        better = keys < seen.sample_keys.max()
        chunk, keys = chunk[better], keys[better]
    frame = chunk if seen.sample is None else pd.concat([seen.sample, chunk])
    keys = np.concatenate([seen.sample_keys, keys])
    if len(keys) > size:
        keep = np.sort(np.argpartition(keys, size)[:size])
        frame, keys = frame.iloc[keep], keys[keep]
    seen.sample, seen.sample_keys = frame.reset_index(drop=True), keys


def target_pass(folder: Path, spec: FeatureSpec, sample_rows: int, seed: int = 0) -> TargetPass:
    """One pass over a training split too large to hold, a chunk at a time."""
    seen, rng = TargetPass(), np.random.default_rng(seed)
    for chunk in read_split_chunks(folder, columns=[*spec.features, spec.target]):
        seen.rows += len(chunk)
        target = chunk[spec.target]
        if spec.task == "binary_classification":
            counts = category_keys(target).value_counts(dropna=False)
            seen.counts = counts if seen.counts is None else seen.counts.add(counts, fill_value=0)
        else:
            values = pd.to_numeric(target, errors="coerce").to_numpy(dtype=np.float64)
            seen.bad += int(np.isnan(values).sum())
            seen.total += float(np.nansum(values))
        sampled(seen, chunk, rng.random(len(chunk)), sample_rows)
    if seen.bad:
        raise ValueError(f"target has {seen.bad} empty or non-numeric value(s)")
    if seen.rows == 0:
        raise ValueError(f"no training rows in {folder}")
    return seen


def fitted_features(rows: pd.DataFrame, spec: FeatureSpec, labels: list[str] | None) -> dict:
    """features.fit on raw training rows (the target encoded as the family learns it)."""
    typed = checked_frame(rows[spec.features], spec.features, spec.text)
    return features.fit(typed.assign(**{spec.target: encode_target(rows[spec.target], labels)}),
                        spec)  # fmt: skip


def streamed_train(
    train_dir: Path,
    validation_dir: Path,
    spec: FeatureSpec,
    family,
    params: dict,
    positive_label: str | None,
    on_round,
    share=lambda value: value,
    scratch: Path | None = None,  # the family's caches go here (default: a temporary folder)
) -> tuple:
    """`train` for splits too large to hold (over STREAM_ABOVE_MB), read a chunk at a time.

    features.fit sees a uniform sample of FIT_SAMPLE_ROWS training rows (as scikit-learn's
    QuantileTransformer fits on a subsample); the family's `fit_batches` reads the splits'
    chunks, each typed and transformed with the fitted state; a family without it gets
    the transformed columns of the whole split in one frame."""
    seen = target_pass(train_dir, spec, FIT_SAMPLE_ROWS)
    labels = None
    if spec.task == "binary_classification":
        empty = int(seen.counts[seen.counts.index.isna()].sum())
        distinct = [str(k) for k in seen.counts.index.dropna()]
        labels = class_labels_of(distinct, empty, positive_label)
    labels = share(labels)
    state = share(fitted_features(seen.sample, spec, labels))
    seen.sample = None  # ~150 MB of text, not needed while the model trains
    mean = seen.total / seen.rows if labels is None else seen.counts.get(labels[1], 0) / seen.rows

    def batches(folder: Path, rows: int, cache: Path) -> Batches:
        def iterate():
            for chunk in read_split_chunks(folder, columns=[*spec.features, spec.target]):
                typed = checked_frame(chunk[spec.features], spec.features, spec.text)
                yield features.transform(typed, state), encode_target(chunk[spec.target], labels)

        return Batches(iterate, rows, len(spec.features), cache)

    validation_rows = sum(len(c) for c in read_split_chunks(validation_dir, [spec.target]))
    # the family's on-disk caches: in `scratch`, else in a folder removed after the fit
    with contextlib.ExitStack() as stack:
        cache = scratch or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        train_batches, validation_batches = (batches(train_dir, seen.rows, cache),
                                             batches(validation_dir, validation_rows, cache))  # fmt: skip
        if hasattr(family, "fit_batches"):
            fitted = family.fit_batches(train_batches, validation_batches, params, spec.task,
                                        on_round)  # fmt: skip
        else:
            X, y = whole(train_batches)
            X_val, y_val = whole(validation_batches)
            fitted = family.fit(X, y, X_val, y_val, params, spec.task, on_round)
    return fitted, state, labels, share(float(mean))


def whole(batches: Batches) -> tuple[pd.DataFrame, np.ndarray]:
    """A split's transformed chunks as one frame (for a family without fit_batches)."""
    chunks = list(batches.iterate())
    return (pd.concat([X for X, _ in chunks], ignore_index=True),
            np.concatenate([y for _, y in chunks]))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the model family (config train.model)")
    p.add_argument("--features", required=True, help="comma-separated feature names, in order")
    p.add_argument("--target", required=True)
    p.add_argument("--task", choices=("regression", "binary_classification"), default="regression")
    p.add_argument("--categorical", default="", help="comma-separated text features")
    p.add_argument("--max_categories", type=int, default=256)
    p.add_argument("--positive_label", default=None)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument(
        "--stream_above_mb",
        type=float,
        default=STREAM_ABOVE_MB,
        help="a training split larger than this is read a chunk at a time",
    )
    env = os.environ.get
    p.add_argument("--model-dir", type=Path, default=Path(env("SM_MODEL_DIR", "/opt/ml/model")))
    p.add_argument(
        "--train", type=Path, default=Path(env("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    )
    p.add_argument(
        "--validation",
        type=Path,
        default=Path(env("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation")),
    )
    p.add_argument(
        "--output-data-dir",
        type=Path,
        default=Path(env("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data")),
    )
    args, rest = p.parse_known_args(argv)
    params = parse_hyperparameters(rest)
    family = families.family(args.model)
    problem = family.check(params, args.task)
    if problem:
        raise ValueError(f"hyperparameters: {problem}")
    spec = FeatureSpec(
        features=args.features.split(","),
        text=[c for c in args.categorical.split(",") if c],
        target=args.target,
        task=args.task,
        max_categories=args.max_categories,
    )
    curve = Curve(args.output_data_dir / CURVE_FILE)
    hosts = training_hosts()
    try:
        with joined(family, hosts) as share:
            if split_mb(args.train) > args.stream_above_mb:
                print(f"training split over {args.stream_above_mb:g} MB: read a chunk at a time")
                fitted, state, labels, target_mean = streamed_train(
                    args.train, args.validation, spec, family, params, args.positive_label,
                    curve, share,
                )  # fmt: skip
            else:
                fitted, state, labels, target_mean = train(
                    read_split(args.train), read_split(args.validation), spec, family, params,
                    args.positive_label, curve, share,
                )  # fmt: skip
    finally:
        curve.close()
    if not hosts.first:  # every host holds the same model; the first one writes it
        print(f"{family.NAME}: trained on {len(hosts.names)} hosts; {hosts.names[0]} saves it")
        return
    family.save(fitted.model, args.model_dir / MODEL_DIR)
    (args.model_dir / FEATURES_FILE).write_text(json.dumps(state, indent=2, sort_keys=True))
    copy_serving_code(Path(__file__).resolve().parent, args.model_dir)
    classifier = labels is not None
    write_manifest(
        args.model_dir,
        {
            "family": family.NAME,
            "task": spec.task,
            "features": spec.features,
            "text_features": spec.text,
            "target": spec.target,
            **({"class_labels": labels, "threshold": args.threshold} if classifier else {}),
            # the naive model's answer: the training mean, or the training share of positives
            "naive_prediction": target_mean,
            "hyperparameters": params,
            "versions": library_versions(family),
        },
    )
    best = curve.scores[fitted.best_round] if curve.scores else {}
    summary = {"rounds": fitted.rounds, "best_iteration": fitted.best_round, "best": best}
    (args.output_data_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    print(f"{family.NAME}: trained {fitted.rounds} rounds; kept {fitted.best_round + 1}")
    if classifier:
        print(f"labels: {labels[0]!r} -> 0, {labels[1]!r} -> 1 (positive)")
    # Last: the values a SageMaker tuning job takes as the objective (the kept round's).
    print(" ".join(f"{k}={v:.10g}" for k, v in best.items()))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
