"""The feature group from config, and the input checks every backend relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from mlops.core.config import load_config
from mlops.core.errors import UsageError
from mlops.core.feature_store import (
    check_as_of,
    check_records,
    feature_group_spec,
    parse_time,
    types_from_suite,
)

from .conftest import EVENT_TIME, RECORD_ID, SUITE, TARGET, records

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def spec(fs_config):
    return feature_group_spec(load_config(fs_config), SUITE)


def test_definitions_follow_config_and_suite_types(spec):
    assert spec.columns == [RECORD_ID, EVENT_TIME, "AGE", "SIZE", TARGET]
    types = {d.name: d.type for d in spec.definitions}
    # AGE is int64 only, SIZE int or float, SCORE untyped by the suite (numeric default).
    assert types == {
        RECORD_ID: "String",
        EVENT_TIME: "String",
        "AGE": "Integral",
        "SIZE": "Fractional",
        TARGET: "Fractional",
    }
    assert spec.name == "fs-fixture"


def test_types_from_suite_reads_string_columns():
    suite = {
        "expectations": [
            {
                "type": "expect_column_values_to_be_in_type_list",
                "kwargs": {"column": "C", "type_list": ["str", "object"]},
            }
        ]
    }
    assert types_from_suite(suite) == {"C": "String"}


def test_unset_feature_store_names_the_keys(fs_config, tmp_path):
    import yaml

    raw = yaml.safe_load(fs_config.read_text())
    del raw["feature_store"]
    fs_config.write_text(yaml.safe_dump(raw))
    with pytest.raises(UsageError, match=r"feature_store\.record_id and feature_store\.event_time"):
        feature_group_spec(load_config(fs_config))


def test_id_column_that_is_a_feature_is_refused(fs_config):
    import yaml

    raw = yaml.safe_load(fs_config.read_text())
    raw["feature_store"]["record_id"] = "AGE"
    fs_config.write_text(yaml.safe_dump(raw))
    with pytest.raises(UsageError, match="record_id 'AGE' is also a feature"):
        feature_group_spec(load_config(fs_config))


def test_clean_records_normalise_ids_and_times(spec):
    df = records(range(3), "2026-01-01T01:00:00+01:00")
    out = check_records(df, spec, NOW)
    assert out[RECORD_ID].tolist() == ["c0", "c1", "c2"]
    assert out[EVENT_TIME].iloc[0] == pd.Timestamp("2026-01-01 00:00:00")  # naive UTC


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda df: df.drop(columns=[RECORD_ID]), "lack column.*CUSTOMER"),
        (lambda df: df.drop(columns=[EVENT_TIME]), "lack column.*UPDATED_AT"),
        (
            lambda df: df.assign(UPDATED_AT=["2026-01-01", "yesterday", "2026-01-02"]),
            "unparsable or empty event time.*'yesterday'",
        ),
        (
            lambda df: df.assign(UPDATED_AT=["2026-01-01", None, "2026-01-02"]),
            "unparsable or empty event time",
        ),
        (lambda df: df.assign(CUSTOMER=["a", "a", "b"]), "duplicate .* pair.*'a'"),
        (
            lambda df: df.assign(CUSTOMER=["a", "", "b"]),
            r"empty record id \(CUSTOMER\) on line\(s\) 3$",
        ),
        (lambda df: df.iloc[:0], "no records"),
    ],
)
def test_bad_records_are_refused_in_one_line(spec, mutate, message):
    df = mutate(records(range(3), "2026-01-01"))
    with pytest.raises(UsageError, match=message) as info:
        check_records(df, spec, NOW)
    assert "\n" not in str(info.value)


def test_future_event_times_beyond_tolerance(spec):
    just_inside = NOW + spec.future_tolerance - timedelta(seconds=1)
    check_records(records(range(2), just_inside.isoformat()), spec, NOW)
    beyond = NOW + spec.future_tolerance + timedelta(seconds=1)
    with pytest.raises(UsageError, match="in the future beyond 300s"):
        check_records(records(range(2), beyond.isoformat()), spec, NOW)


def test_as_of_checks():
    first = datetime(2026, 1, 1, tzinfo=UTC)
    check_as_of(first, first, "g")
    with pytest.raises(UsageError, match="before the first record"):
        check_as_of(first - timedelta(seconds=1), first, "g")
    with pytest.raises(UsageError, match="holds no records yet"):
        check_as_of(first, None, "g")
    assert parse_time("2026-01-01") == first
    with pytest.raises(UsageError, match="not an ISO-8601 time"):
        parse_time("soon", "--as-of")
