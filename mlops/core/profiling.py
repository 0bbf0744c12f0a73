"""`mlops init`'s core: profile a data set, write its starter suite, calibrate its gate.

Pure functions on a DataFrame; the command in mlops/cli/init.py reads the file, runs
the project's own steps on it and writes the results. Calibration reads what the
evaluate step wrote for the project's model (its held-out metrics, their bootstrap
intervals, the naive predictor's, its predictions), so the thresholds a fork starts
with come from its own data and model, and the figures behind them are shown.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from mlops.core.config import TASKS, DataConfig
from mlops.core.errors import UsageError
from mlops.core.registry import metrics_from_evaluation
from mlops.core.uncertainty import small_test_warning
from stepkit.splits import PREDICTION, Y

__all__ = ["TASKS"]  # `--task` choices: the config's, one source of truth
# A string column with more levels than training keeps (data.max_categories) is left out
# unless --keep names it: past that many levels it is an identifier or free text.
MAX_LEVELS = DataConfig.model_fields["max_categories"].default
MAX_QUARANTINE_PCT = 99.0  # the config takes a share under 100 %
MIN_ROWS = 100  # a 60/20/20 split of fewer leaves under 20 held-out rows
SAMPLE_ROWS = 5_000  # the committed sample stays small
MAX_SET_SIZE = 10  # integer columns with at most this many values get a value set
RANGE_MARGIN = 0.5  # suite bounds: observed range widened by half its span each side
SUITE_MAX_ROWS = 10_000_000
TIME_SAMPLE = 1_000  # values parsed to tell a timestamp column (a sample: init stays quick)
# A column named like a record identifier: id, customer_id, customerId, CUSTOMER-ID...
ID_NAME = re.compile(r"(?i:(^|[_\W])id)$|[a-z]Id$")
ISO_DATE = r"^\d{4}-\d{2}-\d{2}"
RECORD_ID_WHY = "record id: proposed as feature_store.record_id"
EVENT_TIME_WHY = "timestamps: proposed as feature_store.event_time"


@dataclass(frozen=True)
class Column:
    name: str
    integer: bool  # whole numbers only (bounds are rounded to integers)
    int_dtype: bool  # read as integers (a whole-number float column stays float in a CSV)
    nulls: int
    rows: int
    low: float
    high: float
    values: tuple = ()  # the value set, for integer columns with few values
    categorical: bool = False  # string-valued: `values` holds its levels (if not too many)


@dataclass(frozen=True)
class Profile:
    rows: int
    target: Column
    features: tuple[Column, ...]
    left_out: dict[str, str] = field(default_factory=dict)  # column -> why
    task: str = "regression"
    record_id: str | None = None  # proposed feature_store.record_id
    event_time: str | None = None  # proposed feature_store.event_time
    unlabelled: int = 0  # rows without a target: profiled without, quarantined by the pipeline

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.features]

    @property
    def columns(self) -> list[str]:
        return [*self.feature_names, self.target.name]

    @property
    def categorical_names(self) -> list[str]:
        return [c.name for c in self.features if c.categorical]


def is_text(series: pd.Series) -> bool:
    """Not a number: strings (a bool column reads back as the words True/False)."""
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def category_key(value: object) -> str:
    # As the steps key a category or label: 1, 1.0 and "1" are "1"; True is "true";
    # text stripped.
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value).strip()


def levels(series: pd.Series) -> list[str]:
    """The distinct values of a column as the steps key them, sorted."""
    return sorted({category_key(v) for v in series.dropna().unique()})


def _categorical_column(series: pd.Series) -> Column:
    found = levels(series)
    raw = sorted(series.dropna().unique().tolist(), key=str)  # as the suite sees them
    return Column(
        name=str(series.name),
        integer=False,
        int_dtype=False,
        nulls=int(series.isna().sum()),
        rows=len(series),
        low=float("nan"),
        high=float("nan"),
        values=tuple(raw) if len(found) <= MAX_LEVELS else (),
        categorical=True,
    )


def _column(series: pd.Series) -> Column:
    if is_text(series):
        return _categorical_column(series)
    present = series.dropna()
    integer = pd.api.types.is_integer_dtype(series) or (
        len(present) > 0 and bool((present == np.round(present)).all())
    )
    values = ()
    if integer and present.nunique() <= MAX_SET_SIZE:
        values = tuple(int(v) for v in sorted(present.unique()))
    return Column(
        name=str(series.name),
        integer=bool(integer),
        int_dtype=pd.api.types.is_integer_dtype(series),
        nulls=int(series.isna().sum()),
        rows=len(series),
        low=float(present.min()),
        high=float(present.max()),
        values=values,
    )


def why_left_out(series: pd.Series, rows: int) -> str | None:
    """Why a column cannot be a feature, or None when it can."""
    present = series.dropna()
    if present.nunique() <= 1:
        return "constant"
    if is_text(series):
        count = len(levels(series))
        if count > MAX_LEVELS:
            return (
                f"{count} distinct strings, too many for a category (training keeps the "
                f"{MAX_LEVELS} most frequent: data.max_categories)"
            )
        return None
    integer_like = pd.api.types.is_integer_dtype(series) or bool(
        (present == np.round(present)).all()
    )
    consecutive = present.max() - present.min() == rows - 1
    if (
        integer_like
        and present.nunique() == rows
        and (present.is_monotonic_increasing or consecutive)
    ):
        return "ID-like (a distinct integer on every row, in order or consecutive)"
    return None


def looks_like_times(series: pd.Series) -> bool:
    """Text whose values (a sample) are all ISO-8601 dates or times: an event time."""
    present = series.dropna()
    if not is_text(series) or present.empty:
        return False
    sample = present.astype(str).head(TIME_SAMPLE)
    if not sample.str.match(ISO_DATE).all():
        return False
    parsed = pd.to_datetime(sample, format="ISO8601", errors="coerce", utc=True)
    return bool(parsed.notna().all())


def feature_store_columns(
    df: pd.DataFrame, target: str, id_like: set[str], keep=()
) -> tuple[str | None, str | None]:
    """(record id, event time) to propose for feature_store, from the data; None if none.

    The event time: the first column of ISO-8601 timestamps. The record id: the first
    column named like an id, else the first left out as ID-like (distinct on every row).
    A column --keep names stays a feature.
    """
    candidates = [c for c in df.columns if c != target and c not in keep]
    event_time = next((c for c in candidates if looks_like_times(df[c])), None)
    others = [c for c in candidates if c != event_time]
    named = [c for c in others if ID_NAME.search(str(c))]
    record_id = next(iter(named), None) or next((c for c in others if c in id_like), None)
    return record_id, event_time


def profile(df: pd.DataFrame, target: str, task: str = "regression", keep=()) -> Profile:
    """The columns of a data set as the template will use them; UsageError when unusable."""
    if task not in TASKS:
        raise UsageError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")
    if target not in df.columns:
        raise UsageError(f"no column {target!r} in the data (columns: {', '.join(df.columns)})")
    unknown = set(keep) - set(df.columns)
    if unknown:
        raise UsageError(f"--keep names no column of the data: {', '.join(sorted(unknown))}")
    unlabelled = int(df[target].isna().sum())
    df = labelled(df, target)
    rows = len(df)
    if rows < MIN_ROWS:
        with_target = f" with a {target}" if unlabelled else ""
        raise UsageError(
            f"too few rows{with_target}: {rows} (at least {MIN_ROWS} to train and hold rows out)"
        )
    y = df[target]
    if task == "regression" and is_text(y):
        raise UsageError(
            f"target {target!r} is not numeric: a regression needs a number "
            "(--task binary_classification for a two-label target)"
        )
    if y.nunique() <= 1:
        raise UsageError(f"target {target!r} is constant ({y.iloc[0]}): nothing to learn")
    if task == "binary_classification":
        labels = levels(y)
        if len(labels) != 2:
            shown = ", ".join(labels[:5]) + (", ..." if len(labels) > 5 else "")
            raise UsageError(
                f"target {target!r} is not binary: {len(labels)} labels ({shown}); "
                "binary_classification needs exactly two"
            )
    reasons = {c: why_left_out(df[c], rows) for c in df.columns if c != target}
    id_like = {  # left out as IDs, or strings distinct on every row
        c for c, why in reasons.items() if why and df[c].nunique() == rows
    }
    record_id, event_time = feature_store_columns(df, target, id_like, keep)
    for column, why in ((record_id, RECORD_ID_WHY), (event_time, EVENT_TIME_WHY)):
        if column is not None:
            reasons[column] = f"{reasons[column]}; {why}" if reasons[column] else why
    features, left_out = [], {}
    for name in df.columns:
        if name == target:
            continue
        reason = reasons.get(name)
        if reason and name not in keep:
            left_out[name] = reason
        else:
            features.append(_column(df[name]))
    if not features:
        raise UsageError(f"no usable feature: {left_out}")
    target_column = _column(y)
    if task == "binary_classification" and not target_column.categorical:  # 0/1 labels
        numbers = sorted(y.unique().tolist())
        target_column = replace(target_column, values=tuple(numbers))
    return Profile(
        rows, target_column, tuple(features), left_out, task, record_id, event_time, unlabelled
    )


def labelled(df: pd.DataFrame, target: str) -> pd.DataFrame:
    """The rows that have a target (a row without one can be neither learnt nor scored)."""
    return df[df[target].notna()].reset_index(drop=True)


def quarantine_pct(unlabelled: int, rows: int, default: float) -> float:
    """data.max_quarantined_pct for data with `unlabelled` rows of `rows` lacking a target:
    the default, or half as much again as their share (rounded up), so that the pipeline
    quarantines such rows instead of failing on them."""
    share = 100 * unlabelled / max(rows, 1)
    return min(max(default, _round(1.5 * share, down=False, digits=2)), MAX_QUARANTINE_PCT)


def with_margin(column: Column) -> tuple[float, float]:
    """Plausibility bounds: the observed range widened by half its span each side, never
    below zero for a column that never goes below zero."""
    span = column.high - column.low
    low, high = column.low - RANGE_MARGIN * span, column.high + RANGE_MARGIN * span
    if column.low >= 0:
        low = max(low, 0.0)
    if column.integer:
        return float(math.floor(low)), float(math.ceil(high))
    return _round(low, down=True), _round(high, down=False)


def present_share_floor(nulls: int, rows: int) -> float:
    """The `mostly` of a column's not-null expectation, from its empty share p: 1 - 1.5 p
    - 0.02 (the share may grow by half, plus 2 points), and never under half the share
    present (a mostly empty column that empties entirely is still caught)."""
    empty = nulls / max(rows, 1)
    floor = max((1 - empty) / 2, 0.98 - 1.5 * empty)
    return math.floor(round(100 * floor, 6)) / 100


def _round(value: float, down: bool, digits: int = 3) -> float:
    """`value` to `digits` significant digits, rounded outwards."""
    if value == 0:
        return 0.0
    scale = 10 ** (digits - 1 - math.floor(math.log10(abs(value))))
    return (math.floor if down else math.ceil)(value * scale) / scale


def _expectation(kind: str, notes: str, **kwargs) -> dict:
    return {"type": kind, "kwargs": kwargs, "notes": notes}


def column_expectations(column: Column, is_target: bool, label: bool = False) -> list[dict]:
    """`label`: the target of a classifier (its value set, not a range)."""
    what = "target" if is_target else "feature"
    out = []
    if column.nulls == 0 or is_target:  # a row without a target is quarantined
        out.append(
            _expectation(
                "expect_column_values_to_not_be_null",
                f"No empty {what} value in the data set profiled.",
                column=column.name,
            )
        )
    else:
        mostly = present_share_floor(column.nulls, column.rows)
        out.append(
            _expectation(
                "expect_column_values_to_not_be_null",
                f"{column.nulls} of {column.rows} values empty when profiling: at least this "
                "share must be present (the empty share half as much again, plus 2 points); "
                "REVIEW.",
                column=column.name,
                mostly=mostly,
            )
        )
    if column.categorical:
        if column.values:
            out.append(
                _expectation(
                    "expect_column_values_to_be_in_set",
                    "The levels seen when profiling; a new one scores as missing: REVIEW: "
                    "add the levels that can occur.",
                    column=column.name,
                    value_set=list(column.values),
                )
            )
        return out
    types = ["int64"] if column.int_dtype else ["int64", "float64"]
    out.append(
        _expectation(
            "expect_column_values_to_be_in_type_list",
            "Numbers only: text in a numeric column would not reach the model as a number.",
            column=column.name,
            type_list=types,
        )
    )
    if column.values and (not is_target or label):
        out.append(
            _expectation(
                "expect_column_values_to_be_in_set",
                "The values seen when profiling; a new one is a new kind of row.",
                column=column.name,
                value_set=list(column.values),
            )
        )
        return out
    low, high = with_margin(column)
    out.append(
        _expectation(
            "expect_column_values_to_be_between",
            f"Observed {column.low:g} to {column.high:g}, widened by half the span: "
            "REVIEW: set the limits of what is possible.",
            column=column.name,
            min_value=low,
            max_value=high,
        )
    )
    return out


def starter_suite(prof: Profile, name: str, source: str) -> dict:
    """A Great Expectations suite (plain JSON, no ids) for the profiled columns."""
    expectations = [
        _expectation(
            "expect_table_columns_to_match_ordered_list",
            "Exactly the configured columns, in order: features, then the target.",
            column_list=prof.columns,
        ),
        _expectation(
            "expect_table_row_count_to_be_between",
            "Enough rows to split and hold out; the upper bound catches a runaway export.",
            min_value=MIN_ROWS,
            max_value=SUITE_MAX_ROWS,
        ),
    ]
    for column in prof.features:
        expectations += column_expectations(column, is_target=False)
    expectations += column_expectations(
        prof.target, is_target=True, label=prof.task == "binary_classification"
    )
    return {
        "name": name,
        "meta": {"description": f"Starter suite written by `mlops init` from {source}."},
        "expectations": expectations,
    }


def sample_rows(df: pd.DataFrame, columns: list[str], seed: int = 0) -> pd.DataFrame:
    """The committed sample: the usable columns, at most SAMPLE_ROWS rows in file order."""
    if len(df) > SAMPLE_ROWS:
        df = df.sample(n=SAMPLE_ROWS, random_state=seed).sort_index()
    return df[columns].reset_index(drop=True)


@dataclass(frozen=True)
class Calibration:
    test_rows: int
    baseline: dict  # mse, r2 and their 95 % intervals (evaluate's), mape_pct
    naive: dict  # mse, r2 (evaluate's), mape_pct of predicting the training mean
    max_mse: float
    min_r2: float
    max_mape_pct: float
    smoke_rows: int
    warnings: tuple[str, ...] = ()


def mape_pct(y: np.ndarray, pred: np.ndarray) -> float:
    """The smoke test's measure (mlops.core.smoke): over the rows whose target is not zero."""
    nonzero = y != 0
    return float(np.mean(np.abs(pred[nonzero] - y[nonzero]) / np.abs(y[nonzero])) * 100)


