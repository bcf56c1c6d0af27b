"""The chapter's answer to "one million orders in an hour" is the model's, as it runs now."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

from edakit import capacity


def test_the_chapters_million_orders_answer_is_current(tmp_path: Path, monkeypatch) -> None:
    """chapters/10-scale/million-orders.md is what `python -m edakit capacity --write` writes now
    (the model is seeded); the notebook of chapter 10 shows it.

    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
    """
    committed = capacity.ANSWER_FILE.read_text()
    monkeypatch.setattr(capacity, "ANSWER_FILE", tmp_path / "chapters" / "10-scale" / "million-orders.md")
    (tmp_path / "chapters" / "10-scale").mkdir(parents=True)
    monkeypatch.setattr(capacity, "SAM_APP", tmp_path / "sam-app")
    with redirect_stdout(io.StringIO()):
        assert capacity.main(["--write"]) == 0
    assert capacity.ANSWER_FILE.read_text() == committed, (
        "chapters/10-scale/million-orders.md is stale: run `python -m edakit capacity --write`")
    assert "breaks first" in committed and "1,000,000 orders in one hour" in committed
