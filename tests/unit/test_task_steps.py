"""Binary classification and string categorical features in the step scripts: the splits,
the labels, the fitted categories, the SageMaker metrics format and serving, on fixture
data (churn: labels "yes"/"no"; rent: a regression with text features)."""

from __future__ import annotations

import json

import evaluate
import features
import inference
import numpy as np
import pandas as pd
import preprocess
import pytest
import train
from fixtures.models import Data, load, pack, train_model
from fixtures.tasks import CITIES, PLANS, REGIONS, churn_frame, rent_frame
from sklearn.metrics import f1_score, log_loss, precision_score, recall_score, roc_auc_score

from stepkit import metrics
from stepkit.baseline import baseline_statistics
from stepkit.contract import FeatureSpec
from stepkit.rows import typed_frame
from stepkit.splits import read_predictions, read_split

CHURN = Data(
    churn_frame(1500, seed=2),
    ["tenure_months", "monthly_charges", "plan", "region", "support_calls"],
    "churned",
    text=["plan", "region"],
    task="binary_classification",
    positive_label="yes",
)
RENT = Data(
    rent_frame(1500, seed=3), ["area_sqm", "rooms", "city", "furnished"], "rent",
    text=["city", "furnished"],
)  # fmt: skip


@pytest.fixture(scope="module")
def churn(tmp_path_factory):
    """(model, split folders, model folder) of a classifier train.main fitted on churn rows."""
    model_dir, splits = train_model(CHURN, tmp_path_factory.mktemp("churn"))
    return load(model_dir), splits, model_dir


def predict(body, content_type, model):
    return inference.predict_fn(inference.input_fn(body, content_type), model)


def test_stratified_split_keeps_the_class_share_in_every_split():
    df = churn_frame(2000, seed=4)
    labels = preprocess.binary_labels(df.churned)
    splits = preprocess.split_data(df, 0.6, 0.2, 1, labels)
    share = (df.churned == "yes").mean()
    sizes = [len(s) for s in (splits.train, splits.validation, splits.test)]
    assert sizes == [1200, 400, 400]
    for part in (splits.train, splits.validation, splits.test):
        assert abs((part.churned == "yes").mean() - share) < 0.005
    again = preprocess.split_data(df, 0.6, 0.2, 1, labels)
    pd.testing.assert_frame_equal(splits.test, again.test)


@pytest.mark.parametrize(
    ("values", "message"),
    [(["a", "b", "c"], "exactly two values; it has 3: a, b, c"), (["yes", None], "empty")],
)
def test_preprocess_refuses_a_target_that_is_not_binary(values, message):
    with pytest.raises(ValueError, match=message):
        preprocess.binary_labels(pd.Series(values * 5, name="y"))


def test_preprocess_leaves_out_rows_without_a_target_and_says_how_many(tmp_path, capsys):
    """The backstop for a suite without a not-null target check (init's quarantines them
    first): "target churned has empty values" stopped the run."""
    raw = tmp_path / "raw"
    raw.mkdir()
    df = churn_frame(200, seed=2).astype({"churned": object})
    df.loc[[4, 9, 30], "churned"] = ["", "NA", None]
    df.to_csv(raw / "data.csv", index=False)
    features = [c for c in df.columns if c != "churned"]
    argv = ["--features", ",".join(features), "--target", "churned", "--train-ratio", "0.6",
            "--validation-ratio", "0.2", "--task", "binary_classification",
            "--categorical", "plan,region", "--raw-dir", str(raw),
            "--quarantine-dir", str(tmp_path / "none")]  # fmt: skip
    for name in ("train", "validation", "test", "baseline"):
        argv += [f"--{name}-dir", str(tmp_path / name)]
    preprocess.main(argv)
    assert "left out 3 row(s) without a churned" in capsys.readouterr().out
    parts = [read_split(tmp_path / name) for name in ("train", "validation", "test")]
    assert sum(len(p) for p in parts) == 197
    assert all(set(p.churned) == {"yes", "no"} for p in parts)


