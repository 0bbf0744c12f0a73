"""`mlops batch predict` refuses a header that names a column twice, as `mlops data
validate` does: one line, exit 2, nothing written. Before, pandas read `a,a` as `a, a.1`
and the job scored with the first of the two columns without a word."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops.cli import run
from mlops.core.config import load_config
from mlops.local.registry import LocalRegistry


@pytest.mark.parametrize("kind", ["a feature", "another column", "parquet"])
def test_a_duplicated_header_is_refused_like_data_validate(
    registered_home, data_csv, tmp_path, capsys, kind
):
    home, _ = registered_home
    LocalRegistry(home, load_config().model_package_group).approve(1, "test")
    feature = load_config().data.features[1]
    frame = pd.read_csv(data_csv, nrows=20)
    if kind == "a feature":  # the copy holds other values: which would be scored?
        frame.insert(0, "copy", frame[feature] * 2)
        duplicated = feature
    else:
        frame.insert(0, "copy", "a note")
        frame.insert(1, "note", "another note")
        duplicated = "note"
    header = [duplicated if c == "copy" else c for c in frame.columns]
    work = tmp_path / "work"
    work.mkdir()
    data = work / ("in.parquet" if kind == "parquet" else "in.csv")
    if kind == "parquet":
        table = pa.Table.from_arrays([pa.array(frame[c]) for c in frame.columns], names=header)
        pq.write_table(table, data)
    else:
        frame.to_csv(data, index=False, header=header)
    out = work / "out.csv"

    code = run(["batch", "predict", "--data", str(data), "--out", str(out), "--version", "1"])

    err = capsys.readouterr().err
    assert code == 2
    assert err == f"error: {data}: duplicated header column(s) ['{duplicated}']\n"
    assert sorted(p.name for p in work.iterdir()) == [data.name]  # nothing written
    if kind != "parquet":  # the same refusal as data validate's
        assert run(["data", "validate", str(data)]) == 2
        assert f"duplicated header column(s) ['{duplicated}']" in capsys.readouterr().err
