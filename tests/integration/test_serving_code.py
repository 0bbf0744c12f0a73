"""Each version serves with the handler it was registered with, not with today's checkout."""

from __future__ import annotations

import shutil

from mlops.core.code_bundle import STEPS_DIR
from mlops.local.code_store import LINEAGE_KEY, STORE, code_digest, store_serving_code

from mlops.local.endpoints import prepare_instance

MARKER = "# changed after version 1 was registered\n"


def test_registration_stores_the_handler_by_content(registered_home):
    home, result = registered_home
    sha = result.version.lineage[LINEAGE_KEY]
    stored = home / STORE / sha
    assert (stored / "inference.py").read_bytes() == (STEPS_DIR / "inference.py").read_bytes()
    files = {p.relative_to(stored).as_posix(): p for p in stored.rglob("*.py")}
    assert code_digest(files) == sha
    assert store_serving_code(home) == sha  # same content, same folder, stored once
    assert [p.name for p in (home / STORE).iterdir()] == [sha]


def test_a_later_checkout_does_not_change_what_an_old_version_serves(registered_home, tmp_path):
    home, result = registered_home
    today = tmp_path / "steps"
    shutil.copytree(STEPS_DIR, today, ignore=shutil.ignore_patterns("__pycache__"))
    (today / "inference.py").write_text((today / "inference.py").read_text() + MARKER)
    folder = prepare_instance(home, "staging", result.version, code_dir=today)
    served = (folder / "code" / "inference.py").read_text()
    assert MARKER not in served
    assert served == (STEPS_DIR / "inference.py").read_text()


def test_the_changed_handler_is_a_new_entry_in_the_store(registered_home, tmp_path):
    home, result = registered_home
    today = tmp_path / "steps"
    shutil.copytree(STEPS_DIR, today, ignore=shutil.ignore_patterns("__pycache__"))
    (today / "inference.py").write_text((today / "inference.py").read_text() + MARKER)
    sha = store_serving_code(home, today)
    assert sha != result.version.lineage[LINEAGE_KEY]
    assert MARKER in (home / STORE / sha / "inference.py").read_text()


def test_a_batch_of_an_old_version_scores_with_its_own_handler(registered_home, tmp_path):
    from mlops.local.batch import unpack_version

    home, result = registered_home
    today = tmp_path / "steps"
    shutil.copytree(STEPS_DIR, today, ignore=shutil.ignore_patterns("__pycache__"))
    (today / "inference.py").write_text((today / "inference.py").read_text() + MARKER)
    unpack_version(result.version, tmp_path / "batch", code_dir=today, home=home)
    scored = (tmp_path / "batch" / "code" / "inference.py").read_text()
    assert scored == (STEPS_DIR / "inference.py").read_text()
