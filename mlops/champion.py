"""Which registered version is the champion that a challenger is compared with."""

from __future__ import annotations

from pathlib import Path

from mlops.config import Config
from mlops.registry import LocalRegistry, ModelVersion


def resolve_champion(cfg: Config, home: Path) -> ModelVersion | None:
    """The latest approved version (serving-aware resolution comes with deployments)."""
    return LocalRegistry(home, cfg.model_package_group).latest_approved()
