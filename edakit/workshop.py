"""The workshop: make a learner's workspace from a chapter's starter, check it, give hints.

One ordered manifest (workshop/exercises.yaml) lists the exercises. A chapter's starter is
the template of the stage before it plus a copy of the shop's code in which named
functions' bodies are replaced by TODOs; its reference solution is the chapter's own
template and the shop's code as it is. The checker runs the exercises' stage tests in a
fresh Python process against the workspace (``--stage-dir``), with EDAKIT_SHOP_SRC naming
the workspace's src/, so that the tests and the functions import the learner's `shop`.

    python -m edakit workshop start 3        # make workspace/ for chapter 3
    python -m edakit workshop check          # what passes, what is missing, the next hint
    python -m edakit workshop hint 03-consumers
    python -m edakit workshop solution 03-consumers
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import EdakitError
from .paths import CHAPTERS, ROOT, SAM_APP, SHOP_SRC_VARIABLE

MANIFEST = ROOT / "workshop" / "exercises.yaml"
WORKSPACE = ROOT / "workspace"
#: Where a workspace records which chapter it was made for, and its files as they were made.
STATE_FILE = ".workshop.json"
#: A chapter template's CodeUri, and the workspace's: its own copy of the code.
CHAPTER_CODE_URI = "../../sam-app/src/"
WORKSPACE_CODE_URI = "src/"
#: The environment variable the checker's pytest plugin writes each test's outcome to.
REPORT_VARIABLE = "EDAKIT_WORKSHOP_REPORT"
#: How many failing checks `check` lists per exercise (the first one is what to fix next).
SHOWN_FAILURES = 4


class WorkshopError(EdakitError):
    """A workshop command that cannot be done as asked; the message says what to do."""


# --- the manifest --------------------------------------------------------------------------


@dataclass(frozen=True)
class Skeleton:
    """What the starter does to one file of the shop's code: TODOs instead of function bodies
    (``functions``), or a line pattern replaced (``replace`` / ``with``)."""

    file: str
    functions: tuple[str, ...] = ()
    todo: str = ""
    replace: str | None = None
    replacement: str = ""
    #: How many of the body's first statements (after the docstring) the TODO keeps, e.g. a
    #: guard that lets the rest of the shop run before the exercise is done.
    keep: int = 0


@dataclass(frozen=True)
class Exercise:
    chapter: int
    id: str
    title: str
    hint: str
    checks: tuple[str, ...]
    proof: tuple[str, ...]
    solution: tuple[str, ...]
    template_todo: str = ""
    skeleton: tuple[Skeleton, ...] = ()

    @property
    def files(self) -> list[str]:
        """The workspace files this exercise asks the learner to change."""
        template = ["template.yaml"] if self.template_todo or not self.skeleton else []
        return [*template, *dict.fromkeys(f"src/{s.file}" for s in self.skeleton)]


@dataclass(frozen=True)
class Chapter:
    number: int
    stage: str
    title: str
    starter_template: Path
    exercises: tuple[Exercise, ...] = field(default=())
    #: Files of the chapter's directory that its stage tests read beside the template
    #: (e.g. least-privilege-exceptions.yaml): the workspace gets its own copy of each.
    files: tuple[str, ...] = ()

    @property
    def template(self) -> Path:
        return CHAPTERS / self.stage / "template.yaml"


@dataclass(frozen=True)
class Manifest:
    chapters: dict[int, Chapter]
    exercises: tuple[Exercise, ...]

    def chapter(self, number: int | str | None) -> Chapter:
        valid = ", ".join(str(n) for n in self.chapters)
        if number is None or str(number).strip() == "":
            raise WorkshopError(f"say which chapter, e.g. `make workshop CH=1` (chapters with exercises: {valid})")
        text = str(number).strip()
        if not text.isdigit() or int(text) not in self.chapters:
            raise WorkshopError(f"there is no chapter {text!r} with exercises; the chapters are: {valid}")
        return self.chapters[int(text)]

    def exercise(self, exercise_id: str | None) -> Exercise:
        by_id = {e.id: e for e in self.exercises}
        listing = "\n".join(f"  {e.id:28} {e.title}" for e in self.exercises)
        if not exercise_id:
            raise WorkshopError(f"say which exercise, e.g. `make hint EX={self.exercises[0].id}`; the exercises:\n{listing}")
        if exercise_id not in by_id:
            close = difflib.get_close_matches(exercise_id, by_id, n=1)
            guess = f" (did you mean {close[0]}?)" if close else ""
            raise WorkshopError(f"there is no exercise {exercise_id!r}{guess}; the exercises:\n{listing}")
        return by_id[exercise_id]


def load_manifest(path: Path = MANIFEST) -> Manifest:
    """The manifest, checked: every chapter's stage and every file it names must exist."""
    raw = yaml.safe_load(path.read_text())
    exercises: list[Exercise] = []
    for entry in raw["exercises"]:
        skeleton = tuple(
            Skeleton(file=s["file"], functions=tuple(s.get("functions", ())), todo=s.get("todo", ""),
                     replace=s.get("replace"), replacement=s.get("with", ""), keep=int(s.get("keep", 0)))
            for s in entry.get("skeleton", ())
        )
        exercises.append(Exercise(
            chapter=int(entry["chapter"]), id=entry["id"], title=entry["title"], hint=entry["hint"].strip(),
            checks=tuple(entry["checks"]), proof=tuple(entry["proof"]), solution=tuple(entry["solution"]),
            template_todo=entry.get("template_todo", "").strip(), skeleton=skeleton,
        ))
    chapters: dict[int, Chapter] = {}
    for number, spec in raw["chapters"].items():
        number = int(number)
        stage = spec["stage"]
        starter = spec.get("starter_template")
        if starter is None:
            previous = sorted(p for p in CHAPTERS.glob(f"{number - 1:02d}-*") if (p / "template.yaml").exists())
            if not previous:
                raise WorkshopError(f"{path}: chapter {number} has no stage {number - 1} to start from; "
                                    "give it a starter_template")
            starter_path = previous[0] / "template.yaml"
        else:
            starter_path = ROOT / starter
        chapters[number] = Chapter(number, stage, spec["title"], starter_path,
                                   tuple(e for e in exercises if e.chapter == number),
                                   tuple(spec.get("files", ())))
    _validate(path, chapters, exercises)
    return Manifest(chapters, tuple(exercises))


