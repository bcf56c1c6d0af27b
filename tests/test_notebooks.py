"""What the notebook tests read from an executed notebook (edakit.notebooks)."""

from __future__ import annotations

import nbformat

from edakit.notebooks import outputs_of, text_of


def test_text_of_joins_printed_text_then_displayed_markdown_and_plain_text() -> None:
    """A test searches what a reader sees: print() output (streams), then display()ed Markdown and
    the plain text of results; images and HTML-only outputs add nothing.
    https://nbformat.readthedocs.io/en/latest/format_description.html#code-cell-outputs"""
    cell = nbformat.v4.new_code_cell("...")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="lost: 0\n"),
        nbformat.v4.new_output("display_data", data={"text/markdown": "| a | b |"}),
        nbformat.v4.new_output("execute_result", data={"text/plain": "42"}, execution_count=1),
        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/html": "<b>x</b>"}),
        nbformat.v4.new_output("stream", name="stderr", text="warning\n"),
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"), cell])

    assert text_of(outputs_of(notebook)) == "lost: 0\nwarning\n| a | b |42"
