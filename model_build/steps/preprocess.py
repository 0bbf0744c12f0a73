"""preprocess: split the raw rows into train, validation and test; record the training baseline.

Runs unchanged as a SageMaker processing job (scikit-learn image) and under the local
runner. The splits keep the input's own format (CSV with a header, every value as the
source wrote it): the held-out rows sent to an endpoint later are what a client sends.
Nothing is fitted here: the fitted preprocessing is features.py, which the train step
fits and ships inside the model, so that every reader applies it the same way.

The baseline (stepkit/baseline.py) is the training split's statistics, what `mlops data
drift` and `mlops monitor` compare new data with, in this project's and in SageMaker
Model Monitor's formats.

For `--task binary_classification` the splits are stratified by the label, so each
holds the classes in the proportions of the whole file; a target without exactly two
values stops here with one line saying so.

With `sagemaker.processing_instance_count` > 1 (docs/scale.md), `--part` runs on every
instance: each splits its share of the input files, each row by a seeded hash of its
values (`hash_split`: the instances agree without talking), writes its splits as
`train-<host>.csv` ... beside the others', and its part of the baseline
(`part-<host>.json`, stepkit.baseline_merge); `--merge` then writes the whole training
split's baseline from the parts on one instance.

An input larger than `--stream-above-mb` (config data.stream_above_mb, 64 MB) is split a
chunk at a time (`streamed_main`): memory stays flat whatever its size, the splits hold
the same rows as the whole input's split (in input order), and the baseline is merged
from each chunk's part as a sharded input's is.

A row without a target (empty, or NA/null/None) can be neither learnt nor scored: it is
left out and counted. The validate step quarantines such rows first when the suite
expects the target not to be null (the suite `mlops init` writes does), within
data.max_quarantined_pct; this is the backstop for a suite that does not.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stepkit.baseline import baseline_statistics, model_monitor_baseline
from stepkit.baseline_merge import baseline_part, merged_baseline
from stepkit.distributed import PROCESSING_RESOURCE_CONFIG, processing_hosts, row_shards
from stepkit.rows import MISSING_NUMBER_TEXT, category_keys, typed_frame
from stepkit.splits import (
    STREAM_ABOVE_MB,
    read_split,
    read_split_chunks,
    split_files,
    split_mb,
)

PART_FILE = "part"  # a sharded preprocess instance's baseline part: part-<host>.json
SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def require_columns(found: list[str], columns: list[str]) -> None:
    """Refuse an input whose header lacks any of `columns`, in one line."""
    missing = [c for c in columns if c not in found]
    if missing:
        raise ValueError(f"input lacks column(s) {missing}; has {found}")


def read_raw(input_dir: Path, columns: list[str]) -> pd.DataFrame:
    """All CSV files in `input_dir` as text, with exactly `columns` in that order."""
    df = read_split(input_dir)
    require_columns(list(df.columns), columns)
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


def without_target(target: pd.Series) -> np.ndarray:
    """Which rows have no target (the spellings of a missing value as the reader knows them).

    A finite number is never missing: only the other values (text, blanks, NaN and
    infinity in their spellings) are looked at one distinct value at a time. A numeric
    target has nearly as many distinct values as rows: 2M rows took 10.9 s, now 0.5 s."""
    numbers = pd.to_numeric(target, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    missing, rest = np.zeros(len(target), dtype=bool), ~np.isfinite(numbers)
    if rest.any():
        keys = category_keys(target[rest])
        missing[rest] = keys.map(lambda key: key is None or key.lower() in MISSING_NUMBER_TEXT
                                 ).to_numpy(bool)  # fmt: skip
    return missing


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


def hash_split(df: pd.DataFrame, train_ratio: float, validation_ratio: float, seed: int) -> Splits:
    """Each row's split from a seeded hash of its values: every instance of a sharded input
    decides alike, and a row lands in the same split whichever instance holds it. The
    splits' sizes are the ratios' in expectation, not to the row; the classes of a label
    are shared out alike, in expectation too."""
    key = hashlib.sha256(str(seed).encode()).hexdigest()[:16]  # pandas takes a 16-byte key
    draw = pd.util.hash_pandas_object(df, index=False, hash_key=key).to_numpy() / 2.0**64
    train = draw < train_ratio
    validation = ~train & (draw < train_ratio + validation_ratio)
    test = ~train & ~validation
    return Splits(*(df[rows].reset_index(drop=True) for rows in (train, validation, test)))


def labels_error(name: str, distinct: list[str], complete: bool = True) -> ValueError:
    shown = ", ".join(distinct[:5]) + (", ..." if len(distinct) > 5 else "")
    count = f"{len(distinct)}" if complete else f"at least {len(distinct)}"
    return ValueError(
        f"binary_classification needs target {name} to hold exactly two values; "
        f"it has {count}: {shown}"
    )


def binary_labels(target: pd.Series) -> pd.Series:
    """The target's labels (category keys), checked to hold exactly two values."""
    keys = category_keys(target)
    if keys.isna().any():
        raise ValueError(f"target {target.name} has empty values: every row needs a label")
    distinct = sorted(keys.unique())
    if len(distinct) != 2:
        raise labels_error(str(target.name), distinct)
    return keys


