"""Every stage's template passes SAM's own checks and cfn-lint on its translated form.

`sam validate --lint` checks the SAM template; cfn-lint does not apply the SAM
transform, so it also runs on the translated template, where it catches what the
SAM-level lint misses (batch sizes, a visibility timeout shorter than the function
timeout). https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-cli-command-reference-sam-validate.html
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edakit.paths import CHAPTERS, SAM_APP
from edakit.template import load_stage

STAGES = sorted(p.name for p in CHAPTERS.iterdir() if (p / "template.yaml").exists())
BIN = Path(sys.executable).parent
ENV = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}


@pytest.fixture(params=STAGES)
def template(request: pytest.FixtureRequest) -> Path:
    override = request.config.getoption("--stage-dir")
    return (Path(override) if override else CHAPTERS / request.param) / "template.yaml"


def test_sam_validate_lint_passes(template: Path) -> None:
    done = subprocess.run([str(BIN / "sam"), "validate", "--lint", "-t", str(template)],
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_cfn_lint_passes_on_the_translated_template(template: Path, tmp_path: Path) -> None:
    translated = tmp_path / "translated.json"
    translated.write_text(json.dumps(load_stage(template, "us-east-1").cloudformation))
    done = subprocess.run([str(BIN / "cfn-lint"), str(translated)], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_cfn_lint_on_the_translated_template_catches_a_visibility_timeout_shorter_than_the_function(tmp_path: Path) -> None:
    """The check above can fail: a queue that hides a message for less time than the function
    may run is refused (E3505-like rules on the translated template, not on the SAM one)."""
    text = (SAM_APP / "template.yaml").read_text().replace("CodeUri: src/", f"CodeUri: {SAM_APP / 'src'}/")
    broken = tmp_path / "template.yaml"
    broken.write_text(text.replace("      VisibilityTimeout: 90", "      VisibilityTimeout: 5", 1))
    assert broken.read_text() != text, "the seeded mistake must change the template"
    translated = tmp_path / "translated.json"
    translated.write_text(json.dumps(load_stage(broken, "us-east-1").cloudformation))
    done = subprocess.run([str(BIN / "cfn-lint"), str(translated)], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode != 0
    assert "VisibilityTimeout" in done.stdout or "visibility" in done.stdout.lower(), done.stdout