@pytest.mark.parametrize(
    ("values", "positive", "expected"),
    [
        (["no", "yes"], None, ["no", "yes"]),
        (["True", "False"], None, ["False", "True"]),
        ([0, 1], None, ["0", "1"]),
        (["1.0", "0"], None, ["0", "1"]),
        (["-1", "1"], None, ["-1", "1"]),
        (["cat", "dog"], None, ["cat", "dog"]),
        (["cat", "dog"], "cat", ["dog", "cat"]),
    ],
)
def test_class_labels_pick_the_positive_class(values, positive, expected):
    assert train.class_labels(pd.Series(values * 3), positive) == expected


def test_class_labels_refuse_three_values_and_an_unknown_positive():
    with pytest.raises(ValueError, match="exactly two values; it has 3"):
        train.class_labels(pd.Series(["a", "b", "c"]))
    with pytest.raises(ValueError, match="positive_label 'maybe'"):
        train.class_labels(pd.Series(["yes", "no"]), "maybe")


def test_categories_are_capped_to_the_most_frequent_levels_with_a_warning(capsys):
    raw = pd.DataFrame({"zip": [f"z{i % 40}" for i in range(400)] + ["z1"] * 50})
    typed, _ = typed_frame(raw, ["zip"], ["zip"])
    state = features.fit(typed, FeatureSpec(["zip"], ["zip"], "y", max_categories=10))
    assert len(state["categories"]["zip"]) == 10 and "z1" in state["categories"]["zip"]
    assert capsys.readouterr().out.strip() == (
        "warning: zip has 40 levels; kept the 10 most frequent, 300 training rows of rarer "
        "levels score as missing"
    )
    frame = features.transform(typed, state)
    assert frame["zip"].isna().sum() == 300  # the rarer levels, as missing values


def test_the_model_knows_its_task_labels_and_text_features(churn):
    model, _, model_dir = churn
    assert model.task == "binary_classification"
    assert model.class_labels == ["no", "yes"] and model.threshold == 0.5
    assert model.text_features == ["plan", "region"]
    state = json.loads((model_dir / "features.json").read_text())
    assert state["categories"] == {"plan": sorted(PLANS), "region": sorted(REGIONS)}


def test_classification_metrics_follow_sagemaker_and_agree_with_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    scores = np.clip(0.35 * y + rng.uniform(0, 0.65, 500), 0, 1)
    m = metrics.classification_metrics(y, scores, 0.5)
    predicted = (scores >= 0.5).astype(int)
    assert m["auc"]["value"] == pytest.approx(roc_auc_score(y, scores))
    assert m["log_loss"]["value"] == pytest.approx(log_loss(y, scores))
    assert m["precision"]["value"] == pytest.approx(precision_score(y, predicted))
    assert m["recall"]["value"] == pytest.approx(recall_score(y, predicted))
    assert m["f1"]["value"] == pytest.approx(f1_score(y, predicted))
    cm = m["confusion_matrix"]  # actual label outside, predicted inside, as SageMaker writes it
    assert cm["1"]["1"] == int(((predicted == 1) & (y == 1)).sum())
    assert cm["0"]["1"] == int(((predicted == 1) & (y == 0)).sum())
    assert sum(cm[a][p] for a in "01" for p in "01") == 500
    assert m["precision_best_constant_classifier"]["value"] == pytest.approx(y.mean())
    roc = m["receiver_operating_characteristic_curve"]
    assert len(roc["false_positive_rates"]) == len(roc["true_positive_rates"]) <= 101
    assert roc["false_positive_rates"][0] == 0.0 and roc["true_positive_rates"][-1] == 1.0
    for name in ("accuracy", "f0_5", "f2", "true_negative_rate", "false_negative_rate"):
        assert set(m[name]) == {"value", "standard_deviation"}
    json.dumps(m, allow_nan=False)


def run_evaluate(root, test_dir, champion_dir=None, golden_dir=None) -> dict:
    out = root / "evaluation"
    evaluate.main(
        [
            "--model-dir", str(root / "model"), "--test-dir", str(test_dir),
            "--champion-dir", str(champion_dir or root / "none"),
            "--golden-dir", str(golden_dir or root / "none"),
            "--evaluation-dir", str(out), "--max-regression-pct", "5",
        ]
    )  # fmt: skip
    return json.loads((out / "evaluation.json").read_text())


