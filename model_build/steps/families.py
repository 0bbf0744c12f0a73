"""families: the model families this project can train; config `train.model` names one.

Each is a module with the `ModelFamily` contract (stepkit/contract.py): metadata the
machinery reads (name, SageMaker image, parameter names) and fit/save/load/predict,
which the train step and the serving code call. None imports its library until it
trains or loads a model.

FORK: to train another kind of model, add a module like model_sklearn.py beside this
file and list it here; then set train.model (and its hyperparameters) in config.yaml.
"""

from __future__ import annotations

from types import ModuleType

import model_sklearn
import model_xgboost

FAMILIES: dict[str, ModuleType] = {family.NAME: family for family in (model_xgboost, model_sklearn)}


def family(name: str) -> ModuleType:
    """The family config train.model names; ValueError listing the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(
            f"unknown model family {name!r}: this project has {', '.join(sorted(FAMILIES))} "
            "(model_build/steps/families.py)"
        ) from None
