"""A target shifted in the new data cannot pass by being compared on its own shifted split:
challenger and champion are both scored on the reviewed golden set, and the gate uses it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mlops.core.config import load_config
from mlops.core.errors import GateFailed
from mlops.local.registry import LocalRegistry
from mlops.local.runner import output_dir, run_pipeline

SHIFT = 1.3


def test_a_shifted_target_fails_on_the_golden_set(registered_home, data_csv, tmp_path):
    cfg = load_config()
    assert cfg.data.golden, "the fork ships a golden set (config data.golden)"
    home, _ = registered_home
    champion = LocalRegistry(home, cfg.model_package_group).approve(1, note="champion")
    shifted = pd.read_csv(data_csv)
    shifted[cfg.data.target] = (shifted[cfg.data.target] * SHIFT).round().astype("int64")
    data = tmp_path / "shifted.csv"
    shifted.to_csv(data, index=False)

    lines: list[str] = []
    with pytest.raises(GateFailed) as err:
        run_pipeline(cfg, data, home, progress=lines.append, champion=champion)
    assert "golden" in str(err.value)
    run_dir = sorted((home / "runs").iterdir())[-1]
    evaluation = json.loads(
        (output_dir(run_dir, "evaluate", "evaluation") / "evaluation.json").read_text()
    )
    golden = evaluation["golden"]
    # On its own split the shifted model looks fine next to the champion scored there too...
    assert evaluation["regression_metrics"]["r2"]["value"] > cfg.gate.min_r2
    # ...but on the reference rows it is far worse than the champion.
    assert golden["rows"] == len(pd.read_csv(cfg.golden_file))
    challenger_mse = golden["regression_metrics"]["mse"]["value"]
    champion_mse = golden["champion"]["regression_metrics"]["mse"]["value"]
    assert challenger_mse > 10 * champion_mse
    assert any("golden mse vs champion" in line and "FAILED" in line for line in lines)
    assert [v.version for v in LocalRegistry(home, cfg.model_package_group).list()] == [1]