def split_codes(
    n: int, train_ratio: float, validation_ratio: float, seed: int, labels: pd.Series | None
) -> np.ndarray:
    """Per row of `n`, in order: 0 train, 1 validation, 2 test. The rows `split_data` picks
    for a frame of `n` rows (it splits their positions here), so a streamed split holds
    the same rows as the split of the whole frame."""
    positions = pd.DataFrame({"row": np.arange(n)})
    splits = split_data(positions, train_ratio, validation_ratio, seed, labels)
    codes = np.empty(n, dtype=np.int8)
    for code, part in enumerate((splits.train, splits.validation, splits.test)):
        codes[part["row"].to_numpy()] = code
    return codes


@dataclass(frozen=True)
class Kept:
    """Which input rows a streamed split keeps, and the labels of those kept (classifier)."""

    rows: np.ndarray  # bool per input row
    labels: pd.Series | None  # int codes per kept row, for a stratified split
    quarantined: int
    unlabelled: int


def kept_rows(raw: Path, target: str, quarantined: list[int], task: str) -> Kept:
    """The first pass over a large input: its target column only, a chunk at a time."""
    leave_out = np.asarray(sorted(set(quarantined)), dtype=np.int64)
    rows, codes, levels, start, unlabelled = [], [], {}, 0, 0
    for chunk in read_split_chunks(raw, columns=[target]):
        target_values = chunk[target]
        quarantine = np.zeros(len(chunk), dtype=bool)
        quarantine[leave_out[(leave_out >= start) & (leave_out < start + len(chunk))] - start] = 1
        labelled = ~without_target(target_values)
        unlabelled += int((~labelled & ~quarantine).sum())  # as counted after the quarantine
        keep = labelled & ~quarantine
        rows.append(keep)
        start += len(chunk)
        if task == "binary_classification":
            keys = category_keys(target_values[keep])
            for level in keys.unique():
                levels.setdefault(level, len(levels))
            if len(levels) > 2:  # a numeric target by mistake: stop at the third value
                raise labels_error(target, sorted(levels), complete=False)
            codes.append(keys.map(levels).to_numpy(dtype=np.int8))
    if start == 0:
        raise ValueError("input has no data rows")
    if task == "binary_classification" and len(levels) != 2:
        raise labels_error(target, sorted(levels))
    labels = pd.Series(np.concatenate(codes)) if codes else None
    return Kept(np.concatenate(rows), labels, int((leave_out < start).sum()), unlabelled)


class SplitWriter:
    """One split's files, a chunk of rows at a time: `name.csv`, or `shards` files
    `name-NN.csv` (rows shared out by a hash of their values); the header once, rows
    appended."""

    def __init__(self, folder: Path, name: str, shards: int):
        self.folder, self.name, self.shards = folder, name, shards
        self.started: set[str] = set()
        self.rows = 0
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, part: pd.DataFrame) -> None:
        self.rows += len(part)
        if self.shards == 1:
            self._append(self.name, part)
            return
        shard = row_shards(part, self.shards)
        for k in range(self.shards):
            self._append(f"{self.name}-{k + 1:02d}", part[shard == k])

    def _append(self, stem: str, rows: pd.DataFrame) -> None:
        first = stem not in self.started
        rows.to_csv(self.folder / f"{stem}.csv", mode="w" if first else "a", header=first,
                    index=False)  # fmt: skip
        self.started.add(stem)


