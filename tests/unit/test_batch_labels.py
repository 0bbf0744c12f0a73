"""Batch scoring of a classifier answers its label beside the probability, as the endpoint
does with `labels=true` (the output had only the probability: a reader had to know the
threshold and which label is positive)."""

from types import SimpleNamespace

import numpy as np
import pandas as pd

from mlops.local.batch import ChunkScorer


def scorer(model) -> ChunkScorer:
    """A ChunkScorer over a stand-in handler that answers the frame's `p` column."""
    out = ChunkScorer.__new__(ChunkScorer)

    def score_frame(_model, frame):
        p = pd.to_numeric(frame["p"], errors="coerce").to_numpy()
        return p, np.where(np.isnan(p), "p is not a number", "")

    out.handlers, out.model = SimpleNamespace(score_frame=score_frame), model
    out.features, out.id_column = ["p"], "id"
    return out


def test_a_classifiers_batch_output_has_the_label_at_its_threshold():
    model = SimpleNamespace(class_labels=["stayed", "left"], threshold=0.3)
    frame = pd.DataFrame({"p": ["0.1", "0.3", "x", "0.9"], "id": ["a", "b", "c", "d"]})
    chunk = scorer(model).score(frame, first_row=0)
    assert chunk.scored.to_dict("list") == {
        "id": ["a", "b", "d"],
        "prediction": [0.1, 0.3, 0.9],
        "label": ["stayed", "left", "left"],
    }
    assert chunk.rejected["row"].tolist() == [3]


def test_a_regressions_batch_output_has_no_label():
    model = SimpleNamespace(class_labels=None, threshold=0.5)
    chunk = scorer(model).score(pd.DataFrame({"p": ["1.5"], "id": ["a"]}), first_row=0)
    assert list(chunk.scored.columns) == ["id", "prediction"]


def test_an_input_that_is_not_utf8_is_named_in_one_line(tmp_path):
    """Found by the CLI harness: a lone lead byte gave "cannot read ... 'utf-8' codec can't
    decode byte 0xc2 in position 0: unexpected end of data" (Python's words, not ours)."""
    import pytest

    from mlops.core.errors import UsageError
    from mlops.local.batch import read_chunks, read_columns

    cut = tmp_path / "cut.csv"
    cut.write_bytes(b"\xc2")
    with pytest.raises(UsageError, match=r"^cut.csv is not UTF-8 text \(byte 0xc2 at offset 0\)"):
        read_columns(cut, "csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"a,b\n1,2\n" * 3 + b"3,caf\xe9\n")
    with pytest.raises(
        UsageError, match=r"^latin.csv is not UTF-8 text \(byte 0xe9 at offset 29\)"
    ):
        list(read_chunks(latin, "csv", ["a", "b"], 2))
