"""The model side of a local endpoint: loading inference.py's handlers, scoring in batches.

The handlers (`model_fn`, `input_fn`, `predict_fn`, `output_fn`) are loaded exactly
as SageMaker's XGBoost container loads them. `Batcher` scores requests that arrive
together with one predict_fn call. Both are kept apart from the HTTP handling in
`mlops.local.endpoint_app` because they are about the model, not about the protocol.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.core.errors import MlopsError


@dataclass(frozen=True)
class Handlers:
    """inference.py's functions and the exceptions that mean "the client's fault"."""

    model_fn: Callable[[str], Any]
    input_fn: Callable[[bytes, str], Any]
    predict_fn: Callable[[Any, Any], Any]
    output_fn: Callable[[Any, str], Any]
    bad_input: tuple[type[BaseException], ...]
    unsupported: tuple[type[BaseException], ...]


def _skip_unused_sklearn(code_dir: Path) -> None:
    """Serving never uses scikit-learn, but importing xgboost imports it (~2.5 s of a 3.5 s
    start). Unless the handler code mentions it, tell Python it is absent."""
    if "sklearn" in sys.modules:
        return
    sources = (p.read_text(errors="replace") for p in code_dir.glob("*.py"))
    if not any("sklearn" in text for text in sources):
        sys.modules["sklearn"] = None  # type: ignore[assignment]  # `import sklearn` -> ImportError


def load_handlers(
    code_dir: Path, module_name: str = "inference", skip_sklearn: bool = False
) -> Handlers:
    """Import `<code_dir>/inference.py` (siblings importable, as in a SageMaker container).

    `skip_sklearn` only in a process that does nothing but serve: it hides scikit-learn
    from the whole process, so a caller that shares its process (batch scoring, tests)
    must leave it off."""
    code_dir = Path(code_dir).resolve()
    path = code_dir / f"{module_name}.py"
    if not path.is_file():
        raise MlopsError(f"handler module not found: {path}")
    if skip_sklearn:
        _skip_unused_sklearn(code_dir)
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    module = sys.modules.get(module_name)
    if module is None or Path(getattr(module, "__file__", "")).resolve() != path:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    missing = [
        n for n in ("model_fn", "input_fn", "predict_fn", "output_fn") if not hasattr(module, n)
    ]
    if missing:
        raise MlopsError(f"{path} lacks handler function(s): {', '.join(missing)}")
    bad_input = getattr(module, "InvalidInput", None)
    unsupported = getattr(module, "UnsupportedContentType", None)
    return Handlers(
        model_fn=module.model_fn,
        input_fn=module.input_fn,
        predict_fn=module.predict_fn,
        output_fn=module.output_fn,
        bad_input=(bad_input,) if bad_input else (),
        unsupported=(unsupported,) if unsupported else (),
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
