"""train and evaluate: hyperparameter parsing, early stopping, artifact format, metrics."""

import json
import tarfile

import evaluate
import numpy as np
import pytest
import train
from fixture_project.generate import COLUMNS, generate_buildings

from mlops.local.runner import pack_model

FEATURES = COLUMNS[:-1]
PARAMS = {"objective": "reg:squarederror", "max_depth": 3, "eta": 0.1, "num_round": 400,
          "early_stopping_rounds": 20, "seed": 1}  # fmt: skip


def xy(rows: int, seed: int):
    df = generate_buildings(rows, seed)
    return df[FEATURES].to_numpy(float), df.ANNUAL_COST.to_numpy(float)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--max_depth", "3", "--eta", "0.05"], {"max_depth": 3, "eta": 0.05}),
        (["--objective", "reg:squarederror"], {"objective": "reg:squarederror"}),
        (["--num-round", "10"], {"num_round": 10}),
        ([], {}),
    ],
)
def test_parse_hyperparameters(argv, expected):
    assert train.parse_hyperparameters(argv) == expected
    assert all(type(v) is type(expected[k]) for k, v in train.parse_hyperparameters(argv).items())


@pytest.mark.parametrize("argv", [["--eta"], ["eta", "0.1"]])
def test_parse_hyperparameters_rejects_malformed(argv):
    with pytest.raises(ValueError):
        train.parse_hyperparameters(argv)


def test_early_stopping_keeps_only_the_best_rounds():
    overfitting = {**PARAMS, "max_depth": 6, "eta": 0.5}
    booster = train.train_model(*xy(2000, 1), *xy(500, 2), overfitting, FEATURES)
    assert booster.best_iteration + 20 == booster.num_boosted_rounds() - 1  # stopped early
    assert booster.num_boosted_rounds() < 400
    best = train.keep_best_rounds(booster)
    assert best.num_boosted_rounds() == booster.best_iteration + 1


def test_model_dir_holds_json_model_and_manifest(tmp_path):
    booster = train.keep_best_rounds(train.train_model(*xy(2000, 1), *xy(500, 2), PARAMS, FEATURES))
    manifest_path = train.save_model(
        booster, tmp_path, {"feature_names": FEATURES, "target": "ANNUAL_COST", "params": PARAMS}
    )
    manifest = json.loads(manifest_path.read_text())
    assert manifest["features"] == FEATURES
    assert manifest["model_format"] == "xgboost-json"
    assert manifest["model_sha256"] == train.sha256_file(tmp_path / train.MODEL_FILE)
    assert manifest["versions"]["xgboost"].startswith("3.2")
    json.loads((tmp_path / train.MODEL_FILE).read_text())  # XGBoost's own JSON, not a pickle
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "xgboost-model.json"]


def test_regression_metrics_known_values():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.0, 2.0, 3.0, 6.0])
    m = evaluate.regression_metrics(y, pred)
    assert m["mse"]["value"] == pytest.approx(1.0)
    assert m["rmse"]["value"] == pytest.approx(1.0)
    assert m["mae"]["value"] == pytest.approx(0.5)
    assert m["r2"]["value"] == pytest.approx(1 - 4 / 5)
    perfect = evaluate.regression_metrics(y, y)
    assert perfect["mse"]["value"] == 0 and perfect["r2"]["value"] == 1


def test_evaluate_scores_model_and_champion_on_the_same_rows(tmp_path):
    good = train.train_model(*xy(2000, 1), *xy(500, 2), PARAMS, FEATURES)
    weak = train.train_model(*xy(2000, 1), *xy(500, 2), {**PARAMS, "num_round": 3}, FEATURES)
    for name, booster in (("model", good), ("champion", weak)):
        train.save_model(booster, tmp_path / name / "dir", {"feature_names": FEATURES,
                         "target": "ANNUAL_COST", "params": PARAMS})  # fmt: skip
        pack_model(tmp_path / name / "dir", tmp_path / name / "model.tar.gz")
    X, y = xy(400, 3)
    test = tmp_path / "test"
    test.mkdir()
    np.savetxt(test / "test.csv", np.c_[y, X], delimiter=",")
    evaluate.main([
        "--model-dir", str(tmp_path / "model"), "--test-dir", str(test),
        "--champion-dir", str(tmp_path / "champion"), "--evaluation-dir", str(tmp_path / "ev"),
    ])  # fmt: skip
    report = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    mse = report["regression_metrics"]["mse"]["value"]
    assert report["test_rows"] == 400
    assert mse < 8e7 < report["champion"]["regression_metrics"]["mse"]["value"]
    with tarfile.open(tmp_path / "model" / "model.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["manifest.json", "xgboost-model.json"]
