"""train and evaluate: hyperparameter parsing, early stopping, the artifact they exchange,
and evaluate's outputs (evaluation.json, predictions.csv) for model and champion."""

import json
import shutil

import evaluate
import numpy as np
import pandas as pd
import pytest
import train
from fixture_project.generate import FEATURES, TARGET, generate_buildings
from fixtures.models import SMALL, Data, load, pack, train_model

from stepkit import metrics
from stepkit.artifact import read_manifest, write_manifest
from stepkit.splits import read_predictions, read_split

BUILDINGS = Data(generate_buildings(1500, seed=1), FEATURES, TARGET)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model folder, split folders) of a model train.main fitted on the fixture rows."""
    return train_model(BUILDINGS, tmp_path_factory.mktemp("trained"))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--max_depth", "3", "--eta", "0.05"], {"max_depth": 3, "eta": 0.05}),
        (["--objective", "reg:squarederror"], {"objective": "reg:squarederror"}),
        (["--num-round", "10"], {"num_round": 10}),
        (["--early_stopping", "True", "--warm_start", "false"],
         {"early_stopping": True, "warm_start": False}),
        (["--max_depth", "None"], {"max_depth": None}),
        (["--eval_metric", '["rmse", "mae"]'], {"eval_metric": ["rmse", "mae"]}),
        (["--monotone_constraints", '{"A": 1}'], {"monotone_constraints": {"A": 1}}),
        (["--note", "[not json"], {"note": "[not json"}),
        ([], {}),
    ],
)  # fmt: skip
def test_parse_hyperparameters_gives_values_their_type(argv, expected):
    parsed = train.parse_hyperparameters(argv)
    assert parsed == expected
    assert all(type(v) is type(expected[k]) for k, v in parsed.items())


@pytest.mark.parametrize("argv", [["--eta"], ["eta", "0.1"]])
def test_parse_hyperparameters_rejects_malformed(argv):
    with pytest.raises(ValueError):
        train.parse_hyperparameters(argv)


def test_train_refuses_hyperparameters_its_family_does_not_know(tmp_path):
    with pytest.raises(ValueError, match="'max_dept' is not an XGBoost parameter"):
        train_model(BUILDINGS, tmp_path, params={**SMALL["xgboost"], "max_dept": 3})


def test_early_stopping_keeps_the_best_round_and_its_score(tmp_path):
    """An overfitting model stops early; the model kept is the best round's: its own
    validation RMSE is the one training.json reports."""
    params = {**SMALL["xgboost"], "max_depth": 6, "eta": 0.5, "num_round": 400}
    model_dir, splits = train_model(BUILDINGS, tmp_path, params=params)
    summary = json.loads((tmp_path / "output-data" / train.SUMMARY_FILE).read_text())
    assert summary["rounds"] == summary["best_iteration"] + 1 + params["early_stopping_rounds"]
    assert summary["rounds"] < 400
    curve = pd.read_csv(tmp_path / "output-data" / train.CURVE_FILE)
    assert len(curve) == summary["rounds"]
    assert curve["validation:rmse"].idxmin() == summary["best_iteration"]
    validation = read_split(splits["validation"])
    predicted, _ = load_scores(model_dir, validation)
    rmse = np.sqrt(np.mean((predicted - validation[TARGET].astype(float)) ** 2))
    assert rmse == pytest.approx(summary["best"]["validation:rmse"], rel=1e-5)


def load_scores(model_dir, rows):
    import inference

    return inference.score_frame(load(model_dir), rows)


def test_the_artifact_holds_model_state_code_and_a_manifest_over_them(trained):
    model_dir, _ = trained
    manifest = read_manifest(model_dir)  # checks every file's sha256
    assert manifest["family"] == "xgboost" and manifest["task"] == "regression"
    assert manifest["features"] == FEATURES and manifest["target"] == TARGET
    assert manifest["versions"]["xgboost"].startswith("3.2")
    assert manifest["naive_prediction"] == pytest.approx(
        read_split(trained[1]["train"])[TARGET].astype(float).mean()
    )
    files = set(manifest["files"])
    assert {"features.json", "code/endpoint_handler.py", "code/inference.py",
            "code/features.py", "code/families.py", "code/stepkit/rows.py"} <= files  # fmt: skip
    assert any(name.startswith("model/") for name in files)
    assert not any(name.endswith((".pkl", ".pickle")) for name in files)
    assert "code/train.py" not in files  # the serving code only


def test_evaluate_scores_model_and_champion_on_the_same_rows(trained, tmp_path):
    model_dir, splits = trained
    weak_dir, _ = train_model(
        BUILDINGS, tmp_path / "weak", params={**SMALL["xgboost"], "num_round": 3}
    )
    pack(model_dir, tmp_path / "model")
    pack(weak_dir, tmp_path / "champion")
    out = run_evaluate(tmp_path, splits["test"], max_regression_pct=5)
    report = json.loads((out / "evaluation.json").read_text())
    test_rows = read_split(splits["test"])
    assert report["rows"] == report["test_rows"] == len(test_rows) == 300
    mse = report["regression_metrics"]["mse"]["value"]
    champion_mse = report["champion"]["regression_metrics"]["mse"]["value"]
    assert mse < champion_mse / 10
    assert report["champion_mse_limit"] == pytest.approx(champion_mse * 1.05)
    low, high = report["intervals"]["mse"]
    assert low < mse < high
    assert report["naive"]["mse"] > champion_mse  # three rounds still beat the mean

    predictions = read_predictions(out / "predictions.csv")
    assert list(predictions.columns) == ["target", "y", "prediction", "champion"]
    assert predictions["target"].tolist() == test_rows[TARGET].tolist()
    y, p, c = (predictions[k].to_numpy() for k in ("y", "prediction", "champion"))
    assert np.mean((p - y) ** 2) == pytest.approx(mse)
    assert np.mean((c - y) ** 2) == pytest.approx(champion_mse)


def run_evaluate(root, test_dir, golden_dir=None, max_regression_pct=0.0):
    out = root / "evaluation"
    argv = ["--model-dir", str(root / "model"), "--test-dir", str(test_dir),
            "--champion-dir", str(root / "champion"), "--golden-dir", str(golden_dir or root / "none"),
            "--evaluation-dir", str(out), "--max-regression-pct", str(max_regression_pct)]  # fmt: skip
    evaluate.main(argv)
    return out


def test_without_a_champion_the_limit_never_binds_and_champion_is_empty(trained, tmp_path):
    model_dir, splits = trained
    pack(model_dir, tmp_path / "model")
    out = run_evaluate(tmp_path, splits["test"])
    report = json.loads((out / "evaluation.json").read_text())
    assert "champion" not in report and report["champion_mse_limit"] > 1e300
    assert read_predictions(out / "predictions.csv")["champion"].isna().all()
    assert not (out / "golden_predictions.csv").exists()


def test_the_champion_is_scored_by_its_own_code(trained, tmp_path):
    """A champion's artifact carries its serving code: evaluate scores it with that code,
    not the checkout's, even though both define the same module names."""
    model_dir, splits = trained
    pack(model_dir, tmp_path / "model")
    old = shutil.copytree(model_dir, tmp_path / "old")
    handler = old / "code" / "inference.py"
    handler.write_text(
        handler.read_text() + "\n\n_score_frame = score_frame\n\n\ndef score_frame(model, frame):\n"
        "    predictions, reasons = _score_frame(model, frame)\n"
        "    return predictions + 1000.0, reasons\n"
    )
    write_manifest(old, {k: v for k, v in read_manifest_unchecked(old).items() if k != "files"})
    pack(old, tmp_path / "champion")
    out = run_evaluate(tmp_path, splits["test"])
    predictions = read_predictions(out / "predictions.csv")
    shift = predictions["champion"] - predictions["prediction"]
    np.testing.assert_allclose(shift, 1000.0, rtol=0, atol=1e-6)


