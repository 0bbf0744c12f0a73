"""model_xgboost: the XGBoost model family (the example's default; config train.model: xgboost).

Trains with early stopping on the validation split and keeps the best round; string
categories use XGBoost's native categorical support and missing values its learnt
default directions. The booster is saved in XGBoost's own JSON format (never pickle).
Trains and serves on SageMaker's XGBoost 3.2-0 framework image.

The hyperparameters are xgboost.train's: booster parameters, plus `num_round` and
`early_stopping_rounds` (its own arguments). The library is imported only when a model
is trained or loaded, so the machinery can read this module's metadata cheaply.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from stepkit.contract import Fitted, RoundCallback

NAME = "xgboost"
IMAGE = "xgboost"
LIBRARIES = ("xgboost",)
DISTRIBUTED = True  # across SageMaker training instances (XGBoost collective)
MODEL_FILE = "xgboost-model.json"
TRAIN_ARGUMENTS = frozenset({"num_round", "early_stopping_rounds"})  # xgboost.train's own
# What `Booster.save_config()` reports across boosters and objectives, plus the aliases
# XGBoost accepts (tests/unit/test_model_families.py checks them against the installed
# library): XGBoost warns about an unknown name and trains on with the default, so a typo
# would cost a whole run.
BOOSTER_PARAMETERS = frozenset(
    {
        "alpha", "base_score", "boost_from_average", "booster", "colsample_bylevel",
        "colsample_bynode", "colsample_bytree", "debug_synchronize", "device",
        "disable_default_eval_metric", "eta", "eval_metric", "fail_on_invalid_gpu_id",
        "feature_selector", "gamma", "grow_policy", "huber_slope", "interaction_constraints",
        "lambda", "learning_rate", "max_bin", "max_cached_hist_node", "max_cat_threshold",
        "max_cat_to_onehot", "max_delta_step", "max_depth", "max_leaves", "max_row_perbatch",
        "min_child_weight", "min_split_loss", "monotone_constraints", "multi_strategy",
        "n_jobs", "normalize_type", "nthread", "num_class", "num_feature", "num_parallel_tree",
        "num_target", "objective", "one_drop", "process_type", "random_state", "rate_drop",
        "refresh_leaf", "reg_alpha", "reg_lambda", "sample_type", "sampling_method",
        "scale_pos_weight", "seed", "seed_per_iteration", "skip_drop", "sparse_threshold",
        "subsample", "tolerance", "top_k", "tree_method", "tweedie_variance_power", "updater",
        "validate_parameters", "verbosity", "quantile_alpha", "aft_loss_distribution",
        "aft_loss_distribution_scale", "lambdarank_pair_method", "lambdarank_num_pair_per_sample",
        "lambdarank_unbiased", "lambdarank_bias_norm", "ndcg_exp_gain", "use_rmm",
    }
)  # fmt: skip
PARAMETERS = BOOSTER_PARAMETERS | TRAIN_ARGUMENTS
DEFAULT_EVAL_METRIC = {"regression": "rmse", "binary_classification": "logloss"}
DEFAULT_OBJECTIVE = {"regression": "reg:squarederror", "binary_classification": "binary:logistic"}
MANY_ROWS = 100_000  # below this, one OpenMP thread trains as fast (see default_threads)


def defaults(task: str) -> dict[str, Any]:
    """Shallow trees with many small steps, stopped early on the validation split."""
    return {
        "objective": DEFAULT_OBJECTIVE[task],
        "max_depth": 3,
        "eta": 0.05,
        "subsample": 0.9,
        "min_child_weight": 1,
        "num_round": 3000,
        "early_stopping_rounds": 50,
        "seed": 42,
    }


def check(params: dict[str, Any], task: str) -> str | None:
    for name in params:
        if name not in PARAMETERS:
            close = difflib.get_close_matches(name, sorted(PARAMETERS), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return f"{name!r} is not an XGBoost parameter{hint}"
    rounds = params.get("num_round")
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
        return "num_round must be a positive integer"
    objective = str(params.get("objective", DEFAULT_OBJECTIVE[task]))
    if task == "binary_classification" and not objective.startswith("binary:"):
        return f"binary_classification needs a binary: objective, not {objective}"
    return None


def emitted_metrics(params: dict[str, Any], task: str) -> list[str]:
    names = params.get("eval_metric", DEFAULT_EVAL_METRIC[task])
    return [f"validation:{name}" for name in ([names] if isinstance(names, str) else names)]


TRACKER_PORT = 9099  # where the SageMaker XGBoost container starts its tracker
TRACKER_PORT_ENV = "DMLC_TRACKER_PORT"  # another port (two local processes playing hosts)
CONNECT_ATTEMPTS, CONNECT_WAIT_SECONDS = 100, 3


@contextlib.contextmanager
def cluster(hosts: list[str], current: str) -> Iterator[Callable[[Any], Any]]:
    """Train across `hosts` as the SageMaker XGBoost container does (its distributed.py):
    the first host (sorted names) runs XGBoost's collective tracker, every host joins it
    with its rank, and xgboost.train inside this block builds each tree from all hosts'
    rows (histograms and metrics summed across them). Yields share(value): the first
    host's value, on every host."""
    import socket

    from xgboost import collective
    from xgboost.tracker import RabitTracker

    names = sorted(hosts)
    address = socket.gethostbyname(names[0])
    port = int(os.environ.get(TRACKER_PORT_ENV) or TRACKER_PORT)
    tracker = None
    if current == names[0]:
        tracker = RabitTracker(n_workers=len(names), host_ip=address, port=port, sortby="task")
        tracker.start()
    _wait_for(address, port)
    try:
        with collective.CommunicatorContext(
            dmlc_tracker_uri=address,
            dmlc_tracker_port=port,
            dmlc_task_id=str(names.index(current)),
        ):
            # in a 1-tuple: the library refuses to broadcast a bare None
            yield lambda value: collective.broadcast((value,), 0)[0]
    finally:
        if tracker is not None:
            tracker.wait_for()
            tracker.free()


