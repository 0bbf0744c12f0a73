"""Train/serve consistency: the reference data's raw held-out rows through a real endpoint.

Trains with the default config on ../shared/data/house_pricing.csv through the
local pipeline (in a throwaway $MLOPS_HOME), serves the registered model with the
project's server (the serving code its artifact carries), and sends the held-out rows
exactly as the source file wrote them (the run's raw held-out split, no preprocessing)
through a sagemaker-runtime client, as CSV and as JSON objects. Prints the MAPE against
the true prices (target <= 5%) and checks that every answer is the evaluate step's
prediction for that row, so the endpoint's MSE is the one the evaluate step computed.
Skips cleanly when the reference file is absent (a fork has no ../shared).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from _common import REFERENCE_DATA

TARGET_MAPE = 5.0
BATCH = 50


def raw_rows_with_targets(path: Path, target: str) -> tuple[str, list[str]]:
    """Header and the data lines with a positive target (the data gate refuses the rest)."""
    header, *lines = path.read_text().splitlines()
    column = header.split(",").index(target)
    return header, [line for line in lines if float(line.split(",")[column]) > 0]


def main() -> int:
    if not REFERENCE_DATA.is_file():
        print(f"skipped: reference data not found at {REFERENCE_DATA}")
        return 0
    import numpy as np

    from mlops.core.config import load_config
    from mlops.core.run_layout import local_held_out, predictions_file, read_held_out
    from mlops.core.smoke import runtime_client, smoke_rows
    from mlops.local.artifacts import unpack_version
    from mlops.local.endpoint_app import ServerSettings
    from mlops.local.runner import run_pipeline
    from mlops.local.server_process import spawn_server, stop_server
    from stepkit.splits import PREDICTION, read_predictions

    cfg = load_config()
    target, features = cfg.data.target, cfg.data.features
    header, lines = raw_rows_with_targets(REFERENCE_DATA, target)
    with tempfile.TemporaryDirectory(prefix="bench-consistency-") as tmp:
        data, home = Path(tmp) / REFERENCE_DATA.name, Path(tmp) / "home"
        data.write_text("\n".join([header, *lines]) + "\n")
        print(f"training on {len(lines)} reference rows (rows with {target} <= 0 dropped) ...")
        result = run_pipeline(cfg, data, home, progress=lambda _: None)
        version = result.version
        held_out = read_held_out(local_held_out(version, home))
        raw = smoke_rows(held_out, features, target, "held-out rows")
        prices = np.array(raw.targets, dtype=float)
        evaluated = read_predictions(Path(predictions_file(version.evaluation_uri)))[PREDICTION]
        assert len(evaluated) == len(raw.lines), "held-out rows and predictions differ in count"

        model_dir, _ = unpack_version(version, Path(tmp) / "served")
        settings = ServerSettings(str(model_dir), endpoint_name="consistency")
        server = spawn_server(settings, Path(tmp) / "server", "server")
        try:
            client = runtime_client(server.url)
            predictions = []
            for start in range(0, len(raw.lines), BATCH):
                answer = client.invoke_endpoint(
                    EndpointName="consistency",
                    ContentType="text/csv",
                    Body="\n".join(raw.lines[start : start + BATCH]),
                )
                predictions += json.loads(answer["Body"].read())["predictions"]
            objects = held_out[features].head(200).to_dict(orient="records")  # values as text
            answer = client.invoke_endpoint(
                EndpointName="consistency", ContentType="application/json", Body=json.dumps(objects)
            )
            as_json = json.loads(answer["Body"].read())["predictions"]
        finally:
            stop_server(server.pid)

    predictions = np.array(predictions)
    mape = float(np.mean(np.abs(predictions - prices) / prices) * 100)
    mse = float(np.mean((predictions - prices) ** 2))
    evaluated_mse = result.evaluation["regression_metrics"]["mse"]["value"]
    same_rows = int(np.sum(predictions == evaluated.to_numpy()))
    same_json = np.array_equal(np.array(as_json), predictions[:200])
    ok = mape <= TARGET_MAPE and same_rows == len(predictions) and same_json
    print(
        f"{len(raw.lines)} raw held-out rows through the endpoint: MAPE {mape:.2f}% (target "
        f"<= {TARGET_MAPE:g}%); {same_rows} answers equal the evaluate step's predictions; "
        f"endpoint MSE {mse:.6g} vs evaluate step {evaluated_mse:.6g}; JSON objects "
        f"{'agree' if same_json else 'DISAGREE'} with CSV -> {'ok' if ok else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
