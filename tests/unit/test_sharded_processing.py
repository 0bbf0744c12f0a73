"""processing_instance_count > 1, offline: the real validate and preprocess steps run on three
shards of a messy file (three fake hosts, each with its own resource config), and what the
merges make of their parts equals what one host makes of the whole file: the validation
report, the splits' rows, and the training baseline (exact but for the quantile summary,
which is exact too while a part holds at most SUMMARY_POINTS values)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import preprocess
import pytest
import validate
from fixtures.tasks import RENT_CONFIG, project_config, rent_frame

from mlops.core.config import load_config
from stepkit.baseline import baseline_statistics, model_monitor_baseline
from stepkit.baseline_merge import (
    baseline_part,
    merged_baseline,
    merged_summary,
    quantile_summary,
    weighted_quantiles,
)
from stepkit.distributed import row_shards
from stepkit.rows import typed_frame
from stepkit.splits import read_split

HOSTS = ["algo-1", "algo-2", "algo-3"]
SPLITS = ("train", "validation", "test")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The rent fixture project's config, a suite with more to merge (a `mostly`, a mean),
    and a messy file of its columns: numbers and text missing, rows without a target."""
    folder = tmp_path_factory.mktemp("sharded")
    cfg = load_config(project_config(RENT_CONFIG, folder / "config"))
    suite = json.loads(cfg.suite_file.read_text())
    numbers = [f for f in cfg.data.features if f not in cfg.data.categorical_features]
    text = cfg.data.categorical_features[0]
    suite["expectations"] += [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": text, "mostly": 0.9}},
        {"type": "expect_column_mean_to_be_between",
         "kwargs": {"column": numbers[0], "min_value": 0, "max_value": 1e9}},
    ]  # fmt: skip
    (folder / "suite.json").write_text(json.dumps(suite))
    frame = rent_frame(3000, seed=11)[cfg.columns].astype(object)
    rng = np.random.default_rng(5)
    for column, share in ((numbers[0], 0.04), (numbers[-1], 0.02), (text, 0.05)):
        frame.loc[rng.random(len(frame)) < share, column] = None
    frame.loc[rng.choice(len(frame), 7, replace=False), cfg.data.target] = None
    whole = folder / "whole"
    whole.mkdir()
    frame.to_csv(whole / "data.csv", index=False)
    read = pd.read_csv(whole / "data.csv", dtype=str, keep_default_na=False)
    shard = row_shards(read, len(HOSTS))
    for k, host in enumerate(HOSTS):  # the input's files, shared out by S3 key
        (folder / host).mkdir()
        read[shard == k].to_csv(folder / host / f"data-{k}.csv", index=False)
        config = {"current_host": host, "hosts": HOSTS}
        (folder / f"{host}.json").write_text(json.dumps(config))
    return cfg, folder


def test_merged_validation_equals_the_whole_files(project, tmp_path):
    _, folder = project
    suite = ["--suite-dir", str(folder / "suite.json")]
    parts = tmp_path / "parts"
    for host in HOSTS:
        code = validate.main(["--part", "--raw-dir", str(folder / host), "--report-dir",
                              str(parts), "--resource-config", str(folder / f"{host}.json"),
                              *suite])  # fmt: skip
        assert code == 0  # a share has no verdict
    assert sorted(p.name for p in parts.iterdir()) == [f"shard-{h}.json" for h in HOSTS]
    merged = validate.main(["--merge", "--parts-dir", str(parts), "--report-dir",
                            str(tmp_path / "merged"), "--quarantine-dir", str(tmp_path / "q"),
                            *suite])  # fmt: skip
    whole = validate.main(["--raw-dir", str(folder / "whole"), "--report-dir",
                           str(tmp_path / "whole"), "--quarantine-dir", str(tmp_path / "wq"),
                           "--max-quarantined-pct", "0", *suite])  # fmt: skip
    assert merged == whole == validate.EXIT_FAILED  # the messy rows break the suite
    got, want = (json.loads((tmp_path / d / "validation.json").read_text())
                 for d in ("merged", "whole"))  # fmt: skip
    for key in ("success", "rows", "columns", "evaluated", "failed"):
        assert got[key] == want[key], key
    assert want["rows"] == 3000 and want["failed"] >= 3
    for a, b in zip(got["failures"], want["failures"], strict=True):
        for key in ("expectation", "column", "observed", "unexpected_count", "expected"):
            assert a[key] == b[key], (b["expectation"], key)
        assert a["unexpected_percent"] == pytest.approx(b["unexpected_percent"])
    assert (tmp_path / "merged" / "validation.md").is_file()


