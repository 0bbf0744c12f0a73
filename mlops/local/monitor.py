"""Monitoring on this machine: the stage's captured traffic against each serving version.

Reads the local endpoint's capture files (`mlops.local.capture`), groups the requests by
the model version that answered them (named in each file's name), and compares them with
that version's training baseline and with its own predictions on its held-out rows (which
its evaluate step wrote, `mlops.local.drift.reference_predictions`). The rules and the
report are `mlops.core.monitor`'s.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from mlops.core import monitor
from mlops.core.config import Config
from mlops.core.deploy import endpoint_name
from mlops.core.drift import load_baseline
from mlops.core.errors import MlopsError
from mlops.core.interfaces import Progress, Registry
from mlops.local import drift
from mlops.local.capture import capture_root, read_local_capture
from mlops.local.endpoints import current_version


class LocalMonitor:
    """`mlops.core.monitor.Monitor` for the local endpoints under $MLOPS_HOME."""

    backend = "local"

    def __init__(self, cfg: Config, registry: Registry, home: Path):
        self.cfg, self.registry, self.home = cfg, registry, home
        self.baselines: dict[int, dict] = {}

    def baseline(self, version: int) -> dict:
        if version not in self.baselines:
            described = self.registry.describe(version)
            if not described.baseline_uri:
                raise MlopsError(f"model version {version} has no training baseline")
            self.baselines[version] = load_baseline(Path(described.baseline_uri))
        return self.baselines[version]

    def reference_predictions(self, version: int) -> np.ndarray | None:
        """The version's predictions on its held-out rows, as its evaluate step wrote them
        (None when they are not on this machine)."""
        try:
            return drift.reference_predictions(self.registry.describe(version))
        except MlopsError:
            return None

    def report(
        self,
        stage: str,
        since: datetime | None,
        labels: dict[str, float] | None,
        progress: Progress,
    ) -> dict:
        name = endpoint_name(self.cfg.model_package_group, stage)
        serving = current_version(self.home, stage)

        def features_of(version: int | None) -> list[str]:
            chosen = version or serving
            if chosen is None:
                raise MlopsError(f"cannot tell which model version answered {name}'s requests")
            return list(self.baseline(chosen)["features"])

        found = read_local_capture(self.home, name, features_of, since)
        progress(
            f"read {len(found.requests):,} captured requests from {found.files} file(s)"
            + (f", {found.corrupt} corrupt line(s) skipped" if found.corrupt else "")
        )
        by_version: dict[int, list] = {}
        for request in found.requests:
            by_version.setdefault(request.version or serving, []).append(request)
        sections = []
        for version, requests in sorted(by_version.items()):
            rows = np.concatenate([r.rows for r in requests])
            predictions = np.concatenate([r.predictions for r in requests])
            quality = None
            if labels is not None:
                joined, truth = monitor.join_labels(requests, labels)
                progress(f"version {version}: {truth.size} labelled requests joined by id")
                if truth.size:
                    quality = monitor.quality_check(
                        monitor.quality(
                            joined, truth, self.cfg.task, self.cfg.classification.threshold
                        ),
                        self.registry.describe(version).metrics,
                        self.cfg.monitor.max_mse_increase_pct,
                        self.cfg.monitor,
                    )
            enough = len(rows) >= self.cfg.monitor.min_rows
            sections.append(
                monitor.version_section(
                    version,
                    rows,
                    predictions,
                    self.baseline(version),
                    self.reference_predictions(version) if enough else None,
                    self.cfg.drift.threshold,
                    self.cfg.monitor.min_rows,
                    quality,
                )
            )
        return monitor.build_report(
            stage,
            name,
            self.backend,
            since,
            sections,
            requests=len(found.requests),
            corrupt=found.corrupt,
            source=str(capture_root(self.home) / name),
            first_corrupt=found.first_corrupt,
        )