def write_shards(part: pd.DataFrame, folder: Path, name: str, shards: int) -> None:
    """The split as `name.csv`, or as `shards` files `name-NN.csv` (rows shared out by a
    hash of their values): SageMaker gives each training instance its own (ShardedByS3Key)."""
    SplitWriter(folder, name, shards).write(part)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--merge",
        action="store_true",
        help="merge the parts' baselines (--parts-dir) into --baseline-dir",
    )
    p.add_argument("--parts-dir", type=Path, default=Path("/opt/ml/processing/parts"))
    merging = "--merge" in (sys.argv[1:] if argv is None else argv)
    p.add_argument(
        "--features", required=not merging, help="comma-separated feature columns, in order"
    )
    p.add_argument("--target", required=not merging)
    p.add_argument("--train-ratio", type=float, required=not merging)
    p.add_argument("--validation-ratio", type=float, required=not merging)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--task", choices=("regression", "binary_classification"), default="regression")
    p.add_argument("--categorical", default="", help="comma-separated text features")
    p.add_argument(
        "--shards", type=int, default=1, help="files per split: one per training instance"
    )
    p.add_argument(
        "--part",
        action="store_true",
        help="split this instance's share of a sharded input; write its part of "
        "the baseline (merged by --merge)",
    )
    p.add_argument(
        "--stream-above-mb",
        type=float,
        default=STREAM_ABOVE_MB,
        help="an input larger than this is split a chunk at a time",
    )
    p.add_argument("--resource-config", type=Path, default=PROCESSING_RESOURCE_CONFIG)
    p.add_argument("--raw-dir", type=Path, default=Path("/opt/ml/processing/raw"))
    p.add_argument(
        "--quarantine-dir",
        type=Path,
        default=Path("/opt/ml/processing/quarantine"),
        help="validate's quarantine folder: its rows.json lists the rows to leave out",
    )
    for name in ("train", "validation", "test", "baseline"):
        p.add_argument(f"--{name}-dir", type=Path, default=Path(f"/opt/ml/processing/{name}"))
    return p.parse_args(argv)  # fmt: skip


def write_json(folder: Path, name: str, document: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(document, indent=2))


def write_baseline(folder: Path, baseline: dict, statistics: dict, constraints: dict) -> None:
    for name, document in (("baseline.json", baseline), ("statistics.json", statistics),
                           ("constraints.json", constraints)):  # fmt: skip
        write_json(folder, name, document)


def merge_main(args: argparse.Namespace) -> None:
    """The baseline of a sharded input's whole training split, from its parts."""
    files = sorted(args.parts_dir.glob(f"{PART_FILE}*.json"))
    if not files:
        raise ValueError(f"no baseline part ({PART_FILE}*.json) in {args.parts_dir}")
    parts = [json.loads(f.read_text()) for f in files]
    baseline, statistics, constraints = merged_baseline(parts)
    if parts[0]["task"] == "binary_classification" and baseline["target"]["levels"] != 2:
        raise ValueError(
            f"binary_classification needs target {baseline['target']['name']} to hold exactly "
            f"two values; it has {baseline['target']['levels']}"
        )
    write_baseline(args.baseline_dir, baseline, statistics, constraints)
    print(f"baseline of {baseline['rows']} training rows merged from {len(parts)} part(s)")


