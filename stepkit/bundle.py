"""Which files travel with a step script or the serving handler.

Step scripts import their siblings as top-level modules (`from inference import
model_fn`), so a script's bundle is the script plus every sibling it imports,
directly or not. The SageMaker pipeline packs each step's bundle as
sourcedir.tar.gz; the train step copies the serving handler's bundle into the
model artifact (`code/`), so a model always travels with the code that serves it.

A bundle also carries the support packages a script imports (this package,
`stepkit/`): in a container the script's folder is on sys.path, so they travel
beside it as `<package>/<file>.py`.
"""

from __future__ import annotations

import ast
from pathlib import Path

# Packages that step scripts may import; they ship in the bundles of the scripts that
# import them. They import no project code but each other.
SUPPORT_PACKAGES = ("stepkit",)


def imported_names(path: Path) -> set[str]:
    """The top-level names of a file's absolute imports (function-level ones included)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _IMPORTS_SEEN:
        _IMPORTS_SEEN[key] = frozenset(_parsed_imports(path))
    return set(_IMPORTS_SEEN[key])


# A process that trains many times (a warm tuning worker) parses each file once: parsing
# the ~26 files of the serving bundle is about half of a small training's time.
_IMPORTS_SEEN: dict[tuple[str, int, int], frozenset[str]] = {}


def _parsed_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def module_closure(code_dir: Path, module: str) -> list[Path]:
    """`module`.py and the sibling modules it imports, directly or not: what it needs to run."""
    found: dict[str, Path] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        path = code_dir / f"{name}.py"
        if name in found or not path.is_file():
            continue
        found[name] = path
        pending += sorted(imported_names(path))
    return sorted(found.values())


def package_files(package: Path) -> dict[str, Path]:
    """A package's Python files by archive name (`<package>/<relative path>`)."""
    return {
        path.relative_to(package.parent).as_posix(): path
        for path in sorted(package.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def bundle_files(
    script: Path, root: Path, packages: tuple[str, ...] = SUPPORT_PACKAGES
) -> dict[str, Path]:
    """Archive name -> file for `script`'s bundle, sorted by name.

    The script, the sibling modules it imports (at the top of the archive) and the
    whole of every support package in `packages` that any of them imports, directly or
    through another support package. A package is found beside the script (inside a
    bundle, where it was shipped) or else under `root` (a checkout).
    """
    files = {path.name: path for path in module_closure(script.parent, script.stem)}
    pending, shipped = list(files.values()), set()
    while pending:
        wanted = imported_names(pending.pop()) & set(packages)
        for name in sorted(wanted - shipped):
            shipped.add(name)
            beside = script.parent / name
            found = package_files(beside if beside.is_dir() else root / name)
            files.update(found)
            pending += found.values()
    return dict(sorted(files.items()))
