"""The SageMaker Pipeline, rendered from the step graph with the SageMaker Python SDK v3.

`mlops.core.graph.build_graph(cfg)` declares the steps once; this module renders the
same steps, scripts, arguments and gate into SDK objects:

    validate -> preprocess -> train -> evaluate -> gate -> register
                                                        \\-> gate-failed

It is the only module that imports the SDK, and only inside `render_pipeline`
(the import costs seconds; no other `mlops` command pays it).

Code travels as content-addressed bundles: each step's script plus the sibling
modules and support packages (`stepkit/`) it imports is packed into a reproducible
`sourcedir.tar.gz` under
`s3://<bucket>/<prefix>/code/<sha256>/`. Every S3 write the SDK would make while
rendering is recorded instead of performed (`Upload`), so rendering needs no
network and no credentials; `mlops pipeline run --backend sagemaker` puts the
recorded objects before it upserts. The same commit renders the same definition,
byte for byte, and a step whose code did not change keeps its cache key.
"""

from __future__ import annotations

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

from mlops.core.code_bundle import bundle_files
from mlops.core.config import Config
from mlops.core.errors import UsageError
from mlops.core.feature_store import SNAPSHOT_PREFIX
from mlops.core.graph import GOLDEN, RAW_DATA, SUITE, Graph, Step, build_graph
from mlops.core.lineage import NO_VALUE, PARAMS_PREFIX
from mlops.core.paths import REPO_ROOT
from mlops.core.registry import PENDING

# Pipeline parameter names: `mlops pipeline run --backend sagemaker` passes values by these.
INPUT_DATA = "InputDataUri"
CHAMPION_MODEL = "ChampionModelUri"
PROCESSING_INSTANCE_TYPE = "ProcessingInstanceType"
TRAINING_INSTANCE_TYPE = "TrainingInstanceType"
MAX_MSE = "MaxMse"
MIN_R2 = "MinR2"
MAX_REGRESSION_PCT = "MaxRegressionPct"
MIN_AUC = "MinAuc"
MAX_LOG_LOSS = "MaxLogLoss"
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

# Step arguments that render as pipeline parameters (thresholds), not as constants.
ARGUMENT_PARAMETERS = {"--max-regression-pct": MAX_REGRESSION_PCT}
# Extra files a step's bundle carries. The scikit-learn image lacks Great Expectations, so
# its wheels ship inside the validate step's bundle, and the requirements file the SDK's
# runproc.sh installs says --no-index: the job needs no internet (a VPC without NAT,
# network isolation). `make wheels` downloads them for the image's Python and platform
# into build/wheels/<step>/. (Not a custom ECR image: no Docker build, no registry to
# secure and patch, and the content-addressed bundle is uploaded once per change.)
BUNDLE_EXTRAS = {"validate": ("requirements.txt",)}
REQUIREMENTS = "requirements.txt"
WHEELS_ENV = "MLOPS_WHEELS_DIR"
WHEELS_DIR = Path("build") / "wheels"
OFFLINE_INSTALL = b"# only the wheels shipped in this bundle\n--no-index\n--find-links wheels\n"
# The container's entry (SAGEMAKER_PROGRAM): inference.py behind a transform_fn, so that
# bad requests are 4xx in the XGBoost serving container (see endpoint_handler.py).
SERVING_SCRIPT = "endpoint_handler.py"
GATE_STEP = "gate"
FAIL_STEP = "gate-failed"
REGISTER_STEP = "register"
EVALUATION_FILE = "evaluation.json"
MODEL_ARCHIVE = "model.tar.gz"
BASELINE_FILE = "baseline.json"
CACHE_EXPIRY = "P30D"
CONTENT_TYPES = ["text/csv", "application/json"]
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
METRIC_VALUE = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def metric_definitions(step: Step) -> list[dict[str, str]]:
    """Regexes for the `<name>=<value>` lines the training script logs (train.py)."""
    return [{"Name": name, "Regex": re.escape(name) + "=" + METRIC_VALUE} for name in step.metrics]


