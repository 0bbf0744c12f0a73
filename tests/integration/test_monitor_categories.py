"""Monitoring a model with string categorical features: the version's reference predictions
(its own predictions on its held-out split) come from raw rows through its own serving code,
as `mlops data drift` scores them, so every held-out row is scored."""

from __future__ import annotations

import pandas as pd
import pytest
from fixtures.tasks import RENT_CONFIG, project_config, rent_frame

from mlops.cli import run
from mlops.core.config import load_config
from mlops.core.smoke import held_out_file
from mlops.local.monitor import LocalMonitor
from mlops.local.registry import LocalRegistry


@pytest.mark.slow
def test_reference_predictions_of_a_model_with_string_categories(home, tmp_path, capsys):
    config = project_config(RENT_CONFIG, tmp_path)
    data = tmp_path / "train.csv"
    rent_frame(1500, seed=3).to_csv(data, index=False)
    assert run(["pipeline", "run", "--data", str(data), "--config", str(config)]) == 0
    capsys.readouterr()
    cfg = load_config(config)
    assert cfg.data.categorical_features, "the rent fixture must have string categories"
    registry = LocalRegistry(home, cfg.model_package_group)
    held_out = pd.read_csv(held_out_file(registry.describe(1), home), header=None)

    predictions = LocalMonitor(cfg, registry, home).reference_predictions(1)

    assert predictions is not None and len(predictions) == len(held_out)
    truth = held_out.iloc[:, 0].to_numpy(float)
    # the model's own predictions on its held-out rows: close to the truth (R² well above 0)
    residual = ((predictions - truth) ** 2).sum() / ((truth - truth.mean()) ** 2).sum()
    assert residual < 0.2