def test_evaluate_writes_the_binary_classification_report(churn, tmp_path):
    _, splits, model_dir = churn
    pack(model_dir, tmp_path / "model")
    report = run_evaluate(tmp_path, splits["test"])
    section = report["binary_classification_metrics"]
    assert report["test_rows"] == 300
    assert 0.75 < section["auc"]["value"] <= 1.0
    assert 0.3 < section["log_loss"]["value"] < 0.6
    assert report["champion_log_loss_limit"] > 1e300  # no champion: nothing to regress against
    assert set(report["intervals"]) == {"auc", "log_loss"}
    assert (
        report["naive"]["auc"] == 0.5 and report["naive"]["log_loss"] > section["log_loss"]["value"]
    )
    predictions = read_predictions(tmp_path / "evaluation" / "predictions.csv")
    assert set(predictions["target"]) == {"yes", "no"}
    assert (predictions["y"] == (predictions["target"] == "yes")).all()
    assert predictions["prediction"].between(0, 1).all()


def test_serving_answers_probabilities_and_labels_on_request(churn):
    model = churn[0]
    body = b"5,90.5,basic,south,4\n70,25.0,premium,north,0"
    probabilities = predict(body, "text/csv", model)
    assert probabilities[0] > 0.5 > probabilities[1]
    text, kind = inference.output_fn(probabilities, "application/json")
    assert json.loads(text) == {"predictions": [float(p) for p in probabilities]}
    text, _ = inference.output_fn(probabilities, "application/json; labels=true")
    assert json.loads(text)["labels"] == ["yes", "no"]
    text, kind = inference.output_fn(probabilities, "text/csv;labels=true")
    assert (text, kind) == ("yes\nno\n", "text/csv")


def test_an_unseen_category_scores_as_a_missing_value(churn):
    model = churn[0]
    unseen = predict(b"12,60,platinum,south,1", "text/csv", model)
    missing = predict(b"12,60,,south,1", "text/csv", model)
    as_json = predict(
        json.dumps([{"tenure_months": 12, "monthly_charges": 60, "plan": None,
                     "region": "south", "support_calls": 1}]),
        "application/json",
        model,
    )  # fmt: skip
    known = predict(b"12,60,basic,south,1", "text/csv", model)
    assert unseen[0] == missing[0] == as_json[0] != known[0]
    assert 0 < unseen[0] < 1


def test_json_rows_with_strings_and_csv_agree(churn):
    model = churn[0]
    from_csv = predict(b'5,90.5,"basic",south,4', "text/csv", model)
    from_json = predict(b'[[5, 90.5, "basic", "south", 4]]', "application/json", model)
    padded = predict(b"5, 90.5 , basic ,south,4", "text/csv", model)
    assert from_csv[0] == from_json[0] == padded[0]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"5,abc,basic,south,4", "text/csv", "monthly_charges is not a number: 'abc'"),
        (b"5,90,basic,south", "text/csv", "needs 5 values"),
        (b"5,inf,basic,south,4", "text/csv", "monthly_charges is not finite"),
        (b'[[5, 90, ["basic"], "south", 4]]', "application/json", "numbers or text"),
        (b'[{"plan": "basic"}]', "application/json", "missing"),
    ],
)
def test_bad_rows_for_a_categorical_model_are_refused_with_a_reason(
    churn, body, content_type, message
):
    with pytest.raises(inference.InvalidInput, match=message):
        predict(body, content_type, churn[0])


def test_regression_with_string_categories_learns_the_city(tmp_path):
    params = {"max_depth": 4, "eta": 0.2, "num_round": 200, "seed": 1}
    model_dir, _ = train_model(RENT, tmp_path, params=params)
    model = load(model_dir)
    assert model.task == "regression" and model.class_labels is None
    state = json.loads((model_dir / "features.json").read_text())
    assert state["categories"] == {"city": sorted(CITIES), "furnished": ["no", "yes"]}
    paris, lille = predict(b"60,2,Paris,no\n60,2,Lille,no", "text/csv", model)
    assert paris - lille > 600  # 60 m2 at 28 vs 11 per m2 in the generator
    output, _ = inference.output_fn(np.asarray([paris]), "application/json; labels=true")
    assert "labels" not in json.loads(output)  # a regression has no labels to give