def tuning_ranges(sdk: SimpleNamespace, tuning: Any) -> dict[str, Any]:
    """The config's ranges as the SDK's parameter ranges."""
    ranges: dict[str, Any] = {}
    for name, r in tuning.ranges.items():
        if r.type == "categorical":
            ranges[name] = sdk.CategoricalParameter([str(v) for v in r.values])
        else:
            kind = sdk.IntegerParameter if r.type == "integer" else sdk.ContinuousParameter
            cast = int if r.type == "integer" else float
            ranges[name] = kind(cast(r.min), cast(r.max), scaling_type=TUNING_SCALE[r.scale])
    return ranges


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


def step_bundle(
    steps_dir: Path, script: str, extras: tuple[str, ...] = (), wheels: Path | None = None
) -> bytes:
    """sourcedir.tar.gz for one script: it, the sibling modules it imports (transitively:
    scripts import siblings as top-level modules), the support packages they import
    (`stepkit/...`) and `extras`; nothing else. A requirements file installs from the
    bundle's `wheels/` only (the wheels in `wheels`)."""
    files = {name: p.read_bytes() for name, p in bundle_files(steps_dir / script).items()}
    files.update({name: (steps_dir / name).read_bytes() for name in extras})
    if REQUIREMENTS in files:
        files[REQUIREMENTS] = OFFLINE_INSTALL + files[REQUIREMENTS]
        for wheel in sorted(wheels.glob("*.whl")) if wheels else ():
            files[f"wheels/{wheel.name}"] = wheel.read_bytes()
    return reproducible_tar_gz(files)


def hyperparameters(step: Step) -> dict[str, str]:
    """A training step's `--name value` arguments as the hyperparameter map SageMaker takes."""
    args = step.arguments
    return {
        flag.removeprefix("--"): value for flag, value in zip(args[::2], args[1::2], strict=True)
    }


def lineage_metadata(cfg: Config, params: dict[str, Any], run_id: Any) -> dict[str, Any]:
    """CustomerMetadataProperties: lineage as flat string values (the API allows no JSON)."""
    values: dict[str, Any] = {key: params[name] for name, key in LINEAGE_PARAMETERS.items()}
    # Resolved values of a run without the store may leave the snapshot's out.
    values.update({key: params.get(name, NO_VALUE) for name, key in SNAPSHOT_PARAMETERS.items()})
    values.update(data_file=params[INPUT_DATA], run_id=run_id, backend="sagemaker")
    for section, settings in (
        ("preprocess", cfg.preprocess.model_dump()),
        ("train", cfg.train.hyperparameters),
    ):
        for key, value in settings.items():
            values[f"{PARAMS_PREFIX}{section}.{key}"] = str(value)
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
    from sagemaker.core import image_uris, model_metrics, parameter, processing, shapes
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
        image_uris=image_uris,
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


def _recording_session(sdk: SimpleNamespace, target: Target, recorder: _Recorder) -> Any:
    """A PipelineSession whose S3 writes are recorded, and that never probes for a bucket."""
    import boto3

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
        boto_session=boto3.Session(region_name=target.region),
        default_bucket=target.bucket,
        sagemaker_config=TELEMETRY_OPT_OUT,
    )


@contextmanager
def _config_validated_once() -> Iterator[None]:
    """Validate each SDK defaults config once per render, not on every lookup.

    The SDK re-checks its whole JSON schema on each of ~70 config lookups (~0.2 s
    each); our config (the telemetry opt-out) never changes during a render.
    """
    from sagemaker.core.config.config_manager import SageMakerConfig

    original = SageMakerConfig.__dict__["validate_sagemaker_config"]
    validated: list[dict] = []

    def validate_once(sagemaker_config: dict | None = None) -> None:
        if sagemaker_config not in validated:
            original.__func__(sagemaker_config)
            validated.append(json.loads(json.dumps(sagemaker_config)))

    SageMakerConfig.validate_sagemaker_config = staticmethod(validate_once)
    try:
        yield
    finally:
        SageMakerConfig.validate_sagemaker_config = original


