"""The book's build steps (mkdocs hooks): what a page shows is made from the kit's files at build time.

A page asks for generated content with a directive, an HTML comment alone on its line
(indented, its content is indented alike, so it can sit in an admonition or a tab):

    <!-- notebook-intro: notebooks/01-events.py -->
        the notebook's opening Markdown cells (its title and story), as page Markdown
    <!-- notebook: notebooks/01-events.py -->
        the notebook, executed during this build, from the cell after its intro
        (from the first cell if the page has no notebook-intro for it)
    <!-- readme-section: chapters/01-events/README.md#objectives -->
        one section of a README, found by its heading
    <!-- template-diff: chapters/01-events/template.yaml chapters/02-routing/template.yaml -->
        the unified diff of two stage templates
    <!-- event-catalogue -->
        every shop event: its model, JSON Schema, an example and the rules that route it
    <!-- make-commands -->
        the Makefile's commands, from the `## ` comments that `make help` prints
    <!-- workshop-exercises -->
        the workshop's exercises, chapter by chapter, from workshop/exercises.yaml

Paths are relative to the repository root. A directive that names a missing file, a
missing section or an unknown kind stops the build, as pymdownx.snippets'
check_paths does for included code.

Notebooks run with mkdocs-jupyter's converter (execute, allow_errors=False), each in
a process of its own (this file, run as a script), in parallel, started as soon as
the pages are known. A cell that raises fails the build with its traceback: the
site never shows a stale or broken output. The notebooks' shared stylesheet becomes
one generated file instead of half a megabyte of CSS inlined into each chapter page.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parent.parent
DIRECTIVE = re.compile(r"^([ \t]*)<!-- ([a-z-]+)(?::[ \t]*(.*?))?[ \t]*-->[ \t]*$", re.M)
#: Where the notebooks' stylesheet is generated in the site (mkdocs.yml's extra_css names it).
NOTEBOOK_CSS = "assets/stylesheets/notebooks.css"
#: How each notebook is converted: executed now, never with a failing cell, with its
#: Markdown cells rendered by the site's own Markdown (so their links and anchors
#: are checked like any page's), and nothing loaded from a CDN.
NOTEBOOK_OPTIONS: dict[str, Any] = {
    "execute": True,
    "allow_errors": False,
    "markdown_cell_processor": "mkdocs",
    "include_requirejs": False,
    "include_mermaidjs": False,  # the site's own mermaid (docs/assets/) draws every diagram
    "include_mathjax": False,
}

#: A notebook runs in seconds; this bound only stops a hung kernel from hanging the build.
NOTEBOOK_TIMEOUT = 300

log = logging.getLogger("mkdocs.hooks.edakit")


# --- the notebooks a build renders --------------------------------------------------


class _NotebookRuns:
    """The notebooks of one build, each executed and converted by its own process
    (this file run as a script), all started as soon as the pages are known.

    Under `mkdocs serve` a notebook is executed again only when it or the code it runs
    changed (see `_inputs_key`); `mkdocs build`, and so every test, always executes."""

    def __init__(self) -> None:
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._runs: dict[Path, subprocess.Popen[bytes]] = {}
        self._keys: dict[Path, str] = {}
        self.cache: dict[str, str] | None = None  # converted notebooks by inputs key, when serving

    def start(self, notebooks: dict[Path, int]) -> None:
        if self.cache is not None:
            self._keys = {path: _inputs_key(path, first_cell) for path, first_cell in notebooks.items()}
            notebooks = {path: first for path, first in notebooks.items() if self._keys[path] not in self.cache}
        if not notebooks:
            return
        self._directory = tempfile.TemporaryDirectory(prefix="edakit-notebooks-")
        for path, first_cell in notebooks.items():
            html_file, log_file = self._files(path)
            with log_file.open("wb") as output:
                self._runs[path] = subprocess.Popen(
                    [sys.executable, __file__, str(path), str(first_cell), str(html_file)],
                    cwd=ROOT, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                )

    def html(self, path: Path) -> str:
        """The converted notebook; a cell that raised (or a run over NOTEBOOK_TIMEOUT) stops the build."""
        key = self._keys.get(path)
        if self.cache is not None and key in self.cache:
            log.info("notebook %s unchanged since the last build, not executed again", _relative(path))
            return self.cache[key]
        process = self._runs[path]
        html_file, log_file = self._files(path)
        try:
            process.wait(timeout=NOTEBOOK_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output = log_file.read_text(errors="replace")
        if process.returncode != 0:
            # The kernel's own chatter is in the log too; the traceback is at the end.
            raise PluginError(f"notebook {_relative(path)} failed while the site was built:\n{output[-6000:]}")
        timing = re.search(r"^executed and converted in .*$", output, re.M)
        log.info("notebook %s %s", _relative(path), timing.group(0) if timing else "converted")
        converted = html_file.read_text()
        if self.cache is not None and key is not None:
            self.cache[key] = converted
        return converted

    def _files(self, path: Path) -> tuple[Path, Path]:
        assert self._directory is not None
        return (Path(self._directory.name) / f"{path.stem}.html", Path(self._directory.name) / f"{path.stem}.log")

    def close(self) -> None:
        for process in self._runs.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        self._runs = {}
        if self._directory is not None:
            self._directory.cleanup()
        self._directory = None


#: What a notebook's outputs depend on besides itself: the kit, the shop's code and the stages.
NOTEBOOK_INPUTS = ("edakit", "sam-app/src", "sam-app/schemas", "chapters")


def _inputs_key(path: Path, first_cell: int) -> str:
    """Changes whenever the notebook, the options, or a file it may run (NOTEBOOK_INPUTS) changes."""
    digest = hashlib.sha256(path.read_bytes())
    digest.update(repr((first_cell, sorted(NOTEBOOK_OPTIONS.items()))).encode())
    for directory in NOTEBOOK_INPUTS:
        for file in sorted((ROOT / directory).rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                stat = file.stat()
                digest.update(f"{_relative(file)}:{stat.st_mtime_ns}:{stat.st_size}\n".encode())
    return digest.hexdigest()


def _convert(path: Path, first_cell: int, html_file: Path) -> None:
    """Execute the notebook and write its HTML, from cell `first_cell` on (run as a script by _NotebookRuns)."""
    from mkdocs_jupyter.convert import nb2html

    started = time.perf_counter()
    html_file.write_text(nb2html(str(path), start=first_cell, **NOTEBOOK_OPTIONS))
    print(f"executed and converted in {time.perf_counter() - started:.1f} s")


_notebooks = _NotebookRuns()


def first_code_cell(path: Path) -> int:
    """Index of the notebook's first code cell: the cells before it are its title and story."""
    import jupytext

    cells = jupytext.read(path).cells
    return next((i for i, cell in enumerate(cells) if cell.cell_type == "code"), len(cells))


