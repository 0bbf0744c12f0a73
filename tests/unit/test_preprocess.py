"""preprocess: split sizes and disjointness, raw splits in the input's format, quarantined
rows left out, baseline statistics."""

import json

import numpy as np
import pandas as pd
import preprocess
import pytest
from fixture_project.generate import COLUMNS, FEATURES, TARGET, generate_buildings
from hypothesis import given, settings
from hypothesis import strategies as st

from stepkit.baseline import KLL_K, baseline_statistics, model_monitor_baseline
from stepkit.rows import typed_frame


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
    stats = baseline_statistics(train, FEATURES)
    sqft = stats["features"]["FLOOR_AREA"]
    assert len(sqft["bin_edges"]) == 9 and len(sqft["proportions"]) == 10
    assert sum(sqft["proportions"]) == pytest.approx(1.0)
    assert all(p == pytest.approx(0.1, abs=0.01) for p in sqft["proportions"])
    assert sqft["mean"] == pytest.approx(train.FLOOR_AREA.mean())
    deck = stats["features"]["HAS_SHADE"]  # binary: few distinct edges, still sums to 1
    assert sum(deck["proportions"]) == pytest.approx(1.0)


def run_main(raw, out, *extra):
    argv = [
        "--features", ",".join(FEATURES), "--target", TARGET,
        "--train-ratio", "0.6", "--validation-ratio", "0.2", "--raw-dir", str(raw), *extra,
    ]  # fmt: skip
    for name in ("train", "validation", "test", "baseline"):
        argv += [f"--{name}-dir", str(out / name)]
    preprocess.main(argv)


def test_main_writes_raw_splits_as_the_input_wrote_them(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    source = generate_buildings(500, seed=2)
    source.loc[3, "GLAZING_RATIO"] = np.nan  # an empty field stays empty
    source.to_csv(raw / "data.csv", index=False)
    out = tmp_path / "out"
    run_main(raw, out)
    text = {
        name: (out / name / f"{name}.csv").read_text() for name in ("train", "validation", "test")
    }
    assert all(t.splitlines()[0] == ",".join(COLUMNS) for t in text.values())
    rows = sorted(line for t in text.values() for line in t.splitlines()[1:])
    written = sorted((raw / "data.csv").read_text().splitlines()[1:])
    assert rows == written  # every input line, byte for byte, in exactly one split
    train = pd.read_csv(out / "train" / "train.csv")
    assert len(train) == 300
    baseline = json.loads((out / "baseline" / "baseline.json").read_text())
    assert baseline["rows"] == 300 and set(baseline["features"]) == set(FEATURES)
    target = baseline["target"]  # for target drift: the training target, binned as a feature
    assert target["name"] == TARGET and target["count"] == 300
    assert target["mean"] == pytest.approx(train[TARGET].mean())
    assert sum(target["proportions"]) == pytest.approx(1.0) and len(target["bin_edges"]) == 9
    for name in ("statistics.json", "constraints.json"):
        assert json.loads((out / "baseline" / name).read_text())


def test_one_file_per_training_instance_holds_each_row_once(tmp_path):
    """--shards N (training_instance_count): each split as N files, every row of the one-file
    split in exactly one of them, by a hash of its values (the same row, the same file)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    generate_buildings(600, seed=4).to_csv(raw / "data.csv", index=False)
    run_main(raw, tmp_path / "one")
    run_main(raw, tmp_path / "three", "--shards", "3")
    for name in ("train", "validation", "test"):
        whole = (tmp_path / "one" / name / f"{name}.csv").read_text().splitlines()
        files = sorted((tmp_path / "three" / name).glob("*.csv"))
        assert [f.name for f in files] == [f"{name}-0{k}.csv" for k in (1, 2, 3)]
        parts = [f.read_text().splitlines() for f in files]
        assert all(p[0] == whole[0] and len(p) > 1 for p in parts)  # a header, and rows
        assert sorted(r for p in parts for r in p[1:]) == sorted(whole[1:])


def test_main_leaves_out_the_rows_validate_quarantined(tmp_path):
    raw, quarantine = tmp_path / "raw", tmp_path / "quarantine"
    raw.mkdir()
    quarantine.mkdir()
    source = generate_buildings(500, seed=2)
    source.to_csv(raw / "data.csv", index=False)
    (quarantine / "rows.json").write_text(json.dumps([0, 17]))
    out = tmp_path / "out"
    run_main(raw, out, "--quarantine-dir", str(quarantine))
    kept = pd.concat(pd.read_csv(out / n / f"{n}.csv") for n in ("train", "validation", "test"))
    assert len(kept) == 498
    left_out = source.iloc[[0, 17]]
    assert kept.merge(left_out, how="inner").empty


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
    typed, _ = typed_frame(train, ["count_col", "real_col"], [])
    statistics, constraints = model_monitor_baseline(typed, ["count_col", "real_col"], 0)
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
    assert len(level) == KLL_K and level == sorted(level)
    assert [c["num_constraints"]["is_non_negative"] for c in constraints["features"]] == [
        True,
        False,
    ]
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_method"] == (
        "Robust"
    )
    json.dumps([statistics, constraints])  # plain JSON, as the analyzer reads it


SPELLINGS = ["", " ", "NA", "n/a", "null", "None", "nan", "NaN", "-nan", "inf", "-Infinity",
             "1e400", "1", "1.0", " 2 ", "abc", "yes", "0x10", "1_000", "1e5", "+3", "٣",
             "  nan  ", "NULL", "none ", "-0", "1,5"]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(SPELLINGS), st.text(max_size=8),
                          st.floats().map(str)), min_size=1))  # fmt: skip
def test_without_target_is_the_per_value_rule_whatever_the_values(values):
    """The vectorised rule (finite numbers first) answers as category_key value by value."""
    from stepkit.rows import MISSING_NUMBER_TEXT, category_key

    def missing(value: str) -> bool:
        key = category_key(value)
        return key is None or key.lower() in MISSING_NUMBER_TEXT

    column = pd.Series(values, dtype="str")
    assert preprocess.without_target(column).tolist() == [missing(v) for v in values]
