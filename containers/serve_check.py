"""Run inside an image's venv by `make fidelity`: endpoint_handler behind sagemaker-containers'
own Transformer and Worker, wired as the framework container's serving module wires a user
module, answering held-out rows 200 and bad requests 4xx.

The handler is imported as the container's server does before it starts (sagemaker-containers
`_server.start`): `_modules.import_module(SAGEMAKER_SUBMIT_DIRECTORY, SAGEMAKER_PROGRAM)`, which
copies the model's code/ to the code folder, generates a setup.py and runs `pip install .`,
here with the registered model's environment and the package index unreachable.

The request rows are the held-out split's (CSV with a header, raw values), sent as a client
sends them: the model's features (from its manifest) in order, no header, no target."""

import csv
import io
import json
import os
import sys
from pathlib import Path

from sagemaker_containers import _env, _modules
from sagemaker_containers.beta.framework import transformer, worker

ROWS = 5


def csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


def held_out_lines(folder: Path, features: list[str]) -> list[str]:
    with sorted(folder.glob("*.csv"))[0].open(newline="") as f:
        rows = [row for _, row in zip(range(ROWS), csv.DictReader(f), strict=False)]
    return [csv_line([row[name] for name in features]) for row in rows]


def bad_requests(features: list[str], text: list[str]) -> list[tuple[str, str, int]]:
    """(body, content type, expected status) that the handler must refuse."""
    bad = [("{", "application/json", 400), ("1,2", "application/x-npy", 415)]
    if len(features) > 1:  # one field short
        bad.append((",".join(["1"] * (len(features) - 1)), "text/csv", 400))
    if set(features) - set(text):  # a header row: a name is not a number
        bad.append((csv_line(features), "text/csv", 400))
    return bad


def main() -> int:
    manifest = json.loads(
        (Path(os.environ["SAGEMAKER_BASE_DIR"]) / "model" / "manifest.json").read_text()
    )
    features, text = manifest["features"], manifest.get("text_features", [])
    serving = _env.ServingEnv()
    endpoint_handler = _modules.import_module(serving.module_dir, serving.module_name)
    handler = transformer.Transformer(
        model_fn=endpoint_handler.model_fn, transform_fn=endpoint_handler.transform_fn
    )
    handler.initialize()  # model_fn on $SAGEMAKER_BASE_DIR/model
    app = worker.Worker(transform_fn=handler.transform, module_name=serving.module_name)
    client = app.test_client()
    rows = held_out_lines(Path(os.environ["HELD_OUT"]), features)
    failures = []
    good = client.post(
        "/invocations",
        data="\n".join(rows),
        content_type="text/csv",
        headers={"Accept": "application/json"},
    )
    if good.status_code != 200 or len(json.loads(good.data)["predictions"]) != len(rows):
        failures.append(f"good request: {good.status_code} {good.data[:200]!r}")
    bad = bad_requests(features, text)
    for body, content_type, status in bad:
        reply = client.post("/invocations", data=body, content_type=content_type)
        if reply.status_code != status:
            failures.append(f"{content_type} {body!r}: {reply.status_code}, expected {status}")
    for line in failures:
        print(f"serving: {line}", file=sys.stderr)
    if not failures:
        print(
            f"{manifest['family']:<8} serving     {os.environ.get('IMAGE', '')}: 200 for "
            f"{len(rows)} held-out rows, 4xx for {len(bad)} bad requests"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
