"""Which files travel with a step script or the serving handler.

Step scripts import their siblings as top-level modules (`from inference import
model_fn`), so a script's bundle is the script plus every sibling it imports,
directly or not. The local backend copies the handler's bundle next to each
deployed model; the SageMaker pipeline packs each step's bundle as sourcedir.tar.gz.

A bundle also carries the repository's support packages a script imports
(`stepkit/`): in the container the script's folder is on sys.path, so they
travel beside it as `<package>/<file>.py`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from mlops.core.paths import REPO_ROOT

STEPS_DIR = REPO_ROOT / "model_build" / "steps"
# Packages at the repository root that step scripts may import; they ship in the bundles
# of the scripts that import them. They import no repository code but each other.
SUPPORT_PACKAGES = ("stepkit",)


def _imported_names(path: Path) -> set[str]:
    """The top-level names of a file's absolute imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


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
        pending += sorted(_imported_names(path))
    return sorted(found.values())


def package_files(package: Path) -> dict[str, Path]:
    """A package's Python files by archive name (`<package>/<relative path>`)."""
    return {
        path.relative_to(package.parent).as_posix(): path
        for path in sorted(package.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def bundle_files(
    script: Path, root: Path = REPO_ROOT, packages: tuple[str, ...] = SUPPORT_PACKAGES
) -> dict[str, Path]:
    """Archive name -> file for `script`'s bundle, sorted by name.

    The script, the sibling modules it imports (at the top of the archive) and the
    whole of every support package in `packages` (found under `root`) that any of
    them imports, directly or through another support package.
    """
    files = {path.name: path for path in handler_sources(script.parent, script.stem)}
    pending, shipped = list(files.values()), set()
    while pending:
        wanted = _imported_names(pending.pop()) & set(packages)
        for name in sorted(wanted - shipped):
            shipped.add(name)
            found = package_files(root / name)
            files.update(found)
            pending += found.values()
    return dict(sorted(files.items()))
