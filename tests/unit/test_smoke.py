"""The smoke test's checks, against a scripted stand-in for the sagemaker-runtime client."""

import io
import json

import pandas as pd
import pytest

from mlops.core.errors import MlopsError
from mlops.core.smoke import (
    SmokeRows,
    mape_pct,
    parse_predictions,
    run_smoke_test,
    smoke_rows,
)

ROWS = SmokeRows(lines=["1,2", "3,4", "5,6"], targets=[100.0, 200.0, 400.0], source="test")


class ScriptedClient:
    """Answers invoke_endpoint like botocore does, predicting with `answer(lines)`."""

    def __init__(self, answer, status=200, content_type="application/json"):
        self.answer, self.status, self.content_type = answer, status, content_type
        self.calls = []

    def invoke_endpoint(self, EndpointName, ContentType, Accept, Body):
        self.calls.append((EndpointName, ContentType, Body))
        predictions = self.answer(Body.splitlines())
        return {
            "Body": io.BytesIO(json.dumps({"predictions": predictions}).encode()),
            "ContentType": self.content_type,
            "ResponseMetadata": {"HTTPStatusCode": self.status},
        }


def exact(lines):
    truth = dict(zip(ROWS.lines, ROWS.targets, strict=True))
    return [truth[line] for line in lines]


def test_passes_with_exact_predictions_and_records_latency():
    client = ScriptedClient(exact)
    result = run_smoke_test(client, "ep", ROWS, max_mape_pct=1.0)
    assert result.passed, result.reason
    assert result.mape_pct == 0.0 and result.rows == 3
    assert 0 <= result.p50_ms <= result.max_ms
    # each row alone, then all rows in one request, as CSV to the named endpoint
    assert [c[2] for c in client.calls] == ["1,2", "3,4", "5,6", "1,2\n3,4\n5,6"]
    assert {c[:2] for c in client.calls} == {("ep", "text/csv")}


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda lines: [p * 1.2 for p in exact(lines)], "MAPE 20.00% exceeds 10%"),
        (lambda lines: [*exact(lines), 1.0], "2 predictions for one row"),
        (lambda lines: [float("nan")] * len(lines), "not a finite number"),
        (lambda lines: exact(lines)[:1], "1 predictions for a batch of 3"),
        (lambda lines: [1.0] if len(lines) == 1 else [2.0] * 3, "batch predictions differ"),
    ],
)
def test_fails_with_the_reason(answer, reason):
    result = run_smoke_test(ScriptedClient(answer), "ep", ROWS, max_mape_pct=10.0)
    assert not result.passed
    assert reason in result.reason
    assert "FAILED" in result.summary()


def test_http_error_fails_without_raising():
    result = run_smoke_test(ScriptedClient(exact, status=500), "ep", ROWS, 10.0)
    assert not result.passed and "HTTP 500" in result.reason


def test_unreachable_endpoint_fails_without_raising():
    from mlops.core.smoke import runtime_client

    client = runtime_client("http://127.0.0.1:9")  # discard port: connection refused
    result = run_smoke_test(client, "ep", ROWS, 10.0)
    assert not result.passed and "request failed" in result.reason


def test_mape_and_parse():
    assert mape_pct([110.0, 180.0], [100.0, 200.0]) == pytest.approx(10.0)
    assert mape_pct([5.0, 110.0], [0.0, 100.0]) == pytest.approx(10.0)  # zero targets skipped
    with pytest.raises(MlopsError, match="undefined"):
        mape_pct([1.0], [0.0])
    assert parse_predictions(b'{"predictions": [1.5, 2]}', "application/json") == [1.5, 2.0]
    assert parse_predictions(b"[3]", "application/json") == [3.0]
    assert parse_predictions(b"1.5\n2.5\n", "text/csv") == [1.5, 2.5]


def held_out(text: str) -> pd.DataFrame:
    """Held-out rows as the run layout reads them: every value the text the input had."""
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def test_smoke_rows_are_the_raw_features_in_the_models_order():
    frame = held_out('price,b,a,extra\n100,2,1,x\n,4,4,z\n200,,"3,5",y\n')
    rows = smoke_rows(frame, ["a", "b"], "price", "here")
    assert rows.lines == ["1,2", '"3,5",']  # as a client sends them: quoted, empty kept
    assert rows.targets == [100.0, 200.0] and rows.source == "here"  # no target: left out
    with pytest.raises(MlopsError, match=r"here lacks column\(s\) \['c'\]"):
        smoke_rows(frame, ["a", "c"], "price", "here")
    with pytest.raises(MlopsError, match="no rows with a target in here"):
        smoke_rows(frame.iloc[1:2], ["a"], "price", "here")


class LabellingClient(ScriptedClient):
    """A classifier's endpoint: probabilities, and labels when the Accept header asks."""

    def invoke_endpoint(self, EndpointName, ContentType, Accept, Body):
        self.calls.append((EndpointName, Accept, Body))
        probabilities = self.answer(Body.splitlines())
        payload = {"predictions": probabilities}
        if "labels=true" in Accept:
            payload["labels"] = ["yes" if p >= 0.5 else "no" for p in probabilities]
        return {
            "Body": io.BytesIO(json.dumps(payload).encode()),
            "ContentType": "application/json",
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }


LABELLED = SmokeRows(lines=["1", "2", "3", "4"], targets=["yes", "no", "yes", "no"], source="t")


@pytest.mark.parametrize(
    ("probabilities", "floor", "accuracy", "passed"),
    [
        ({"1": 0.9, "2": 0.1, "3": 0.7, "4": 0.2}, 0.75, 1.0, True),
        ({"1": 0.9, "2": 0.6, "3": 0.7, "4": 0.2}, 0.75, 0.75, True),
        ({"1": 0.9, "2": 0.6, "3": 0.4, "4": 0.2}, 0.75, 0.5, False),
    ],
)
def test_a_classifier_is_smoke_tested_on_label_accuracy(probabilities, floor, accuracy, passed):
    from mlops.core.smoke import AccuracyFloor

    client = LabellingClient(lambda lines: [probabilities[line] for line in lines])
    result = run_smoke_test(client, "ep", LABELLED, AccuracyFloor(floor))
    assert (result.passed, result.accuracy, result.min_accuracy) == (passed, accuracy, floor)
    assert result.mape_pct is None
    # each row alone, asking for its label; then the batch, compared on probabilities
    assert [c[1] for c in client.calls] == ["application/json; labels=true"] * 4 + [
        "application/json"
    ]
    if not passed:
        assert result.reason == f"accuracy {accuracy:.3f} is below {floor:g}"


def test_a_classifier_that_gives_no_labels_fails_the_smoke_test():
    from mlops.core.smoke import AccuracyFloor

    result = run_smoke_test(
        ScriptedClient(lambda lines: [0.5] * len(lines)), "ep", LABELLED, AccuracyFloor(0.5)
    )
    assert not result.passed and "no labels in the answer" in result.reason


def test_labels_read_from_the_split_keep_their_text():
    frame = held_out("x,left\n1, yes\n2,no\n")
    assert smoke_rows(frame, ["x"], "left", "t").targets == ["yes", "no"]
