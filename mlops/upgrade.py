"""What a fork does when it takes a template release with `copier update`.

Copier runs this module (copier.yml: `_tasks`, `_migrations`) with its own Python, before
the fork's venv holds the new release's dependencies: so it imports the standard library
only, and nothing from mlops (whose modules need pydantic, pandas...).

- `answers`: a new fork's answers written into the files that carry them (copy only).
- `migrate`: the config keys a release moved, rewritten in the fork's own config (which
  `copier update` never overwrites: `_skip_if_exists`), and the spellings the release
  removed, found in the fork's files, printed with their replacements.
- `notes`: the CHANGELOG.md entries between two releases (the update PR's body).
- `update`: `copier update` to the newest release (or --vcs-ref), then the notes of the
  releases taken and the files left with conflicts (`make update`, the update workflow).

    python -m mlops.upgrade migrate --config model_build/config.yaml
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CONFIG = Path("model_build/config.yaml")
CHANGELOG = Path("CHANGELOG.md")
ANSWERS = Path(".copier-answers.yml")
README = Path("README.md")

# Spellings removed by a release: a fork's own scripts, docs and workflows may still use them.
# (pattern, what replaced it, the release that removed it)
REMOVED_SPELLINGS: tuple[tuple[str, str, str], ...] = (
    (r"--reports-dir\b", "--report-dir", "1.0.0"),
    (r"endpoint status\b.*--format[ =](env|json)", "endpoint status --env / --json", "1.0.0"),
    (r"\brun-pipeline\b", "mlops pipeline run", "1.0.0"),
    (r"\bmake test-fast\b", "make test (or pytest on the files you changed)", "1.0.0"),
    (r"^\s*statistic:\s*psi\b", "drift.statistic removed (PSI is the only statistic)", "1.0.0"),
    (
        r"\b(sklearn|xgboost)_image_version\b",
        "sagemaker.image_versions: {family: version}",
        "1.0.0",
    ),
)
# Where a fork's own files are: the template's (machinery, its tests, docs and benchmarks)
# are replaced by the update anyway, and their history mentions the old spellings.
SCANNED_SUFFIXES = {".py", ".yml", ".yaml", ".sh", ".md", ".toml", ".cfg", ".json", ""}
SKIPPED_DIRS = {".git", ".venv", ".mlops", "__pycache__", "mlops", "tests", "docs", "bench", "site"}
SKIPPED_FILES = {"CHANGELOG.md"}


def set_top_level(text: str, key: str, value: str) -> str:
    """The YAML text with the top-level `key: value` line's value replaced, its comment
    kept. A line edit, not a YAML round trip: PyYAML would drop every comment of the file."""
    pattern = re.compile(rf"^({re.escape(key)}:[ \t]*)([^#\n]*?)([ \t]*(#[^\n]*)?)$", re.M)
    if not pattern.search(text):
        raise ValueError(f"no top-level {key}: line")
    return pattern.sub(lambda m: f"{m.group(1)}{value}{m.group(3)}", text, count=1)


def set_title(text: str, title: str) -> str:
    """The Markdown text with its first `# ` heading replaced."""
    return re.sub(r"^# .*$", lambda _: f"# {title}", text, count=1, flags=re.M)


def _section_span(lines: list[str], name: str) -> tuple[int, int] | None:
    """First and past-last line index of a top-level YAML mapping `name:`."""
    start = next((i for i, line in enumerate(lines) if re.match(rf"{name}:\s*(#.*)?$", line)), None)
    if start is None:
        return None
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][:1] in " \t#"):
        end += 1
    return start, end


@dataclass(frozen=True)
class Migrated:
    text: str
    changes: list[str]


def migrate_config(text: str) -> Migrated:
    """The fork's config with the keys 1.0.0 moved rewritten (line edits: comments stay).

    - drift.statistic is gone (PSI is the only statistic; the config model refuses the key);
    - sagemaker.sklearn_image_version and xgboost_image_version become one
      sagemaker.image_versions mapping (a family per key)."""
    lines = text.splitlines(keepends=True)
    changes: list[str] = []
    span = _section_span(lines, "drift")
    if span:
        for i in range(*span):
            if re.match(r"\s+statistic:", lines[i]):
                lines[i] = ""
                changes.append("drift.statistic removed (PSI is the only statistic)")
    span = _section_span(lines, "sagemaker")
    if span:
        versions: dict[str, str] = {}
        first = None
        for i in range(*span):
            m = re.match(r"(\s+)(sklearn|xgboost)_image_version:\s*([^#\n]+?)\s*(#.*)?$", lines[i])
            if m:
                versions[m.group(2)] = m.group(3).strip().strip("\"'")
                first = i if first is None else first
                indent = m.group(1)
                lines[i] = ""
        if versions and first is not None:
            mapping = ", ".join(f'{k}: "{v}"' for k, v in sorted(versions.items()))
            lines[first] = f"{indent}image_versions: {{{mapping}}}  # SageMaker framework images\n"
            changes.append(
                "sagemaker.*_image_version -> sagemaker.image_versions: {" + mapping + "}"
            )
    return Migrated("".join(lines), changes)


def removed_spellings(root: Path) -> list[str]:
    """`file:line: old spelling -> new` for the fork's files that still use a removed one."""
    rules = [(re.compile(p, re.M), new, version) for p, new, version in REMOVED_SPELLINGS]
    hits = []
    for path in sorted(_fork_files(root)):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for rule, new, version in rules:
                if rule.search(line):
                    rel = path.relative_to(root)
                    hits.append(f"{rel}:{number}: {line.strip()} -> {new} (removed in {version})")
    return hits


