"""Inputs and splits over data.stream_above_mb are read a chunk at a time by preprocess,
train and evaluate. Forced here on small messy files (threshold 0, chunks of CHUNK rows,
so every split spans several chunks): each streamed step's result equals what the step
makes of the whole file, as the bench at 10M rows relies on (bench/scale.py)."""

from __future__ import annotations

import json
from pathlib import Path

import evaluate
import families
import model_xgboost
import numpy as np
import pandas as pd
import preprocess
import pytest
import train
from fixtures.models import SMALL, Data, pack, train_argv
from fixtures.tasks import messy_subscription_data

import stepkit.splits
from mlops.core.config import load_config
from mlops.core.graph import load_pipeline
from stepkit.contract import FeatureSpec
from stepkit.splits import read_predictions, read_split

CHUNK = 300
SPLITS = ("train", "validation", "test")
# The messy churn export: a yes/no target missing on 6 rows, numbers missing at random,
# a mostly empty one, text columns with rare levels.
CHURN = Data(
    messy_subscription_data(3000, seed=4),
    ["contract", "area", "tickets", "months", "channel", "device", "discount"],
    "churned",
    ["contract", "area", "channel", "device"],
    "binary_classification",
)
UNLABELLED = set(np.flatnonzero(CHURN.frame[CHURN.target].isna()).tolist())
QUARANTINED = [0, 5, 17, 2999, min(UNLABELLED)]  # one row both quarantined and unlabelled


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(stepkit.splits, "CHUNK_ROWS", CHUNK)


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """The raw input folder (with a long free-text column that no step takes as a feature)
    and validate's quarantine beside it."""
    folder = tmp_path_factory.mktemp("streamed")
    frame = CHURN.frame.assign(note=["a long note, with commas\nand a line break " * 20] * 3000)
    (folder / "raw").mkdir()
    frame.to_csv(folder / "raw" / "data.csv", index=False)
    (folder / "quarantine").mkdir()
    (folder / "quarantine" / "rows.json").write_text(json.dumps(QUARANTINED))
    return folder


def run_preprocess(raw: Path, out: Path, *extra: str) -> None:
    argv = ["--features", ",".join(CHURN.features), "--target", CHURN.target,
            "--task", CHURN.task, "--categorical", ",".join(CHURN.text),
            "--train-ratio", "0.6", "--validation-ratio", "0.2", "--seed", "7",
            "--raw-dir", str(raw / "raw"), "--quarantine-dir", str(raw / "quarantine"),
            *extra]  # fmt: skip
    for name in (*SPLITS, "baseline"):
        argv += [f"--{name}-dir", str(out / name)]
    preprocess.main(argv)


@pytest.fixture(scope="module")
def splits(raw, tmp_path_factory) -> dict[str, Path]:
    """preprocess on the whole file, and streamed: {"whole": out, "streamed": out}."""
    out = tmp_path_factory.mktemp("splits")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stepkit.splits, "CHUNK_ROWS", CHUNK)
        run_preprocess(raw, out / "whole")
        run_preprocess(raw, out / "streamed", "--stream-above-mb", "0")
    return {"whole": out / "whole", "streamed": out / "streamed"}


def sorted_rows(folder: Path) -> pd.DataFrame:
    frame = read_split(folder)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_a_streamed_split_holds_the_rows_of_the_whole_files_split(splits):
    for name in SPLITS:
        pd.testing.assert_frame_equal(
            sorted_rows(splits["streamed"] / name), sorted_rows(splits["whole"] / name)
        )
    sizes = [len(read_split(splits["streamed"] / name)) for name in SPLITS]
    assert len(UNLABELLED) == 6
    assert sum(sizes) == 3000 - len(set(QUARANTINED) | UNLABELLED) == 3000 - 10
    labels = read_split(splits["streamed"] / "test")[CHURN.target].value_counts(normalize=True)
    train_labels = read_split(splits["streamed"] / "train")[CHURN.target]
    assert labels["yes"] == pytest.approx(train_labels.value_counts(normalize=True)["yes"],
                                          abs=0.01)  # stratified  # fmt: skip


