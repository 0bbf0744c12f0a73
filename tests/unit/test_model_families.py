"""Every model family the project lists (model_build/steps/families.py), a fork's own
included, against the ModelFamily contract (stepkit/contract.py): its metadata, its own
defaults, fit/save/load/predict through the artifact, missing values and text categories
scored natively, probabilities for a classifier, the metrics it reports, and a check that
refuses an unknown parameter. The families the template ships also have their parameter
names checked against the installed library."""

from __future__ import annotations

import importlib.util
import json

import families
import inference
import numpy as np
import pandas as pd
import pytest
import train
from fixtures.models import SMALL, Data, load, pack, train_model, unpack
from fixtures.tasks import churn_frame, rent_frame

from stepkit.contract import TASKS, FeatureSpec
from stepkit.rows import typed_frame
from stepkit.splits import read_split

NAMES = sorted(families.FAMILIES)


def with_gaps(frame: pd.DataFrame, columns: list[str], share: float = 0.05) -> pd.DataFrame:
    """The frame with a share of each column's values missing (empty in the CSV)."""
    rng = np.random.default_rng(11)
    frame = frame.astype({c: object for c in columns})
    for column in columns:
        frame.loc[rng.random(len(frame)) < share, column] = None
    return frame


RENT = Data(
    with_gaps(rent_frame(800, seed=4), ["area_sqm", "city"]),
    ["area_sqm", "rooms", "city", "furnished"], "rent", text=["city", "furnished"],
)  # fmt: skip
CHURN = Data(
    with_gaps(churn_frame(800, seed=4), ["monthly_charges", "plan"]),
    ["tenure_months", "monthly_charges", "plan", "region", "support_calls"], "churned",
    text=["plan", "region"], task="binary_classification", positive_label="yes",
)  # fmt: skip
DATA = {"regression": RENT, "binary_classification": CHURN}


def family_of(name):
    return families.FAMILIES[name]


@pytest.fixture(scope="module", params=[(n, t) for n in NAMES for t in TASKS],
                ids=[f"{n}-{t}" for n in NAMES for t in TASKS])  # fmt: skip
def trained(request, tmp_path_factory):
    """(family, data, model folder, splits, output-data folder): train.main with the family's
    own defaults on rows with missing values and text features."""
    name, task = request.param
    family, data = family_of(name), DATA[task]
    root = tmp_path_factory.mktemp(f"{name}-{task}")
    model_dir, splits = train_model(data, root, model=name, params=family.defaults(task))
    return family, data, model_dir, splits, root / "output-data"


@pytest.mark.parametrize("name", NAMES)
def test_the_metadata_the_machinery_reads(name):
    family = family_of(name)
    assert name == family.NAME and isinstance(family.IMAGE, str) and family.IMAGE
    assert isinstance(family.DISTRIBUTED, bool)
    assert isinstance(family.PARAMETERS, frozenset) and family.PARAMETERS
    for library in family.LIBRARIES:
        assert importlib.util.find_spec(library) is not None, library
    for task in TASKS:
        defaults = family.defaults(task)
        assert family.check(defaults, task) is None
        assert set(defaults) <= family.PARAMETERS
        metrics = family.emitted_metrics(defaults, task)
        assert metrics and all(m.startswith("validation:") for m in metrics)


@pytest.mark.parametrize("name", NAMES)
def test_check_refuses_an_unknown_parameter_with_a_suggestion(name):
    family = family_of(name)
    known = max(sorted(family.PARAMETERS), key=len)
    typo = known[:-1]  # a letter short of a real name
    problem = family.check({**family.defaults("regression"), typo: 1}, "regression")
    assert problem is not None and "\n" not in problem
    assert repr(typo) in problem and f"did you mean {known!r}?" in problem
    assert family.check({"surely_not_a_parameter_name": 1}, "regression") is not None


def test_fit_save_load_predict_round_trip_through_the_artifact(trained, tmp_path):
    """The packed artifact, loaded by its own serving code path, predicts what the family's
    own load/predict give on the features transform of the same rows."""
    import features

    family, data, model_dir, splits, _ = trained
    rows = read_split(splits["test"])
    served = load(unpack(pack(model_dir, tmp_path), tmp_path / "unpacked"))
    predictions, reasons = inference.score_frame(served, rows)
    assert (reasons == "").all() and np.isfinite(predictions).all()
    assert served.manifest["family"] == family.NAME

    typed, _ = typed_frame(rows[data.features], data.features, data.text)
    state = json.loads((model_dir / "features.json").read_text())
    direct = family.predict(family.load(model_dir / "model"), features.transform(typed, state))
    np.testing.assert_array_equal(np.asarray(direct, dtype=float), predictions)


@pytest.mark.parametrize("name", NAMES)
def test_saved_model_predicts_as_the_fitted_one(name, tmp_path):
    """save then load gives back the same model: predictions equal to the last bit."""
    import features

    family = family_of(name)
    spec = FeatureSpec(RENT.features, RENT.text, RENT.target)
    rows = RENT.frame.astype(str).replace("None", "")
    fitted, state, _, _ = train.train(
        rows.iloc[:500], rows.iloc[500:650], spec, family, family.defaults("regression"),
        None, lambda *_: None,
    )  # fmt: skip
    typed, _ = typed_frame(rows.iloc[650:][RENT.features], RENT.features, RENT.text)
    X = features.transform(typed, state)
    family.save(fitted.model, tmp_path / name)
    before = np.asarray(family.predict(fitted.model, X), dtype=float)
    after = np.asarray(family.predict(family.load(tmp_path / name), X), dtype=float)
    np.testing.assert_array_equal(before, after)
    assert np.isfinite(before).all()


