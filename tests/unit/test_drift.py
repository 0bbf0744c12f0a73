"""Drift (PSI per feature) against the training baseline that preprocessing writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import preprocess
import pytest
from fixture_project.generate import generate_buildings

from mlops.cli import run
from mlops.core import drift
from mlops.core.config import load_config
from mlops.core.errors import UsageError

CFG = load_config()
FEATURES = CFG.data.features
THRESHOLD = CFG.drift.threshold


def training_baseline(rows: int = 4000, seed: int = 3) -> dict:
    """The baseline exactly as the pipeline makes it: statistics of the training split."""
    splits = preprocess.split_data(generate_buildings(rows, seed), 0.6, 0.2, seed=42)
    return preprocess.baseline_statistics(splits.train, FEATURES)


@pytest.fixture(scope="module")
def baseline() -> dict:
    return training_baseline()


def drifted(df: pd.DataFrame, baseline: dict) -> list[str]:
    results = drift.compare(drift.numeric_columns(df, FEATURES), baseline, THRESHOLD)
    return [r.feature for r in results if r.drifted]


def test_psi_values():
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0
    expected = 0.4 * math.log(0.9 / 0.5) + 0.4 * math.log(0.5 / 0.1)
    assert drift.psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(expected)
    # An empty bin counts as EPSILON: finite, and large when the mass moved there.
    assert drift.psi([1.0, 0.0], [0.0, 1.0]) == pytest.approx(2 * (1 - 1e-4) * math.log(1e4))


def test_bins_reproduce_the_baseline_proportions():
    """Binning training data with the baseline's edges gives its proportions back: PSI 0."""
    train = preprocess.split_data(generate_buildings(3000, 4), 0.6, 0.2, seed=42).train
    stats = preprocess.baseline_statistics(train, FEATURES)["features"]
    for name in FEATURES:
        values = train[name].to_numpy(dtype=float)
        props = drift.bin_proportions(values, stats[name]["bin_edges"])
        np.testing.assert_allclose(props, stats[name]["proportions"])
        assert drift.feature_drift(name, values, stats[name], THRESHOLD).psi == 0


def test_square_feet_times_1_3_is_flagged(baseline):
    fresh = generate_buildings(4000, seed=101)
    fresh["FLOOR_AREA"] *= 1.3
    assert drifted(fresh, baseline) == ["FLOOR_AREA"]


