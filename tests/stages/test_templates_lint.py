"""Every stage's template passes SAM's own checks and cfn-lint on its translated form.

`sam validate --lint` checks the SAM template; cfn-lint does not apply the SAM
transform, so it also runs on the translated template, where it catches what the
SAM-level lint misses (batch sizes, a visibility timeout shorter than the function
timeout). Both steps are edakit.verify's, as `make verify` runs them; the seeded
mistakes that show each step can fail are in tests/sam/test_seeded_mistakes.py.
https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-cli-command-reference-sam-validate.html
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edakit.paths import CHAPTERS
from edakit.verify import cfn_lint, sam_validate, translated

STAGES = sorted(p.name for p in CHAPTERS.iterdir() if (p / "template.yaml").exists())


@pytest.fixture(params=STAGES)
def template(request: pytest.FixtureRequest) -> Path:
    override = request.config.getoption("--stage-dir")
    return (Path(override) if override else CHAPTERS / request.param) / "template.yaml"


def test_sam_validate_lint_passes(template: Path) -> None:
    step = sam_validate(template)
    assert step.ok, step.details


def test_cfn_lint_passes_on_the_translated_template(template: Path, tmp_path: Path) -> None:
    step = cfn_lint(translated(template, tmp_path))
    assert step.ok, step.details
