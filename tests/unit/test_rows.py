"""stepkit.rows, the one reader of raw feature values: numbers with NaN for missing,
text as category keys, and one reason per row that cannot be scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepkit.rows import RowError, as_category, category_key, checked_frame, typed_frame

COLUMNS = ["size", "colour"]


@pytest.mark.parametrize(
    ("value", "key"),
    [(1, "1"), (1.0, "1"), ("1", "1"), (" 1.0 ", "1"), ("2.5", "2.5"), ("basic", "basic"),
     (" basic ", "basic"), ("", None), ("  ", None), (None, None), (float("nan"), None),
     ("nan", None), ("inf", None), (True, "true"), (np.int64(3), "3"), ([1], None)],
)  # fmt: skip
def test_a_category_is_known_by_the_same_text_in_training_and_serving(value, key):
    assert category_key(value) == key


@pytest.mark.parametrize("missing", ["", " ", "nan", "NaN", "NA", "n/a", "null", "None", None])
def test_every_spelling_of_missing_is_a_missing_number(missing):
    frame, reasons = typed_frame([[missing, "red"]], COLUMNS, ["colour"])
    assert np.isnan(frame["size"].iloc[0]) and reasons.tolist() == [""]


def test_numbers_are_floats_and_text_is_category_keys_whatever_the_input():
    as_text = pd.DataFrame(
        {"size": ["3", " 4.5 ", "", "1e3"], "colour": ["red", "1.0", "", " blue"]}
    )
    as_records = [[3, "red"], [4.5, 1], [None, None], [1000.0, "blue"]]
    for rows in (as_text, as_records):
        frame, reasons = typed_frame(rows, COLUMNS, ["colour"])
        assert frame["size"].dtype == np.float64
        np.testing.assert_array_equal(frame["size"].to_numpy(), [3.0, 4.5, np.nan, 1000.0])
        assert frame["colour"].tolist() == ["red", "1", None, "blue"]
        assert (reasons == "").all()
    numeric = np.array([[1.0, 2.0], [np.nan, 3.0]])
    frame, _ = typed_frame(numeric, ["a", "b"], [])
    np.testing.assert_array_equal(frame.to_numpy(), numeric)


@pytest.mark.parametrize(
    ("value", "reason"),
    [("big", "size is not a number: 'big'"), (True, "size: a number is needed, not true/false"),
     ("inf", "size is not finite"), (float("-inf"), "size is not finite"),
     (10**400, "size is not finite"), ([1], "size is not a number: '[1]'")],
)  # fmt: skip
def test_a_value_that_is_no_number_gives_its_row_a_reason(value, reason):
    frame, reasons = typed_frame([[1.0, "red"], [value, "red"]], COLUMNS, ["colour"])
    assert reasons.tolist() == ["", reason]
    assert np.isnan(frame["size"].iloc[1]) and frame["size"].iloc[0] == 1.0


def test_the_first_reason_of_a_row_is_kept():
    rows = pd.DataFrame({"a": ["x", "1"], "b": ["y", "z"]})
    _, reasons = typed_frame(rows, ["a", "b"], [])
    assert reasons.tolist() == ["a is not a number: 'x'", "b is not a number: 'z'"]


def test_checked_frame_raises_one_line_naming_the_first_bad_row():
    with pytest.raises(RowError, match=r"^row 3: size is not a number: 'big'$") as err:
        checked_frame([[1, "a"], [2, "b"], ["big", "c"], ["huge", "d"]], COLUMNS, ["colour"])
    assert err.value.reasons.tolist() == ["", "", "size is not a number: 'big'",
                                          "size is not a number: 'huge'"]  # fmt: skip
    with pytest.raises(RowError, match=r"^size is not finite$"):  # one row: no row number
        checked_frame([["inf", "a"]], COLUMNS, ["colour"])


def test_a_boolean_column_is_no_number():
    _, reasons = typed_frame(pd.DataFrame({"size": [True, False], "colour": ["a", "b"]}),
                             COLUMNS, ["colour"])  # fmt: skip
    assert set(reasons) == {"size: a number is needed, not true/false"}


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", " ", "nan", "NA", "null", "None", "inf", "-inf", "1e3", " 12 ", "1_000",
                     "0x10", "abc", "Lille", "1.0", "yes", "true"]),
    st.text(max_size=6),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(VALUES, min_size=3, max_size=3), min_size=1, max_size=8))
def test_a_requests_few_records_are_typed_as_a_files_rows_are(records):
    """An endpoint's few records take the value-by-value path, a file's frame the vectorized
    one: the same values and the same reasons, whatever the values."""
    columns, text = ["a", "b", "c"], ["c"]
    few, few_reasons = typed_frame(records, columns, text)
    frame = pd.DataFrame(records, columns=columns, dtype=object)
    many, many_reasons = typed_frame(frame, columns, text)
    assert few_reasons.tolist() == many_reasons.tolist()
    for name in ("a", "b"):
        np.testing.assert_array_equal(few[name].to_numpy(), many[name].to_numpy())
    assert few["c"].tolist() == many["c"].tolist()


@given(st.lists(st.one_of(st.none(), st.sampled_from(["x", "y", "z", "w"])), max_size=20))
def test_as_category_is_pandas_categorical_with_the_levels(keys):
    levels = ["x", "y", "z"]
    expected = pd.Categorical(pd.Series(keys, dtype=object), categories=levels)
    got = as_category(pd.Series(keys, dtype=object), levels)
    assert list(got.categories) == levels
    np.testing.assert_array_equal(got.codes, expected.codes)
