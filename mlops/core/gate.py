"""The quality gate: the pipeline's declared rules checked against evaluation.json.

`standard_gate(cfg)` is the task's gate, which `model_build/pipeline.py` declares (a
project may add rules of its own). The local runner checks the rules here; the
SageMaker pipeline renders the same rules as its ConditionStep, with the same numbers
(pipeline parameters of the same names): one declaration, two backends.

- regression: mse <= max_mse, r2 >= min_r2, mse <= the champion's mse x (1 + pct/100)
- binary_classification: auc >= min_auc, log_loss <= max_log_loss,
  log_loss <= the champion's log_loss x (1 + pct/100)

With a golden evaluation set (config data.golden) the challenger must also hold on it:
regression r2 >= min_r2 and mse <= the champion's golden mse x (1 + pct/100);
classification auc >= min_auc and log_loss <= the champion's golden log_loss x (1 + pct/100).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops.core.graph import Param, Rule

if TYPE_CHECKING:
    from mlops.core.config import Config

OPS = {"<=": operator.le, ">=": operator.ge}
PARAMETERS = {  # pipeline parameter names, by config gate key
    "max_mse": "MaxMse",
    "min_r2": "MinR2",
    "min_auc": "MinAuc",
    "max_log_loss": "MaxLogLoss",
    "max_regression_pct": "MaxRegressionPct",
}
MAX_REGRESSION_PCT = PARAMETERS["max_regression_pct"]


@dataclass(frozen=True)
class Check:
    metric: str
    value: float
    op: str  # "<=" or ">="
    threshold: float
    passed: bool
    problem: str = ""  # why the rule could not be checked (a value evaluation.json lacks)

    def __str__(self) -> str:
        if self.problem:
            return f"{self.metric}: {self.problem}: FAILED"
        verdict = "ok" if self.passed else "FAILED"
        return f"{self.metric} {self.value:.6g} {self.op} {self.threshold:.6g}: {verdict}"


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def param(cfg: Config, key: str) -> Param:
    """A gate threshold of the config as its pipeline parameter."""
    return Param(PARAMETERS[key], float(getattr(cfg.gate, key)))


def standard_gate(cfg: Config) -> tuple[Rule, ...]:
    """The task's gate rules for this config (see the module docstring)."""
    if cfg.task == "binary_classification":
        section, primary, limit = (
            "binary_classification_metrics",
            "log_loss",
            "champion_log_loss_limit",
        )
        rules = [
            Rule("auc", f"{section}.auc.value", ">=", param(cfg, "min_auc")),
            Rule("log_loss", f"{section}.log_loss.value", "<=", param(cfg, "max_log_loss")),
        ]
        golden_floor = Rule(
            "golden auc", f"golden.{section}.auc.value", ">=", param(cfg, "min_auc"), "golden"
        )
    else:
        section, primary, limit = "regression_metrics", "mse", "champion_mse_limit"
        rules = [
            Rule("mse", f"{section}.mse.value", "<=", param(cfg, "max_mse")),
            Rule("r2", f"{section}.r2.value", ">=", param(cfg, "min_r2")),
        ]
        golden_floor = Rule(
            "golden r2", f"golden.{section}.r2.value", ">=", param(cfg, "min_r2"), "golden"
        )
    rules.append(
        Rule(f"{primary} vs champion", f"{section}.{primary}.value", "<=", limit, "champion")
    )
    if cfg.golden_file is not None:
        rules += [
            golden_floor,
            Rule(
                f"golden {primary} vs champion",
                f"golden.{section}.{primary}.value",
                "<=",
                f"golden.{limit}",
                "golden.champion",
            ),
        ]
    return tuple(rules)


def lookup(evaluation: dict, path: str) -> object:
    """The value at a JsonGet path ("a.b.c") of evaluation.json; None when absent."""
    value: object = evaluation
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_gate(evaluation: dict, rules: tuple[Rule, ...]) -> Verdict:
    """Every rule that applies to this evaluation; a metric it lacks fails its rule."""
    checks = []
    for rule in rules:
        if rule.when is not None and not lookup(evaluation, rule.when):
            continue
        threshold = (
            rule.threshold.value
            if isinstance(rule.threshold, Param)
            else lookup(evaluation, rule.threshold)
        )
        value = lookup(evaluation, rule.metric)
        absent = [
            path
            for path, found in ((rule.metric, value), (rule.threshold, threshold))
            if not _is_number(found)
        ]
        if absent:
            problem = f"no number at {absent[0]} in evaluation.json"
            checks.append(Check(rule.label, float("nan"), rule.op, float("nan"), False, problem))
            continue
        passed = OPS[rule.op](float(value), float(threshold))
        checks.append(Check(rule.label, float(value), rule.op, float(threshold), passed))
    return Verdict(tuple(checks))