def assert_same_features(got: dict, want: dict) -> None:
    """Baselines' feature statistics equal: numbers to float rounding (sums in another
    order), counts, levels and bin edges exactly (each chunk holds < 2,048 values)."""
    assert got["features"].keys() == want["features"].keys()
    for name, expected in want["features"].items():
        merged = got["features"][name]
        assert merged.keys() == expected.keys(), name
        for key, value in expected.items():
            if isinstance(value, float):
                assert merged[key] == pytest.approx(value, rel=1e-12), (name, key)
            else:
                assert merged[key] == value, (name, key)


def test_a_streamed_baseline_equals_the_whole_splits(splits):
    got, want = (json.loads((splits[k] / "baseline" / "baseline.json").read_text())
                 for k in ("streamed", "whole"))  # fmt: skip
    assert got["rows"] == want["rows"] == len(read_split(splits["whole"] / "train"))
    assert got["target"] == want["target"]
    assert_same_features(got, want)
    for name in ("statistics.json", "constraints.json"):
        assert json.loads((splits["streamed"] / "baseline" / name).read_text())["features"]


def test_a_target_with_a_third_value_is_refused_in_the_first_pass(raw, tmp_path):
    frame = pd.read_csv(raw / "raw" / "data.csv", dtype=str, keep_default_na=False)
    frame.loc[2000, CHURN.target] = "maybe"
    (tmp_path / "raw").mkdir()
    frame.to_csv(tmp_path / "raw" / "data.csv", index=False)
    (tmp_path / "quarantine").mkdir()
    with pytest.raises(ValueError, match="exactly two values; it has at least 3: maybe, no, yes"):
        run_preprocess(tmp_path, tmp_path / "out", "--stream-above-mb", "0")


def trained(splits: Path, out: Path, model: str, *extra: str) -> Path:
    train.main([*train_argv(CHURN, model, SMALL[model]),
                "--train", str(splits / "train"), "--validation", str(splits / "validation"),
                "--model-dir", str(out / "model"), "--output-data-dir", str(out / "output"),
                *extra])  # fmt: skip
    return out


@pytest.fixture(scope="module", params=["xgboost", "sklearn"])
def models(request, splits, tmp_path_factory) -> tuple[str, Path, Path]:
    """(family, whole, streamed): one model trained on the whole split, one streamed."""
    out = tmp_path_factory.mktemp(request.param)
    whole = trained(splits["whole"], out / "whole", request.param)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stepkit.splits, "CHUNK_ROWS", CHUNK)
        streamed = trained(splits["whole"], out / "streamed", request.param,
                           "--stream_above_mb", "0")  # fmt: skip
    return request.param, whole, streamed


def predictions_on_test(model_root: Path, splits: Path) -> np.ndarray:
    scorer = evaluate.load_archive(pack(model_root / "model", model_root), model_root / "loaded")
    return scorer.score(read_split(splits / "test"))


def test_a_streamed_training_split_trains_the_same_model(models, splits):
    _, whole, streamed = models
    for name in ("features.json",):  # features.fit saw every row (fewer than its sample)
        assert (streamed / "model" / name).read_text() == (whole / "model" / name).read_text()
    got, want = (json.loads((root / "model" / "manifest.json").read_text())
                 for root in (streamed, whole))  # fmt: skip
    assert got["class_labels"] == want["class_labels"] == ["no", "yes"]
    assert got["naive_prediction"] == pytest.approx(want["naive_prediction"], rel=1e-12)
    a = predictions_on_test(streamed, splits["whole"])
    b = predictions_on_test(whole, splits["whole"])
    # scikit-learn is given the same frame; XGBoost's quantile sketch of the chunks holds
    # every distinct value of so few rows, so it cuts where the whole matrix's does
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    summary = json.loads((streamed / "output" / "training.json").read_text())
    assert summary == json.loads((whole / "output" / "training.json").read_text())


def test_past_its_size_xgboost_trains_from_pages_on_disk(splits, tmp_path, monkeypatch):
    monkeypatch.setattr(model_xgboost, "EXTERNAL_MEMORY_VALUES", 0)
    spec = FeatureSpec(CHURN.features, CHURN.text, CHURN.target, CHURN.task)
    pages: set[str] = set()

    def on_round(*_) -> None:  # while it trains: XGBoost's pages are in the scratch folder
        pages.update(p.name for p in tmp_path.iterdir() if p.name.startswith("train"))

    fitted, _, labels, _ = train.streamed_train(
        splits["whole"] / "train", splits["whole"] / "validation", spec,
        families.family("xgboost"), dict(SMALL["xgboost"]), None, on_round, scratch=tmp_path,
    )  # fmt: skip
    assert labels == ["no", "yes"] and fitted.rounds > 5
    assert any(name.endswith(".page") for name in pages), pages


