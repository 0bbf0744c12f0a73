"""The project's own tests: they read the fork's config (model_build/config.yaml) and its
committed sample, never the fixture project. A fork edits neither these tests nor this file.
"""

from __future__ import annotations

import pandas as pd
import pytest

from mlops.core.config import DEFAULT_CONFIG, Config, load_config


@pytest.fixture(scope="session")
def project() -> Config:
    cfg = load_config(DEFAULT_CONFIG)
    assert cfg.sample_file is not None, "set data.sample in model_build/config.yaml"
    return cfg


@pytest.fixture(scope="session")
def sample(project: Config) -> pd.DataFrame:
    """The committed sample (read-only by convention: copy before corrupting)."""
    return pd.read_csv(project.sample_file)
