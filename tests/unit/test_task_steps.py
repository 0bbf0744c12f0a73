"""Binary classification and string categorical features in the step scripts: the splits,
the labels, the manifest, the SageMaker metrics format and serving, on fixture data."""

from __future__ import annotations

import json

import evaluate
import inference
import numpy as np
import pandas as pd
import preprocess
import pytest
import train
from fixtures.tasks import CITIES, PLANS, REGIONS, churn_frame, rent_frame
from sklearn.metrics import f1_score, log_loss, precision_score, recall_score, roc_auc_score

CHURN_FEATURES = ["tenure_months", "monthly_charges", "plan", "region", "support_calls"]
RENT_FEATURES = ["area_sqm", "rooms", "city", "furnished"]
SMALL = ["--max_depth", "3", "--eta", "0.2", "--num_round", "60", "--seed", "1"]


def write_channels(df: pd.DataFrame, features: list[str], target: str, root) -> dict:
    splits = preprocess.split_data(df, 0.6, 0.2, 3)
    paths = {}
    for name in ("train", "validation", "test"):
        folder = root / name
        folder.mkdir()
        part = preprocess.to_xgboost_csv(getattr(splits, name), features, target)
        part.to_csv(folder / f"{name}.csv", header=False, index=False)
        paths[name] = folder
    return paths


@pytest.fixture(scope="module")
def churn_model(tmp_path_factory):
    """A classifier trained by train.main on churn rows (labels "yes"/"no", two string features)."""
    root = tmp_path_factory.mktemp("churn")
    paths = write_channels(churn_frame(1500, seed=2), CHURN_FEATURES, "churned", root)
    train.main(
        [
            "--features", ",".join(CHURN_FEATURES), "--target", "churned",
            "--task", "binary_classification", "--categorical", "plan,region",
            "--train", str(paths["train"]), "--validation", str(paths["validation"]),
            "--model-dir", str(root / "model"), *SMALL,
        ]
    )  # fmt: skip
    return inference.model_fn(str(root / "model")), paths


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


def test_categories_are_capped_to_the_most_frequent_levels_with_a_warning():
    frame = pd.DataFrame({"zip": [f"z{i % 40}" for i in range(400)] + ["z1"] * 50})
    categories, warnings = train.fit_categories(frame, ["zip"], max_categories=10)
    assert len(categories["zip"]) == 10 and "z1" in categories["zip"]
    assert warnings == [
        "warning: zip has 40 levels; kept the 10 most frequent, 300 training rows of rarer "
        "levels score as missing"
    ]


@pytest.mark.parametrize(
    ("value", "key"),
    [(1, "1"), (1.0, "1"), ("1", "1"), (" 1.0 ", "1"), ("2.5", "2.5"), ("basic", "basic"),
     ("", None), (None, None), (float("nan"), None), ("nan", None), (True, "true")],
)  # fmt: skip
def test_a_category_is_known_by_the_same_text_in_training_and_serving(value, key):
    assert inference.category_key(value) == key


def test_manifest_records_task_categories_and_labels(churn_model):
    model, _ = churn_model
    assert model.task == "binary_classification"
    assert model.class_labels == ["no", "yes"]
    assert model.threshold == 0.5
    assert model.categories == {"plan": sorted(PLANS), "region": sorted(REGIONS)}
    assert model.manifest["hyperparameters"]["objective"] == "binary:logistic"


def test_classification_metrics_follow_sagemaker_and_agree_with_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    scores = np.clip(0.35 * y + rng.uniform(0, 0.65, 500), 0, 1)
    m = evaluate.classification_metrics(y, scores, 0.5)
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


def test_evaluate_writes_the_binary_classification_report(churn_model, tmp_path):
    _, paths = churn_model
    archive = tmp_path / "model" / "model.tar.gz"
    archive.parent.mkdir()
    import tarfile

    with tarfile.open(archive, "w:gz") as tar:
        for f in (paths["train"].parent / "model").iterdir():
            tar.add(f, arcname=f.name)
    evaluate.main(
        [
            "--model-dir", str(archive.parent), "--test-dir", str(paths["test"]),
            "--champion-dir", str(tmp_path / "none"), "--evaluation-dir", str(tmp_path / "out"),
            "--task", "binary_classification", "--max-regression-pct", "5",
        ]
    )  # fmt: skip
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    metrics = report["binary_classification_metrics"]
    assert report["test_rows"] == 300
    assert 0.75 < metrics["auc"]["value"] <= 1.0
    assert 0.3 < metrics["log_loss"]["value"] < 0.6
    assert report["champion_log_loss_limit"] > 1e300  # no champion: nothing to regress against