def _validate(path: Path, chapters: dict[int, Chapter], exercises: Sequence[Exercise]) -> None:
    problems: list[str] = []
    seen: set[str] = set()
    for exercise in exercises:
        where = f"exercise {exercise.id}"
        if exercise.id in seen:
            problems.append(f"{where}: the id is used twice")
        seen.add(exercise.id)
        if exercise.chapter not in chapters:
            problems.append(f"{where}: chapter {exercise.chapter} is not under `chapters`")
        if not exercise.proof or not all(any(_selects(check, proof) for check in exercise.checks)
                                         for proof in exercise.proof):
            problems.append(f"{where}: its proof must be one or more of its checks (or tests inside them)")
        for skeleton in exercise.skeleton:
            if not (SAM_APP / "src" / skeleton.file).is_file():
                problems.append(f"{where}: no file sam-app/src/{skeleton.file}")
            if f"sam-app/src/{skeleton.file}" not in exercise.solution:
                problems.append(f"{where}: its solution must list sam-app/src/{skeleton.file}")
        for name in exercise.solution:
            if not (ROOT / name).exists():
                problems.append(f"{where}: its solution names {name}, which does not exist")
    for chapter in chapters.values():
        for required in (chapter.template, chapter.starter_template,
                         *(CHAPTERS / chapter.stage / name for name in chapter.files)):
            if not required.exists():
                problems.append(f"chapter {chapter.number}: no {required.relative_to(ROOT)}")
        if not chapter.exercises:
            problems.append(f"chapter {chapter.number}: no exercises")
    if problems:
        raise WorkshopError(f"{path.relative_to(ROOT)} needs fixing:\n  " + "\n  ".join(problems))


# --- starters and solutions -------------------------------------------------------------------


