"""Event sources: the parts of the Lambda service that poll, push and retry on a function's behalf."""

from __future__ import annotations

from typing import Protocol


class EventSource(Protocol):
    """Something that has work at some virtual time.

    The local cloud asks every source when it next has work (``next_due``), moves
    the clock to the earliest answer and lets the sources due then ``run``.
    """

    def next_due(self, now: float) -> float | None:
        """The earliest virtual time (>= now) at which run() has work, or None."""

    def run(self, now: float) -> bool:
        """Do the work due at ``now``; return whether anything happened."""

    def describe_pending(self) -> str:
        """A line for the learner about the work still pending."""
