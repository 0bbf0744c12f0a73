"""endpoint_handler.py: what the XGBoost serving container calls. Good requests score as
inference.py scores them; the client's mistakes are 4xx, never the 500 that the
endpoint's 5xx alarm counts. The container's real Transformer runs it in `make fidelity`."""

import json
import sys
import types

import endpoint_handler
import flask
import inference
import pytest
from fixture_project.generate import COLUMNS, TARGET, generate_buildings
from fixtures.artifacts import train_artifact

from stepkit.artifact import IntegrityError

FEATURES = COLUMNS[:-1]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small model artifact written by the train step, loaded through the handler."""
    folder = tmp_path_factory.mktemp("model")
    return endpoint_handler.model_fn(
        str(train_artifact(folder, generate_buildings(400, seed=5), TARGET))
    )


@pytest.fixture(scope="module")
def rows():
    return generate_buildings(5, seed=9)[FEATURES].to_numpy(float)


def csv_body(rows) -> bytes:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode()


@pytest.fixture
def container_worker(monkeypatch):
    """The container's `sagemaker_containers.beta.framework.worker`, whose Response is a
    Flask Response (sagemaker-containers `_worker.Response` subclasses it)."""
    names = (
        "sagemaker_containers",
        "sagemaker_containers.beta",
        "sagemaker_containers.beta.framework",
    )
    for name in names:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    worker = types.ModuleType("sagemaker_containers.beta.framework.worker")
    worker.Response = flask.Response
    monkeypatch.setitem(sys.modules, worker.__name__, worker)
    sys.modules["sagemaker_containers.beta.framework"].worker = worker
    return worker


def test_a_good_request_scores_like_inference_py(model, rows):
    body, content_type = endpoint_handler.transform_fn(
        model, csv_body(rows), "text/csv", "application/json"
    )
    expected = inference.predict_fn(inference.input_fn(csv_body(rows), "text/csv"), model)
    assert content_type == "application/json"
    assert json.loads(body)["predictions"] == pytest.approx([float(v) for v in expected])


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b"1,2,3", "text/csv", 400, "InvalidInput"),  # too few features
        (b"not,a,number", "text/csv", 400, "InvalidInput"),
        (b"2001,big,3,2.0,0.5,2,1,0", "text/csv", 400, "InvalidInput"),
        (b"{", "application/json", 400, "InvalidInput"),
        (b"", "text/csv", 400, "InvalidInput"),
        (b"1,2", "application/x-npy", 415, "UnsupportedContentType"),
    ],
)
def test_client_errors_are_4xx_with_the_reason(
    model, container_worker, body, content_type, status, error
):
    response = endpoint_handler.transform_fn(model, body, content_type, "application/json")
    assert isinstance(response, container_worker.Response)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert json.loads(response.get_data())["error"] == error


def test_the_servers_own_failures_stay_5xx(model):
    """Only the client's errors are mapped: anything else still reaches the container as an
    exception (a 500), so the alarm sees a broken model."""
    assert endpoint_handler.error_reply(RuntimeError("model file corrupt")) is None
    assert endpoint_handler.error_reply(IntegrityError("x")) is None


def test_the_container_accepts_the_module():
    """The XGBoost container refuses transform_fn next to input_fn, predict_fn or output_fn
    (serving.py, `_user_module_transformer`)."""
    handlers = {"input_fn", "predict_fn", "output_fn"}
    assert handlers.isdisjoint(vars(endpoint_handler))
    assert callable(endpoint_handler.model_fn) and callable(endpoint_handler.transform_fn)


@pytest.mark.parametrize("seed", range(5))
def test_a_request_of_numbers_is_typed_as_the_general_reader_types_it(seed):
    """predict_fn's fast path (a float matrix, stepkit.rows._float_frame) gives the values
    and reasons the column-by-column reader gives for the same rows."""
    import numpy as np

    from stepkit.rows import typed_frame

    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(40, 5))
    matrix[rng.random(matrix.shape) < 0.1] = np.nan
    matrix[rng.random(matrix.shape) < 0.05] = np.inf
    matrix[rng.random(matrix.shape) < 0.05] = -np.inf
    names = ["a", "b", "c", "d", "e"]
    fast, fast_reasons = typed_frame(matrix, names, [])
    general, reasons = typed_frame(matrix.astype(object).tolist(), names, [])
    np.testing.assert_array_equal(fast.to_numpy(), general.to_numpy(dtype=float))
    assert fast_reasons.tolist() == reasons.tolist()
    assert any(r.endswith("is not finite") for r in reasons)