def test_missing_values_and_unseen_levels_are_scored_natively(trained):
    """An empty number and an empty text value are scored, not refused; an unseen level
    scores exactly as a missing one."""
    _, data, model_dir, splits, _ = trained
    model = load(model_dir)
    rows = read_split(splits["test"]).head(20)
    number = next(f for f in data.features if f not in data.text)
    text = data.text[0]
    gaps = rows.assign(**{number: "", text: ""})
    unseen = rows.assign(**{number: "", text: "never-seen-level"})
    scored_gaps, reasons = inference.score_frame(model, gaps)
    scored_unseen, _ = inference.score_frame(model, unseen)
    assert (reasons == "").all() and np.isfinite(scored_gaps).all()
    np.testing.assert_array_equal(scored_gaps, scored_unseen)
    plain, _ = inference.score_frame(model, rows)
    assert not np.array_equal(plain, scored_gaps)  # the values mattered


def test_the_answers_are_the_tasks_and_learnt_the_signal(trained):
    """A classifier answers probabilities in [0, 1] that rank the classes; a regression
    answers values that explain most of the target's variance (held-out rows)."""
    from stepkit.metrics import auc

    _, data, model_dir, splits, _ = trained
    model = load(model_dir)
    rows = read_split(splits["test"])
    predictions, _ = inference.score_frame(model, rows)
    if data.task == "binary_classification":
        assert model.class_labels == ["no", "yes"]
        assert ((predictions >= 0) & (predictions <= 1)).all()
        assert auc((rows[data.target] == "yes").to_numpy(), predictions) > 0.7
    else:
        y = rows[data.target].astype(float).to_numpy()
        assert 1 - np.sum((y - predictions) ** 2) / np.sum((y - y.mean()) ** 2) > 0.8


def test_training_reports_the_metrics_the_family_declares(trained):
    """A tuning objective is one of emitted_metrics: the curve must hold each, per round,
    and the summary the kept round's scores."""
    family, data, _, _, output = trained
    declared = family.emitted_metrics(family.defaults(data.task), data.task)
    curve = pd.read_csv(output / train.CURVE_FILE)
    assert set(declared) <= set(curve.columns)
    summary = json.loads((output / train.SUMMARY_FILE).read_text())
    assert 0 <= summary["best_iteration"] < summary["rounds"] == len(curve)
    for metric in declared:
        assert summary["best"][metric] == pytest.approx(
            curve[metric].iloc[summary["best_iteration"]]
        )


def xgboost_reported_names() -> set[str]:
    """Every parameter the installed xgboost reports in its saved config (the way the old
    config check was kept honest), over its boosters."""
    import xgboost as xgb

    rng = np.random.default_rng(0)
    data = xgb.DMatrix(rng.random((20, 3)), label=rng.random(20))
    reported: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str | list) and not key.endswith("param"):
                    reported.add(key)
                walk(value)

    for booster in ("gbtree", "dart", "gblinear"):
        params = {"objective": "reg:squarederror", "booster": booster}
        walk(json.loads(xgb.train(params, data, 1).save_config()))
    return reported - {"name", "version", "metrics", "num_trees", "updater_seq"}


def test_xgboost_parameters_match_the_installed_library():
    family = family_of("xgboost")
    reported = xgboost_reported_names()
    assert reported <= family.PARAMETERS, sorted(reported - family.PARAMETERS)
    aliases = {"learning_rate", "reg_alpha", "reg_lambda", "min_split_loss", "random_state",
               "n_jobs"}  # fmt: skip
    assert aliases <= family.PARAMETERS
    assert {"num_round", "early_stopping_rounds"} <= family.PARAMETERS  # xgboost.train's own


def test_sklearn_parameters_match_the_installed_library():
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    names = set(HistGradientBoostingRegressor().get_params())
    names |= set(HistGradientBoostingClassifier().get_params())
    assert names == family_of("sklearn").PARAMETERS


@pytest.mark.parametrize("name", ["xgboost", "sklearn"])
def test_a_tuning_trials_thread_share_is_honoured(name, monkeypatch):
    """Local tuning gives each parallel trial OMP_NUM_THREADS; without it, one thread
    trains small data (more are slower on a busy machine), all cores large data."""
    family = family_of(name)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert family.default_threads(1_000) == 1
    assert family.default_threads(family.MANY_ROWS) == 8
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert family.default_threads(1_000) == family.default_threads(family.MANY_ROWS) == 3


def test_xgboost_predicts_from_category_codes_as_from_its_own_dataframe(tmp_path):
    """model_xgboost feeds inplace_predict a float matrix (categories as codes: ~1 ms a call
    cheaper than a DataFrame); its answers equal XGBoost's own on the categorical frame,
    missing and unseen levels included."""
    import features

    family = family_of("xgboost")
    spec = FeatureSpec(RENT.features, RENT.text, RENT.target)
    rows = RENT.frame.astype(str).replace("None", "")
    fitted, state, _, _ = train.train(
        rows.iloc[:500], rows.iloc[500:650], spec, family, SMALL["xgboost"], None,
        lambda *_: None,
    )  # fmt: skip
    test = rows.iloc[650:].copy()
    test.loc[test.index[:5], RENT.text[0]] = "never-seen-level"
    test.loc[test.index[5:10], RENT.text[0]] = ""
    typed, _ = typed_frame(test[RENT.features], RENT.features, RENT.text)
    X = features.transform(typed, state)
    expected = fitted.model.inplace_predict(X)
    np.testing.assert_allclose(family.predict(fitted.model, X), expected, rtol=0, atol=1e-6)
