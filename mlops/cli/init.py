"""`mlops init`: a fork's config, starter suite and sample, written from its own data."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import ModuleType

import pandas as pd
import yaml

from mlops.core import profiling, run_layout
from mlops.core import profiling_classification as binary
from mlops.core.calibrate_classification import (
    ClassificationCalibration,
    calibrate_classification,
)
from mlops.core.config import DEFAULT_CONFIG, Config, DataConfig, load_config
from mlops.core.deploy import endpoint_name
from mlops.core.errors import MlopsError, StepFailed, UsageError
from mlops.core.graph import SUITE, Pipeline, load_pipeline
from mlops.core.model_family import families, model_family
from mlops.core.paths import REPO_ROOT
from mlops.core.stages import STAGES

Calibrated = profiling.Calibration | ClassificationCalibration
THRESHOLD = 0.5  # the decision threshold init writes (classification.threshold)
SPLIT = (0.6, 0.2, 42)  # train ratio, validation ratio, seed
SMOKE_ROWS = 20
SAMPLE = "model_build/data/sample.csv"

CONFIG_TEMPLATE = """\
# Written by `mlops init` from {source} ({rows}) on {today}.
# Review the lines marked REVIEW, then commit this file, the suite and the sample.

model_package_group: {name}   # names the pipeline, endpoints and stacks too
task: {task}

data:
  # REVIEW: left out: {left_out}
  features:{features}
  # String features, taken as categories by the model family.
  categorical_features:{categorical}
  max_categories: {max_categories}        # levels kept per categorical feature
  target: {target}
  expectation_suite: {suite}
  max_file_mb: 2048          # larger inputs are refused before they are read
  stream_above_mb: 64        # larger inputs and splits are read a chunk at a time
  # Up to this share of rows (%) failing row-level checks is set aside.{quarantine_note}
  max_quarantined_pct: {max_quarantined_pct}
  # Optional: reviewed reference rows (raw CSV, as the data) that challenger and champion
  # are scored on every run; keep them out of the training data.
  # golden: data_checks/golden/{name}.csv
  # A small committed sample (the demo, tests/project/ and PR CI run on it).
  sample: {sample}

preprocess:
  train_ratio: {train}
  validation_ratio: {validation}      # the rest is the held-out test split
  seed: {seed}

train:
  model: {model}             # the model family: model_build/steps/families.py lists them
  # {family_doc}
  # Its hyperparameters (the family's defaults), checked by it when the config loads.
  hyperparameters:
{hyperparameters}

{classification}{gate}
drift:
  # population stability index (PSI) per feature, target and prediction
  threshold: 0.2
  fail_on_drift: false

{smoke}
{feature_store}
behaviour:
  # REVIEW: numeric features the prediction must not go down (or up) with, all else equal;
  # tests/project/ checks them on the model trained from the sample.
  # Rank correlation with the target (candidates, not proof): {candidates}
  monotonic_increasing: []
  monotonic_decreasing: []
"""


@dataclass(frozen=True)
class Sections:
    """The parts of the config that depend on the task and the calibration."""

    gate: str
    smoke: str
    classification: str = ""  # the classification section, for a classifier


# The staged config's gate, before calibration: it loads and binds nothing (init's own
# run of the steps checks no gate). The largest finite floats, as config refuses `.inf`.
PROVISIONAL_GATE = {
    "regression": {"max_mse": "1.0e+308", "min_r2": "-1.0e+308"},
    "binary_classification": {"min_auc": "0.0", "max_log_loss": "1.0e+308"},
}
CLASSIFICATION = """\
classification:
  # {label_note}
  positive_label: {positive}
  threshold: {threshold}             # a probability at or above it answers the positive label

