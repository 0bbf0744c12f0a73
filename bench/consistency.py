"""Train/serve consistency: the reference data's raw test rows through a real endpoint.

Trains with the default config on ../shared/data/house_pricing.csv through the
local pipeline (in a throwaway $MLOPS_HOME), serves the registered model with the
project's server, and sends the rows of the held-out test split exactly as they
are written in the source file (the feature columns' text, no preprocessing) through
a sagemaker-runtime client, as CSV and as JSON objects. Prints the MAPE against
the true prices (target <= 5%) and checks that the endpoint's mean squared error
equals the one the evaluate step computed on the same rows.
Skips cleanly when the reference file is absent (a fork has no ../shared).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from _common import REFERENCE_DATA, REPO_ROOT

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
    sys.path.insert(0, str(REPO_ROOT / "model_build" / "steps"))
    import numpy as np
    import pandas as pd
    import preprocess
    from mlops.core.code_bundle import handler_sources

    from mlops.core.config import load_config
    from mlops.core.smoke import runtime_client
    from mlops.local.endpoint_app import ServerSettings
    from mlops.local.runner import run_pipeline
    from mlops.local.server_process import spawn_server, stop_server

    cfg = load_config()
    target, features = cfg.data.target, cfg.data.features
    header, lines = raw_rows_with_targets(REFERENCE_DATA, target)
    with tempfile.TemporaryDirectory(prefix="bench-consistency-") as tmp:
        data = Path(tmp) / REFERENCE_DATA.name
        data.write_text("\n".join([header, *lines]) + "\n")
        print(f"training on {len(lines)} reference rows (rows with {target} <= 0 dropped) ...")
        result = run_pipeline(cfg, data, Path(tmp) / "home", progress=lambda _: None)

        # The same split as the preprocess step, carrying each row's original text along.
        df = pd.read_csv(data)[header.split(",")]
        df["_text"] = lines
        p = cfg.preprocess
        test = preprocess.split_data(df, p.train_ratio, p.validation_ratio, p.seed).test
        written = np.loadtxt(result.run_dir / "preprocess/test/test.csv", delimiter=",")
        assert np.array_equal(written[:, 0], test[target].to_numpy(float)), "split mismatch"
        column = header.split(",").index(target)
        raw = [",".join(t.split(",")[:column] + t.split(",")[column + 1 :]) for t in test._text]
        prices = test[target].to_numpy(float)

        code = Path(tmp) / "code"
        code.mkdir()
        for source in handler_sources(REPO_ROOT / "model_build" / "steps"):
            (code / source.name).write_bytes(source.read_bytes())
        model_dir = Path(tmp) / "model"
        import tarfile

        with tarfile.open(result.version.model_uri) as tar:
            tar.extractall(model_dir, filter="data")
        settings = ServerSettings(str(model_dir), str(code), endpoint_name="consistency")
        server = spawn_server(settings, Path(tmp) / "server", "server")
        try:
            client = runtime_client(server.url)
            predictions = []
            for start in range(0, len(raw), BATCH):
                answer = client.invoke_endpoint(
                    EndpointName="consistency",
                    ContentType="text/csv",
                    Body="\n".join(raw[start : start + BATCH]),
                )
                predictions += json.loads(answer["Body"].read())["predictions"]
            objects = [
                dict(zip(features, map(float, r.split(",")), strict=True)) for r in raw[:200]
            ]
            answer = client.invoke_endpoint(
                EndpointName="consistency", ContentType="application/json", Body=json.dumps(objects)
            )
            as_json = json.loads(answer["Body"].read())["predictions"]
        finally:
            stop_server(server.pid)

    predictions = np.array(predictions)
    mape = float(np.mean(np.abs(predictions - prices) / prices) * 100)
    mse = float(np.mean((predictions - prices) ** 2))
    evaluated = result.evaluation["regression_metrics"]["mse"]["value"]
    same_json = np.array_equal(np.array(as_json), predictions[:200])
    ok = mape <= TARGET_MAPE and abs(mse - evaluated) <= 1e-9 * evaluated and same_json
    print(
        f"{len(raw)} raw test rows through the endpoint: MAPE {mape:.2f}% (target <= "
        f"{TARGET_MAPE:g}%); endpoint MSE {mse:.6g} vs evaluate step {evaluated:.6g} "
        f"(relative difference {abs(mse - evaluated) / evaluated:.1e}); JSON objects "
        f"{'agree' if same_json else 'DISAGREE'} with CSV -> {'ok' if ok else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