def _wait_for(address: str, port: int) -> None:
    """Until the tracker listens: hosts start in any order."""
    import socket
    import time

    for _ in range(CONNECT_ATTEMPTS):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex((address, port)) == 0:
                return
        time.sleep(CONNECT_WAIT_SECONDS)
    raise RuntimeError(f"no XGBoost tracker at {address}:{port}")


def default_threads(rows: int) -> int:
    """OpenMP threads: all cores only where they pay off, unless OMP_NUM_THREADS says.

    Measured on 2 cores with 6k training rows: 2 threads are no faster than one
    (0.74 s vs 0.77 s), and on a busy machine their spin-waits make training up to
    10x slower. Set `nthread` in the hyperparameters to override."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return int(os.environ["OMP_NUM_THREADS"])
    return (os.cpu_count() or 1) if rows >= MANY_ROWS else 1


def booster_parameters(params: dict[str, Any], task: str, rows: int) -> dict[str, Any]:
    """xgboost.train's booster parameters: the config's, with the task's defaults."""
    booster_params = {k: v for k, v in params.items() if k not in TRAIN_ARGUMENTS}
    booster_params.setdefault("objective", DEFAULT_OBJECTIVE[task])
    booster_params.setdefault("eval_metric", DEFAULT_EVAL_METRIC[task])
    booster_params.setdefault("nthread", default_threads(rows))
    return booster_params


def fit(X, y, X_val, y_val, params: dict[str, Any], task: str, on_round: RoundCallback) -> Fitted:
    import xgboost as xgb

    booster_params = booster_parameters(params, task, len(y))
    dtrain = xgb.DMatrix(X, label=y, enable_categorical=True)
    dval = xgb.DMatrix(X_val, label=y_val, enable_categorical=True)
    return boosted(booster_params, dtrain, dval, params, on_round)


# Past this many training values (rows x columns) the quantised training matrix is kept
# on disk, a page at a time (ExtMemQuantileDMatrix). Held in memory it takes about one
# byte per value (max_bin <= 256): 10M rows of 8 columns are ~80 MB, where the disk's
# extra read per round costs more than the memory saves.
EXTERNAL_MEMORY_VALUES = 1_000_000_000


def fit_batches(train, validation, params: dict[str, Any], task: str, on_round) -> Fitted:
    """`fit` for splits too large to hold (stepkit.contract.Batches): XGBoost reads the
    chunks through a DataIter into a quantised matrix (QuantileDMatrix; on disk past
    EXTERNAL_MEMORY_VALUES), so the rows are never held as floats."""
    import xgboost as xgb

    booster_params = booster_parameters(params, task, train.rows)
    max_bin = int(booster_params.get("max_bin", 256))
    external = train.rows * train.columns > EXTERNAL_MEMORY_VALUES
    if external:
        reader = _chunk_reader(xgb, train, cache_prefix=str(Path(train.scratch) / "train"))
        dtrain = xgb.ExtMemQuantileDMatrix(reader, max_bin=max_bin, enable_categorical=True)
    else:
        dtrain = xgb.QuantileDMatrix(_chunk_reader(xgb, train), max_bin=max_bin,
                                     enable_categorical=True)  # fmt: skip
    dval = xgb.QuantileDMatrix(_chunk_reader(xgb, validation), ref=dtrain, max_bin=max_bin,
                               enable_categorical=True)  # fmt: skip
    return boosted(booster_params, dtrain, dval, params, on_round)


