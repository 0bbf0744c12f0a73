"""The cost of a change on SageMaker, in US dollars: a pipeline run, and each stage's endpoint.

A run costs, per step, its instance type's hourly price x instances x the seconds the
step ran (SageMaker bills processing and training jobs per second). An endpoint costs
its instances' hourly price x the hours in a month, between the autoscaling bounds when
autoscaling is on; a serverless endpoint costs nothing while idle and its memory x the
seconds it computes otherwise. Prices: `mlops.core.prices` (dated, with its source).
Estimates only: storage, data transfer and the first minutes of each job's start-up are
left out, and they say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mlops.core import prices

HOURS_PER_MONTH = 730  # AWS's own convention in its pricing examples (8,760 h / 12)
SERVERLESS_REQUEST_SECONDS = 0.1  # the assumed compute time of one request, per 1M requests


@dataclass(frozen=True)
class StepCost:
    step: str
    use: str  # processing | training
    instance_type: str
    instance_count: int
    seconds: float
    usd: float | None  # None: the instance type is not in the price table


def hourly(use: str, instance_type: str) -> float | None:
    return prices.INSTANCE_HOUR_USD.get(use, {}).get(instance_type)


def step_cost(step: str, use: str, instance_type: str, count: int, seconds: float) -> StepCost:
    price = hourly(use, instance_type)
    usd = None if price is None else price * count * seconds / 3600
    return StepCost(step, use, instance_type, count, seconds, usd)


def step_costs(cfg, graph, seconds: Mapping[str, float]) -> list[StepCost]:
    """Each step of `graph` that ran (`seconds` by step name) on the instances the config
    gives its kind: processing steps on processing_instance_type (as many as
    processing_instance_count when the step shares out the raw input, else one), training
    on training_*."""
    sm = cfg.sagemaker

    def instances(step) -> tuple[str, int]:
        if step.kind == "training":
            return sm.training_instance_type, sm.training_instance_count
        return sm.processing_instance_type, step.instances(sm.processing_instance_count)

    return [
        step_cost(step.name, step.kind, *instances(step), float(seconds[step.name]))
        for step in graph.steps
        if step.name in seconds
    ]


def run_total(steps: Iterable[StepCost]) -> float | None:
    """The run's cost; None when a step's instance type has no price."""
    costs = [s.usd for s in steps]
    return None if any(c is None for c in costs) else sum(costs)  # type: ignore[misc]


def usd(value: float | None) -> str:
    if value is None:
        return "unknown (no price for this instance type)"
    if value == 0:
        return "$0"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def price_note() -> str:
    return (
        f"on-demand prices of {prices.PRICES_AS_OF}, {prices.PRICES_REGION} "
        f"({prices.PRICES_SOURCE})"
    )


def run_cost_line(steps: list[StepCost]) -> str:
    """`estimated cost of this run on SageMaker: $0.0123: validate $0.0012 (...), ...`."""
    if not steps:
        return "estimated cost of this run on SageMaker: unknown (no job reported its times)"
    parts = ", ".join(
        f"{s.step} {usd(s.usd) if s.usd is not None else '?'} ({s.instance_count} x "
        f"{s.instance_type}, {s.seconds:.0f} s)"
        for s in steps
    )
    return f"estimated cost of this run on SageMaker: {usd(run_total(steps))}: {parts}"


# ---------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class EndpointCost:
    stage: str
    what: str  # "1 x ml.m5.large", "autoscaling 1-4 x ml.m5.large", "serverless 2048 MB"
    monthly_low: float | None
    monthly_high: float | None
    note: str = ""

    @property
    def monthly(self) -> str:
        if self.monthly_low is None:
            return "unknown (no price for this instance type)"
        if self.monthly_high is not None and self.monthly_high != self.monthly_low:
            return f"{usd(self.monthly_low)} to {usd(self.monthly_high)}"
        return usd(self.monthly_low)

    def to_row(self) -> dict:
        text = self.monthly + (f" ({self.note})" if self.note else "")
        return {"stage": self.stage, "what": self.what, "monthly": text}


def serverless_cost(stage: str, memory_mb: int, max_concurrency: int) -> EndpointCost:
    """Nothing while idle; at most every concurrent slot computing all month."""
    per_second = memory_mb / 1024 * prices.SERVERLESS_GB_SECOND_USD
    per_million = per_second * SERVERLESS_REQUEST_SECONDS * 1_000_000
    ceiling = per_second * max_concurrency * HOURS_PER_MONTH * 3600
    return EndpointCost(
        stage,
        f"serverless {memory_mb} MB, max concurrency {max_concurrency}",
        0.0,
        ceiling,
        f"$0 idle; {usd(per_million)} per million requests of "
        f"{SERVERLESS_REQUEST_SECONDS * 1000:.0f} ms; the ceiling is every slot busy all month",
    )


def endpoint_cost(stage: str, sagemaker: Mapping | object) -> EndpointCost:
    """From a stage config's `sagemaker` section (mlops.core.stages.SageMakerStage)."""
    serverless = getattr(sagemaker, "serverless", None)
    if serverless is not None:
        return serverless_cost(stage, serverless.memory_mb, serverless.max_concurrency)
    instance_type = sagemaker.instance_type
    price = hourly("hosting", instance_type)
    scaling = sagemaker.autoscaling
    low_count, high_count = (
        (scaling.min, scaling.max) if scaling.enabled else (sagemaker.instance_count,) * 2
    )
    what = (
        f"autoscaling {low_count}-{high_count} x {instance_type}"
        if scaling.enabled
        else f"{low_count} x {instance_type}"
    )
    if price is None:
        return EndpointCost(stage, what, None, None)
    month = price * HOURS_PER_MONTH
    return EndpointCost(stage, what, month * low_count, month * high_count)


def stage_costs(folder: Path | None = None) -> list[EndpointCost]:
    from mlops.core.stages import STAGES, load_stage_config

    return [endpoint_cost(s, load_stage_config(s, folder).sagemaker) for s in STAGES]


def stage_cost_rows(folder: Path | None = None) -> list[dict]:
    return [c.to_row() for c in stage_costs(folder)]


def cost_markdown(run_steps: list[StepCost] | None, endpoints: list[EndpointCost]) -> list[str]:
    """The PR report's cost section."""
    lines = []
    if run_steps:
        lines += [
            f"This run on SageMaker: **{usd(run_total(run_steps))}**",
            "",
            "| step | instances | seconds | USD |",
            "|---|---|---:|---:|",
            *(
                f"| {s.step} | {s.instance_count} x {s.instance_type} | {s.seconds:.0f} | "
                f"{usd(s.usd) if s.usd is not None else '?'} |"
                for s in run_steps
            ),
            "",
        ]
    if endpoints:
        lines += ["| stage endpoint | configuration | per month |", "|---|---|---|"]
        lines += [f"| {c.stage} | {c.what} | {c.to_row()['monthly']} |" for c in endpoints]
        lines.append("")
    lines.append(
        f"_Estimate: {price_note()}; compute only (no storage, data transfer or job "
        f"start-up); a month is {HOURS_PER_MONTH} h._"
    )
    return lines
