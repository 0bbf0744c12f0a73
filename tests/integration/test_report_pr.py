"""`mlops report pr` on a real champion/challenger pair from the local registry.

The champion is version 1 of the shared registered home, approved. Challengers
are real pipeline runs (without the validate step, which the report does not
read, to keep each run to seconds): a weak config on the same data is worse, a
run on twice the data is better. The numbers in the report must match what the
pipeline's own evaluate step computed for both models on the same rows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from fixture_project.generate import generate_buildings

from mlops.cli import run as mlops
from mlops.core.config import default_config_path, load_config
from mlops.core.errors import GateFailed
from mlops.core.graph import Graph, build_graph
from mlops.core.report import FAILING, PASSING
from mlops.core.report_format import human
from mlops.local.registry import LocalRegistry
from mlops.local.runner import run_pipeline

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def config_with(tmp_path: Path, **hyperparameters) -> Path:
    raw = yaml.safe_load(default_config_path().read_text())
    raw["train"]["hyperparameters"].update(hyperparameters)
    raw["data"]["expectation_suite"] = str(load_config().suite_file)  # the copy lives elsewhere
    raw["data"]["golden"] = str(load_config().golden_file)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def without_validate(graph: Graph) -> Graph:
    return Graph(steps=tuple(s for s in graph.steps if s.name != "validate"), gate=graph.gate)


def approved_champion(home: Path):
    cfg = load_config()
    return LocalRegistry(home, cfg.model_package_group).approve(1, note="champion")


def challenger_run(config: Path, data: Path, home: Path, champion):
    """Run the pipeline; return (run dir, registered version or None)."""
    cfg = load_config(config)
    graph = without_validate(build_graph(cfg))
    try:
        result = run_pipeline(
            cfg, data, home, progress=lambda _: None, champion=champion, graph=graph
        )
    except GateFailed:
        run_dir = max((home / "runs").iterdir())
        return run_dir, None
    return result.run_dir, result.version


def report(tmp_path: Path, config: Path, *extra: str) -> str:
    out = tmp_path / "pr-report.md"
    code = mlops(
        [
            "report",
            "pr",
            "--out",
            str(out),
            "--reports-dir",
            str(tmp_path / "reports"),
            "--plots-dir",
            str(tmp_path / "plots"),
            "--config",
            str(config),
            *extra,
        ]
    )
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


def pct_of(cell: str) -> float:
    return number(cell.split(" (", 1)[1].rstrip(")"))


def evaluation(run_dir: Path) -> dict:
    return json.loads((run_dir / "evaluate" / "evaluation" / "evaluation.json").read_text())


def assert_matches_evaluate_step(markdown: str, run_dir: Path) -> None:
    """Both models' metrics, deltas and % as the evaluate step computed them (same rows)."""
    ev = evaluation(run_dir)
    for metric in ("mse", "rmse", "mae", "r2"):
        _, champion, challenger, delta, _ = table_row(markdown, metric)
        old = ev["champion"]["regression_metrics"][metric]["value"]
        new = ev["regression_metrics"][metric]["value"]
        # three significant digits, as a reviewer reads them ('30.9 M', '+3.99 M (+81 %)')
        assert number(champion) == pytest.approx(old, rel=5e-3)
        assert number(challenger) == pytest.approx(new, rel=5e-3)
        assert number(delta) == pytest.approx(new - old, rel=5e-3, abs=1e-3)
        assert pct_of(delta) == pytest.approx((new - old) / abs(old) * 100, rel=5e-3, abs=0.01)
    assert markdown.count("xychart-beta") == 2  # plots drawn in the comment itself
    assert f"same {ev['test_rows']} held-out rows" in markdown


