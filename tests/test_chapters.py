"""edakit.chapters: the diffs a chapter README shows, how the stage tests check them and rewrite them."""

from __future__ import annotations

from pathlib import Path

import pytest

from edakit import chapters

BEFORE = "Resources:\n  OrdersQueue:\n    Type: AWS::SQS::Queue\n"
AFTER = BEFORE + "  OrdersDLQ:\n    Type: AWS::SQS::Queue\n"
COMMAND = "python tests/stages/test_stage_99.py"
README = (
    "# Chapter 99\n\nThe template changes:\n\n"
    f"<!-- template diff: written by `{COMMAND}` -->\n```diff\nold diff\n```\n\n"
    "And the consumer:\n\n"
    f"<!-- new consumer diff: written by `{COMMAND}` -->\n```diff\nold too\n```\n\nThe end.\n"
)


@pytest.fixture
def kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository root in tmp_path holding chapters/99-test/README.md and the stage test's path."""
    (tmp_path / "chapters" / "99-test").mkdir(parents=True)
    (tmp_path / "chapters" / "99-test" / "README.md").write_text(README)
    monkeypatch.setattr(chapters, "ROOT", tmp_path)
    monkeypatch.setattr(chapters, "CHAPTERS", tmp_path / "chapters")
    return tmp_path


def diffs() -> dict[str, str]:
    return {"template diff": chapters.text_diff(BEFORE, AFTER, "before.yaml", "after.yaml"),
            "new consumer diff": chapters.text_diff("", "a: 1\n", "none", "one")}


class TestTextDiff:
    def test_the_diff_is_labelled_with_the_names_and_adds_the_new_lines(self) -> None:
        diff = chapters.text_diff(BEFORE, AFTER, "before.yaml", "after.yaml")
        assert diff.startswith("--- before.yaml\n+++ after.yaml\n@@ ")
        assert "+  OrdersDLQ:\n+    Type: AWS::SQS::Queue\n" in diff

    def test_every_line_ends_in_a_newline_so_the_block_fence_stays_on_its_own_line(self) -> None:
        diff = chapters.text_diff("a: 1", "a: 2", "x", "y")
        assert diff.endswith("-a: 1\n+a: 2\n")


class TestReadmeBlocks:
    def test_each_named_block_gets_its_diff_and_the_rest_of_the_readme_is_kept(self) -> None:
        readme = chapters.readme_with_diffs(README, diffs(), COMMAND)
        assert "old diff" not in readme and "old too" not in readme
        assert f"`{COMMAND}` -->\n```diff\n--- before.yaml\n" in readme
        assert f"`{COMMAND}` -->\n```diff\n--- none\n+++ one\n@@ -0,0 +1 @@\n+a: 1\n```\n\nThe end.\n" in readme
        assert readme.startswith("# Chapter 99\n\nThe template changes:\n\n")
        assert chapters.readme_with_diffs(readme, diffs(), COMMAND) == readme

    def test_a_missing_marker_says_which_line_to_put_back(self) -> None:
        with pytest.raises(ValueError, match="no block starting with '<!-- template diff: written by"):
            chapters.readme_with_diffs(README.replace("template diff", "diff"), diffs(), COMMAND)

    def test_a_block_without_its_closing_fence_says_so(self) -> None:
        with pytest.raises(ValueError, match="never ends: close it with a line '```'"):
            chapters.with_block("<!-- x -->\n```diff\nopen", "<!-- x -->\n```diff\n", "")

    def test_the_writer_command_is_the_script_run_from_the_repository_root(self, kit: Path) -> None:
        assert chapters.writer_command(kit / "tests" / "stages" / "test_stage_99.py") == COMMAND


class TestCheckAndWrite:
    def test_a_stale_readme_fails_naming_the_stale_block_and_the_command_that_rewrites_it(self, kit: Path) -> None:
        script = kit / "tests" / "stages" / "test_stage_99.py"
        with pytest.raises(AssertionError) as failure:
            chapters.check_readme("99-test", diffs(), script)
        assert str(failure.value) == (
            "chapters/99-test/README.md is stale (its template diff and new consumer diff are not the diffs of "
            f"the templates as they are now): run `{COMMAND}` to rewrite it")

    def test_a_readme_without_the_marker_fails_naming_the_readme_and_the_line(self, kit: Path) -> None:
        path = kit / "chapters" / "99-test" / "README.md"
        path.write_text(README.replace("<!-- new consumer diff:", "<!-- consumer diff:"))
        with pytest.raises(AssertionError, match=r"chapters/99-test/README.md: the document has no block starting "
                                                 r"with '<!-- new consumer diff: written by"):
            chapters.check_readme("99-test", diffs(), kit / "tests" / "stages" / "test_stage_99.py")

    def test_the_writer_makes_the_check_pass_and_a_one_line_change_fails_it_again(self, kit: Path) -> None:
        script = kit / "tests" / "stages" / "test_stage_99.py"
        assert chapters.write_readme("99-test", diffs(), script) == (
            f"wrote the template diff and new consumer diff into {kit / 'chapters' / '99-test' / 'README.md'}")
        chapters.check_readme("99-test", diffs(), script)
        path = kit / "chapters" / "99-test" / "README.md"
        path.write_text(path.read_text().replace("+a: 1\n", "+a: 2\n"))
        with pytest.raises(AssertionError, match=r"its new consumer diff is not the diff of the templates"):
            chapters.check_readme("99-test", diffs(), script)
