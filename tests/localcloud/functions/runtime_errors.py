"""Handlers that fail the ways a learner's code does."""

from __future__ import annotations

from typing import Any


def raise_value_error(event: Any, context: Any) -> None:
    raise ValueError(f"order {event.get('order_id')} has no items")


def return_a_set(event: Any, context: Any) -> set[str]:
    """A set is not JSON: Lambda cannot send it back to the caller."""
    return {"not", "json"}
