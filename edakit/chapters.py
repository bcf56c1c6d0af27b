"""What a chapter changes: the diff of its template against the previous stage's, as the
chapter READMEs (checked by the stage tests) and the site (docs/hooks.py) show it."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path

from .paths import CHAPTERS, ROOT

#: Where a generated block in a README ends.
BLOCK_END = "```\n"


def text_diff(old: str, new: str, fromfile: str, tofile: str) -> str:
    """The unified diff from `old` to `new`, labelled with the two names; every line ends in a newline."""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile, tofile)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def template_diff(before: str, after: str) -> str:
    """The unified diff between two files named relative to the repository root (as labelled).

    A template that is a link (the last stage links to sam-app/template.yaml) is named
    as given, not by the file it points to.
    """
    return text_diff((ROOT / before).read_text(), (ROOT / after).read_text(), before, after)


def stage_diff(previous_stage: str, stage: str) -> str:
    """The diff from chapters/<previous_stage>/template.yaml to chapters/<stage>/template.yaml."""
    return template_diff(f"chapters/{previous_stage}/template.yaml", f"chapters/{stage}/template.yaml")


def with_block(document: str, start: str, content: str, end: str = BLOCK_END) -> str:
    """`document` with the text between the marker `start` and the next `end` replaced by `content`."""
    before, _, after = _split_block(document, start, end)
    return before + start + content + end + after


def _split_block(document: str, start: str, end: str) -> tuple[str, str, str]:
    """(text before `start`, the block's content, text after its `end`)."""
    if start not in document:
        raise ValueError(f"the document has no block starting with {start!r}: put that line back above the block")
    before, rest = document.split(start, 1)
    if end not in rest:
        raise ValueError(f"the block starting with {start!r} never ends: close it with a line {end.strip()!r}")
    content, after = rest.split(end, 1)
    return before, content, after


# -- a chapter README's generated diffs ------------------------------------------------------------
# Each block is marked `<!-- NAME: written by `python tests/stages/test_stage_NN.py` -->`, then
# a ```diff fence; the stage test checks the blocks and, run as a script, rewrites them.


def writer_command(script: str | Path) -> str:
    """The command, run from the repository root, that runs `script` (a stage test module)."""
    return f"python {Path(script).resolve().relative_to(ROOT.resolve()).as_posix()}"


def diff_block_start(name: str, command: str) -> str:
    """The marker line and fence that open the README block `name`, written by `command`."""
    return f"<!-- {name}: written by `{command}` -->\n```diff\n"


def readme_with_diffs(readme: str, diffs: Mapping[str, str], command: str) -> str:
    """`readme` with each block named in `diffs` (written by `command`) holding its diff."""
    for name, diff in diffs.items():
        readme = with_block(readme, diff_block_start(name, command), diff)
    return readme


def check_readme(stage: str, diffs: Mapping[str, str], script: str | Path) -> None:
    """Fail, naming the stale blocks and the command that rewrites them, unless chapters/<stage>/README.md
    shows `diffs` (block name -> diff) as the stage test `script` writes them."""
    __tracebackhide__ = True  # pytest reports the failing stage test's line, not this one
    command = writer_command(script)
    readme = (CHAPTERS / stage / "README.md").read_text()
    try:
        stale = [name for name, diff in diffs.items()
                 if _split_block(readme, diff_block_start(name, command), BLOCK_END)[1] != diff]
    except ValueError as error:
        raise AssertionError(f"chapters/{stage}/README.md: {error}") from None
    if stale:
        which = " and ".join(stale) + (" is not the diff" if len(stale) == 1 else " are not the diffs")
        raise AssertionError(f"chapters/{stage}/README.md is stale (its {which} of the templates as they "
                             f"are now): run `{command}` to rewrite it")


def write_readme(stage: str, diffs: Mapping[str, str], script: str | Path) -> str:
    """Rewrite the blocks of chapters/<stage>/README.md with `diffs`; say what was written."""
    path = CHAPTERS / stage / "README.md"
    path.write_text(readme_with_diffs(path.read_text(), diffs, writer_command(script)))
    return f"wrote the {' and '.join(diffs)} into {path}"
