"""stepkit.contract: the serving handler and the model it loads are checked by structure;
a version that breaks the contract is refused in one line, at evaluation and at
registration (without importing its code)."""

from __future__ import annotations

import tarfile
import types
from dataclasses import dataclass, field

import inference
import pytest

from mlops.core.errors import StepFailed
from mlops.core.paths import REPO_ROOT
from mlops.local.runner import check_serving_code
from stepkit.contract import (
    HANDLER_ERRORS,
    HANDLER_FUNCTIONS,
    ContractError,
    check_handler,
    check_handler_source,
    check_model,
)

HANDLER = REPO_ROOT / "model_build" / "steps" / "inference.py"


@dataclass
class Served:
    features: list = field(default_factory=lambda: ["a", "b"])
    text_features: list = field(default_factory=lambda: ["b"])
    task: str = "binary_classification"
    class_labels: list | None = field(default_factory=lambda: ["no", "yes"])
    threshold: float = 0.5


def without(name: str) -> types.ModuleType:
    module = types.ModuleType("handler")
    for attr in (*HANDLER_FUNCTIONS, *HANDLER_ERRORS):
        if attr != name:
            setattr(module, attr, getattr(inference, attr))
    return module


def test_the_projects_handler_keeps_the_contract():
    check_handler(inference)
    check_handler_source(HANDLER)


@pytest.mark.parametrize("name", [*HANDLER_FUNCTIONS, *HANDLER_ERRORS])
def test_a_handler_lacking_a_function_or_error_is_refused_by_name(name, tmp_path):
    with pytest.raises(ContractError, match=rf"breaks the serving contract: it lacks {name} "):
        check_handler(without(name))
    source = HANDLER.read_text().replace(f"def {name}(", f"def renamed_{name}(")
    source = source.replace(f"class {name}(", f"class Renamed{name}(")
    (tmp_path / "inference.py").write_text(source)
    with pytest.raises(ContractError) as err:
        check_handler_source(tmp_path / "inference.py")
    assert err.value.problems == (name,) and "\n" not in str(err.value)


def test_a_handler_may_define_by_import_or_assignment(tmp_path):
    source = HANDLER.read_text().replace("def score_frame(", "def _score_rows(")
    (tmp_path / "inference.py").write_text(source + "\n\nscore_frame = _score_rows\n")
    check_handler_source(tmp_path / "inference.py")
    (tmp_path / "handler.py").write_text(
        "from inference import InvalidInput, UnsupportedContentType, input_fn, model_fn, "
        "output_fn, predict_fn, score_frame\n"
    )
    check_handler_source(tmp_path / "handler.py")


def test_a_handler_that_is_no_python_is_refused(tmp_path):
    (tmp_path / "inference.py").write_text("def model_fn(:\n")
    with pytest.raises(ContractError, match="cannot be read as Python"):
        check_handler_source(tmp_path / "inference.py")


def test_a_well_formed_model_passes():
    check_model(Served())
    check_model(Served(task="regression", class_labels=None, text_features=[]))


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        (Served(features=[]), "features must be a non-empty list of column names"),
        (Served(text_features=["c"]), "text_features must be among features"),
        (Served(task="ranking"), "task must be one of"),
        (Served(class_labels=["yes"]), "a classifier needs two class_labels"),
        (Served(threshold=1.5), "threshold must be a number between 0 and 1, not 1.5"),
        (Served(threshold="0.5"), "threshold must be a number between 0 and 1, not '0.5'"),
        (object(), "features; text_features; task; class_labels; threshold"),
    ],
)
def test_a_model_breaking_the_contract_is_refused_in_one_line(model, problem):
    with pytest.raises(ContractError, match=problem) as err:
        check_model(model)
    assert "\n" not in str(err.value) and "ServingModel" in str(err.value)


def archive(tmp_path, files: dict[str, str]):
    path = tmp_path / "model.tar.gz"
    for name, text in files.items():
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / name).write_text(text)
    with tarfile.open(path, "w:gz") as tar:
        for name in files:
            tar.add(tmp_path / "src" / name, arcname=name)
    return path


def test_registration_refuses_a_version_whose_handler_breaks_the_contract(tmp_path):
    check_serving_code(archive(tmp_path / "good", {"code/inference.py": HANDLER.read_text()}))
    broken = HANDLER.read_text().replace("def score_frame(", "def score_rows(")
    with pytest.raises(StepFailed, match=r"^not registered: code/inference\.py breaks the serving "
                       r"contract: it lacks score_frame \(stepkit/contract\.py\)$"):  # fmt: skip
        check_serving_code(archive(tmp_path / "broken", {"code/inference.py": broken}))
    with pytest.raises(StepFailed, match=r"holds no code/inference\.py"):
        check_serving_code(archive(tmp_path / "none", {"manifest.json": "{}"}))
