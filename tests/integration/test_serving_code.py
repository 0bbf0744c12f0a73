"""A version is served and scored by the code in its own artifact, not by today's checkout:
after the handler changed (and a new version was trained with it), the old version still
answers with its own, and a rollback brings its handler back. An artifact whose code was
changed after training (its manifest's sha256 no longer matches), or that holds a file its
manifest does not list, is refused before that code runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _serving import deploy_config_copy, extract, set_pin
from fixtures.artifacts import pack

from mlops.cli import run
from mlops.core.errors import MlopsError
from mlops.core.run_layout import local_held_out, predictions_file, read_held_out
from mlops.core.smoke import runtime_client
from mlops.local.endpoints import read_endpoint, stop_all_servers
from mlops.local.model_host import load_model
from mlops.local.registry import LocalRegistry
from mlops.local.server import WATCH_PID_ENV
from stepkit.artifact import CODE_DIR, write_manifest
from stepkit.splits import PREDICTION, read_predictions

GROUP = "energy-costs"
# What the checkout's inference.py became after version 1 was trained: every answer 1.0
# higher (small enough to pass the smoke test, plain to see).
CHANGED_HANDLER = """

_model_scores = _scores


def _scores(frame, model):  # changed after version 1 was registered
    return _model_scores(frame, model) + 1.0
"""


def changed_copy(archive: Path, folder: Path, code_change: str, reseal: bool) -> Path:
    """A copy of a model.tar.gz with `code_change` appended to its inference.py; `reseal`
    rewrites the manifest over it (a model trained with the changed code), else the
    manifest stays as it was (the code was tampered with after training)."""
    model_dir = extract(archive, folder / "model")
    handler = model_dir / CODE_DIR / "inference.py"
    handler.write_text(handler.read_text() + code_change)
    if reseal:
        manifest = json.loads((model_dir / "manifest.json").read_text())
        write_manifest(
            model_dir, {k: v for k, v in manifest.items() if k not in ("format", "files")}
        )
    return pack(model_dir, folder / "model.tar.gz")


def register(registry: LocalRegistry, archive: Path, run_id: str) -> int:
    """`archive` as a new approved version with version 1's evaluation and held-out rows."""
    v1 = registry.describe(1)
    lineage = {**v1.lineage, "run_id": run_id}  # its own registry folder
    version = registry.register(archive, Path(v1.evaluation_uri), Path(v1.baseline_uri), lineage)
    registry.approve(version.version, "test")
    return version.version


@pytest.fixture
def stages(registered_home, tmp_path, monkeypatch):
    home, result = registered_home
    deploy_dir = deploy_config_copy(tmp_path / "model_deploy")
    monkeypatch.setenv("MLOPS_DEPLOY_DIR", str(deploy_dir))
    monkeypatch.setenv(WATCH_PID_ENV, str(os.getpid()))
    registry = LocalRegistry(home, GROUP)
    registry.approve(1, "test")
    held_out = read_held_out(local_held_out(result.version, home))
    evaluated = read_predictions(Path(predictions_file(result.version.evaluation_uri)))
    yield home, deploy_dir, registry, held_out, evaluated[PREDICTION].to_numpy()
    stop_all_servers(home)


def staging_answers(home: Path, lines: list[str]) -> np.ndarray:
    endpoint = read_endpoint(home, "staging")
    client = runtime_client(endpoint.url)
    answer = client.invoke_endpoint(
        EndpointName=endpoint.endpoint_name, ContentType="text/csv", Body="\n".join(lines)
    )
    return np.array(json.loads(answer["Body"].read())["predictions"])


def test_each_version_serves_and_scores_with_its_own_handler(stages, tmp_path, capsys):
    home, deploy_dir, registry, held_out, evaluated = stages
    v1 = registry.describe(1)
    v2 = register(
        registry,
        changed_copy(Path(v1.model_uri), tmp_path / "v2", CHANGED_HANDLER, reseal=True),
        "changed-handler-run",
    )
    features = json.loads(
        (extract(Path(v1.model_uri), tmp_path / "v1") / "manifest.json").read_text()
    )["features"]
    lines = [",".join(row) for row in held_out[features].head(20).itertuples(index=False)]

    assert run(["deploy", "--stage", "staging"]) == 0  # the latest approved: version 2
    np.testing.assert_array_equal(staging_answers(home, lines), evaluated[:20] + 1.0)
    set_pin(deploy_dir, "staging", 1)  # the rollback: version 1, with its own handler
    assert run(["deploy", "--stage", "staging"]) == 0
    assert read_endpoint(home, "staging").version == 1
    np.testing.assert_array_equal(staging_answers(home, lines), evaluated[:20])

    data = tmp_path / "rows.csv"
    held_out.head(200).to_csv(data, index=False)
    scores = {}
    for version in (1, v2):
        out = tmp_path / f"scores-v{version}.csv"
        argv = ["batch", "predict", "--data", str(data), "--out", str(out)]
        assert run([*argv, "--version", str(version), "--workers", "1"]) == 0
        scores[version] = pd.read_csv(out)["prediction"].to_numpy()
    np.testing.assert_array_equal(scores[1], evaluated[:200])
    np.testing.assert_array_equal(scores[v2], evaluated[:200] + 1.0)
    capsys.readouterr()


def test_a_version_whose_code_was_tampered_with_is_refused(stages, tmp_path, capsys):
    home, _, registry, held_out, _ = stages
    v1 = registry.describe(1)
    assert run(["deploy", "--stage", "staging"]) == 0
    tampered = register(
        registry,
        changed_copy(Path(v1.model_uri), tmp_path / "t", CHANGED_HANDLER, reseal=False),
        "tampered-run",
    )
    capsys.readouterr()

    assert run(["deploy", "--stage", "staging", "--version", str(tampered)]) == 1
    err = capsys.readouterr().err
    assert "code/inference.py: sha256" in err and "does not match the manifest" in err
    assert "version 1 keeps serving staging" in err
    assert read_endpoint(home, "staging").version == 1

    data = tmp_path / "rows.csv"
    held_out.head(20).to_csv(data, index=False)
    out = tmp_path / "scores.csv"
    argv = ["batch", "predict", "--data", str(data), "--out", str(out), "--workers", "1"]
    assert run([*argv, "--version", str(tampered)]) == 1
    assert "code/inference.py: sha256" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "extra",
    [f"{CODE_DIR}/numpy.py", f"{CODE_DIR}/__pycache__/inference.cpython-311.pyc"],
)
def test_a_file_the_manifest_does_not_list_is_refused(registered_home, tmp_path, extra):
    """A module beside inference.py would shadow a library it imports; a stale bytecode
    file may be run instead of the checked source: neither is loaded."""
    _, result = registered_home
    model_dir = extract(Path(result.version.model_uri), tmp_path / "model")
    load_model(model_dir)  # the artifact as trained loads
    assert not (model_dir / CODE_DIR / "__pycache__").exists()  # and stays as it was
    (model_dir / extra).parent.mkdir(exist_ok=True)
    (model_dir / extra).write_text("raise SystemExit('must never run')\n")
    with pytest.raises(MlopsError, match=f"{extra} is in the model artifact but not in its"):
        load_model(model_dir)