def test_a_streamed_evaluation_equals_the_whole_splits(models, splits, tmp_path):
    family, whole, _ = models
    scorer = evaluate.load_archive(pack(whole / "model", tmp_path), tmp_path / "loaded")
    champion = evaluate.load_archive(pack(whole / "model", tmp_path / "c"), tmp_path / "champ")
    test = splits["whole"] / "test"
    one = evaluate.evaluate_split(test, scorer, champion, 5.0, tmp_path / "whole.csv")
    chunked = evaluate.evaluate_split(test, scorer, champion, 5.0, tmp_path / "chunked.csv", 0)
    assert (tmp_path / "chunked.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    rows = len(read_predictions(tmp_path / "chunked.csv"))
    assert rows == len(read_split(test)) > CHUNK  # two chunks at least
    assert json.dumps(chunked, sort_keys=True) == json.dumps(one, sort_keys=True), family


def test_a_bottom_k_sample_is_the_same_whatever_the_chunks():
    rows = pd.DataFrame({"row": np.arange(5000)})
    keys = np.random.default_rng(1).random(5000)
    want = set(np.argsort(keys)[:700])
    for sizes in ([5000], [300] * 16 + [200], [1] * 50 + [4950]):
        seen, start = train.TargetPass(), 0
        for size in sizes:
            train.sampled(seen, rows[start : start + size], keys[start : start + size], 700)
            start += size
        assert set(seen.sample["row"]) == want and len(seen.sample) == 700


def test_the_config_sets_where_every_step_streams():
    cfg = load_config()
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"stream_above_mb": 12.5})})
    steps = {step.name: step for step in load_pipeline(cfg).steps}
    for name in ("preprocess", "evaluate"):
        argv = list(steps[name].arguments)
        assert argv[argv.index("--stream-above-mb") + 1] == "12.5", name
    assert steps["train"].hyperparameters["stream_above_mb"] == 12.5


def test_a_streamed_share_of_a_sharded_input_writes_the_same_rows_and_baseline(raw, tmp_path):
    """preprocess --part (processing_instance_count > 1) on a share too large to hold: the
    rows split by their hash as in memory, one baseline part per chunk, the same merge."""
    config = tmp_path / "resourceconfig.json"
    config.write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1", "algo-2"]}))
    outs = {"whole": tmp_path / "whole", "streamed": tmp_path / "streamed"}
    share = ("--part", "--resource-config", str(config), "--shards", "2")
    run_preprocess(raw, outs["whole"], *share)
    run_preprocess(raw, outs["streamed"], *share, "--stream-above-mb", "0")
    for out in outs.values():
        preprocess.main(["--merge", "--parts-dir", str(out / "baseline"),
                         "--baseline-dir", str(out / "merged")])  # fmt: skip
    parts = sorted(p.name for p in (outs["streamed"] / "baseline").glob("part*.json"))
    assert len(parts) == 10 and parts[0] == "part-algo-1-0001.json"  # one per chunk
    assert sorted(p.name for p in (outs["streamed"] / "train").iterdir()) == [
        "train-algo-1-01.csv", "train-algo-1-02.csv"]  # fmt: skip
    for name in SPLITS:
        pd.testing.assert_frame_equal(sorted_rows(outs["streamed"] / name),
                                      sorted_rows(outs["whole"] / name))  # fmt: skip
    got, want = (json.loads((outs[k] / "merged" / "baseline.json").read_text())
                 for k in ("streamed", "whole"))  # fmt: skip
    assert got["rows"] == want["rows"] and got["target"] == want["target"]
    assert_same_features(got, want)


def test_xgboost_scores_a_large_matrix_in_parts_as_in_one_call(monkeypatch):
    import xgboost as xgb

    rows = np.random.default_rng(0).random((model_xgboost.MANY_ROWS, 4)).astype(np.float32)
    booster = xgb.train({"nthread": 1, "max_depth": 3},
                        xgb.DMatrix(rows[:2000], label=rows[:2000].sum(axis=1)), 20)  # fmt: skip
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # three parts, whatever the machine's cores
    np.testing.assert_array_equal(model_xgboost.scored(booster, rows),
                                  booster.inplace_predict(rows))  # fmt: skip