def test_baseline_records_category_frequencies():
    df = churn_frame(1000, seed=5)
    typed, _ = typed_frame(df[CHURN.features], CHURN.features, CHURN.text)
    baseline = baseline_statistics(typed, CHURN.features, tuple(CHURN.text), df.churned, CHURN.task)
    plan = baseline["features"]["plan"]
    assert plan["type"] == "categorical" and plan["levels"] == 3
    assert sum(plan["frequencies"].values()) == pytest.approx(1.0)
    assert plan["frequencies"]["basic"] == pytest.approx((df.plan == "basic").mean())
    assert "bin_edges" in baseline["features"]["tenure_months"]


def test_serving_scores_exactly_as_evaluate_does(churn, tmp_path):
    """Train/serve consistency: the probabilities evaluate wrote for the held-out rows are
    what an endpoint answers for the same raw rows, unseen and empty levels included."""
    _, splits, model_dir = churn
    rows = read_split(splits["test"])
    rows.loc[:4, "plan"] = ["gold", "", "gold", "", "platinum"]
    test = tmp_path / "test"
    test.mkdir()
    rows.to_csv(test / "test.csv", index=False)
    pack(model_dir, tmp_path / "model")
    run_evaluate(tmp_path, test)
    written = read_predictions(tmp_path / "evaluation" / "predictions.csv")["prediction"]
    body = rows[CHURN.features].to_csv(header=False, index=False).encode()
    served = predict(body, "text/csv", load(model_dir))
    np.testing.assert_allclose(served, written, rtol=0, atol=1e-12)


def test_evaluate_refuses_a_champion_of_another_task(churn, tmp_path):
    _, splits, model_dir = churn
    rent_dir, _ = train_model(RENT, tmp_path / "rent")
    pack(model_dir, tmp_path / "model")
    pack(rent_dir, tmp_path / "champion")
    with pytest.raises(ValueError, match=r"another task \(regression\) than binary_classification"):
        run_evaluate(tmp_path, splits["test"], champion_dir=tmp_path / "champion")


def test_behaviour_a_basic_plan_and_more_support_calls_churn_more(churn):
    """The generator's direction, learned: other values fixed, the basic plan and more calls
    to support raise the churn probability; the region west vs north does not matter much."""
    rows = [
        {"tenure_months": 20, "monthly_charges": 70, "plan": plan, "region": region,
         "support_calls": calls}
        for plan, region, calls in (("basic", "north", 1), ("premium", "north", 1),
                                    ("basic", "north", 5), ("basic", "west", 1))
    ]  # fmt: skip
    basic, premium, many_calls, west = predict(json.dumps(rows), "application/json", churn[0])
    assert basic > premium + 0.1
    assert many_calls > basic + 0.1
    assert abs(west - basic) < 0.1


def test_evaluate_scores_a_classifier_on_the_golden_set(churn, tmp_path):
    """The golden set (raw CSV with a header, labels as text) gets the task's own metrics,
    the champion's too (here the same model, so the limit is its loss + 5 %)."""
    _, splits, model_dir = churn
    pack(model_dir, tmp_path / "model")
    pack(model_dir, tmp_path / "champion")
    golden = tmp_path / "golden"
    golden.mkdir()
    churn_frame(200, seed=9).to_csv(golden / "golden.csv", index=False)
    report = run_evaluate(tmp_path, splits["test"], tmp_path / "champion", golden)
    golden_report = report["golden"]
    assert golden_report["rows"] == 200
    section = golden_report["binary_classification_metrics"]
    assert 0.7 < section["auc"]["value"] <= 1.0
    champion_loss = golden_report["champion"]["binary_classification_metrics"]["log_loss"]
    assert champion_loss["value"] == pytest.approx(section["log_loss"]["value"])
    assert golden_report["champion_log_loss_limit"] == pytest.approx(
        section["log_loss"]["value"] * 1.05
    )
    golden_predictions = read_predictions(tmp_path / "evaluation" / "golden_predictions.csv")
    assert len(golden_predictions) == 200
    assert (golden_predictions["prediction"] == golden_predictions["champion"]).all()
