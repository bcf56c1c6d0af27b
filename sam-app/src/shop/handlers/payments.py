"""Lambda entrypoint of the payments service. An EventBridge rule puts OrderPlaced and
InventoryReserved on PaymentsQueue, and Lambda polls it: OrderPlaced records the amount
due, InventoryReserved charges it once and publishes PaymentSucceeded or PaymentFailed.

A message that fails (the gateway was unavailable, or rejected the request) is reported
in batchItemFailures, and its visibility timeout is set with exponential backoff from its
receive count, so that retries spread out instead of hammering a struggling gateway. After
maxReceiveCount receives, SQS moves it to PaymentsDLQ.
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from shop.adapters.eventbridge import EventBridgePublisher, EventPublisher
from shop.adapters.payments import DynamoDBPaymentLedger
from shop.channels import Consumer
from shop.events import InventoryReserved, OrderPlaced
from shop.payments import (
    PaymentGateway,
    PaymentLedger,
    SimulatedGateway,
    backoff_seconds,
    record_payment_due,
    take_payment,
)

logger = Logger()  # service name from POWERTOOLS_SERVICE_NAME

QUEUE_URL_VARIABLE = "PAYMENTS_QUEUE_URL"

# Made on first use, so importing the handler needs no table, bus or gateway; tests set fakes.
ledger: PaymentLedger | None = None
gateway: PaymentGateway | None = None
publisher: EventPublisher | None = None
sqs_client: Any = None


def on_order_placed(order: OrderPlaced) -> dict[str, Any]:
    """Note the amount due; nothing is charged before the stock is reserved."""
    recorded = record_payment_due(_ledger(), order)
    return {"order_id": order.order_id, "due_cents": order.total_cents, "recorded": recorded}


def on_inventory_reserved(reserved: InventoryReserved) -> dict[str, str]:
    """Charge the order once and publish the outcome. A transient failure raises: the message is retried."""
    outcome = take_payment(_ledger(), _gateway(), reserved, now=time.time())
    _publisher().publish(outcome)
    logger.info(outcome.detail_type, extra={"correlation_id": reserved.correlation_id,
                                            "order_id": reserved.order_id})
    return {"order_id": reserved.order_id, "published": outcome.detail_type, "event_id": outcome.event_id}


# No Powertools Idempotency here: the ledger, keyed on the order_id, is the idempotency
# record of the one side effect that matters (the charge).
consumer = Consumer({OrderPlaced: on_order_placed, InventoryReserved: on_inventory_reserved}, logger)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    try:
        response = consumer(event, context)
    except BatchProcessingError:
        # Every message failed: report them all, so that each one gets its backoff too.
        response = {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}
    back_off(event["Records"], response)
    return response


def back_off(records: list[Mapping[str, Any]], response: Mapping[str, Any]) -> None:
    """Keep each failed message invisible for backoff_seconds(its receive count).

    ChangeMessageVisibility counts from now: the message comes back after that many
    seconds instead of after the queue's VisibilityTimeout.
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html
    """
    failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    for record in records:
        if record["messageId"] not in failed:
            continue
        receives = int(record["attributes"]["ApproximateReceiveCount"])
        delay = backoff_seconds(receives)
        try:
            _sqs().change_message_visibility(QueueUrl=_queue_url(), ReceiptHandle=record["receiptHandle"],
                                             VisibilityTimeout=delay)
        except ClientError as error:
            # The message still comes back, after the queue's own visibility timeout.
            logger.warning("Backoff not set", extra={"message_id": record["messageId"], "error": str(error)})
            continue
        logger.info("Retry later", extra={"message_id": record["messageId"], "receive_count": receives,
                                          "retry_in_seconds": delay})


def _queue_url() -> str:
    url = os.environ.get(QUEUE_URL_VARIABLE)
    if not url:
        raise RuntimeError(f"{QUEUE_URL_VARIABLE} is not set: the function's Environment in the SAM "
                           "template names the payments queue")
    return url


def _ledger() -> PaymentLedger:
    global ledger
    if ledger is None:
        ledger = DynamoDBPaymentLedger()
    return ledger


def _gateway() -> PaymentGateway:
    global gateway
    if gateway is None:
        gateway = SimulatedGateway.from_environment(os.environ)
    # The merchant account's limit is read on every call: changing the function's
    # configuration is the fix for orders above it (then redrive the DLQ).
    if isinstance(gateway, SimulatedGateway) and "PAYMENT_MAX_AMOUNT_CENTS" in os.environ:
        gateway.max_amount_cents = SimulatedGateway.from_environment(os.environ).max_amount_cents
    return gateway


def _publisher() -> EventPublisher:
    global publisher
    if publisher is None:
        publisher = EventBridgePublisher()
    return publisher


def _sqs() -> Any:
    global sqs_client
    if sqs_client is None:
        sqs_client = boto3.client("sqs")
    return sqs_client
