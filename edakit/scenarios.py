"""Scenarios that several of the kit's commands, tests and notebooks run, written once.

- `a_day_of_the_shop` exercises every function of the finished system (stages 9 and 10), so that
  what the local cloud records (each function's AWS calls, for least privilege) covers
  every path a deployed shop takes in a normal day.
- `carts`, `seed_every_product` and `place_steadily` make the seeded streams of orders
  that `make demo`, `make bench` and `python -m edakit cost` place.
"""

from __future__ import annotations

import random
import sys
import uuid
from collections.abc import Callable, Sequence
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


def _shop_on_path() -> None:
    if str(SHOP_SRC) not in sys.path:
        sys.path.append(str(SHOP_SRC))


def carts(rng: random.Random, count: int, *, poison_one_in: int | None = None, prefix: str = "order") -> list[Any]:
    """`count` seeded carts of one or two catalogue products; with `poison_one_in`, one cart in
    about that many orders a product the shop does not sell (a poison order). The order ids are
    drawn from `rng` too, so a rerun places the same orders."""
    _shop_on_path()
    from shop.orders import CATALOGUE
    from shop.storefront import Cart

    skus = sorted(CATALOGUE)
    made = []
    for number in range(count):
        lines = [
            {"sku": sku, "quantity": rng.randint(1, 2), "unit_price_cents": rng.choice([990, 1490, 2500])}
            for sku in rng.sample(skus, rng.randint(1, 2))
        ]
        if poison_one_in is not None and rng.randrange(poison_one_in) == 0:
            lines[0] = {**lines[0], "sku": "DISCONTINUED-404"}
        made.append(Cart(
            customer_id=f"customer-{rng.randint(1, 120):03d}", lines=lines, correlation_id=f"{prefix}-{number:04d}",
            order_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        ))
    return made


def seed_every_product(cloud: "LocalCloud", quantity: int) -> None:
    """Stock `quantity` of every catalogue product, when the stage keeps stock."""
    if "StockTable" not in (cloud.deployment.physical_ids if cloud.deployment else {}):
        return
    _shop_on_path()
    from shop.adapters.dynamodb import DynamoDBStockRepository
    from shop.inventory import seed_stock
    from shop.orders import CATALOGUE

    seed_stock(DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable")),
               {sku: quantity for sku in CATALOGUE})


def place_steadily(cloud: "LocalCloud", orders: Sequence[Any], per_second: int = 10,
                   before_each: Callable[[Sequence[Any]], None] | None = None) -> None:
    """Place `per_second` of `orders` through the storefront each virtual second (calling
    `before_each` with the batch first), then run until nothing is left to do."""
    _shop_on_path()
    from shop.storefront import Storefront

    storefront = Storefront(cloud.physical_id("ShopBus"))
    for start in range(0, len(orders), per_second):
        batch = orders[start:start + per_second]
        if before_each is not None:
            before_each(batch)
        storefront.place_orders(batch)
        cloud.run_for(1.0)
    cloud.run_until_idle()


def browse(clicks: Any, batch: Sequence[Any]) -> None:
    """Each customer views two products and adds what they order to the cart, before checkout."""
    _shop_on_path()
    from shop.events import ProductAddedToCart, ProductViewed

    events: list[Any] = []
    for cart in batch:
        session = f"session-{cart.order_id}"
        events += [ProductViewed(session_id=session, sku=line["sku"]) for line in cart.lines]
        events += [ProductAddedToCart(session_id=session, sku=line["sku"], quantity=line["quantity"]) for line in cart.lines]
    clicks.put(events)
