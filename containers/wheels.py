"""`make wheels`: the wheels of the packages a step needs and its image lacks, for the
image's Python and platform, in build/wheels/<step>/: for every step of the pipeline
(model_build/pipeline.py) that ships a requirements.txt. mlops.sagemaker.pipeline_definition
puts them in the step's bundle, and the job installs them with --no-index: no internet needed.

Resolved against the image's own pins (images.json), then the wheels of packages the
image already has are dropped: pip finds those installed and leaves them alone.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from containers.images import Image, configured_images, load_images, normalized

REPO_ROOT = Path(__file__).resolve().parents[1]


def wheel_project(filename: str) -> str:
    return normalized(filename.split("-", 1)[0])


def download(image: Image, requirements: Path, into: Path) -> list[str]:
    """pip download for the image's interpreter; returns the wheel files kept."""
    with tempfile.TemporaryDirectory(prefix="wheels-") as tmp:
        constraints = Path(tmp) / "image-constraints.txt"
        constraints.write_text("\n".join(image.pins()) + "\n")
        platforms = [arg for p in image.platforms for arg in ("--platform", p)]
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", f"{tmp}/w"]
        command += ["--only-binary=:all:", "--implementation", "cp"]
        command += ["--python-version", image.python, *platforms]
        command += ["-r", str(requirements), "-c", str(constraints)]
        subprocess.run(command, check=True)
        preinstalled = {normalized(name) for name in image.packages}
        kept = sorted(
            w.name
            for w in Path(tmp, "w").glob("*.whl")
            if wheel_project(w.name) not in preinstalled
        )
        staging = into.with_name(into.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in kept:
            shutil.copy2(Path(tmp, "w", name), staging / name)
        shutil.rmtree(into, ignore_errors=True)
        staging.replace(into)  # nothing half-written: a failed download leaves the old set
    return kept


def main(argv: list[str] | None = None) -> int:
    from mlops.core.config import load_config
    from mlops.core.graph import load_pipeline
    from mlops.sagemaker.pipeline_definition import REQUIREMENTS, WHEELS_DIR

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / WHEELS_DIR)
    args = parser.parse_args(argv)
    cfg = load_config()
    images, names = load_images(), configured_images(cfg)
    for step in load_pipeline(cfg).steps:
        if REQUIREMENTS not in step.ships:
            continue
        image = images[names[step.image]]
        requirements = step.script_path.parent / REQUIREMENTS
        kept = download(image, requirements, args.out / step.name)
        size = sum((args.out / step.name / k).stat().st_size for k in kept) / 1e6
        print(
            f"{step.name}: {len(kept)} wheels ({size:.1f} MB) for {image.name}, Python {image.python}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
