"""The project's model family, as the machinery sees it: metadata through one declared contract.

The families live in `model_build/steps/` (listed in `families.py`; the contract is
`stepkit.contract.ModelFamily`). The machinery reads what it needs from them (the
SageMaker image, the libraries to preload, the hyperparameter names a config and a
tuning range may use, the metrics training reports) and never imports a model library
itself: the family modules import theirs only to train or load a model.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from mlops.core.errors import UsageError
from mlops.core.paths import REPO_ROOT

STEPS_DIR = REPO_ROOT / "model_build" / "steps"
REGISTRY_MODULE = "families"


def families(steps_dir: Path = STEPS_DIR) -> ModuleType:
    """The project's `families.py` (step modules import each other as top-level names, as in
    a container, so the steps folder goes on the path, after everything else)."""
    if str(steps_dir) not in sys.path:
        sys.path.append(str(steps_dir))
    try:
        return importlib.import_module(REGISTRY_MODULE)
    except ImportError as exc:
        raise UsageError(f"cannot import {steps_dir / 'families.py'}: {exc}") from None


def default_family_name() -> str:
    """The family a config without train.model uses: the first one families.py lists."""
    return next(iter(families().FAMILIES))


def model_family(name: str | None) -> ModuleType:
    """The family module `name` (config train.model); UsageError naming the known ones."""
    registry = families()
    try:
        return registry.family(name or default_family_name())
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def range_values(spec: Any) -> list:
    """The values of a tuning range (config's RangeConfig) a family is asked about: its
    ends, or every value."""
    if spec.type == "categorical":
        return list(spec.values or [])
    cast = int if spec.type == "integer" else float
    return [cast(spec.min), cast(spec.max)]


def config_problem(family: ModuleType, params: dict, task: str, ranges: dict) -> str | None:
    """The first problem of train's hyperparameters and tuning ranges for this family, as
    `key.path: reason`, or None. A trial trains on the hyperparameters with the tuned
    values in place, so each range's values are checked that way (and a hyperparameter
    only a range sets, e.g. a tuned number of rounds, counts as set)."""
    lows = {name: range_values(spec)[0] for name, spec in ranges.items()}
    known_lows = {name: value for name, value in lows.items() if name in family.PARAMETERS}
    problem = family.check({**known_lows, **params}, task)
    if problem:
        return f"train.hyperparameters: {problem}"
    for name, spec in ranges.items():
        for value in range_values(spec):
            problem = family.check({**params, **known_lows, name: value}, task)
            if problem:
                return f"train.tuning.ranges.{name}: {problem}"
    return None
