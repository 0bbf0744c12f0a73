"""inference.py's handler functions: CSV and JSON in, predictions out, bad input refused.

The model is trained by train.main on the fixture project's rows and loaded from the
artifact it wrote, as an endpoint loads it.
"""

import json

import inference
import numpy as np
import pytest
from fixture_project.generate import FEATURES, TARGET, generate_buildings
from fixtures.models import Data, load, pack, train_model, unpack

from stepkit.artifact import IntegrityError


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    data = Data(generate_buildings(600, seed=5), FEATURES, TARGET)
    folder, _ = train_model(data, tmp_path_factory.mktemp("model"))
    return folder


@pytest.fixture(scope="module")
def model(model_dir):
    return load(model_dir)


@pytest.fixture(scope="module")
def rows():
    return generate_buildings(5, seed=9)[FEATURES]


def predict(body, content_type, model):
    return inference.predict_fn(inference.input_fn(body, content_type), model)


def csv_body(frame) -> bytes:
    return frame.to_csv(header=False, index=False).encode()


def test_model_fn_reads_the_contract_from_the_manifest(model):
    assert model.features == FEATURES and model.text_features == []
    assert model.task == "regression" and model.class_labels is None
    assert model.manifest["target"] == TARGET and model.manifest["family"] == "xgboost"


def test_model_fn_refuses_a_file_that_does_not_match_the_manifest(model_dir, tmp_path):
    import shutil

    copy = shutil.copytree(model_dir, tmp_path / "copy")
    state = copy / "features.json"
    state.write_text(state.read_text() + " ")
    with pytest.raises(IntegrityError, match=r"features\.json: sha256 .* does not match"):
        inference.model_fn(str(copy))


def test_csv_one_and_many_rows_agree_with_score_frame(model, rows):
    expected, reasons = inference.score_frame(model, rows)
    assert (reasons == "").all()
    assert np.array_equal(predict(csv_body(rows), "text/csv", model), expected)
    one = predict(csv_body(rows.head(1)), "text/csv; charset=utf-8", model)
    assert one.shape == (1,) and one[0] == expected[0]
    # trailing newline, CRLF and blank lines are tolerated
    crlf = csv_body(rows).replace(b"\n", b"\r\n\r\n") + b"\r\n"
    assert np.array_equal(predict(crlf, "text/csv", model), expected)


def test_json_rows_objects_and_instances_agree_with_csv(model, rows):
    expected = predict(csv_body(rows), "text/csv", model)
    values = rows.to_numpy().tolist()
    as_rows = json.dumps(values)
    # objects may list their keys in any order
    as_objects = json.dumps([dict(reversed(list(r.items()))) for r in rows.to_dict("records")])
    as_instances = json.dumps({"instances": values})
    for body in (as_rows, as_objects, as_instances):
        assert np.array_equal(predict(body, "application/json", model), expected)
    single_object = json.dumps(rows.to_dict("records")[0])
    flat_row = json.dumps(values[0])
    for body in (single_object, flat_row):
        assert np.array_equal(predict(body, "application/json", model), expected[:1])


def test_numbers_written_as_text_are_numbers(model, rows):
    """A raw value means the same however it arrives: "1994" in JSON is the number 1994."""
    as_text = json.dumps([[str(v) for v in row] for row in rows.to_numpy().tolist()])
    expected = predict(csv_body(rows), "text/csv", model)
    assert np.array_equal(predict(as_text, "application/json", model), expected)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"{row},", "text/csv"), (b"{row},nan", "text/csv"), (b"{row},NA", "text/csv"),
     (b"[[{row}, null]]", "application/json"), (b"[[{row}, NaN]]", "application/json")],
)  # fmt: skip
def test_a_missing_value_is_scored_as_the_empty_field(model, rows, body, content_type):
    first = rows.iloc[0].tolist()[:-1]
    row = ",".join(repr(float(v)) for v in first).encode()
    empty = predict(row + b",", "text/csv", model)
    got = predict(body.replace(b"{row}", row), content_type, model)
    assert np.isfinite(got[0]) and got[0] == empty[0]


def test_output_fn_json_by_default_csv_on_request():
    prediction = np.array([123.5, 456.25], dtype=np.float32)
    body, content_type = inference.output_fn(prediction, "application/json")
    assert content_type == "application/json"
    assert json.loads(body) == {"predictions": [123.5, 456.25]}
    assert inference.output_fn(prediction, None)[1] == "application/json"
    body, content_type = inference.output_fn(prediction, "text/csv")
    assert content_type == "text/csv"
    assert [float(x) for x in body.splitlines()] == [123.5, 456.25]


def test_raw_rows_of_the_source_csv_get_their_cost(model):
    """Train/serve consistency: a row as written in the source CSV needs no preprocessing."""
    df = generate_buildings(300, seed=21)
    predictions = predict(csv_body(df[FEATURES]), "text/csv", model)
    mape = np.mean(np.abs(predictions - df[TARGET]) / df[TARGET]) * 100
    assert len(predictions) == 300
    assert mape < 10  # a small model on 360 rows; the pipeline's model does far better


NINE = ",".join(["1"] * 9)
HUGE = "1" + "0" * 400


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"", "text/csv", "empty"),
        (b"  \n \n", "text/csv", "empty"),
        (b"1,2,3", "text/csv", "needs 8 values"),
        (NINE.encode(), "text/csv", "needs 8 values"),
        (b"1,2,3,4,5,6,7,8\n1,2,3", "text/csv", "row 2 has 3 values; each row needs 8"),
        (b"1,2,3,4,5,6,7,x", "text/csv", "HAS_SHADE is not a number: 'x'"),
        (b"1,2,3,4,5,6,7,8\n1,2,3,4,5,6,7,x", "text/csv", "row 2: HAS_SHADE is not a number"),
        (b"1,2,3,4,5,6,7,inf", "text/csv", "HAS_SHADE is not finite"),
        (b"1,2,3,4,5,6,7,1e999", "text/csv", "HAS_SHADE is not finite"),
        (",".join(FEATURES).encode() + b"\n1,2,3,4,5,6,7,8", "text/csv", "without a header"),
        (b"\xff\xfe1,2", "text/csv", "UTF-8"),
        (b"[1, 2", "application/json", "malformed JSON"),
        (b"[" * 100_000, "application/json", "malformed JSON"),
        (b"[]", "application/json", "non-empty list"),
        (b'"text"', "application/json", "non-empty list"),
        (b"[[1,2,3,4,5,6,7,8],[1,2]]", "application/json", "row 2 has 2 values"),
        (b"[[1,2,3,4,5,6,7,8], {}]", "application/json", "all be lists"),
        (b"[[1,2,3,4,5,6,7,true]]", "application/json", "HAS_SHADE: a number is needed"),
        (b'[[1,2,3,4,5,6,7,"x"]]', "application/json", "HAS_SHADE is not a number"),
        (b"[[1,2,3,4,5,6,7,[8]]]", "application/json", "numbers or text"),
        (b"[[1,2,3,4,5,6,7,Infinity]]", "application/json", "HAS_SHADE is not finite"),
        (f"[[1,2,3,4,5,6,7,{HUGE}]]".encode(), "application/json", "HAS_SHADE is not finite"),
        (b'[{"INSTALL_YEAR": 2000}]', "application/json", "missing"),
        (b"[[1,2,3]]", "application/json", "needs 8 values"),
    ],
)
def test_bad_input_is_refused_with_a_reason(model, body, content_type, message):
    with pytest.raises(inference.InvalidInput, match=message) as err:
        predict(body, content_type, model)
    assert "\n" not in str(err.value)


def test_unknown_objects_keys_are_named(model, rows):
    obj = rows.to_dict("records")[0] | {TARGET: 1}
    with pytest.raises(inference.InvalidInput, match=f"unknown \\['{TARGET}'\\]"):
        predict(json.dumps([obj]), "application/json", model)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-npy", "", "csv"])
def test_unknown_content_type_is_unsupported(model, content_type):
    with pytest.raises(inference.UnsupportedContentType, match="not supported"):
        inference.input_fn(b"1,2,3,4,5,6,7,8", content_type)


def test_score_frame_gives_a_reason_per_row_and_scores_the_rest(model, rows):
    bad = rows.astype(str)
    bad.iloc[1, 0] = "soon"
    bad.iloc[3, 2] = "inf"
    predictions, reasons = inference.score_frame(model, bad)
    expected, _ = inference.score_frame(model, rows)
    assert list(reasons) == ["", "INSTALL_YEAR is not a number: 'soon'", "", "OCCUPANTS is not "
                             "finite", ""]  # fmt: skip
    assert np.isnan(predictions[[1, 3]]).all()
    assert np.array_equal(predictions[[0, 2, 4]], expected[[0, 2, 4]])


def test_the_packed_archive_loads_and_predicts_alike(model_dir, model, tmp_path, rows):
    """The served artifact is the packed one: model_fn works on an unpacked model.tar.gz."""
    folder = unpack(pack(model_dir, tmp_path), tmp_path / "unpacked")
    reloaded = inference.model_fn(str(folder))
    assert np.array_equal(
        inference.score_frame(reloaded, rows)[0], inference.score_frame(model, rows)[0]
    )


@pytest.mark.parametrize(
    "body",
    [
        "1,2.5,3\n4,5,6e3\n-7,8,9\n10,11,12\n13,14,15\n",  # numbers: the block path
        "1,2,3\n4,5,6\n7,8\n10,11,12\n13,14,15\n",  # a short row in the second block
        "1,2,3\n4,5,6\n7,,9\n10,11,12\n13,x,15\n",  # empty field and text: per row
    ],
)
def test_a_body_is_read_alike_in_one_block_or_several(body, monkeypatch):
    """Large bodies are parsed a block of lines at a time, so the endpoint answers /ping
    between blocks: what comes out is what one parse of the whole gives."""
    whole = inference.input_fn(body.encode(), "text/csv")
    monkeypatch.setattr(inference, "NUMBER_BLOCK_LINES", 2)  # blocks of 2, 2 and 1 lines
    blocks = inference.input_fn(body.encode(), "text/csv")
    assert type(blocks) is type(whole)
    if isinstance(whole, np.ndarray):
        assert blocks.shape == (5, 3)
        np.testing.assert_array_equal(blocks, whole)
    else:
        assert blocks == whole and len(blocks) == 5


def test_a_quoted_field_across_lines_is_one_field_of_one_row():
    """A quoted text field may hold a line break (CSV allows it): it stays one field with
    its break, its row one row; blank lines are skipped on this path too."""
    body = b'1,"two\nlines",3\n\n  \n4,"x,y",6\n'
    assert inference.input_fn(body, "text/csv") == [["1", "two\nlines", "3"], ["4", "x,y", "6"]]