def skeletonize(source: str, functions: Iterable[str], todo: str, exercise_id: str, file: str,
                keep: int = 0) -> str:
    """``source`` with each named function's body (after its docstring, and after its first
    ``keep`` statements) replaced by TODO comments and a ``raise NotImplementedError``;
    ``Class.method`` names a method."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    spans: list[tuple[int, int, int]] = []
    for name in functions:
        node = _find_function(tree, name)
        if node is None:
            raise WorkshopError(f"exercise {exercise_id}: sam-app/src/{file} has no function {name} any more; "
                                "update workshop/exercises.yaml")
        body = node.body[1:] if _has_docstring(node) else node.body
        if len(body) <= keep:
            raise WorkshopError(f"exercise {exercise_id}: {name} has no statement to replace after its "
                                f"docstring and the {keep} kept; update workshop/exercises.yaml")
        first = body[keep]
        spans.append((first.lineno - 1, node.end_lineno or first.lineno, first.col_offset))
    for start, end, indent in sorted(spans, reverse=True):
        pad = " " * indent
        comment = [f"{pad}# TODO({exercise_id}): {line}".rstrip() + "\n" if i == 0 else f"{pad}#   {line}".rstrip() + "\n"
                   for i, line in enumerate(textwrap.dedent(todo).strip().splitlines())]
        raise_line = f'{pad}raise NotImplementedError("TODO({exercise_id}): see the comment above")\n'
        lines[start:end] = [*comment, raise_line]
    return "".join(lines)


def _find_function(tree: ast.Module, qualified: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    scope: list[ast.stmt] = tree.body
    *owners, name = qualified.split(".")
    for owner in owners:
        cls = next((n for n in scope if isinstance(n, ast.ClassDef) and n.name == owner), None)
        if cls is None:
            return None
        scope = cls.body
    return next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name), None)


def _has_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    first = node.body[0]
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)


def apply_skeleton(source: str, skeleton: Skeleton, exercise_id: str) -> str:
    if skeleton.functions:
        source = skeletonize(source, skeleton.functions, skeleton.todo, exercise_id, skeleton.file, skeleton.keep)
    if skeleton.replace:
        source, count = re.subn(skeleton.replace, skeleton.replacement, source, flags=re.M)
        if count == 0:
            raise WorkshopError(f"exercise {exercise_id}: sam-app/src/{skeleton.file} has no line matching "
                                f"{skeleton.replace!r} any more; update workshop/exercises.yaml")
    return source


def workspace_template(text: str) -> str:
    """A chapter's template, its CodeUri pointing at the workspace's own copy of the code."""
    return text.replace(CHAPTER_CODE_URI, WORKSPACE_CODE_URI)


def with_template_todos(text: str, chapter: Chapter) -> str:
    """The starter template: the TODO of every exercise of the chapter, as a comment block at
    the end of Resources (before Outputs)."""
    blocks = []
    for exercise in chapter.exercises:
        if exercise.template_todo:
            body = "\n".join(f"  #   {line}".rstrip() for line in exercise.template_todo.splitlines())
            blocks.append(f"  # TODO({exercise.id}): {exercise.title}\n{body}\n")
    if not blocks:
        return text
    banner = (f"  # ---------------------------------------------------------------------------\n"
              f"  # Chapter {chapter.number} ({chapter.stage}): your changes. `make check` says what is missing.\n"
              f"  # ---------------------------------------------------------------------------\n")
    block = "\n" + banner + "\n".join(blocks) + "\n"
    match = re.search(r"^Outputs:", text, flags=re.M)
    if match is None:
        return text.rstrip("\n") + "\n" + block
    return text[:match.start()].rstrip("\n") + "\n" + block + text[match.start():]


def build(chapter: Chapter, destination: Path, *, template: str = "starter",
          skeletons: Iterable[Exercise] | None = None) -> None:
    """Write a workspace into ``destination``: the starter's or the solution's template, the
    shop's code with the skeletons of ``skeletons`` (default: every exercise of the chapter)."""
    destination.mkdir(parents=True, exist_ok=True)
    if template == "starter":
        text = with_template_todos(workspace_template(chapter.starter_template.read_text()), chapter)
    else:
        text = workspace_template(chapter.template.read_text())
    (destination / "template.yaml").write_text(text)
    for name in chapter.files:  # the same in the starter and the solution
        (destination / name).write_text((CHAPTERS / chapter.stage / name).read_text())
    src = destination / "src"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(SAM_APP / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if (SAM_APP / "schemas").is_dir():  # shop.schemas finds them beside src/
        shutil.rmtree(destination / "schemas", ignore_errors=True)
        shutil.copytree(SAM_APP / "schemas", destination / "schemas")
    for exercise in chapter.exercises if skeletons is None else skeletons:
        for skeleton in exercise.skeleton:
            path = src / skeleton.file
            path.write_text(apply_skeleton(path.read_text(), skeleton, exercise.id))


def solution_files(chapter: Chapter) -> dict[str, str]:
    """The reference solution's files, by their path in a workspace."""
    with tempfile.TemporaryDirectory() as directory:
        build(chapter, Path(directory), template="solution", skeletons=())
        return _read_tree(Path(directory))


def starter_files(chapter: Chapter) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as directory:
        build(chapter, Path(directory))
        return _read_tree(Path(directory))


def _read_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.name != STATE_FILE}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- the workspace ------------------------------------------------------------------------------


