"""The project's pipeline end to end on its committed sample, and the behaviour its config
declares (behaviour.monotonic_increasing / monotonic_decreasing) on the model it trained."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.core.config import Config
from mlops.local.artifacts import unpack_version
from mlops.local.model_host import load_handlers
from mlops.local.runner import run_pipeline


@pytest.fixture(scope="module")
def trained(project: Config, tmp_path_factory):
    """One pipeline run on the sample: validate, preprocess, train, evaluate, gate, register;
    the version loaded by the serving code its artifact carries, as an endpoint loads it."""
    home = tmp_path_factory.mktemp("project") / "mlops-home"
    result = run_pipeline(project, project.sample_file, home, progress=lambda _: None)
    model_dir, code = unpack_version(result.version, tmp_path_factory.mktemp("project-model"))
    handlers = load_handlers(code)
    return result, (handlers, handlers.model_fn(str(model_dir)))


def predict(model, df: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Through the serving path (records keyed by feature name), as an endpoint would."""
    handlers, loaded = model
    return np.asarray(handlers.predict_fn(df[features].to_dict("records"), loaded), dtype=float)


def test_the_pipeline_registers_a_version_that_passed_the_gate(project, trained):
    result, _ = trained
    assert result.verdict.passed
    assert result.version.approval_status == "PendingManualApproval"
    metrics, gate = result.version.metrics, project.gate
    if project.task == "binary_classification":
        assert metrics["auc"] >= gate.min_auc and metrics["log_loss"] <= gate.max_log_loss
    else:
        assert metrics["r2"] >= gate.min_r2 and metrics["mse"] <= gate.max_mse


def declared() -> list:
    from mlops.core.config import DEFAULT_CONFIG, load_config

    behaviour = load_config(DEFAULT_CONFIG).behaviour
    params = [pytest.param(f, +1, id=f"{f} up") for f in behaviour.monotonic_increasing] + [
        pytest.param(f, -1, id=f"{f} down") for f in behaviour.monotonic_decreasing
    ]
    return params or [pytest.param(None, 0, id="none declared")]


@pytest.mark.parametrize(("feature", "direction"), declared())
def test_declared_monotonic_behaviour_holds(project, sample, trained, feature, direction):
    """Raising the feature by one standard deviation (others fixed) never moves the
    prediction against the declared direction by more than 1 % of the target's spread.
    With nothing declared, the predictions at least follow the rows (not a constant)."""
    _, model = trained
    rows = sample.head(500)
    if feature is None:
        assert np.std(predict(model, rows, project.data.features)) > 0
        return
    more = rows.assign(**{feature: rows[feature] + rows[feature].std()})
    change = direction * (
        predict(model, more, project.data.features) - predict(model, rows, project.data.features)
    )
    assert change.min() >= -0.01 * sample[project.data.target].std()