def notebook_intro(path: Path) -> str:
    """The Markdown cells before the notebook's first code cell, as Markdown."""
    import jupytext

    cells = jupytext.read(path).cells[: first_code_cell(path)]
    return "\n\n".join(cell.source for cell in cells)


def _without_inline_styles(converted: str) -> str:
    """The converted notebook without its <style> blocks (the generated stylesheet has them),
    and with mermaid sources escaped so that the browser keeps their text as written.

    nbconvert writes a mermaid block's source into <pre class="mermaid"> unescaped: a label's
    `<br/>` would become an element, and mermaid (which reads the text) would lose it."""
    converted = re.sub(r"<style[^>]*>.*?</style>\s*", "", converted, flags=re.S)

    def escape(match: re.Match[str]) -> str:
        return match.group(1) + html.escape(html.unescape(match.group(2)), quote=False) + match.group(3)

    return re.sub(r'(<pre class="mermaid">)(.*?)(</pre>)', escape, converted, flags=re.S)


@functools.cache
def notebook_stylesheet() -> str:
    """The stylesheet mkdocs-jupyter inlines into every notebook (JupyterLab's, Pygments'),
    taken from an empty notebook, plus what this site needs on top."""
    import nbformat
    from mkdocs_jupyter.convert import nb2html

    with tempfile.TemporaryDirectory() as directory:
        empty = Path(directory) / "empty.ipynb"
        nbformat.write(nbformat.v4.new_notebook(), empty)
        converted = nb2html(str(empty), **{**NOTEBOOK_OPTIONS, "execute": False})
    styles = re.findall(r"<style[^>]*>(.*?)</style>", converted, flags=re.S)
    # The site's mermaid draws notebook diagrams too, but JupyterLab's CSS hides a
    # .jp-Mermaid block until JupyterLab's own renderer marks it rendered.
    site_rules = ".jp-Mermaid:not(.jp-RenderedMermaid) { display: block !important; }\n"
    return "\n".join(style.strip() for style in styles) + "\n" + site_rules


# --- directives ---------------------------------------------------------------------