def streamed_main(args: argparse.Namespace, features: list[str], text: tuple[str, ...]) -> None:
    """`main` for an input too large to hold (over STREAM_ABOVE_MB): two passes, a chunk
    at a time. The first reads the target column: which rows are kept, and (a classifier)
    their labels; the split is then decided as `split_data` decides it for the kept rows
    (`split_codes`); the second pass writes each chunk's rows to their split, in input
    order, and the training baseline is merged from each chunk's part (exact counts and
    moments; quantiles within 0.05 % in rank, stepkit.baseline_merge). On a share of a
    sharded input (`--part`) each row's split is its hash, as in memory, and each chunk's
    baseline part is written for the merge."""
    hosts = processing_hosts(args.resource_config)
    columns = [*features, args.target]
    for path in split_files(args.raw_dir):
        require_columns(list(pd.read_csv(path, nrows=0).columns), columns)
    # a share of a sharded input (--part): labels are checked by the merge, as in memory
    kept = kept_rows(args.raw_dir, args.target, quarantined_rows(args.quarantine_dir),
                     "regression" if args.part else args.task)  # fmt: skip
    if kept.quarantined:
        print(f"left out {kept.quarantined} quarantined row(s)")
    if kept.unlabelled:
        print(f"left out {kept.unlabelled} row(s) without a {args.target}")
    if not args.part:
        codes = split_codes(int(kept.rows.sum()), args.train_ratio, args.validation_ratio,
                            args.seed, kept.labels)  # fmt: skip
    writers = [SplitWriter(getattr(args, f"{name}_dir"), hosts.file_name(name, ""), args.shards)
               for name in SPLIT_NAMES]  # fmt: skip
    parts, start, done = [], 0, 0
    for chunk in read_split_chunks(args.raw_dir):
        size, chunk = len(chunk), chunk[columns]
        chunk = chunk[kept.rows[start : start + size]]
        start += size
        if args.part:  # each row's split from its hash, as on a whole share
            hashed = hash_split(chunk, args.train_ratio, args.validation_ratio, args.seed)
            chunk_splits = (hashed.train, hashed.validation, hashed.test)
        else:
            chunk_codes = codes[done : done + len(chunk)]
            chunk_splits = tuple(chunk[chunk_codes == code] for code in range(3))
            done += len(chunk)
        for writer, part in zip(writers, chunk_splits, strict=True):
            writer.write(part)
        train = chunk_splits[0]
        if len(train):
            typed, _ = typed_frame(train[features], features, text)
            parts.append(baseline_part(typed, features, text, train[args.target], args.task))
        print(f"  {start:,} input rows split", flush=True)
    for writer in writers:
        print(f"{writer.name}: {writer.rows} rows")
    if args.part:  # one part file per chunk: the merge reads every part-*.json
        for k, part in enumerate(parts):
            write_json(args.baseline_dir, hosts.file_name(PART_FILE, f"-{k + 1:04d}.json"), part)
        return
    baseline, statistics, constraints = merged_baseline(parts)
    write_baseline(args.baseline_dir, baseline, statistics, constraints)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.merge:
        merge_main(args)
        return
    features = args.features.split(",")
    text = tuple(c for c in args.categorical.split(",") if c)
    if split_mb(args.raw_dir) > args.stream_above_mb:
        streamed_main(args, features, text)
        return
    hosts = processing_hosts(args.resource_config)  # locally: one host, plain file names

    df = read_raw(args.raw_dir, [*features, args.target])
    rows = quarantined_rows(args.quarantine_dir)
    df = drop_quarantined(df, rows)
    if rows:
        print(f"left out {len(rows)} quarantined row(s)")
    unlabelled = without_target(df[args.target])
    if unlabelled.any():
        df = df[~unlabelled].reset_index(drop=True)
        print(f"left out {int(unlabelled.sum())} row(s) without a {args.target}")
    if args.part:  # every instance decides alike; the labels are checked by the merge
        splits = hash_split(df, args.train_ratio, args.validation_ratio, args.seed)
    else:
        labels = binary_labels(df[args.target]) if args.task == "binary_classification" else None
        splits = split_data(df, args.train_ratio, args.validation_ratio, args.seed, labels)
    for name in SPLIT_NAMES:
        part = getattr(splits, name)
        write_shards(part, getattr(args, f"{name}_dir"), hosts.file_name(name, ""), args.shards)
        print(f"{name}: {len(part)} rows")
    typed, _ = typed_frame(splits.train[features], features, text)
    target = splits.train[args.target]
    if args.part:
        part = baseline_part(typed, features, text, target, args.task)
        write_json(args.baseline_dir, hosts.file_name(PART_FILE, ".json"), part)
        return
    baseline = baseline_statistics(typed, features, text, target, args.task)
    statistics, constraints = model_monitor_baseline(typed, features, args.seed, text)
    write_baseline(args.baseline_dir, baseline, statistics, constraints)


if __name__ == "__main__":
    main()
