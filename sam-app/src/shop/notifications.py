"""Order status notifications: from a status event (OrderConfirmed, OutOfStock), the message
each subscriber of the order status topic gets, and the attributes its filter policy reads.

One notification carries a text per channel: an email (subject and body) and a short SMS
for the customer, and the shop event itself for other services' queues. SNS picks the one
for each subscription's protocol (MessageStructure json). Nothing here calls AWS.
https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from shop.events import EventEnvelope, OrderConfirmed, OutOfStock
from shop.orders import CATALOGUE, OrderStatus

#: "Subject ... must be less than 100 characters."  https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
MAX_SUBJECT_LENGTH = 99
#: One SMS holds 160 GSM-7 characters; the shop keeps its texts to one message.
#: https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-phone.html
MAX_SMS_LENGTH = 160
#: What signs every message to a customer.
SIGNATURE = "The shop"


@dataclass(frozen=True)
class OrderStatusNotification:
    """What the order status topic carries about one order's new status.

    `attributes` become SNS message attributes, which subscriptions' filter
    policies match: `order_status` and `event_type` always, `customer_id` and
    `total_cents` when the event says them.
    """

    order_id: str
    status: OrderStatus
    event: EventEnvelope
    subject: str
    email: str
    sms: str
    attributes: Mapping[str, str | int] = field(default_factory=dict)


def order_confirmed(confirmed: OrderConfirmed) -> OrderStatusNotification:
    """The customer hears that the order will ship; shipping (and anyone else listening) gets the event."""
    short, total = _short(confirmed.order_id), _euros(confirmed.total_cents)
    return OrderStatusNotification(
        order_id=confirmed.order_id,
        status=OrderStatus.CONFIRMED,
        event=confirmed,
        subject=f"Your order {short} is confirmed",
        email=(f"Hello,\n\nthank you for your order {confirmed.order_id}. Every item is reserved "
               f"for you, and the order will ship soon.\n\nTotal: {total}\n\n{SIGNATURE}"),
        sms=f"{SIGNATURE}: order {short} is confirmed ({total}). It ships soon.",
        attributes=_attributes(confirmed, OrderStatus.CONFIRMED, customer_id=confirmed.customer_id,
                               total_cents=confirmed.total_cents),
    )


def out_of_stock(shortage: OutOfStock) -> OrderStatusNotification:
    """The customer hears that the order cannot be fulfilled, and why; customer service gets the event."""
    short = _short(shortage.order_id)
    product = CATALOGUE.get(shortage.sku, shortage.sku)
    return OrderStatusNotification(
        order_id=shortage.order_id,
        status=OrderStatus.OUT_OF_STOCK,
        event=shortage,
        subject=f"We could not fulfil your order {short}",
        email=(f"Hello,\n\nwe are sorry: your order {shortage.order_id} asked for {shortage.requested} × "
               f"{product} ({shortage.sku}), and we have {shortage.available} left. Nothing was "
               f"reserved and you have not been charged.\n\n{SIGNATURE}"),
        sms=f"{SIGNATURE}: order {short} could not be fulfilled ({shortage.sku} is out of stock). "
            "You have not been charged.",
        attributes=_attributes(shortage, OrderStatus.OUT_OF_STOCK),
    )


#: The notification for each status event.
NOTIFICATIONS = {OrderConfirmed: order_confirmed, OutOfStock: out_of_stock}


def notification_for(event: EventEnvelope) -> OrderStatusNotification:
    """The notification for a status event; ValueError for an event that changes no order status."""
    build = NOTIFICATIONS.get(type(event))  # type: ignore[call-overload]
    if build is None:
        raise ValueError(f"{event.detail_type} is not an order status event; "
                         f"notifications exist for {sorted(m.detail_type for m in NOTIFICATIONS)}")
    return build(event)


def event_message(event: EventEnvelope) -> str:
    """The shop event as services read it: the fields of an EventBridge event that name and
    carry it (source, detail-type, detail), so a service's channel adapter reads it as it
    reads an event from the bus."""
    return json.dumps({"version": "0", "source": event.source, "detail-type": event.detail_type,
                       "detail": json.loads(event.model_dump_json())})


class SnsMessageAttribute(TypedDict):
    DataType: str
    StringValue: str


class SnsPublishRequest(TypedDict):
    """Publish's parameters, as boto3's `sns.publish(**request)` takes them."""

    TopicArn: str
    Subject: str
    Message: str
    MessageStructure: str
    MessageAttributes: dict[str, SnsMessageAttribute]


def to_sns_publish(notification: OrderStatusNotification, topic_arn: str) -> SnsPublishRequest:
    """The Publish request for `notification`: one message per protocol (MessageStructure json).

    `email` for email subscriptions, `sms` for phone numbers, and `default` (the
    shop event) for everything else: SQS queues, Lambda functions, email-json.
    https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
    """
    message = {"default": event_message(notification.event), "email": notification.email,
               "sms": notification.sms}
    return SnsPublishRequest(
        TopicArn=topic_arn,
        Subject=notification.subject[:MAX_SUBJECT_LENGTH],
        Message=json.dumps(message),
        MessageStructure="json",
        MessageAttributes={
            name: SnsMessageAttribute(DataType="Number" if isinstance(value, int) else "String",
                                      StringValue=str(value))
            for name, value in notification.attributes.items()
        },
    )


def _attributes(event: EventEnvelope, status: OrderStatus, **known: Any) -> dict[str, str | int]:
    return {"event_type": event.detail_type, "order_status": status.value,
            **{name: value for name, value in known.items() if value is not None}}


def _short(order_id: str) -> str:
    """What a person reads of an order id (the first 8 characters of a UUID)."""
    return order_id[:8]


def _euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d} EUR"