"""
REGRESSION_GATE = """\
gate:
  # REVIEW: calibrated on {test_rows} held-out rows. Baseline ({family}): MSE {b_mse:.6g}
  # (95 % interval {b_mse_lo:.6g} to {b_mse_hi:.6g}), R2 {b_r2:.4f}; predicting the mean:
  # MSE {n_mse:.6g}, R2 {n_r2:.4f}.
  max_mse: {max_mse}
  min_r2: {min_r2}
  # A challenger may be at most this much worse (MSE, %) than the approved
  # champion scored on the same held-out rows.
  max_regression_pct: 5.0
"""
REGRESSION_SMOKE = """\
smoke_test:
  rows: {smoke_rows}
  # REVIEW: the baseline's MAPE was {b_mape:.3g} % on all held-out rows; {smoke_rows} rows
  # stay under this in 99 % of draws, with a fifth more room (predicting the mean
  # scores {n_mape:.3g} %; more rows are taken when fewer cannot tell the two apart).
  max_mape_pct: {max_mape_pct}
"""
CLASSIFICATION_GATE = """\
gate:
  # REVIEW: calibrated on {test_rows} held-out rows (stratified).
  # Baseline ({family}): AUC {b_auc:.4f} (95 % interval {b_auc_lo:.4f} to {b_auc_hi:.4f}),
  # log loss {b_ll:.4f} ({b_ll_lo:.4f} to {b_ll_hi:.4f}); always the training share of
  # positives: log loss {n_ll:.4f}, AUC 0.5.
  min_auc: {min_auc}
  max_log_loss: {max_log_loss}
  # A challenger may be at most this much worse (log loss, %) than the approved
  # champion scored on the same held-out rows.
  max_regression_pct: 5.0
"""
CLASSIFICATION_SMOKE = """\
smoke_test:
  rows: {smoke_rows}
  # REVIEW: the baseline's accuracy was {b_acc:.3f} on all held-out rows; {smoke_rows} rows
  # stay above this in 99 % of draws, less 0.05 (always answering the majority label
  # scores {n_acc:.3f}; more rows are taken when fewer cannot tell the two apart).
  min_accuracy: {min_accuracy}
"""


def classification_section(positive: str, label_note: str | None) -> str:
    return CLASSIFICATION.format(
        label_note=f"REVIEW: {label_note}" if label_note else "by its name",
        positive=json.dumps(positive),  # quoted: YAML would read yes/no as booleans
        threshold=THRESHOLD,
    )


def provisional_sections(task: str, classification: str = "") -> Sections:
    """What the staged config holds until the run it makes possible calibrates it."""
    values = "".join(f"  {key}: {value}\n" for key, value in PROVISIONAL_GATE[task].items())
    return Sections(
        gate=f"gate:\n{values}  max_regression_pct: 5.0\n",
        smoke=f"smoke_test:\n  rows: {SMOKE_ROWS}\n",
        classification=classification,
    )


def regression_sections(cal: profiling.Calibration, family: str) -> Sections:
    b, n = cal.baseline, cal.naive
    gate = REGRESSION_GATE.format(
        test_rows=cal.test_rows,
        family=family,
        b_mse=b["mse"],
        b_mse_lo=b["mse_interval"][0],
        b_mse_hi=b["mse_interval"][1],
        b_r2=b["r2"],
        n_mse=n["mse"],
        n_r2=n["r2"],
        max_mse=f"{cal.max_mse:.6g}",
        min_r2=cal.min_r2,
    )
    smoke = REGRESSION_SMOKE.format(
        smoke_rows=cal.smoke_rows,
        b_mape=b["mape_pct"],
        n_mape=n["mape_pct"],
        max_mape_pct=cal.max_mape_pct,
    )
    return Sections(gate, smoke)


def classification_sections(
    cal: ClassificationCalibration, family: str, classification: str
) -> Sections:
    b, n = cal.baseline, cal.naive
    gate = CLASSIFICATION_GATE.format(
        test_rows=cal.test_rows,
        family=family,
        b_auc=b["auc"],
        b_auc_lo=b["auc_interval"][0],
        b_auc_hi=b["auc_interval"][1],
        b_ll=b["log_loss"],
        b_ll_lo=b["log_loss_interval"][0],
        b_ll_hi=b["log_loss_interval"][1],
        n_ll=n["log_loss"],
        min_auc=cal.min_auc,
        max_log_loss=cal.max_log_loss,
    )
    smoke = CLASSIFICATION_SMOKE.format(
        smoke_rows=cal.smoke_rows,
        b_acc=b["accuracy"],
        n_acc=n["accuracy"],
        min_accuracy=cal.min_accuracy,
    )
    return Sections(gate, smoke, classification)


FEATURE_STORE = """\
feature_store:               # mlops features ...; mlops pipeline run --from-feature-store
  # REVIEW: proposed from the data (the column naming a record; when its values were true).
  record_id: {record_id}
  event_time: {event_time}
