"""The SageMaker Pipeline, rendered from the project's declaration with the SageMaker SDK v3.

`model_build/pipeline.py` declares the pipeline (`mlops.core.graph.load_pipeline`): its
steps, scripts, images, data flow and gate rules. This module renders that one
declaration as SDK objects, step for step, with nothing of its own about any model:

    <the declared steps, in order> -> gate -> register
                                           \\-> gate-failed

- a processing step runs its script on its image (a framework image of
  `sagemaker.image_versions`) with its arguments; inputs and outputs are the folders of
  the graph's convention (`Step.container_path`);
- a training step runs its script in script mode with its hyperparameters; its output
  is the model (model.tar.gz); with train.tuning the model step is a tuning job;
- a `Param` (in arguments or a gate rule) is a pipeline parameter of the same name;
- each gate rule is one condition of the ConditionStep, on evaluation.json;
- register (not in a PR's pipeline) adds the model to the model package group, served
  by the model step's image with the serving handler, with its metrics and lineage.

It is the only module that imports the SDK, and only inside `render_pipeline`
(the import costs seconds; no other `mlops` command pays it).

Code travels as content-addressed bundles: each step's script plus the sibling
modules and support packages (`stepkit/`) it imports, and the files it `ships`, is
packed into a reproducible `sourcedir.tar.gz` under `s3://<bucket>/<prefix>/code/<sha256>/`.
Every S3 write the SDK would make while rendering is recorded instead of performed
(`Upload`), so rendering needs no network and no credentials; `mlops pipeline run
--backend sagemaker` puts the recorded objects before it upserts. The same commit
renders the same definition, byte for byte, and a step whose code did not change keeps
its cache key.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import logging
import os
import re
import tarfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mlops.core.config import Config
from mlops.core.errors import UsageError
from mlops.core.feature_store import SNAPSHOT_PREFIX
from mlops.core.graph import (
    CHAMPION,
    CODE_ROOT,
    DATA,
    GOLDEN,
    MODEL_OUTPUT,
    SUITE,
    Param,
    Pipeline,
    Rule,
    Step,
    hyperparameter_args,
    load_pipeline,
)
from mlops.core.lineage import NO_VALUE, PARAMS_PREFIX, run_parameters
from mlops.core.paths import REPO_ROOT
from mlops.core.registry import PENDING
from mlops.core.run_layout import (
    BASELINE_FILE,
    EVALUATION_FILE,
    HELD_OUT_KEY,
    MODEL_ARCHIVE,
    RUNS,
)
from stepkit.artifact import CODE_DIR, SERVING_ENTRY
from stepkit.bundle import bundle_files

# Pipeline parameter names: `mlops pipeline run --backend sagemaker` passes values by these.
# The gate's and the steps' numbers are parameters too, named by their `Param`s.
INPUT_DATA = "InputDataUri"
CHAMPION_MODEL = "ChampionModelUri"
PROCESSING_INSTANCE_TYPE = "ProcessingInstanceType"
TRAINING_INSTANCE_TYPE = "TrainingInstanceType"
GIT_COMMIT = "GitCommit"
PR_NUMBER = "PrNumber"
DATA_SHA256 = "DataSha256"
LINEAGE_PARAMETERS = {GIT_COMMIT: "git_commit", PR_NUMBER: "pr_number", DATA_SHA256: "data_sha256"}
# The feature-store snapshot a run trained on (`--from-feature-store`); NO_VALUE otherwise.
# The query itself is stored in S3 under data/ (metadata values hold 256 characters): its
# hash and URI are recorded.
SNAPSHOT_PARAMETERS = {
    "FeatureSnapshotFeatureGroup": f"{SNAPSHOT_PREFIX}feature_group",
    "FeatureSnapshotAsOf": f"{SNAPSHOT_PREFIX}as_of",
    "FeatureSnapshotRows": f"{SNAPSHOT_PREFIX}rows",
    "FeatureSnapshotSha256": f"{SNAPSHOT_PREFIX}sha256",
    "FeatureSnapshotQuerySha256": f"{SNAPSHOT_PREFIX}query_sha256",
    "FeatureSnapshotQueryUri": f"{SNAPSHOT_PREFIX}query_uri",
}
# A step that ships a requirements file installs it from wheels in its own bundle: the
# requirements file the SDK's runproc.sh installs says --no-index, so the job needs no
# internet (a VPC without NAT, network isolation). `make wheels` downloads them for the
# image's Python and platform into build/wheels/<step>/. (Not a custom ECR image: no
# Docker build, no registry to secure and patch, and the content-addressed bundle is
# uploaded once per change.)
REQUIREMENTS = "requirements.txt"
WHEELS_ENV = "MLOPS_WHEELS_DIR"
WHEELS_DIR = Path("build") / "wheels"
OFFLINE_INSTALL = b"# only the wheels shipped in this bundle\n--no-index\n--find-links wheels\n"
# The serving container's entry (SAGEMAKER_PROGRAM): inference.py behind a transform_fn, so
# that bad requests are 4xx in the framework's serving container (see endpoint_handler.py).
SERVING_SCRIPT = SERVING_ENTRY
# Where the serving code is on a serving instance: SageMaker extracts model.tar.gz into
# /opt/ml/model before the container starts, and the artifact carries its code under code/
# (stepkit/artifact.py). Both serving containers (XGBoost, scikit-learn) start through
# sagemaker-containers' `_modules.import_module(SAGEMAKER_SUBMIT_DIRECTORY, program)`: a local
# folder is copied to /opt/ml/code (no S3 download from the instance), a setup.py is generated
# and `pip install .` runs. pip >= 25.3 builds that in an isolated environment whose
# setuptools comes from an index; these variables make it build with the image's own
# setuptools and never look for an index, so an endpoint or a transform job in a VPC without
# internet starts (`make fidelity` runs that path with the index unreachable).
MODEL_CODE_DIR = f"/opt/ml/model/{CODE_DIR}"
SERVING_ENV = {
    "SAGEMAKER_PROGRAM": SERVING_SCRIPT,
    "SAGEMAKER_SUBMIT_DIRECTORY": MODEL_CODE_DIR,
    "PIP_NO_INDEX": "1",
    "PIP_NO_BUILD_ISOLATION": "0",  # pip's inverted spelling: 0 turns build isolation off
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}
GATE_STEP = "gate"
FAIL_STEP = "gate-failed"
REGISTER_STEP = "register"
EVALUATION_PROPERTY_FILE = "evaluation"
CACHE_EXPIRY = "P30D"
CONTENT_TYPES = ["text/csv", "application/json"]
CONDITIONS = {"<=": "ConditionLessThanOrEqualTo", ">=": "ConditionGreaterThanOrEqualTo"}
# CustomerMetadataProperties (the CreateModelPackage API): at most 50 entries, each value
# 1-256 letters, digits, spaces or _.:/=+-@.
MAX_METADATA_ENTRIES = 50
METADATA_VALUE = re.compile(r"^[\w .:/=+\-@]{1,256}$")
TELEMETRY_OPT_OUT = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}
SKIPPED_FILES = ("__pycache__", ".pyc")
# Tuning (train.tuning in config): SageMaker's names for the config's words.
TUNING_DIRECTION = {"minimize": "Minimize", "maximize": "Maximize"}
TUNING_SCALE = {"linear": "Linear", "log": "Logarithmic"}
TUNING_PARALLEL_JOBS = 4  # training jobs at once when the config does not say
WARM_START_TYPE = "IdenticalDataAndAlgorithm"
# Images the tuning service treats as its built-in algorithm: CreateHyperParameterTuningJob
# validates their jobs against the algorithm's own hyperparameters and metrics, so a script's
# MetricDefinitions and static hyperparameters (features, target, sagemaker_program) are
# refused (aws/sagemaker-xgboost-container#121, an AWS engineer: "HPO incorrectly recognizes
# XGBoost as a built-in algorithm", open; aws/sagemaker-python-sdk#2226, open). The tuning
# API has no entry point field (HyperParameterAlgorithmSpecification: image, input mode,
# algorithm name, metric definitions), so SDK v3's tuner falls back to the framework
# container's script mode (sagemaker_program + sagemaker_submit_directory): what the
# service documents for your own script is a framework image with MetricDefinitions, which
# the scikit-learn image is (it has no built-in algorithm).
TUNING_BUILT_IN_IMAGES = frozenset({"xgboost"})
METRIC_VALUE = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def metric_definitions(step: Step) -> list[dict[str, str]]:
    """Regexes for the `<name>=<value>` lines the training script logs (its `metrics`)."""
    return [{"Name": name, "Regex": re.escape(name) + "=" + METRIC_VALUE} for name in step.metrics]


def tuning_ranges(sdk: SimpleNamespace, tuning: Any) -> dict[str, Any]:
    """The config's ranges (over the family's parameters, checked at load) as the SDK's."""
    ranges: dict[str, Any] = {}
    for name, r in tuning.ranges.items():
        if r.type == "categorical":
            ranges[name] = sdk.CategoricalParameter([str(v) for v in r.values])
        else:
            kind = sdk.IntegerParameter if r.type == "integer" else sdk.ContinuousParameter
            cast = int if r.type == "integer" else float
            ranges[name] = kind(cast(r.min), cast(r.max), scaling_type=TUNING_SCALE[r.scale])
    return ranges


