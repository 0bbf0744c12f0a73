"""The feature store, backend-agnostic: one feature group per project, its checks, its rule.

A feature group holds versions of records: a record id, an event time (when the values
were true) and the config's columns (features and target). Ingesting a record again
with a later event time adds a version; nothing is overwritten. A snapshot as of time T
holds, for each record id, the latest version whose event time is at or before T (the
point-in-time rule: training never sees values from its future). The online store holds
the latest version of each record, for lookups by id.

`mlops.local.feature_store` implements `FeatureStore` with Parquet + DuckDB + SQLite,
`mlops.sagemaker.feature_store` with SageMaker Feature Store + Athena. The checks here
run before either writes anything, so bad input leaves the store as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

import pandas as pd

from mlops.core.config import Config
from mlops.core.errors import UsageError

FeatureType = Literal["Integral", "Fractional", "String"]
Progress = Callable[[str], None]

# Flat lineage keys of a snapshot where values must be strings (SageMaker model package
# metadata): `feature_snapshot.as_of`, `.rows`, `.sha256`, `.query_sha256`, `.query_uri`.
SNAPSHOT_PREFIX = "feature_snapshot."
SETUP_HINT = (
    "set feature_store.record_id and feature_store.event_time in the config "
    "(the columns naming a record and the time its values were true)"
)


@dataclass(frozen=True)
class FeatureDefinition:
    """One column of the feature group, typed as SageMaker Feature Store types them."""

    name: str
    type: FeatureType


@dataclass(frozen=True)
class FeatureGroupSpec:
    """The project's feature group, derived from the config (and the suite's types)."""

    name: str
    record_id: str
    event_time: str
    value_columns: tuple[str, ...]  # the config's columns: features, then target
    definitions: tuple[FeatureDefinition, ...]  # record id, event time, value columns
    future_tolerance: timedelta = timedelta(minutes=5)

    @property
    def columns(self) -> list[str]:
        return [self.record_id, self.event_time, *self.value_columns]

    def type_of(self, column: str) -> FeatureType:
        return next(d.type for d in self.definitions if d.name == column)


@dataclass(frozen=True)
class IngestResult:
    records: int
    new_ids: int  # ids the store had not seen before
    versions_added: int  # records that are a later version of an id already stored


@dataclass(frozen=True)
class Snapshot:
    """A point-in-time table written to a file, and what it takes to reproduce it."""

    as_of: datetime
    query: str
    rows: int
    sha256: str
    path: Path
    backend: str
    feature_group: str
    extra: dict = field(default_factory=dict)

    def lineage(self) -> dict:
        """The fields a registered version records about the snapshot it learned from."""
        out = asdict(self)
        out["as_of"] = format_time(self.as_of)
        out["path"] = str(self.path)
        return out


def query_sha256(query: str) -> str:
    """The content hash of a snapshot's query (what flat lineage records beside its URI)."""
    return hashlib.sha256(query.encode()).hexdigest()


def fold_snapshot(flat: dict) -> dict:
    """Flat `feature_snapshot.*` lineage entries folded into one `feature_snapshot` dict, as
    the local registry records it; dropped when the run used no snapshot (empty as_of)."""
    out = {k: v for k, v in flat.items() if not k.startswith(SNAPSHOT_PREFIX)}
    snap = {
        k.removeprefix(SNAPSHOT_PREFIX): v for k, v in flat.items() if k.startswith(SNAPSHOT_PREFIX)
    }
    if snap.get("as_of"):
        if str(snap.get("rows", "")).isdigit():
            snap["rows"] = int(snap["rows"])
        out["feature_snapshot"] = snap
    return out


class FeatureStore(Protocol):
    """A feature group on some backend: ingest versions, snapshot as of a time, get by id."""

    spec: FeatureGroupSpec
    backend: str

    def ingest(self, records: pd.DataFrame, progress: Progress = print) -> IngestResult:
        """Write checked records (see `check_records`); all or nothing where the backend can."""
        ...

    def snapshot(self, as_of: datetime, out: Path, training: bool = False) -> Snapshot:
        """Write the point-in-time table to `out` (.csv or .parquet). `training`: only the
        config's columns, in order, as the pipeline reads them. UsageError if as_of is before
        every record."""
        ...

    def get(self, record_id: str) -> dict | None:
        """The latest version of a record from the online store, or None."""
        ...


# --- the feature group, from the config -------------------------------------------------


def types_from_suite(suite: dict | None) -> dict[str, FeatureType]:
    """Column types from the suite's `expect_column_values_to_be_in_type_list|of_type`.

    Only integer types: Integral; any float type: Fractional; anything else: String.
    """
    types: dict[str, FeatureType] = {}
    for exp in (suite or {}).get("expectations", []):
        kwargs = exp.get("kwargs", {})
        if exp.get("type") == "expect_column_values_to_be_in_type_list":
            listed = [str(t).lower() for t in kwargs.get("type_list") or []]
        elif exp.get("type") == "expect_column_values_to_be_of_type":
            listed = [str(kwargs.get("type_", kwargs.get("type", ""))).lower()]
        else:
            continue
        if "column" in kwargs and listed:
            types[kwargs["column"]] = _feature_type(listed)
    return types


def _feature_type(dtypes: list[str]) -> FeatureType:
    if all("int" in t for t in dtypes):
        return "Integral"
    if all("int" in t or "float" in t or "double" in t for t in dtypes):
        return "Fractional"
    return "String"