def read_manifest_unchecked(folder):
    return json.loads((folder / "manifest.json").read_text())


def test_evaluate_refuses_a_tampered_model(trained, tmp_path):
    model_dir, splits = trained
    tampered = shutil.copytree(model_dir, tmp_path / "tampered")
    (tampered / "code" / "features.py").write_text("# replaced\n")
    pack(tampered, tmp_path / "model")
    with pytest.raises(Exception, match=r"code/features\.py: sha256 .* refusing"):
        run_evaluate(tmp_path, splits["test"])


def test_regression_metrics_known_values():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.0, 2.0, 3.0, 6.0])
    m = metrics.regression_metrics(y, pred)
    assert m["mse"]["value"] == pytest.approx(1.0)
    assert m["rmse"]["value"] == pytest.approx(1.0)
    assert m["mae"]["value"] == pytest.approx(0.5)
    assert m["r2"]["value"] == pytest.approx(1 - 4 / 5)
    perfect = metrics.regression_metrics(y, y)
    assert perfect["mse"]["value"] == 0 and perfect["r2"]["value"] == 1


def test_list_hyperparameters_reach_the_family_as_lists(tmp_path):
    """A config's list (two eval metrics) goes through the runner's argv and back, and the
    training curve reports both, as the family declares."""
    from mlops.core.graph import hyperparameter_args

    params = {**SMALL["xgboost"], "eval_metric": ["mae", "rmse"]}
    argv = list(hyperparameter_args(params))
    assert train.parse_hyperparameters(argv) == params
    train_model(BUILDINGS, tmp_path, params=params)
    curve = pd.read_csv(tmp_path / "output-data" / train.CURVE_FILE)
    assert list(curve.columns) == ["round", "validation:mae", "validation:rmse"]


def test_held_out_rows_without_a_numeric_target_are_refused_in_one_line(trained, tmp_path):
    model_dir, splits = trained
    rows = read_split(splits["test"])
    rows.loc[4, TARGET] = ""
    rows.loc[9, TARGET] = "n/a"
    (tmp_path / "test").mkdir()
    rows.to_csv(tmp_path / "test" / "test.csv", index=False)
    pack(model_dir, tmp_path / "model")
    with pytest.raises(
        ValueError, match=rf"^2 row\(s\) have no numeric target {TARGET}, e.g. row 5: ''$"
    ):
        run_evaluate(tmp_path, tmp_path / "test")


def test_a_champion_needing_a_dropped_feature_is_skipped_with_a_note(trained, tmp_path):
    """A project that drops a feature still evaluates its challenger: the champion, which
    needs the dropped column, is left unscored and evaluation.json says why."""
    model_dir, _ = trained
    fewer = Data(BUILDINGS.frame.drop(columns=[FEATURES[-1]]), FEATURES[:-1], TARGET)
    challenger_dir, challenger_splits = train_model(fewer, tmp_path / "fewer")
    pack(challenger_dir, tmp_path / "model")
    pack(model_dir, tmp_path / "champion")
    out = run_evaluate(tmp_path, challenger_splits["test"])
    report = json.loads((out / "evaluation.json").read_text())
    assert "champion" not in report and report["champion_mse_limit"] > 1e300
    assert f"lack its feature(s) ['{FEATURES[-1]}']" in report["champion_note"]
    assert read_predictions(out / "predictions.csv")["champion"].isna().all()
