"""A CSV file as parts for sharded processing: every record once, byte for byte, a quoted
line break kept inside its record; too few rows for the parts are refused."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops.core.data_parts import csv_records, write_parts
from mlops.core.errors import UsageError


def test_parts_hold_every_record_once_with_the_header(tmp_path):
    source = tmp_path / "data.csv"
    source.write_bytes(b'a,b\n1,"two\nlines"\n2,"say ""hi"""\n3,\n4,x')  # no final newline
    assert len(list(csv_records(source))) == 5
    parts = write_parts(source, 2, tmp_path / "parts")
    assert [p.name for p in parts] == ["data-01.csv", "data-02.csv"]
    frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in parts]
    whole = pd.read_csv(source, dtype=str, keep_default_na=False)
    merged = pd.concat(frames).sort_values("a").reset_index(drop=True)
    pd.testing.assert_frame_equal(merged, whole)
    assert frames[0]["b"].tolist() == ["two\nlines", ""]


def test_fewer_rows_than_parts_are_refused(tmp_path):
    source = tmp_path / "data.csv"
    source.write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match="1 data row"):
        write_parts(source, 3, tmp_path / "parts")
