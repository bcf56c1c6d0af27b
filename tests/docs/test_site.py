"""The book builds with `mkdocs build --strict`, its chapters show executed notebooks and
generated diffs, every internal link and anchor resolves, and nothing is loaded from
another host."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edakit.paths import CHAPTERS, NOTEBOOKS, SAM_APP, SHOP_SRC
from tests.docs.conftest import ROOT, Site
from tests.docs.site_pages import is_external, parse, resolve

# The build executes every chapter's notebook: it runs with the notebook tests, on a quiet machine.
pytestmark = pytest.mark.notebook

DOCS = ROOT / "docs"
CHAPTER_PAGES = sorted((DOCS / "chapters").glob("[0-9][0-9]-*.md"))
#: Each chapter ends with a Summary and Try this (the notebook's last sections); these do not yet.
CHAPTERS_WITHOUT_A_SUMMARY: set[str] = set()


def chapter_url(page: Path) -> str:
    return f"chapters/{page.stem}/"


class TestBuild:
    def test_the_site_builds_strictly(self, site: Site):
        """No warning at all: broken links, anchors, snippets or directives all stop a strict build."""
        assert (site.directory / "index.html").exists()
        assert not re.search(r"^WARNING\s+-", site.log, re.M), site.log
        print(f"mkdocs build --strict: {site.seconds:.1f} s")

    def test_every_chapter_page_is_in_the_nav(self):
        nav = (ROOT / "mkdocs.yml").read_text()
        for page in CHAPTER_PAGES:
            assert f"chapters/{page.name}" in nav, f"{page.name} is not in mkdocs.yml's nav"

    def test_every_chapter_with_a_notebook_has_a_page(self):
        """Adding a chapter is one small page and a nav entry: a chapter whose notebook exists
        but has no page is missing from the book."""
        chapters = {path.name for path in CHAPTERS.glob("[0-9][0-9]-*") if (NOTEBOOKS / f"{path.name}.py").exists()}
        pages = {page.stem for page in CHAPTER_PAGES}
        assert chapters <= pages, (
            f"chapters without a page: {sorted(chapters - pages)}. Copy docs/chapters/03-consumers.md to "
            "docs/chapters/<chapter>.md, change its paths, and add it to the nav in mkdocs.yml")


@pytest.mark.parametrize("source", CHAPTER_PAGES, ids=lambda p: p.stem)
class TestChapterPage:
    def test_opens_with_the_notebook_title_and_the_objectives(self, site: Site, source: Path):
        html = site.page(chapter_url(source))
        notebook = NOTEBOOKS / f"{source.stem}.py"
        title = re.search(r"^# # (.+)$", notebook.read_text(), re.M)
        assert title is not None, f"{notebook.name} has no title cell"
        assert re.search(r"<h1[^>]*>" + re.escape(title.group(1)), html)
        assert 'class="admonition abstract"' in html and "After this chapter you can" in html

    def test_draws_the_stage(self, site: Site, source: Path):
        page = parse(site.directory / chapter_url(source) / "index.html")
        # the stage at a glance, and the stage as the notebook drew it from the running system
        assert page.count("mermaid") >= 2

    def test_shows_what_changed_in_the_template(self, site: Site, source: Path):
        html = site.page(chapter_url(source))
        markdown = source.read_text()
        if "<!-- template-diff:" in markdown:
            previous, current = re.search(r"<!-- template-diff: (\S+) (\S+) -->", markdown).groups()
            # highlighted as a diff: removed and added lines are marked
            assert f'<span class="gd">--- {previous}</span>' in html
            assert f'<span class="gi">+++ {current}</span>' in html
        else:  # the first stage: its whole template
            assert "AWSTemplateFormatVersion" in html

    def test_includes_the_code_from_the_tested_files(self, site: Site, source: Path):
        html = site.page(chapter_url(source))
        for included in re.findall(r'--8<-- "([^"]+)"', source.read_text()):
            first_line = (ROOT / included).read_text().splitlines()[0]
            words = re.findall(r"\w{4,}", first_line)[:3]
            assert all(word in html for word in words), f"{included} is not on the page"

    def test_shows_the_notebook_executed(self, site: Site, source: Path):
        page = parse(site.directory / chapter_url(source) / "index.html")
        html = site.page(chapter_url(source))
        assert f"{source.stem}.py" in site.log and "executed and converted" in site.log
        prompts = re.findall(r"In(?:&nbsp;|\s)\[(\d+)\]:", html)
        assert prompts and prompts[0] == "1", "the notebook's code cells were not executed"
        assert page.count("jp-OutputArea-output") > 0
        if "plt." in (NOTEBOOKS / f"{source.stem}.py").read_text():
            assert "data:image/png;base64," in html, "the notebook's plot is missing"
        assert "Traceback" not in html

    def test_ends_with_a_summary_and_things_to_try(self, site: Site, source: Path, request: pytest.FixtureRequest):
        if source.stem in CHAPTERS_WITHOUT_A_SUMMARY:
            request.applymarker(pytest.mark.xfail(
                strict=True, reason=f"notebooks/{source.stem}.py has no Summary yet (remove it from "
                                    "CHAPTERS_WITHOUT_A_SUMMARY when it does)"))
        html = site.page(chapter_url(source))
        assert 'id="try-this"' in html
        assert 'id="summary"' in html


class TestGeneratedReference:
    def test_the_api_is_generated_from_docstrings(self, site: Site):
        html = site.page("reference/api/")
        for name in ("edakit.LocalCloud", "run_until_idle", "StillBusyError", "HandlerImportError",
                     "execute_notebook", "edakit.patterns"):
            assert name in html, name

    def test_the_event_catalogue_lists_every_event_type(self, site: Site):
        if str(SHOP_SRC) not in sys.path:
            sys.path.insert(0, str(SHOP_SRC))
        from shop.events import EVENT_TYPES

        page = parse(site.directory / "reference" / "events" / "index.html")
        html = site.page("reference/events/")
        for detail_type, model in EVENT_TYPES.items():
            assert detail_type.lower() in page.ids, f"{detail_type} has no section"
            assert model.source in html
            schema = SAM_APP / "schemas" / f"{detail_type}.json"
            if schema.exists():  # the exported schema is included, not copied
                assert json.loads(schema.read_text())["$id"] in html

    def test_the_commands_are_those_make_help_prints(self, site: Site):
        listed = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout
        commands = re.findall(r"^\s+make (\S+)\s+(.+)$", listed, re.M)
        assert commands
        text = " ".join(parse(site.directory / "reference" / "commands" / "index.html").text)
        for target, description in commands:
            assert f"make {target}" in text and description.strip() in text, target

    def test_the_fidelity_page_is_linked(self, site: Site):
        for url in ("", "troubleshooting/"):
            assert "reference/fidelity/" in site.page(url)


class TestLinks:
    def test_every_internal_link_and_anchor_resolves(self, site: Site):
        """Markdown links are checked by mkdocs; this also covers notebooks' HTML and the theme's own links."""
        parsed = {path.resolve(): parse(path) for path in site.pages()}
        broken = []
        for path, page in parsed.items():
            for url in page.links:
                if is_external(url) or url.startswith(("mailto:", "javascript:")):
                    continue
                target, fragment = resolve(path, url, site.directory)
                where = f"{path.relative_to(site.directory)}: {url}"
                if not target.exists():
                    broken.append(f"{where} (no {target.relative_to(site.directory.resolve())})")
                elif fragment and target.suffix == ".html":
                    ids = (parsed.get(target) or parse(target)).ids
                    if fragment not in ids:
                        broken.append(f"{where} (no id {fragment!r})")
        assert not broken, "broken links:\n" + "\n".join(broken)

    def test_every_page_loads_its_resources_from_the_site(self, site: Site):
        """Scripts, stylesheets and images come from the site itself: it works offline."""
        problems = []
        for path in site.pages():
            for url in parse(path).resources:
                if url.startswith("data:"):
                    continue
                if is_external(url):
                    problems.append(f"{path.relative_to(site.directory)} loads {url}")
                elif not resolve(path, url, site.directory)[0].exists():
                    problems.append(f"{path.relative_to(site.directory)} loads a missing {url}")
        assert not problems, "\n".join(problems)

    def test_stylesheets_import_nothing_from_another_host(self, site: Site):
        for stylesheet in (site.directory / "assets").rglob("*.css"):
            text = stylesheet.read_text()
            assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", text), stylesheet.name


class TestOffline:
    def test_mermaid_is_vendored_and_its_version_noted(self, site: Site):
        vendored = DOCS / "assets" / "javascripts" / "mermaid.min.js"
        assert vendored.stat().st_size > 1_000_000
        version = re.search(r"mermaid\.min\.js.*?\| (\d+\.\d+\.\d+) \|", (DOCS / "assets" / "README.md").read_text())
        assert version and f"mermaid {version.group(1)}" in (ROOT / "mkdocs.yml").read_text()
        assert 'src="../../assets/javascripts/mermaid.min.js"' in site.page("chapters/01-events/")

    def test_no_privacy_or_social_plugin_and_no_web_fonts(self):
        config = (ROOT / "mkdocs.yml").read_text()
        assert re.search(r"^\s+font: false", config, re.M)
        assert not re.search(r"^\s+- (privacy|social)\b", config, re.M)
