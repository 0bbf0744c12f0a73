"""preprocess: split sizes and disjointness, XGBoost CSV layout, baseline statistics."""

import json

import numpy as np
import pandas as pd
import preprocess
import pytest
from fixture_project.generate import COLUMNS, generate_buildings

FEATURES = COLUMNS[:-1]


def test_split_sizes_disjoint_and_deterministic():
    df = generate_buildings(1000, seed=1).reset_index(names="row")
    s = preprocess.split_data(df, 0.6, 0.2, seed=42)
    assert (len(s.train), len(s.validation), len(s.test)) == (600, 200, 200)
    rows = [set(part.row) for part in (s.train, s.validation, s.test)]
    assert set.union(*rows) == set(range(1000))
    assert not rows[0] & rows[1] and not rows[0] & rows[2] and not rows[1] & rows[2]
    again = preprocess.split_data(df, 0.6, 0.2, seed=42)
    pd.testing.assert_frame_equal(s.test, again.test)


def test_split_refuses_too_few_rows():
    with pytest.raises(ValueError, match="too few"):
        preprocess.split_data(generate_buildings(3, seed=1), 0.6, 0.2, seed=1)


def test_baseline_statistics_bins_hold_the_training_proportions():
    train = generate_buildings(5000, seed=3)
    stats = preprocess.baseline_statistics(train, FEATURES)
    sqft = stats["features"]["FLOOR_AREA"]
    assert len(sqft["bin_edges"]) == 9 and len(sqft["proportions"]) == 10
    assert sum(sqft["proportions"]) == pytest.approx(1.0)
    assert all(p == pytest.approx(0.1, abs=0.01) for p in sqft["proportions"])
    assert sqft["mean"] == pytest.approx(train.FLOOR_AREA.mean())
    deck = stats["features"]["HAS_SHADE"]  # binary: few distinct edges, still sums to 1
    assert sum(deck["proportions"]) == pytest.approx(1.0)


def test_main_writes_xgboost_layout(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    generate_buildings(500, seed=2).to_csv(raw / "data.csv", index=False)
    out = tmp_path / "out"
    argv = [
        "--features", ",".join(FEATURES), "--target", "ANNUAL_COST",
        "--train-ratio", "0.6", "--validation-ratio", "0.2", "--raw-dir", str(raw),
    ]  # fmt: skip
    for name in ("train", "validation", "test", "baseline"):
        argv += [f"--{name}-dir", str(out / name)]
    preprocess.main(argv)
    train = pd.read_csv(out / "train" / "train.csv", header=None)
    assert train.shape == (300, 9)
    assert train[0].min() > 10_000  # target first: prices, not years
    assert np.issubdtype(train[0].dtype, np.number)
    baseline = json.loads((out / "baseline" / "baseline.json").read_text())
    assert baseline["rows"] == 300 and set(baseline["features"]) == set(FEATURES)
    target = baseline["target"]  # for target drift: the training target, binned as a feature
    assert target["name"] == "ANNUAL_COST" and target["count"] == 300
    assert target["mean"] == pytest.approx(train[0].mean())
    assert sum(target["proportions"]) == pytest.approx(1.0) and len(target["bin_edges"]) == 9


def test_read_raw_names_missing_columns(tmp_path):
    generate_buildings(50, seed=1).drop(columns="ANNUAL_COST").to_csv(
        tmp_path / "d.csv", index=False
    )
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['ANNUAL_COST'\]"):
        preprocess.read_raw(tmp_path, COLUMNS)


def test_model_monitor_baseline_follows_its_schema():
    rng = np.random.default_rng(5)
    train = pd.DataFrame(
        {"count_col": rng.integers(0, 5, 3000), "real_col": rng.normal(-1.0, 2.0, 3000)}
    )
    statistics, constraints = preprocess.model_monitor_baseline(train, ["count_col", "real_col"])
    assert statistics["dataset"] == {"item_count": 3000}
    counts, reals = statistics["features"]
    assert (counts["inferred_type"], reals["inferred_type"]) == ("Integral", "Fractional")
    num = reals["numerical_statistics"]
    assert num["common"] == {"num_present": 3000, "num_missing": 0}
    assert num["mean"] == pytest.approx(train.real_col.mean())
    assert num["std_dev"] == pytest.approx(train.real_col.std(ddof=0))
    kll = num["distribution"]["kll"]
    assert len(kll["buckets"]) == 10 and sum(b["count"] for b in kll["buckets"]) == 3000
    assert kll["buckets"][0]["lower_bound"] == num["min"]
    assert kll["buckets"][-1]["upper_bound"] == num["max"]
    (level,) = kll["sketch"]["data"]
    assert len(level) == preprocess.KLL_K and level == sorted(level)
    assert [c["num_constraints"]["is_non_negative"] for c in constraints["features"]] == [
        True,
        False,
    ]
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_method"] == (
        "Robust"
    )
    json.dumps([statistics, constraints])  # plain JSON, as the analyzer reads it
