"""Scenarios that a stage's test and its notebook both run, written once.

`a_day_of_the_shop` exercises every function of the finished system (stage 9), so
that what the local cloud records (each function's AWS calls, for least privilege)
covers every path a deployed shop takes in a normal day.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .paths import SHOP_SRC

if TYPE_CHECKING:
    from .cloud import LocalCloud

#: A product the storefront sells before the order service's catalogue knows it: a poison order.
NEW_PRODUCT = "NEW-PRODUCT-001"
#: A customer whose card the simulated gateway declines (shop.payments.DECLINED_CUSTOMER_PREFIX).
DECLINED_CUSTOMER = "declined-dave"
STOCK = {"BOOK-001": 20, "MUG-001": 1}


@dataclass
class Day:
    """The orders of the day, by what happens to them."""

    confirmed: list[Any]      # paid and confirmed (some after a transient gateway failure)
    out_of_stock: Any
    poison: Any               # fails order processing and inventory until their DLQ and OnFailure
    declined: Any             # payment declined: cancelled, its stock released
    clicks: int               # clickstream events put on the analytics stream


def a_day_of_the_shop(cloud: "LocalCloud") -> Day:
    """Seed stock, put the storefront's clickstream on the stream, place six orders and run until idle."""
    if str(SHOP_SRC) not in sys.path:
        sys.path.insert(0, str(SHOP_SRC))
    from shop.adapters.dynamodb import DynamoDBStockRepository
    from shop.clickstream import Clickstream
    from shop.events import OrderLine, ProductViewed
    from shop.inventory import seed_stock
    from shop.storefront import Cart, Storefront

    def cart(customer_id: str, sku: str, quantity: int) -> Cart:
        return Cart(customer_id, [OrderLine(sku=sku, quantity=quantity, unit_price_cents=1500)])

    seed_stock(DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable")), STOCK)
    views = [ProductViewed(session_id=f"session-{n}", sku="BOOK-001") for n in range(3)]
    Clickstream(cloud.outputs["AnalyticsStreamName"]).put(views)
    alice, bob, carol, dave, erin, frank = Storefront(cloud.outputs["EventBusName"]).place_orders(
        [cart("alice", "BOOK-001", 2), cart("bob", "MUG-001", 2), cart("carol", NEW_PRODUCT, 1),
         cart(DECLINED_CUSTOMER, "BOOK-001", 1), cart("erin", "BOOK-001", 1), cart("frank", "BOOK-001", 1)])
    cloud.run_until_idle()
    return Day(confirmed=[alice, erin, frank], out_of_stock=bob, poison=carol, declined=dave, clicks=len(views))
