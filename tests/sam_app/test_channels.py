"""Unit tests of the channel adapter (one domain function per shop event, whichever envelope
brings it), of Idempotency per event, of the follow-up event publisher, and of the orders and
inventory handlers wired with them; all against hand-written fakes (no AWS, no moto)."""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from shop_fakes import InMemoryPersistenceLayer
from shop.adapters.eventbridge import EventBridgePublisher, PublishFailed
from shop.channels import Consumer, IdempotentEvents, NoRoute, UnknownChannel, channel_of
from shop.events import (
    EventEnvelope,
    InvalidEvent,
    InventoryReserved,
    OrderConfirmed,
    OrderPlaced,
    OutOfStock,
    PutEventsEntry,
    ReservedLine,
    to_put_events_entry,
)
from shop.handlers import inventory as inventory_handler
from shop.handlers import orders as orders_handler
from shop.inventory import Shortage
from shop.orders import AcceptedOrder, OrderNotFound, OrderRejected, OrderStatus, RecordedOrder

# --- builders: the envelopes Lambda hands a function ---------------------------------


def order_placed(order_id: str = "order-1", sku: str = "BOOK-001", quantity: int = 1) -> OrderPlaced:
    return OrderPlaced.parse({
        "order_id": order_id, "customer_id": "customer-1",
        "lines": [{"sku": sku, "quantity": quantity, "unit_price_cents": 1000}],
    })


def eventbridge_event(event: EventEnvelope) -> dict[str, Any]:
    """What a rule hands its target: the envelope, with the shop event in `detail`.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html"""
    entry = to_put_events_entry(event, "shop")
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": entry["DetailType"],
        "source": entry["Source"], "account": "123456789012", "time": "2025-11-28T09:00:00Z",
        "region": "us-east-1", "resources": [], "detail": json.loads(entry["Detail"]),
    }


def sqs_batch(*bodies: str) -> dict[str, Any]:
    """https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html"""
    return {"Records": [{
        "messageId": f"m-{number}", "receiptHandle": f"r-{number}", "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764320400000",
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1764320400001"},
        "messageAttributes": {}, "md5OfBody": "-", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1",
    } for number, body in enumerate(bodies, start=1)]}


def sns_notification(message: str) -> dict[str, Any]:
    """https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html"""
    return {"Records": [{
        "EventVersion": "1.0", "EventSource": "aws:sns",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:t:1",
        "Sns": {"Type": "Notification", "MessageId": "sns-1", "Message": message,
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Subject": None,
                "Timestamp": "2025-11-28T09:00:00.000Z", "MessageAttributes": {}},
    }]}


def kinesis_batch(*payloads: str) -> dict[str, Any]:
    """https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html"""
    return {"Records": [{
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "order-1", "sequenceNumber": f"{number}",
                    "data": base64.b64encode(payload.encode()).decode(), "approximateArrivalTimestamp": 1764320400.0},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"shardId-000000000000:{number}",
        "eventName": "aws:kinesis:record", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/r",
    } for number, payload in enumerate(payloads, start=1)]}


CHANNELS: dict[str, Callable[[EventEnvelope], dict[str, Any]]] = {
    "eventbridge": eventbridge_event,
    "sqs": lambda event: sqs_batch(json.dumps(eventbridge_event(event))),
    "sns": lambda event: sns_notification(json.dumps(eventbridge_event(event))),
    "kinesis": lambda event: kinesis_batch(json.dumps(eventbridge_event(event))),
}


# --- fakes --------------------------------------------------------------------


@dataclass
class FakeLambdaContext:
    function_name: str = "shop-InventoryFunction"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:shop-InventoryFunction"
    aws_request_id: str = "request-1"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@dataclass
class Recorder:
    """A domain function that remembers what it was given; it fails for the order ids in `fail_for`."""

    calls: list[EventEnvelope] = field(default_factory=list)
    fail_for: set[str] = field(default_factory=set)

    def __call__(self, event: EventEnvelope) -> dict[str, str]:
        self.calls.append(event)
        if getattr(event, "order_id", None) in self.fail_for:
            raise RuntimeError(f"cannot handle {event.order_id}")  # type: ignore[attr-defined]
        return {"handled": event.event_id}


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def consumer_with(routes: Mapping[type[EventEnvelope], Callable[[Any], object]],
                  idempotency: IdempotentEvents | None = None) -> tuple[Consumer, io.StringIO]:
    stream = io.StringIO()
    # A service name of its own: Powertools loggers of one service share their handler.
    logger = Logger(service=f"test-{uuid.uuid4().hex[:8]}", stream=stream)
    return Consumer(routes, logger, idempotency), stream


