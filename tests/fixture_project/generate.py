"""The fixture project's data: the yearly energy cost of a building, deterministic per seed.

Integer, float and 0/1 columns, one year-like column (checked against the current
year), and a cost that is linear in the features plus Gaussian noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET = "ANNUAL_COST"
# Cost per unit of each feature; the intercept brings the typical cost near 500,000.
COST_INTERCEPT = -10_095_000.0
COST_PER_UNIT = {
    "INSTALL_YEAR": 5_000.0,
    "FLOOR_AREA": 150.0,
    "OCCUPANTS": 10_000.0,
    "BOILER_KW": 15_000.0,
    "GLAZING_RATIO": 15_000.0,
    "HEAT_PUMPS": 15_000.0,
    "HAS_SOLAR": 0.0,
    "HAS_SHADE": 0.0,
}
FEATURES = list(COST_PER_UNIT)
COLUMNS = [*FEATURES, TARGET]
NOISE_SD = 3_000.0


def generate_buildings(rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` buildings with a noisy linear cost; the same seed gives the same frame."""
    rng = np.random.default_rng(seed)
    year = np.clip(np.rint(rng.normal(1994.5, 10.0, rows)), 1957, 2019)
    df = pd.DataFrame(
        {
            "INSTALL_YEAR": year.astype(np.int64),
            "FLOOR_AREA": np.clip(rng.normal(3000.0, 740.0, rows), 600.0, 6000.0),
            "OCCUPANTS": rng.integers(2, 7, rows, dtype=np.int64),
            "BOILER_KW": rng.integers(2, 7, rows) / 2.0,
            "GLAZING_RATIO": np.round(np.clip(rng.normal(1.0, 0.25, rows), 0.07, 2.0), 2),
            "HEAT_PUMPS": rng.integers(0, 4, rows, dtype=np.int64),
            "HAS_SOLAR": rng.integers(0, 2, rows, dtype=np.int64),
            "HAS_SHADE": rng.integers(0, 2, rows, dtype=np.int64),
        }
    )
    cost = COST_INTERCEPT + df[FEATURES].to_numpy() @ np.array(list(COST_PER_UNIT.values()))
    cost = cost + rng.normal(0.0, NOISE_SD, rows)
    df[TARGET] = np.rint(np.maximum(cost, 10_000.0)).astype(np.int64)
    return df[COLUMNS]