def _fork_files(root: Path):
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if any(p in SKIPPED_DIRS or p.endswith(".egg-info") for p in parts[:-1]):
            continue
        if path.is_file() and path.suffix in SCANNED_SUFFIXES and path.name not in SKIPPED_FILES:
            yield path


def version_key(version: str) -> tuple[int, ...]:
    """(1, 2, 0) from '1.2.0' or 'v1.2.0'; a suffix (-rc1, +local) is ignored."""
    core = re.match(r"v?(\d+(?:\.\d+)*)", version.strip())
    if not core:
        raise ValueError(f"not a release version: {version!r}")
    return tuple(int(p) for p in core.group(1).split("."))


def changelog_entries(text: str, after: str | None, upto: str | None) -> list[tuple[str, str]]:
    """(version, body) of each release heading `## [X.Y.Z] - date` with after < X.Y.Z <= upto,
    newest first as in the file. `after=None`: from the first release; `upto=None`: all."""
    heads = list(re.finditer(r"^## \[(?P<v>[^\]]+)\][^\n]*$", text, re.M))
    entries = []
    for n, head in enumerate(heads):
        version = head.group("v")
        if version.lower() == "unreleased":
            continue
        key = version_key(version)
        if after is not None and key <= version_key(after):
            continue
        if upto is not None and key > version_key(upto):
            continue
        end = heads[n + 1].start() if n + 1 < len(heads) else _link_block(text)
        entries.append((version, text[head.end() : end].strip()))
    return entries


def _link_block(text: str) -> int:
    """Where the reference links at the end of a Keep a Changelog file start."""
    m = re.search(r"^\[[^\]]+\]: \S+", text, re.M)
    return m.start() if m else len(text)


def notes(changelog: str, after: str | None, upto: str | None, conflicts: list[str]) -> str:
    """The update PR's body: the releases taken, their entries, files left with conflicts."""
    entries = changelog_entries(changelog, after, upto)
    out = [f"Template update {after or '(first)'} -> {upto or '(latest)'}", ""]
    if conflicts:
        out += ["**Conflicts to resolve** (git conflict markers left in these files):", ""]
        out += [f"- `{name}`" for name in conflicts] + [""]
    if not entries:
        out.append("No changelog entry between these versions.")
    for version, body in entries:
        out += [f"## {version}", "", body, ""]
    return "\n".join(out).rstrip() + "\n"


