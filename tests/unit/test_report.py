"""The PR report: its numbers are evaluation.json's and its verdict the declared gate's on
it (mlops.core.report, pure), and the local backend builds it from a run's evaluate
outputs without loading a model (mlops.local.report)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _report_runs import register_champion, scorer, write_run
from fixture_project.generate import TARGET, generate_buildings

from mlops.core import run_layout
from mlops.core.config import load_config
from mlops.core.gate import check_gate
from mlops.core.graph import Param, Rule, load_pipeline
from mlops.core.registry import metrics_from_evaluation
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
    confusion_of,
    data_section_lines,
    from_evaluation,
    headline,
    metric_rows,
    params_diff,
    passing,
    read_data_section,
    render_markdown,
    run_url,
)
from mlops.core.report_format import human
from mlops.local.report import build_report, latest_run_dir, read_run

SECTION = "regression_metrics"
GATE = (  # a project's declared gate: two floors and the champion check
    Rule("mse", f"{SECTION}.mse.value", "<=", Param("MaxMse", 100.0)),
    Rule("r2", f"{SECTION}.r2.value", ">=", Param("MinR2", 0.5)),
    Rule("mse vs champion", f"{SECTION}.mse.value", "<=", "champion_mse_limit", "champion"),
)
CHAMPION = {"mse": 40.0, "rmse": math.sqrt(40.0), "mae": 5.0, "r2": 0.8}
RUN = RunRecord("20250101-000000-abcdef", Path("/runs/x"), "registered", version=2)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def evaluation(challenger: dict, champion: dict | None = CHAMPION, pct: float = 5.0) -> dict:
    """evaluation.json as the evaluate step writes it for these metrics."""
    found = {SECTION: {k: {"value": v, "standard_deviation": "NaN"} for k, v in challenger.items()}}
    found["rows"] = 100
    if champion:
        found["champion"] = evaluation(champion, None)
        found["champion_mse_limit"] = champion["mse"] * (1 + pct / 100)
    return found


def scored(challenger: dict, champion: dict | None = CHAMPION) -> Report:
    return from_evaluation(
        RUN,
        evaluation(challenger, champion),
        GATE,
        champion_version=1 if champion else None,
        allowed_regression_pct=5.0,
        challenger_lineage=Lineage("c" * 40, "d" * 64, "new.csv", RUN.run_id, "v2 Pending", {}),
        champion_lineage=Lineage("a" * 40, "b" * 64, "old.csv", "r1", "v1 Approved", {})
        if champion
        else None,
    )


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
    assert rows["mae"].delta == pytest.approx(-1.0)
    assert rows["mae"].delta_pct == pytest.approx(-20.0) and rows["mae"].change == "better"
    assert rows["r2"].delta == pytest.approx(-0.1) and rows["r2"].delta_pct == pytest.approx(-12.5)


def test_metric_rows_without_champion_have_no_deltas():
    rows = metric_rows({"mse": 50.0, "r2": 0.7}, None)
    assert [(r.name, r.champion, r.delta, r.change) for r in rows] == [
        ("mse", None, None, ""),
        ("r2", None, None, ""),
    ]


def test_the_report_holds_evaluation_json_numbers_as_written():
    ev = evaluation({"mse": 41.5, "rmse": 6.44, "mae": 5.1, "r2": 0.79})
    ev["intervals"] = {"mse": [30.25, 52.5], "r2": [0.7, 0.85]}
    report = from_evaluation(RUN, ev, GATE)
    assert report.challenger == {"mse": 41.5, "rmse": 6.44, "mae": 5.1, "r2": 0.79}
    assert report.champion == CHAMPION
    assert report.intervals == {"mse": (30.25, 52.5), "r2": (0.7, 0.85)}
    assert report.rows == 100 and report.confusion is None
    assert report.verdict == check_gate(ev, GATE)


@pytest.mark.parametrize(("mse", "passed"), [(41.9, True), (42.0, True), (42.1, False)])
def test_the_verdict_is_the_declared_gate_on_the_evaluate_steps_limit(mse, passed):
    verdict = scored({"mse": mse, "r2": 0.8}).verdict  # limit 40 * 1.05 = 42, as evaluate wrote
    assert verdict.passed is passed
    assert [c.metric for c in verdict.checks] == ["mse", "r2", "mse vs champion"]


def test_without_champion_the_gate_checks_thresholds_only():
    verdict = scored({"mse": 500.0, "r2": 0.9}, champion=None).verdict
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
    assert headline(report) == (
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
    assert "- no champion: the comparison check did not apply" in md


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
    report = replace(
        scored({"mse": 30.0, "rmse": 5.5, "mae": 4.0, "r2": 0.85}),
        champion_lineage=Lineage(
            "a" * 40, "b" * 64, "o.csv", "r1", "v1 Approved", {"train": {"eta": 0.05}}
        ),
        challenger_lineage=Lineage(
            "c" * 40, "d" * 64, "n.csv", "r2", "v2 Pending", {"train": {"eta": 0.1}}
        ),
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


def test_data_sections_from_a_report_dir(tmp_path):
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
                        "champion_version": 3,
                    }
                )
            )
    assert latest_run_dir(tmp_path).name == "20250102-000000-bbbbbb"
    record = read_run(latest_run_dir(tmp_path))
    assert (record.status, record.gate_checks, record.version, record.champion_version) == (
        "failed",
        ("mse 9 <= 8: FAILED",),
        None,
        3,
    )
    assert read_run(runs / "20250103-000000-cccccc").status == "running"
    assert latest_run_dir(tmp_path / "empty") is None


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


# ---------------------------------------------------------------- built from a run


def noisy(y: np.ndarray, sd: float, seed: int) -> np.ndarray:
    return y + np.random.default_rng(seed).normal(0, sd, len(y))


@pytest.fixture
def champion_home(home):
    """A home whose approved version 1 was evaluated on 600 rows (predictions off by ~4 k)."""
    cfg = load_config()
    pipeline = load_pipeline(cfg)
    rows = generate_buildings(600, seed=1)
    champion = scorer(noisy(rows[TARGET].to_numpy(), 4000, 2), TARGET)
    version = register_champion(home, cfg.model_package_group, pipeline, rows, champion)
    return home, cfg, pipeline, version


def test_the_report_is_the_runs_evaluate_outputs_and_loads_no_model(champion_home, tmp_path):
    """A challenger run on dearer buildings (costs 30 % up), its evaluate step having scored
    the champion beside it. Every model archive holds a manifest and nothing else."""
    home, cfg, pipeline, champion = champion_home
    rows = generate_buildings(500, seed=5)
    rows[TARGET] *= 1.3
    y = rows[TARGET].to_numpy()
    champion_on_new = noisy(y / 1.3, 4000, 6)  # it learned the old costs
    run_dir = write_run(
        home, pipeline, "20250102-000000-chall1", rows,
        scorer(noisy(y, 3000, 7), TARGET), scorer(champion_on_new, TARGET),
        record={"champion_version": champion.version},
    )  # fmt: skip
    newer = scorer(noisy(rows[TARGET].to_numpy(), 2000, 8), TARGET)  # approved after the run
    register_champion(home, cfg.model_package_group, pipeline, rows, newer, run_id="later")
    plots = tmp_path / "plots"

    report = build_report(cfg, home, run_dir, tmp_path / "reports", plots, {})

    folder = run_layout.evaluation_folder(home, run_dir.name, pipeline)
    ev = json.loads((folder / run_layout.EVALUATION_FILE).read_text())
    assert report.challenger == metrics_from_evaluation(ev)
    assert report.champion == metrics_from_evaluation(ev["champion"])
    assert report.intervals == {k: tuple(v) for k, v in ev["intervals"].items()}
    assert report.verdict == check_gate(ev, pipeline.gate)
    assert report.rows == len(rows) == ev["rows"]
    assert report.champion_version == champion.version == 1  # the one it was compared with
    assert report.champion_lineage.registry == "v1 Approved"
    md = render_markdown(report)
    for name, value in ev[SECTION].items():
        old = ev["champion"][SECTION][name]["value"]
        assert f"| {name} | {human(old)} | {human(value['value'])} |" in md
    assert headline(report).startswith(f"## {PASSING}: mse")  # the champion misses the rise
    drift = report.champion_drift
    assert drift["target"]["drifted"] and drift["target"]["psi"] > 0.5  # costs moved
    assert not drift["prediction"]["drifted"]  # the champion's own answers did not
    assert drift["skipped"] == []
    assert md.count("xychart-beta") == 2
    for name in ("predicted_vs_actual.png", "residuals.png"):
        assert (plots / name).read_bytes().startswith(PNG_MAGIC)


def test_a_run_without_a_recorded_champion_compares_with_the_approved_one(champion_home, tmp_path):
    home, cfg, pipeline, champion = champion_home
    rows = generate_buildings(300, seed=8)
    y = rows[TARGET].to_numpy()
    run_dir = write_run(
        home, pipeline, "20250102-000000-chall2", rows,
        scorer(noisy(y, 3000, 9), TARGET), scorer(noisy(y, 4000, 10), TARGET),
    )  # fmt: skip
    report = build_report(cfg, home, run_dir, tmp_path / "reports", None, {})
    assert report.champion_version == champion.version and report.champion is not None
    assert report.plots == () and report.plots_note == ""  # no plots dir asked for


def test_a_run_whose_evaluate_step_scored_no_champion_is_reported_alone(champion_home, tmp_path):
    home, cfg, pipeline, _ = champion_home
    rows = generate_buildings(300, seed=11)
    run_dir = write_run(
        home, pipeline, "20250102-000000-chall3", rows,
        scorer(noisy(rows[TARGET].to_numpy(), 3000, 12), TARGET),
        record={"champion_version": None},
    )  # fmt: skip
    report = build_report(cfg, home, run_dir, tmp_path / "reports", None, {})
    assert report.champion is None and report.champion_drift is None
    assert "No approved champion yet: the challenger is reported alone." in render_markdown(report)


def test_a_run_stopped_before_evaluation_has_no_metrics(home, tmp_path):
    run_dir = run_layout.run_dir(home, "20250102-000000-stop01")
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(
        json.dumps({"run_id": run_dir.name, "status": "failed", "error": "step 'train' failed"})
    )
    report = build_report(load_config(), home, run_dir, tmp_path / "reports", None, {})
    assert report.challenger is None and report.verdict is None
    assert headline(report) == (
        f"## {FAILING}: the pipeline did not produce a model (step 'train' failed)"
    )


def test_a_classifiers_confusion_matrix_is_the_evaluate_steps():
    ev = {"binary_classification_metrics": {"confusion_matrix": {"0": {"0": 50, "1": 7},
                                                                 "1": {"0": 9, "1": 34}}}}  # fmt: skip
    assert confusion_of(ev) == {"tn": 50, "fp": 7, "fn": 9, "tp": 34}
    assert confusion_of({SECTION: {}}) is None


def test_a_champion_evaluate_could_not_score_is_explained_not_called_missing():
    from types import SimpleNamespace

    from mlops.local.report import champion_note

    note = "the champion was not scored: these rows lack its feature(s) ['X']"
    assert (
        champion_note({"champion_note": note}, SimpleNamespace(version=3))
        == f"Champion v3: {note}."
    )
    assert champion_note({}, None).startswith("No approved champion yet")
    assert champion_note({"champion": {"regression_metrics": {}}}, None) == ""