def _relative(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def _existing(argument: str, page: Page | None = None) -> Path:
    path = (ROOT / argument.strip()).resolve()
    if not path.is_file():
        where = f" (in {page.file.src_uri})" if page is not None else ""
        raise PluginError(f"{argument.strip()}: no such file{where}")
    return path


def directives(markdown: str) -> list[tuple[str, str]]:
    """The (kind, argument) of every directive in a page's Markdown, in order."""
    return [(match.group(2), match.group(3) or "") for match in DIRECTIVE.finditer(markdown)]


def readme_section(argument: str) -> str:
    """The body of the section `path#anchor` of a Markdown file, without its heading.

    The anchor is the heading's text in lower case with spaces as dashes, as on GitHub."""
    file, _, anchor = argument.partition("#")
    path = _existing(file)
    lines = path.read_text().splitlines()
    body: list[str] | None = None
    level = 0
    fence = False
    for line in lines:
        if line.lstrip().startswith("```"):
            fence = not fence
        heading = None if fence else re.match(r"^(#+)\s+(.*?)\s*$", line)
        if body is None:
            if heading and _anchor(heading.group(2)) == anchor:
                body, level = [], len(heading.group(1))
            continue
        if heading and len(heading.group(1)) <= level:
            break
        body.append(line)
    if body is None:
        raise PluginError(f"{file}: no section #{anchor}")
    return "\n".join(body).strip("\n")


def _anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.lower()).strip().replace(" ", "-")


def template_diff(argument: str) -> str:
    """A ```diff block: what changed from the first template to the second."""
    try:
        before, after = argument.split()
    except ValueError:
        raise PluginError(f"template-diff wants two paths, got: {argument!r}") from None
    from edakit.chapters import template_diff

    _existing(before), _existing(after)
    # The same diff the chapter README shows (edakit.chapters), named as given even when
    # one file is a link (to sam-app/template.yaml).
    return "```diff\n" + template_diff(before, after) + "```"


def make_commands(makefile: Path = ROOT / "Makefile") -> list[tuple[str, str]]:
    """(target, description) for each line `make help` prints: a target with a `## ` comment."""
    found = re.findall(r"^([a-z-]+):.*?## (.*)$", makefile.read_text(), flags=re.M)
    return [(target, description.strip()) for target, description in found]


def make_commands_table() -> str:
    rows = [f"| `make {target}` | {description} |" for target, description in make_commands()]
    return "\n".join(["| command | what it does |", "| --- | --- |", *rows])


# --- the event catalogue ------------------------------------------------------------


def _shop_events() -> Any:
    from edakit.paths import SHOP_SRC

    if str(SHOP_SRC) not in sys.path:
        sys.path.insert(0, str(SHOP_SRC))
    import shop.events

    return shop.events


def _latest_stage() -> Path | None:
    """The template of the book's last chapter: the latest stage that has a page."""
    from edakit.paths import CHAPTERS

    stages = sorted(CHAPTERS.glob("[0-9][0-9]-*/template.yaml"))
    with_pages = [stage for stage in stages if (ROOT / "docs" / "chapters" / f"{stage.parent.name}.md").exists()]
    return (with_pages or stages or [None])[-1]


def _rules_and_targets(template: Path) -> tuple[dict[str, tuple[dict[str, Any], list[str]]], dict[str, str]]:
    """Each EventBridge rule of a stage (SAM's generated ones included), with its pattern and
    its targets' logical ids; and the type of every resource, by logical id."""
    from edakit.template import event_rules, load_stage

    stage = load_stage(template, "us-east-1")
    types = {logical_id: resource.get("Type", "") for logical_id, resource in stage.resources.items()}
    return {rule.logical_id: (rule.pattern, rule.targets) for rule in event_rules(stage.resources)}, types


#: How the catalogue's diagram draws a rule's target, by resource type (as edakit.diagrams does).
_TARGET_SHAPES = {
    "AWS::SQS::Queue": ("[[", "]]"),
    "AWS::Lambda::Function": ("(", ")"),
    "AWS::SNS::Topic": (">", "]"),
    "AWS::Kinesis::Stream": ("[/", "/]"),
    "AWS::Events::EventBus": ("{{", "}}"),
}


def _schema_type(node: dict[str, Any]) -> str:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if node.get("type") == "array":
        return f"array of {_schema_type(node.get('items', {}))}"
    if "anyOf" in node:
        return " or ".join(_schema_type(option) for option in node["anyOf"])
    kind = node.get("type", "any")
    return f"{kind} ({node['format']})" if "format" in node else str(kind)


