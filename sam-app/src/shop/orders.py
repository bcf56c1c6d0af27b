"""The orders domain: which placed orders the shop accepts, and recording each one once.

Nothing here knows about SQS, EventBridge or DynamoDB; adapters and handlers do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Protocol

from shop.events import OrderLine, OrderPlaced

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
