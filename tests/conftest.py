"""Shared test settings: the repository root is importable, so tests use `edakit` as learners do."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--stage-dir", default=None,
        help="run the stage tests against this directory instead of the chapter's own stage "
             "(the workshop checker points it at workspace/)",
    )


@pytest.fixture(autouse=True)
def _no_collector_pause_in_timed_tests(request):
    """A test marked `timing` asserts a tight wall-time bound on the local cloud's own work: the
    garbage earlier tests left in the same process (whole clouds, executed notebooks) is
    collected first, and the collector is held off until the test ends, so that a full
    collection of it cannot land in the measurement."""
    if request.node.get_closest_marker("timing") is None:
        yield
        return
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