def render_pipeline(
    cfg: Config,
    target: Target,
    graph: Graph | None = None,
    repo_root: Path = REPO_ROOT,
    wheels_dir: Path | None = None,
) -> RenderedPipeline:
    """The pipeline definition JSON for `cfg`, and the objects it needs in S3.
    `wheels_dir`: default $MLOPS_WHEELS_DIR, else build/wheels in `repo_root`."""
    wheels_dir = wheels_dir or Path(os.environ.get(WHEELS_ENV) or repo_root / WHEELS_DIR)
    env = {"AWS_DEFAULT_REGION": target.region, "SAGEMAKER_VALIDATE_ROLE": "false"}
    with _environment_defaults(env), warnings.catch_warnings():
        # "Running within a PipelineSession, there will be No Wait, No Logs...": expected.
        warnings.simplefilter("ignore", UserWarning)
        sdk = _import_sdk()
        with _config_validated_once():
            renderer = _Renderer(sdk, cfg, target, graph or build_graph(cfg), repo_root)
            renderer.wheels_dir = wheels_dir
            return renderer.render()


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


def _image_uri(sdk: SimpleNamespace, name: str, region: str, version: str) -> str:
    """The framework image, or one line naming the config key when the SDK knows no such
    version (it raises a multi-line ValueError)."""
    try:
        return sdk.image_uris.retrieve(name, region, version=version)
    except ValueError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown version"
        raise UsageError(
            f"config sagemaker.{name}_image_version {version!r} is not a SageMaker {name} "
            f"image version in {region}: {reason[:200]}"
        ) from None


