"""The baseline of bench/endpoint.py: a minimal Flask app serving the same inference.py.

Flask behind gunicorn is the stack SageMaker's own XGBoost serving container uses.
Run by gunicorn (`_flask_app:app`) with BENCH_MODEL_DIR (an extracted model.tar.gz,
whose code/ holds inference.py) in the environment; each worker loads the model at
import, as the project's server does in each of its workers.
"""

from __future__ import annotations

import os
import sys

from flask import Flask, Response, request

sys.path.insert(0, os.path.join(os.environ["BENCH_MODEL_DIR"], "code"))
import inference

model = inference.model_fn(os.environ["BENCH_MODEL_DIR"])
app = Flask(__name__)


@app.get("/ping")
def ping() -> Response:
    return Response("", status=200)


@app.post("/invocations")
def invocations() -> Response:
    try:
        data = inference.input_fn(request.get_data(), request.content_type or "")
        body, content_type = inference.output_fn(
            inference.predict_fn(data, model), request.headers.get("Accept")
        )
    except inference.UnsupportedContentType as exc:
        return Response(str(exc), status=415)
    except inference.InvalidInput as exc:
        return Response(str(exc), status=400)
    return Response(body, status=200, mimetype=content_type)
