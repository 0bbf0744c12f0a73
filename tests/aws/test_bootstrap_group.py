"""The bootstrap stack's group name is the fork's own: no default to fall back on, and the
fork guide's command passes it."""

import re

import yaml

from mlops.core.config import Config
from mlops.core.paths import REPO_ROOT

BOOTSTRAP = REPO_ROOT / "model_deploy" / "bootstrap.yml"


class _Tags(yaml.SafeLoader):
    """CloudFormation's short tags (!Ref, !Sub...) read as plain values."""


_Tags.add_multi_constructor("!", lambda loader, suffix, node: None)


def test_group_name_has_no_default_and_the_configs_pattern():
    param = yaml.load(BOOTSTRAP.read_text(), Loader=_Tags)["Parameters"]["ModelPackageGroupName"]
    assert "Default" not in param  # a forgotten override fails instead of scoping another name
    pattern = Config.model_fields["model_package_group"].metadata[0].pattern
    assert param["AllowedPattern"] == pattern


def test_the_guides_bootstrap_command_passes_the_group_name():
    guides = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    text = "\n".join(p.read_text() for p in guides)
    commands = re.findall(r"aws cloudformation deploy (.*?)```", text, re.S)  # to block end
    bootstrap = [c for c in commands if "bootstrap.yml" in c]
    assert bootstrap and all("ModelPackageGroupName=" in c for c in bootstrap)