class _Renderer:
    """Step graph -> SDK objects -> definition JSON, for one config and target."""

    def __init__(
        self, sdk: SimpleNamespace, cfg: Config, target: Target, graph: Graph, repo_root: Path
    ):
        self.sdk, self.cfg, self.target, self.graph = sdk, cfg, target, graph
        self.recorder = _Recorder(target)
        self.wheels_dir = repo_root / WHEELS_DIR
        self.missing_wheels: list[str] = []
        self.session = _recording_session(sdk, target, self.recorder)
        self.steps_dir = repo_root / "model_build" / "steps"
        suite = cfg.suite_file
        self.images = {
            name: _image_uri(sdk, name, target.region, version)
            for name, version in (
                ("sklearn", cfg.sagemaker.sklearn_image_version),
                ("xgboost", cfg.sagemaker.xgboost_image_version),
            )
        }
        self.params = self.parameters()
        self.sources: dict[str, Any] = {
            RAW_DATA: self.params[INPUT_DATA],
            SUITE: self.recorder.code(suite.name, suite.read_bytes()),
            "champion": self.params[CHAMPION_MODEL],
        }
        golden = cfg.golden_file
        if golden is not None:  # shipped like the suite: reviewed data in the repository
            self.sources[GOLDEN] = self.recorder.code(golden.name, golden.read_bytes())
        self.cache = sdk.CacheConfig(enable_caching=True, expire_after=CACHE_EXPIRY)
        self.rendered: dict[str, Any] = {}  # graph step name -> SDK step

    def parameters(self) -> dict[str, Any]:
        """Pipeline parameters, defaults from config: what a run may override."""
        p, sm, gate = self.sdk.parameters, self.cfg.sagemaker, self.graph.gate
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
            **self.gate_parameters(),
            MAX_REGRESSION_PCT: p.ParameterFloat(MAX_REGRESSION_PCT, gate.max_regression_pct),
            GIT_COMMIT: p.ParameterString(GIT_COMMIT, "unknown"),
            PR_NUMBER: p.ParameterString(PR_NUMBER, NO_VALUE),
            DATA_SHA256: p.ParameterString(DATA_SHA256, "unknown"),
            **{name: p.ParameterString(name, NO_VALUE) for name in SNAPSHOT_PARAMETERS},
        }
        return values

    def gate_parameters(self) -> dict[str, Any]:
        """The task's gate thresholds as pipeline parameters."""
        p, gate = self.sdk.parameters, self.graph.gate
        if gate.task == "binary_classification":
            return {
                MIN_AUC: p.ParameterFloat(MIN_AUC, gate.min_auc),
                MAX_LOG_LOSS: p.ParameterFloat(MAX_LOG_LOSS, gate.max_log_loss),
            }
        return {
            MAX_MSE: p.ParameterFloat(MAX_MSE, gate.max_mse),
            MIN_R2: p.ParameterFloat(MIN_R2, gate.min_r2),
        }

    def output_uri(self, step: Step, output: str) -> Any:
        """`s3://<bucket>/<prefix>/runs/<execution id>/<step>/<output>`."""
        execution_id = self.sdk.ExecutionVariables.PIPELINE_EXECUTION_ID
        return self.sdk.Join(
            on="/", values=[self.target.uri("runs"), execution_id, step.name, output]
        )

    def arguments(self, step: Step) -> list:
        """The graph's argv, with threshold values replaced by their pipeline parameters."""
        args: list = list(step.arguments)
        for i, flag in enumerate(step.arguments[:-1]):
            if flag in ARGUMENT_PARAMETERS:
                args[i + 1] = self.params[ARGUMENT_PARAMETERS[flag]].to_string()
        return args

    def bundle(self, step: Step, extras: tuple[str, ...] = ()) -> tuple[str, str]:
        """(S3 URI, sha256) of a step's sourcedir.tar.gz."""
        wheels = self.wheels_dir / step.name
        if REQUIREMENTS in extras and not any(wheels.glob("*.whl")):
            self.missing_wheels.append(step.name)
        body = step_bundle(self.steps_dir, Path(step.script).name, extras, wheels)
        return self.recorder.code("sourcedir.tar.gz", body), sha256_hex(body)

    def processing_step(self, step: Step, depends_on: list[str] | None) -> Any:
        sdk = self.sdk
        extras = BUNDLE_EXTRAS.get(step.name, ())
        bundle, digest = self.bundle(step, extras)
        processor = sdk.FrameworkProcessor(
            image_uri=self.images[step.image],
            command=["python3"],
            role=self.target.role_arn,
            instance_type=self.params[PROCESSING_INSTANCE_TYPE],
            # Not a parameter: a run cannot ask for instances the steps would not use
            # (mlops.core.config refuses counts above 1).
            instance_count=self.cfg.sagemaker.processing_instance_count,
            code_location=self.target.uri("code"),
            sagemaker_session=self.session,
        )
        inputs = [
            sdk.ProcessingInput(
                input_name=inp.name,
                s3_input=sdk.ProcessingS3Input(
                    s3_uri=self.sources[inp.source],
                    local_path=inp.container_path,
                    s3_data_type="S3Prefix",
                    s3_input_mode="File",
                ),
            )
            for inp in step.inputs
        ]
        outputs = [
            sdk.ProcessingOutput(
                output_name=out.name,
                s3_output=sdk.ProcessingS3Output(
                    s3_uri=self.output_uri(step, out.name),
                    local_path=out.container_path,
                    s3_upload_mode="EndOfJob",
                ),
            )
            for out in step.outputs
        ]
        step_args = processor.run(
            code=Path(step.script).name,
            source_dir=bundle,
            requirements=extras[0] if extras else None,
            inputs=inputs,
            outputs=outputs,
            arguments=self.arguments(step),
            job_name=f"{step.name}-{digest[:12]}",  # names the SDK's helper-script keys
        )
        property_files = None
        if step.name == self.graph.evaluation_step:
            property_files = [
                sdk.PropertyFile(name="evaluation", output_name="evaluation", path=EVALUATION_FILE)
            ]
        return sdk.ProcessingStep(
            name=step.name,
            step_args=step_args,
            description=step.description,
            cache_config=self.cache,
            property_files=property_files,
            depends_on=depends_on,
        )

    def training_step(self, step: Step, depends_on: list[str] | None) -> Any:
        sdk = self.sdk
        bundle, _ = self.bundle(step)
        tuned = self.graph.tuning is not None and step.name == self.graph.model_step
        static = hyperparameters(step)
        if tuned:  # the tuner sets these per training job
            static = {k: v for k, v in static.items() if k not in self.graph.tuning.ranges}
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
                data_source=self.sources[inp.source],
                content_type="text/csv",
            )
            for inp in step.inputs
        ]
        if tuned:
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
        sdk, tuning = self.sdk, self.graph.tuning
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

    def model_artifacts(self, step: Step, sdk_step: Any) -> Any:
        """Where a training step's model.tar.gz is: its job's, or the best tuning job's."""
        if isinstance(sdk_step, self.sdk.TuningStep):
            # The best job by the objective (the SDK's get_top_model_s3_uri reads
            # TrainingJobSummaries[k], whose order the API does not promise).
            best = sdk_step.properties.BestTrainingJob.TrainingJobName
            return self.sdk.Join(
                on="/", values=[self.target.uri("models"), best, "output", MODEL_ARCHIVE]
            )
        return sdk_step.properties.ModelArtifacts.S3ModelArtifacts

    def graph_steps(self) -> list[Any]:
        """Every graph step, in order; each waits for the one before, as the local runner does."""
        rendered = []
        for index, step in enumerate(self.graph.steps):
            depends_on = [self.graph.steps[index - 1].name] if index else None
            make = self.training_step if step.kind == "training" else self.processing_step
            sdk_step = make(step, depends_on)
            rendered.append(sdk_step)
            self.rendered[step.name] = sdk_step
            for out in step.outputs:
                props = sdk_step.properties
                self.sources[f"{step.name}.{out.name}"] = (
                    self.model_artifacts(step, sdk_step)
                    if step.kind == "training"
                    else props.ProcessingOutputConfig.Outputs[out.name].S3Output.S3Uri
                )
        return rendered

    def register_step(self) -> Any:
        """ModelStep registering the trained model, served by inference.py, with its lineage."""
        sdk, graph = self.sdk, self.graph
        serving_bundle = self.recorder.code(
            "sourcedir.tar.gz", step_bundle(self.steps_dir, SERVING_SCRIPT)
        )
        builder = sdk.ModelBuilder(
            s3_model_data_url=self.sources[f"{graph.model_step}.model"],
            image_uri=self.images["xgboost"],
            role_arn=self.target.role_arn,
            sagemaker_session=self.session,
            dependencies=None,
            env_vars={
                "SAGEMAKER_PROGRAM": SERVING_SCRIPT,
                "SAGEMAKER_SUBMIT_DIRECTORY": serving_bundle,
            },
        )
        evaluation = self.sources[f"{graph.evaluation_step}.evaluation"]
        metrics = sdk.ModelMetrics(
            model_statistics=sdk.MetricsSource(
                s3_uri=sdk.Join(on="/", values=[evaluation, EVALUATION_FILE]),
                content_type="application/json",
            ),
            model_data_statistics=sdk.MetricsSource(
                s3_uri=sdk.Join(on="/", values=[self.sources[graph.baseline], BASELINE_FILE]),
                content_type="application/json",
            ),
        )
        metadata = lineage_metadata(
            self.cfg, self.params, sdk.ExecutionVariables.PIPELINE_EXECUTION_ID
        )
        if graph.tuning is not None:  # the values are the best job's: name it instead
            for name in graph.tuning.ranges:
                metadata[f"{PARAMS_PREFIX}train.{name}"] = "tuned"
            tuning_step = self.rendered[graph.model_step]
            metadata["best_training_job"] = tuning_step.properties.BestTrainingJob.TrainingJobName
        step_args = builder.register(
            model_package_group_name=self.cfg.model_package_group,
            content_types=CONTENT_TYPES,
            response_types=CONTENT_TYPES,
            # A constant, not a parameter: no caller of StartPipelineExecution can ask
            # for a version that is approved on arrival (and so deployed by the rule).
            approval_status=PENDING,
            description=f"{self.cfg.model_package_group}: XGBoost "
            f"{self.cfg.sagemaker.xgboost_image_version}",
            model_metrics=metrics,
            customer_metadata_properties=metadata,
        )
        return sdk.ModelStep(name=REGISTER_STEP, step_args=step_args)

    def gate_step(self, evaluate: Any) -> Any:
        """The gate of mlops/core/gate.py: mse <= MaxMse, r2 >= MinR2, mse <= champion_mse_limit;
        with a golden set (data.golden), its r2 >= MinR2 and its mse <= its champion limit."""
        sdk, c = self.sdk, self.sdk.conditions
        evaluation = evaluate.property_files[0]

        def metric(path: str) -> Any:
            return sdk.JsonGet(step_name=evaluate.name, property_file=evaluation, json_path=path)

        if self.graph.gate.task == "binary_classification":
            return self.classification_gate_step(metric)

        mse = metric("regression_metrics.mse.value")
        r2 = metric("regression_metrics.r2.value")
        champion_limit = metric("champion_mse_limit")
        conditions = [
            c.ConditionLessThanOrEqualTo(left=mse, right=self.params[MAX_MSE]),
            c.ConditionGreaterThanOrEqualTo(left=r2, right=self.params[MIN_R2]),
            c.ConditionLessThanOrEqualTo(left=mse, right=champion_limit),
        ]
        message = [
            "quality gate failed: needs mse <= ",
            self.params[MAX_MSE],
            ", r2 >= ",
            self.params[MIN_R2],
            " and mse <= champion_mse_limit ",
            champion_limit,
            "; got mse ",
            mse,
            ", r2 ",
            r2,
        ]
        if self.cfg.golden_file is not None:
            # gate.py's golden rules; evaluate writes golden.champion_mse_limit (the float
            # maximum without a champion, as at the top level), so the limit never binds then.
            golden_mse = metric("golden.regression_metrics.mse.value")
            golden_r2 = metric("golden.regression_metrics.r2.value")
            golden_limit = metric("golden.champion_mse_limit")
            conditions += [
                c.ConditionGreaterThanOrEqualTo(left=golden_r2, right=self.params[MIN_R2]),
                c.ConditionLessThanOrEqualTo(left=golden_mse, right=golden_limit),
            ]
            message += [
                "; golden set: needs r2 >= MinR2 and mse <= golden champion_mse_limit ",
                golden_limit,
                ", got r2 ",
                golden_r2,
                ", mse ",
                golden_mse,
            ]
        return sdk.ConditionStep(
            name=GATE_STEP,
            description="the quality gate of mlops/core/gate.py, with the same thresholds",
            conditions=conditions,
            if_steps=[self.register_step()] if self.target.registers else [],
            else_steps=[
                sdk.FailStep(name=FAIL_STEP, error_message=sdk.Join(on="", values=message))
            ],
        )

    def classification_gate_step(self, metric: Any) -> Any:
        """auc >= MinAuc, log_loss <= MaxLogLoss, log_loss <= champion_log_loss_limit; with a
        golden set, its auc >= MinAuc and its log_loss <= its champion limit."""
        sdk, c = self.sdk, self.sdk.conditions
        auc = metric("binary_classification_metrics.auc.value")
        log_loss = metric("binary_classification_metrics.log_loss.value")
        champion_limit = metric("champion_log_loss_limit")
        conditions = [
            c.ConditionGreaterThanOrEqualTo(left=auc, right=self.params[MIN_AUC]),
            c.ConditionLessThanOrEqualTo(left=log_loss, right=self.params[MAX_LOG_LOSS]),
            c.ConditionLessThanOrEqualTo(left=log_loss, right=champion_limit),
        ]
        message = [
            "quality gate failed: needs auc >= ",
            self.params[MIN_AUC],
            ", log_loss <= ",
            self.params[MAX_LOG_LOSS],
            " and log_loss <= champion_log_loss_limit ",
            champion_limit,
            "; got auc ",
            auc,
            ", log_loss ",
            log_loss,
        ]
        if self.cfg.golden_file is not None:  # gate.py's golden rules, as for regression
            golden_auc = metric("golden.binary_classification_metrics.auc.value")
            golden_loss = metric("golden.binary_classification_metrics.log_loss.value")
            golden_limit = metric("golden.champion_log_loss_limit")
            conditions += [
                c.ConditionGreaterThanOrEqualTo(left=golden_auc, right=self.params[MIN_AUC]),
                c.ConditionLessThanOrEqualTo(left=golden_loss, right=golden_limit),
            ]
            message += [
                "; golden set: needs auc >= MinAuc and log_loss <= golden champion_log_loss_limit ",
                golden_limit,
                ", got auc ",
                golden_auc,
                ", log_loss ",
                golden_loss,
            ]
        return sdk.ConditionStep(
            name=GATE_STEP,
            description="the quality gate of mlops/core/gate.py, with the same thresholds",
            conditions=conditions,
            if_steps=[self.register_step()],
            else_steps=[
                sdk.FailStep(name=FAIL_STEP, error_message=sdk.Join(on="", values=message))
            ],
        )

    def render(self) -> RenderedPipeline:
        steps = self.graph_steps()
        evaluate = next(s for s in steps if s.name == self.graph.evaluation_step)
        pipeline = self.sdk.Pipeline(
            name=self.target.pipeline_name or pipeline_name(self.cfg),
            parameters=list(self.params.values()),
            steps=[*steps, self.gate_step(evaluate)],
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