def workspace_state(workspace: Path) -> dict[str, Any] | None:
    path = workspace / STATE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def changed_files(workspace: Path) -> list[str]:
    """The workspace's files that differ from when it was made (added, changed or removed)."""
    state = workspace_state(workspace)
    if state is None:
        return sorted(_read_tree(workspace)) if workspace.exists() else []
    now = {name: _digest(text) for name, text in _read_tree(workspace).items()}
    made = state.get("files", {})
    return sorted(name for name in set(now) | set(made) if now.get(name) != made.get(name))


def record(workspace: Path, chapter: Chapter) -> None:
    """Write the workspace's state file: its chapter, and its files as they are now."""
    files = {name: _digest(text) for name, text in _read_tree(workspace).items()}
    state = {"chapter": chapter.number, "stage": chapter.stage,
             "exercises": [e.id for e in chapter.exercises], "files": files}
    (workspace / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def start(manifest: Manifest, chapter_number: str | None, workspace: Path = WORKSPACE, *, force: bool = False) -> str:
    """Make ``workspace`` from the chapter's starter; refuse to replace a workspace with changes."""
    chapter = manifest.chapter(chapter_number)
    if workspace.exists() and any(workspace.iterdir()):
        changed = changed_files(workspace)
        if changed and not force:
            state = workspace_state(workspace)
            made_for = f" (chapter {state['chapter']})" if state else ""
            listed = ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else "")
            raise WorkshopError(
                f"{_shown(workspace)}{made_for} has changes you made: {listed}.\n"
                f"It is kept. To replace it with chapter {chapter.number}'s starter and lose them, run "
                f"`make workshop CH={chapter.number} FORCE=1` (copy it elsewhere first to keep your work).")
        shutil.rmtree(workspace)
    build(chapter, workspace)
    record(workspace, chapter)
    todo_files = sorted({f for e in chapter.exercises for f in e.files})
    lines = [f"Made {_shown(workspace)} for chapter {chapter.number}, {chapter.title} ({chapter.stage}).",
             "", "Your exercises, in order:"]
    lines += [f"  {e.id:28} {e.title}" for e in chapter.exercises]
    lines += ["", "Edit (look for TODO):", *(f"  {_shown(workspace / f)}" for f in todo_files), "",
              "Then `make check` says what passes and what is still missing; `make hint EX=<id>` helps."]
    return "\n".join(lines)


def _shown(path: Path) -> str:
    """A path as the learner typed it: relative to the kit, a directory with its slash."""
    directory = path.is_dir() or not path.suffix
    try:
        text = str(path.relative_to(ROOT))
    except ValueError:
        text = str(path)
    return text + ("/" if directory and not text.endswith("/") else "")


def _workspace_chapter(manifest: Manifest, workspace: Path, asked: str | None) -> Chapter:
    """The chapter a command is about: the one asked for, which must be the workspace's own."""
    if asked:
        manifest.chapter(asked)  # an unknown chapter is said first
    state = workspace_state(workspace)
    if state is None:
        what = f"chapter {asked}" if asked else "a chapter"
        example = asked or "1"
        raise WorkshopError(f"there is no workspace at {_shown(workspace)}: make one for {what} with "
                            f"`make workshop CH={example}`")
    chapter = manifest.chapter(asked if asked else state["chapter"])
    if chapter.number != state["chapter"]:
        raise WorkshopError(
            f"{_shown(workspace)} was made for chapter {state['chapter']}, not chapter {chapter.number}. "
            f"Check it with `make check CH={state['chapter']}`, or start chapter {chapter.number} with "
            f"`make workshop CH={chapter.number}` (FORCE=1 replaces a workspace you changed).")
    return chapter


