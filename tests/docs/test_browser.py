"""The built site in a real browser: every page loads from 127.0.0.1 alone, without a
failed request or a console error; diagrams are drawn, notebook outputs and plots
are shown, and search finds things.

Debian's chromium, driven by Playwright for Python (Playwright's own browser download
cannot run here). `make test` installs chromium when it is missing.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.docs.conftest import ROOT, Site
from tests.docs.site_pages import parse

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = ROOT / "build"
#: Drawing the largest diagram takes well under a second; this only bounds a broken page.
DRAW_TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.notebook,  # it reads the site that test_site.py's build made, with the notebook tests
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"),
]


def page_urls() -> list[str]:
    """The URL of every page of the site, from its Markdown sources."""
    docs = ROOT / "docs"
    urls = []
    for source in sorted(docs.rglob("*.md")):
        relative = source.relative_to(docs)
        if relative.parts[0] == "assets":
            continue  # excluded from the site (exclude_docs)
        url = relative.with_suffix("").as_posix()
        urls.append("" if url == "index" else url.removesuffix("/index") + "/")
    return urls


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def server(site: Site) -> Iterator[str]:
    """The built site on a free port of 127.0.0.1, for this module's tests."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site.directory)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A chromium context with a fresh profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class Visit:
    """What happened while a page was open."""

    page: Any
    outside: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.outside, f"requests that leave 127.0.0.1: {self.outside}"
        assert not self.failed, f"failed requests: {self.failed}"
        assert not self.errors, f"console errors: {self.errors}"


@pytest.fixture
def visit(browser: Any, server: str) -> Iterator[Any]:
    """Opens a page of the site and records every request that failed or left the site,
    and every console error."""
    opened: list[Visit] = []

    def open_page(url: str) -> Visit:
        page = browser.new_page()
        seen = Visit(page)
        opened.append(seen)

        def route(route: Any) -> None:
            if route.request.url.startswith(server):
                route.continue_()
            else:  # record it, and never let it reach the network
                seen.outside.append(route.request.url)
                route.abort()

        page.route("**/*", route)
        page.on("requestfailed", lambda request: seen.failed.append(f"{request.url}: {request.failure}"))
        page.on("response", lambda response: response.status >= 400
                and seen.failed.append(f"{response.url}: HTTP {response.status}"))
        page.on("console", lambda message: message.type == "error" and seen.errors.append(message.text))
        page.on("pageerror", lambda error: seen.errors.append(str(error)))
        page.goto(server + url, wait_until="load")
        return seen

    yield open_page
    for seen in opened:
        seen.page.close()


def wait_for_diagrams(page: Any, expected: int) -> None:
    """Material replaces each <pre class="mermaid"> with a <div class="mermaid"> once drawn."""
    page.wait_for_function(
        "n => document.querySelectorAll('pre.mermaid').length === 0"
        " && document.querySelectorAll('div.mermaid').length >= n",
        arg=expected, timeout=DRAW_TIMEOUT_MS,
    )


@pytest.mark.parametrize("url", page_urls(), ids=lambda url: url or "home")
def test_every_page_loads_cleanly_and_draws_its_diagrams(visit: Any, site: Site, url: str):
    diagrams = parse(site.directory / url / "index.html").count("mermaid")
    seen = visit(url)
    page = seen.page
    if diagrams:
        wait_for_diagrams(page, diagrams)
        # The svg is in a closed shadow root: its box is what can be measured.
        for box in [diagram.bounding_box() for diagram in page.locator("div.mermaid").all()]:
            assert box is not None and box["width"] > 100 and box["height"] > 40, box
    broken_images = page.evaluate(
        "() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, 80))")
    assert not broken_images
    page.wait_for_load_state("networkidle")
    seen.assert_clean()


@pytest.mark.parametrize("url", [url for url in page_urls() if url.startswith("chapters/")])
def test_chapter_pages_show_the_notebook_outputs_and_plots(visit: Any, url: str):
    seen = visit(url)
    page = seen.page
    assert page.locator(".jupyter-wrapper .jp-OutputArea-output").count() > 0
    plots = page.locator(".jupyter-wrapper .jp-OutputArea-output img")
    notebook = ROOT / "notebooks" / (url.strip("/").removeprefix("chapters/") + ".py")
    if "plt." in notebook.read_text():
        assert plots.count() > 0, "no plot in the notebook's outputs"
    sizes = plots.evaluate_all("images => images.map(i => [i.naturalWidth, i.naturalHeight])")
    assert all(width > 0 and height > 0 for width, height in sizes), sizes
    seen.assert_clean()


def test_search_finds_a_page(visit: Any):
    seen = visit("")
    page = seen.page
    page.locator("input.md-search__input").click()
    page.keyboard.type("idempotency")
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=DRAW_TIMEOUT_MS)
    assert results.count() > 0
    assert re.search(r"idempot", results.first.inner_text(), re.I)
    seen.assert_clean()


def test_screenshots_of_the_home_page_and_a_chapter(visit: Any, site: Site):
    """build/screenshot-home.png and build/screenshot-chapter.png, to look at."""
    SCREENSHOTS.mkdir(exist_ok=True)
    home = visit("").page
    wait_for_diagrams(home, parse(site.directory / "index.html").count("mermaid"))
    home.screenshot(path=str(SCREENSHOTS / "screenshot-home.png"), full_page=True, animations="disabled")

    chapter_url = "chapters/03-consumers/"
    chapter = visit(chapter_url).page
    wait_for_diagrams(chapter, parse(site.directory / chapter_url / "index.html").count("mermaid"))
    # The notebook's own part of the page: a heading, an executed cell and its diagram.
    # (Scrolled straight there, below the sticky header: scrolling up would show "Back to top".)
    chapter.locator(".jupyter-wrapper h2").first.evaluate(
        "heading => window.scrollTo(0, heading.getBoundingClientRect().top + window.scrollY - 70)")
    chapter.screenshot(path=str(SCREENSHOTS / "screenshot-chapter.png"), animations="disabled")
    for name in ("screenshot-home.png", "screenshot-chapter.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000