def test_serving_answers_probabilities_and_labels_on_request(churn_model):
    model, _ = churn_model
    body = b"5,90.5,basic,south,4\n70,25.0,premium,north,0"
    probabilities = predict(body, "text/csv", model)
    assert probabilities[0] > 0.5 > probabilities[1]
    text, kind = inference.output_fn(probabilities, "application/json")
    assert json.loads(text) == {"predictions": [float(p) for p in probabilities]}
    text, _ = inference.output_fn(probabilities, "application/json; labels=true")
    assert json.loads(text)["labels"] == ["yes", "no"]
    text, kind = inference.output_fn(probabilities, "text/csv;labels=true")
    assert (text, kind) == ("yes\nno\n", "text/csv")


def test_an_unseen_category_scores_as_a_missing_value(churn_model):
    model, _ = churn_model
    unseen = predict(b"12,60,platinum,south,1", "text/csv", model)
    missing = predict(b"12,60,,south,1", "text/csv", model)
    as_json = predict(
        json.dumps([{"tenure_months": 12, "monthly_charges": 60, "plan": None,
                     "region": "south", "support_calls": 1}]),
        "application/json",
        model,
    )  # fmt: skip
    assert unseen[0] == missing[0] == as_json[0]
    assert 0 < unseen[0] < 1


def test_json_rows_with_strings_and_csv_agree(churn_model):
    model, _ = churn_model
    from_csv = predict(b'5,90.5,"basic",south,4', "text/csv", model)
    from_json = predict(b'[[5, 90.5, "basic", "south", 4]]', "application/json", model)
    assert from_csv[0] == pytest.approx(from_json[0])


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"5,abc,basic,south,4", "text/csv", "monthly_charges: non-numeric value 'abc'"),
        (b"5,90,basic,south", "text/csv", "needs 5 values"),
        (b"5,nan,basic,south,4", "text/csv", "NaN or infinite"),
        (b'[[5, 90, ["basic"], "south", 4]]', "application/json", "numbers or strings"),
        (b'[{"plan": "basic"}]', "application/json", "missing"),
    ],
)
def test_bad_rows_for_a_categorical_model_are_refused_with_a_reason(
    churn_model, body, content_type, message
):
    model, _ = churn_model
    with pytest.raises(inference.InvalidInput, match=message):
        predict(body, content_type, model)


def test_regression_with_string_categories_learns_the_city(tmp_path):
    paths = write_channels(rent_frame(1500, seed=3), RENT_FEATURES, "rent", tmp_path)
    train.main(
        [
            "--features", ",".join(RENT_FEATURES), "--target", "rent",
            "--categorical", "city,furnished",
            "--train", str(paths["train"]), "--validation", str(paths["validation"]),
            "--model-dir", str(tmp_path / "model"), "--max_depth", "4", "--eta", "0.2",
            "--num_round", "200", "--seed", "1",
        ]
    )  # fmt: skip
    model = inference.model_fn(str(tmp_path / "model"))
    assert model.task == "regression" and model.class_labels is None
    assert model.categories == {"city": sorted(CITIES), "furnished": ["no", "yes"]}
    paris, lille = predict(b"60,2,Paris,no\n60,2,Lille,no", "text/csv", model)
    assert paris - lille > 600  # 60 m2 at 28 vs 11 per m2 in the generator
    output, _ = inference.output_fn(np.asarray([paris]), "application/json; labels=true")
    assert "labels" not in json.loads(output)  # a regression has no labels to give


