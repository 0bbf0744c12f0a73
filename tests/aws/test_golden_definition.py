"""The committed, normalized copy of the pipeline definition: an SDK upgrade (or a change to
the renderer) that changes what SageMaker receives shows up as a diff in review.

Regenerate after an intended change, then read the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/aws/test_golden_definition.py
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "pipeline-definition.json"
# Content hashes change with every edit of a step script, the expectation suite or the
# SDK's own driver files; determinism and per-step keys are tested in
# test_pipeline_definition.py, so here they are normalized away.
SHA256 = re.compile(r"\b[0-9a-f]{64}\b")
JOB_HASH = re.compile(r"/code/([a-z]+)-[0-9a-f]{12}/")


def normalize(definition: str) -> str:
    text = SHA256.sub("<sha256>", definition)
    text = JOB_HASH.sub(r"/code/\1-<sha12>/", text)
    return json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_definition_matches_the_golden_copy(rendered):
    current = normalize(rendered.definition)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(current)
    assert GOLDEN.is_file(), "no golden copy yet: run with UPDATE_GOLDEN=1"
    assert current == GOLDEN.read_text(), (
        "the pipeline definition changed: if intended, regenerate with "
        "UPDATE_GOLDEN=1 .venv/bin/pytest tests/aws/test_golden_definition.py and review the diff"
    )


def test_normalization_keeps_everything_but_hashes():
    raw = json.dumps(
        {
            "S3Uri": "s3://b/p/code/" + "ab" * 32 + "/x",
            "aux": "s3://b/p/code/validate-0123456789ab/",
        }
    )
    assert json.loads(normalize(raw)) == {
        "S3Uri": "s3://b/p/code/<sha256>/x",
        "aux": "s3://b/p/code/validate-<sha12>/",
    }