def feature_group_spec(cfg: Config, suite: dict | None = None) -> FeatureGroupSpec:
    """The project's feature group; UsageError naming the config keys when it is not set up.

    Value columns the suite does not type are Fractional (the models here are numeric).
    """
    fs = cfg.feature_store
    if not fs.record_id or not fs.event_time:
        raise UsageError(f"no feature store configured: {SETUP_HINT}")
    if fs.record_id == fs.event_time:
        raise UsageError("feature_store.record_id and feature_store.event_time must differ")
    for key, column in (("record_id", fs.record_id), ("event_time", fs.event_time)):
        if column in cfg.columns:
            raise UsageError(
                f"feature_store.{key} {column!r} is also a feature or the target: "
                "it must be a column of its own"
            )
    types = types_from_suite(suite)
    definitions = (
        FeatureDefinition(fs.record_id, "String"),
        FeatureDefinition(fs.event_time, "String"),  # ISO-8601, as SageMaker accepts it
        *(FeatureDefinition(c, types.get(c, "Fractional")) for c in cfg.columns),
    )
    return FeatureGroupSpec(
        name=fs.feature_group or cfg.model_package_group,
        record_id=fs.record_id,
        event_time=fs.event_time,
        value_columns=tuple(cfg.columns),
        definitions=definitions,
        future_tolerance=timedelta(seconds=fs.future_tolerance_seconds),
    )


# --- times ----------------------------------------------------------------------------


def format_time(t: datetime) -> str:
    """UTC, ISO-8601 with a Z: the form SageMaker Feature Store accepts as an event time.

    Naive times are UTC already (the stores keep them so)."""
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


def parse_time(text: str, what: str = "time") -> datetime:
    """An ISO-8601 time (a date alone is its midnight); naive times are UTC."""
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError):
        ts = pd.NaT
    if ts is pd.NaT:
        raise UsageError(f"{what} {text!r} is not an ISO-8601 time (e.g. 2026-11-30T12:00:00Z)")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def resolve_as_of(text: str | None, now: datetime) -> datetime:
    """`--as-of`: a time, or now when not given."""
    return parse_time(text, "--as-of") if text else now


# --- input checks ---------------------------------------------------------------------


def _show(values, limit: int = 3) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:limit])
    return shown + (f" (+{len(values) - limit} more)" if len(values) > limit else "")


def check_records(df: pd.DataFrame, spec: FeatureGroupSpec, now: datetime) -> pd.DataFrame:
    """Records ready to write: id as text, event time as naive UTC; UsageError on bad input.

    Refused: a missing id, event-time or value column; an empty id; an event time that is
    empty, unparsable, or later than now + the tolerance; the same (id, event time) twice.
    """
    missing = [c for c in spec.columns if c not in df.columns]
    if missing:
        raise UsageError(
            f"records lack column(s) {', '.join(missing)} "
            f"(the feature group needs {', '.join(spec.columns)})"
        )
    if df.empty:
        raise UsageError("no records to ingest")
    out = df[spec.columns].copy()
    ids = out[spec.record_id]
    empty = ids.isna() | (ids.astype(str).str.strip() == "")
    if empty.any():
        lines = out.index[empty] + 2  # line numbers in a CSV file: the header is line 1
        raise UsageError(f"empty record id ({spec.record_id}) on line(s) {_show(lines)}")
    out[spec.record_id] = id_text(ids)
    raw_times = out[spec.event_time]
    times = pd.to_datetime(raw_times.astype(str), utc=True, errors="coerce", format="ISO8601")
    bad = times.isna()
    if bad.any():
        raise UsageError(
            f"unparsable or empty event time ({spec.event_time}) in "
            f"{int(bad.sum())} record(s), e.g. {_show(raw_times[bad].astype(str))}; "
            "expected ISO-8601 such as 2026-11-30T12:00:00Z"
        )
    limit = pd.Timestamp(now).tz_convert("UTC") + spec.future_tolerance
    future = times > limit
    if future.any():
        raise UsageError(
            f"{int(future.sum())} event time(s) in the future beyond "
            f"{spec.future_tolerance.total_seconds():g}s of now, "
            f"e.g. {_show(raw_times[future].astype(str))} (now is {format_time(now)})"
        )
    out[spec.event_time] = times.dt.tz_localize(None)
    dup = out.duplicated([spec.record_id, spec.event_time], keep=False)
    if dup.any():
        pairs = out.loc[dup, [spec.record_id, spec.event_time]].drop_duplicates()
        first = pairs.iloc[0]
        raise UsageError(
            f"{len(pairs)} duplicate (record id, event time) pair(s) in the input, e.g. "
            f"({first[spec.record_id]!r}, {format_time(first[spec.event_time])}): "
            "one version per record and time"
        )
    return out.reset_index(drop=True)


def id_text(ids: pd.Series) -> pd.Series:
    """Ids are text in the store; 7 and 7.0 (a pandas float column) both mean '7'."""
    if pd.api.types.is_float_dtype(ids) and (ids % 1 == 0).all():
        ids = ids.astype("int64")
    return ids.astype(str).str.strip()


def check_as_of(as_of: datetime, earliest: datetime | None, group: str) -> None:
    """A snapshot before every record would be empty: refuse it, saying when data starts."""
    if earliest is None:
        raise UsageError(f"feature group {group!r} holds no records yet: ingest some first")
    if as_of < earliest:
        raise UsageError(
            f"--as-of {format_time(as_of)} is before the first record of feature group "
            f"{group!r} ({format_time(earliest)}): the snapshot would be empty"
        )