def test_baseline_records_category_frequencies():
    df = churn_frame(1000, seed=5)
    baseline = preprocess.baseline_statistics(df, CHURN_FEATURES, ("plan", "region"))
    plan = baseline["features"]["plan"]
    assert plan["type"] == "categorical" and plan["levels"] == 3
    assert sum(plan["frequencies"].values()) == pytest.approx(1.0)
    assert plan["frequencies"]["basic"] == pytest.approx((df.plan == "basic").mean())
    assert "bin_edges" in baseline["features"]["tenure_months"]


def test_serving_scores_exactly_as_evaluate_does(churn_model):
    """Train/serve consistency: evaluate feeds the booster a categorical frame, serving feeds
    it category codes; the probabilities must be the same, unseen levels included."""
    model, paths = churn_model
    X, _ = evaluate.read_test(paths["test"], model)
    X = X.copy()
    X.loc[X.index[:5], "plan"] = np.nan  # what an unseen or empty level becomes
    via_frame = model.booster.inplace_predict(X)
    table = pd.read_csv(next(paths["test"].glob("*.csv")), header=None)
    lines = table.iloc[:, 1:].astype(str).agg(",".join, axis=1).tolist()
    lines[:5] = [
        line.replace(",basic,", ",gold,").replace(",standard,", ",,").replace(",premium,", ",gold,")
        for line in lines[:5]
    ]
    via_codes = predict("\n".join(lines).encode(), "text/csv", model)
    np.testing.assert_allclose(via_codes, via_frame, rtol=0, atol=1e-7)


def test_evaluate_refuses_a_champion_of_another_task(churn_model, tmp_path):
    import tarfile

    _, paths = churn_model
    archive = tmp_path / "model" / "model.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for f in (paths["train"].parent / "model").iterdir():
            tar.add(f, arcname=f.name)
    with pytest.raises(ValueError, match="champion is a model of another task than regression"):
        evaluate.main(
            [
                "--model-dir", str(archive.parent), "--test-dir", str(paths["test"]),
                "--champion-dir", str(archive.parent), "--evaluation-dir", str(tmp_path / "out"),
            ]
        )  # fmt: skip


def test_behaviour_a_basic_plan_and_more_support_calls_churn_more(churn_model):
    """The generator's direction, learned: other values fixed, the basic plan and more calls
    to support raise the churn probability; the region west vs north does not matter much."""
    model, _ = churn_model
    rows = [
        {"tenure_months": 20, "monthly_charges": 70, "plan": plan, "region": region,
         "support_calls": calls}
        for plan, region, calls in (("basic", "north", 1), ("premium", "north", 1),
                                    ("basic", "north", 5), ("basic", "west", 1))
    ]  # fmt: skip
    basic, premium, many_calls, west = predict(json.dumps(rows), "application/json", model)
    assert basic > premium + 0.1
    assert many_calls > basic + 0.1
    assert abs(west - basic) < 0.1


def test_evaluate_scores_a_classifier_on_the_golden_set(churn_model, tmp_path):
    """The golden set (raw CSV with a header, labels as text) gets the task's own metrics."""
    _, paths = churn_model
    archive = tmp_path / "model" / "model.tar.gz"
    archive.parent.mkdir()
    import tarfile

    with tarfile.open(archive, "w:gz") as tar:
        for f in (paths["train"].parent / "model").iterdir():
            tar.add(f, arcname=f.name)
    golden = tmp_path / "golden"
    golden.mkdir()
    churn_frame(200, seed=9).to_csv(golden / "golden.csv", index=False)
    evaluate.main(
        [
            "--model-dir", str(archive.parent), "--test-dir", str(paths["test"]),
            "--champion-dir", str(archive.parent), "--evaluation-dir", str(tmp_path / "out"),
            "--golden-dir", str(golden), "--task", "binary_classification",
            "--max-regression-pct", "5",
        ]
    )  # fmt: skip
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    golden_report = report["golden"]
    assert golden_report["rows"] == 200
    metrics = golden_report["binary_classification_metrics"]
    assert 0.7 < metrics["auc"]["value"] <= 1.0
    champion_loss = golden_report["champion"]["binary_classification_metrics"]["log_loss"]
    assert champion_loss["value"] == pytest.approx(metrics["log_loss"]["value"])
    assert golden_report["champion_log_loss_limit"] == pytest.approx(
        metrics["log_loss"]["value"] * 1.05
    )