class FakeEventsClient:
    """Records put_events calls; refuses the entries `refuse` picks, as EventBridge reports it."""

    def __init__(self, refuse: Callable[[PutEventsEntry], bool] = lambda entry: False) -> None:
        self.calls: list[list[PutEventsEntry]] = []
        self.refuse = refuse

    def put_events(self, *, Entries: Sequence[PutEventsEntry]) -> Mapping[str, Any]:
        self.calls.append(list(Entries))
        results = [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"} if self.refuse(entry)
                   else {"EventId": str(uuid.uuid4())} for entry in Entries]
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


class FakePublisher:
    """Keeps what it was asked to publish; fails the next `failures` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.published: list[EventEnvelope] = []
        self.failures = failures

    def publish(self, *events: EventEnvelope) -> None:
        if self.failures:
            self.failures -= 1
            raise PublishFailed("EventBridge refused 1 of 1 events")
        self.published += events


class FakeStock:
    """Stock in a dict; an order is reserved once, as the DynamoDB transaction ensures."""

    def __init__(self, **levels: int) -> None:
        self.levels = dict(levels)
        self.reserved: set[str] = set()

    def reserve(self, order_id: str, lines: Sequence[ReservedLine]) -> Shortage | None:
        if order_id in self.reserved:
            return None
        for line in lines:
            if self.levels.get(line.sku, 0) < line.quantity:
                return Shortage(line.sku, line.quantity, self.levels.get(line.sku, 0))
        for line in lines:
            self.levels[line.sku] -= line.quantity
        self.reserved.add(order_id)
        return None

    def set_stock(self, sku: str, quantity: int) -> None:
        self.levels[sku] = quantity

    def stock_of(self, sku: str) -> int:
        return self.levels.get(sku, 0)


class FakeOrders:
    """Orders in a dict: add once, change status only from the expected one."""

    def __init__(self) -> None:
        self.orders: dict[str, RecordedOrder] = {}

    def add(self, order: AcceptedOrder) -> bool:
        if order.order_id in self.orders:
            return False
        self.orders[order.order_id] = RecordedOrder(order.order_id, order.customer_id, order.total_cents,
                                                    OrderStatus.PLACED)
        return True

    def change_status(self, order_id: str, new: OrderStatus, *, expected: OrderStatus) -> RecordedOrder:
        if order_id not in self.orders:
            raise OrderNotFound(order_id)
        before = self.orders[order_id]
        if before.status == expected:
            self.orders[order_id] = RecordedOrder(order_id, before.customer_id, before.total_cents, new)
        return before


# --- channels -------------------------------------------------------------------


class TestChannelOf:
    @pytest.mark.parametrize("channel", CHANNELS)
    def test_names_the_service_that_delivered_the_event(self, channel: str) -> None:
        assert channel_of(CHANNELS[channel](order_placed())) == channel

    @pytest.mark.parametrize("event", [{}, {"Records": []}, {"Records": [{"eventSource": "aws:s3"}]}, [1], "text"])
    def test_anything_else_is_an_unknown_channel(self, event: Any) -> None:
        with pytest.raises(UnknownChannel, match="not an EventBridge event, nor an SQS, SNS or Kinesis batch"):
            channel_of(event)


class TestConsumer:
    @pytest.mark.parametrize("channel", CHANNELS)
    def test_the_same_domain_function_gets_the_same_event_whichever_channel_brings_it(self, channel: str) -> None:
        """Business logic written once: only the envelope differs."""
        placed, recorder = order_placed(), Recorder()
        consumer, _ = consumer_with({OrderPlaced: recorder})
        consumer(CHANNELS[channel](placed), FakeLambdaContext())
        assert recorder.calls == [placed]

    def test_each_event_type_goes_to_its_own_route(self) -> None:
        placed, reserved = Recorder(), Recorder()
        consumer, _ = consumer_with({OrderPlaced: placed, InventoryReserved: reserved})
        event = InventoryReserved(order_id="order-1", lines=(ReservedLine(sku="BOOK-001", quantity=1),))
        consumer(eventbridge_event(event), FakeLambdaContext())
        assert (placed.calls, reserved.calls) == ([], [event])

    def test_a_direct_invocation_returns_what_the_domain_function_returned(self) -> None:
        placed = order_placed()
        consumer, _ = consumer_with({OrderPlaced: Recorder()})
        assert consumer(eventbridge_event(placed), FakeLambdaContext()) == {"handled": placed.event_id}

    def test_an_sqs_batch_reports_each_failed_message_alone(self) -> None:
        """https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html"""
        # given a batch: a good order, an order the domain fails, a body that is not JSON, an unrouted event
        recorder = Recorder(fail_for={"order-2"})
        consumer, _ = consumer_with({OrderPlaced: recorder})
        confirmed = OrderConfirmed(order_id="order-4", customer_id="c", total_cents=1)
        batch = sqs_batch(*(json.dumps(eventbridge_event(event)) for event in (order_placed("order-1"), order_placed("order-2"))),
                          "not json", json.dumps(eventbridge_event(confirmed)))
        # when the consumer handles it
        response = consumer(batch, FakeLambdaContext())
        # then only the three failed messages return to the queue
        assert response == {"batchItemFailures": [{"itemIdentifier": "m-2"}, {"itemIdentifier": "m-3"},
                                                  {"itemIdentifier": "m-4"}]}
        assert [event.order_id for event in recorder.calls] == ["order-1", "order-2"]  # type: ignore[attr-defined]

    def test_a_kinesis_batch_reports_each_failed_record_by_sequence_number(self) -> None:
        """https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html"""
        consumer, _ = consumer_with({OrderPlaced: Recorder(fail_for={"order-1"})})
        batch = kinesis_batch(*(json.dumps(eventbridge_event(order_placed(o))) for o in ("order-1", "order-2")))
        assert consumer(batch, FakeLambdaContext()) == {"batchItemFailures": [{"itemIdentifier": "1"}]}

    @pytest.mark.parametrize("channel", ["eventbridge", "sns"])
    def test_a_failure_of_an_asynchronous_invocation_is_raised_so_that_lambda_retries(self, channel: str) -> None:
        """https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html"""
        consumer, _ = consumer_with({OrderPlaced: Recorder(fail_for={"order-1"})})
        with pytest.raises(RuntimeError, match="cannot handle order-1"):
            consumer(CHANNELS[channel](order_placed("order-1")), FakeLambdaContext())

    def test_an_event_without_a_route_is_an_invalid_event_naming_the_routes(self) -> None:
        consumer, stream = consumer_with({OrderPlaced: Recorder(), OutOfStock: Recorder()})
        confirmed = OrderConfirmed(order_id="order-1", customer_id="c", total_cents=1)
        event = eventbridge_event(confirmed)
        with pytest.raises(NoRoute, match=r"OrderConfirmed has no route here; .*\['OrderPlaced', 'OutOfStock'\]"):
            consumer(event, FakeLambdaContext())
        [line] = [line for line in log_lines(stream) if line["message"] == "Invalid event"]
        assert line["eventbridge_id"] == event["id"]

    def test_an_invalid_event_is_logged_with_its_message_id_and_the_reason(self) -> None:
        consumer, stream = consumer_with({OrderPlaced: Recorder()})
        body = eventbridge_event(order_placed())
        del body["detail"]["customer_id"]
        good = json.dumps(eventbridge_event(order_placed("order-2")))
        consumer(sqs_batch(json.dumps(body), good), FakeLambdaContext())
        [line] = [line for line in log_lines(stream) if line["message"] == "Invalid event"]
        assert (line["level"], line["message_id"]) == ("WARNING", "m-1")
        assert line["reason"] == "OrderPlaced is invalid: customer_id: Field required"

    def test_an_event_that_is_not_a_shop_event_is_invalid(self) -> None:
        consumer, _ = consumer_with({OrderPlaced: Recorder()})
        event = eventbridge_event(order_placed()) | {"detail-type": "CustomerUpdated"}
        with pytest.raises(InvalidEvent, match="'CustomerUpdated' is not a shop event"):
            consumer(event, FakeLambdaContext())


class TestIdempotentEvents:
    """https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/"""

    def test_the_same_event_delivered_twice_runs_once_and_both_get_the_first_result(self) -> None:
        recorder = Recorder()
        consumer, _ = consumer_with({OrderPlaced: recorder}, IdempotentEvents(InMemoryPersistenceLayer()))
        placed = order_placed()
        first = consumer(eventbridge_event(placed), FakeLambdaContext())
        # EventBridge delivers it again: a new envelope (another `id`), the same shop event
        again = consumer(eventbridge_event(placed), FakeLambdaContext())
        assert len(recorder.calls) == 1
        assert again == first == {"handled": placed.event_id}

    def test_the_key_is_the_event_id_so_it_holds_across_channels(self) -> None:
        recorder = Recorder()
        consumer, _ = consumer_with({OrderPlaced: recorder}, IdempotentEvents(InMemoryPersistenceLayer()))
        placed = order_placed()
        consumer(CHANNELS["eventbridge"](placed), FakeLambdaContext())
        assert consumer(CHANNELS["sqs"](placed), FakeLambdaContext()) == {"batchItemFailures": []}
        assert len(recorder.calls) == 1

    def test_an_event_published_again_with_the_same_event_id_runs_once(self) -> None:
        """A producer's retry publishes the same event (same event_id) with a later occurred_at:
        the key is the event_id alone, not the whole payload."""
        recorder = Recorder()
        consumer, _ = consumer_with({OrderPlaced: recorder}, IdempotentEvents(InMemoryPersistenceLayer()))
        placed = order_placed()
        republished = placed.model_copy(update={"occurred_at": datetime(2030, 1, 1, tzinfo=timezone.utc)})
        consumer(eventbridge_event(placed), FakeLambdaContext())
        consumer(eventbridge_event(republished), FakeLambdaContext())
        assert len(recorder.calls) == 1

    def test_while_an_event_runs_its_record_is_in_progress_until_the_invocation_times_out(self) -> None:
        """A second delivery meanwhile is refused; after the timeout, a retry may run it again."""
        store = InMemoryPersistenceLayer()
        seen: list[tuple[str, float]] = []

        def look_at_the_record(event: OrderPlaced) -> None:
            [record] = store.records.values()
            seen.append((record.status, record.in_progress_expiry_timestamp / 1000 - datetime.now().timestamp()))

        consumer, _ = consumer_with({OrderPlaced: look_at_the_record}, IdempotentEvents(store))
        consumer(eventbridge_event(order_placed()), FakeLambdaContext())  # 10 s left, says the context
        [(status, seconds_left)] = seen
        assert status == "INPROGRESS"
        assert seconds_left == pytest.approx(10, abs=1)

    def test_two_events_of_the_same_order_both_run(self) -> None:
        """Idempotency is per event, not per order: a second OrderPlaced is a second event."""
        recorder = Recorder()
        consumer, _ = consumer_with({OrderPlaced: recorder}, IdempotentEvents(InMemoryPersistenceLayer()))
        consumer(eventbridge_event(order_placed("order-1")), FakeLambdaContext())
        consumer(eventbridge_event(order_placed("order-1")), FakeLambdaContext())
        assert len(recorder.calls) == 2

    def test_a_failed_attempt_is_not_remembered_so_the_retry_runs(self) -> None:
        recorder = Recorder(fail_for={"order-1"})
        store = InMemoryPersistenceLayer()
        consumer, _ = consumer_with({OrderPlaced: recorder}, IdempotentEvents(store))
        event = eventbridge_event(order_placed("order-1"))
        with pytest.raises(RuntimeError):
            consumer(event, FakeLambdaContext())
        recorder.fail_for.clear()
        assert consumer(event, FakeLambdaContext()) == {"handled": event["detail"]["event_id"]}
        assert len(recorder.calls) == 2

    def test_records_are_kept_per_function(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Two functions handling the same event each handle it once (the key starts with the function's name)."""
        store, recorder = InMemoryPersistenceLayer(), Recorder()
        placed = order_placed()
        for function_name in ("shop-OrderProcessingFunction", "shop-InventoryFunction"):
            monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", function_name)
            consumer, _ = consumer_with({OrderPlaced: recorder}, IdempotentEvents(store))
            consumer(eventbridge_event(placed), FakeLambdaContext(function_name=function_name))
        assert len(recorder.calls) == 2
        assert len(store.records) == 2

    def test_a_record_expires_after_a_day(self) -> None:
        store = InMemoryPersistenceLayer()
        consumer, _ = consumer_with({OrderPlaced: Recorder()}, IdempotentEvents(store))
        consumer(eventbridge_event(order_placed()), FakeLambdaContext())
        [record] = store.records.values()
        assert record.expiry_timestamp - datetime.now(timezone.utc).timestamp() == pytest.approx(24 * 3600, abs=5)

    def test_a_missing_table_name_is_a_clear_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("IDEMPOTENCY_TABLE_NAME", raising=False)
        consumer, _ = consumer_with({OrderPlaced: Recorder()}, IdempotentEvents())
        with pytest.raises(RuntimeError, match="IDEMPOTENCY_TABLE_NAME is not set"):
            consumer(eventbridge_event(order_placed()), FakeLambdaContext())


