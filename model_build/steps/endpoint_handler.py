"""endpoint_handler: inference.py as the SageMaker XGBoost container serves it, with
client errors answered 4xx.

The container (aws/sagemaker-xgboost-container, `serving.py`) wraps the module named by
SAGEMAKER_PROGRAM in sagemaker-containers' `Transformer`. With input_fn/predict_fn/
output_fn, only an `UnsupportedFormatError` from input_fn becomes a 4xx (415): any other
exception, our `InvalidInput` included, is a 500, which the endpoint's 5xx alarm counts
and which rolls a deployment back. A `transform_fn` may instead return a response with
any status, and the container refuses a transform_fn next to the other three: hence this
module, with model_fn and transform_fn only, both delegating to inference.py (which the
local server and the evaluate step keep using as they are).
"""

from __future__ import annotations

import json

import inference

BAD_REQUEST = 400
UNSUPPORTED_MEDIA_TYPE = 415


def model_fn(model_dir: str) -> inference.Model:
    return inference.model_fn(model_dir)


def error_reply(exc: Exception) -> tuple[int, str] | None:
    """(status, JSON body) for an error that is the client's; None for the server's own."""
    if isinstance(exc, inference.UnsupportedContentType):
        status = UNSUPPORTED_MEDIA_TYPE
    elif isinstance(exc, inference.InvalidInput):
        status = BAD_REQUEST
    else:
        return None
    return status, json.dumps({"error": type(exc).__name__, "message": str(exc)})


def transform_fn(model: inference.Model, request_body, content_type: str, accept: str):
    """Score a request: (body, content type) on success, a 4xx response on bad input."""
    try:
        rows = inference.input_fn(request_body, content_type)
        return inference.output_fn(inference.predict_fn(rows, model), accept)
    except (inference.InvalidInput, inference.UnsupportedContentType) as exc:
        status, body = error_reply(exc)
        return _response(body, status)


def _response(body: str, status: int):
    # The container's response class (a Flask Response); imported here because it exists
    # only inside the serving container, which is the only caller of transform_fn.
    from sagemaker_containers.beta.framework import worker

    return worker.Response(response=body, status=status, mimetype=inference.JSON)
