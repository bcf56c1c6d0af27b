"""Every exercise of the workshop means something: the checker fails it on the untouched starter
and passes it on the reference solution, and it checks the workspace's own code, not sam-app's.

Each test makes its own workspace in a temporary directory (never the real workspace/) and
runs the checker as `make check` does: pytest in a fresh process, with --stage-dir and
EDAKIT_SHOP_SRC naming the workspace. To stay fast they run each exercise's `proof` (the
smallest subset of its checks, in workshop/exercises.yaml), not every check.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from edakit import workshop
from edakit.paths import CHAPTERS, SAM_APP
from edakit.workshop import Chapter, Exercise, WorkshopError, build, load_manifest, record, run_checks

MANIFEST = load_manifest()
CHAPTER_LIST = list(MANIFEST.chapters.values())
#: For each exercise with TODOs in the shop's code, its first such file (the manifest lists a
#: domain module before the handler that calls it), as an exercise of its own. A domain module
#: is what only sys.modules decides (a handler file is loaded from CodeUri anyway), and one file
#: per exercise keeps this file fast.
CODE_TODOS = [replace(e, skeleton=e.skeleton[:1]) for e in MANIFEST.exercises if e.skeleton]


def make_workspace(tmp_path: Path, chapter: Chapter, *, template: str,
                   skeletons: list[Exercise] | None = None) -> Path:
    directory = tmp_path / "workspace"
    build(chapter, directory, template=template, skeletons=skeletons)
    record(directory, chapter)
    return directory


def outcomes(directory: Path, chapter: Chapter, **options: object) -> dict[str, bool]:
    """Whether each exercise of the chapter passes its proof, as the checker reports it."""
    return {r.exercise.id: r.passed for r in run_checks(directory, chapter.exercises, proof_only=True, **options)}


class TestEveryExerciseMeansSomething:
    @pytest.mark.parametrize("chapter", CHAPTER_LIST, ids=lambda c: c.stage)
    def test_the_untouched_starter_fails_every_exercise_of_its_chapter(self, tmp_path: Path, chapter: Chapter) -> None:
        # given the workspace `make workshop CH=N` makes
        directory = make_workspace(tmp_path, chapter, template="starter")
        # then no exercise passes before the learner did anything
        assert outcomes(directory, chapter) == {e.id: False for e in chapter.exercises}

    @pytest.mark.parametrize("chapter", CHAPTER_LIST, ids=lambda c: c.stage)
    def test_the_reference_solution_passes_every_exercise_of_its_chapter(self, tmp_path: Path, chapter: Chapter) -> None:
        # given the chapter's own template and the shop's code as it is, in a workspace
        directory = make_workspace(tmp_path, chapter, template="solution", skeletons=[])
        assert outcomes(directory, chapter) == {e.id: True for e in chapter.exercises}

    @pytest.mark.parametrize("exercise", CODE_TODOS, ids=lambda e: f"{e.id}:{e.skeleton[0].file}")
    def test_the_todos_in_the_workspaces_code_fail_the_exercise_even_with_the_solutions_template(
        self, tmp_path: Path, exercise: Exercise
    ) -> None:
        """The checks run the workspace's src/, not sam-app/src, both the handlers (which the
        local cloud loads from the template's CodeUri) and the domain modules they import
        (which resolve through sys.modules): with the template solved and the TODOs of one
        file only in the workspace's code, the exercise fails. (Made to check sam-app/src
        instead, the checker passes the exercises whose file is a domain module: this test
        fails for them.)"""
        chapter = MANIFEST.chapters[exercise.chapter]
        directory = make_workspace(tmp_path, chapter, template="solution", skeletons=[exercise])
        [result] = run_checks(directory, [exercise], proof_only=True)
        assert not result.passed


class TestTheManifest:
    def test_every_chapter_turns_the_stage_before_into_its_own_with_template_and_code_todos(self) -> None:
        assert sorted(MANIFEST.chapters) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        for chapter in CHAPTER_LIST:
            # Stage 9 changes no shop code (its security is the template's): template TODOs only.
            if chapter.number == 9:
                assert all(e.template_todo and not e.skeleton for e in chapter.exercises)
                continue
            assert any(e.template_todo and e.skeleton for e in chapter.exercises), chapter.stage
            if chapter.number > 1:
                assert chapter.starter_template == sorted(CHAPTERS.glob(f"{chapter.number - 1:02d}-*"))[0] / "template.yaml"

    def test_the_starter_and_the_solution_point_their_code_at_the_workspace(self, tmp_path: Path) -> None:
        chapter = MANIFEST.chapter(3)
        directory = make_workspace(tmp_path, chapter, template="solution", skeletons=[])
        text = (directory / "template.yaml").read_text()
        assert "CodeUri: src/" in text and "sam-app" not in text
        assert (directory / "src" / "shop" / "inventory.py").read_text() == (
            SAM_APP / "src" / "shop" / "inventory.py").read_text()

    def test_the_files_stage_9s_tests_read_beside_the_template_are_the_workspaces_own(self, tmp_path: Path) -> None:
        """test_stage_09.py reads checkov-skips.yaml and least-privilege-exceptions.yaml from
        --stage-dir: both the starter and the solution have a copy of the chapter's (which are
        links into sam-app/), and the solution's template runs the workspace's code."""
        chapter = MANIFEST.chapter(9)
        assert chapter.files == ("checkov-skips.yaml", "least-privilege-exceptions.yaml")
        for template in ("starter", "solution"):
            directory = make_workspace(tmp_path / template, chapter, template=template, skeletons=[])
            for name in chapter.files:
                assert not (directory / name).is_symlink()
                assert (directory / name).read_text() == (CHAPTERS / "09-security" / name).read_text()
        text = (directory / "template.yaml").read_text()
        assert "CodeUri: src/" in text and "sam-app" not in text

    def test_a_skeleton_can_keep_the_bodys_first_statements(self) -> None:
        source = 'def count(on: bool) -> int:\n    """Count."""\n    if not on:\n        return 0\n    return 1\n'
        result = workshop.skeletonize(source, ["count"], "count it", "ex-1", "shop.py", keep=1)
        assert result == ('def count(on: bool) -> int:\n    """Count."""\n    if not on:\n        return 0\n'
                          '    # TODO(ex-1): count it\n'
                          '    raise NotImplementedError("TODO(ex-1): see the comment above")\n')

    def test_a_skeleton_keeps_the_signature_and_docstring_and_replaces_the_body(self) -> None:
        source = 'class Shop:\n    def sell(self, n: int) -> int:\n        """Sell n."""\n        return n * 2\n'
        result = workshop.skeletonize(source, ["Shop.sell"], "double it", "ex-1", "shop.py")
        assert result == ('class Shop:\n    def sell(self, n: int) -> int:\n        """Sell n."""\n'
                          '        # TODO(ex-1): double it\n'
                          '        raise NotImplementedError("TODO(ex-1): see the comment above")\n')

    def test_a_skeleton_naming_a_function_that_is_gone_says_to_update_the_manifest(self) -> None:
        with pytest.raises(WorkshopError, match=r"exercise ex-1: sam-app/src/shop.py has no function sell any more"):
            workshop.skeletonize("def buy():\n    pass\n", ["sell"], "todo", "ex-1", "shop.py")


class TestBadInput:
    """The commands say what is wrong and what to do, and exit with status 2."""

    def run(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        status = workshop.main(list(argv))
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    def test_an_unknown_chapter_lists_the_valid_ones(self, tmp_path, capsys) -> None:
        status, _, err = self.run(capsys, "--workspace", str(tmp_path / "ws"), "start", "12")
        assert status == 2
        assert err == "error: there is no chapter '12' with exercises; the chapters are: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10\n"
        assert not (tmp_path / "ws").exists()

    def test_no_chapter_says_how_to_give_one(self, tmp_path, capsys) -> None:
        status, _, err = self.run(capsys, "--workspace", str(tmp_path / "ws"), "start", "")
        assert status == 2 and "say which chapter, e.g. `make workshop CH=1`" in err

    def test_an_unknown_exercise_lists_the_valid_ones_and_guesses(self, capsys) -> None:
        status, _, err = self.run(capsys, "hint", "03-consumer")
        assert status == 2
        assert err.startswith("error: there is no exercise '03-consumer' (did you mean 03-consumers?); the exercises:\n")
        assert all(f"  {e.id} " in err for e in MANIFEST.exercises)

    def test_checking_without_a_workspace_says_make_workshop(self, tmp_path, capsys) -> None:
        status, out, err = self.run(capsys, "--workspace", str(tmp_path / "ws"), "check", "--chapter", "2")
        assert status == 2 and out == ""
        assert "there is no workspace at" in err and "`make workshop CH=2`" in err

    def test_checking_a_workspace_made_for_another_chapter_names_both(self, tmp_path, capsys) -> None:
        assert self.run(capsys, "--workspace", str(tmp_path / "ws"), "start", "1")[0] == 0
        status, _, err = self.run(capsys, "--workspace", str(tmp_path / "ws"), "check", "--exercise", "04-dlq-redrive")
        assert status == 2
        assert "was made for chapter 1, not chapter 4" in err and "`make check CH=1`" in err

    def test_a_chapter_and_an_exercise_that_disagree_say_so(self, tmp_path, capsys) -> None:
        status, _, err = self.run(capsys, "--workspace", str(tmp_path / "ws"), "check", "--chapter", "2",
                                  "--exercise", "03-consumers")
        assert status == 2 and "exercise 03-consumers is in chapter 3, not chapter 2" in err

    def test_starting_over_a_changed_workspace_refuses_and_says_force(self, tmp_path, capsys) -> None:
        directory = tmp_path / "ws"
        assert self.run(capsys, "--workspace", str(directory), "start", "1")[0] == 0
        # an unchanged workspace is simply made again
        assert self.run(capsys, "--workspace", str(directory), "start", "2")[0] == 0
        (directory / "template.yaml").write_text("my work\n")
        status, _, err = self.run(capsys, "--workspace", str(directory), "start", "3")
        assert status == 2
        assert "has changes you made: template.yaml" in err and "`make workshop CH=3 FORCE=1`" in err
        assert (directory / "template.yaml").read_text() == "my work\n"
        assert self.run(capsys, "--workspace", str(directory), "start", "3", "--force")[0] == 0
        assert workshop.workspace_state(directory)["chapter"] == 3

    def test_the_solution_is_a_diff_from_the_starter_without_a_workspace(self, tmp_path, capsys) -> None:
        status, out, _ = self.run(capsys, "--workspace", str(tmp_path / "ws"), "solution", "01-events")
        assert status == 0
        assert "as a diff from starter (chapter 1)" in out
        assert "+++ solution/src/shop/storefront.py" in out and "-        raise NotImplementedError" in out