# --- publishing follow-up events ---------------------------------------------------------


class TestEventBridgePublisher:
    def test_puts_each_event_on_the_bus_named_in_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("EVENT_BUS_NAME", "shop-bus")
        client = FakeEventsClient()
        event = OutOfStock(order_id="order-1", sku="BOOK-001", requested=2, available=1)
        EventBridgePublisher(client=client).publish(event)
        [[entry]] = client.calls
        assert entry == to_put_events_entry(event, "shop-bus")

    def test_sends_at_most_10_entries_per_call(self) -> None:
        """https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html"""
        client = FakeEventsClient()
        events = [OutOfStock(order_id=f"order-{n}", sku="BOOK-001", requested=2, available=1) for n in range(12)]
        EventBridgePublisher("shop", client).publish(*events)
        assert [len(call) for call in client.calls] == [10, 2]

    def test_a_refused_entry_raises_naming_the_event(self) -> None:
        """PutEvents can succeed with FailedEntryCount > 0: the caller must check it.
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevents.html"""
        client = FakeEventsClient(refuse=lambda entry: entry["DetailType"] == "OutOfStock")
        event = OutOfStock(order_id="order-1", sku="BOOK-001", requested=2, available=1)
        with pytest.raises(PublishFailed, match=f"refused 1 of 1 events: OutOfStock {event.event_id}: ThrottlingException"):
            EventBridgePublisher("shop", client).publish(event)

    def test_a_missing_bus_name_is_a_clear_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("EVENT_BUS_NAME", raising=False)
        with pytest.raises(RuntimeError, match="EVENT_BUS_NAME is not set"):
            EventBridgePublisher()


