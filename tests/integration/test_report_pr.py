"""`mlops report pr` on a real champion/challenger pair from the local registry.

The champion is version 1 of the shared registered home, approved. Challengers are real
pipeline runs (without the validate step, which the report does not read, to keep each
run to seconds): a weak config on the same data is worse, a run on dearer buildings is
better and shows the drift. The report's numbers must be exactly those the run's evaluate
step wrote, and building it must load no model: every model load goes through
`stepkit.code_loader.load_code`, which these tests make fail, and the challenger's own
archive is stripped to its manifest.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
from fixture_project.generate import generate_buildings

from mlops.cli import run as mlops
from mlops.core import prices, run_layout
from mlops.core.config import default_config_path, load_config
from mlops.core.cost import endpoint_cost, usd
from mlops.core.errors import GateFailed
from mlops.core.graph import Pipeline, load_pipeline
from mlops.core.registry import metrics_from_evaluation
from mlops.core.report import FAILING, PASSING
from mlops.core.report_format import human
from mlops.core.stages import load_stage_config
from mlops.local.registry import LocalRegistry
from mlops.local.report import build_report
from mlops.local.runner import run_pipeline
from stepkit.artifact import MANIFEST

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METRICS = ("mse", "rmse", "mae", "r2")


def without_validate(pipeline: Pipeline) -> Pipeline:
    return replace(pipeline, steps=tuple(s for s in pipeline.steps if s.name != "validate"))


def approved_champion(home: Path):
    cfg = load_config()
    return LocalRegistry(home, cfg.model_package_group).approve(1, note="champion")


def challenger_run(config: Path, data: Path, home: Path, champion):
    """Run the pipeline; return (run dir, registered version or None)."""
    cfg = load_config(config)
    pipeline = without_validate(load_pipeline(cfg))
    try:
        result = run_pipeline(
            cfg, data, home, progress=lambda _: None, champion=champion, graph=pipeline
        )
    except GateFailed:
        return max((home / "runs").iterdir()), None
    return result.run_dir, result.version


def refuse_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, every model load of the machinery (endpoints, batch, drift, evaluate)
    in this process fails."""

    def refuse(*args, **kwargs):
        raise AssertionError("the PR report loaded a model")

    monkeypatch.setattr("stepkit.code_loader.load_code", refuse)


def strip_model(home: Path, run_dir: Path) -> None:
    """The run's model archive keeps its manifest only; the unpacked model folder goes."""
    pipeline = load_pipeline(load_config())
    archive = run_layout.model_archive(home, run_dir.name, pipeline)
    with tarfile.open(archive) as tar:
        manifest = tar.extractfile(MANIFEST).read()
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    shutil.rmtree(run_dir / pipeline.model_step / "model")


def report(tmp_path: Path, config: Path, *extra: str) -> str:
    out = tmp_path / "pr-report.md"
    code = mlops(
        [
            "report", "pr", "--out", str(out), "--report-dir", str(tmp_path / "reports"),
            "--plots-dir", str(tmp_path / "plots"), "--config", str(config), *extra,
        ]
    )  # fmt: skip
    assert code == 0
    return out.read_text()