def _schema_rules(node: dict[str, Any]) -> str:
    rules = []
    if "minLength" in node:
        rules.append(f"at least {node['minLength']} character{'s' if node['minLength'] != 1 else ''}")
    if "pattern" in node:
        rules.append(f"matches `{node['pattern']}`")
    if "default" in node:
        rules.append(f"default `{json.dumps(node['default'])}`")
    if node.get("readOnly"):
        rules.append("computed by the producer")
    if "description" in node:
        rules.append(node["description"])
    return "; ".join(rules)


def _fields_table(schema: dict[str, Any], skip: frozenset[str] = frozenset()) -> str:
    required = set(schema.get("required", []))
    rows = ["| field | type | required | rules |", "| --- | --- | --- | --- |"]
    for name, node in schema.get("properties", {}).items():
        if name not in skip:
            cells = [f"`{name}`", _schema_type(node), "yes" if name in required else "no", _schema_rules(node)]
            rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)


def _routes_diagram(routes: dict[str, tuple[str, list[str]]], types: dict[str, str]) -> str:
    """A mermaid flowchart: producer -> event -> the targets its rules send it to. Targets
    that get every event (an audit queue, say) are named under the diagram, not drawn."""
    everywhere = set.intersection(*(set(targets) for _, targets in routes.values())) if routes else set()
    lines = ["```mermaid", "flowchart LR"]
    producers: list[str] = []
    for detail_type, (source, targets) in routes.items():
        source_node = "src_" + re.sub(r"\W", "_", source)
        if source not in producers:
            lines.append(f'    {source_node}["{source}"]')
            producers.append(source)
        lines.append(f'    {source_node} --> {detail_type}(["{detail_type}"])')
        for target in targets:
            if target not in everywhere:
                opening, closing = _TARGET_SHAPES.get(types.get(target, ""), ("[", "]"))
                lines.append(f'    {detail_type} --> {target}{opening}"{target}"{closing}')
    lines.append("```")
    if everywhere:
        lines += ["", "Every event also goes to " + ", ".join(f"`{t}`" for t in sorted(everywhere)) + "."]
    return "\n".join(lines)


def _schema_from_model(model: Any) -> dict[str, Any]:
    """The schema `python -m shop.schemas` would export for `model`, for an event not exported yet."""
    try:
        from shop import schemas
    except ImportError:
        return model.model_json_schema(mode="serialization")
    return schemas.json_schema(model)


