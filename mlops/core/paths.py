"""Where things live: the repository and the state directory ($MLOPS_HOME)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def mlops_home() -> Path:
    """The local backend's state directory; `.mlops/` in the repo unless $MLOPS_HOME is set."""
    return Path(os.environ.get("MLOPS_HOME") or REPO_ROOT / ".mlops").resolve()


# Where `mlops data validate/drift` write their reports and `mlops report pr` reads them
# (git-ignored).
REPORTS_DIR = REPO_ROOT / "reports"
