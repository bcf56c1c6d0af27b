"""Reading a built page with the standard library's HTML parser: its links, ids and resources."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: Attributes that load something when the page is shown (as opposed to links a reader follows).
RESOURCE_ATTRIBUTES = {
    "script": ("src",),
    "img": ("src",),
    "iframe": ("src",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "input": ("src",),
}


@dataclass
class ParsedPage:
    path: Path
    ids: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def count(self, css_class: str) -> int:
        """How many elements carry `css_class`."""
        return sum(css_class in classes.split() for classes in self.classes)


class _Parser(HTMLParser):
    def __init__(self, page: ParsedPage) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            self.page.ids.add(values["id"])
        if tag == "a" and "name" in values:
            self.page.ids.add(values["name"])
        if "class" in values:
            self.page.classes.append(values["class"])
        if tag == "a" and "href" in values:
            self.page.links.append(values["href"])
        if tag == "link" and "href" in values:
            self.page.resources.append(values["href"])
        for attribute in RESOURCE_ATTRIBUTES.get(tag, ()):
            if values.get(attribute):
                self.page.resources.append(values[attribute])
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.page.text.append(data)


def parse(path: Path) -> ParsedPage:
    page = ParsedPage(path)
    parser = _Parser(page)
    parser.feed(path.read_text())
    parser.close()
    return page


def is_external(url: str) -> bool:
    """A URL that names a scheme or a host: it leaves the site."""
    parts = urlsplit(url)
    return bool(parts.scheme or parts.netloc or url.startswith("//"))


def resolve(page: Path, url: str, site: Path) -> tuple[Path, str]:
    """The file an internal URL on `page` points to, and its #fragment ("" when none)."""
    parts = urlsplit(url)
    if not parts.path:
        return page, unquote(parts.fragment)
    base = site if parts.path.startswith("/") else page.parent  # 404.html links from the site's root
    target = (base / unquote(parts.path).lstrip("/")).resolve()
    if parts.path.endswith("/") or target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)
