"""Each order's status history: the status changes its events make, kept in the order they
happened. A history starts with PLACED; a change that comes first for any other status
arrived out of order, and is refused so that it can be retried once PLACED is in.

Nothing here knows about SQS or DynamoDB; shop/adapters/order_history.py does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shop.events import (
    EventEnvelope,
    InventoryReserved,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OutOfStock,
)

#: The status each lifecycle event gives an order.
STATUS_AFTER: dict[type[EventEnvelope], str] = {
    OrderPlaced: "PLACED",
    InventoryReserved: "RESERVED",
    OutOfStock: "OUT_OF_STOCK",
    OrderConfirmed: "CONFIRMED",
    OrderCancelled: "CANCELLED",  # chapter 7: the payment was declined
}


@dataclass(frozen=True)
class StatusChange:
    """One line of an order's history."""

    order_id: str
    status: str
    event_id: str
    occurred_at: datetime


class HistoryNotStarted(Exception):
    """A status change for an order whose history has no PLACED yet: it came out of order."""

    def __init__(self, change: StatusChange) -> None:
        self.change = change
        super().__init__(f"order {change.order_id}: {change.status} before PLACED (out of order); a retry may find it")


class StatusHistory(Protocol):
    """Where histories are kept."""

    def append(self, change: StatusChange, *, starts_history: bool) -> bool:
        """Append `change` to its order's history as one atomic step; False if this event_id is
        already in it (a redelivery). Raises HistoryNotStarted if the order has no history and
        `starts_history` is False."""
        ...

    def history_of(self, order_id: str) -> list[str]:
        """The order's statuses, oldest first ([] for an order never seen)."""
        ...


def record_status_change(history: StatusHistory, event: EventEnvelope) -> StatusChange:
    """Append the status `event` gives its order; only OrderPlaced may start a history."""
    change = StatusChange(
        order_id=event.order_id,  # type: ignore[attr-defined]  # every lifecycle event has one
        status=STATUS_AFTER[type(event)],
        event_id=event.event_id,
        occurred_at=event.occurred_at,
    )
    history.append(change, starts_history=isinstance(event, OrderPlaced))
    return change
