"""The files steps pass each other: raw row splits and predictions, one reader for each.

- A **split** (train, validation, test; the golden set too) is CSV with a header, in the
  input's own format: its feature columns and the target, every value as the source
  file wrote it. Held-out rows sent to an endpoint are therefore what a client sends.
- **Predictions** (written by the evaluate step for the held-out and golden rows): one
  row per split row, in order: `target` as read, `y` (the target as the metrics take it:
  the number, or 0/1 by the class labels), `prediction` (the value or the positive
  class's probability) and `champion` (the champion's, empty when there was none).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

TARGET, Y, PREDICTION, CHAMPION = "target", "y", "prediction", "champion"
PREDICTION_COLUMNS = (TARGET, Y, PREDICTION, CHAMPION)
HELD_OUT_PREDICTIONS = "predictions.csv"
GOLDEN_PREDICTIONS = "golden_predictions.csv"
# Inputs and splits larger than this (config data.stream_above_mb) are read a chunk at
# a time by preprocess, train and evaluate, so a step's memory stays flat whatever the
# data's size (docs/scale.md). Below it a split is read whole: faster, the same result.
# Held whole, a split takes ~7x its CSV size (2M rows of 9 columns: 95 MB -> ~700 MB).
STREAM_ABOVE_MB = 64
# Rows per chunk: 250k rows of 10 text columns are ~150 MB as pandas holds them.
CHUNK_ROWS = 250_000


def split_files(folder: Path) -> list[Path]:
    folder = Path(folder)
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else [folder]
    if not files or not all(f.is_file() for f in files):
        raise FileNotFoundError(f"no .csv file in {folder}")
    return files


def read_split(folder: Path, nrows: int | None = None) -> pd.DataFrame:
    """Every CSV of a split folder (or one file) as text: values exactly as written."""
    frames = [
        pd.read_csv(f, dtype=str, keep_default_na=False, nrows=nrows) for f in split_files(folder)
    ]
    frame = pd.concat(frames, ignore_index=True)
    return frame.head(nrows) if nrows is not None else frame


def split_mb(folder: Path) -> float:
    """The size of a split's CSV files (or one file), in MB."""
    return sum(f.stat().st_size for f in split_files(folder)) / 2**20


def read_split_chunks(
    folder: Path, columns: list[str] | None = None, chunk_rows: int | None = None
) -> Iterator[pd.DataFrame]:
    """`read_split`, a chunk of `chunk_rows` (CHUNK_ROWS) rows at a time, of `columns` only
    when given, in file order: values exactly as written."""
    for f in split_files(folder):
        yield from pd.read_csv(f, dtype=str, keep_default_na=False, usecols=columns,
                               chunksize=chunk_rows or CHUNK_ROWS)  # fmt: skip


def write_split(frame: pd.DataFrame, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def read_predictions(path: Path) -> pd.DataFrame:
    """An evaluate predictions file: target as text, y, prediction and champion as floats."""
    frame = pd.read_csv(
        path, dtype={TARGET: str}, keep_default_na=False, na_values={CHAMPION: [""]}
    )
    for column in (Y, PREDICTION, CHAMPION):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame
