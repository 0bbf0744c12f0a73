"""inference.py's handler functions: CSV and JSON in, predictions out, bad input refused."""

import json
import tarfile

import inference
import numpy as np
import pytest
import train
from fixture_project.generate import COLUMNS, generate_buildings

FEATURES = COLUMNS[:-1]
PARAMS = {"objective": "reg:squarederror", "max_depth": 3, "eta": 0.3, "num_round": 30, "seed": 1}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small model trained by train.py's own functions, saved with its manifest."""
    df = generate_buildings(600, seed=5)
    X, y = df[FEATURES].to_numpy(float), df.ANNUAL_COST.to_numpy(float)
    booster = train.train_model(X[:400], y[:400], X[400:], y[400:], PARAMS, FEATURES)
    path = tmp_path_factory.mktemp("model")
    train.save_model(
        booster, path, {"feature_names": FEATURES, "target": "ANNUAL_COST", "params": PARAMS}
    )
    return path


@pytest.fixture(scope="module")
def model(model_dir):
    return inference.model_fn(str(model_dir))


@pytest.fixture(scope="module")
def rows():
    return generate_buildings(5, seed=9)[FEATURES].to_numpy(float)


def predict(body, content_type, model):
    return inference.predict_fn(inference.input_fn(body, content_type), model)


def csv_body(rows) -> bytes:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode()


def test_model_fn_loads_booster_and_feature_order(model):
    assert model.features == FEATURES
    assert model.booster.num_boosted_rounds() > 0


def test_model_fn_refuses_a_model_file_that_does_not_match_the_manifest(model_dir, tmp_path):
    for f in model_dir.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    model_file = tmp_path / "xgboost-model.json"
    model_file.write_text(model_file.read_text().replace('"num_trees"', '"num_trees" ', 1))
    with pytest.raises(inference.ModelIntegrityError, match="does not match the manifest"):
        inference.model_fn(str(tmp_path))


def test_csv_one_and_many_rows_match_the_booster(model, rows):
    expected = model.booster.inplace_predict(rows)
    assert np.array_equal(predict(csv_body(rows), "text/csv", model), expected)
    one = predict(csv_body(rows[:1]), "text/csv; charset=utf-8", model)
    assert one.shape == (1,) and one[0] == expected[0]
    # trailing newline, CRLF and blank lines are tolerated
    crlf = csv_body(rows).replace(b"\n", b"\r\n\r\n") + b"\r\n"
    assert np.array_equal(predict(crlf, "text/csv", model), expected)


def test_json_rows_objects_and_instances_agree_with_csv(model, rows):
    expected = predict(csv_body(rows), "text/csv", model)
    as_rows = json.dumps(rows.tolist())
    # objects may list their keys in any order
    as_objects = json.dumps(
        [dict(reversed(list(zip(FEATURES, r, strict=True)))) for r in rows.tolist()]
    )
    as_instances = json.dumps({"instances": rows.tolist()})
    for body in (as_rows, as_objects, as_instances):
        assert np.array_equal(predict(body, "application/json", model), expected)
    single_object = json.dumps(dict(zip(FEATURES, rows[0].tolist(), strict=True)))
    flat_row = json.dumps(rows[0].tolist())
    for body in (single_object, flat_row):
        assert np.array_equal(predict(body, "application/json", model), expected[:1])


def test_output_fn_json_by_default_csv_on_request():
    prediction = np.array([123.5, 456.25], dtype=np.float32)
    body, content_type = inference.output_fn(prediction, "application/json")
    assert content_type == "application/json"
    assert json.loads(body) == {"predictions": [123.5, 456.25]}
    assert inference.output_fn(prediction, None)[1] == "application/json"
    body, content_type = inference.output_fn(prediction, "text/csv")
    assert content_type == "text/csv"
    assert [float(x) for x in body.splitlines()] == [123.5, 456.25]


def test_raw_rows_of_the_source_csv_get_their_price(model):
    """Train/serve consistency: a row as written in the source CSV needs no preprocessing."""
    df = generate_buildings(300, seed=21)
    lines = df[FEATURES].to_csv(header=False, index=False).encode()
    predictions = predict(lines, "text/csv", model)
    mape = np.mean(np.abs(predictions - df.ANNUAL_COST) / df.ANNUAL_COST) * 100
    assert len(predictions) == 300
    assert mape < 10  # a 30-tree model on 400 rows; the pipeline's model does far better


NINE = ",".join(["1"] * 9)
HUGE = "1" + "0" * 400


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"", "text/csv", "empty"),
        (b"  \n \n", "text/csv", "empty"),
        (b"1,2,3", "text/csv", "needs 8 values"),
        (NINE.encode(), "text/csv", "needs 8 values"),
        (b"1,2,3,4,5,6,7,8\n1,2,3", "text/csv", "different numbers"),
        (b"1,2,3,4,5,6,7,x", "text/csv", "numbers only"),
        (b"1,2,3,4,5,6,7,", "text/csv", "numbers only"),
        (b"1,2,3,4,5,6,7,nan", "text/csv", "NaN or infinite"),
        (b"1,2,3,4,5,6,7,inf", "text/csv", "NaN or infinite"),
        (b"1,2,3,4,5,6,7,1e999", "text/csv", "NaN or infinite"),
        (",".join(FEATURES).encode() + b"\n1,2,3,4,5,6,7,8", "text/csv", "no header"),
        (b"\xff\xfe1,2", "text/csv", "UTF-8"),
        (b"[1, 2", "application/json", "malformed JSON"),
        (b"[" * 100_000, "application/json", "malformed JSON"),
        (b"[]", "application/json", "non-empty list"),
        (b'"text"', "application/json", "non-empty list"),
        (b"[[1,2,3,4,5,6,7,8],[1,2]]", "application/json", "different lengths"),
        (b"[[1,2,3,4,5,6,7,8], {}]", "application/json", "all be lists"),
        (b"[[1,2,3,4,5,6,7,true]]", "application/json", "non-numeric"),
        (b'[[1,2,3,4,5,6,7,"8"]]', "application/json", "non-numeric"),
        (b"[[1,2,3,4,5,6,7,NaN]]", "application/json", "NaN or infinite"),
        (b"[[1,2,3,4,5,6,7,Infinity]]", "application/json", "NaN or infinite"),
        (f"[[1,2,3,4,5,6,7,{HUGE}]]".encode(), "application/json", "too large"),
        (b'[{"INSTALL_YEAR": 2000}]', "application/json", "missing"),
        (b"[[1,2,3]]", "application/json", "needs 8 values"),
    ],
)
def test_bad_input_is_refused_with_a_reason(model, body, content_type, message):
    with pytest.raises(inference.InvalidInput, match=message):
        predict(body, content_type, model)


def test_unknown_objects_keys_are_named(model, rows):
    obj = dict(zip(FEATURES, rows[0].tolist(), strict=True)) | {"ANNUAL_COST": 1}
    with pytest.raises(inference.InvalidInput, match="unknown \\['ANNUAL_COST'\\]"):
        predict(json.dumps([obj]), "application/json", model)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-npy", "", "csv"])
def test_unknown_content_type_is_unsupported(model, content_type):
    with pytest.raises(inference.UnsupportedContentType, match="not supported"):
        inference.input_fn(b"1,2,3,4,5,6,7,8", content_type)


def test_evaluate_reads_the_archive_the_runner_packs(model_dir, tmp_path, rows):
    """The served artifact is the packed one: model_fn works on an extracted model.tar.gz."""
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for f in sorted(model_dir.iterdir()):
            tar.add(f, arcname=f.name)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    reloaded = inference.model_fn(str(tmp_path / "x"))
    assert np.array_equal(
        reloaded.booster.inplace_predict(rows),
        inference.model_fn(str(model_dir)).booster.inplace_predict(rows),
    )
