"""`make fidelity`: the pipeline's steps and the serving handler, run under the Python and
library versions of the SageMaker images they run on (containers/images.json), for every
model family the project lists (model_build/steps/families.py).

No Docker: one uv venv per image (build/fidelity/<image>/), with the image's pins, and
for a step that ships a requirements file (validate) its wheels installed with
--no-index (the proof that `make wheels` ships everything the job needs). Then, per
family, on the first rows of the committed sample: every step of the declared pipeline
(model_build/pipeline.py) with its image's interpreter, from its own extracted bundle,
with the local runner's path mapping (train writes the model with its serving code;
evaluate scores it with that code); and the trained model served through
sagemaker-containers' Transformer and Worker (what the family's serving container runs)
with good and bad requests.

The configured family keeps the config's hyperparameters; the others train with their
own defaults (`defaults(task)`).

The Python for an image: $FIDELITY_PYTHON_<major>_<minor> if set (an interpreter
path), else uv finds or downloads that version.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from containers.images import Image, configured_images, load_images

REPO_ROOT = Path(__file__).resolve().parents[1]
VENVS = REPO_ROOT / "build" / "fidelity"
UV = Path(sys.executable).with_name("uv")
ROWS = 1500  # of the committed sample: enough to train, few enough to stay quick


def python_for(image: Image) -> str:
    return os.environ.get(f"FIDELITY_PYTHON_{image.python.replace('.', '_')}", image.python)


def install_plan(image: Image, requirements: list[Path], wheels: Path | None) -> list[list[str]]:
    """`uv pip install` argument lists that make a venv hold what the image holds, and the
    requirements files its steps ship, from their wheels only."""
    plain = [n for n in image.packages if n not in image.without_dependencies]
    plan = [image.pinned(sorted(plain))]
    if image.without_dependencies:
        plan.append(["--no-deps", *image.pinned(image.without_dependencies)])
    if image.also:
        plan.append(list(image.also))
    for path in requirements:
        plan.append(["--no-index", "--find-links", str(wheels), "-r", str(path)])
    return plan


def ensure_venv(image: Image, requirements: list[Path], wheels: Path | None) -> Path:
    """The image's venv, rebuilt only when what it should hold changed."""
    venv = VENVS / image.name
    python = venv / "bin" / "python"
    plan = install_plan(image, requirements, wheels)
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


def unpacked(bundle: bytes, into: Path) -> Path:
    """A sourcedir.tar.gz, as the pipeline uploads it, extracted as the job does."""
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        tar.extractall(into, filter="data")
    return into


def family_configs(cfg) -> list:
    """The config as it is, then the config with each other listed family (its defaults)."""
    from mlops.core.model_family import families

    configs = [cfg]
    for name, family in families().FAMILIES.items():
        if name == cfg.model_family.NAME:
            continue
        train = cfg.train.model_copy(
            update={"model": name, "hyperparameters": family.defaults(cfg.task), "tuning": None}
        )
        configs.append(cfg.model_copy(update={"train": train}))
    return configs


def sample_rows(cfg, path: Path) -> Path:
    """The first ROWS rows of the committed sample (data.sample), header included."""
    if cfg.sample_file is None or not cfg.sample_file.is_file():
        raise SystemExit("error: fidelity runs on the committed sample: set data.sample")
    with cfg.sample_file.open() as f:
        path.write_text("".join(line for _, line in zip(range(ROWS + 1), f, strict=False)))
    return path


def run_steps(cfg, pythons: dict[str, Path], image_of: dict[str, str], work: Path):
    """Every declared step with its image's interpreter, from its own bundle (so a module the
    bundle lacks fails here too); returns the pipeline, its sources and the model archive."""
    from mlops.core.graph import MODEL_OUTPUT, load_pipeline
    from mlops.local.runner import (
        MODEL_ARCHIVE,
        output_dir,
        pack_model,
        resolve_sources,
        step_command,
    )
    from mlops.sagemaker.pipeline_definition import WHEELS_DIR, step_bundle

    family = cfg.model_family.NAME
    pipe = load_pipeline(cfg)
    data = sample_rows(cfg, work / "sample.csv")
    run_dir = work / "runs" / family
    run_dir.mkdir(parents=True)
    sources = resolve_sources(pipe, run_dir, data, cfg.suite_file, None, cfg.golden_file)
    model = None
    for step in pipe.steps:
        argv, env = step_command(step, sources, run_dir)
        bundle = step_bundle(
            step.script_path, step.ships, REPO_ROOT, REPO_ROOT / WHEELS_DIR / step.name
        )
        code = unpacked(bundle, work / "code" / family / step.name)
        argv[:2] = [str(pythons[image_of[step.image]]), str(code / step.script_path.name)]
        print(f"{family:<8} {step.name:<11} {image_of[step.image]}", flush=True)
        base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
        subprocess.run(argv, env={**base, **env}, check=True, cwd=code)
        if step.kind == "training":
            archive = run_dir / step.name / "output" / MODEL_ARCHIVE
            pack_model(output_dir(run_dir, step.name, MODEL_OUTPUT), archive)
            sources[f"{step.name}.{MODEL_OUTPUT}"] = archive.parent
            if f"{step.name}.{MODEL_OUTPUT}" == pipe.model:
                model = archive
    evaluation = json.loads((sources[pipe.evaluation] / "evaluation.json").read_text())
    section = next(v for k, v in evaluation.items() if k.endswith("_metrics"))
    figures = ", ".join(f"{k} {v['value']:.3f}" for k, v in section.items() if k in ("r2", "auc"))
    print(f"{family:<8} metrics     {figures}", flush=True)
    return pipe, sources, model