def table_row(markdown: str, metric: str) -> list[str]:
    row = next(ln for ln in markdown.splitlines() if ln.startswith(f"| {metric} |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


SCALE = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def number(cell: str) -> float:
    """A human number from the report ('30.9 M', '+3.99 M (+81 %)', '-25 %') as a float."""
    text = cell.split(" (")[0].replace("%", "").replace(",", "").strip()
    value, _, suffix = text.partition(" ")
    return float(value) * SCALE.get(suffix, 1.0)


def evaluation(run_dir: Path) -> dict:
    pipeline = load_pipeline(load_config())
    folder = run_dir / run_layout.relative(pipeline.evaluation)
    return json.loads((folder / run_layout.EVALUATION_FILE).read_text())


def assert_is_evaluate_steps(markdown: str, run_dir: Path) -> None:
    """Both models' metrics in the table are evaluation.json's, as written."""
    ev = evaluation(run_dir)
    for metric in METRICS:
        _, champion, challenger, _, _ = table_row(markdown, metric)
        assert champion == human(ev["champion"]["regression_metrics"][metric]["value"])
        assert challenger == human(ev["regression_metrics"][metric]["value"])
    assert markdown.count("xychart-beta") == 2  # plots drawn in the comment itself
    assert f"same {ev['rows']} held-out rows" in markdown


def assert_plots(tmp_path: Path) -> None:
    for name in ("predicted_vs_actual.png", "residuals.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_worse_challenger_is_marked_failing(
    registered_home, data_csv, config_file, tmp_path, monkeypatch
):
    home, _ = registered_home
    champion = approved_champion(home)
    weak = config_file(lambda raw: raw["train"]["hyperparameters"].update(num_round=5))
    run_dir, version = challenger_run(weak, data_csv, home, champion)
    assert version is None  # the pipeline's own gate refused it
    assert json.loads((run_dir / "run.json").read_text())["champion_version"] == 1
    strip_model(home, run_dir)
    refuse_model_loads(monkeypatch)

    built = build_report(load_config(weak), home, run_dir, tmp_path / "reports", None, {})
    md = report(tmp_path, weak)

    ev = evaluation(run_dir)
    assert built.challenger == metrics_from_evaluation(ev)
    assert built.champion == metrics_from_evaluation(ev["champion"])
    assert built.champion_version == 1
    first = md.splitlines()[1]
    assert first.startswith(f"## {FAILING}: quality gate failed on ") and "mse vs champion" in first
    assert "higher than champion v1" in first and first.count("<=") == 0
    assert PASSING not in md
    assert_is_evaluate_steps(md, run_dir)
    assert table_row(md, "mse")[-1] == "🔴 worse" and table_row(md, "r2")[-1] == "🔴 worse"
    golden = md.split("### Golden set: ", 1)[1]
    assert table_row(golden, "mse")[1] == human(
        ev["golden"]["champion"]["regression_metrics"]["mse"]["value"]
    )
    assert "| `train.num_round` | `3000` | `5` |" in md
    assert "| registry | v1 Approved | not registered (gate failed) |" in md
    assert "### Data validation: not run" in md and "### Data drift: not run" in md
    assert_plots(tmp_path)


def test_better_challenger_on_dearer_data_passes_and_shows_the_drift(
    registered_home, config_file, tmp_path, monkeypatch
):
    """Costs 30 % up in the new data: the challenger learned them, the champion did not.
    Against the champion, the target drifted and the champion's own predictions did not
    (the features did not move)."""
    home, _ = registered_home
    champion = approved_champion(home)
    config = config_file(lambda raw: raw["data"].pop("golden"))  # the golden set is old prices
    dearer = tmp_path / "dearer.csv"
    fresh = generate_buildings(10_000, seed=11)
    fresh[load_config().data.target] *= 1.3
    fresh.to_csv(dearer, index=False)
    drift_argv = ["data", "drift", str(dearer), "--report-dir", str(tmp_path / "reports")]
    assert mlops(drift_argv) == 0
    run_dir, version = challenger_run(config, dearer, home, champion)
    assert version is not None and version.version == 2
    refuse_model_loads(monkeypatch)

    md = report(tmp_path, config)

    first = md.splitlines()[1]
    assert first.startswith(f"## {PASSING}: mse") and "lower than champion v1" in first
    assert FAILING not in md
    assert_is_evaluate_steps(md, run_dir)
    assert "| registry | v1 Approved | v2 PendingManualApproval |" in md
    shas = re.search(r"\| data sha256 \| `(\w+)` \| `(\w+)` \|", md)
    assert shas and shas.group(1) != shas.group(2)  # other data, and the table says so
    assert "### Data drift:" in md and "### Data validation: not run" in md
    section = md.split("### Drift of the new data against champion v1", 1)[1]
    target = table_row(section, f"target `{load_config().data.target}`")
    prediction = table_row(section, "prediction (champion v1)")
    assert number(target[1]) > 0.5 and target[-1] == "⚠️ yes"
    assert number(target[3]) == pytest.approx(1.3 * number(target[2]), rel=0.05)
    assert number(prediction[1]) < 0.05 and prediction[-1] == "no"
    assert "2,000 held-out rows" in section
    assert_plots(tmp_path)


def test_no_champion_reports_the_challenger_alone(registered_home, tmp_path, monkeypatch):
    _, result = registered_home  # version 1 is registered but nobody approved it
    refuse_model_loads(monkeypatch)
    md = report(tmp_path, default_config_path(), "--run", result.run_id)
    assert md.splitlines()[1] == f"## {PASSING}: no champion to compare with (challenger only)"
    assert "| metric | challenger |" in md
    mse = result.evaluation["regression_metrics"]["mse"]["value"]
    assert table_row(md, "mse")[1] == human(mse)
    assert "no champion: the comparison check did not apply" in md
    card = tmp_path / "reports" / "model-card.html"  # the challenger's card, in the artifact
    assert "Model card: energy-costs version 1" in card.read_text()
    assert "The challenger's model card (version 1: " in md and f"`{card}`" in md
    # The cost: this run's step seconds on the config's instances, from the dated table.
    steps = json.loads((result.run_dir / "run.json").read_text())["steps"]
    sm, kinds = (
        load_config().sagemaker,
        {s.name: s.kind for s in load_pipeline(load_config()).steps},
    )
    instance = {"processing": sm.processing_instance_type, "training": sm.training_instance_type}
    expected = sum(
        prices.INSTANCE_HOUR_USD[kinds[name]][instance[kinds[name]]] * step["seconds"] / 3600
        for name, step in steps.items()
    )
    assert f"This run on SageMaker: **{usd(expected)}**" in md
    staging = endpoint_cost("staging", load_stage_config("staging").sagemaker)
    assert f"| staging | {staging.what} | {staging.monthly} |" in md
    assert prices.PRICES_AS_OF in md


def test_unknown_run_is_a_usage_error(home, tmp_path, capsys):
    code = mlops(["report", "pr", "--out", str(tmp_path / "r.md"), "--run", "nope"])
    assert code == 2
    assert "no pipeline run 'nope'" in capsys.readouterr().err


def test_the_report_dir_has_one_spelling(home, tmp_path, capsys):
    out = str(tmp_path / "r.md")
    with pytest.raises(SystemExit) as refused:
        mlops(["report", "pr", "--out", out, "--reports-dir", str(tmp_path)])
    assert refused.value.code == 2
    assert "unrecognized arguments: --reports-dir" in capsys.readouterr().err


def test_no_run_at_all_reports_failing(home, tmp_path):
    md = report(tmp_path, default_config_path())
    assert md.splitlines()[1] == f"## {FAILING}: no pipeline run found"
    assert "No model card: this run registered no version" in md


def test_report_model_summarizes_the_latest_registered_version(registered_home, tmp_path):
    _, result = registered_home
    out = tmp_path / "summary.md"
    assert mlops(["report", "model", "--out", str(out)]) == 0
    md = out.read_text()
    assert md.splitlines()[1] == "## Model version 1 registered as PendingManualApproval"
    mse = result.evaluation["regression_metrics"]["mse"]["value"]
    assert f"| mse | {human(mse)} |" in md
    assert f"| pipeline run | `{result.run_id}` |" in md
    assert "`mlops models approve 1 --backend local`" in md


def test_report_model_without_versions_is_a_usage_error(home, tmp_path, capsys):
    assert mlops(["report", "model", "--out", str(tmp_path / "s.md")]) == 2
    assert "no model versions" in capsys.readouterr().err
