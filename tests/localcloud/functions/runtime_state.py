"""Counts its calls in a module-level variable, as warm execution environments keep it."""

from __future__ import annotations

from typing import Any

calls = 0


def handler(event: Any, context: Any) -> int:
    global calls
    calls += 1
    return calls