# --- checking -------------------------------------------------------------------------------------


@dataclass
class TestOutcome:
    nodeid: str
    outcome: str  # passed, failed, skipped
    message: str = ""


@dataclass
class ExerciseResult:
    exercise: Exercise
    outcomes: list[TestOutcome]
    missing_checks: list[str]

    @property
    def passed(self) -> bool:
        return bool(self.outcomes) and not self.missing_checks and all(o.outcome == "passed" for o in self.outcomes)

    @property
    def failures(self) -> list[TestOutcome]:
        return [o for o in self.outcomes if o.outcome != "passed"]


def _selects(check: str, nodeid: str) -> bool:
    """Whether the node id ``check`` (a file, class or test) selects the test ``nodeid``."""
    return nodeid == check or nodeid.startswith(check + "::") or nodeid.startswith(check + "[")


def _minimal(checks: Iterable[str]) -> list[str]:
    """The checks without those another one already selects (pytest would run them twice)."""
    unique = list(dict.fromkeys(checks))
    return [c for c in unique if not any(o != c and _selects(o, c) for o in unique)]


def run_checks(workspace: Path, exercises: Sequence[Exercise], *, proof_only: bool = False,
               shop_src: Path | None = None) -> list[ExerciseResult]:
    """Run the exercises' checks against ``workspace`` in a fresh Python process, importing the
    shop from ``workspace/src`` (``shop_src`` overrides it, for the kit's own tests)."""
    selected = {e.id: (e.proof if proof_only else e.checks) for e in exercises}
    nodeids = _minimal(c for checks in selected.values() for c in checks)
    with tempfile.TemporaryDirectory() as directory:
        report = Path(directory) / "report.jsonl"
        environment = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "COV_"))}
        environment[SHOP_SRC_VARIABLE] = str((shop_src or workspace / "src").resolve())
        environment[REPORT_VARIABLE] = str(report)
        environment.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        command = [sys.executable, "-m", "pytest", *nodeids, "--stage-dir", str(workspace.resolve()),
                   "-p", "edakit.workshop_report", "-p", "no:cacheprovider", "-m", "not notebook",
                   "-q", "--no-header", "-o", "console_output_style=classic"]
        completed = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
        outcomes = _read_report(report)
    if not outcomes and completed.returncode not in (0, 1):
        raise WorkshopError("the checks could not run:\n" + (completed.stdout + completed.stderr)[-3000:])
    results = []
    for exercise in exercises:
        checks = selected[exercise.id]
        # A test file that failed to load (its nodeid is the file) fails every check inside it.
        mine = [o for o in outcomes.values() if any(_selects(c, o.nodeid) or _selects(o.nodeid, c) for c in checks)]
        missing = [c for c in checks if not any(_selects(c, o.nodeid) or _selects(o.nodeid, c)
                                                for o in outcomes.values())]
        results.append(ExerciseResult(exercise, mine, missing))
    return results


def _read_report(path: Path) -> dict[str, TestOutcome]:
    """Each test's outcome (a failed setup or call fails it; a failed collection fails the file)."""
    outcomes: dict[str, TestOutcome] = {}
    if not path.exists():
        return outcomes
    for line in path.read_text().splitlines():
        record = json.loads(line)
        nodeid, outcome = record["nodeid"], record["outcome"]
        known = outcomes.get(nodeid)
        if known is None or (known.outcome == "passed" and outcome != "passed"):
            outcomes[nodeid] = TestOutcome(nodeid, outcome, record.get("message", ""))
    return outcomes


def readable(nodeid: str) -> str:
    """A test's node id as words: ``TestTheArchive::test_every_x[y]`` -> ``every x (y)``."""
    name = nodeid.rsplit("::", 1)[-1]
    name, _, parameters = name.partition("[")
    words = name.removeprefix("test_").replace("_", " ")
    if "::" not in nodeid:  # a whole file that failed to load
        return f"{Path(nodeid).name} could not be loaded"
    return f"{words} ({parameters.rstrip(']')})" if parameters else words


