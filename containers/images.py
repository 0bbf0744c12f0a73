"""images.json: which image serves which step, its Python and its pinned packages."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

IMAGES_FILE = Path(__file__).with_name("images.json")


@dataclass(frozen=True)
class Image:
    name: str  # "<framework>-<image version>", as in model_build/config.yaml
    python: str
    platforms: tuple[str, ...]
    steps: tuple[str, ...]
    packages: dict[str, str]
    source: str
    without_dependencies: tuple[str, ...] = ()  # installed with --no-deps
    also: tuple[str, ...] = ()  # what those import, unpinned
    patches: tuple[tuple[str, str, str], ...] = ()  # (site-packages file, old, new)

    def pins(self) -> list[str]:
        return [f"{name}=={version}" for name, version in sorted(self.packages.items())]

    def pinned(self, names) -> list[str]:
        return [f"{n}=={self.packages[n]}" if n in self.packages else n for n in names]


def normalized(project: str) -> str:
    """PEP 503 name: what a wheel file name and a requirement agree on."""
    return re.sub(r"[-_.]+", "-", project).lower()


def load_images(path: Path = IMAGES_FILE) -> dict[str, Image]:
    raw = json.loads(path.read_text())
    return {
        name: Image(
            name,
            spec["python"],
            tuple(spec["platforms"]),
            tuple(spec["steps"]),
            dict(spec["packages"]),
            spec["source"],
            tuple(spec.get("without_dependencies", ())),
            tuple(spec.get("also", ())),
            tuple(tuple(p) for p in spec.get("patches", ())),
        )
        for name, spec in raw.items()
        if not name.startswith("_")
    }


def configured_images(cfg) -> dict[str, str]:
    """framework -> the images.json key of the version model_build/config.yaml names."""
    sm = cfg.sagemaker
    return {
        "sklearn": f"sklearn-{sm.sklearn_image_version}",
        "xgboost": f"xgboost-{sm.xgboost_image_version}",
    }
