"""The site is built once per test session (it executes every chapter's notebook), and
every docs test reads that build. The tests that need it are marked `notebook`, so
`make test` runs them after the parallel run, with the notebooks' own tests."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: A strict build runs every chapter notebook, in parallel, in well under a minute; this
#: bound only keeps a hung kernel from hanging the test run.
BUILD_TIMEOUT = 300


@dataclass(frozen=True)
class Site:
    """A built site: where it is, what mkdocs logged, and how long the build took."""

    directory: Path
    log: str
    seconds: float

    def page(self, url: str) -> str:
        """The HTML of the page at `url` (like "chapters/01-events/")."""
        return (self.directory / url / "index.html").read_text()

    def pages(self) -> list[Path]:
        return sorted(self.directory.rglob("*.html"))


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """`mkdocs build --strict` of the whole site, notebooks executed; fails with mkdocs' log.

    Under xdist the workers share one build: the first builds it, the others wait for it."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the directory every worker's basetemp is in
    directory, record = shared / "docs-site", shared / "docs-site.json"
    with (shared / "docs-site.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(directory)],
                cwd=ROOT, capture_output=True, text=True, env=env, timeout=BUILD_TIMEOUT,
            )
            record.write_text(json.dumps({"returncode": done.returncode, "log": done.stderr,
                                          "seconds": time.perf_counter() - started}))
    built = json.loads(record.read_text())
    assert built["returncode"] == 0, f"mkdocs build --strict failed:\n{built['log'][-8000:]}"
    return Site(directory, built["log"], built["seconds"])


@pytest.fixture(scope="session")
def hooks() -> ModuleType:
    """docs/hooks.py, the site's build steps, imported as mkdocs imports it."""
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
