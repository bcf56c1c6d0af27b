"""Test functions for asynchronous invocation: echo what arrived, or fail with a known error."""

from __future__ import annotations

from typing import Any


def echo(event: Any, context: Any) -> dict[str, Any]:
    """Returns the event it was given, so a test can read the response payload."""
    return {"received": event, "request_id": context.aws_request_id}


def reject(event: Any, context: Any) -> None:
    """Raises a domain error with a message the test can look for in records and DLQ attributes."""
    raise ValueError(f"order {event.get('detail', event).get('order_id', '?')} rejected")
