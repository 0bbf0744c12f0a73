"""The README stays a five-minute read whose map is true: at most 200 lines, every path
its layout names exists, every relative link it holds leads to a file."""

from __future__ import annotations

import re

from mlops.core.paths import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
MAX_LINES = 200


def layout_paths() -> list[str]:
    """Entries of the Layout section's tree: a name at column 0, or at column 2 under the
    last one (descriptions sit further right)."""
    block = re.search(r"^## Layout\n+```\n(.*?)```", README, re.S | re.M).group(1)
    paths, parent = [], ""
    for line in block.splitlines():
        m = re.match(r"^( {0,2})(\S+)", line)
        if not m:
            continue
        indent, name = m.groups()
        if indent:
            paths.append(parent + name)
        else:
            parent = name if name.endswith("/") else ""
            paths.append(name)
    return paths


def test_the_readme_is_short():
    assert len(README.splitlines()) <= MAX_LINES


def test_every_path_of_the_layout_exists():
    paths = layout_paths()
    assert len(paths) > 20
    missing = [p for p in paths if not (REPO_ROOT / p.rstrip("/")).exists()]
    assert missing == []


def test_every_relative_link_leads_to_a_file():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    relative = [link for link in links if "://" not in link]
    assert relative, "the README links to the documentation"
    assert [link for link in relative if not (REPO_ROOT / link).is_file()] == []