"""
FEATURE_STORE_OFF = """\
# Optional: the feature store (mlops features ...) needs a record id and an event-time
# column (ISO-8601) beside the features; {found}.
# feature_store:
#   record_id: {record_id}
#   event_time: {event_time}
"""


def feature_store_section(prof: profiling.Profile) -> str:
    """The config's feature_store section: set when the data has both columns, else a
    commented-out example naming what was found."""
    if prof.record_id and prof.event_time:
        return FEATURE_STORE.format(
            record_id=json.dumps(prof.record_id), event_time=json.dumps(prof.event_time)
        )
    pairs = (("record id", prof.record_id), ("event time", prof.event_time))
    found = " and ".join(f"{what} {column}" for what, column in pairs if column)
    return FEATURE_STORE_OFF.format(
        found=f"found in this data: {found or 'neither'}",
        record_id=json.dumps(prof.record_id or "ID_COLUMN"),
        event_time=json.dumps(prof.event_time or "EVENT_TIME_COLUMN"),
    )


def family_doc(family: ModuleType) -> str:
    """The family's own one-line description (its docstring's first line)."""
    doc = (family.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else f"the {family.NAME} model family"


LINE_WIDTH = 100  # the project's yamllint allows 120; the written config keeps under 100


def yaml_list(values: list[str], indent: str) -> str:
    """A list after its key's colon: on that line when it fits, else one item a line."""
    flow = " " + json.dumps(values)
    if len(indent) + len("categorical_features:") + len(flow) <= LINE_WIDTH:
        return flow
    return "".join(f"\n{indent}  - {json.dumps(v)}" for v in values)


def wrap_comments(text: str, width: int = LINE_WIDTH) -> str:
    """Comment lines longer than `width` wrapped at word boundaries (the fork's CI lints
    the config with yamllint's line-length rule); a comment's indentation is kept."""
    out = []
    for line in text.splitlines():
        body = line.lstrip(" ")
        if len(line) <= width or not body.startswith("#"):
            out.append(line)
            continue
        prefix = line[: len(line) - len(body)] + "# "
        out += textwrap.wrap(
            body[1:].strip(),
            width,
            initial_indent=prefix,
            subsequent_indent=prefix,
            break_long_words=False,
            break_on_hyphens=False,
        )
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def render_config(
    name: str,
    source: str,
    prof: profiling.Profile,
    family: ModuleType,
    sections: Sections,
    suite: str,
    candidates: dict[str, float],
) -> str:
    left_out = ", ".join(f"{c} ({why})" for c, why in prof.left_out.items()) or "nothing"
    return wrap_comments(
        CONFIG_TEMPLATE.format(
            source=source,
            rows=f"{prof.rows + prof.unlabelled} rows, {prof.unlabelled} without a target"
            if prof.unlabelled
            else f"{prof.rows} rows",
            today=date.today().isoformat(),
            name=name,
            left_out=left_out,
            task=prof.task,
            features=yaml_list(prof.feature_names, "  "),
            categorical=yaml_list(prof.categorical_names, "  "),
            max_categories=profiling.MAX_LEVELS,
            target=json.dumps(prof.target.name),
            suite=suite,
            sample=SAMPLE,
            train=SPLIT[0],
            validation=SPLIT[1],
            seed=SPLIT[2],
            model=family.NAME,
            family_doc=family_doc(family),
            hyperparameters=textwrap.indent(
                yaml.safe_dump(family.defaults(prof.task), sort_keys=False).rstrip("\n"), "    "
            ),
            classification=sections.classification,
            gate=sections.gate,
            smoke=sections.smoke,
            feature_store=feature_store_section(prof),
            max_quarantined_pct=quarantine_limit(prof),
            quarantine_note=(
                f"\n  # REVIEW: {prof.unlabelled} of {prof.rows + prof.unlabelled} rows have no "
                f"{prof.target.name}:\n  # the pipeline quarantines them (so the limit covers them)."
                if prof.unlabelled
                else ""
            ),
            candidates=", ".join(f"{k} {v:+.2f}" for k, v in candidates.items()) or "none over 0.3",
        )
    )