def assert_close(got, want, where: str = "") -> None:
    """Equal documents, numbers to float rounding (a mean of parts is summed in another order)."""
    if isinstance(want, dict):
        assert set(got) == set(want), where
        for key in want:
            assert_close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_close(a, b, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12), where
    else:
        assert got == want, where


def preprocess_args(cfg, *extra: str) -> list[str]:
    return ["--features", ",".join(cfg.data.features), "--target", cfg.data.target,
            "--categorical", ",".join(cfg.data.categorical_features),
            "--train-ratio", str(cfg.preprocess.train_ratio),
            "--validation-ratio", str(cfg.preprocess.validation_ratio),
            "--seed", str(cfg.preprocess.seed), *extra]  # fmt: skip


def folders(out: Path) -> list[str]:
    return [a for name in (*SPLITS, "baseline") for a in (f"--{name}-dir", str(out / name))]


def test_sharded_splits_and_merged_baseline_equal_one_hosts(project, tmp_path):
    cfg, folder = project
    out = tmp_path / "sharded"
    for host in HOSTS:
        preprocess.main(preprocess_args(cfg, "--part", "--raw-dir", str(folder / host),
                                        "--resource-config", str(folder / f"{host}.json"),
                                        *folders(out)))  # fmt: skip
    assert sorted(p.name for p in (out / "train").iterdir()) == [f"train-{h}.csv" for h in HOSTS]
    preprocess.main(["--merge", "--parts-dir", str(out / "baseline"),
                     "--baseline-dir", str(tmp_path / "merged")])  # fmt: skip

    # The same rows in the same splits as one host hash-splitting the whole file.
    raw = preprocess.read_raw(folder / "whole", cfg.columns)
    raw = raw[~preprocess.without_target(raw[cfg.data.target])].reset_index(drop=True)
    one = preprocess.hash_split(raw, cfg.preprocess.train_ratio, cfg.preprocess.validation_ratio,
                                cfg.preprocess.seed)  # fmt: skip
    for name in SPLITS:
        got = read_split(out / name).sort_values(cfg.columns).reset_index(drop=True)
        want = getattr(one, name).sort_values(cfg.columns).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want)
    share = len(one.train) / len(raw)
    assert share == pytest.approx(cfg.preprocess.train_ratio, abs=0.03)

    # The baseline of that training split, as one host writes it.
    features, text = cfg.data.features, tuple(cfg.data.categorical_features)
    typed, _ = typed_frame(one.train[features], features, text)
    want = baseline_statistics(typed, features, text, one.train[cfg.data.target], cfg.task)
    statistics, constraints = model_monitor_baseline(typed, features, 0, text)
    got = json.loads((tmp_path / "merged" / "baseline.json").read_text())
    assert got["rows"] == want["rows"] == len(one.train)
    for name, expected in [*want["features"].items(), ("target", want["target"])]:
        merged = got["target"] if name == "target" else got["features"][name]
        assert_close(merged, expected, name)
    assert json.loads((tmp_path / "merged" / "constraints.json").read_text()) == constraints
    merged_stats = json.loads((tmp_path / "merged" / "statistics.json").read_text())
    assert merged_stats["dataset"] == statistics["dataset"]
    for a, b in zip(merged_stats["features"], statistics["features"], strict=True):
        name = b["name"]
        if "numerical_statistics" in b:
            a, b = a["numerical_statistics"], b["numerical_statistics"]
            a["distribution"]["kll"].pop("sketch")  # a sample of <= KLL_K values: not unique
            b["distribution"]["kll"].pop("sketch")
        assert_close(a, b, name)


def test_a_part_larger_than_the_summary_merges_within_its_rank_bound():
    """Past SUMMARY_POINTS values a part keeps that many order statistics: every merged
    quantile is within 1 / points of the whole's in rank."""
    rng = np.random.default_rng(3)
    parts = [rng.lognormal(3, 1, n) for n in (40_000, 25_000, 60_000)]
    whole = np.sort(np.concatenate(parts))
    points = 512
    values, weights = merged_summary([quantile_summary(p, points) for p in parts])
    q = np.linspace(0, 1, 101)
    merged = weighted_quantiles(values, weights, q)
    rank_error = np.abs(np.searchsorted(whole, merged) / whole.size - q)
    assert rank_error.max() <= 1 / points
    exact = weighted_quantiles(*merged_summary([quantile_summary(p[:300]) for p in parts]), q)
    assert exact == pytest.approx(np.quantile(np.concatenate([p[:300] for p in parts]), q))


def test_parts_of_other_columns_do_not_merge():
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    target = pd.Series([1.0, 2.0], name="t")
    one = baseline_part(frame, ["a", "b"], ("b",), target, "regression")
    other = baseline_part(frame[["a"]], ["a"], (), target, "regression")
    with pytest.raises(ValueError, match="different"):
        merged_baseline([one, other])
