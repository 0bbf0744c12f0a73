"""The template's update path, offline: a template git repository at v1.0.0 built from this
checkout, `copier copy` of a fork, the fork's own edits, a v1.1.0 of the template that
changes machinery, a workflow, the example's config and a line the fork also changed, then
`copier update` in the fork. The machinery and the workflow are v1.1.0's, the fork's config,
sample and step edits are its own, a file it deleted stays deleted, the release's migration
rewrote the fork's config, and the clashing line is a git conflict (markers and an unmerged
index entry), not a lost edit.

Not copied into forks (copier.yml `_exclude`): it tests the template, which a fork is not."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.core.paths import REPO_ROOT
from mlops.upgrade import main

copier = pytest.importorskip("copier")

pytestmark = pytest.mark.slow

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
STEP = "model_build/steps/evaluate.py"  # both sides edit its first docstring line: a conflict
FORK_STEP = "model_build/steps/train.py"  # only the fork edits it
MACHINERY = "mlops/core/paths.py"
WORKFLOW = ".github/workflows/pr.yml"
CONFIG = "model_build/config.yaml"
ADDED = "mlops/core/added_in_v1_1.py"
DROPPED = ".github/workflows/batch.yml"


def git(cwd: Path, *argv: str) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(["git", *argv], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"git {argv}: {done.stderr}"
    return done.stdout


def commit(repo: Path, message: str, tag: str | None = None) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", message)
    if tag:
        git(repo, "tag", tag)


# The parts of the checkout the test's template holds. Copier renders and checks every path
# of a template three times an update (~60 ms a file on two busy cores), and its rules
# (copier.yml) read paths one by one, so the parts no rule or check names stay out.
TEMPLATE_PARTS = (
    "copier.yml",
    "{{_copier_conf.answers_file}}.jinja",
    "CHANGELOG.md",
    "README.md",
    "pyproject.toml",
    "Makefile",
    ".github/workflows",
    "mlops/__init__.py",
    "mlops/upgrade.py",
    "mlops/core",
    "model_build",
    "data_checks",
    "stepkit",
)


def template_v1(folder: Path) -> Path:
    """The checkout's template parts (tracked and new, as the working tree has them) as a git
    repository tagged v1.0.0."""
    listing = ["ls-files", "-z", "-co", "--exclude-standard", "--", *TEMPLATE_PARTS]
    listed = git(REPO_ROOT, *listing).split("\0")
    for rel in filter(None, listed):
        src = REPO_ROOT / rel
        if src.is_file():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, folder / rel)
    git(folder, "init", "-q", "-b", "main")
    commit(folder, "v1", tag="v1.0.0")
    return folder


def files(folder: Path) -> set[str]:
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(folder).parts
    }


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def first_line(path: Path) -> str:
    return path.read_text().splitlines()[0]


def test_update_takes_the_machinery_and_keeps_the_forks_files(tmp_path, monkeypatch, capsys):
    for key, value in GIT_ENV.items():  # Copier commits in its temporary copies
        monkeypatch.setenv(key, value)
    tpl = template_v1(tmp_path / "template")
    fork = tmp_path / "fork"
    copier.run_copy(
        str(tpl),
        str(fork),
        vcs_ref="v1.0.0",
        data={"project_name": "Trial fork"},
        defaults=True,
        unsafe=True,
        quiet=True,
    )
    answers = (fork / ".copier-answers.yml").read_text()
    assert "_commit: v1.0.0" in answers and "model_package_group: trial-fork" in answers
    assert "model_package_group: trial-fork" in (fork / CONFIG).read_text()
    assert first_line(fork / "README.md") == "# Trial fork"
    # The fork is the example: the same files, but for its answers, the template's own
    # release machinery, and the two lines the answers set.
    template_files = files(tpl) - {"copier.yml", "{{_copier_conf.answers_file}}.jinja"}
    assert files(fork) == template_files | {".copier-answers.yml"}
    changed = {f for f in template_files if (fork / f).read_bytes() != (tpl / f).read_bytes()}
    assert changed == {"README.md", CONFIG}
    git(fork, "init", "-q", "-b", "main")
    commit(fork, "from the template")

    # The fork's own edits: its gate, a key an older release spelled (a migration removes
    # it), a step only it changes, and the line of another step the template changes too.
    edit(fork / CONFIG, "min_r2: 0.9", "min_r2: 0.8")
    edit(fork / CONFIG, "  threshold: 0.2\n", "  statistic: psi\n  threshold: 0.2\n")
    fork_step_line = "# the fork's own training note\n"
    (fork / FORK_STEP).write_text((fork / FORK_STEP).read_text() + fork_step_line)
    step_v1 = first_line(fork / STEP)
    (fork / STEP).write_text(
        (fork / STEP).read_text().replace(step_v1, '"""The fork\'s evaluate.', 1)
    )
    (fork / DROPPED).unlink()  # a fork without batch scoring
    commit(fork, "the fork's model")

    # v1.1.0: machinery, a workflow, the example's config, the same step line; a migration.
    (tpl / MACHINERY).write_text((tpl / MACHINERY).read_text() + "# v1.1.0 machinery\n")
    (tpl / ADDED).write_text('"""A module new in v1.1.0."""\n')
    edit(tpl / WORKFLOW, "name: pr\n", "name: pr (v1.1.0)\n")
    edit(tpl / CONFIG, "max_depth: 3", "max_depth: 4")
    (tpl / STEP).write_text((tpl / STEP).read_text().replace(step_v1, '"""Evaluate, v1.1.0.', 1))
    edit(
        tpl / "copier.yml",
        "_migrations:\n",
        '_migrations:\n  - version: "1.1.0"\n'
        '    command: ["{{ _copier_python }}", -m, mlops.upgrade, migrate]\n',
    )
    edit(
        tpl / "CHANGELOG.md",
        "## [Unreleased]\n",
        "## [Unreleased]\n\n## [1.1.0] - 2026-12-08\n\n### Changed\n\n- The v1.1.0 change.\n",
    )
    commit(tpl, "v1.1.0", tag="v1.1.0")

    capsys.readouterr()
    assert main(["--root", str(fork), "update", "--notes", str(tmp_path / "notes.md")]) == 0
    assert capsys.readouterr().out.startswith("template v1.0.0 -> v1.1.0; 1 file(s) with conflicts")

    assert "_commit: v1.1.0" in (fork / ".copier-answers.yml").read_text()
    for rel in (MACHINERY, WORKFLOW, ADDED):
        assert (fork / rel).read_text() == (tpl / rel).read_text(), rel
    assert not (fork / DROPPED).exists()  # what the fork deleted stays deleted
    config = (fork / CONFIG).read_text()
    assert "min_r2: 0.8" in config and "max_depth: 3" in config  # the fork's, not v1.1.0's
    assert "model_package_group: trial-fork" in config
    assert "statistic:" not in config  # the migration ran on the fork's config
    assert (fork / FORK_STEP).read_text().endswith(fork_step_line)
    step = (fork / STEP).read_text()
    assert "<<<<<<< before updating" in step and ">>>>>>> after updating" in step
    assert "The fork's evaluate." in step and "Evaluate, v1.1.0." in step
    assert STEP in git(fork, "diff", "--name-only", "--diff-filter=U")

    body = (tmp_path / "notes.md").read_text()  # the update pull request's body
    assert "## 1.1.0" in body and "The v1.1.0 change." in body and f"`{STEP}`" in body
    assert "## 1.0.0" not in body

    # The fork's own check after the update, once the conflict is resolved its way: its
    # config loads under the new release's config models (the fork's tests, demo and report
    # are the other forks' stories: test_template_fork*.py).
    git(fork, "checkout", "--ours", "--", STEP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    env.update(PYTHONPATH="", PYTHONDONTWRITEBYTECODE="1")
    load = "from mlops.core.config import load_config; c = load_config(); print(c.gate.min_r2)"
    done = subprocess.run(
        [sys.executable, "-c", load], cwd=fork, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "0.8"  # the fork's gate, read by the fork's own mlops
