"""Lambda entrypoint of the notifications service. An EventBridge rule invokes it asynchronously
with each order status event (OrderConfirmed, OutOfStock): it publishes one notification to
the order status topic, named by ORDER_STATUS_TOPIC_ARN, and SNS fans it out to every
subscriber whose filter policy matches. A redelivered event is published once.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from shop.channels import Consumer, IdempotentEvents
from shop.events import OrderConfirmed, OutOfStock
from shop.notifications import OrderStatusNotification, notification_for, to_sns_publish

TOPIC_VARIABLE = "ORDER_STATUS_TOPIC_ARN"

logger = Logger()  # service name from POWERTOOLS_SERVICE_NAME


class NotificationPublisher(Protocol):
    """Where notifications go; returns the message id."""

    def publish(self, notification: OrderStatusNotification) -> str: ...


class SnsNotificationPublisher:
    """Publishes to the topic named by ORDER_STATUS_TOPIC_ARN (the template sets it)."""

    def __init__(self, topic_arn: str | None = None, client: Any = None) -> None:
        topic_arn = topic_arn or os.environ.get(TOPIC_VARIABLE)
        if not topic_arn:
            raise RuntimeError(f"{TOPIC_VARIABLE} is not set: the function's Environment in the SAM "
                               "template names the order status topic")
        self.topic_arn = topic_arn
        self.client = client or boto3.client("sns")

    def publish(self, notification: OrderStatusNotification) -> str:
        return str(self.client.publish(**to_sns_publish(notification, self.topic_arn))["MessageId"])


# Made on first use, so importing the handler needs no topic; tests set a fake.
publisher: NotificationPublisher | None = None


def on_status_changed(event: OrderConfirmed | OutOfStock) -> dict[str, str]:
    """Publish the order's new status once; SNS does the fan-out."""
    global publisher
    notification = notification_for(event)
    if publisher is None:
        publisher = SnsNotificationPublisher()
    message_id = publisher.publish(notification)
    logger.info("Notification published", extra={"correlation_id": event.correlation_id,
                                                  "order_id": notification.order_id,
                                                  "order_status": notification.status.value})
    return {"order_id": notification.order_id, "order_status": notification.status.value,
            "message_id": message_id}


consumer = Consumer(
    {OrderConfirmed: on_status_changed, OutOfStock: on_status_changed},
    logger,
    idempotency=IdempotentEvents(),  # a redelivered event must not email the customer twice
)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return consumer(event, context)
