"""A handler module without the function the template names (it defines `handle`, not `handler`)."""

from __future__ import annotations


def handle(event: object, context: object) -> None:
    return None
