"""Real-time analytics: sales per minute and top products, counted over Kinesis tumbling windows.

Lambda hands the analytics function one shard's records of one window in batches,
each time with the `state` the previous batch returned; at the end of the window it
invokes once more with no records and `isFinalInvokeForWindow: true`, and that
invocation writes the window's result. A failed invocation returns no state, so the
records of a retried batch are counted once.
https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from shop.channels import Consumer
from shop.events import OrderConfirmed, OrderPlaced, ProductAddedToCart, ProductViewed

#: How many products a window's result ranks.
TOP_PRODUCTS = 5


@dataclass
class ProductActivity:
    """What shoppers did with one product in a window."""

    views: int = 0
    added_to_cart: int = 0
    units_ordered: int = 0

    def ranking(self) -> tuple[int, int, int]:
        """Units ordered first; add-to-carts, then views, break ties."""
        return self.units_ordered, self.added_to_cart, self.views


@dataclass
class WindowTotals:
    """The running totals of a window: the tumbling window's `state`, as a class."""

    orders_placed: int = 0
    sales_cents: int = 0
    orders_confirmed: int = 0
    confirmed_cents: int = 0
    products: dict[str, ProductActivity] = field(default_factory=dict)

    # -- the state Lambda carries between invocations (JSON) -------------------------------

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> WindowTotals:
        """The totals so far; an empty state (a window's first batch) is all zeros."""
        state = state or {}
        return cls(
            orders_placed=int(state.get("orders_placed", 0)),
            sales_cents=int(state.get("sales_cents", 0)),
            orders_confirmed=int(state.get("orders_confirmed", 0)),
            confirmed_cents=int(state.get("confirmed_cents", 0)),
            products={sku: ProductActivity(**activity) for sku, activity in (state.get("products") or {}).items()},
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "orders_placed": self.orders_placed,
            "sales_cents": self.sales_cents,
            "orders_confirmed": self.orders_confirmed,
            "confirmed_cents": self.confirmed_cents,
            "products": {sku: vars(activity).copy() for sku, activity in sorted(self.products.items())},
        }

    @property
    def empty(self) -> bool:
        return self == WindowTotals()

    # -- counting one event ---------------------------------------------------------------

    def _product(self, sku: str) -> ProductActivity:
        return self.products.setdefault(sku, ProductActivity())

    def order_placed(self, order: OrderPlaced) -> None:
        self.orders_placed += 1
        self.sales_cents += order.total_cents
        for line in order.lines:
            self._product(line.sku).units_ordered += line.quantity

    def order_confirmed(self, order: OrderConfirmed) -> None:
        self.orders_confirmed += 1
        self.confirmed_cents += order.total_cents

    def product_viewed(self, view: ProductViewed) -> None:
        self._product(view.sku).views += 1

    def product_added_to_cart(self, added: ProductAddedToCart) -> None:
        self._product(added.sku).added_to_cart += 1  # add-to-carts, whatever the quantity

    # -- reading ----------------------------------------------------------------------------

    def top_products(self, count: int = TOP_PRODUCTS) -> list[tuple[str, ProductActivity]]:
        """The `count` most active products, best first (ties by SKU, so the order is stable)."""
        ranked = sorted(self.products.items(), key=lambda item: (tuple(-n for n in item[1].ranking()), item[0]))
        return ranked[:count]

    def __add__(self, other: WindowTotals) -> WindowTotals:
        """Two shards' totals of the same window, together."""
        products = {sku: ProductActivity(**vars(a)) for sku, a in self.products.items()}
        for sku, activity in other.products.items():
            mine = products.setdefault(sku, ProductActivity())
            mine.views += activity.views
            mine.added_to_cart += activity.added_to_cart
            mine.units_ordered += activity.units_ordered
        return WindowTotals(self.orders_placed + other.orders_placed, self.sales_cents + other.sales_cents,
                            self.orders_confirmed + other.orders_confirmed,
                            self.confirmed_cents + other.confirmed_cents, products)


@dataclass(frozen=True)
class WindowResult:
    """One shard's totals for one window: what the final invocation writes."""

    window_start: str  # as Lambda gives it: 2025-11-28T09:00:00Z
    window_end: str
    shard_id: str
    totals: WindowTotals


class WindowResults(Protocol):
    """Where window results are kept (shop.adapters.analytics has the DynamoDB one)."""

    def save(self, result: WindowResult) -> None:
        """Write the result; writing the same window of the same shard again replaces it."""
        ...

    def all(self) -> list[WindowResult]: ...


def aggregate_window(event: Mapping[str, Any], results: WindowResults, logger: Logger) -> dict[str, Any]:
    """One invocation of a tumbling window: count the batch into the state, and on the
    window's final invocation write the result. Returns the response Lambda requires.

    A record that is not a shop event this function counts raises InvalidEvent: the
    invocation fails, Lambda bisects the batch (BisectBatchOnFunctionError) until the
    record is alone, and after its retries sends the batch's metadata to the OnFailure
    destination. The state of a failed invocation is discarded, so nothing is counted twice.
    """
    totals = WindowTotals.from_state(event.get("state"))
    consumer = Consumer({
        OrderPlaced: totals.order_placed,
        OrderConfirmed: totals.order_confirmed,
        ProductViewed: totals.product_viewed,
        ProductAddedToCart: totals.product_added_to_cart,
    }, logger)
    for raw in event.get("Records") or []:
        record = KinesisStreamRecord(raw)
        consumer.handle(record.kinesis.data_as_text(), sequence_number=record.kinesis.sequence_number,
                        partition_key=record.kinesis.partition_key)
    if event.get("isFinalInvokeForWindow") and not totals.empty:
        window = event["window"]
        results.save(WindowResult(window["start"], window["end"], event["shardId"], totals))
        logger.info("Window closed", extra={"window_start": window["start"], "shard_id": event["shardId"],
                                            "orders_placed": totals.orders_placed, "sales_cents": totals.sales_cents})
    return {"state": totals.to_state()}


def per_window(results: Iterable[WindowResult]) -> dict[str, WindowTotals]:
    """Every shard's results added up, by window start, in time order."""
    merged: dict[str, WindowTotals] = {}
    for result in sorted(results, key=lambda r: (r.window_start, r.shard_id)):
        merged[result.window_start] = merged.get(result.window_start, WindowTotals()) + result.totals
    return merged
