"""Run inside the XGBoost image's venv by `make fidelity`: endpoint_handler behind
sagemaker-containers' own Transformer and Worker, wired as the container's serving.py
wires a user module, answering a good request 200 and bad ones 4xx."""

import json
import os
import sys

import endpoint_handler
from sagemaker_containers.beta.framework import transformer, worker

BAD = [
    ("1,2,3", "text/csv", 400),  # too few features
    ("price,sqft", "text/csv", 400),  # a header row
    ("{", "application/json", 400),
    ("1,2", "application/x-npy", 415),
]


def main() -> int:
    handler = transformer.Transformer(
        model_fn=endpoint_handler.model_fn, transform_fn=endpoint_handler.transform_fn
    )
    handler.initialize()  # model_fn on $SAGEMAKER_BASE_DIR/model
    app = worker.Worker(transform_fn=handler.transform, module_name="endpoint_handler")
    client = app.test_client()
    with open(os.environ["HELD_OUT"]) as f:
        rows = [line.split(",", 1)[1] for line in f.read().splitlines()[:5]]
    failures = []
    good = client.post(
        "/invocations",
        data="\n".join(rows),
        content_type="text/csv",
        headers={"Accept": "application/json"},
    )
    if good.status_code != 200 or len(json.loads(good.data)["predictions"]) != len(rows):
        failures.append(f"good request: {good.status_code} {good.data[:200]!r}")
    for body, content_type, status in BAD:
        reply = client.post("/invocations", data=body, content_type=content_type)
        if reply.status_code != status:
            failures.append(f"{content_type} {body!r}: {reply.status_code}, expected {status}")
    for line in failures:
        print(f"serving: {line}", file=sys.stderr)
    print(
        f"serving    200 for {len(rows)} rows, 4xx for {len(BAD)} bad requests"
        if not failures
        else ""
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
