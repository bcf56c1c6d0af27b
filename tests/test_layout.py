"""The repository's promises about where things are."""

from __future__ import annotations

from edakit.paths import CHAPTERS, SAM_APP


def test_the_last_stage_is_sam_app_one_file_not_a_copy():
    """sam-app/ is always the last stage: the chapter's template is a link to sam-app/template.yaml."""
    last_chapter = sorted(p for p in CHAPTERS.iterdir() if p.is_dir())[-1]
    template = last_chapter / "template.yaml"
    assert template.is_symlink(), f"{template} should link to sam-app/template.yaml, not copy it"
    assert template.resolve() == (SAM_APP / "template.yaml").resolve()
    for earlier in sorted(p for p in CHAPTERS.iterdir() if p.is_dir())[:-1]:
        assert not (earlier / "template.yaml").is_symlink(), f"{earlier.name} is a stage of its own"
