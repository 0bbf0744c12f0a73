"""Model cards of the local registry: `$MLOPS_HOME/cards/<group>/v<N>/card.html` + `card.md`.

Written when a version is registered, and again when its approval status changes (the
card carries the approval history) or `mlops models card N` asks. Every input is a file
the pipeline wrote: the version's evaluation.json and predictions.csv (copied into the
registry beside its model), its run's run.json (gate checks) and validation report.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlops.core import run_layout
from mlops.core.card_plots import Plot, plots
from mlops.core.config import Config
from mlops.core.graph import Pipeline, load_pipeline
from mlops.core.model_card import (
    INTENDED_USE_FILE,
    CardInputs,
    card_facts,
    render_html,
    render_markdown,
    task_of,
)
from mlops.core.registry import ModelVersion
from mlops.local.registry import LocalRegistry
from stepkit.splits import HELD_OUT_PREDICTIONS, read_predictions

CARDS = "cards"
HTML, MARKDOWN, FACTS = "card.html", "card.md", "card.json"


def card_folder(home: Path, group: str, version: int) -> Path:
    return Path(home) / CARDS / group / f"v{version}"


def card_file(home: Path, group: str, version: int) -> Path:
    """The HTML card of a version (it may not be written yet)."""
    return card_folder(home, group, version) / HTML


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def validation_of(run_dir: Path, graph: Pipeline) -> dict:
    """The validate step's validation.json of a run ({} when it is gone or never written).
    With a sharded input the verdict is the last validating step's (validate_merge)."""
    validating = [
        s.name for s in graph.steps if "quarantine" in s.outputs and "report" in s.outputs
    ]
    for name in reversed(validating):
        found = _json(run_dir / run_layout.relative(f"{name}.report") / "validation.json")
        if found:
            return found
    return {}


def intended_use(cfg: Config) -> str:
    path = cfg.resolve(INTENDED_USE_FILE)
    return path.read_text() if path.is_file() else ""


def card_inputs(cfg: Config, home: Path, version: ModelVersion, history: list[dict]) -> CardInputs:
    evaluation = _json(Path(version.evaluation_uri))
    predictions_path = Path(version.evaluation_uri).parent / HELD_OUT_PREDICTIONS
    predictions = read_predictions(predictions_path) if predictions_path.is_file() else None
    run_dir = run_layout.run_dir(home, version.lineage.get("run_id", "?"))
    run = _json(run_dir / "run.json")
    gate = run.get("gate") or {}
    return CardInputs(
        version=version,
        task=task_of(evaluation) if evaluation else cfg.task,
        target=cfg.data.target,
        features=cfg.data.features,
        evaluation=evaluation,
        predictions=predictions,
        gate_checks=gate.get("checks", ()),
        gate_passed=gate.get("passed"),
        validation=validation_of(run_dir, load_pipeline(cfg)),
        history=history,
        champion_version=run.get("champion_version"),
        intended_use=intended_use(cfg),
    )


def build_card(cfg: Config, home: Path, version_number: int) -> tuple[dict, list[Plot]]:
    """A version's card as it stands now: (facts, plots)."""
    registry = LocalRegistry(home, cfg.model_package_group)
    version = registry.describe(version_number)
    inputs = card_inputs(cfg, home, version, registry.history(version_number))
    return card_facts(inputs), plots(inputs.evaluation, inputs.predictions)


def card_html(cfg: Config, home: Path, version_number: int) -> str:
    """The HTML card, rendered now and written nowhere (the status page's view)."""
    return render_html(*build_card(cfg, home, version_number))


def write_card(cfg: Config, home: Path, version_number: int) -> Path:
    """Write (or rewrite) a version's card; returns the HTML file."""
    facts, figures = build_card(cfg, home, version_number)
    folder = card_folder(home, cfg.model_package_group, version_number)
    folder.mkdir(parents=True, exist_ok=True)
    for figure in figures:
        (folder / f"{figure.name}.png").write_bytes(figure.png)
    (folder / MARKDOWN).write_text(render_markdown(facts, [f"{p.name}.png" for p in figures]))
    (folder / FACTS).write_text(json.dumps(facts, indent=2, default=str))
    html_file = folder / HTML
    html_file.write_text(render_html(facts, figures))
    return html_file


def write_card_or_warn(
    cfg: Config, home: Path, version_number: int, progress, quiet: bool = False
) -> Path | None:
    """At registration: the version is registered whatever happens to its card; a card
    that cannot be written is one warning line (`mlops models card N` writes it later)."""
    try:
        path = write_card(cfg, home, version_number)
    except (OSError, ValueError, KeyError) as exc:
        progress(f"warning: model card of version {version_number} not written: {exc}")
        return None
    if not quiet:
        progress(f"model card: {path}")
    return path
