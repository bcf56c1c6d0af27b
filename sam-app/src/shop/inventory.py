"""The inventory domain: reserving stock for a placed order, every line or none, releasing
it when the order is cancelled (once), and seeding stock levels. Nothing here knows about DynamoDB; the adapter does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from shop.events import (
    InventoryReserved,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OutOfStock,
    ReservedLine,
)
from shop.orders import accept_order, follow_up


@dataclass(frozen=True)
class Shortage:
    """A line that stock could not cover, which is why nothing was reserved."""

    sku: str
    requested: int
    available: int


class StockRepository(Protocol):
    """Where stock levels are kept."""

    def reserve(self, order_id: str, lines: Sequence[ReservedLine]) -> Shortage | None:
        """Take every line's quantity from stock and record the order's reservation, all
        in one atomic step, or change nothing.

        Returns None when the order's stock is reserved, now or by an earlier attempt
        (an order is reserved once, however often its event arrives). Returns the
        Shortage of a line that stock cannot cover when nothing was reserved.
        """
        ...

    def release(self, order_id: str, lines: Sequence[ReservedLine]) -> bool:
        """Give every line's quantity back to stock and mark the order's reservation released,
        all in one atomic step, or change nothing.

        Returns False, changing nothing, when the order has no reservation or it was
        released before (a cancelled order's stock comes back once).
        """
        ...

    def set_stock(self, sku: str, quantity: int) -> None:
        """Set a product's stock level (a delivery from the warehouse, or seeding a stage)."""
        ...

    def stock_of(self, sku: str) -> int:
        """A product's stock level; 0 for a product never stocked."""
        ...


def reserve_inventory(stock: StockRepository, order: OrderPlaced) -> InventoryReserved | OutOfStock:
    """Reserve stock for every line of `order`, or for none; return the event to publish.

    An order the shop rejects (unknown SKU, quantity below 1) raises OrderRejected:
    a negative quantity would otherwise *add* stock.
    """
    accepted = accept_order(order)
    lines = reserved_lines(accepted.lines)
    shortage = stock.reserve(order.order_id, lines)
    if shortage is None:
        return InventoryReserved(
            order_id=order.order_id, lines=lines, **follow_up(InventoryReserved, order.order_id, order)
        )
    return OutOfStock(
        order_id=order.order_id,
        sku=shortage.sku,
        requested=shortage.requested,
        available=shortage.available,
        **follow_up(OutOfStock, order.order_id, order),
    )


def release_inventory(stock: StockRepository, cancelled: OrderCancelled) -> bool:
    """The order was cancelled after its stock was reserved: put the stock back, once.

    False: nothing to release (already released by an earlier delivery, or never reserved).
    """
    return stock.release(cancelled.order_id, cancelled.lines)


def reserved_lines(lines: Sequence[OrderLine]) -> tuple[ReservedLine, ...]:
    """One line per SKU, quantities added up, in order of first appearance.

    A DynamoDB transaction may touch each item once, and two lines of one SKU
    must be checked against the stock together anyway.
    """
    quantities: Counter[str] = Counter()
    for line in lines:
        quantities[line.sku] += line.quantity
    return tuple(ReservedLine(sku=sku, quantity=quantity) for sku, quantity in quantities.items())


def seed_stock(stock: StockRepository, levels: Mapping[str, int]) -> None:
    """Set the stock level of each SKU in `levels`, as a learner does before placing orders."""
    for sku, quantity in levels.items():
        if quantity < 0:
            raise ValueError(f"stock of {sku} must not be negative, got {quantity}")
        stock.set_stock(sku, quantity)
