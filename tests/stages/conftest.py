"""Stage tests check what a stage must do. Each module names its chapter in STAGE; the
--stage-dir option points the same tests at another directory (a learner's workspace)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edakit.paths import CHAPTERS, SHOP_SRC

if str(SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(SHOP_SRC))


@pytest.fixture
def stage_dir(request: pytest.FixtureRequest) -> Path:
    """The directory whose template.yaml the tests deploy."""
    override = request.config.getoption("--stage-dir")
    if override:
        return Path(override).resolve()
    return CHAPTERS / request.module.STAGE


@pytest.fixture
def chapter_only(request: pytest.FixtureRequest) -> None:
    """Skip a check of the kit's own chapter (its README, its notebook) when testing a workspace."""
    if request.config.getoption("--stage-dir"):
        pytest.skip("checks the kit's chapter, not the workspace given with --stage-dir")
