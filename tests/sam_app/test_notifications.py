"""Unit tests of the order status notifications (the text per channel and the attributes that
filter policies read) and of the notifications handler, against hand-written fakes (no AWS, no moto)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from shop_fakes import InMemoryPersistenceLayer
from shop.channels import Consumer, IdempotentEvents, NoRoute
from shop.events import EventEnvelope, InventoryReserved, OrderConfirmed, OutOfStock, ReservedLine, to_put_events_entry
from shop.handlers import notifications as handler
from shop.notifications import (
    MAX_SMS_LENGTH,
    event_message,
    notification_for,
    order_confirmed,
    out_of_stock,
    to_sns_publish,
)
from shop.orders import OrderStatus

ORDER_ID = "6f1c2a9e-0000-4000-8000-000000000001"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:shop-OrderStatusTopic"


def confirmed(total_cents: int = 3000) -> OrderConfirmed:
    return OrderConfirmed(order_id=ORDER_ID, customer_id="alice", total_cents=total_cents)


def shortage() -> OutOfStock:
    return OutOfStock(order_id=ORDER_ID, sku="MUG-001", requested=2, available=1)


def eventbridge_event(event: EventEnvelope) -> dict[str, Any]:
    """What a rule hands its target. https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html"""
    entry = to_put_events_entry(event, "shop")
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": entry["DetailType"], "source": entry["Source"],
            "account": "123456789012", "time": "2025-11-28T09:00:00Z", "region": "us-east-1",
            "resources": [], "detail": json.loads(entry["Detail"])}


# --- fakes --------------------------------------------------------------------


@dataclass
class FakeLambdaContext:
    function_name: str = "shop-NotificationFunction"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:shop-NotificationFunction"
    aws_request_id: str = "request-1"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


class FakeSnsClient:
    """Keeps each Publish request; fails the next `failures` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.failures = failures

    def publish(self, **request: Any) -> dict[str, str]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("SNS is unreachable")
        self.requests.append(request)
        return {"MessageId": f"message-{len(self.requests)}"}


# --- the notifications --------------------------------------------------------


class TestOrderConfirmed:
    def test_tells_the_customer_the_order_ships_with_its_total(self) -> None:
        notification = order_confirmed(confirmed(3050))
        assert notification.status is OrderStatus.CONFIRMED
        assert notification.subject == "Your order 6f1c2a9e is confirmed"
        assert ORDER_ID in notification.email and "30.50 EUR" in notification.email
        assert "6f1c2a9e" in notification.sms and "30.50 EUR" in notification.sms

    def test_its_attributes_name_the_status_the_event_the_customer_and_the_total(self) -> None:
        assert dict(order_confirmed(confirmed()).attributes) == {
            "event_type": "OrderConfirmed", "order_status": "CONFIRMED", "customer_id": "alice", "total_cents": 3000}


class TestOutOfStock:
    def test_tells_the_customer_what_is_missing_and_that_nothing_was_charged(self) -> None:
        notification = out_of_stock(shortage())
        assert notification.status is OrderStatus.OUT_OF_STOCK
        assert notification.subject == "We could not fulfil your order 6f1c2a9e"
        assert "2 × Idempotent coffee mug (MUG-001)" in notification.email
        assert "we have 1 left" in notification.email and "not been charged" in notification.email
        assert "MUG-001" in notification.sms

    def test_its_attributes_name_the_status_and_the_event(self) -> None:
        # OutOfStock names neither the customer nor the total, so neither attribute is set.
        assert dict(out_of_stock(shortage()).attributes) == {"event_type": "OutOfStock", "order_status": "OUT_OF_STOCK"}


class TestNotificationFor:
    @pytest.mark.parametrize("event", [confirmed(), shortage()], ids=lambda e: e.detail_type)
    def test_each_status_event_has_its_notification(self, event: EventEnvelope) -> None:
        assert notification_for(event).event == event

    def test_an_event_that_changes_no_status_is_refused(self) -> None:
        with pytest.raises(ValueError, match="InventoryReserved is not an order status event"):
            notification_for(InventoryReserved(order_id=ORDER_ID, lines=(ReservedLine(sku="MUG-001", quantity=1),)))

    @pytest.mark.parametrize("event", [confirmed(999_999_99), shortage()], ids=lambda e: e.detail_type)
    def test_an_sms_fits_in_one_text_message(self, event: EventEnvelope) -> None:
        """https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-phone.html"""
        assert len(notification_for(event).sms) <= MAX_SMS_LENGTH


