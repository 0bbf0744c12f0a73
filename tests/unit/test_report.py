"""mlops.core.report's pure parts: numbers, verdict, diff, Markdown, and reading a reports dir."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mlops.core.graph import Gate
from mlops.core.report import (
    FAILING,
    MARKER,
    NOT_RUN,
    PASSING,
    DataSection,
    Lineage,
    Report,
    RunRecord,
    change_of,
    data_section_lines,
    gate_verdict,
    headline,
    metric_rows,
    params_diff,
    passing,
    read_data_section,
    regression_metrics,
    render_markdown,
    run_url,
)
from mlops.local.report import align, latest_run_dir, read_run

GATE = Gate(max_mse=100.0, min_r2=0.5, max_regression_pct=5.0)
CHAMPION = {"mse": 40.0, "rmse": math.sqrt(40.0), "mae": 5.0, "r2": 0.8}
RUN = RunRecord("20250101-000000-abcdef", Path("/runs/x"), "registered", version=2)


def scored(challenger: dict, champion: dict | None = CHAMPION) -> Report:
    return Report(
        run=RUN,
        rows=100,
        challenger=challenger,
        champion=champion,
        champion_version=1 if champion else None,
        verdict=gate_verdict(challenger, champion, GATE),
        gate=GATE,
        challenger_lineage=Lineage("c" * 40, "d" * 64, "new.csv", RUN.run_id, "v2 Pending", {}),
        champion_lineage=Lineage("a" * 40, "b" * 64, "old.csv", "r1", "v1 Approved", {})
        if champion
        else None,
    )


def test_regression_metrics_known_values():
    m = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert m["mse"] == pytest.approx(1 / 3)
    assert m["rmse"] == pytest.approx(math.sqrt(1 / 3))
    assert m["mae"] == pytest.approx(1 / 3)
    assert m["r2"] == pytest.approx(0.5)  # 1 - 1 / sum((y - 2)^2) = 1 - 1/2


@pytest.mark.parametrize(
    ("metric", "delta", "change"),
    [
        ("mse", -1.0, "better"),
        ("mse", 2.0, "worse"),
        ("mae", 0.5, "worse"),
        ("r2", 0.01, "better"),
        ("r2", -0.01, "worse"),
        ("rmse", 0.0, "same"),
    ],
)
def test_change_direction_per_metric(metric, delta, change):
    assert change_of(metric, delta) == change


def test_metric_rows_deltas_and_percentages():
    rows = {
        r.name: r for r in metric_rows({"mse": 50.0, "rmse": 7.0, "mae": 4.0, "r2": 0.7}, CHAMPION)
    }
    assert rows["mse"].delta == pytest.approx(10.0) and rows["mse"].delta_pct == pytest.approx(25.0)
    assert rows["mse"].change == "worse"
    assert rows["mae"].delta == pytest.approx(-1.0) and rows["mae"].delta_pct == pytest.approx(
        -20.0
    )
    assert rows["mae"].change == "better"
    assert rows["r2"].delta == pytest.approx(-0.1) and rows["r2"].delta_pct == pytest.approx(-12.5)


def test_metric_rows_without_champion_have_no_deltas():
    rows = metric_rows({"mse": 50.0, "r2": 0.7}, None)
    assert [(r.name, r.champion, r.delta, r.change) for r in rows] == [
        ("mse", None, None, ""),
        ("r2", None, None, ""),
    ]


@pytest.mark.parametrize(("mse", "passed"), [(41.9, True), (42.0, True), (42.1, False)])
def test_gate_allows_the_configured_regression_against_the_champion(mse, passed):
    verdict = gate_verdict({"mse": mse, "r2": 0.8}, CHAMPION, GATE)  # limit 40 * 1.05 = 42
    assert verdict.passed is passed
    assert [c.metric for c in verdict.checks] == ["mse", "r2", "mse vs champion"]


def test_gate_without_champion_checks_thresholds_only():
    verdict = gate_verdict({"mse": 500.0, "r2": 0.9}, None, GATE)
    assert not verdict.passed and [c.metric for c in verdict.failures] == ["mse"]


def test_params_diff_flattens_and_lists_changed_added_removed():
    old = {"train": {"eta": 0.05, "num_round": 3000, "gone": 1}, "preprocess": {"seed": 42}}
    new = {"train": {"eta": 0.1, "num_round": 3000, "added": "x"}, "preprocess": {"seed": 42}}
    assert params_diff(old, new) == [
        ("train.added", None, "x"),
        ("train.eta", 0.05, 0.1),
        ("train.gone", 1, None),
    ]
    assert params_diff(old, old) == []


def test_better_challenger_passes_with_its_improvement_at_the_top():
    report = scored({"mse": 30.0, "rmse": math.sqrt(30.0), "mae": 4.0, "r2": 0.85})
    assert passing(report)
    assert headline(report) == f"## {PASSING}: mse 25 % lower than champion v1"
    md = render_markdown(report)
    assert md.startswith(MARKER + "\n" + headline(report))
    assert "| mse | 40 | 30 | -10 (-25 %) | 🟢 better |" in md
    assert "| r2 | 0.8 | 0.85 | +0.05 (+6.25 %) | 🟢 better |" in md


def test_slightly_worse_challenger_within_the_allowance_passes_and_says_so():
    report = scored({"mse": 41.0, "rmse": math.sqrt(41.0), "mae": 5.0, "r2": 0.8})
    assert passing(report)
    assert headline(report) == (
        f"## {PASSING}: mse 2.5 % higher than champion v1 (within the +5 % the gate allows)"
    )


def test_worse_challenger_fails_and_names_the_failed_check():
    report = scored({"mse": 60.0, "rmse": math.sqrt(60.0), "mae": 6.0, "r2": 0.7})
    assert not passing(report)
    top = headline(report)
    assert top == (
        f"## {FAILING}: quality gate failed on mse vs champion; "
        "mse 50 % higher than champion v1 (beyond the +5 % the gate allows)"
    )
    md = render_markdown(report)
    assert "| mse | 40 | 60 | +20 (+50 %) | 🔴 worse |" in md
    assert md.count("60 <= 42") == 1  # the numbers of the verdict once, in the gate section


def test_no_champion_means_challenger_only():
    report = scored({"mse": 30.0, "rmse": 5.5, "mae": 4.0, "r2": 0.85}, champion=None)
    assert headline(report) == f"## {PASSING}: no champion to compare with (challenger only)"
    md = render_markdown(report)
    assert "| metric | challenger |" in md and "| mse | 30 |" in md
    assert "champion v1" not in md


def test_run_without_model_and_missing_run_are_failing():
    failed = RunRecord("r", Path("/r"), "failed", error="step 'validate' failed (exit 1)")
    assert headline(Report(run=failed)) == (
        f"## {FAILING}: the pipeline did not produce a model (step 'validate' failed (exit 1))"
    )
    assert not passing(Report(run=failed))
    assert headline(Report(run=None)) == f"## {FAILING}: no pipeline run found"
    md = render_markdown(Report(run=None))
    assert "### Quality gate" in md and f"### Data validation: {NOT_RUN}" in md


def test_lineage_lists_both_sides_and_the_params_that_differ():
    report = scored({"mse": 30.0, "rmse": 5.5, "mae": 4.0, "r2": 0.85})
    report = Report(
        **{
            **report.__dict__,
            "champion_lineage": Lineage(
                "a" * 40, "b" * 64, "o.csv", "r1", "v1 Approved", {"train": {"eta": 0.05}}
            ),
            "challenger_lineage": Lineage(
                "c" * 40, "d" * 64, "n.csv", "r2", "v2 Pending", {"train": {"eta": 0.1}}
            ),
        }
    )
    md = render_markdown(report)
    assert "| | champion v1 | challenger |" in md
    assert f"| git commit | `{'a' * 12}` | `{'c' * 12}` |" in md
    assert "| `train.eta` | `0.05` | `0.1` |" in md


def test_run_url_only_inside_github_actions():
    env = {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_RUN_ID": "42",
    }
    assert run_url(env) == "https://github.com/o/r/actions/runs/42"
    assert run_url({**env, "GITHUB_RUN_ID": ""}) == ""
    assert run_url({}) == ""


def test_data_sections_from_a_reports_dir(tmp_path):
    assert read_data_section(tmp_path, "validation", "Data validation").status == NOT_RUN
    (tmp_path / "validation.json").write_text(
        json.dumps({"success": False, "summary": "2 of 30 failed"})
    )
    section = read_data_section(tmp_path, "validation", "Data validation")
    assert (section.status, section.summary) == ("failed", "2 of 30 failed")
    assert data_section_lines(section) == ["### Data validation: ❌ failed", "", "2 of 30 failed"]
    (tmp_path / "validation.md").write_text(
        "### Data validation: ❌ 2 of 30 expectations failed\n\n| a |\n"
    )
    embedded = data_section_lines(read_data_section(tmp_path, "validation", "Data validation"))
    assert embedded == ["### Data validation: ❌ 2 of 30 expectations failed\n\n| a |"]
    (tmp_path / "drift.json").write_text(json.dumps({"drifted": True, "summary": "1 feature"}))
    assert read_data_section(tmp_path, "drift", "Data drift").status == "drift"
    (tmp_path / "drift.json").write_text("{not json")
    assert read_data_section(tmp_path, "drift", "Data drift").status == "unreadable"


def test_latest_run_is_the_newest_with_a_run_json(tmp_path):
    runs = tmp_path / "runs"
    for run_id, done in (
        ("20250101-000000-aaaaaa", True),
        ("20250102-000000-bbbbbb", True),
        ("20250103-000000-cccccc", False),
    ):
        (runs / run_id).mkdir(parents=True)
        if done:
            (runs / run_id / "run.json").write_text(
                json.dumps(
                    {
                        "run_id": run_id,
                        "status": "failed",
                        "error": "quality gate failed",
                        "gate": {"passed": False, "checks": ["mse 9 <= 8: FAILED"]},
                    }
                )
            )
    assert latest_run_dir(tmp_path).name == "20250102-000000-bbbbbb"
    record = read_run(latest_run_dir(tmp_path))
    assert (record.status, record.gate_checks, record.version) == (
        "failed",
        ("mse 9 <= 8: FAILED",),
        None,
    )
    assert read_run(runs / "20250103-000000-cccccc").status == "running"
    assert latest_run_dir(tmp_path / "empty") is None


def test_align_reorders_columns_for_a_model_with_another_feature_order():
    X = np.array([[1.0, 2.0, 3.0]])
    assert align(X, ["a", "b", "c"], ["c", "a", "b"]).tolist() == [[3.0, 1.0, 2.0]]
    assert align(X, ["a", "b", "c"], ["a", "b", "c"]) is X


def test_an_oversized_report_keeps_the_data_checks_summaries_only():
    long_body = "### Data validation: ❌ 900 of 900 expectations failed\n\n" + "| row |\n" * 20_000
    report = Report(
        run=None,
        validation=DataSection("Data validation", "failed", long_body, "900 of 900 failed"),
    )
    assert len(render_markdown(report, max_chars=10**9)) > 100_000
    md = render_markdown(report)
    assert len(md) < 2_000
    assert "### Data validation: ❌ failed\n\n900 of 900 failed" in md


def test_new_data_drift_against_the_champion_and_what_was_skipped():
    row = {"feature": "prediction", "psi": 0.4123, "bins": 10, "baseline_mean": 0.41,
           "current_mean": 0.68, "missing": 0, "drifted": True}  # fmt: skip
    section = {"version": 1, "rows": 800, "threshold": 0.2, "target": None, "prediction": row,
               "skipped": ["target drift skipped: the baseline has no target statistics"]}  # fmt: skip
    md = render_markdown(
        replace(scored({"mse": 30.0, "rmse": 5.5, "mae": 4.0, "r2": 0.85}), champion_drift=section)
    )
    text = md.split("### Drift of the new data against champion v1\n", 1)[1]
    assert "The challenger run's 800 held-out rows" in text and "PSI threshold 0.2." in text
    assert "| prediction (champion v1) | 0.412 | 0.41 | 0.68 | ⚠️ yes |" in text
    assert "| target" not in text
    assert "\ntarget drift skipped: the baseline has no target statistics.\n" in text
    assert "### Drift of the new data" not in render_markdown(
        scored({"mse": 30.0, "rmse": 5.5, "mae": 4.0, "r2": 0.85})
    )