def answered_release(answers: str) -> str | None:
    """The `_commit:` of a Copier answers file: the release the project was made from or
    last updated to (a line read: the file is flat and written by Copier)."""
    m = re.search(r"^_commit:\s*['\"]?([^'\"\s#]+)", answers, re.M)
    return m.group(1) if m else None


def conflicted_files(root: Path) -> list[str]:
    """Files git holds unmerged: Copier's inline conflicts record their three stages."""
    done = subprocess.run(
        ["git", "diff", "--name-only", "--diff-filter=U"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(filter(None, done.stdout.splitlines()))


def cmd_update(args: argparse.Namespace) -> int:
    import copier  # the dev venv's and Copier's own Python have it; the other commands don't
    from copier.errors import CopierError

    root = Path(args.root)
    answers = root / ANSWERS
    if not answers.is_file():
        raise ValueError(f"no {ANSWERS}: this project was not made with copier copy (docs/fork.md)")
    before = answered_release(answers.read_text())
    try:
        copier.run_update(
            str(root),
            vcs_ref=args.vcs_ref,
            overwrite=True,
            unsafe=True,  # the template's tasks and migrations: a fork trusts its template
            defaults=True,
            conflict="inline",
            quiet=True,
        )
    except CopierError as exc:
        raise ValueError(f"copier update: {exc}") from exc
    after = answered_release(answers.read_text())
    conflicts = conflicted_files(root)
    body = notes((root / CHANGELOG).read_text(), before, after, conflicts)
    if args.notes:
        Path(args.notes).write_text(body)
    print(f"template {before} -> {after}; {len(conflicts)} file(s) with conflicts")
    for name in conflicts:
        print(f"  conflict: {name}")
    return 0


def cmd_answers(args: argparse.Namespace) -> int:
    config = Path(args.root) / CONFIG
    config.write_text(set_top_level(config.read_text(), "model_package_group", args.group))
    if args.title:
        readme = Path(args.root) / README
        readme.write_text(set_title(readme.read_text(), args.title))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    root = Path(args.root)
    config = root / args.config
    if config.is_file():
        migrated = migrate_config(config.read_text())
        if migrated.changes:
            config.write_text(migrated.text)
        for change in migrated.changes:
            print(f"migrated {args.config}: {change}")
    hits = removed_spellings(root)
    if hits:
        print("spellings this release removed, still used in the project (edit them):")
        for hit in hits:
            print(f"  {hit}")
    return 0


def cmd_notes(args: argparse.Namespace) -> int:
    text = (Path(args.root) / CHANGELOG).read_text()
    body = notes(text, args.after, args.upto, args.conflict)
    if args.out:
        Path(args.out).write_text(body)
    else:
        sys.stdout.write(body)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlops.upgrade", description=__doc__)
    parser.add_argument("--root", default=".", help="the project (default: here)")
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("answers", help="write a new fork's answers into its config and README")
    a.add_argument("--group", required=True, help="model_package_group")
    a.add_argument("--title", default="", help="the README's title (empty: keep it)")
    a.set_defaults(func=cmd_answers)
    m = sub.add_parser("migrate", help="rewrite moved config keys; list removed spellings")
    m.add_argument("--config", type=Path, default=CONFIG)
    m.set_defaults(func=cmd_migrate)
    n = sub.add_parser("notes", help="CHANGELOG.md entries between two releases")
    n.add_argument("--after", help="the release the project had (exclusive)")
    n.add_argument("--upto", help="the release it takes (inclusive)")
    n.add_argument("--conflict", action="append", default=[], help="a file with conflicts")
    n.add_argument("--out", help="write here instead of stdout")
    n.set_defaults(func=cmd_notes)
    u = sub.add_parser("update", help="copier update, then the notes of the releases taken")
    u.add_argument("--vcs-ref", help="a release tag (default: the newest)")
    u.add_argument("--notes", help="write the update's notes (Markdown) here")
    u.set_defaults(func=cmd_update)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (OSError, ValueError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