def smoke_mape_limit(y: np.ndarray, pred: np.ndarray, rows: int, seed: int = 0) -> float:
    """The MAPE that `rows` held-out rows exceed in 1 % of draws, with a fifth more room."""
    rng = np.random.default_rng(seed)
    nonzero = np.flatnonzero(y != 0)
    draws = np.array(
        [rng.choice(nonzero, min(rows, len(nonzero)), replace=False) for _ in range(500)]
    )
    ape = np.abs(pred - y) / np.where(y == 0, 1, np.abs(y))
    return _round(
        float(np.percentile(ape[draws].mean(axis=1), 99)) * 100 * 1.2, down=False, digits=2
    )


def smoke_rows_and_limit(
    y: np.ndarray, pred: np.ndarray, rows: int, naive_mape: float
) -> tuple[int, float, str | None]:
    """The fewest smoke rows (`rows`, doubled up to all held-out rows) whose MAPE limit is
    under predicting the training mean's MAPE, that limit, and a warning when none is."""
    n = min(rows, len(y))
    while True:
        limit = smoke_mape_limit(y, pred, n)
        if limit < naive_mape:
            return n, limit, None
        if n >= len(y):
            break
        n = min(2 * n, len(y))
    # All held-out rows, always the same ones: their MAPE is the model's; just under the
    # mean predictor's still passes when the model beats it.
    model = mape_pct(y, pred)
    under = _round(naive_mape * 0.999, down=True, digits=3)
    if model < under:
        return n, under, None
    return (
        n,
        limit,
        (
            f"the baseline's MAPE {model:.3g} % is no better than predicting the mean "
            f"({naive_mape:.3g} %): the smoke limit cannot be either"
        ),
    )