def quarantine_limit(prof: profiling.Profile) -> float:
    default = DataConfig.model_fields["max_quarantined_pct"].default
    return profiling.quarantine_pct(prof.unlabelled, prof.rows + prof.unlabelled, default)


def read_data(path: Path):
    from stepkit import UnusableInput
    from stepkit.csv_input import read_csv_checked

    try:
        return read_csv_checked(path, max_mb=2048)
    except UnusableInput as exc:
        raise UsageError(str(exc)) from None


def write_temp(destination: Path, text: str) -> Path:
    """`text` in a temporary file beside `destination` (os.replace then moves it there)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.stem}.", suffix=destination.suffix
    )
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return Path(tmp)


def check_staged(config: Path, suite: Path, sample: Path, root: Path) -> Config:
    """The written config loads and the sample passes the written suite: else nothing moves."""
    from model_build.steps import validate

    cfg = load_config(config, root=root)
    report = validate.validate_file(sample, suite, 2048, date.today())
    if not report["success"]:
        raise UsageError(f"the sample fails its own starter suite: {report['summary']}")
    return cfg


def replaced_files(config_file: Path, root: Path, written: set[Path]) -> list[Path]:
    """The suite and golden set the config being replaced names, inside the project and not
    rewritten now: stale files a fork would otherwise carry (and lint, and review)."""
    if not config_file.exists():
        return []
    try:
        old = load_config(config_file, root=root)
    except (MlopsError, OSError, ValueError):
        return []  # an unreadable config names nothing to remove
    out = []
    for path in (old.suite_file, old.golden_file):
        if path is None or not path.is_file() or path.resolve() in {w.resolve() for w in written}:
            continue
        if path.resolve().is_relative_to(root.resolve()):
            out.append(path)
    return out


def calibration_steps(graph: Pipeline) -> tuple[str, ...]:
    """The pipeline's steps up to the one writing the evaluation, without those that check
    the data against the suite (init has just checked its sample against it; a step
    reading a skipped one's output finds it empty, as when nothing was quarantined)."""
    names = [s.name for s in graph.steps]
    upto = graph.steps[: names.index(graph.evaluation_step) + 1]
    return tuple(s.name for s in upto if all(i.source != SUITE for i in s.inputs))


CALIBRATION_RUN = "init"  # the run id of init's run, in its throwaway home


def calibration_run(
    graph: Pipeline, data: Path, suite: Path, progress: Callable[[str], None]
) -> tuple[dict, pd.DataFrame]:
    """evaluation.json and predictions.csv of the project's own steps run on `data`, in a
    temporary folder laid out as $MLOPS_HOME (removed afterwards, failed or not)."""
    from mlops.local.runner import execute, resolve_sources

    with tempfile.TemporaryDirectory(prefix="mlops-init-", ignore_cleanup_errors=True) as tmp:
        home = Path(tmp)
        run_dir = run_layout.run_dir(home, CALIBRATION_RUN)
        run_dir.mkdir(parents=True)
        rows = home / "data.csv"  # the steps read the .csv files of their input folder
        rows.symlink_to(data)
        sources = resolve_sources(graph, run_dir, rows, suite, champion=None, golden=None)
        try:
            execute(graph, sources, run_dir, progress, steps=calibration_steps(graph))
        except StepFailed as exc:  # its log goes with the folder: the reason is in the line
            reason = str(exc).split(" [log: ", 1)[0]
            raise StepFailed(
                f"init's run of the project's steps on {data.name}: {reason}"
            ) from None
        folder = run_layout.evaluation_folder(home, CALIBRATION_RUN, graph)
        evaluation = json.loads((folder / run_layout.EVALUATION_FILE).read_text())
        predictions = run_layout.read_predictions(folder / run_layout.HELD_OUT_PREDICTIONS)
    return evaluation, predictions


def cmd_init(args: argparse.Namespace) -> int:
    init_project(args, REPO_ROOT)
    return 0


def init_project(args: argparse.Namespace, root: Path) -> Calibrated:
    """Write the config, suite and sample of the project at `root` (the checkout's own
    folders; a test or bench passes another) from the data, calibrated by a run of its
    steps; returns the calibration written."""
    data = args.data.resolve()
    name = profiling.project_name(args.name or data.stem)
    suite_rel = f"data_checks/expectations/{name.replace('-', '_')}.json"
    config_file = root / DEFAULT_CONFIG.relative_to(REPO_ROOT)
    suite_file, sample_file = root / suite_rel, root / SAMPLE
    if data == sample_file.resolve():
        raise UsageError(f"{args.data} is where the sample goes: pass the data from elsewhere")
    existing = [p for p in (config_file, suite_file, sample_file) if p.exists()]
    if existing and not args.force:
        names = ", ".join(str(p.relative_to(root)) for p in existing)
        raise UsageError(f"{names} exist: --force replaces them (the example's are meant to go)")
    family = model_family(args.model)

    df = read_data(args.data)
    prof = profiling.profile(df, args.target, args.task, keep=args.keep)
    print(f"profiled {args.data}: {prof.rows} rows, {len(prof.features)} features")
    if prof.unlabelled:
        print(
            f"  left out {prof.unlabelled} row(s) without a {prof.target.name}: not in the "
            "sample nor the calibration; the pipeline quarantines such rows "
            f"(data.max_quarantined_pct {quarantine_limit(prof):g} %)"
        )
    df = profiling.labelled(df, prof.target.name)
    for column, why in prof.left_out.items():
        print(f"  left out {column}: {why} (--keep {column} keeps it)")
    if prof.record_id and prof.event_time:
        print(f"  feature store: record id {prof.record_id}, event time {prof.event_time}")
    if prof.categorical_names:
        print(f"  string categories: {', '.join(prof.categorical_names)}")
    classification, target = task_target(df, prof)
    candidates = profiling.monotonic_candidates(df, prof.feature_names, target)
    suite = profiling.starter_suite(prof, name.replace("-", "_"), args.data.name)
    sample = profiling.sample_rows(df, prof.columns)

    def config_text(sections: Sections) -> str:
        return render_config(name, args.data.name, prof, family, sections, suite_rel, candidates)

    files = {
        config_file: config_text(provisional_sections(prof.task, classification)),
        suite_file: json.dumps(suite, indent=2) + "\n",
        sample_file: sample.to_csv(index=False),
    }
    temps: dict[Path, Path] = {}
    try:
        for dest, text in files.items():
            temps[dest] = write_temp(dest, text)
        staged = check_staged(temps[config_file], temps[suite_file], temps[sample_file], root)
        graph = load_pipeline(staged)
        steps = ", ".join(calibration_steps(graph))
        print(f"calibrating: the project's {steps} on all {prof.rows} rows (a throwaway run)")
        evaluation, predictions = calibration_run(
            graph, data, temps[suite_file], lambda line: print(f"  {line}")
        )
        cal, sections = calibrate_task(evaluation, predictions, prof, family.NAME, classification)
        files[config_file] = config_text(sections)
        temps[config_file].write_text(files[config_file])
        load_config(temps[config_file], root=root)
        replaced = replaced_files(config_file, root, set(files))
        for dest, tmp in temps.items():
            os.replace(tmp, dest)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    for path in replaced:
        path.unlink(missing_ok=True)
        print(f"removed {path.relative_to(root)} (the replaced config's)")
    print_written(name, files, len(sample), suite, root)
    return cal


def task_target(df: pd.DataFrame, prof: profiling.Profile) -> tuple[str, object]:
    """The classification section (a classifier's positive label, printed) and the target
    as the monotonic candidates should see it (0/1 for a classifier)."""
    if prof.task != "binary_classification":
        return "", prof.target.name
    target = df[prof.target.name]
    positive, note = binary.positive_label(target)
    print(f"  positive label: {positive!r}" + (f" (REVIEW: {note})" if note else ""))
    labels = binary.encode_labels(target, positive)
    return classification_section(positive, note), pd.Series(labels, index=df.index)


def calibrate_task(
    evaluation: dict,
    predictions: pd.DataFrame,
    prof: profiling.Profile,
    family: str,
    classification: str,
) -> tuple[Calibrated, Sections]:
    """The calibration from evaluate's outputs (its figures printed) and the config's gate
    and smoke sections."""
    if prof.task == "binary_classification":
        cal = calibrate_classification(evaluation, predictions, SMOKE_ROWS, THRESHOLD)
        print_classification(cal, family)
        return cal, classification_sections(cal, family, classification)
    cal = profiling.calibrate(evaluation, predictions, SMOKE_ROWS)
    print_calibration(cal, family)
    return cal, regression_sections(cal, family)


def print_classification(cal: ClassificationCalibration, family: str) -> None:
    b, n = cal.baseline, cal.naive
    print(f"  held-out rows: {cal.test_rows}")
    print(
        f"  baseline ({family}): AUC {b['auc']:.4f} (95 % {b['auc_interval'][0]:.4f} to "
        f"{b['auc_interval'][1]:.4f}), log loss {b['log_loss']:.4f} (95 % "
        f"{b['log_loss_interval'][0]:.4f} to {b['log_loss_interval'][1]:.4f}), "
        f"accuracy {b['accuracy']:.3f}"
    )
    print(
        f"  naive (training share of positives): log loss {n['log_loss']:.4f}, "
        f"accuracy {n['accuracy']:.3f}"
    )
    print(f"  gate: min_auc {cal.min_auc}, max_log_loss {cal.max_log_loss}")
    print(f"  smoke test: min_accuracy {cal.min_accuracy} on {cal.smoke_rows} rows")
    for warning in cal.warnings:
        print(f"  warning: {warning}")


def print_calibration(cal: profiling.Calibration, family: str) -> None:
    b, n = cal.baseline, cal.naive
    print(f"  held-out rows: {cal.test_rows}")
    print(
        f"  baseline ({family}): MSE {b['mse']:.4g} (95 % {b['mse_interval'][0]:.4g} to "
        f"{b['mse_interval'][1]:.4g}), R2 {b['r2']:.4f} (95 % {b['r2_interval'][0]:.4f} to "
        f"{b['r2_interval'][1]:.4f}), MAPE {b['mape_pct']:.3g} %"
    )
    print(
        f"  naive (training mean): MSE {n['mse']:.4g}, R2 {n['r2']:.4f}, MAPE {n['mape_pct']:.3g} %"
    )
    print(f"  gate: max_mse {cal.max_mse:.6g}, min_r2 {cal.min_r2}")
    print(f"  smoke test: max_mape_pct {cal.max_mape_pct} on {cal.smoke_rows} rows")
    for warning in cal.warnings:
        print(f"  warning: {warning}")


def print_written(
    name: str, files: dict[Path, str], sample_rows: int, suite: dict, root: Path
) -> None:
    config, suite_file, sample = files
    print("wrote:")
    print(f"  {config.relative_to(root)}")
    print(f"  {suite_file.relative_to(root)} ({len(suite['expectations'])} expectations)")
    print(f"  {sample.relative_to(root)} ({sample_rows} rows)")
    print("names that follow from the project name:")
    print(f"  model package group {name}; pipeline {name}-pipeline")
    for stage in STAGES:
        print(f"  {stage}: endpoint and stack {endpoint_name(name, stage)}")
    print(
        f"  AWS bootstrap: aws cloudformation deploy --stack-name {name}-bootstrap "
        f"--template-file model_deploy/bootstrap.yml --capabilities CAPABILITY_IAM "
        f"--parameter-overrides ModelPackageGroupName={name} GitHubOrg=... GitHubRepo=..."
    )
    print("review before committing:")
    print("  - the lines marked REVIEW in the config (left-out columns, positive label, gate,")
    print("    smoke test, behaviour: declare features the prediction must rise or fall with)")
    print("  - the suite's bounds: observed ranges widened by half; set what is possible")
    if suite_has_sets(suite):
        print("  - the suite's value sets (category levels, labels): add levels that can occur")
    print("next: make test && make demo")


def suite_has_sets(suite: dict) -> bool:
    return any(e["type"] == "expect_column_values_to_be_in_set" for e in suite["expectations"])


def family_names() -> list[str] | None:
    """The project's model families, or None when families.py cannot be read (init then
    says why in one line, not the parser of every command)."""
    try:
        return list(families().FAMILIES)
    except UsageError:
        return None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init",
        help="write a fork's config, starter suite and sample from its own data",
        description="Profile a CSV and write model_build/config.yaml, a starter Great "
        "Expectations suite in data_checks/expectations/ and the committed sample "
        f"{SAMPLE}. The gate thresholds and the smoke-test tolerance are calibrated from "
        "a run of the project's own steps on the data (preprocess, train and evaluate of "
        "model_build/pipeline.py, in a temporary folder): the model's held-out metrics, their "
        "bootstrap intervals and the naive predictor's, as evaluate wrote them (figures "
        "shown). --model picks the model family (model_build/steps/families.py); its default "
        "hyperparameters are written. "
        "String columns become categorical features; constant and ID-like columns, and string "
        f"columns of more than {profiling.MAX_LEVELS} levels, are left out unless --keep names "
        "them. A column of ISO-8601 timestamps and one named like an id (else distinct on "
        "every row) are proposed as feature_store.event_time and record_id, not features. "
        "--task binary_classification takes a two-label target (yes/no, true/false, "
        "1/0 or any two values), detects the positive label, and calibrates the AUC floor, "
        "log-loss ceiling and smoke-test accuracy floor on the pipeline's stratified split. "
        "Exit 2 on unusable input (no such column, constant, empty or non-binary target, too "
        "few rows); exit 1 when a step of the project fails on the data.",
        epilog="example: mlops init --data ~/diabetes.csv --target progression --force",
    )
    p.add_argument("--data", type=Path, required=True, help="CSV with a header row (only read)")
    p.add_argument("--target", required=True, help="the column to predict")
    p.add_argument(
        "--task", choices=profiling.TASKS, default="regression", help="(default: regression)"
    )
    names = family_names()
    p.add_argument(
        "--model",
        choices=names,
        default=names[0] if names else None,
        help="the model family (default: %(default)s, the first families.py lists)",
    )
    p.add_argument("--name", help="project name (default: from the data file's name)")
    p.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="COLUMN",
        help="keep a column init would leave out (repeatable)",
    )
    p.add_argument(
        "--force", action="store_true", help="replace an existing config, suite or sample"
    )
    p.set_defaults(func=cmd_init)
