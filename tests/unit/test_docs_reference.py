"""The reference pages are the code's own word: docs/reference/ equals what
docs/gen_reference.py renders from the `mlops` parser and the config models now."""

from __future__ import annotations

import importlib.util

import pytest

from mlops.core.paths import REPO_ROOT


@pytest.fixture(scope="module")
def gen_reference():
    path = REPO_ROOT / "docs" / "gen_reference.py"
    spec = importlib.util.spec_from_file_location("gen_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", ["cli", "config"])
def test_the_reference_page_is_not_stale(gen_reference, page):
    committed = gen_reference.PAGES[page].read_text()
    assert committed == gen_reference.RENDER[page](), (
        f"docs/reference/{page}.md is stale: run python docs/gen_reference.py"
    )


def test_every_command_and_every_config_key_is_on_its_page(gen_reference):
    cli = gen_reference.PAGES["cli"].read_text()
    config = gen_reference.PAGES["config"].read_text()
    for needle in ("## `mlops init`", "## `mlops endpoint status`", "--report-dir", "--json"):
        assert needle in cli
    for key in ("`gate.max_regression_pct`", "`sagemaker.image_versions`", "`drift.threshold`"):
        assert key in config
    assert "drift.statistic" not in config  # gone in 1.0.0
