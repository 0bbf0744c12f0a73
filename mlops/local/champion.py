"""Which registered version is the champion that a challenger is compared with."""

from __future__ import annotations

from pathlib import Path

from mlops.core.config import Config
from mlops.core.errors import MlopsError
from mlops.core.registry import ModelVersion
from mlops.local.registry import LocalRegistry


def resolve_champion(cfg: Config, home: Path) -> ModelVersion | None:
    """The version deployed to prod on this machine, else the latest approved one."""
    from mlops.local.endpoints import read_endpoint

    registry = LocalRegistry(home, cfg.model_package_group)
    try:
        prod = read_endpoint(home, "prod")
    except MlopsError:
        prod = None
    if prod is not None and prod.group == cfg.model_package_group:
        try:
            return registry.describe(prod.version)
        except MlopsError:
            pass
    return registry.latest_approved()