def format_results(chapter: Chapter, results: Sequence[ExerciseResult], workspace: Path) -> str:
    lines = [f"Checking {_shown(workspace)} against chapter {chapter.number}, {chapter.title}.", ""]
    for result in results:
        exercise = result.exercise
        total = len(result.outcomes)
        if result.passed:
            lines.append(f"  ✔ {exercise.id:28} {exercise.title}: all {total} checks pass")
            continue
        failing = result.failures
        unloaded = any("::" not in o.nodeid for o in failing)
        status = ("its checks could not run" if unloaded else
                  f"{len(failing)} of {total} checks still fail" if total else "its checks found no test")
        lines.append(f"  ✘ {exercise.id:28} {exercise.title}: {status}")
        said: set[str] = set()
        for outcome in failing[:SHOWN_FAILURES]:
            lines.append(f"      - {readable(outcome.nodeid)}")
            if outcome.message:
                lines.append("        (the same reason)" if outcome.message in said else f"        {outcome.message}")
                said.add(outcome.message)
        blocking = sorted({m for o in failing for m in re.findall(r"TODO\(([\w-]+)\)", o.message)} - {exercise.id})
        if blocking:
            lines.append(f"      (a TODO of {', '.join(blocking)} stops these checks: do that exercise first)")
        if len(failing) > SHOWN_FAILURES:
            lines.append(f"      ... and {len(failing) - SHOWN_FAILURES} more")
        for check in result.missing_checks:
            lines.append(f"      - the check {check} selects no test: the stage tests changed; "
                         "tell the facilitator (workshop/exercises.yaml needs updating)")
    lines.append("")
    first = next((r for r in results if not r.passed), None)
    if first is None:
        lines.append(f"Everything passes: chapter {chapter.number} is done. "
                     f"Compare with the reference: `make solution EX=<id>`.")
    else:
        lines += [f"Next: {first.exercise.id}. Hint:", textwrap.indent(first.exercise.hint, "  "), "",
                  f"Still stuck? `make solution EX={first.exercise.id}` shows the reference solution's diff."]
    return "\n".join(lines)


def to_check(manifest: Manifest, workspace: Path = WORKSPACE, *, chapter: str | None = None,
             exercise: str | None = None) -> tuple[Chapter, Sequence[Exercise]]:
    """The chapter and exercises `check` runs; a clear error for a missing or mismatched workspace."""
    if exercise:
        chosen = manifest.exercise(exercise)
        if chapter and str(chapter).strip() != str(chosen.chapter):
            raise WorkshopError(f"exercise {chosen.id} is in chapter {chosen.chapter}, not chapter {chapter}: "
                                f"give one of them, e.g. `make check EX={chosen.id}`")
        return _workspace_chapter(manifest, workspace, str(chosen.chapter)), [chosen]
    target = _workspace_chapter(manifest, workspace, chapter)
    return target, target.exercises


def check(manifest: Manifest, workspace: Path = WORKSPACE, *, chapter: str | None = None,
          exercise: str | None = None) -> tuple[int, str]:
    """Run the checks; the exit status (0 when everything passes) and the report for the learner."""
    target, exercises = to_check(manifest, workspace, chapter=chapter, exercise=exercise)
    results = run_checks(workspace, exercises)
    return (0 if all(r.passed for r in results) else 1), format_results(target, results, workspace)


# --- hints and solutions -------------------------------------------------------------------------


def hint(manifest: Manifest, exercise_id: str | None) -> str:
    exercise = manifest.exercise(exercise_id)
    chapter = manifest.chapters[exercise.chapter]
    where = ", ".join(f"workspace/{f}" for f in exercise.files)
    return (f"{exercise.id} (chapter {chapter.number}, {chapter.title}): {exercise.title}\n\n"
            f"{exercise.hint}\n\nThe TODO({exercise.id}) comments are in: {where}\n"
            f"Check it alone: make check EX={exercise.id}")


