"""Checks of a data file against the config's task, before a run spends time on it.

A classifier needs a target with exactly two values; a regression needs a numeric
target; a string categorical feature with more levels than `data.max_categories`
is trained on its most frequent levels only (a warning, not an error). Each problem
is one line: `UsageError` (exit 2) for what cannot be trained, a returned warning
for what is capped.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlops.core.config import Config
from mlops.core.errors import UsageError


def target_problem(target: pd.Series, cfg: Config) -> str | None:
    """Why this target cannot be trained for the config's task, or None."""
    name = cfg.data.target
    values = target.dropna()
    if cfg.task == "binary_classification":
        distinct = sorted(values.astype(str).str.strip().unique())
        if len(distinct) != 2:
            shown = ", ".join(distinct[:5]) + (", ..." if len(distinct) > 5 else "")
            return (
                f"task binary_classification needs target {name} to hold exactly two "
                f"values (e.g. 0/1, yes/no); it holds {len(distinct)}: {shown}"
            )
        positive = cfg.classification.positive_label
        if positive is not None and positive not in distinct:
            return (
                f"classification.positive_label {positive!r} is not a value of {name}: {distinct}"
            )
        return None
    if not pd.api.types.is_numeric_dtype(values):
        example = values[pd.to_numeric(values, errors="coerce").isna()].iloc[0]
        return (
            f"task regression needs a numeric target; {name} holds {str(example)[:40]!r} "
            "(set task: binary_classification for a yes/no target)"
        )
    return None


def category_warnings(frame: pd.DataFrame, cfg: Config) -> list[str]:
    """One line per categorical feature with more levels than training keeps."""
    cap = cfg.data.max_categories
    lines = []
    for name in cfg.data.categorical_features:
        levels = frame[name].dropna().astype(str).str.strip().nunique()
        if levels > cap:
            lines.append(
                f"warning: {name} has {levels} levels; training keeps the {cap} most frequent "
                "(data.max_categories), rarer ones score as missing"
            )
    return lines


def check_task_data(cfg: Config, data_file: Path) -> list[str]:
    """Raise UsageError for a target the task cannot use; return warnings (capped levels).

    A numeric regression without categorical features reads nothing."""
    if cfg.task == "regression" and not cfg.data.categorical_features:
        return []
    wanted = [cfg.data.target, *cfg.data.categorical_features]
    try:
        frame = pd.read_csv(data_file, usecols=lambda c: c in wanted)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {data_file}: {exc}") from None
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise UsageError(f"{data_file} lacks column(s) {missing} named in the config")
    problem = target_problem(frame[cfg.data.target], cfg)
    if problem:
        raise UsageError(f"{data_file}: {problem}")
    return category_warnings(frame, cfg)
