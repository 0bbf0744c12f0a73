"""mlops.upgrade: the migrations Copier runs in a fork on update and the update PR's notes."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from mlops.upgrade import (
    changelog_entries,
    main,
    migrate_config,
    notes,
    removed_spellings,
    set_title,
    set_top_level,
)

OLD_CONFIG = textwrap.dedent(
    """\
    # the fork's own comment
    model_package_group: diabetes   # names the pipeline
    drift:
      statistic: psi             # population stability index, per feature
      threshold: 0.3
      fail_on_drift: false

    sagemaker:
      processing_instance_type: ml.m5.large
      sklearn_image_version: "1.9-0"
      xgboost_image_version: '3.2-0'   # matches the local xgboost
      training_instance_count: 2
    task: regression
    """
)

CHANGELOG = textwrap.dedent(
    """\
    # Changelog

    ## [Unreleased]

    ## [1.2.0] - 2027-02-01

    ### Fixed

    - C.

    ## [1.1.0] - 2027-01-01

    ### Changed

    - B.

    ## [1.0.0] - 2026-12-07

    - A.

    [Unreleased]: https://example.com/compare/v1.2.0...HEAD
    [1.2.0]: https://example.com/v1.2.0
    """
)


def test_migrate_config_moves_the_keys_and_keeps_the_forks_values_and_comments():
    migrated = migrate_config(OLD_CONFIG)
    data = yaml.safe_load(migrated.text)
    assert data["drift"] == {"threshold": 0.3, "fail_on_drift": False}
    assert data["sagemaker"] == {
        "processing_instance_type": "ml.m5.large",
        "image_versions": {"sklearn": "1.9-0", "xgboost": "3.2-0"},
        "training_instance_count": 2,
    }
    assert "# the fork's own comment" in migrated.text
    assert "model_package_group: diabetes   # names the pipeline" in migrated.text
    assert len(migrated.changes) == 2


def test_migrate_config_leaves_a_current_config_as_it_is():
    once = migrate_config(OLD_CONFIG).text
    again = migrate_config(once)
    assert again.text == once and again.changes == []


def test_set_top_level_replaces_the_value_and_keeps_the_comment():
    text = set_top_level(OLD_CONFIG, "model_package_group", "trial-fork")
    assert "model_package_group: trial-fork   # names the pipeline" in text
    assert yaml.safe_load(text)["drift"]["threshold"] == 0.3
    with pytest.raises(ValueError, match="no top-level absent"):
        set_top_level(OLD_CONFIG, "absent", "x")


def test_set_title_replaces_the_first_heading_only():
    assert set_title("# Old\n\n## Part\n# Other\n", "New") == "# New\n\n## Part\n# Other\n"


def test_changelog_entries_between_two_releases():
    assert [v for v, _ in changelog_entries(CHANGELOG, "1.0.0", "1.2.0")] == ["1.2.0", "1.1.0"]
    assert [v for v, _ in changelog_entries(CHANGELOG, "v1.1.0", None)] == ["1.2.0"]
    assert [v for v, _ in changelog_entries(CHANGELOG, None, "1.0.0")] == ["1.0.0"]
    last = dict(changelog_entries(CHANGELOG, None, None))["1.0.0"]
    assert last == "- A."  # the reference links at the end are not part of it


def test_notes_list_the_conflicts_and_each_release_taken():
    body = notes(CHANGELOG, "1.0.0", "1.1.0", ["model_build/steps/train.py"])
    assert "`model_build/steps/train.py`" in body and "## 1.1.0" in body and "- B." in body
    assert "1.2.0" not in body.split("\n", 1)[1]
    assert "No changelog entry" in notes(CHANGELOG, "1.2.0", "1.2.0", [])


def test_removed_spellings_are_found_in_the_forks_files_not_the_machinery(tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "ci.sh").write_text(
        "mlops report pr --reports-dir reports\nmlops endpoint status --stage prod --format env\n"
    )
    (tmp_path / "mlops").mkdir()
    (tmp_path / "mlops" / "old.py").write_text("--reports-dir\n")
    (tmp_path / "Makefile").write_text("check:\n\tmake test-fast\n")
    hits = removed_spellings(tmp_path)
    assert [h.split(":")[0:2] for h in hits] == [
        ["Makefile", "2"],
        ["scripts/ci.sh", "1"],
        ["scripts/ci.sh", "2"],
    ]
    assert "--report-dir" in hits[1] and "--env / --json" in hits[2]


def test_migrate_command_rewrites_the_config_and_prints_what_it_did(tmp_path, capsys):
    config = tmp_path / "model_build" / "config.yaml"
    config.parent.mkdir()
    config.write_text(OLD_CONFIG)
    assert main(["--root", str(tmp_path), "migrate"]) == 0
    assert "statistic" not in config.read_text()
    assert "drift.statistic removed" in capsys.readouterr().out


def test_update_without_copier_answers_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "update"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no .copier-answers.yml") and err.count("\n") == 1
