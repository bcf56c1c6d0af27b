"""Shared test settings: the repository root is importable, so tests use `edakit` as learners do."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--stage-dir", default=None,
        help="run the stage tests against this directory instead of the chapter's own stage "
             "(the workshop checker points it at workspace/)",
    )
