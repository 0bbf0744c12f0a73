"""`make fidelity`: the step scripts and the serving handler, run under the Python and
library versions of the SageMaker images the pipeline uses (containers/images.json).

No Docker: one uv venv per image (build/fidelity/<image>/), with the image's pins, and
for the scikit-learn image the validate step's wheels installed with --no-index (the
proof that `make wheels` ships everything the job needs). Then, on a generated sample:
validate, preprocess, train, evaluate, each with its image's interpreter and the local
runner's path mapping; and the trained model served through sagemaker-containers'
Transformer and Worker (what the XGBoost container runs) with good and bad requests.

The Python for an image: $FIDELITY_PYTHON_<major>_<minor> if set (an interpreter
path), else uv finds or downloads that version.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from containers.images import Image, configured_images, load_images

REPO_ROOT = Path(__file__).resolve().parents[1]
VENVS = REPO_ROOT / "build" / "fidelity"
UV = Path(sys.executable).with_name("uv")
ROWS = 1500


def python_for(image: Image) -> str:
    return os.environ.get(f"FIDELITY_PYTHON_{image.python.replace('.', '_')}", image.python)


def install_plan(image: Image, wheels: Path | None) -> list[list[str]]:
    """`uv pip install` argument lists that make a venv hold what the image holds."""
    plain = [n for n in image.packages if n not in image.without_dependencies]
    plan = [image.pinned(sorted(plain))]
    if image.without_dependencies:
        plan.append(["--no-deps", *image.pinned(image.without_dependencies)])
    if image.also:
        plan.append(list(image.also))
    if wheels is not None:
        requirements = REPO_ROOT / "model_build" / "steps" / "requirements.txt"
        plan.append(["--no-index", "--find-links", str(wheels), "-r", str(requirements)])
    return plan


def ensure_venv(image: Image, wheels: Path | None) -> Path:
    """The image's venv, rebuilt only when what it should hold changed."""
    venv = VENVS / image.name
    python = venv / "bin" / "python"
    plan = install_plan(image, wheels)
    want = json.dumps({"python": python_for(image), "plan": plan, "patches": image.patches})
    marker = venv / ".fidelity.json"
    if marker.is_file() and marker.read_text() == want:
        return python
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([UV, "venv", "--quiet", "--python", python_for(image), venv], check=True)
    for args in plan:
        subprocess.run([UV, "pip", "install", "--quiet", "--python", python, *args], check=True)
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    for relative, old, new in image.patches:
        path = site / relative
        path.write_text(path.read_text().replace(old, new))
    marker.write_text(want)
    return python


def unpacked_bundle(script: str, extras: tuple[str, ...], wheels: Path | None, into: Path) -> Path:
    """A step's sourcedir.tar.gz, as the pipeline uploads it, extracted as the job does."""
    import io
    import tarfile

    from model_build.pipeline import step_bundle

    body = step_bundle(REPO_ROOT / "model_build" / "steps", script, extras, wheels)
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        tar.extractall(into, filter="data")
    return into


def run_steps(pythons: dict[str, Path], image_of: dict[str, str], work: Path) -> Path:
    """Every graph step with its image's interpreter, from its own bundle (so a module the
    bundle lacks fails here too); returns the trained model archive."""
    from mlops.core.config import load_config
    from mlops.core.datagen import generate_houses
    from mlops.core.graph import build_graph
    from mlops.local.runner import (
        MODEL_ARCHIVE,
        output_dir,
        pack_model,
        resolve_sources,
        step_command,
    )
    from model_build.pipeline import BUNDLE_EXTRAS, WHEELS_DIR

    cfg = load_config()
    data = work / "sample.csv"
    generate_houses(ROWS, seed=11).to_csv(data, index=False)
    graph = build_graph(cfg)
    run_dir = work / "runs" / "fidelity"
    run_dir.mkdir(parents=True)
    sources = resolve_sources(graph, run_dir, data, REPO_ROOT / cfg.data.expectation_suite, None)
    for step in graph.steps:
        argv, env = step_command(step, sources, run_dir)
        script = Path(step.script).name
        code = unpacked_bundle(
            script,
            BUNDLE_EXTRAS.get(step.name, ()),
            REPO_ROOT / WHEELS_DIR / step.name,
            work / "code" / step.name,
        )
        argv[:2] = [str(pythons[image_of[step.image]]), str(code / script)]
        print(f"{step.name:<11} {image_of[step.image]}", flush=True)
        base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
        subprocess.run(argv, env={**base, **env}, check=True, cwd=code)
        if step.kind == "training":
            archive = run_dir / step.name / "output" / MODEL_ARCHIVE
            pack_model(output_dir(run_dir, step.name, step.outputs[0].name), archive)
            sources[f"{step.name}.{step.outputs[0].name}"] = archive.parent
            model = archive
    evaluation = json.loads(
        (output_dir(run_dir, graph.evaluation_step, "evaluation") / "evaluation.json").read_text()
    )
    print(f"evaluate   r2 {evaluation['regression_metrics']['r2']['value']:.3f}", flush=True)
    return model


def serve_check(python: Path, model: Path, held_out: Path, work: Path) -> None:
    """The handler behind the container's own Transformer and Worker (a Flask app)."""
    base = work / "opt-ml"
    (base / "model").mkdir(parents=True)
    shutil.unpack_archive(model, base / "model", format="gztar")
    from model_build.pipeline import SERVING_SCRIPT

    script = Path(__file__).with_name("serve_check.py")
    code = unpacked_bundle(SERVING_SCRIPT, (), None, work / "code" / "serving")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SAGEMAKER_BASE_DIR": str(base),
        "PYTHONPATH": str(code),  # the container puts the submit directory on the path
        "HELD_OUT": str(held_out),
    }
    subprocess.run([python, script], env=env, check=True, cwd=work)


def main() -> int:
    from mlops.core.config import load_config
    from model_build.pipeline import WHEELS_DIR

    images = load_images()
    image_of = configured_images(load_config())
    missing = sorted(set(image_of.values()) - set(images))
    if missing:
        print(f"error: {', '.join(missing)} not in containers/images.json", file=sys.stderr)
        return 2
    wheels = REPO_ROOT / WHEELS_DIR / "validate"
    if not any(wheels.glob("*.whl")):
        print("error: no wheels in build/wheels/validate: run `make wheels` first", file=sys.stderr)
        return 2
    pythons = {}
    for framework, name in image_of.items():
        image = images[name]
        print(f"venv {name}: Python {image.python}, {len(image.packages)} pins", flush=True)
        pythons[name] = ensure_venv(image, wheels if framework == "sklearn" else None)
    with tempfile.TemporaryDirectory(prefix="fidelity-") as tmp:
        model = run_steps(pythons, image_of, Path(tmp))
        (held_out,) = Path(tmp).glob("runs/fidelity/preprocess/test/*.csv")
        serve_check(pythons[image_of["xgboost"]], model, held_out, Path(tmp))
    print("fidelity: the steps and the handler ran under the images' versions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
