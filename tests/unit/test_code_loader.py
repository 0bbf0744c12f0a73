"""stepkit.code_loader: a model's own serving code, imported beside another version of the
same modules; each keeps its own siblings, and the process's modules are put back."""

from __future__ import annotations

import sys
import types

import pytest

from stepkit.code_loader import load_code


def version(folder, label: str):
    """A serving folder whose inference.py answers with its sibling helper's label."""
    folder.mkdir(parents=True)
    (folder / "helper.py").write_text(f"LABEL = {label!r}\n")
    (folder / "inference.py").write_text(
        "import helper\n\n\ndef which():\n    return helper.LABEL\n"
    )
    return folder


def test_two_versions_side_by_side_keep_their_own_siblings(tmp_path, monkeypatch):
    before = types.ModuleType("helper")
    monkeypatch.setitem(sys.modules, "helper", before)
    old = load_code(version(tmp_path / "old", "old"))
    new = load_code(version(tmp_path / "new", "new"))
    assert (old.which(), new.which()) == ("old", "new")
    assert old.which() == "old"  # still, after the other was loaded
    assert sys.modules["helper"] is before  # the names are given back
    assert "inference" not in sys.modules or sys.modules["inference"] not in (old, new)
    assert str(tmp_path / "old") not in sys.path


def test_the_same_folder_twice_gives_two_independent_modules(tmp_path):
    folder = version(tmp_path / "v", "v")
    first, second = load_code(folder), load_code(folder)
    assert first is not second and first.which() == second.which() == "v"


def test_a_folder_without_the_module_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no inference\.py in"):
        load_code(tmp_path / "empty")


def test_an_import_error_inside_leaves_the_process_as_it_was(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "inference.py").write_text("import helper_that_is_missing\n")
    modules = set(sys.modules)
    with pytest.raises(ModuleNotFoundError):
        load_code(folder)
    assert set(sys.modules) - modules == set() and str(folder) not in sys.path


def test_a_shipped_support_package_is_the_folders_own(tmp_path):
    """A model's code/ carries the stepkit it was trained with: its handler reads rows with
    that one, while the process keeps its own."""
    import stepkit.rows

    folder = tmp_path / "code"
    (folder / "stepkit").mkdir(parents=True)
    (folder / "stepkit" / "__init__.py").write_text("")
    (folder / "stepkit" / "rows.py").write_text("LABEL = 'shipped'\n")
    (folder / "inference.py").write_text(
        "import stepkit.rows\n\n\ndef which():\n    return stepkit.rows.LABEL\n"
    )
    assert load_code(folder).which() == "shipped"
    assert sys.modules["stepkit.rows"] is stepkit.rows and not hasattr(stepkit.rows, "LABEL")
