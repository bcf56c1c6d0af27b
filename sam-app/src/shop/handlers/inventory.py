"""Lambda entrypoint of the inventory service. An EventBridge rule invokes it asynchronously
with each OrderPlaced: it reserves stock for every line or none, and publishes
InventoryReserved or OutOfStock. From chapter 7, another rule brings OrderCancelled: the
order's reserved stock goes back, once. A redelivered event has one effect.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from shop.adapters.dynamodb import DynamoDBStockRepository
from shop.adapters.eventbridge import EventBridgePublisher, EventPublisher
from shop.channels import Consumer, IdempotentEvents
from shop.events import OrderCancelled, OrderPlaced
from shop.inventory import StockRepository, release_inventory, reserve_inventory

logger = Logger()  # service name from POWERTOOLS_SERVICE_NAME

# Made on first use, so importing the handler needs no table or bus; tests set fakes.
stock: StockRepository | None = None
publisher: EventPublisher | None = None


def on_order_placed(order: OrderPlaced) -> dict[str, str]:
    """Reserve the order's stock and publish the outcome. A rejected order raises
    OrderRejected: Lambda retries it, then sends it to the OnFailure destination."""
    outcome = reserve_inventory(_stock(), order)
    _publisher().publish(outcome)
    logger.info(outcome.detail_type, extra={"correlation_id": order.correlation_id,
                                            "order_id": order.order_id})
    return {"order_id": order.order_id, "published": outcome.detail_type,
            "event_id": outcome.event_id}


def on_order_cancelled(cancelled: OrderCancelled) -> dict[str, Any]:
    """Release the cancelled order's stock (the compensation of its reservation); nothing to publish."""
    released = release_inventory(_stock(), cancelled)
    logger.info("Stock released" if released else "Nothing to release",
                extra={"correlation_id": cancelled.correlation_id, "order_id": cancelled.order_id})
    return {"order_id": cancelled.order_id, "released": released}


def _stock() -> StockRepository:
    global stock
    if stock is None:
        stock = DynamoDBStockRepository()
    return stock


def _publisher() -> EventPublisher:
    global publisher
    if publisher is None:
        publisher = EventBridgePublisher()
    return publisher


consumer = Consumer(
    {OrderPlaced: on_order_placed, OrderCancelled: on_order_cancelled},
    logger,
    idempotency=IdempotentEvents(),  # on the table named by IDEMPOTENCY_TABLE_NAME
)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return consumer(event, context)