# An index nothing listens on (the discard port on loopback): a pip that asks it fails fast.
UNREACHABLE_INDEX = "http://127.0.0.1:9/simple"


def serve_check(python: Path, model: Path, held_out: Path, image: str, work: Path) -> None:
    """The handler behind the serving container's own Transformer and Worker (a Flask app),
    started as the container starts it: from the model's own code/ with the registered
    model's environment (SERVING_ENV), `pip install .` included, the index unreachable."""
    from mlops.sagemaker.pipeline_definition import MODEL_CODE_DIR, SERVING_ENV, SERVING_SCRIPT

    base = work / "opt-ml"
    (base / "model").mkdir(parents=True)
    shutil.unpack_archive(model, base / "model", format="gztar")
    script = Path(__file__).with_name("serve_check.py")
    # the image runs `python -m pip`; a uv venv has none: the newest (>= 25.3 builds setup.py
    # projects in an isolated environment, the case that needed an index)
    subprocess.run([UV, "pip", "install", "--quiet", "--python", python, "pip"], check=True)
    code = str(base / "model" / MODEL_CODE_DIR.removeprefix("/opt/ml/model/"))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(work),
        **SERVING_ENV,
        "SAGEMAKER_SUBMIT_DIRECTORY": code,  # /opt/ml/model/code on the instance
        "SAGEMAKER_BASE_DIR": str(base),
        "PIP_CONFIG_FILE": os.devnull,  # no machine or user pip config (mirrors, find-links)
        "PIP_INDEX_URL": UNREACHABLE_INDEX,
        "HELD_OUT": str(held_out),
        "IMAGE": image,
    }
    try:
        subprocess.run([python, script], env=env, check=True, cwd=work)
    finally:  # pip installed the handler's files into the venv: keep the venv the image's
        module = SERVING_SCRIPT.removesuffix(".py")
        subprocess.run(
            [python, "-m", "pip", "uninstall", "--quiet", "--yes", module],
            env={**env, "PIP_NO_INDEX": "1"},
            check=False,
            capture_output=True,
        )


def main() -> int:
    from mlops.core.config import load_config
    from mlops.core.graph import load_pipeline
    from mlops.sagemaker.pipeline_definition import REQUIREMENTS, WHEELS_DIR

    images = load_images()
    configs = family_configs(load_config())
    image_of = configured_images(configs[0])
    pipes = [load_pipeline(cfg) for cfg in configs]
    used = sorted({s.image for pipe in pipes for s in pipe.steps})
    missing = sorted({image_of.get(name, name) for name in used} - set(images))
    if missing:
        print(f"error: {', '.join(missing)} not in containers/images.json", file=sys.stderr)
        return 2
    shipped = {  # image -> (step, its requirements file), for steps whose wheels ship
        s.image: (s.name, s.script_path.parent / REQUIREMENTS)
        for pipe in pipes
        for s in pipe.steps
        if REQUIREMENTS in s.ships
    }
    for step, _ in shipped.values():
        if not any((REPO_ROOT / WHEELS_DIR / step).glob("*.whl")):
            print(
                f"error: no wheels in {WHEELS_DIR / step}: run `make wheels` first", file=sys.stderr
            )
            return 2
    pythons = {}
    for name in used:
        image = images[image_of[name]]
        step, requirements = shipped.get(name, (None, None))
        print(f"venv {image.name}: Python {image.python}, {len(image.packages)} pins", flush=True)
        wheels = REPO_ROOT / WHEELS_DIR / step if step else None
        pythons[image.name] = ensure_venv(image, [requirements] if requirements else [], wheels)
    for cfg in configs:
        with tempfile.TemporaryDirectory(prefix="fidelity-") as tmp:
            work = Path(tmp)
            pipe, sources, model = run_steps(cfg, pythons, image_of, work)
            serving = image_of[pipe.step(pipe.model_step).image]
            serve_check(pythons[serving], model, sources[pipe.held_out], serving, work)
    families = ", ".join(cfg.model_family.NAME for cfg in configs)
    print(f"fidelity: the steps and the handler ran under the images' versions ({families})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
