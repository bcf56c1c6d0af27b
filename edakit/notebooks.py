"""Executing a chapter's notebook (a jupytext percent-format .py file), as tests and the docs do."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def execute_notebook(path: str | Path, timeout: float = 60) -> tuple[Any, float]:
    """Run every cell in a fresh kernel from the notebook's directory; return the notebook and wall seconds.

    Raises nbclient's CellExecutionError (with the cell and its traceback) if a cell fails.
    """
    import jupytext
    from nbclient import NotebookClient

    notebook_path = Path(path)
    notebook = jupytext.read(notebook_path)
    client = NotebookClient(
        notebook, timeout=int(timeout), kernel_name="python3",
        # The outputs are in once the last cell has run; a graceful shutdown would add
        # a second or more of interpreter teardown to every run.
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(notebook_path.parent)}},
    )
    started = time.perf_counter()
    client.execute()
    return notebook, time.perf_counter() - started


def outputs_of(notebook: Any) -> list[dict[str, Any]]:
    """Every output of every code cell, in order."""
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]


def text_of(outputs: list[dict[str, Any]]) -> str:
    """The text a reader sees in `outputs`: every stream's text, then every display's Markdown and
    plain text, joined (what a notebook test searches)."""
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    return text + "".join(o["data"].get("text/markdown", "") + o["data"].get("text/plain", "")
                          for o in outputs if "data" in o)
