"""docs/hooks.py, the book's build steps, piece by piece: directives, notebook runs and their cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from mkdocs.exceptions import PluginError


class TestDirectives:
    def test_a_failing_notebook_fails_the_build(self, hooks, tmp_path: Path):
        """allow_errors is off: a cell that raises stops the build with its traceback."""
        notebook = tmp_path / "broken.py"
        notebook.write_text("# %% [markdown]\n# # Broken\n\n# %%\nraise ValueError('this cell fails')\n")
        runs = hooks._NotebookRuns()
        try:
            runs.start({notebook: 0})
            with pytest.raises(PluginError, match="this cell fails"):
                runs.html(notebook)
        finally:
            runs.close()

    def test_mkdocs_serve_runs_a_notebook_again_only_when_it_changed(self, hooks, tmp_path: Path):
        notebook = tmp_path / "counting.py"
        notebook.write_text("# %% [markdown]\n# # Counting\n\n# %%\nprint(sum(range(4)))\n")
        runs = hooks._NotebookRuns()
        hooks.on_startup(command="serve", dirty=False)  # what `mkdocs serve` does once
        runs.cache = hooks._notebooks.cache
        try:
            runs.start({notebook: 0})
            first = runs.html(notebook)
            runs.close()
            runs.start({notebook: 0})
            assert not runs._runs, "an unchanged notebook was executed again"
            assert runs.html(notebook) == first
            runs.close()
            notebook.write_text(notebook.read_text().replace("range(4)", "range(5)"))
            runs.start({notebook: 0})
            assert runs._runs and ">10<" in runs.html(notebook).replace("\n", "<")
        finally:
            runs.close()
            hooks.on_startup(command="build", dirty=False)

    def test_a_readme_section_is_found_by_its_heading(self, hooks):
        objectives = hooks.readme_section("chapters/01-events/README.md#objectives")
        assert objectives.startswith("After this chapter you can")
        with pytest.raises(PluginError, match="no section #no-such-heading"):
            hooks.readme_section("chapters/01-events/README.md#no-such-heading")

    def test_a_template_diff_is_made_from_the_files(self, hooks):
        diff = hooks.template_diff("chapters/01-events/template.yaml chapters/02-routing/template.yaml")
        assert diff.startswith("```diff\n--- chapters/01-events/template.yaml\n+++ chapters/02-routing/template.yaml\n")
        assert "+  OrderPlacedToReview:" in diff
        with pytest.raises(PluginError, match="no such file"):
            hooks.template_diff("chapters/01-events/template.yaml chapters/99-none/template.yaml")

    def test_an_unknown_directive_stops_the_build(self, hooks):
        class Page:
            class file:
                src_uri = "some/page.md"

        with pytest.raises(PluginError, match="unknown directive"):
            hooks.on_page_markdown("<!-- no-such-thing -->", Page, None, None)

    def test_mermaid_sources_survive_the_notebook_html(self, hooks):
        converted = '<style>x{}</style><div class="jp-Mermaid"><pre class="mermaid">\nA["a<br/>b"] --&gt; B\n</pre></div>'
        assert hooks._without_inline_styles(converted) == (
            '<div class="jp-Mermaid"><pre class="mermaid">\nA["a&lt;br/&gt;b"] --&gt; B\n</pre></div>')
