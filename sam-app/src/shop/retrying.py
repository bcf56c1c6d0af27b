"""Putting a batch again, for the producers: what the service refused, and only that.

PutEvents and PutRecords can succeed while refusing single entries (throttled at a
quota, or an internal failure). AWS's advice for both is to send those entries again
after a wait that grows, not at once.
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevents.html
https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")

#: Attempts in all, and the wait before the first retry (it doubles after each attempt).
MAX_ATTEMPTS = 3
FIRST_RETRY_WAIT_SECONDS = 0.1


def put_with_retries(
    put_once: Callable[[list[Item]], list[tuple[Item, str, str]]],
    items: Sequence[Item],
    wait: Callable[[float], None],
    attempts: int = MAX_ATTEMPTS,
) -> list[tuple[Item, str, str]]:
    """Call `put_once` with the items, then again with those it refused (each with its error
    code and message), after a wait, up to `attempts` calls; return the ones still refused."""
    pending = list(items)
    refused: list[tuple[Item, str, str]] = []
    for attempt in range(attempts):
        if attempt:
            wait(FIRST_RETRY_WAIT_SECONDS * 2 ** (attempt - 1))
        refused = put_once(pending)
        if not refused:
            return []
        pending = [item for item, _, _ in refused]
    return refused
