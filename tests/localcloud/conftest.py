"""Fixtures for the local cloud's behaviour tests: small SAM templates around shared test functions."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable

import pytest

from edakit import LocalCloud

FUNCTIONS = Path(__file__).resolve().parent / "functions"

HEADER = f"""\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    CodeUri: {FUNCTIONS}
    Timeout: 10
Resources:
"""


@pytest.fixture
def template(tmp_path: Path) -> Callable[[str], Path]:
    """Write a SAM template whose Resources are given (indented by 2); functions live in functions/."""

    def write(resources: str, name: str = "template.yaml") -> Path:
        path = tmp_path / name
        path.write_text(HEADER + textwrap.indent(textwrap.dedent(resources).strip("\n"), "  ") + "\n")
        return path

    return write


@pytest.fixture
def cloud_for(template: Callable[[str], Path]):
    """Open a LocalCloud on a template given as Resources text; closed at the end of the test."""
    opened: list[LocalCloud] = []

    def open_cloud(resources: str) -> LocalCloud:
        cloud = LocalCloud.from_template(template(resources))
        cloud.__enter__()
        opened.append(cloud)
        return cloud

    yield open_cloud
    for cloud in reversed(opened):
        cloud.__exit__(None, None, None)
