"""Lambda entrypoint of the order processor: takes OrderPlaced events from the orders
queue in batches and records each accepted order, reporting failed messages one by one."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shop.adapters.dynamodb import DynamoDBOrderRepository
from shop.channels import Consumer
from shop.events import OrderPlaced
from shop.orders import OrderRejected, OrderRepository, accept_order, record_order

logger = Logger()  # service name from POWERTOOLS_SERVICE_NAME

# Made on the first record, so importing the handler needs no table; tests set a fake.
repository: OrderRepository | None = None


def on_order_placed(order: OrderPlaced) -> None:
    """Record an accepted order once. Raising fails only this message, which SQS
    redelivers until maxReceiveCount moves it to the DLQ."""
    global repository
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


# The channel adapter unwraps the SQS batch (its bodies are EventBridge events) and
# reports failed messages one by one (ReportBatchItemFailures in the template).
consumer = Consumer({OrderPlaced: on_order_placed}, logger)


def record_handler(record: SQSRecord) -> None:
    """One message of the batch: its body is an EventBridge event."""
    consumer.sqs_record(record)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return consumer(event, context)