# --- the handlers -------------------------------------------------------------------


@pytest.fixture
def idempotency(monkeypatch: pytest.MonkeyPatch) -> InMemoryPersistenceLayer:
    """Both handlers' Idempotency on an in-memory store instead of the DynamoDB table."""
    store = InMemoryPersistenceLayer()
    for handler in (inventory_handler, orders_handler):
        monkeypatch.setattr(handler.consumer, "idempotency", IdempotentEvents(store))
    return store


class TestInventoryHandler:
    @pytest.fixture
    def stock(self, monkeypatch: pytest.MonkeyPatch, idempotency: InMemoryPersistenceLayer) -> FakeStock:
        stock = FakeStock(**{"BOOK-001": 2})
        monkeypatch.setattr(inventory_handler, "stock", stock)
        return stock

    @pytest.fixture
    def publisher(self, monkeypatch: pytest.MonkeyPatch) -> FakePublisher:
        publisher = FakePublisher()
        monkeypatch.setattr(inventory_handler, "publisher", publisher)
        return publisher

    def test_reserves_the_stock_and_publishes_inventory_reserved(self, stock: FakeStock, publisher: FakePublisher) -> None:
        inventory_handler.lambda_handler(eventbridge_event(order_placed(quantity=2)), FakeLambdaContext())
        [event] = publisher.published
        assert isinstance(event, InventoryReserved) and event.order_id == "order-1"
        assert stock.levels == {"BOOK-001": 0}

    def test_publishes_out_of_stock_when_the_stock_falls_short(self, stock: FakeStock, publisher: FakePublisher) -> None:
        inventory_handler.lambda_handler(eventbridge_event(order_placed(quantity=3)), FakeLambdaContext())
        [event] = publisher.published
        assert isinstance(event, OutOfStock) and (event.requested, event.available) == (3, 2)

    def test_the_same_event_twice_takes_stock_once_and_publishes_once(self, stock: FakeStock, publisher: FakePublisher) -> None:
        placed = order_placed(quantity=1)
        for _ in range(2):
            inventory_handler.lambda_handler(eventbridge_event(placed), FakeLambdaContext())
        assert stock.levels == {"BOOK-001": 1}
        assert len(publisher.published) == 1

    def test_a_retry_after_publishing_failed_publishes_without_taking_stock_again(
        self, stock: FakeStock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        publisher = FakePublisher(failures=1)
        monkeypatch.setattr(inventory_handler, "publisher", publisher)
        event = eventbridge_event(order_placed(quantity=1))
        with pytest.raises(PublishFailed):
            inventory_handler.lambda_handler(event, FakeLambdaContext())
        inventory_handler.lambda_handler(event, FakeLambdaContext())  # Lambda's retry
        assert stock.levels == {"BOOK-001": 1}
        assert [type(e) for e in publisher.published] == [InventoryReserved]

    def test_a_rejected_order_raises_and_publishes_nothing(self, stock: FakeStock, publisher: FakePublisher) -> None:
        with pytest.raises(OrderRejected):
            inventory_handler.lambda_handler(eventbridge_event(order_placed(sku="UNICORN-001")), FakeLambdaContext())
        assert publisher.published == []


class TestOrdersHandler:
    @pytest.fixture
    def orders(self, monkeypatch: pytest.MonkeyPatch, idempotency: InMemoryPersistenceLayer) -> FakeOrders:
        orders = FakeOrders()
        monkeypatch.setattr(orders_handler, "orders", orders)
        return orders

    @pytest.fixture
    def publisher(self, monkeypatch: pytest.MonkeyPatch) -> FakePublisher:
        publisher = FakePublisher()
        monkeypatch.setattr(orders_handler, "publisher", publisher)
        return publisher

    def _deliver(self, event: EventEnvelope) -> Any:
        return orders_handler.lambda_handler(eventbridge_event(event), FakeLambdaContext(function_name="orders"))

    def test_an_order_placed_is_recorded_as_placed(self, orders: FakeOrders, publisher: FakePublisher) -> None:
        assert self._deliver(order_placed()) == {"order_id": "order-1", "recorded": True}
        assert orders.orders["order-1"].status is OrderStatus.PLACED

    def test_inventory_reserved_confirms_the_order_and_publishes_order_confirmed(
        self, orders: FakeOrders, publisher: FakePublisher
    ) -> None:
        self._deliver(order_placed())
        self._deliver(InventoryReserved(order_id="order-1", lines=(ReservedLine(sku="BOOK-001", quantity=1),)))
        assert orders.orders["order-1"].status is OrderStatus.CONFIRMED
        [confirmed] = publisher.published
        assert isinstance(confirmed, OrderConfirmed)
        assert (confirmed.order_id, confirmed.customer_id, confirmed.total_cents) == ("order-1", "customer-1", 1000)

    def test_out_of_stock_marks_the_order_and_publishes_nothing(self, orders: FakeOrders, publisher: FakePublisher) -> None:
        self._deliver(order_placed())
        self._deliver(OutOfStock(order_id="order-1", sku="BOOK-001", requested=1, available=0))
        assert orders.orders["order-1"].status is OrderStatus.OUT_OF_STOCK
        assert publisher.published == []

    def test_inventory_reserved_before_the_order_is_recorded_fails_for_a_retry(
        self, orders: FakeOrders, publisher: FakePublisher
    ) -> None:
        """The bus keeps no order between events; Lambda's retry, a minute later, finds the order."""
        reserved = InventoryReserved(order_id="order-1", lines=(ReservedLine(sku="BOOK-001", quantity=1),))
        with pytest.raises(OrderNotFound):
            self._deliver(reserved)
        self._deliver(order_placed())
        self._deliver(reserved)  # the retry
        assert orders.orders["order-1"].status is OrderStatus.CONFIRMED
        assert len(publisher.published) == 1
