"""The orders domain: which placed orders the shop accepts, recording each one once, and
moving its status on when the inventory answers (CONFIRMED or OUT_OF_STOCK).

Nothing here knows about SQS, EventBridge or DynamoDB; adapters and handlers do.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from shop.events import (
    EventEnvelope,
    InventoryReserved,
    OrderConfirmed,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OutOfStock,
    PaymentFailed,
    PaymentSucceeded,
)

CATALOGUE: Mapping[str, str] = MappingProxyType(
    {
        "BOOK-001": "Designing Event-Driven Systems",
        "BOOK-002": "Enterprise Integration Patterns",
        "MUG-001": "Idempotent coffee mug",
        "SHIRT-001": "At-least-once T-shirt",
        "STICKER-001": "Dead-letter queue sticker",
    }
)


class OrderRejected(Exception):
    """A placed order the shop will never accept, however often it is retried (a poison message)."""

    def __init__(self, order_id: str, reasons: list[str]) -> None:
        self.order_id = order_id
        self.reasons = reasons
        super().__init__(f"order {order_id} rejected: " + "; ".join(reasons))


@dataclass(frozen=True)
class AcceptedOrder:
    """An order that passed the shop's rules and can be recorded."""

    order_id: str
    customer_id: str
    lines: tuple[OrderLine, ...]
    total_cents: int
    currency: str
    placed_at: datetime
    correlation_id: str


def accept_order(order: OrderPlaced) -> AcceptedOrder:
    """Check a placed order against the shop's rules; raise OrderRejected naming every broken rule."""
    reasons = []
    if not order.lines:
        reasons.append("it has no lines")
    for number, line in enumerate(order.lines, start=1):
        if line.sku not in CATALOGUE:
            reasons.append(f"line {number}: SKU {line.sku!r} is not in the catalogue")
        if line.quantity <= 0:
            reasons.append(f"line {number}: quantity must be at least 1, got {line.quantity}")
        if line.unit_price_cents < 0:
            reasons.append(
                f"line {number}: unit price must not be negative, got {line.unit_price_cents}"
            )
    if reasons:
        raise OrderRejected(order.order_id, reasons)
    return AcceptedOrder(
        order_id=order.order_id,
        customer_id=order.customer_id,
        lines=order.lines,
        total_cents=order.total_cents,
        currency=order.currency,
        placed_at=order.occurred_at,
        correlation_id=order.correlation_id,
    )


class OrderRepository(Protocol):
    """Where accepted orders are kept."""

    def add(self, order: AcceptedOrder) -> bool:
        """Store `order` unless an order with its order_id is already stored.

        Returns True if it was stored, False if it was already there. The check and
        the write must be one atomic step, or two redeliveries racing could both win.
        """
        ...


def record_order(repository: OrderRepository, accepted: AcceptedOrder) -> bool:
    """Record an accepted order once. False: it was already recorded (a redelivery, not an error)."""
    # SQS delivers at least once, so the same OrderPlaced can arrive twice; the
    # repository's atomic add is what makes the second delivery have no effect.
    return repository.add(accepted)


# --- the order's status, moved by the inventory's follow-up events ---------------------


class OrderStatus(StrEnum):
    """Where an order stands. PLACED is recorded first; the inventory's answer moves it on."""

    PLACED = "PLACED"
    CONFIRMED = "CONFIRMED"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    CANCELLED = "CANCELLED"  # payment declined after the stock was reserved (chapter 7)


@dataclass(frozen=True)
class RecordedOrder:
    """A recorded order, with what its follow-up events need to know."""

    order_id: str
    customer_id: str
    total_cents: int
    status: OrderStatus


class OrderNotFound(LookupError):
    """No order with this id is recorded yet.

    A bus promises no order between events: InventoryReserved can overtake the
    OrderPlaced that caused it. Raising lets the retry of the asynchronous
    invocation find the order once it is recorded.
    """

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"order {order_id} is not recorded (yet): a retry may find it")


class InvalidTransition(Exception):
    """The order's status does not allow the change (an out-of-stock order is never confirmed)."""

    def __init__(self, order_id: str, current: OrderStatus, wanted: OrderStatus) -> None:
        self.order_id = order_id
        super().__init__(f"order {order_id} is {current.value}: it cannot become {wanted.value}")


class OrderStatusRepository(Protocol):
    """Where the status of recorded orders changes."""

    def change_status(
        self, order_id: str, new: OrderStatus, *, expected: OrderStatus
    ) -> RecordedOrder:
        """Set the order's status to `new` if it is `expected`, as one atomic step, and return
        the order as it was before (so the caller sees whether it changed). Raises
        OrderNotFound if no such order is recorded."""
        ...


def confirm_order(
    orders: OrderStatusRepository, reserved: InventoryReserved | PaymentSucceeded
) -> OrderConfirmed:
    """The order's stock is reserved (and, where the shop takes payments, the order is
    paid): mark it CONFIRMED and return the OrderConfirmed to publish.

    An order that is already CONFIRMED (a retry after the first attempt failed to
    publish) gives the same OrderConfirmed again, with the same event_id.
    """
    order = _move(orders, reserved.order_id, OrderStatus.CONFIRMED)
    return OrderConfirmed(
        order_id=order.order_id,
        customer_id=order.customer_id,
        total_cents=order.total_cents,
        **follow_up(OrderConfirmed, order.order_id, reserved),
    )


def mark_out_of_stock(orders: OrderStatusRepository, out_of_stock: OutOfStock) -> None:
    """Nothing was reserved for the order: mark it OUT_OF_STOCK (once; a redelivery changes nothing)."""
    _move(orders, out_of_stock.order_id, OrderStatus.OUT_OF_STOCK)


def cancel_order(orders: OrderStatusRepository, failed: PaymentFailed) -> OrderCancelled:
    """The payment was declined after the stock was reserved: mark the order CANCELLED and
    return the OrderCancelled to publish (the compensation: inventory releases its lines).

    An order that is already CANCELLED (a retry) gives the same OrderCancelled again.
    """
    order = _move(orders, failed.order_id, OrderStatus.CANCELLED)
    return OrderCancelled(
        order_id=order.order_id,
        customer_id=order.customer_id,
        reason=failed.reason,
        lines=failed.lines,
        **follow_up(OrderCancelled, order.order_id, failed),
    )


def _move(orders: OrderStatusRepository, order_id: str, new: OrderStatus) -> RecordedOrder:
    before = orders.change_status(order_id, new, expected=OrderStatus.PLACED)
    if before.status not in (OrderStatus.PLACED, new):
        raise InvalidTransition(order_id, before.status, new)
    return before


# A follow-up event states a fact about one order (its stock is reserved, it is
# confirmed), so its id derives from the order: handling its cause again, after a
# failure or from a retried checkout, publishes the very same event (same event_id),
# which consumers that deduplicate on event_id then ignore.
_FOLLOW_UP_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "events.shop.example")


def follow_up(effect: type[EventEnvelope], order_id: str, cause: EventEnvelope) -> dict[str, str]:
    """Envelope fields of the `effect` event about `order_id` that `cause` leads to: an
    event_id derived from the order, and the cause's correlation_id (a chain keeps the id
    of its first event)."""
    event_id = uuid.uuid5(_FOLLOW_UP_NAMESPACE, f"{effect.detail_type}:{order_id}")
    return {"event_id": str(event_id), "correlation_id": cause.correlation_id}
