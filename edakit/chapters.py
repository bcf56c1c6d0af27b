"""What a chapter changes: the diff of its template against the previous stage's, as the
chapter READMEs (checked by the stage tests) and the site (docs/hooks.py) show it."""

from __future__ import annotations

import difflib

from .paths import ROOT

#: Where a generated block in a README ends.
BLOCK_END = "```\n"


def template_diff(before: str, after: str) -> str:
    """The unified diff between two files named relative to the repository root (as labelled).

    A template that is a link (the last stage links to sam-app/template.yaml) is named
    as given, not by the file it points to.
    """
    old, new = ((ROOT / name).read_text().splitlines(keepends=True) for name in (before, after))
    lines = difflib.unified_diff(old, new, fromfile=before, tofile=after)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def stage_diff(previous_stage: str, stage: str) -> str:
    """The diff from chapters/<previous_stage>/template.yaml to chapters/<stage>/template.yaml."""
    return template_diff(f"chapters/{previous_stage}/template.yaml", f"chapters/{stage}/template.yaml")


def with_block(document: str, start: str, content: str, end: str = BLOCK_END) -> str:
    """`document` with the text between the marker `start` and the next `end` replaced by `content`."""
    before, rest = document.split(start, 1)
    _, after = rest.split(end, 1)
    return before + start + content + end + after