def solution(manifest: Manifest, exercise_id: str | None, workspace: Path = WORKSPACE) -> str:
    """The diff from the workspace (or, without one for this chapter, the starter) to the
    reference solution, for the files the exercise changes."""
    exercise = manifest.exercise(exercise_id)
    chapter = manifest.chapters[exercise.chapter]
    state = workspace_state(workspace)
    if state is not None and state.get("chapter") == chapter.number:
        ours, label = _read_tree(workspace), _shown(workspace)
    else:
        ours, label = starter_files(chapter), f"starter (chapter {chapter.number})"
    reference = solution_files(chapter)
    diffs = []
    for name in exercise.files:
        diff = difflib.unified_diff(ours.get(name, "").splitlines(keepends=True),
                                    reference.get(name, "").splitlines(keepends=True),
                                    fromfile=f"{label.rstrip('/')}/{name}", tofile=f"solution/{name}")
        diffs.append("".join(diff))
    body = "".join(diffs) or "(no difference: your files are the reference solution)\n"
    note = ("The template's diff is the whole chapter's (its exercises share one template).\n"
            if len(chapter.exercises) > 1 else "")
    return f"Reference solution of {exercise.id}, as a diff from {label}:\n{note}\n{body}"


def listing(manifest: Manifest) -> str:
    lines = []
    for chapter in manifest.chapters.values():
        lines.append(f"Chapter {chapter.number}: {chapter.title} (make workshop CH={chapter.number})")
        lines += [f"  {e.id:28} {e.title}" for e in chapter.exercises]
    return "\n".join(lines)


def markdown_list(manifest: Manifest) -> str:
    """The exercises as Markdown, for the workshop page (docs/hooks.py's workshop-exercises)."""
    lines: list[str] = []
    for chapter in manifest.chapters.values():
        page = ROOT / "docs" / "chapters" / f"{chapter.stage}.md"
        read = f" Read [the chapter](../chapters/{chapter.stage}.md) first." if page.exists() else ""
        lines += [f"### Chapter {chapter.number}: {chapter.title}", "",
                  f"`make workshop CH={chapter.number}` starts from "
                  + ("a minimal template" if chapter.starter_template != _previous_template(chapter)
                     else f"stage {chapter.number - 1}'s template") + "." + read, "",
                  "| exercise | what you do | files with TODOs |", "| --- | --- | --- |"]
        for e in chapter.exercises:
            files = ", ".join(f"`{f}`" for f in e.files)
            lines.append(f"| `{e.id}` | {e.title} | {files} |")
        lines.append("")
    return "\n".join(lines)


def _previous_template(chapter: Chapter) -> Path | None:
    previous = sorted(CHAPTERS.glob(f"{chapter.number - 1:02d}-*"))
    return previous[0] / "template.yaml" if previous else None


# --- the command line -------------------------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edakit workshop",
                                     description="The workshop's exercises: start, check, hint, solution.")
    parser.add_argument("--workspace", type=Path, default=WORKSPACE, help="the workspace (default: workspace/)")
    commands = parser.add_subparsers(dest="command", required=True)
    begin = commands.add_parser("start", help="make the workspace from a chapter's starter")
    begin.add_argument("chapter", nargs="?")
    begin.add_argument("--force", action="store_true", help="replace a workspace that has changes")
    verify = commands.add_parser("check", help="run the checks on the workspace")
    verify.add_argument("--chapter", default=None)
    verify.add_argument("--exercise", default=None)
    commands.add_parser("hint", help="an exercise's hint").add_argument("exercise", nargs="?")
    commands.add_parser("solution", help="the diff to an exercise's reference solution").add_argument("exercise", nargs="?")
    commands.add_parser("list", help="every exercise, in order")
    arguments = parser.parse_args(list(argv))
    workspace = arguments.workspace.resolve()
    try:
        manifest = load_manifest()
        if arguments.command == "start":
            print(start(manifest, arguments.chapter, workspace, force=arguments.force))
            return 0
        if arguments.command == "check":
            target, exercises = to_check(manifest, workspace, chapter=arguments.chapter or None,
                                         exercise=arguments.exercise or None)
            print(f"Running {sum(len(e.checks) for e in exercises)} checks of chapter {target.number} on the "
                  "local cloud (about a minute)...", flush=True)
            status, text = check(manifest, workspace, chapter=arguments.chapter or None,
                                 exercise=arguments.exercise or None)
            print(text)
            return status
        if arguments.command == "hint":
            print(hint(manifest, arguments.exercise))
        elif arguments.command == "solution":
            print(solution(manifest, arguments.exercise, workspace))
        else:
            print(listing(manifest))
        return 0
    except WorkshopError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
