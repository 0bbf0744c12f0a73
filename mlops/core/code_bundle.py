"""Which files travel with a step script or the serving handler.

Step scripts import their siblings as top-level modules (`from inference import
model_fn`), so a script's bundle is the script plus every sibling it imports,
directly or not. The local backend copies the handler's bundle next to each
deployed model; the SageMaker pipeline packs each step's bundle as sourcedir.tar.gz.
"""

from __future__ import annotations

import ast
from pathlib import Path

from mlops.core.paths import REPO_ROOT

STEPS_DIR = REPO_ROOT / "model_build" / "steps"


def handler_sources(code_dir: Path, module: str = "inference") -> list[Path]:
    """`module`.py and the sibling modules it imports, directly or not: what it needs to run."""
    found: dict[str, Path] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        path = code_dir / f"{name}.py"
        if name in found or not path.is_file():
            continue
        found[name] = path
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                pending += [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                pending.append(node.module.split(".")[0])
    return sorted(found.values())
