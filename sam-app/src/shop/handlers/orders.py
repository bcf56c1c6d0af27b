"""Lambda entrypoint of the orders service. EventBridge rules invoke it asynchronously with:
OrderPlaced (record the order, PLACED), InventoryReserved (confirm it and publish
OrderConfirmed) and OutOfStock (mark it OUT_OF_STOCK). A redelivered event has one effect.

Where the shop takes payments (chapter 7, CONFIRM_ORDERS_AFTER=PaymentSucceeded), a
reserved order waits for its payment: PaymentSucceeded confirms it, PaymentFailed cancels
it and publishes OrderCancelled, so that inventory releases the stock.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from shop.adapters.dynamodb import DynamoDBOrderRepository
from shop.adapters.eventbridge import EventBridgePublisher, EventPublisher
from shop.channels import Consumer, IdempotentEvents
from shop.events import (
    InventoryReserved,
    OrderPlaced,
    OutOfStock,
    PaymentFailed,
    PaymentSucceeded,
)
from shop.orders import (
    OrderRejected,
    OrderRepository,
    OrderStatusRepository,
    accept_order,
    cancel_order,
    confirm_order,
    mark_out_of_stock,
    record_order,
)

logger = Logger()  # service name from POWERTOOLS_SERVICE_NAME

#: Which event confirms an order: InventoryReserved (stages 3 to 6, no payments) or
#: PaymentSucceeded (stage 7: the stock is reserved, then the order is charged).
CONFIRM_AFTER_VARIABLE = "CONFIRM_ORDERS_AFTER"
CONFIRMING_EVENTS = (InventoryReserved.detail_type, PaymentSucceeded.detail_type)


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
    OrderNotFound, and Lambda's retry a minute later finds it. Where payments confirm
    orders, the order waits for its payment instead."""
    if _confirm_after() != InventoryReserved.detail_type:
        logger.info("Stock reserved; waiting for the payment",
                    extra={"correlation_id": reserved.correlation_id, "order_id": reserved.order_id})
        return {"order_id": reserved.order_id, "status": "PLACED", "waiting_for": _confirm_after()}
    return _confirm(reserved)


def on_payment_succeeded(paid: PaymentSucceeded) -> dict[str, str]:
    """The order is paid: confirm it and publish OrderConfirmed."""
    return _confirm(paid)


def on_payment_failed(failed: PaymentFailed) -> dict[str, str]:
    """The payment was declined: cancel the order and publish OrderCancelled (the compensation)."""
    cancelled = cancel_order(_orders(), failed)
    _publisher().publish(cancelled)
    logger.info("Order cancelled", extra={"correlation_id": failed.correlation_id,
                                          "order_id": failed.order_id, "reason": failed.reason})
    return {"order_id": failed.order_id, "status": "CANCELLED",
            "published": cancelled.detail_type, "event_id": cancelled.event_id}


def _confirm(cause: InventoryReserved | PaymentSucceeded) -> dict[str, str]:
    confirmed = confirm_order(_orders(), cause)
    _publisher().publish(confirmed)
    logger.info("Order confirmed", extra={"correlation_id": cause.correlation_id,
                                          "order_id": cause.order_id})
    return {"order_id": cause.order_id, "status": "CONFIRMED",
            "published": confirmed.detail_type, "event_id": confirmed.event_id}


def _confirm_after() -> str:
    wanted = os.environ.get(CONFIRM_AFTER_VARIABLE) or InventoryReserved.detail_type
    if wanted not in CONFIRMING_EVENTS:
        raise RuntimeError(f"{CONFIRM_AFTER_VARIABLE} is {wanted!r}; it must be one of {list(CONFIRMING_EVENTS)} "
                           "(fix the function's Environment in the SAM template)")
    return wanted


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
     OutOfStock: on_out_of_stock, PaymentSucceeded: on_payment_succeeded,
     PaymentFailed: on_payment_failed},
    logger,
    idempotency=IdempotentEvents(),  # on the table named by IDEMPOTENCY_TABLE_NAME
)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return consumer(event, context)
