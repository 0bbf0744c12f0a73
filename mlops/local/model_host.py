"""The model side of a local endpoint: loading a model with its own handlers, scoring in batches.

A model artifact carries the code that serves it (`code/`: inference.py and its siblings,
stepkit/artifact.py). `load_model` checks every file of the artifact against the sha256
its manifest records, and refuses files the manifest does not list, *before* importing
that code; then it imports the handlers (`model_fn`, `input_fn`, `predict_fn`,
`output_fn`, `score_frame`) from there, as SageMaker's serving container does, and loads
the model with them. The endpoint, batch scoring and drift all load models here, so a
version is always scored by its own code, whatever the checkout holds today.

`Batcher` scores requests that arrive together with one predict_fn call. Both are kept
apart from the HTTP handling in `mlops.local.endpoint_app` because they are about the
model, not about the protocol.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.core.errors import MlopsError
from stepkit.artifact import CODE_DIR, MANIFEST, IntegrityError, read_manifest


@dataclass(frozen=True)
class Handlers:
    """inference.py's functions and the exceptions that mean "the client's fault"."""

    model_fn: Callable[[str], Any]
    input_fn: Callable[[bytes, str], Any]
    predict_fn: Callable[[Any, Any], Any]
    output_fn: Callable[[Any, str], Any]
    score_frame: Callable[[Any, Any], Any]
    bad_input: tuple[type[BaseException], ...]
    unsupported: tuple[type[BaseException], ...]


def skip_unused_sklearn(model_dir: Path) -> None:
    """Importing xgboost imports scikit-learn (~2.5 s of a 3.5 s server start), which an
    XGBoost model never uses: when the model's manifest records no scikit-learn among the
    libraries it was trained with, tell Python it is absent."""
    import json

    if "sklearn" in sys.modules:
        return
    try:
        versions = json.loads((Path(model_dir) / "manifest.json").read_text()).get("versions", {})
    except (OSError, ValueError):
        return
    if "sklearn" not in versions:
        sys.modules["sklearn"] = None  # type: ignore[assignment]  # `import sklearn` -> ImportError


def verify_artifact(model_dir: Path) -> dict:
    """The manifest of an unpacked artifact, once every file it lists matches its sha256 and
    no other file is there (an unlisted `code/numpy.py` or `__pycache__/` would be imported
    as readily as the listed code); MlopsError naming the first file that fails."""
    try:
        manifest = read_manifest(model_dir)
    except IntegrityError as exc:
        raise MlopsError(str(exc)) from None
    listed = {*manifest["files"], MANIFEST}
    unlisted = sorted(
        name
        for path in model_dir.rglob("*")
        if path.is_file() and (name := path.relative_to(model_dir).as_posix()) not in listed
    )
    if unlisted:
        raise MlopsError(
            f"{unlisted[0]} is in the model artifact but not in its manifest; refusing to load"
        )
    return manifest


def load_model(model_dir: Path | str, serving_process: bool = False) -> tuple[Handlers, Any]:
    """The handlers of the artifact's own code and the model they load, after checking the
    artifact (`verify_artifact`). `serving_process`: this process only serves (it may skip
    importing scikit-learn, see skip_unused_sklearn)."""
    model_dir = Path(model_dir).resolve()
    verify_artifact(model_dir)
    if serving_process:
        skip_unused_sklearn(model_dir)
    handlers = load_handlers(model_dir / CODE_DIR)
    return handlers, handlers.model_fn(str(model_dir))


def load_handlers(code_dir: Path, module_name: str = "inference") -> Handlers:
    """Import `<code_dir>/inference.py` with its siblings from the same folder (see
    stepkit.code_loader), checked against the serving contract (stepkit.contract).
    No bytecode is written into the folder: it stays exactly what the manifest lists."""
    from stepkit.code_loader import load_code
    from stepkit.contract import ContractError, check_handler

    code_dir = Path(code_dir).resolve()
    if not (code_dir / f"{module_name}.py").is_file():
        raise MlopsError(f"handler module not found: {code_dir / module_name}.py")
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        module = load_code(code_dir, module_name)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    try:
        check_handler(module)
    except ContractError as exc:
        raise MlopsError(str(exc)) from None
    return Handlers(
        model_fn=module.model_fn,
        input_fn=module.input_fn,
        predict_fn=module.predict_fn,
        output_fn=module.output_fn,
        score_frame=module.score_frame,
        bad_input=(module.InvalidInput,),
        unsupported=(module.UnsupportedContentType,),
    )


class Batcher:
    """Scores requests that arrive together with one predict_fn call (dynamic batching).

    Requests parsed in the same event-loop turn are queued; a callback scheduled behind
    them stacks their rows, calls predict_fn once and gives each request its slice.
    Nothing waits for a batch to fill: a lone request is scored at once. If the joint
    call fails (say one request holds a NaN), each request is scored alone, so every
    error stays with its own request. predict_fn must score rows independently, as
    XGBoost does; `--no-batching` turns this off.
    """

    def __init__(self, predict_fn: Callable[[Any, Any], Any], model: Any):
        self.predict_fn = predict_fn
        self.model = model
        self.pending: list[tuple[Any, asyncio.Future]] = []

    def submit(self, data: Any) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self.pending:
            loop.call_soon(self.flush)
        self.pending.append((data, future))
        return future

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        parts = self.predict_together([data for data, _ in batch]) if len(batch) > 1 else None
        for index, (data, future) in enumerate(batch):
            if future.done():  # the client went away
                continue
            if parts is not None:
                future.set_result(parts[index])
                continue
            try:
                future.set_result(self.predict_fn(data, self.model))
            except Exception as exc:
                future.set_exception(exc)

    def predict_together(self, inputs: list[Any]) -> list[Any] | None:
        """One prediction slice per input, or None when they cannot be scored together."""
        joined = join_rows(inputs)
        if joined is None:
            return None
        try:
            predictions = self.predict_fn(joined, self.model)
        except Exception:
            return None
        counts = [len(data) for data in inputs]
        if len(predictions) != sum(counts):
            return None
        bounds = [0, *itertools.accumulate(counts)]
        return [predictions[a:b] for a, b in itertools.pairwise(bounds)]


def join_rows(inputs: list[Any]) -> Any:
    """Rows of several parsed requests as one input: 2-D arrays of one width, or lists."""
    import numpy as np

    if all(isinstance(x, np.ndarray) and x.ndim == 2 for x in inputs):
        if len({x.shape[1] for x in inputs}) == 1:
            return np.concatenate(inputs)
        return None
    if all(isinstance(x, list) for x in inputs):
        return [row for x in inputs for row in x]
    return None
