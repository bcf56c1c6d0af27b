"""Test functions for CloudWatch: one writes the log lines its event gives (EMF or not)."""

from __future__ import annotations

from typing import Any


def write_lines(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Prints each of event["lines"] on a line of its own, as a handler's logger would."""
    for line in event.get("lines", []):
        print(line)
    if event.get("fail"):
        raise RuntimeError("told to fail")
    return {"written": len(event.get("lines", []))}