def assert_plots(tmp_path: Path) -> None:
    for name in ("predicted_vs_actual.png", "residuals.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_worse_challenger_is_marked_failing(registered_home, data_csv, tmp_path):
    home, _ = registered_home
    champion = approved_champion(home)
    weak = config_with(tmp_path, num_round=5)
    run_dir, version = challenger_run(weak, data_csv, home, champion)
    assert version is None  # the pipeline's own gate refused it

    md = report(tmp_path, weak)

    first = md.splitlines()[1]
    assert first.startswith(f"## {FAILING}: quality gate failed")
    assert "mse vs champion" in first and "higher than champion v1" in first
    assert PASSING not in md
    assert_matches_evaluate_step(md, run_dir)
    assert table_row(md, "mse")[-1] == "🔴 worse" and table_row(md, "r2")[-1] == "🔴 worse"
    assert number(table_row(md, "mse")[3]) > 0
    assert first.count("<=") == 0  # the gate's numbers are said once, in its own section
    assert "| `train.num_round` | `3000` | `5` |" in md
    assert "| registry | v1 Approved | not registered (gate failed) |" in md
    assert "### Data validation: not run" in md and "### Data drift: not run" in md
    assert_plots(tmp_path)


def test_better_challenger_is_marked_passing(registered_home, tmp_path):
    home, _ = registered_home
    champion = approved_champion(home)
    more_data = tmp_path / "more.csv"
    generate_buildings(8000, seed=11).to_csv(more_data, index=False)
    assert mlops(["data", "drift", str(more_data), "--report-dir", str(tmp_path / "reports")]) == 0
    run_dir, version = challenger_run(default_config_path(), more_data, home, champion)
    assert version is not None and version.version == 2

    md = report(tmp_path, default_config_path())

    first = md.splitlines()[1]
    assert first.startswith(f"## {PASSING}: mse") and "lower than champion v1" in first
    assert FAILING not in md
    assert_matches_evaluate_step(md, run_dir)
    assert table_row(md, "mse")[-1] == "🟢 better" and number(table_row(md, "mse")[3]) < 0
    assert "| registry | v1 Approved | v2 PendingManualApproval |" in md
    assert "Parameters: same as the champion's." in md
    shas = re.search(r"\| data sha256 \| `(\w+)` \| `(\w+)` \|", md)
    assert shas and shas.group(1) != shas.group(2)  # other data, and the table says so
    assert "### Data drift:" in md and "### Data validation: not run" in md
    assert_plots(tmp_path)


def test_no_champion_reports_the_challenger_alone(registered_home, tmp_path):
    _, result = registered_home  # version 1 is registered but nobody approved it
    md = report(tmp_path, default_config_path(), "--run", result.run_id)
    assert md.splitlines()[1] == f"## {PASSING}: no champion to compare with (challenger only)"
    assert "| metric | challenger |" in md
    mse = number(table_row(md, "mse")[1])
    assert mse == pytest.approx(result.evaluation["regression_metrics"]["mse"]["value"], rel=5e-3)
    assert "no champion: the comparison check did not apply" in md


def test_unknown_run_is_a_usage_error(home, tmp_path, capsys):
    code = mlops(["report", "pr", "--out", str(tmp_path / "r.md"), "--run", "nope"])
    assert code == 2
    assert "no pipeline run 'nope'" in capsys.readouterr().err


def test_no_run_at_all_reports_failing(home, tmp_path):
    md = report(tmp_path, default_config_path())
    assert md.splitlines()[1] == f"## {FAILING}: no pipeline run found"


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


def test_new_data_drift_against_the_champion(registered_home, tmp_path):
    """The challenger's held-out rows against the champion: the target (costs 30 % up in the
    new data) and the champion's predictions on them (unmoved: the features did not move)."""
    home, _ = registered_home
    champion = approved_champion(home)
    dearer = tmp_path / "dearer.csv"
    fresh = generate_buildings(10_000, seed=11)
    fresh[load_config().data.target] *= 1.3
    fresh.to_csv(dearer, index=False)
    weak = config_with(tmp_path, num_round=5)  # seconds; the gate's verdict does not matter
    challenger_run(weak, dearer, home, champion)

    md = report(tmp_path, weak)

    section = md.split("### Drift of the new data against champion v1", 1)[1]
    target = table_row(section, f"target `{load_config().data.target}`")
    prediction = table_row(section, "prediction (champion v1)")
    assert number(target[1]) > 0.5 and target[-1] == "⚠️ yes"
    assert number(target[3]) == pytest.approx(1.3 * number(target[2]), rel=0.05)
    assert number(prediction[1]) < 0.05 and prediction[-1] == "no"
    assert "2,000 held-out rows" in section
