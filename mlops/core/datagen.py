"""Sample data, deterministic for a seed: the house-price example's generator, and
rows drawn from a fork's committed sample for any other schema.

Distributions follow the labs' reference file (`house_pricing.csv`): the same
columns, integer/float types and ranges, and a price that is linear in the
features (the reference's own coefficients) plus Gaussian noise, so a model
fitted here behaves like one fitted on the reference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = [
    "YEAR_BUILT",
    "SQUARE_FEET",
    "NUM_BEDROOMS",
    "NUM_BATHROOMS",
    "LOT_ACRES",
    "GARAGE_SPACES",
    "FRONT_PORCH",
    "DECK",
    "PRICE",
]

# Intercept and per-feature price coefficients, as measured on the reference data.
PRICE_INTERCEPT = -10_095_000.0
PRICE_COEFFICIENTS = {
    "YEAR_BUILT": 5_000.0,
    "SQUARE_FEET": 150.0,
    "NUM_BEDROOMS": 10_000.0,
    "NUM_BATHROOMS": 15_000.0,
    "LOT_ACRES": 15_000.0,
    "GARAGE_SPACES": 15_000.0,
    "FRONT_PORCH": 0.0,
    "DECK": 0.0,
}
PRICE_NOISE_SD = 3_000.0


def generate_houses(rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` houses with a noisy linear price; the same seed gives the same frame."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "YEAR_BUILT": np.clip(np.rint(rng.normal(1994.5, 10.0, rows)), 1957, 2019).astype(
                np.int64
            ),
            "SQUARE_FEET": np.clip(rng.normal(3000.0, 740.0, rows), 600.0, 6000.0),
            "NUM_BEDROOMS": rng.integers(2, 7, rows, dtype=np.int64),
            "NUM_BATHROOMS": rng.integers(2, 7, rows) / 2.0,
            "LOT_ACRES": np.round(np.clip(rng.normal(1.0, 0.25, rows), 0.07, 2.0), 2),
            "GARAGE_SPACES": rng.integers(0, 4, rows, dtype=np.int64),
            "FRONT_PORCH": rng.integers(0, 2, rows, dtype=np.int64),
            "DECK": rng.integers(0, 2, rows, dtype=np.int64),
        }
    )
    price = PRICE_INTERCEPT + sum(df[col] * coef for col, coef in PRICE_COEFFICIENTS.items())
    price = price + rng.normal(0.0, PRICE_NOISE_SD, rows)
    df["PRICE"] = np.rint(np.maximum(price, 10_000.0)).astype(np.int64)
    return df[COLUMNS]


def resample(sample: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` rows drawn with replacement from `sample`: more data with the same schema,
    types and value sets, for a project whose only data is its committed sample."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    return sample.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)


def feature_store_batches(
    df: pd.DataFrame,
    record_id: str,
    event_time: str,
    times: tuple[str, str],
    update_share: float = 0.25,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two ingest files for the feature store from one data set (any schema).

    The first holds every row as a record (ids `r00001`, ...) at `times[0]`, but a share
    of the records with an earlier version of their values (another row's, drawn from the
    same data, so they pass the same suite); the second holds those records' current values
    at `times[1]`. A snapshot before the second batch sees the earlier values; one after it
    is the data set itself, row for row, so a model trained on it learns what a model
    trained on the data file learns.
    """
    if not 0 < update_share <= 1:
        raise ValueError("update_share must be in (0, 1]")
    width = len(str(len(df)))
    ids = pd.Series([f"r{i:0{width}d}" for i in range(1, len(df) + 1)])
    current = df.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    updated = np.sort(rng.choice(len(df), max(1, int(len(df) * update_share)), replace=False))
    first = current.copy()
    first.iloc[updated] = resample(current, len(updated), seed + 1).to_numpy()
    first = first.astype(current.dtypes.to_dict())
    first.insert(0, event_time, times[0])
    first.insert(0, record_id, ids)
    second = current.iloc[updated].reset_index(drop=True)
    second.insert(0, event_time, times[1])
    second.insert(0, record_id, ids.iloc[updated].to_numpy())
    return first, second
