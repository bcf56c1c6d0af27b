"""Lambda entrypoint of the order processor: takes OrderPlaced events from the orders
queue in batches and records each accepted order, reporting failed messages one by one."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shop.adapters.dynamodb import DynamoDBOrderRepository
from shop.events import InvalidEvent, from_eventbridge
from shop.orders import OrderRejected, OrderRepository, accept_order, record_order

logger = Logger()  # service name from POWERTOOLS_SERVICE_NAME
processor = BatchProcessor(event_type=EventType.SQS)

# Made on the first record, so importing the handler needs no table; tests set a fake.
repository: OrderRepository | None = None


def record_handler(record: SQSRecord) -> None:
    """One message: the SQS body is an EventBridge event. Raising fails only this message,
    which SQS redelivers until maxReceiveCount moves it to the DLQ."""
    global repository
    try:
        order = from_eventbridge(record.body)
    except InvalidEvent as error:
        logger.warning(
            "Invalid event", extra={"message_id": record.message_id, "reason": str(error)}
        )
        raise
    log_keys = {"correlation_id": order.correlation_id, "order_id": order.order_id}
    try:
        accepted = accept_order(order)
    except OrderRejected as rejected:
        logger.warning("Order rejected", extra={**log_keys, "reasons": rejected.reasons})
        raise
    if repository is None:
        repository = DynamoDBOrderRepository()
    if record_order(repository, accepted):
        logger.info("Order recorded", extra=log_keys)
    else:
        logger.info("Order already recorded; redelivery ignored", extra=log_keys)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
