"""The template tests itself as a fork changes its preprocessing: features.py learns a
median from the training rows and adds a feature from it; nothing else changes. The fork
runs its own project tests, its demo (pipeline, approval, staging deploy with its smoke
test, promotion, batch scoring, captured traffic and the monitor) and the PR report, in a
temporary copy of the repository; the endpoint's answer for a raw held-out row equals the
evaluate step's prediction for that row: the transform written once runs the same
everywhere. It starts from whatever data, config and family the template holds: no
column of the example is named here. (The other forks: test_template_fork.py, another
data set; test_template_fork_classification.py, the other task and model family.)
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from test_template_fork import (  # noqa: F401 (fork_env: a fixture)
    fork_env,
    in_fork,
    make_fork,
    stop_endpoints,
    story,
    touched,
)

pytestmark = pytest.mark.slow

DERIVED = """

# The fork's derived feature: the first number feature against its training median.
_fit, _transform = fit, transform


def fit(train, spec):
    state = _fit(train, spec)
    first = next(c for c in state["columns"] if c not in state["categories"])
    state["derived"] = {"source": first, "median": float(train[first].median())}
    state["columns"] = [*state["columns"], f"{first}_vs_median"]
    return state


def transform(rows, state):
    derived = state["derived"]
    plain = {**state, "columns": [c for c in state["columns"] if not c.endswith("_vs_median")]}
    out = _transform(rows, plain)
    out[f"{derived['source']}_vs_median"] = rows[derived["source"]] / derived["median"]
    return out
"""


def registered(fork, env) -> dict:
    described = in_fork(fork, env, "-m", "mlops", "models", "describe", "1", "--json")
    assert described.returncode == 0, described.stderr
    return json.loads(described.stdout)


def test_a_fork_with_a_fitted_derived_feature_serves_what_evaluate_scored(tmp_path, fork_env):  # noqa: F811
    fork = make_fork(tmp_path / "fork")
    steps = fork / "model_build" / "steps"
    (steps / "features.py").write_text((steps / "features.py").read_text() + DERIVED)
    try:
        # Its data and suite are the template's, which this session's own tests/project
        # checks already: the fork runs the model's tests.
        done = story(fork, fork_env, tmp_path, tests="tests/project/test_model.py")
        version = registered(fork, fork_env)
        status = in_fork(fork, fork_env, "-m", "mlops", "endpoint", "status", "--json")
        answers, expected = endpoint_and_evaluate(version, json.loads(status.stdout)["prod"])
    finally:
        stop_endpoints(fork, fork_env)
    assert len(answers) == len(expected) == 5
    assert answers == pytest.approx(expected, rel=1e-6)
    state = archive_json(version["model_uri"], "features.json")
    assert state["columns"][-1].endswith("_vs_median") and state["derived"]["median"] > 0
    assert len(re.findall(r"smoke test passed", done["demo"].stdout)) >= 2
    assert "✅ passing" in (tmp_path / "pr-report.md").read_text()
    assert touched(fork) == {"model_build/steps/features.py"}


def endpoint_and_evaluate(version: dict, prod: dict) -> tuple[list[float], list[float]]:
    """Prod's answers for the version's first five raw held-out rows, and evaluate's
    predictions for the same rows."""
    from mlops.core.smoke import runtime_client
    from stepkit.splits import read_predictions, read_split

    manifest = archive_json(version["model_uri"], "manifest.json")
    rows = read_split(version["lineage"]["held_out_uri"], nrows=5)
    client = runtime_client(prod["url"])
    answers = []
    for values in rows[manifest["features"]].itertuples(index=False, name=None):
        line = io.StringIO()
        csv.writer(line, lineterminator="").writerow(values)
        body = client.invoke_endpoint(
            EndpointName=prod["endpoint_name"], ContentType="text/csv", Body=line.getvalue()
        )["Body"].read()
        answers.append(json.loads(body)["predictions"][0])
    predictions = read_predictions(version["evaluation_uri"].rsplit("/", 1)[0] + "/predictions.csv")
    return answers, predictions["prediction"].head(5).tolist()


def archive_json(archive: str, name: str) -> dict:
    import tarfile

    with tarfile.open(archive) as tar:
        return json.loads(tar.extractfile(name).read())
