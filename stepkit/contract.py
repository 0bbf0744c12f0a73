"""The contracts between the template's machinery and a project's own code, declared once.

Two things in `model_build/steps/` are the project's choice and are reached only
through these:

- a **model family** (`ModelFamily`): a module such as `model_xgboost.py`, named in
  config `train.model` and listed in `families.py`. The machinery reads its metadata
  (name, SageMaker image, parameter names, libraries) without importing the library;
  the train step calls `fit`, `save`, and the serving code `load` and `predict`.
- the **serving handler** (`inference.py`, shipped inside every model artifact): the
  SageMaker handler functions, plus `score_frame` for batch scoring, drift and
  monitoring. `model_fn` returns a `ServingModel`. A version whose handler breaks this
  contract is refused at registration with one line (`check_handler`, `check_model`).

Both are checked by structure, as `typing.Protocol`s are: nothing needs to inherit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

TASKS = ("regression", "binary_classification")

# Called by a family's fit once per boosting round (or iteration) with the validation
# scores, named `validation:<metric>`: the train step writes them to its curve and log.
RoundCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class FeatureSpec:
    """What the fitted preprocessing (features.py) is told about the data."""

    features: list[str]  # the raw input columns, in the order a request holds them
    text: list[str]  # those taken as text (categories); the rest are numbers
    target: str
    task: str = "regression"
    max_categories: int = 256  # levels kept per text feature (the most frequent)


@dataclass(frozen=True)
class Fitted:
    """A trained model and the round it was kept at (for the training summary)."""

    model: Any
    best_round: int  # 0-based; the scores of this round are the model's
    rounds: int  # rounds (iterations) trained


@dataclass(frozen=True)
class Batches:
    """A split too large to hold (over stepkit.splits.STREAM_ABOVE_MB), as the train step
    hands it to a family's optional `fit_batches`: `iterate()` reads the split again from
    disk and yields (X, y) a chunk at a time, X as features.transform returns it."""

    iterate: Callable[[], Iterator[tuple[Any, Any]]]
    rows: int
    columns: int
    scratch: Path  # a folder the family may fill with on-disk caches (removed after)


class ModelFamily(Protocol):
    """A module that trains and serves one kind of model (see model_xgboost.py)."""

    NAME: str  # the value of config train.model
    IMAGE: (
        str  # SageMaker framework image that trains, evaluates and serves it: "xgboost", "sklearn"
    )
    LIBRARIES: tuple[str, ...]  # modules the local runner imports once for every step
    PARAMETERS: frozenset[str]  # hyperparameter names it knows (early config errors, tuning)
    # Trains across instances (sagemaker.training_instance_count > 1); such a family also
    # has cluster(hosts, current): a context manager joining the hosts, yielding
    # share(value) -> the first host's value (see stepkit/distributed.py).
    DISTRIBUTED: bool

    def defaults(self, task: str) -> dict[str, Any]:
        """Hyperparameters `mlops init` writes for a new project."""

    def check(self, params: Mapping[str, Any], task: str) -> str | None:
        """The first problem with these hyperparameters, in one line, or None."""

    def emitted_metrics(self, params: Mapping[str, Any], task: str) -> list[str]:
        """The `validation:<metric>` names fit reports (a tuning objective is one of them)."""

    def fit(
        self,
        X: Any,
        y: Any,
        X_val: Any,
        y_val: Any,
        params: dict[str, Any],
        task: str,
        on_round: RoundCallback,
    ) -> Fitted:
        """Train on X (features.transform's frame: floats and categoricals, NaN missing)."""

    # Optional: fit_batches(train: Batches, validation: Batches, params, task, on_round)
    # -> Fitted, for splits too large to hold, read a chunk at a time (model_xgboost.py:
    # XGBoost's QuantileDMatrix over a DataIter). A family without it is given the whole
    # split as one frame, its transformed columns only (no text held).

    def save(self, model: Any, folder: Any) -> None:
        """Write the model's files into `folder` (its own format; never executable code)."""

    def load(self, folder: Any) -> Any:
        """Read what `save` wrote."""

    def predict(self, model: Any, X: Any) -> Any:
        """One float per row: the value, or the positive class's probability."""


@runtime_checkable
class ServingModel(Protocol):
    """What inference.model_fn returns: the machinery reads these and nothing else."""

    @property
    def features(self) -> list[str]:
        """The raw input columns a request holds, in order."""

    @property
    def text_features(self) -> list[str]:
        """Those of `features` taken as text (categories)."""

    @property
    def task(self) -> str: ...

    @property
    def class_labels(self) -> Sequence[str] | None:
        """[negative, positive] for a classifier, else None."""

    @property
    def threshold(self) -> float:
        """A classifier's decision threshold on the positive probability."""


# The handler module's functions: SageMaker's four, and score_frame(model, frame) ->
# (predictions, reasons) for files: one float per row (NaN where it could not be
# scored) and the reason per row ("" when scored).
HANDLER_FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn", "score_frame")
# Exceptions a handler raises for the client's mistakes (the server answers 4xx).
HANDLER_ERRORS = ("InvalidInput", "UnsupportedContentType")


@dataclass(frozen=True)
class ContractError(Exception):
    """The code or the model breaks the serving contract; one line says how."""

    message: str
    problems: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return self.message


def check_handler(module: ModuleType) -> None:
    """Refuse a handler module that lacks a contract function or error class."""
    missing = [n for n in HANDLER_FUNCTIONS if not callable(getattr(module, n, None))]
    missing += [n for n in HANDLER_ERRORS if not isinstance(getattr(module, n, None), type)]
    if missing:
        where = getattr(module, "__file__", module.__name__)
        raise ContractError(
            f"{where} breaks the serving contract: it lacks {', '.join(missing)} "
            "(stepkit/contract.py)",
            tuple(missing),
        )


def check_handler_source(path: Any) -> None:
    """`check_handler` without importing: the module's top level must define the contract's
    functions and error classes (what a registration checks before it records a version)."""
    import ast
    from pathlib import Path

    path = Path(path)
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path} cannot be read as Python: {exc}") from None
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    defined |= {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    defined |= {  # `score_frame = _score_rows`, `InvalidInput = ValueError`
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    missing = [n for n in (*HANDLER_FUNCTIONS, *HANDLER_ERRORS) if n not in defined]
    if missing:
        raise ContractError(
            f"{path} breaks the serving contract: it lacks {', '.join(missing)} "
            "(stepkit/contract.py)",
            tuple(missing),
        )


def check_model(model: object) -> None:
    """Refuse a loaded model that does not answer what the machinery reads."""
    problems = []
    if not isinstance(model, ServingModel):
        problems = [n for n in ("features", "text_features", "task", "class_labels", "threshold")
                    if not hasattr(model, n)]  # fmt: skip
    else:
        features, text = list(model.features), list(model.text_features)
        if not features or not all(isinstance(f, str) for f in features):
            problems.append("features must be a non-empty list of column names")
        if set(text) - set(features):
            problems.append("text_features must be among features")
        if model.task not in TASKS:
            problems.append(f"task must be one of {TASKS}, not {model.task!r}")
        labels = model.class_labels
        if model.task == "binary_classification" and (labels is None or len(labels) != 2):
            problems.append("a classifier needs two class_labels [negative, positive]")
        threshold = model.threshold
        if not isinstance(threshold, int | float) or not 0 < threshold < 1:
            problems.append(f"threshold must be a number between 0 and 1, not {threshold!r}")
    if problems:
        raise ContractError(
            f"the model {type(model).__name__} breaks the serving contract: "
            + "; ".join(problems)
            + " (stepkit/contract.py ServingModel)",
            tuple(problems),
        )
