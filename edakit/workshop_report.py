"""A pytest plugin for the workshop checker: each test's outcome, one JSON line per report, in
the file named by EDAKIT_WORKSHOP_REPORT (``pytest -p edakit.workshop_report``)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

REPORT_VARIABLE = "EDAKIT_WORKSHOP_REPORT"


def _message(report: Any) -> str:
    """The one line that says why: the exception's message (or the skip's reason), shortened."""
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, "Skipped: reason")
        text = str(report.longrepr[-1]).removeprefix("Skipped: ")
    else:
        crash = getattr(report.longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(report.longrepr or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return first if len(first) <= 300 else first[:297] + "..."


def _write(record: dict[str, str]) -> None:
    path = os.environ.get(REPORT_VARIABLE)
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        _write({"nodeid": report.nodeid, "outcome": report.outcome,
                "message": _message(report) if report.outcome != "passed" else ""})


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.outcome == "failed":
        _write({"nodeid": report.nodeid, "outcome": "failed", "message": _message(report)})
