"""Import a model's own serving code, even beside other versions of the same modules.

A model artifact carries the code that serves it (`code/`: inference.py and its
siblings, which import each other as top-level modules, as in a SageMaker container).
The evaluate step loads the challenger's and the champion's code in one process, and
they may differ: while one folder's code is imported, its module names come from that
folder only, and the modules that held those names before are put back afterwards.
Each loaded module keeps references to its own siblings, so both versions then run side
by side. The support packages a folder ships (stepkit/) are its own in the same way; a
folder without them uses the process's. (Import siblings at the top of a module: an
import inside a function runs later and would find whatever module holds the name then.)
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType


def _own_names(folder: Path) -> set[str]:
    """Top-level module names the folder's files define: its modules and its packages, the
    support packages it ships (stepkit/) included, so a model trained a year ago reads its
    rows with the stepkit it was trained with, not today's."""
    names = {p.stem for p in folder.glob("*.py")}
    names |= {p.name for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    return names


def load_code(folder: Path | str, module: str = "inference") -> ModuleType:
    """Import `module` from `folder` with its siblings from the same folder; return it."""
    folder = Path(folder).resolve()
    if not (folder / f"{module}.py").is_file():
        raise FileNotFoundError(f"no {module}.py in {folder}")
    names = _own_names(folder)
    taken = {n: m for n in list(sys.modules) if n.split(".")[0] in names for m in [sys.modules[n]]}
    for name in taken:
        del sys.modules[name]
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n.split(".")[0] in names]:
            del sys.modules[name]
        sys.modules.update(taken)