def check_tunable_image(image: str) -> None:
    """One line before anything uploads: a tuning job on an image the tuning service treats
    as a built-in algorithm would be refused when the pipeline reaches it."""
    if image in TUNING_BUILT_IN_IMAGES:
        raise UsageError(
            f"train.tuning on SageMaker: the tuning service validates jobs on the {image} "
            "image as its built-in algorithm and refuses a script's metrics and "
            "hyperparameters; tune with train.model: sklearn (a framework image), or tune "
            "locally (mlops pipeline run) and put the best values in train.hyperparameters"
        )


@dataclass(frozen=True)
class Target:
    """Where and as whom the pipeline runs (the bootstrap stack's outputs)."""

    region: str
    role_arn: str
    bucket: str
    prefix: str
    # A PR's run: its own pipeline name, and no register step (nothing reaches the
    # production model package group from PR code). Empty: the main pipeline.
    pipeline_name: str = ""

    @property
    def registers(self) -> bool:
        return not self.pipeline_name

    def uri(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", self.prefix, *parts])


@dataclass(frozen=True)
class Upload:
    """An object the pipeline needs in S3 before it runs."""

    uri: str
    body: bytes


@dataclass(frozen=True)
class RenderedPipeline:
    name: str
    definition: str  # JSON, as CreatePipeline takes it
    uploads: tuple[Upload, ...]
    # Steps whose packages must ship as wheels and whose wheels were not found.
    missing_wheels: tuple[str, ...] = ()


def pipeline_name(cfg: Config) -> str:
    return f"{cfg.model_package_group}-pipeline"


def pr_target(cfg: Config, target: Target, pr: str) -> Target:
    """The same account, a PR's own pipeline and S3 prefix: `<group>-pr-<n>`, `<group>/pr/<n>`.

    The bootstrap stack's PR roles allow exactly these names and nothing else.
    """
    if not pr.isdigit():
        raise ValueError(f"a PR number is digits, not {pr!r}")
    return Target(
        region=target.region,
        role_arn=target.role_arn,
        bucket=target.bucket,
        prefix=f"{cfg.model_package_group}/pr/{pr}",
        pipeline_name=f"{cfg.model_package_group}-pr-{pr}",
    )


def sha256_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def reproducible_tar_gz(files: dict[str, bytes]) -> bytes:
    """A tar.gz whose bytes depend only on the names and contents (no times, no owners)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def bundle_contents(
    script: Path, ships: tuple[str, ...] = (), root: Path = REPO_ROOT, wheels: Path | None = None
) -> dict[str, bytes]:
    """Archive name -> bytes of a step's sourcedir: the script with its import closure
    (sibling modules, support packages found under `root`), and each file it ships (named
    beside the script): a .py file with its own closure, any other file as it is. A
    requirements file installs from the bundle's `wheels/` only (the wheels in `wheels`)."""
    paths = bundle_files(script, root)
    for name in ships:
        shipped = script.parent / name
        if not shipped.is_file():
            raise UsageError(f"{script.name} ships {name}, which is not in {script.parent}")
        paths.update(bundle_files(shipped, root) if shipped.suffix == ".py" else {name: shipped})
    files = {name: path.read_bytes() for name, path in sorted(paths.items())}
    if REQUIREMENTS in files:
        files[REQUIREMENTS] = OFFLINE_INSTALL + files[REQUIREMENTS]
        for wheel in sorted(wheels.glob("*.whl")) if wheels else ():
            files[f"wheels/{wheel.name}"] = wheel.read_bytes()
    return files


def step_bundle(
    script: Path, ships: tuple[str, ...] = (), root: Path = REPO_ROOT, wheels: Path | None = None
) -> bytes:
    """sourcedir.tar.gz of `bundle_contents`, byte for byte the same for the same files."""
    return reproducible_tar_gz(bundle_contents(script, ships, root, wheels))


def hyperparameters(step: Step) -> dict[str, str]:
    """A training step's hyperparameters as SageMaker takes them (text): the `--name value`
    arguments its script gets, exactly as the local runner passes them."""
    args = hyperparameter_args(step.hyperparameters)
    return {
        flag.removeprefix("--"): value for flag, value in zip(args[::2], args[1::2], strict=True)
    }


def metadata_text(value: Any) -> str:
    """A setting as a metadata value: lists and mappings as space-separated items (the API
    allows no brackets or quotes), anything else as str() writes it."""
    if isinstance(value, list | tuple):
        return " ".join(metadata_text(item) for item in value)
    if isinstance(value, dict):
        return " ".join(f"{key}={metadata_text(item)}" for key, item in value.items())
    return str(value)


def flat_parameters(cfg: Config) -> dict[str, str]:
    """The run's settings (`mlops.core.lineage.run_parameters`) as flat metadata entries
    `params.<section>.<name>`; UsageError, at render rather than when the run registers,
    for a value the API would refuse."""
    flat = {}
    for section, settings in run_parameters(cfg).items():
        for key, value in settings.items():
            text = metadata_text(value)
            if not METADATA_VALUE.match(text):
                raise UsageError(
                    f"{section}.{key}: {text[:80]!r} cannot be recorded in the model "
                    "registry's metadata (1-256 letters, digits, spaces or _.:/=+-@)"
                )
            flat[f"{PARAMS_PREFIX}{section}.{key}"] = text
    return flat


def lineage_metadata(
    cfg: Config, params: dict[str, Any], run_id: Any, held_out: Any
) -> dict[str, Any]:
    """CustomerMetadataProperties: what local lineage records, as flat string values, and
    `held_out_uri`, where the version's raw held-out rows are (the step's own output URI,
    right even when the step came from the cache)."""
    values: dict[str, Any] = {key: params[name] for name, key in LINEAGE_PARAMETERS.items()}
    # Resolved values of a run without the store may leave the snapshot's out.
    values.update({key: params.get(name, NO_VALUE) for name, key in SNAPSHOT_PARAMETERS.items()})
    values.update(data_file=params[INPUT_DATA], run_id=run_id, backend="sagemaker")
    values[HELD_OUT_KEY] = held_out
    values.update(flat_parameters(cfg))
    if len(values) > MAX_METADATA_ENTRIES:
        raise UsageError(
            f"the registered version's lineage would have {len(values)} metadata entries; "
            f"SageMaker allows {MAX_METADATA_ENTRIES} (fewer train.hyperparameters?)"
        )
    return values


class _Recorder:
    """Content-addressed S3 locations, and the objects to put there before a run."""

    def __init__(self, target: Target):
        self.target = target
        self.uploads: dict[str, bytes] = {}

    def put(self, uri: str, body: bytes) -> str:
        self.uploads[uri] = body
        return uri

    def code(self, name: str, body: bytes) -> str:
        """`s3://<bucket>/<prefix>/code/<sha256 of body>/<name>`."""
        return self.put(self.target.uri("code", sha256_hex(body), name), body)

    def folder(self, path: Path, name: str) -> str:
        """A local folder under a prefix named after its content; returns the prefix URI."""
        files = {
            str(p.relative_to(path)): p.read_bytes()
            for p in sorted(path.rglob("*"))
            if p.is_file() and not any(part.endswith(SKIPPED_FILES) for part in p.parts)
        }
        digest = sha256_hex(json.dumps({k: sha256_hex(v) for k, v in files.items()}).encode())
        prefix = self.target.uri("code", digest, name)
        for rel, body in files.items():
            self.put(f"{prefix}/{rel}", body)
        return prefix


def _import_sdk() -> SimpleNamespace:
    """The SDK names the renderer uses, imported offline with logging left as it was.

    A module of the SDK creates boto3 clients at import time (NoRegionError without
    AWS_DEFAULT_REGION), and importing it calls `logging.basicConfig(level=INFO)`.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from sagemaker.core import model_metrics, parameter, processing, shapes
    from sagemaker.core.workflow import (
        conditions,
        execution_variables,
        functions,
        parameters,
        pipeline_context,
        properties,
    )
    from sagemaker.mlops.workflow import condition_step, fail_step, model_step, pipeline, steps
    from sagemaker.serve import model_builder
    from sagemaker.train import ModelTrainer, configs, tuner

    root.handlers[:] = handlers
    root.setLevel(level)
    return SimpleNamespace(
        conditions=conditions,
        parameters=parameters,
        ExecutionVariables=execution_variables.ExecutionVariables,
        Join=functions.Join,
        JsonGet=functions.JsonGet,
        PipelineSession=pipeline_context.PipelineSession,
        PropertyFile=properties.PropertyFile,
        MetricsSource=model_metrics.MetricsSource,
        ModelMetrics=model_metrics.ModelMetrics,
        FrameworkProcessor=processing.FrameworkProcessor,
        ProcessingInput=shapes.ProcessingInput,
        ProcessingOutput=shapes.ProcessingOutput,
        ProcessingS3Input=shapes.ProcessingS3Input,
        ProcessingS3Output=shapes.ProcessingS3Output,
        S3DataSource=shapes.S3DataSource,
        ConditionStep=condition_step.ConditionStep,
        FailStep=fail_step.FailStep,
        ModelStep=model_step.ModelStep,
        Pipeline=pipeline.Pipeline,
        CacheConfig=steps.CacheConfig,
        ProcessingStep=steps.ProcessingStep,
        TrainingStep=steps.TrainingStep,
        TuningStep=steps.TuningStep,
        HyperparameterTuner=tuner.HyperparameterTuner,
        IntegerParameter=parameter.IntegerParameter,
        ContinuousParameter=parameter.ContinuousParameter,
        CategoricalParameter=parameter.CategoricalParameter,
        WarmStartConfig=shapes.HyperParameterTuningJobWarmStartConfig,
        ParentTuningJob=shapes.ParentHyperParameterTuningJob,
        ModelBuilder=model_builder.ModelBuilder,
        ModelTrainer=ModelTrainer,
        Compute=configs.Compute,
        InputData=configs.InputData,
        OutputDataConfig=configs.OutputDataConfig,
        SourceCode=configs.SourceCode,
    )


@functools.cache
def _boto_session(region: str) -> Any:
    """One boto3 session per region and process: a new one parses botocore's service models
    again (seconds for SageMaker's), and a render makes no request with it."""
    import boto3

    return boto3.Session(region_name=region)


def _recording_session(sdk: SimpleNamespace, target: Target, recorder: _Recorder) -> Any:
    """A PipelineSession whose S3 writes are recorded, and that never probes for a bucket."""

    class RecordingSession(sdk.PipelineSession):
        def default_bucket(self) -> str:
            return target.bucket

        def upload_data(self, path, bucket=None, key_prefix="data", callback=None, extra_args=None):
            local = Path(path)
            if local.is_dir():
                return recorder.folder(local, key_prefix.rstrip("/").rsplit("/", 1)[-1])
            return recorder.code(local.name, local.read_bytes())

        def upload_string_as_file_body(self, body, bucket, key, kms_key=None):
            data = body.encode() if isinstance(body, str) else body
            return recorder.put(f"s3://{bucket}/{key}", data)

    return RecordingSession(
        boto_session=_boto_session(target.region),
        default_bucket=target.bucket,
        sagemaker_config=TELEMETRY_OPT_OUT,
    )


# SDK defaults configs already validated in this process (they are ours: the telemetry
# opt-out, or none), so that later renders skip the schema check too.
_VALIDATED_CONFIGS: list[dict | None] = []


@contextmanager
def _config_validated_once() -> Iterator[None]:
    """Validate each SDK defaults config once per process, not on every lookup.

    The SDK re-checks its whole JSON schema on each of ~70 config lookups (~0.2 s
    each); our config (the telemetry opt-out) never changes.
    """
    from sagemaker.core.config.config_manager import SageMakerConfig

    original = SageMakerConfig.__dict__["validate_sagemaker_config"]

    def validate_once(sagemaker_config: dict | None = None) -> None:
        if sagemaker_config not in _VALIDATED_CONFIGS:
            original.__func__(sagemaker_config)
            _VALIDATED_CONFIGS.append(json.loads(json.dumps(sagemaker_config)))

    SageMakerConfig.validate_sagemaker_config = staticmethod(validate_once)
    try:
        yield
    finally:
        SageMakerConfig.validate_sagemaker_config = original


@contextmanager
def _no_local_mode_sessions() -> Iterator[None]:
    """No local-mode session for each processing step: the SDK builds a
    LocalSagemakerClient (a LocalSession, and with it a boto3 session that parses the
    service models again: ~0.5 s) only to read one of its method names. A render never
    runs local mode."""
    from sagemaker.core.local.local_session import LocalSagemakerClient

    original = LocalSagemakerClient.__dict__["__init__"]

    def without_session(self, sagemaker_session=None) -> None:
        self.sagemaker_session = sagemaker_session

    LocalSagemakerClient.__init__ = without_session
    try:
        yield
    finally:
        LocalSagemakerClient.__init__ = original


def render_pipeline(
    cfg: Config,
    target: Target,
    pipe: Pipeline | None = None,
    repo_root: Path = REPO_ROOT,
    wheels_dir: Path | None = None,
) -> RenderedPipeline:
    """The pipeline definition JSON for `cfg` (the project's declared pipeline, or `pipe`),
    and the objects it needs in S3. `repo_root`: the checkout whose step code is bundled.
    `wheels_dir`: default $MLOPS_WHEELS_DIR, else build/wheels in `repo_root`."""
    pipe = check_scale_out(cfg, pipe or load_pipeline(cfg))
    wheels_dir = wheels_dir or Path(os.environ.get(WHEELS_ENV) or repo_root / WHEELS_DIR)
    env = {"AWS_DEFAULT_REGION": target.region, "SAGEMAKER_VALIDATE_ROLE": "false"}
    with _environment_defaults(env), warnings.catch_warnings():
        # "Running within a PipelineSession, there will be No Wait, No Logs...": expected.
        warnings.simplefilter("ignore", UserWarning)
        sdk = _import_sdk()
        with _config_validated_once(), _no_local_mode_sessions():
            return _Renderer(sdk, cfg, target, pipe, repo_root, wheels_dir).render()


def check_scale_out(cfg: Config, pipe: Pipeline) -> Pipeline:
    """Refuse processing instances no step would use: with no step that handles a share of
    the raw input (`scale_out`), every processing step runs on one."""
    count = cfg.sagemaker.processing_instance_count
    if count > 1 and not any(step.scale_out for step in pipe.steps):
        raise UsageError(
            f"sagemaker.processing_instance_count: {count} instances refused: use 1; no step "
            "of model_build/pipeline.py handles a share of the raw input (scale_out=True)"
        )
    return pipe


@contextmanager
def _environment_defaults(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables that are unset, for the duration of a render only."""
    added = [name for name in values if name not in os.environ]
    os.environ.update({name: values[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def image_version(cfg: Config, image: str, step: str) -> str:
    """The version of a framework image the config names (sagemaker.image_versions)."""
    versions = cfg.sagemaker.image_versions
    if image not in versions:
        raise UsageError(
            f"step {step} runs on the {image!r} image, but config sagemaker.image_versions "
            f"names no version of it (it has {', '.join(sorted(versions)) or 'none'})"
        )
    return versions[image]


@functools.cache
def _image_uri(image: str, region: str, version: str) -> str:
    """The framework image, or one line naming the config key when the SDK knows no such
    image or version (it raises a multi-line ValueError). Cached: the SDK reads its image
    tables from disk on every call."""
    from sagemaker.core import image_uris

    try:
        return image_uris.retrieve(image, region, version=version)
    except ValueError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown version"
        raise UsageError(
            f"config sagemaker.image_versions.{image} {version!r} is not a SageMaker {image} "
            f"image version in {region}: {reason[:200]}"
        ) from None


def output_name(source: str) -> str:
    """`"evaluate.evaluation"` -> the step's output name, `"evaluation"`."""
    return source.split(".", 1)[1]


class _Renderer:
    """Declared pipeline -> SDK objects -> definition JSON, for one config and target."""

    def __init__(
        self,
        sdk: SimpleNamespace,
        cfg: Config,
        target: Target,
        pipe: Pipeline,
        repo_root: Path,
        wheels_dir: Path,
    ):
        self.sdk, self.cfg, self.target, self.pipe = sdk, cfg, target, pipe
        self.repo_root, self.wheels_dir = repo_root, wheels_dir
        self.code_root = repo_root / CODE_ROOT.relative_to(REPO_ROOT)
        self.recorder = _Recorder(target)
        self.missing_wheels: list[str] = []
        self.session = _recording_session(sdk, target, self.recorder)
        self.images = {
            step.image: _image_uri(
                step.image, target.region, image_version(cfg, step.image, step.name)
            )
            for step in pipe.steps
        }
        self.params = self.parameters()
        suite = cfg.suite_file
        self.sources: dict[str, Any] = {
            DATA: self.params[INPUT_DATA],
            SUITE: self.recorder.code(suite.name, suite.read_bytes()),
            CHAMPION: self.params[CHAMPION_MODEL],
        }
        golden = cfg.golden_file
        if golden is not None:  # shipped like the suite: reviewed data in the repository
            self.sources[GOLDEN] = self.recorder.code(golden.name, golden.read_bytes())
        self.cache = sdk.CacheConfig(enable_caching=True, expire_after=CACHE_EXPIRY)
        self.rendered: dict[str, Any] = {}  # declared step name -> SDK step

    def parameters(self) -> dict[str, Any]:
        """Pipeline parameters, defaults from config: what a run may override. The declared
        `Param`s (step arguments, gate thresholds) are Float parameters of their names."""
        p, sm = self.sdk.parameters, self.cfg.sagemaker
        no_champion = self.recorder.code(
            "no-champion.txt", b"No champion model: evaluate scores the challenger only.\n"
        )
        values = {
            INPUT_DATA: p.ParameterString(INPUT_DATA, self.target.uri("data", "input") + "/"),
            CHAMPION_MODEL: p.ParameterString(CHAMPION_MODEL, no_champion),
            PROCESSING_INSTANCE_TYPE: p.ParameterString(
                PROCESSING_INSTANCE_TYPE, sm.processing_instance_type
            ),
            TRAINING_INSTANCE_TYPE: p.ParameterString(
                TRAINING_INSTANCE_TYPE, sm.training_instance_type
            ),
        }
        lineage = {
            GIT_COMMIT: p.ParameterString(GIT_COMMIT, "unknown"),
            PR_NUMBER: p.ParameterString(PR_NUMBER, NO_VALUE),
            DATA_SHA256: p.ParameterString(DATA_SHA256, "unknown"),
            **{name: p.ParameterString(name, NO_VALUE) for name in SNAPSHOT_PARAMETERS},
        }
        declared = self.pipe.params
        clash = sorted(set(declared) & (set(values) | set(lineage)))
        if clash:
            raise UsageError(
                f"model_build/pipeline.py: Param {clash[0]} has the name of a pipeline "
                "parameter of the template's: rename it"
            )
        values.update(
            {name: p.ParameterFloat(name, float(q.value)) for name, q in declared.items()}
        )
        return {**values, **lineage}

    def output_uri(self, step: Step, output: str) -> Any:
        """`s3://<bucket>/<prefix>/runs/<execution id>/<step>/<output>` (mlops.core.run_layout)."""
        execution_id = self.sdk.ExecutionVariables.PIPELINE_EXECUTION_ID
        return self.sdk.Join(
            on="/", values=[self.target.uri(RUNS), execution_id, step.name, output]
        )

    def arguments(self, step: Step) -> list:
        """The declared argv, each Param as its pipeline parameter (as text)."""
        return [
            self.params[a.name].to_string() if isinstance(a, Param) else a for a in step.arguments
        ]

    def present_inputs(self, step: Step) -> list:
        """The step's inputs that exist in this run: an optional pipeline input that is not
        configured (no golden set) is left out, as the local runner leaves it out."""
        present = [inp for inp in step.inputs if inp.source in self.sources]
        for inp in step.inputs:
            if inp.source not in self.sources and not inp.optional:
                raise UsageError(f"step {step.name}: input {inp.name} has no source {inp.source}")
        return present

    def bundle(self, step: Step) -> tuple[str, str]:
        """(S3 URI, sha256) of a step's sourcedir.tar.gz."""
        wheels = self.wheels_dir / step.name
        if REQUIREMENTS in step.ships and not any(wheels.glob("*.whl")):
            self.missing_wheels.append(step.name)
        body = step_bundle(self.code_root / step.script, step.ships, self.repo_root, wheels)
        return self.recorder.code("sourcedir.tar.gz", body), sha256_hex(body)

    def distribution(self, step: Step, inp: Any) -> str | None:
        """The raw input of a step on several instances is shared out by S3 key: each
        instance gets its own files. Every other input reaches every instance whole (the
        default, FullyReplicated)."""
        sharded = (
            inp.source == DATA and step.instances(self.cfg.sagemaker.processing_instance_count) > 1
        )
        return "ShardedByS3Key" if sharded else None

    def processing_step(self, step: Step, depends_on: list[str] | None) -> Any:
        sdk = self.sdk
        bundle, digest = self.bundle(step)
        processor = sdk.FrameworkProcessor(
            image_uri=self.images[step.image],
            command=["python3"],
            role=self.target.role_arn,
            instance_type=self.params[PROCESSING_INSTANCE_TYPE],
            # Not a parameter: the declaration differs with the count (its merge steps).
            instance_count=step.instances(self.cfg.sagemaker.processing_instance_count),
            code_location=self.target.uri("code"),
            sagemaker_session=self.session,
        )
        inputs = [
            sdk.ProcessingInput(
                input_name=inp.name,
                s3_input=sdk.ProcessingS3Input(
                    s3_uri=self.sources[inp.source],
                    local_path=step.container_path(inp.name),
                    s3_data_type="S3Prefix",
                    s3_input_mode="File",
                    s3_data_distribution_type=self.distribution(step, inp),
                ),
            )
            for inp in self.present_inputs(step)
        ]
        outputs = [
            sdk.ProcessingOutput(
                output_name=name,
                s3_output=sdk.ProcessingS3Output(
                    s3_uri=self.output_uri(step, name),
                    local_path=step.container_path(name),
                    s3_upload_mode="EndOfJob",
                ),
            )
            for name in step.outputs
        ]
        step_args = processor.run(
            code=Path(step.script).name,
            source_dir=bundle,
            requirements=REQUIREMENTS if REQUIREMENTS in step.ships else None,
            inputs=inputs,
            outputs=outputs,
            arguments=self.arguments(step),
            job_name=f"{step.name}-{digest[:12]}",  # names the SDK's helper-script keys
        )
        property_files = None
        if step.name == self.pipe.evaluation_step:
            property_files = [
                sdk.PropertyFile(
                    name=EVALUATION_PROPERTY_FILE,
                    output_name=output_name(self.pipe.evaluation),
                    path=EVALUATION_FILE,
                )
            ]
        return sdk.ProcessingStep(
            name=step.name,
            step_args=step_args,
            description=step.description,
            cache_config=self.cache,
            property_files=property_files,
            depends_on=depends_on,
        )

    def channel_source(self, step: Step, inp: Any) -> Any:
        """A training channel: with several training instances, its files are shared out
        by S3 key (preprocess writes each split as one file per training instance).
        Distributed XGBoost sums a metric's parts over the hosts, so a sharded validation
        split scores as the whole one."""
        if self.cfg.sagemaker.training_instance_count == 1:
            return self.sources[inp.source]
        return self.sdk.S3DataSource(
            s3_data_type="S3Prefix",
            s3_uri=self.sources[inp.source],
            s3_data_distribution_type="ShardedByS3Key",
        )

    def tuned(self, step: Step) -> bool:
        return self.pipe.tuning is not None and step.name == self.pipe.model_step

    def training_step(self, step: Step, depends_on: list[str] | None) -> Any:
        sdk = self.sdk
        bundle, _ = self.bundle(step)
        static = hyperparameters(step)
        if self.tuned(step):  # the tuner sets these per training job
            static = {k: v for k, v in static.items() if k not in self.pipe.tuning.ranges}
        trainer = sdk.ModelTrainer(
            training_image=self.images[step.image],
            role=self.target.role_arn,
            base_job_name=step.name,
            source_code=sdk.SourceCode(source_dir=bundle, entry_script=Path(step.script).name),
            compute=sdk.Compute(
                instance_type=self.params[TRAINING_INSTANCE_TYPE],
                instance_count=self.cfg.sagemaker.training_instance_count,
            ),
            hyperparameters=static,
            output_data_config=sdk.OutputDataConfig(s3_output_path=self.target.uri("models")),
            sagemaker_session=self.session,
        )
        channels = [
            sdk.InputData(
                channel_name=inp.name,
                data_source=self.channel_source(step, inp),
                content_type="text/csv",
            )
            for inp in self.present_inputs(step)
        ]
        if self.tuned(step):
            return self.tuning_step(step, trainer, channels, depends_on)
        step_args = trainer.train(input_data_config=channels)
        return sdk.TrainingStep(
            name=step.name,
            step_args=step_args,
            description=step.description,
            cache_config=self.cache,
            depends_on=depends_on,
        )

    def tuning_step(
        self, step: Step, trainer: Any, channels: list, depends_on: list[str] | None
    ) -> Any:
        """train.tuning as a SageMaker tuning job (Bayesian) over the training step's jobs."""
        sdk, tuning = self.sdk, self.pipe.tuning
        check_tunable_image(step.image)
        warm_start = None
        if tuning.warm_start_from:
            warm_start = sdk.WarmStartConfig(
                parent_hyper_parameter_tuning_jobs=[
                    sdk.ParentTuningJob(hyper_parameter_tuning_job_name=name)
                    for name in tuning.warm_start_from
                ],
                warm_start_type=WARM_START_TYPE,
            )
        tuner = sdk.HyperparameterTuner(
            model_trainer=trainer,
            objective_metric_name=tuning.objective.metric,
            objective_type=TUNING_DIRECTION[tuning.objective.direction],
            hyperparameter_ranges=tuning_ranges(sdk, tuning),
            metric_definitions=metric_definitions(step),
            strategy="Bayesian",
            max_jobs=tuning.n_trials,
            max_parallel_jobs=min(tuning.parallel or TUNING_PARALLEL_JOBS, tuning.n_trials),
            early_stopping_type="Auto" if tuning.early_stopping else "Off",
            random_seed=tuning.seed,
            warm_start_config=warm_start,
            base_tuning_job_name=step.name,
        )
        return sdk.TuningStep(
            name=step.name,
            step_args=tuner.tune(inputs=channels),
            description=f"{step.description}; hyperparameter tuning ({tuning.n_trials} jobs)",
            cache_config=self.cache,
            depends_on=depends_on,
        )

    def model_artifacts(self, sdk_step: Any) -> Any:
        """Where a training step's model.tar.gz is: its job's, or the best tuning job's."""
        if isinstance(sdk_step, self.sdk.TuningStep):
            # The best job by the objective (the SDK's get_top_model_s3_uri reads
            # TrainingJobSummaries[k], whose order the API does not promise).
            best = sdk_step.properties.BestTrainingJob.TrainingJobName
            return self.sdk.Join(
                on="/", values=[self.target.uri("models"), best, "output", MODEL_ARCHIVE]
            )
        return sdk_step.properties.ModelArtifacts.S3ModelArtifacts

    def declared_steps(self) -> list[Any]:
        """Every declared step, in order; each waits for the one before, as locally."""
        rendered = []
        for index, step in enumerate(self.pipe.steps):
            depends_on = [self.pipe.steps[index - 1].name] if index else None
            make = self.training_step if step.kind == "training" else self.processing_step
            sdk_step = make(step, depends_on)
            rendered.append(sdk_step)
            self.rendered[step.name] = sdk_step
            for out in step.outputs:
                self.sources[f"{step.name}.{out}"] = (
                    self.model_artifacts(sdk_step)
                    if step.kind == "training" and out == MODEL_OUTPUT
                    else sdk_step.properties.ProcessingOutputConfig.Outputs[out].S3Output.S3Uri
                )
        return rendered

    def serving_image(self) -> str:
        """The model step's image: the family's, which trains, evaluates and serves it."""
        return self.pipe.step(self.pipe.model_step).image

    def register_step(self) -> Any:
        """ModelStep registering the model, served by the serving handler on the family's
        image, with its metrics and lineage."""
        sdk, pipe = self.sdk, self.pipe
        image = self.serving_image()
        builder = sdk.ModelBuilder(
            s3_model_data_url=self.sources[pipe.model],
            image_uri=self.images[image],
            role_arn=self.target.role_arn,
            sagemaker_session=self.session,
            dependencies=None,
            env_vars=dict(SERVING_ENV),
        )
        metrics = sdk.ModelMetrics(
            model_statistics=sdk.MetricsSource(
                s3_uri=sdk.Join(on="/", values=[self.sources[pipe.evaluation], EVALUATION_FILE]),
                content_type="application/json",
            ),
            model_data_statistics=sdk.MetricsSource(
                s3_uri=sdk.Join(on="/", values=[self.sources[pipe.baseline], BASELINE_FILE]),
                content_type="application/json",
            ),
        )
        metadata = lineage_metadata(
            self.cfg,
            self.params,
            sdk.ExecutionVariables.PIPELINE_EXECUTION_ID,
            self.sources[pipe.held_out],
        )
        if pipe.tuning is not None:  # the values are the best job's: name it instead
            for name in pipe.tuning.ranges:
                metadata[f"{PARAMS_PREFIX}train.{name}"] = "tuned"
            tuning_step = self.rendered[pipe.model_step]
            metadata["best_training_job"] = tuning_step.properties.BestTrainingJob.TrainingJobName
        family = self.cfg.model_family.NAME
        step_args = builder.register(
            model_package_group_name=self.cfg.model_package_group,
            content_types=CONTENT_TYPES,
            response_types=CONTENT_TYPES,
            # A constant, not a parameter: no caller of StartPipelineExecution can ask
            # for a version that is approved on arrival (and so deployed by the rule).
            approval_status=PENDING,
            description=f"{self.cfg.model_package_group}: {family} model, served on the "
            f"SageMaker {image} {image_version(self.cfg, image, pipe.model_step)} image",
            model_metrics=metrics,
            customer_metadata_properties=metadata,
        )
        return sdk.ModelStep(name=REGISTER_STEP, step_args=step_args)

    def threshold(self, rule: Rule, metric: Any) -> Any:
        """A rule's threshold: its parameter, or another value of evaluation.json (such as
        the champion's limit)."""
        if isinstance(rule.threshold, Param):
            return self.params[rule.threshold.name]
        return metric(rule.threshold)

    def condition(self, rule: Rule, metric: Any) -> Any:
        """One gate rule as a condition: its metric against its threshold."""
        kind = getattr(self.sdk.conditions, CONDITIONS[rule.op])
        return kind(left=metric(rule.metric), right=self.threshold(rule, metric))

    def failure_message(self, metric: Any) -> Any:
        """The FailStep's message: every rule, with the values it compared."""
        values: list[Any] = ["quality gate failed (every rule must hold):"]
        for rule in self.pipe.gate:
            name = rule.threshold.name if isinstance(rule.threshold, Param) else rule.threshold
            values += [f" {rule.label}: {rule.metric} ", metric(rule.metric)]
            values += [f" {rule.op} {name} ", self.threshold(rule, metric), ";"]
        return self.sdk.Join(on="", values=values)

    def gate_step(self, evaluate: Any) -> Any:
        """The declared gate (mlops/core/gate.py): one condition per rule, all must hold.

        A rule's `when` needs no condition here: evaluate writes a champion limit that
        does not apply as the largest float, so it never binds."""
        sdk = self.sdk
        (evaluation,) = evaluate.property_files

        def metric(path: str) -> Any:
            return sdk.JsonGet(step_name=evaluate.name, property_file=evaluation, json_path=path)

        return sdk.ConditionStep(
            name=GATE_STEP,
            description="the quality gate of model_build/pipeline.py, with the same thresholds",
            conditions=[self.condition(rule, metric) for rule in self.pipe.gate],
            if_steps=[self.register_step()] if self.target.registers else [],
            else_steps=[sdk.FailStep(name=FAIL_STEP, error_message=self.failure_message(metric))],
        )

    def render(self) -> RenderedPipeline:
        steps = self.declared_steps()
        pipeline = self.sdk.Pipeline(
            name=self.target.pipeline_name or pipeline_name(self.cfg),
            parameters=list(self.params.values()),
            steps=[*steps, self.gate_step(self.rendered[self.pipe.evaluation_step])],
            pipeline_experiment_config=None,
            sagemaker_session=self.session,
        )
        definition = pipeline.definition()
        uploads = tuple(Upload(u, b) for u, b in sorted(self.recorder.uploads.items()))
        return RenderedPipeline(
            name=pipeline.name,
            definition=definition,
            uploads=uploads,
            missing_wheels=tuple(self.missing_wheels),
        )