def _chunk_reader(xgb, batches, cache_prefix: str | None = None):
    """An xgboost.DataIter over the (X, y) chunks of `batches`: XGBoost calls `next` until
    it returns False, then `reset` before it reads the split again (four passes in 3.2).
    The first pass reads the split and keeps each chunk as the float matrix XGBoost takes
    (`as_matrix`) in `batches.scratch`; the others read those back, at 4 bytes a value,
    instead of parsing the CSV again (~10x the time)."""
    import numpy as np

    class ChunkReader(xgb.DataIter):
        def __init__(self):
            self.chunks, self.saved, self.complete, self.position = None, [], False, 0
            self.names: list[str] = []
            self.types: list[str] = []
            super().__init__(cache_prefix=cache_prefix)

        def next(self, input_data) -> bool:
            if self.complete:
                if self.position == len(self.saved):
                    return False
                matrix_file, label_file = self.saved[self.position]
                matrix, label = np.load(matrix_file), np.load(label_file)
                self.position += 1
            else:
                if self.chunks is None:
                    self.chunks = batches.iterate()
                chunk = next(self.chunks, None)
                if chunk is None:
                    self.complete = True
                    return False
                matrix, self.types = as_matrix(chunk[0])
                self.names, label = list(chunk[0].columns), np.asarray(chunk[1], np.float32)
                stem = Path(batches.scratch) / f"chunk-{id(self)}-{len(self.saved):05d}"
                self.saved.append((stem.with_suffix(".x.npy"), stem.with_suffix(".y.npy")))
                np.save(self.saved[-1][0], matrix)
                np.save(self.saved[-1][1], label)
            input_data(data=matrix, label=label, feature_names=self.names,
                       feature_types=self.types)  # fmt: skip
            return True

        def reset(self) -> None:
            self.position = 0
            if not self.complete:  # a first pass cut short: read the split again
                self.chunks, self.saved = None, []

    return ChunkReader()


def boosted(booster_params: dict, dtrain, dval, params: dict[str, Any], on_round) -> Fitted:
    """xgboost.train with early stopping on `dval`, cut back to its best round."""
    import xgboost as xgb

    class Rounds(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch: int, evals_log: dict) -> bool:
            on_round(
                epoch, {f"{d}:{m}": v[-1] for d, ms in evals_log.items() for m, v in ms.items()}
            )
            return False

    booster = xgb.train(
        booster_params,
        dtrain,
        num_boost_round=int(params["num_round"]),
        evals=[(dval, "validation")],
        early_stopping_rounds=params.get("early_stopping_rounds"),
        verbose_eval=False,
        callbacks=[Rounds()],
    )
    rounds = booster.num_boosted_rounds()
    best = getattr(booster, "best_iteration", None)
    best = rounds - 1 if best is None else int(best)
    # Drop the trees grown after the best validation score, so any reader predicts alike.
    kept = booster[: best + 1] if best + 1 < rounds else booster
    return Fitted(kept, best_round=best, rounds=rounds)


def save(model, folder: Path) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    model.save_model(Path(folder) / MODEL_FILE)


def load(folder: Path):
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(Path(folder) / MODEL_FILE)
    booster.set_param({"nthread": 1})  # one request, one thread: servers scale by workers
    return booster


def importance(model) -> dict[str, float]:
    """Total gain of each feature's splits (a feature no tree splits on: 0), for the model
    card; optional in the contract: a family without it has no importance plot."""
    gains = model.get_score(importance_type="total_gain")
    return {name: float(gains.get(name, 0.0)) for name in model.feature_names or gains}


def as_matrix(X):
    """(float32 matrix, XGBoost feature types) of features.transform's frame: a category
    as its code (the position of its level, which features.py fixed at training), a
    missing one as NaN; "c" marks a categorical column, "q" a number."""
    import numpy as np
    import pandas as pd

    matrix = np.empty(X.shape, dtype=np.float32)
    types = []
    for j, name in enumerate(X.columns):
        values = X[name].array
        if isinstance(values, pd.Categorical):
            matrix[:, j] = np.where(values.codes < 0, np.nan, values.codes)
            types.append("c")
        else:
            matrix[:, j] = values.to_numpy(dtype=np.float32, na_value=np.nan)
            types.append("q")
    return matrix, types


def predict(model, X):
    """From a float matrix (`as_matrix`: the booster knows which features are categorical).
    Given a DataFrame of categoricals XGBoost spends ~1 ms more a call."""
    import numpy as np
    import pandas as pd

    if not any(isinstance(kind, pd.CategoricalDtype) for kind in X.dtypes):
        return scored(model, X.to_numpy(dtype=np.float32, na_value=np.nan))
    return scored(model, as_matrix(X)[0])


def scored(model, matrix):
    """inplace_predict. A large matrix (evaluate's chunks) is cut in one part per core,
    scored side by side: the booster serves with one thread, and XGBoost documents
    `inplace_predict` from several threads as safe and lock-free (the GIL is let go).
    Measured: 2M rows of a 3,000-tree model, 38.6 s in one call on 2 cores."""
    import numpy as np

    cores = default_threads(len(matrix))
    if cores < 2:
        return model.inplace_predict(matrix)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(cores) as pool:
        parts = pool.map(model.inplace_predict, np.array_split(matrix, cores))
        return np.concatenate(list(parts))
