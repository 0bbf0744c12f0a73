"""`mlops init` proposes the feature store's record id and event time from a fork's data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops.cli.init import provisional_sections, render_config
from mlops.core import profiling
from mlops.core.model_family import model_family


def records(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Two versions of each of rows/2 ids: repeated ids, ISO times, two features, a target."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(rows // 2), 2)
    times = np.tile(["2026-01-01T00:00:00Z", "2026-02-01T12:30:00Z"], rows // 2)
    x = rng.uniform(0, 10, rows)
    return pd.DataFrame(
        {
            "account_id": ids,
            "updated": times,
            "x": x,
            "level": rng.integers(1, 4, rows),
            "y": 2 * x + rng.normal(0, 0.1, rows),
        }
    )


def config_text(prof: profiling.Profile) -> dict:
    sections = provisional_sections(prof.task)
    text = render_config("fork", "data.csv", prof, model_family(None), sections, "suite.json", {})
    return yaml.safe_load(text)


def test_id_and_event_time_are_proposed_and_never_features():
    prof = profiling.profile(records(), "y")
    assert (prof.record_id, prof.event_time) == ("account_id", "updated")
    assert prof.feature_names == ["x", "level"]
    # Repeated ids (versions) are not ID-like by counting: the name and the times tell.
    assert prof.left_out["account_id"] == profiling.RECORD_ID_WHY
    assert prof.left_out["updated"] == profiling.EVENT_TIME_WHY
    assert config_text(prof)["feature_store"] == {
        "record_id": "account_id",
        "event_time": "updated",
    }


def test_an_unnamed_distinct_column_is_the_record_id():
    df = records().drop_duplicates("account_id").drop(columns="account_id")
    prof = profiling.profile(df.assign(n=np.arange(len(df)) * 7), "y")
    assert prof.record_id == "n" and "ID-like" in prof.left_out["n"]


@pytest.mark.parametrize(
    ("drop", "found"),
    [("updated", "record id account_id"), (["account_id", "updated"], "neither")],
)
def test_without_both_columns_the_section_is_a_commented_example(drop, found):
    prof = profiling.profile(records().drop(columns=drop), "y")
    sections = provisional_sections(prof.task)
    text = render_config("fork", "data.csv", prof, model_family(None), sections, "suite.json", {})
    assert "feature_store" not in yaml.safe_load(text)
    assert f"found in this data: {found}" in text and "# feature_store:" in text


def test_kept_columns_stay_features_and_dates_that_are_numbers_are_not_times():
    prof = profiling.profile(records(), "y", keep=["account_id", "updated"])
    assert prof.record_id is None and prof.event_time is None
    assert "account_id" in prof.feature_names
    years = records().assign(updated=2020)  # a number, not a timestamp
    assert profiling.profile(years, "y").event_time is None