class TestToSnsPublish:
    def test_gives_each_protocol_its_own_message(self) -> None:
        """MessageStructure json: `email`, `sms`, and `default` for every other protocol.
        https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
        """
        notification = order_confirmed(confirmed())
        request = to_sns_publish(notification, TOPIC_ARN)
        assert (request["TopicArn"], request["MessageStructure"], request["Subject"]) == (
            TOPIC_ARN, "json", notification.subject)
        message = json.loads(request["Message"])
        assert (message["email"], message["sms"]) == (notification.email, notification.sms)
        assert message["default"] == event_message(notification.event)

    def test_numbers_are_number_attributes_so_filter_policies_can_compare_them(self) -> None:
        """A numeric filter policy matches Number attributes only.
        https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html
        """
        attributes = to_sns_publish(order_confirmed(confirmed()), TOPIC_ARN)["MessageAttributes"]
        assert attributes["total_cents"] == {"DataType": "Number", "StringValue": "3000"}
        assert attributes["order_status"] == {"DataType": "String", "StringValue": "CONFIRMED"}

    def test_the_services_message_reads_as_the_event_from_the_bus(self) -> None:
        """A service subscribed through SQS (raw delivery) handles the body with the same channel adapter."""
        event = shortage()
        received: list[EventEnvelope] = []
        consumer = Consumer({OutOfStock: received.append}, handler.logger)
        body = json.loads(to_sns_publish(out_of_stock(event), TOPIC_ARN)["Message"])["default"]
        consumer.handle(body)
        assert received == [event]


# --- the handler -----------------------------------------------------------------


@pytest.fixture
def sns(monkeypatch: pytest.MonkeyPatch) -> FakeSnsClient:
    client = FakeSnsClient()
    monkeypatch.setattr(handler, "publisher", handler.SnsNotificationPublisher(TOPIC_ARN, client))
    monkeypatch.setattr(handler.consumer, "idempotency", IdempotentEvents(InMemoryPersistenceLayer()))
    return client


class TestNotificationsHandler:
    def test_publishes_one_notification_per_status_event_to_the_topic(self, sns: FakeSnsClient) -> None:
        # given an OrderConfirmed that a rule delivers
        result = handler.lambda_handler(eventbridge_event(confirmed()), FakeLambdaContext())
        # then one Publish to the topic, with the status in the attributes
        [request] = sns.requests
        assert request["TopicArn"] == TOPIC_ARN
        assert request["MessageAttributes"]["order_status"]["StringValue"] == "CONFIRMED"
        assert result == {"order_id": ORDER_ID, "order_status": "CONFIRMED", "message_id": "message-1"}

    def test_the_same_event_delivered_twice_is_published_once(self, sns: FakeSnsClient) -> None:
        """At-least-once delivery must not email the customer twice.
        https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/
        """
        event = eventbridge_event(shortage())
        first = handler.lambda_handler(event, FakeLambdaContext())
        again = handler.lambda_handler(event, FakeLambdaContext())
        assert len(sns.requests) == 1 and again == first

    def test_a_failed_publish_raises_so_that_lambda_retries_and_the_retry_publishes(self, sns: FakeSnsClient) -> None:
        """https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html"""
        sns.failures = 1
        event = eventbridge_event(confirmed())
        with pytest.raises(ConnectionError):
            handler.lambda_handler(event, FakeLambdaContext())
        handler.lambda_handler(event, FakeLambdaContext())
        assert len(sns.requests) == 1

    def test_an_event_without_a_notification_has_no_route(self, sns: FakeSnsClient) -> None:
        reserved = InventoryReserved(order_id=ORDER_ID, lines=(ReservedLine(sku="MUG-001", quantity=1),))
        with pytest.raises(NoRoute):
            handler.lambda_handler(eventbridge_event(reserved), FakeLambdaContext())
        assert sns.requests == []

    def test_the_handler_remembers_handled_events_in_the_idempotency_table(self) -> None:
        """The wiring itself (the other tests put an in-memory store in its place)."""
        assert isinstance(handler.consumer.idempotency, IdempotentEvents)
        assert set(handler.consumer.routes) == {OrderConfirmed, OutOfStock}

    def test_a_missing_topic_is_a_clear_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv(handler.TOPIC_VARIABLE, raising=False)
        with pytest.raises(RuntimeError, match="ORDER_STATUS_TOPIC_ARN is not set"):
            handler.SnsNotificationPublisher(client=FakeSnsClient())