def event_catalogue() -> str:
    """Markdown for every event type in shop.events.EVENT_TYPES, from its model and its
    exported JSON Schema (sam-app/schemas/<DetailType>.json) when there is one."""
    from edakit.patterns import as_event, matches
    from edakit.paths import SAM_APP

    events = _shop_events()
    envelope_fields = frozenset(events.EventEnvelope.model_fields)
    stage = _latest_stage()
    rules, types = _rules_and_targets(stage) if stage is not None else ({}, {})
    stage_name = stage.parent.name if stage is not None else ""

    out: list[str] = []
    envelope_schema: dict[str, Any] | None = None
    overview = [f"| event | source | what it says | its example, in stage {stage_name}, goes to |",
                "| --- | --- | --- | --- |"]
    sections: list[str] = []
    routes: dict[str, tuple[str, list[str]]] = {}
    for detail_type, model in events.EVENT_TYPES.items():
        schema_path = SAM_APP / "schemas" / f"{detail_type}.json"
        exported = schema_path.is_file()
        schema = json.loads(schema_path.read_text()) if exported else _schema_from_model(model)
        envelope_schema = envelope_schema or schema
        example = (schema.get("examples") or [None])[0]
        entry = {"Source": model.source, "DetailType": detail_type, "Detail": json.dumps(example or {})}
        delivered = as_event(entry, event_id="6f1c2a4e-0000-4000-8000-000000000000")
        on_bus = getattr(model, "channel", "bus") == "bus"
        routed = [(rule, targets) for rule, (pattern, targets) in rules.items()
                  if on_bus and example is not None and matches(pattern, delivered)]
        targets = sorted({target for _, target_list in routed for target in target_list})
        if not on_bus:  # a producer puts it on a stream directly: no rule sees it
            targets = sorted(t for t, kind in types.items() if kind == "AWS::Kinesis::Stream")
        doc = " ".join((model.__doc__ or "").split())
        overview.append(f"| [`{detail_type}`](#{detail_type.lower()}) | `{model.source}` | {doc} | "
                        f"{', '.join(f'`{t}`' for t in targets) or '—'} |")
        routes[detail_type] = (model.source, targets)

        section = [f"## {detail_type}", "", doc, "",
                   f"Published by `{model.source}` with detail-type `{detail_type}`, "
                   f"schema version {schema.get('properties', {}).get('schema_version', {}).get('default', '1.0')}; "
                   f"model `shop.events.{model.__name__}`.", ""]
        section += [_fields_table(schema, skip=envelope_fields), ""]
        for name, definition in schema.get("$defs", {}).items():
            section += [f"### {name}", "", " ".join(definition.get("description", "").split()), "",
                        _fields_table(definition), ""]
        if routed:
            section += [f"In stage {stage_name}, an example of it matches these rules:", ""]
            section += [f"- `{rule}` → {', '.join(f'`{t}`' for t in targets_of)}" for rule, targets_of in routed]
            section.append("")
        elif not on_bus:
            section += [f"No rule sees it: `{model.source}` puts it on the stream "
                        f"({', '.join(f'`{t}`' for t in targets) or 'none in this stage'}) itself, in the same "
                        "envelope an EventBridge rule would deliver, so the same consumers read both.", ""]
        if example is not None:
            section += ['??? example "The example, as EventBridge delivers it"' if on_bus else
                        '??? example "The example, as it is put on the stream"', "",
                        "    ```json", *("    " + line for line in json.dumps(delivered, indent=2).splitlines()),
                        "    ```", ""]
        if exported:
            section += [f'??? abstract "The JSON Schema: sam-app/schemas/{detail_type}.json"', "",
                        "    ```json", f'    --8<-- "sam-app/schemas/{detail_type}.json"', "    ```", ""]
        else:
            section += [f"!!! warning \"No exported schema yet\"\n    `sam-app/schemas/{detail_type}.json` does not "
                        "exist; the table above is made from the model. Export it with "
                        "`PYTHONPATH=sam-app/src .venv/bin/python -m shop.schemas`.", ""]
        sections.append("\n".join(section))
    graph = _routes_diagram(routes, types)

    # The envelope's fields as the events' schemas describe them (every one is on the bus).
    envelope = {**(envelope_schema or {}), "properties": {
        name: node for name, node in (envelope_schema or {}).get("properties", {}).items() if name in envelope_fields}}
    out += ["## Every event at a glance", "", *overview, "", graph, "",
            "## The envelope", "",
            " ".join((events.EventEnvelope.__doc__ or "").split()), "",
            "Every event's `detail` starts with these fields (model `shop.events.EventEnvelope`):", "",
            _fields_table(envelope), "", *sections]
    return "\n".join(out)


# --- mkdocs events ------------------------------------------------------------------


def on_startup(command: str, dirty: bool) -> None:
    """Keep converted notebooks between the rebuilds of `mkdocs serve` (the hooks module lives on)."""
    _notebooks.cache = {} if command == "serve" else None


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Start the notebooks the pages ask for, and add the notebooks' stylesheet."""
    _notebooks.close()
    wanted: dict[Path, int] = {}
    for file in files.documentation_pages():
        if file.abs_src_path is None:
            continue
        found = directives(Path(file.abs_src_path).read_text())
        intros = {_existing(argument) for kind, argument in found if kind == "notebook-intro"}
        for kind, argument in found:
            if kind == "notebook":
                path = _existing(argument)
                wanted[path] = first_code_cell(path) if path in intros else 0
    _notebooks.start(wanted)
    files.append(File.generated(config, NOTEBOOK_CSS, content=notebook_stylesheet()))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    def replace(match: re.Match[str]) -> str:
        indent = match.group(1)
        generated = expand(match.group(2), (match.group(3) or "").strip())
        # An indented directive (inside an admonition or a tab) keeps its content there.
        return "\n".join(indent + line if line.strip() else line for line in generated.splitlines())

    def expand(kind: str, argument: str) -> str:
        if kind == "notebook-intro":
            return notebook_intro(_existing(argument, page))
        if kind == "notebook":
            return _without_inline_styles(_notebooks.html(_existing(argument, page)))
        if kind == "readme-section":
            return readme_section(argument)
        if kind == "template-diff":
            return template_diff(argument)
        if kind == "event-catalogue":
            return event_catalogue()
        if kind == "make-commands":
            return make_commands_table()
        if kind == "workshop-exercises":
            from edakit.workshop import load_manifest, markdown_list

            return markdown_list(load_manifest())
        raise PluginError(f"{page.file.src_uri}: unknown directive <!-- {kind} -->")

    return DIRECTIVE.sub(replace, markdown)


def on_post_build(config: MkDocsConfig) -> None:
    _notebooks.close()


def on_build_error(error: Exception) -> None:
    _notebooks.close()


if __name__ == "__main__":
    _convert(Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
