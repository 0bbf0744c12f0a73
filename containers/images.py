"""images.json: the SageMaker framework images the steps run on, their Python and pins."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

IMAGES_FILE = Path(__file__).with_name("images.json")


@dataclass(frozen=True)
class Image:
    name: str  # "<framework>-<image version>", as in config sagemaker.image_versions
    python: str
    platforms: tuple[str, ...]
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
    """framework -> the images.json key of the version the config names
    (sagemaker.image_versions: {sklearn: "1.9-0", ...} -> {"sklearn": "sklearn-1.9-0"})."""
    return {
        framework: f"{framework}-{version}"
        for framework, version in cfg.sagemaker.image_versions.items()
    }
