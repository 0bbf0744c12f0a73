"""Tasks: the two fixture projects end to end, and what string categories cost at serving.

1. Runs the local pipeline on the churn fixture (binary classification, "yes"/"no"
   labels, two string categorical features) and the rent fixture (regression with two
   string categorical features), 10,000 generated rows each, and prints the held-out
   metrics each reached: AUC, log loss, accuracy for churn; MSE, R2 for rent (the rent
   generator's noise variance, 3,600, is the floor of its MSE).
2. Times predict_fn on one-row and 100-row requests for a model with string categories
   against a numbers-only model of the same size, and prints the ratio: the price of
   building a typed frame per request.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "model_build" / "steps")]

ROWS = 10_000


def pipeline_metrics(config: Path, frame, tmp: Path) -> tuple[dict, float]:
    from fixtures.tasks import project_config

    from mlops.core.config import load_config
    from mlops.core.registry import metrics_from_evaluation
    from mlops.local.runner import run_pipeline

    data = tmp / f"{config.parent.name}.csv"
    frame.to_csv(data, index=False)
    cfg = load_config(project_config(config, tmp))
    start = time.perf_counter()
    result = run_pipeline(cfg, data, tmp / "home", progress=lambda _: None)
    return metrics_from_evaluation(result.evaluation), time.perf_counter() - start


def per_request_ms(model, body: bytes, repeats: int = 300) -> float:
    import inference

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        inference.predict_fn(inference.input_fn(body, "text/csv"), model)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def serving_ratio(tmp: Path) -> None:
    from fixtures.models import Data, load, train_model
    from fixtures.tasks import rent_frame

    df = rent_frame(3000, seed=4)
    features = ["area_sqm", "rooms", "city", "furnished"]
    numeric = df.assign(
        city=df.city.astype("category").cat.codes, furnished=(df.furnished == "yes").astype(int)
    )
    params = {"max_depth": 4, "eta": 0.1, "num_round": 200, "seed": 1}
    models = {}
    for name, frame, text in (
        ("categorical", df, ["city", "furnished"]),
        ("numeric", numeric, []),
    ):
        data = Data(frame[[*features, "rent"]].astype(str), features, "rent", text)
        model_dir, _ = train_model(data, tmp / name, params=params)
        models[name] = (load(model_dir), frame)
    for rows in (1, 100):
        ms = {}
        for name, (model, frame) in models.items():
            body = frame[features][:rows].to_csv(header=False, index=False).encode()
            ms[name] = per_request_ms(model, body)
        print(
            f"predict_fn, {rows} row(s)/request: string categories {ms['categorical']:.3f} ms, "
            f"numbers only {ms['numeric']:.3f} ms, ratio {ms['categorical'] / ms['numeric']:.2f}"
        )


def make(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder


def main() -> int:
    from fixtures.tasks import CHURN_CONFIG, RENT_CONFIG, churn_frame, rent_frame

    with tempfile.TemporaryDirectory() as tmp:
        churn, t1 = pipeline_metrics(
            CHURN_CONFIG, churn_frame(ROWS, seed=21), make(Path(tmp) / "c")
        )
        rent, t2 = pipeline_metrics(RENT_CONFIG, rent_frame(ROWS, seed=22), make(Path(tmp) / "r"))
        print(
            f"churn fixture ({ROWS} rows, binary classification): AUC {churn['auc']:.4f}, "
            f"log loss {churn['log_loss']:.4f}, accuracy {churn['accuracy']:.4f}, "
            f"F1 {churn['f1']:.4f} (pipeline {t1:.1f} s)"
        )
        print(
            f"rent fixture ({ROWS} rows, regression, string categories): MSE {rent['mse']:.1f} "
            f"(noise floor 3600, ratio {rent['mse'] / 3600:.2f}), R2 {rent['r2']:.5f} "
            f"(pipeline {t2:.1f} s)"
        )
        serving_ratio(Path(tmp) / "serving")
    return 0


if __name__ == "__main__":
    sys.exit(main())
