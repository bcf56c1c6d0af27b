"""Lambda entrypoint of the orders service. EventBridge rules invoke it asynchronously with:
OrderPlaced (record the order, PLACED), InventoryReserved (confirm it and publish
OrderConfirmed) and OutOfStock (mark it OUT_OF_STOCK). A redelivered event has one effect.
"""

from __future__ import annotations

from typing import Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from shop.adapters.dynamodb import DynamoDBOrderRepository
from shop.adapters.eventbridge import EventBridgePublisher, EventPublisher
from shop.channels import Consumer, IdempotentEvents
from shop.events import InventoryReserved, OrderPlaced, OutOfStock
from shop.orders import (
    OrderRejected,
    OrderRepository,
    OrderStatusRepository,
    accept_order,
    confirm_order,
    mark_out_of_stock,
    record_order,
)

logger = Logger()  # service name from POWERTOOLS_SERVICE_NAME


class Orders(OrderRepository, OrderStatusRepository, Protocol):
    """Records orders and moves their status (DynamoDBOrderRepository does both)."""


# Made on first use, so importing the handler needs no table or bus; tests set fakes.
orders: Orders | None = None
publisher: EventPublisher | None = None


def on_order_placed(order: OrderPlaced) -> dict[str, Any]:
    """Record an accepted order as PLACED. A rejected order raises: Lambda retries it, then
    sends it to the OnFailure destination."""
    log_keys = {"correlation_id": order.correlation_id, "order_id": order.order_id}
    try:
        accepted = accept_order(order)
    except OrderRejected as rejected:
        logger.warning("Order rejected", extra={**log_keys, "reasons": rejected.reasons})
        raise
    recorded = record_order(_orders(), accepted)
    logger.info("Order recorded" if recorded else "Order already recorded", extra=log_keys)
    return {"order_id": order.order_id, "recorded": recorded}


def on_inventory_reserved(reserved: InventoryReserved) -> dict[str, str]:
    """Confirm the order and publish OrderConfirmed. An order not recorded yet raises
    OrderNotFound, and Lambda's retry a minute later finds it."""
    confirmed = confirm_order(_orders(), reserved)
    _publisher().publish(confirmed)
    logger.info("Order confirmed", extra={"correlation_id": reserved.correlation_id,
                                          "order_id": reserved.order_id})
    return {"order_id": reserved.order_id, "status": "CONFIRMED",
            "published": confirmed.detail_type, "event_id": confirmed.event_id}


def on_out_of_stock(out_of_stock: OutOfStock) -> dict[str, str]:
    """Mark the order OUT_OF_STOCK; nothing to publish."""
    mark_out_of_stock(_orders(), out_of_stock)
    logger.info("Order out of stock", extra={"correlation_id": out_of_stock.correlation_id,
                                             "order_id": out_of_stock.order_id,
                                             "sku": out_of_stock.sku})
    return {"order_id": out_of_stock.order_id, "status": "OUT_OF_STOCK"}


def _orders() -> Orders:
    global orders
    if orders is None:
        orders = DynamoDBOrderRepository()
    return orders


def _publisher() -> EventPublisher:
    global publisher
    if publisher is None:
        publisher = EventBridgePublisher()
    return publisher


consumer = Consumer(
    {OrderPlaced: on_order_placed, InventoryReserved: on_inventory_reserved,
     OutOfStock: on_out_of_stock},
    logger,
    idempotency=IdempotentEvents(),  # on the table named by IDEMPOTENCY_TABLE_NAME
)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return consumer(event, context)