def test_binary_feature_shift_is_flagged(baseline):
    fresh = generate_buildings(4000, seed=102)
    fresh.loc[fresh.index[: len(fresh) * 9 // 10], "HAS_SHADE"] = 1  # ~95% with a deck, was ~50%
    assert drifted(fresh, baseline) == ["HAS_SHADE"]


def test_fresh_samples_from_the_same_generator_are_not_flagged(baseline):
    """20 seeds, at most one false alarm (the issue's bar); the PSI stays far below it."""
    alarms, worst = 0, 0.0
    for seed in range(1000, 1020):
        df = generate_buildings(1000, seed)  # the smallest file the suite accepts
        results = drift.compare(drift.numeric_columns(df, FEATURES), baseline, THRESHOLD)
        alarms += any(r.drifted for r in results)
        worst = max(worst, *(r.psi for r in results))
    assert alarms <= 1
    assert worst < THRESHOLD / 2


def test_missing_values_are_left_out_and_counted(baseline):
    df = generate_buildings(1500, seed=5)
    df.loc[:99, "GLAZING_RATIO"] = np.nan
    (lot,) = [
        r
        for r in drift.compare(drift.numeric_columns(df, FEATURES), baseline, THRESHOLD)
        if r.feature == "GLAZING_RATIO"
    ]
    assert lot.missing == 100 and not lot.drifted


def test_unusable_data_for_drift(baseline):
    with pytest.raises(UsageError, match="lacks baseline feature"):
        drift.compare(
            drift.numeric_columns(generate_buildings(50).drop(columns="HAS_SHADE"), FEATURES),
            baseline,
            0.2,
        )
    text = generate_buildings(50).astype({"HAS_SHADE": str})
    with pytest.raises(UsageError, match="'HAS_SHADE' is not numeric"):
        drift.numeric_columns(text, FEATURES)


def test_report_table_and_markdown(baseline):
    fresh = generate_buildings(2000, seed=7)
    fresh["FLOOR_AREA"] *= 1.3
    results = drift.compare(drift.numeric_columns(fresh, FEATURES), baseline, THRESHOLD)
    report = drift.drift_report(results, THRESHOLD, False, "new.csv", "b/baseline.json", 2000)
    assert report["drifted"] and report["summary"].startswith(
        "drift in 1 of 8 features (PSI > 0.2): FLOOR_AREA "
    )
    table = drift.render_table(report).splitlines()
    assert table[0].split() == ["FEATURE", "PSI", "BINS", "TRAIN", "MEAN", "MEAN", "DRIFT"]
    assert [line.split()[0] for line in table[1:]] == FEATURES
    md = drift.render_markdown(report)
    assert "1 of 8 features drifted" in md and "| `FLOOR_AREA` |" in md and "warning only" in md


# ------------------------------------------------------------------------- CLI


def _write_baseline(path: Path, baseline: dict) -> Path:
    path.write_text(json.dumps(baseline))
    return path


def test_cli_warns_or_fails_as_configured(baseline, tmp_path, config_file, capsys):
    base = _write_baseline(tmp_path / "baseline.json", baseline)
    shifted = tmp_path / "shifted.csv"
    df = generate_buildings(2000, seed=9)
    df["FLOOR_AREA"] *= 1.3
    df.to_csv(shifted, index=False)
    reports = tmp_path / "reports"
    argv = ["data", "drift", str(shifted), "--baseline", str(base), "--report-dir", str(reports)]

    assert run(argv) == 0  # shipped config: fail_on_drift false
    out, err = capsys.readouterr()
    assert "FLOOR_AREA" in out and err.startswith("warning: drift in 1 of 8 features")
    saved = json.loads((reports / "drift.json").read_text())
    assert saved["drifted"] and [f["feature"] for f in saved["features"] if f["drifted"]] == [
        "FLOOR_AREA"
    ]
    assert (reports / "drift.md").read_text().startswith("### Data drift: ⚠️ 1 of 8")

    strict = config_file(lambda c: c["drift"].update(fail_on_drift=True))
    assert run([*argv, "--config", str(strict)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: drift in 1 of 8 features") and err.count("\n") == 1

    loose = config_file(lambda c: c["drift"].update(fail_on_drift=True, threshold=5.0))
    assert run([*argv, "--config", str(loose)]) == 0
    assert "no drift: every feature's PSI <= 5" in capsys.readouterr().out


def test_cli_needs_a_baseline(home, data_csv, tmp_path, capsys):
    assert run(["data", "drift", str(data_csv), "--report-dir", str(tmp_path)]) == 2
    assert "no registered model version" in capsys.readouterr().err
    assert not home.exists()  # asking created no state
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert run(["data", "drift", str(data_csv), "--baseline", str(bad)]) == 2
    assert "has no 'features' statistics" in capsys.readouterr().err


def test_a_new_category_is_drift_and_the_same_mix_is_not():
    import pandas as pd

    from mlops.core.drift import baseline_columns, compare

    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {"plan": rng.choice(["basic", "pro"], 2000, p=[0.7, 0.3]), "x": rng.normal(size=2000)}
    )
    baseline = preprocess.baseline_statistics(train, ["plan", "x"], ("plan",))
    same = pd.DataFrame(
        {"plan": rng.choice(["basic", "pro"], 1000, p=[0.7, 0.3]), "x": rng.normal(size=1000)}
    )
    shifted = same.assign(plan=np.where(np.arange(1000) < 300, "gold", same.plan))
    (stable,) = [
        r for r in compare(baseline_columns(same, baseline), baseline, 0.2) if r.feature == "plan"
    ]
    (moved,) = [
        r
        for r in compare(baseline_columns(shifted, baseline), baseline, 0.2)
        if r.feature == "plan"
    ]
    assert stable.psi < 0.01 and not stable.drifted
    assert moved.drifted and moved.psi > 1.0  # 30 % of rows in a level training never saw
    assert moved.bins == 3 and moved.baseline_mean is None


def test_a_categorical_baseline_without_frequencies_is_refused(tmp_path):
    from mlops.core.drift import load_baseline

    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"features": {"plan": {"type": "categorical"}}}))
    with pytest.raises(UsageError, match="categorical feature 'plan' lacks frequencies"):
        load_baseline(path)
