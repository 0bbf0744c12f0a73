"""The quality gate: evaluation.json against the thresholds in config.

The SageMaker pipeline's ConditionStep checks the same three conditions with
the same numbers (see `model_build/pipeline.py` and the parity test):

- regression: mse <= max_mse, r2 >= min_r2, mse <= champion's mse x (1 + pct/100)
- binary_classification: auc >= min_auc, log_loss <= max_log_loss,
  log_loss <= champion's log_loss x (1 + pct/100)

With a golden evaluation set (config data.golden) the gate also checks the challenger
on it: regression r2 >= min_r2 and mse <= champion's golden mse x (1 + pct/100);
binary_classification auc >= min_auc and log_loss <= champion's golden log_loss x (1 + pct/100).
The ConditionStep has the same two conditions then (golden.* in evaluation.json).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops.core.graph import Gate


@dataclass(frozen=True)
class Check:
    metric: str
    value: float
    op: str  # "<=" or ">="
    threshold: float
    passed: bool

    def __str__(self) -> str:
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


def champion_mse_limit(champion_mse: float, max_regression_pct: float) -> float:
    """The highest challenger MSE allowed next to a champion scored on the same rows."""
    return champion_mse * (1.0 + max_regression_pct / 100.0)


def check_gate(evaluation: dict, gate: Gate) -> Verdict:
    """Check the task's metrics and (when a champion was scored) the regression against it."""
    if gate.task == "binary_classification":
        return check_classification_gate(evaluation, gate)
    metrics = evaluation["regression_metrics"]
    mse = float(metrics["mse"]["value"])
    r2 = float(metrics["r2"]["value"])
    checks = [
        Check("mse", mse, "<=", gate.max_mse, mse <= gate.max_mse),
        Check("r2", r2, ">=", gate.min_r2, r2 >= gate.min_r2),
    ]
    champion = evaluation.get("champion")
    if champion:
        limit = champion_mse_limit(
            float(champion["regression_metrics"]["mse"]["value"]), gate.max_regression_pct
        )
        checks.append(Check("mse vs champion", mse, "<=", limit, mse <= limit))
    golden = evaluation.get("golden")
    if golden:  # the reviewed reference rows: a shifted target cannot hide behind its own split
        golden_r2 = float(golden["regression_metrics"]["r2"]["value"])
        checks.append(Check("golden r2", golden_r2, ">=", gate.min_r2, golden_r2 >= gate.min_r2))
        if golden.get("champion"):
            golden_mse = float(golden["regression_metrics"]["mse"]["value"])
            limit = champion_mse_limit(
                float(golden["champion"]["regression_metrics"]["mse"]["value"]),
                gate.max_regression_pct,
            )
            checks.append(
                Check("golden mse vs champion", golden_mse, "<=", limit, golden_mse <= limit)
            )
    return Verdict(tuple(checks))


def check_classification_gate(evaluation: dict, gate: Gate) -> Verdict:
    """AUC, log loss and (when a champion was scored) the log loss against the champion's."""
    metrics = evaluation["binary_classification_metrics"]
    auc = float(metrics["auc"]["value"])
    log_loss = float(metrics["log_loss"]["value"])
    checks = [
        Check("auc", auc, ">=", gate.min_auc, auc >= gate.min_auc),
        Check("log_loss", log_loss, "<=", gate.max_log_loss, log_loss <= gate.max_log_loss),
    ]
    champion = evaluation.get("champion")
    if champion:
        limit = champion_mse_limit(
            float(champion["binary_classification_metrics"]["log_loss"]["value"]),
            gate.max_regression_pct,
        )
        checks.append(Check("log_loss vs champion", log_loss, "<=", limit, log_loss <= limit))
    golden = evaluation.get("golden")
    if golden:  # the reviewed reference rows, as for regression: auc, and log loss vs champion
        golden_metrics = golden["binary_classification_metrics"]
        golden_auc = float(golden_metrics["auc"]["value"])
        checks.append(
            Check("golden auc", golden_auc, ">=", gate.min_auc, golden_auc >= gate.min_auc)
        )
        if golden.get("champion"):
            golden_loss = float(golden_metrics["log_loss"]["value"])
            limit = champion_mse_limit(
                float(golden["champion"]["binary_classification_metrics"]["log_loss"]["value"]),
                gate.max_regression_pct,
            )
            checks.append(
                Check("golden log_loss vs champion", golden_loss, "<=", limit, golden_loss <= limit)
            )
    return Verdict(tuple(checks))
