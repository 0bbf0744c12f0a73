"""What a pipeline execution cost on SageMaker: each job's seconds (its step's start and
end, as ListPipelineExecutionSteps reported them) x the instances the config gives its
kind x the dated on-demand price (mlops.core.cost), and each stage's endpoint per month."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mlops.core.config import Config
from mlops.core.cost import run_cost_line, stage_costs, step_costs
from mlops.core.errors import MlopsError
from mlops.core.graph import Pipeline


def report_cost(
    cfg: Config,
    graph: Pipeline,
    seconds: Mapping[str, float],
    progress: Callable[[str], None] = print,
) -> None:
    """Print the run's estimated cost and the stages' monthly endpoint costs; a stage
    config that cannot be read is one line, never a failed run."""
    progress(run_cost_line(step_costs(cfg, graph, seconds)))
    try:
        costs = stage_costs()
    except MlopsError as exc:
        progress(f"endpoint cost: unknown ({exc})")
        return
    for cost in costs:
        progress(f"endpoint {cost.stage}: {cost.what}: {cost.to_row()['monthly']} a month")
