"""The site builds with `mkdocs build --strict`: no broken link, anchor or included file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_site_builds_strictly(tmp_path: Path):
    """Every page renders and every snippet path exists (pymdownx.snippets check_paths)."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    index = (tmp_path / "site" / "index.html").read_text()
    # the template is included from the file the tests deploy, not copied
    assert "OrderProcessorFunction" in index
    assert (tmp_path / "site" / "reference" / "fidelity" / "index.html").exists()