def calibrate(evaluation: dict, predictions: pd.DataFrame, smoke_rows: int) -> Calibration:
    """Gate thresholds and the smoke-test tolerance from the evaluate step's outputs.

    `evaluation` is its evaluation.json (the model's held-out metrics, their 95 %
    bootstrap `intervals`, the `naive` predictor's: the training mean), `predictions`
    its predictions.csv; nothing is scored or recomputed here but the smoke test's MAPE.
    max_mse: a fifth above the top of the model's 95 % MSE interval, and below the
    naive predictor's MSE (a model no better than the mean must fail). min_r2: the
    bottom of the R² interval less 0.02, never below 0. max_mape_pct: see smoke_mape_limit.
    """
    metrics, intervals = metrics_from_evaluation(evaluation), evaluation["intervals"]
    y, pred = predictions[Y].to_numpy(float), predictions[PREDICTION].to_numpy(float)
    naive_pred = np.full(len(y), evaluation["naive"]["constant"])
    baseline = {
        "mse": metrics["mse"],
        "r2": metrics["r2"],
        "mape_pct": mape_pct(y, pred),
        "mse_interval": tuple(intervals["mse"]),
        "r2_interval": tuple(intervals["r2"]),
    }
    naive = {
        "mse": evaluation["naive"]["mse"],
        "r2": evaluation["naive"]["r2"],
        "mape_pct": mape_pct(y, naive_pred),
    }
    warnings = []
    max_mse = _round(baseline["mse_interval"][1] * 1.2, down=False)
    if max_mse >= naive["mse"]:
        max_mse = _round((baseline["mse"] + naive["mse"]) / 2, down=False)
        warnings.append(
            "the baseline is barely better than predicting the mean: max_mse is set halfway "
            "between them; look at the features before trusting the gate"
        )
    min_r2 = max(0.0, _round(baseline["r2_interval"][0] - 0.02, down=True))
    test_rows = int(evaluation["rows"])
    small = small_test_warning(test_rows, {"mse": baseline["mse_interval"]})
    if small:
        warnings.append(small)
    rows, max_mape_pct, weak = smoke_rows_and_limit(y, pred, smoke_rows, naive["mape_pct"])
    if weak:
        warnings.append(weak)
    return Calibration(
        test_rows=test_rows,
        baseline=baseline,
        naive=naive,
        max_mse=max_mse,
        min_r2=min_r2,
        max_mape_pct=max_mape_pct,
        smoke_rows=rows,
        warnings=tuple(warnings),
    )


def monotonic_candidates(
    df: pd.DataFrame, features: list[str], target: str | pd.Series, min_abs: float = 0.3
) -> dict[str, float]:
    """Features whose rank correlation with the target is at least `min_abs` in size,
    strongest first: candidates for behaviour.monotonic_*, for a person to confirm.
    Numeric features only (a category has no order); `target` may be a Series (0/1 labels)."""
    numeric = [f for f in features if not is_text(df[f])]
    y = df[target] if isinstance(target, str) else target
    rho = df[numeric].corrwith(y, method="spearman").dropna()
    strong = rho[rho.abs() >= min_abs]
    return {
        str(k): round(float(v), 2) for k, v in strong.sort_values(key=abs, ascending=False).items()
    }


def project_name(text: str) -> str:
    """A model package group name from free text: lower case, letters, digits, dashes."""
    from mlops.core.names import longest_group  # what every derived AWS name has room for

    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[: longest_group()].strip("-")
    if not name:
        raise UsageError(f"cannot make a project name from {text!r}: pass --name")
    return name
