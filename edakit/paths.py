"""Where things are in the kit, so notebooks, tests and commands name them one way."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAM_APP = ROOT / "sam-app"
#: Names another copy of the shop's code: the workshop checker sets it to a learner's
#: workspace/src, so that the tests import the learner's `shop` package, not sam-app's.
SHOP_SRC_VARIABLE = "EDAKIT_SHOP_SRC"
#: The functions' code, shared by every stage (templates point their CodeUri here).
SHOP_SRC = Path(os.environ[SHOP_SRC_VARIABLE]).resolve() if os.environ.get(SHOP_SRC_VARIABLE) else SAM_APP / "src"
CHAPTERS = ROOT / "chapters"
NOTEBOOKS = ROOT / "notebooks"


def chapter(name: str) -> Path:
    """The directory of a chapter's stage, by its full name (``01-events``) or number (``1``)."""
    if name.isdigit():
        matches = sorted(CHAPTERS.glob(f"{int(name):02d}-*"))
        if not matches:
            raise FileNotFoundError(f"no chapter {name} in {CHAPTERS}")
        return matches[0]
    return CHAPTERS / name
