"""Lambda entrypoint of the order status history. It drains the FIFO OrderStatusQueue and
appends each lifecycle event's status to its order's history. On a FIFO queue, Powertools'
SqsFifoPartialProcessor stops at the first failed message and returns it with every message
after it, so nothing overtakes a message that failed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from shop.adapters.order_history import DynamoDBStatusHistory
from shop.channels import Consumer
from shop.events import (
    EventEnvelope,
    InventoryReserved,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OutOfStock,
)
from shop.order_history import StatusHistory, record_status_change

logger = Logger()  # service name from POWERTOOLS_SERVICE_NAME

# Made on first use, so importing the handler needs no table; tests set fakes.
history: StatusHistory | None = None


def on_lifecycle_event(event: EventEnvelope) -> dict[str, str]:
    change = record_status_change(_history(), event)
    logger.info("Status recorded", extra={"order_id": change.order_id, "status": change.status})
    return {"order_id": change.order_id, "status": change.status}


def _history() -> StatusHistory:
    global history
    if history is None:
        history = DynamoDBStatusHistory()
    return history


# No Powertools Idempotency: the history's conditional append already gives a
# redelivered event one effect (its event_id is kept with the history).
consumer = Consumer(
    {OrderPlaced: on_lifecycle_event, InventoryReserved: on_lifecycle_event,
     OutOfStock: on_lifecycle_event, OrderConfirmed: on_lifecycle_event,
     OrderCancelled: on_lifecycle_event},
    logger,
)
fifo_batch = SqsFifoPartialProcessor()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return process_partial_response(
        event=event, record_handler=consumer.sqs_record, processor=fifo_batch, context=context
    )
