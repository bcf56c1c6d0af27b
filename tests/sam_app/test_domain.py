"""Unit tests of the shop's domain code: events and their JSON Schemas, order rules, the
storefront, the DynamoDB adapter and the order processor handler, all against hand-written
fakes (no AWS, no moto)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from botocore.exceptions import ClientError

from shop import schemas
from shop.adapters.dynamodb import DynamoDBOrderRepository
from shop.events import (
    EVENT_TYPES,
    MAX_ENTRY_SIZE_BYTES,
    InvalidEvent,
    OrderLine,
    OrderPlaced,
    PutEventsEntry,
    entry_size,
    from_eventbridge,
    parse_event,
    to_put_events_entry,
)
from shop.orders import AcceptedOrder, OrderRejected, accept_order, record_order
from shop.storefront import Cart, PutEventsFailed, Storefront

# --- builders -----------------------------------------------------------------


def order_placed(**fields: Any) -> OrderPlaced:
    detail: dict[str, Any] = {
        "order_id": "order-1",
        "customer_id": "customer-1",
        "lines": [
            {"sku": "BOOK-001", "quantity": 2, "unit_price_cents": 3999},
            {"sku": "MUG-001", "quantity": 1, "unit_price_cents": 1250},
        ],
    }
    return OrderPlaced.parse(detail | fields)


def line(sku: str = "BOOK-001", quantity: int = 1, unit_price_cents: int = 3999) -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price_cents=unit_price_cents)


def delivered_by_eventbridge(entry: PutEventsEntry) -> dict[str, Any]:
    """The event EventBridge hands a target for `entry`: the detail arrives as a JSON object.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html"""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": "123456789012",
        "time": "2024-05-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": json.loads(entry["Detail"]),
    }


def carts(count: int) -> list[Cart]:
    return [Cart(f"customer-{n}", [line()]) for n in range(count)]


def for_customers(*customer_ids: str) -> Callable[[PutEventsEntry], bool]:
    """Picks the PutEvents entries of these customers' orders."""
    return lambda entry: json.loads(entry["Detail"])["customer_id"] in customer_ids


def sqs_body_for(event: OrderPlaced) -> str:
    return json.dumps(delivered_by_eventbridge(to_put_events_entry(event, "shop")))


# --- fakes --------------------------------------------------------------------


class FakeOrderRepository:
    """Keeps orders in a dict; `add` is atomic because nothing else runs meanwhile."""

    def __init__(self) -> None:
        self.orders: dict[str, AcceptedOrder] = {}

    def add(self, order: AcceptedOrder) -> bool:
        if order.order_id in self.orders:
            return False
        self.orders[order.order_id] = order
        return True


class FakeEventsClient:
    """Records each put_events call; refuses the entries `refuse` picks, as EventBridge reports it."""

    def __init__(self, refuse: Callable[[PutEventsEntry], bool] = lambda entry: False) -> None:
        self.calls: list[list[PutEventsEntry]] = []
        self.refuse = refuse

    def put_events(self, *, Entries: Sequence[PutEventsEntry]) -> Mapping[str, Any]:
        self.calls.append(list(Entries))
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
            if self.refuse(entry)
            else {"EventId": str(uuid.uuid4())}
            for entry in Entries
        ]
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


class FakeDynamoDBClient:
    """Honours `attribute_not_exists(order_id)` the way DynamoDB answers a failed condition."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []

    def put_item(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        key = (request["TableName"], request["Item"]["order_id"]["S"])
        condition = request.get("ConditionExpression")
        if condition == "attribute_not_exists(order_id)" and key in self.items:
            error = {"Code": "ConditionalCheckFailedException", "Message": "The condition failed"}
            raise ClientError({"Error": error}, "PutItem")
        self.items[key] = request["Item"]
        return {}


class ThrottledDynamoDBClient:
    def put_item(self, **request: Any) -> dict[str, Any]:
        error = {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}
        raise ClientError({"Error": error}, "PutItem")


class TestEventEnvelope:
    def test_a_new_event_gets_a_uuid4_event_id(self) -> None:
        event = order_placed()
        assert uuid.UUID(event.event_id).version == 4
        assert order_placed().event_id != event.event_id

    def test_correlation_id_defaults_to_the_event_id(self) -> None:
        event = order_placed()
        assert event.correlation_id == event.event_id

    def test_correlation_id_is_kept_when_given(self) -> None:
        assert order_placed(correlation_id="checkout-42").correlation_id == "checkout-42"

    def test_schema_version_is_1_0(self) -> None:
        assert order_placed().schema_version == "1.0"

    def test_occurred_at_is_now_in_utc(self) -> None:
        before = datetime.now(timezone.utc)
        event = order_placed()
        assert event.occurred_at.utcoffset() == timedelta(0)
        assert before <= event.occurred_at <= datetime.now(timezone.utc)

    def test_occurred_at_in_another_zone_is_converted_to_utc(self) -> None:
        event = order_placed(occurred_at="2024-05-01T14:00:00+02:00")
        assert event.occurred_at == datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
        assert event.occurred_at.utcoffset() == timedelta(0)

    def test_occurred_at_without_a_time_zone_is_rejected(self) -> None:
        with pytest.raises(InvalidEvent, match="occurred_at"):
            order_placed(occurred_at="2024-05-01T12:00:00")

    def test_source_and_detail_type_are_class_constants_not_detail_fields(self) -> None:
        assert (OrderPlaced.source, OrderPlaced.detail_type) == ("shop.storefront", "OrderPlaced")
        assert not {"source", "detail_type"} & json.loads(order_placed().model_dump_json()).keys()

    def test_a_newer_minor_version_with_unknown_fields_still_parses(self) -> None:
        """Tolerant reader: a 1.x consumer reads a 1.1 event and ignores what it does not know."""
        event = order_placed(schema_version="1.1", gift_wrap=True)
        assert event.schema_version == "1.1"

    def test_another_major_version_is_rejected(self) -> None:
        with pytest.raises(InvalidEvent, match="schema_version"):
            order_placed(schema_version="2.0")

    def test_events_cannot_be_changed(self) -> None:
        event = order_placed()
        with pytest.raises(ValueError):
            event.order_id = "order-2"  # type: ignore[misc]


class TestOrderPlaced:
    def test_total_is_the_sum_of_line_subtotals(self) -> None:
        assert order_placed().total_cents == 2 * 3999 + 1250

    def test_currency_is_euro(self) -> None:
        assert order_placed().currency == "EUR"
        with pytest.raises(InvalidEvent, match="currency"):
            order_placed(currency="USD")


class TestEntrySize:
    """https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html"""

    def test_counts_utf8_bytes_of_source_detail_type_and_detail(self) -> None:
        # "é" is two bytes in UTF-8
        entry = {"Source": "ab", "DetailType": "c", "Detail": '"é"', "EventBusName": "shop"}
        assert entry_size(entry) == 2 + 1 + 4

    def test_bus_name_does_not_count(self) -> None:
        entry = {"Source": "a", "DetailType": "b", "Detail": "{}"}
        assert entry_size(entry | {"EventBusName": "x" * 100}) == entry_size(entry) == 4

    def test_time_counts_14_bytes_and_each_resource_its_bytes(self) -> None:
        entry = {"Source": "a", "DetailType": "b", "Detail": "{}"}
        assert entry_size(entry | {"Time": datetime.now(timezone.utc)}) == 4 + 14
        assert entry_size(entry | {"Resources": ["arn:1", "arn:22"]}) == 4 + 5 + 6


class TestToPutEventsEntry:
    def test_entry_names_source_detail_type_bus_and_carries_json_detail(self) -> None:
        event = order_placed()
        entry = to_put_events_entry(event, "shop-bus")
        assert entry["Source"] == "shop.storefront"
        assert entry["DetailType"] == "OrderPlaced"
        assert entry["EventBusName"] == "shop-bus"
        detail = json.loads(entry["Detail"])
        assert detail["event_id"] == event.event_id
        assert detail["schema_version"] == "1.0"
        assert detail["lines"][0] == {"sku": "BOOK-001", "quantity": 2, "unit_price_cents": 3999}

    def test_round_trips_through_eventbridge(self) -> None:
        event = order_placed(correlation_id="checkout-42")
        entry = to_put_events_entry(event, "shop")
        assert from_eventbridge(delivered_by_eventbridge(entry)) == event

    def test_an_entry_of_exactly_256_kb_is_accepted(self) -> None:
        entry = to_put_events_entry(self._event_of_size(MAX_ENTRY_SIZE_BYTES), "shop")
        assert entry_size(entry) == MAX_ENTRY_SIZE_BYTES

    def test_an_entry_over_256_kb_is_rejected_before_sending(self) -> None:
        with pytest.raises(InvalidEvent, match=r"262145 bytes .* at most 262144 bytes"):
            to_put_events_entry(self._event_of_size(MAX_ENTRY_SIZE_BYTES + 1), "shop")

    @staticmethod
    def _event_of_size(size: int) -> OrderPlaced:
        """An OrderPlaced whose entry is `size` bytes, padded through customer_id."""
        event = order_placed(customer_id="c")
        padding = size - entry_size(to_put_events_entry(event, "shop"))
        return event.model_copy(update={"customer_id": "c" * (1 + padding)})


class TestFromEventBridge:
    def test_reads_json_text_as_an_sqs_body_carries_it(self) -> None:
        event = order_placed()
        assert from_eventbridge(sqs_body_for(event)) == event

    def test_malformed_json_is_an_invalid_event(self) -> None:
        with pytest.raises(InvalidEvent, match="not valid JSON"):
            from_eventbridge('{"detail": ')

    def test_a_missing_field_is_named(self) -> None:
        body = delivered_by_eventbridge(to_put_events_entry(order_placed(), "shop"))
        del body["detail"]["customer_id"]
        with pytest.raises(InvalidEvent) as raised:
            from_eventbridge(body)
        assert str(raised.value) == "OrderPlaced is invalid: customer_id: Field required"

    def test_a_wrong_type_is_named_with_what_was_expected(self) -> None:
        body = delivered_by_eventbridge(to_put_events_entry(order_placed(), "shop"))
        body["detail"]["lines"][1]["quantity"] = "two"
        with pytest.raises(InvalidEvent) as raised:
            from_eventbridge(body)
        assert str(raised.value) == (
            "OrderPlaced is invalid: lines[1].quantity: Input should be a valid integer, got 'two'"
        )

    def test_a_number_in_a_string_is_not_coerced(self) -> None:
        body = delivered_by_eventbridge(to_put_events_entry(order_placed(), "shop"))
        body["detail"]["lines"][0]["unit_price_cents"] = "3999"
        expected = r"lines\[0\].unit_price_cents: Input should be a valid integer, got '3999'"
        with pytest.raises(InvalidEvent, match=expected):
            from_eventbridge(body)

    def test_the_message_is_one_line_without_pydantic_noise(self) -> None:
        body = delivered_by_eventbridge(to_put_events_entry(order_placed(), "shop"))
        body["detail"]["lines"] = "everything"
        with pytest.raises(InvalidEvent) as raised:
            from_eventbridge(body)
        assert "\n" not in str(raised.value)
        assert "errors.pydantic.dev" not in str(raised.value)
        assert raised.value.__cause__ is None

    def test_another_detail_type_is_rejected(self) -> None:
        body = delivered_by_eventbridge(to_put_events_entry(order_placed(), "shop"))
        body["detail-type"] = "OrderShipped"
        expected = "'detail-type': expected 'OrderPlaced', got 'OrderShipped'"
        with pytest.raises(InvalidEvent, match=expected):
            from_eventbridge(body)

    def test_a_detail_that_is_not_an_object_is_rejected(self) -> None:
        body = delivered_by_eventbridge(to_put_events_entry(order_placed(), "shop"))
        body["detail"] = json.dumps(body["detail"])
        with pytest.raises(InvalidEvent, match="'detail': expected a JSON object, got str"):
            from_eventbridge(body)


class TestParseEvent:
    """The gate for a detail a producer received as JSON rather than built itself."""

    def test_json_text_becomes_the_event_of_its_detail_type(self) -> None:
        event = parse_event("OrderPlaced", order_placed().model_dump_json())
        assert isinstance(event, OrderPlaced)
        assert event.order_id == "order-1"

    def test_malformed_json_is_named(self) -> None:
        with pytest.raises(InvalidEvent, match=r"^OrderPlaced detail is not valid JSON: Expecting value"):
            parse_event("OrderPlaced", '{"order_id": ')

    def test_json_that_is_not_an_object_is_named(self) -> None:
        with pytest.raises(InvalidEvent, match=r"^OrderPlaced detail: expected a JSON object, got list"):
            parse_event("OrderPlaced", "[]")

    def test_a_missing_field_is_named(self) -> None:
        with pytest.raises(InvalidEvent) as raised:
            parse_event("OrderConfirmed", {"order_id": "order-1", "total_cents": 100})
        assert str(raised.value) == "OrderConfirmed is invalid: customer_id: Field required"

    def test_an_unknown_detail_type_is_named(self) -> None:
        with pytest.raises(InvalidEvent, match=r"'OrderShipped' is not a shop event; expected one of \["):
            parse_event("OrderShipped", {})


# --- schemas ------------------------------------------------------------------


class TestSchemas:
    """The JSON Schemas in sam-app/schemas/, exported from the models by shop.schemas."""

    def test_the_checked_in_schemas_match_the_models(self) -> None:
        problems = schemas.stale(schemas.default_directory())
        assert not problems, (
            f"the checked-in JSON Schemas are out of date ({'; '.join(problems)}); "
            f"regenerate them with: {schemas.REGENERATE}"
        )

    def test_every_event_type_has_an_example(self) -> None:
        missing = set(EVENT_TYPES) - set(schemas.EXAMPLES)
        assert not missing, f"add an example detail for {sorted(missing)} to shop.schemas.EXAMPLES"

    def test_the_schema_names_source_detail_type_and_version(self) -> None:
        schema = checked_in_schema("OrderPlaced")
        assert schema["$id"] == "urn:shop:events:shop.storefront:OrderPlaced:1.0"
        assert schema["title"] == "OrderPlaced from shop.storefront, schema version 1.0"

    def test_fields_with_defaults_are_required_because_events_always_carry_them(self) -> None:
        required = checked_in_schema("OrderPlaced")["required"]
        assert {"event_id", "correlation_id", "schema_version", "occurred_at", "currency", "total_cents"} <= set(required)

    @pytest.mark.parametrize("detail_type", sorted(EVENT_TYPES))
    def test_a_new_event_validates_against_its_schema(self, detail_type: str) -> None:
        # given an event made now, with a fresh id and time
        event = EVENT_TYPES[detail_type].parse(schemas.EXAMPLES[detail_type])
        # then its detail, as a producer sends it, satisfies the checked-in schema
        assert schema_errors(detail_type, json.loads(event.model_dump_json())) == []

    @pytest.mark.parametrize("detail_type", sorted(EVENT_TYPES))
    def test_the_published_example_validates_against_its_schema(self, detail_type: str) -> None:
        [example] = checked_in_schema(detail_type)["examples"]
        assert schema_errors(detail_type, example) == []

    @pytest.mark.parametrize(
        ("change", "error"),
        [
            (lambda d: d.pop("customer_id"), "'customer_id' is a required property"),
            (lambda d: d["lines"][0].update(quantity="two"), "'two' is not of type 'integer'"),
            (lambda d: d.update(occurred_at="2025-11-28T09:00:00"), "is not a 'date-time'"),
            (lambda d: d.update(schema_version="2.0"), "'2.0' does not match"),
        ],
        ids=["missing field", "wrong type", "time without zone", "other major version"],
    )
    def test_a_broken_event_fails_its_schema(self, change: Callable[[dict[str, Any]], Any], error: str) -> None:
        detail = json.loads(order_placed().model_dump_json())
        change(detail)
        assert any(error in message for message in schema_errors("OrderPlaced", detail))

    def test_export_writes_one_file_per_detail_type(self, tmp_path: Path) -> None:
        written = schemas.export(tmp_path)
        assert sorted(p.name for p in written) == sorted(f"{t}.json" for t in EVENT_TYPES)
        assert schemas.stale(tmp_path) == []

    def test_check_exits_1_and_says_how_to_regenerate(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        schemas.export(tmp_path)
        (tmp_path / "OrderPlaced.json").write_text("{}")
        (tmp_path / "OrderShipped.json").write_text("{}")
        assert schemas.main(["--check", str(tmp_path)]) == 1
        errors = capsys.readouterr().err
        assert "OrderPlaced.json differs from the OrderPlaced model" in errors
        assert "OrderShipped.json matches no event type" in errors
        assert schemas.REGENERATE in errors


def checked_in_schema(detail_type: str) -> dict[str, Any]:
    return json.loads((schemas.default_directory() / f"{detail_type}.json").read_text())


def schema_errors(detail_type: str, detail: Any) -> list[str]:
    """What the checked-in schema finds wrong with `detail` (formats such as date-time included)."""
    schema = checked_in_schema(detail_type)
    validator = jsonschema.validators.validator_for(schema)
    return [error.message for error in validator(schema, format_checker=validator.FORMAT_CHECKER).iter_errors(detail)]


# --- orders -------------------------------------------------------------------


class TestAcceptOrder:
    def test_accepts_an_order_of_catalogue_products(self) -> None:
        order = order_placed(correlation_id="checkout-42")
        accepted = accept_order(order)
        assert accepted.order_id == "order-1"
        assert accepted.total_cents == order.total_cents
        assert accepted.correlation_id == "checkout-42"
        assert accepted.placed_at == order.occurred_at

    def test_rejects_zero_quantity(self) -> None:
        with pytest.raises(OrderRejected, match="line 1: quantity must be at least 1, got 0"):
            accept_order(order_placed(lines=[line(quantity=0)]))

    def test_rejects_negative_quantity(self) -> None:
        with pytest.raises(OrderRejected, match="quantity must be at least 1, got -3"):
            accept_order(order_placed(lines=[line(quantity=-3)]))

    def test_rejects_an_order_without_lines(self) -> None:
        with pytest.raises(OrderRejected, match="order order-1 rejected: it has no lines"):
            accept_order(order_placed(lines=[]))

    def test_rejects_a_sku_not_in_the_catalogue(self) -> None:
        with pytest.raises(OrderRejected, match="line 2: SKU 'UNICORN-001' is not in the catalogue"):
            accept_order(order_placed(lines=[line(), line(sku="UNICORN-001")]))

    def test_rejects_a_negative_price(self) -> None:
        with pytest.raises(OrderRejected, match="unit price must not be negative"):
            accept_order(order_placed(lines=[line(unit_price_cents=-1)]))

    def test_names_every_broken_rule(self) -> None:
        with pytest.raises(OrderRejected) as raised:
            accept_order(order_placed(lines=[line(sku="NOPE", quantity=0)]))
        assert raised.value.order_id == "order-1"
        assert len(raised.value.reasons) == 2


class TestRecordOrder:
    def test_records_a_new_order(self) -> None:
        repository = FakeOrderRepository()
        assert record_order(repository, accept_order(order_placed())) is True
        assert list(repository.orders) == ["order-1"]

    def test_a_redelivered_order_has_no_second_effect(self) -> None:
        repository = FakeOrderRepository()
        first = accept_order(order_placed())
        record_order(repository, first)
        # given the same order again, as an at-least-once delivery may bring it
        assert record_order(repository, accept_order(order_placed())) is False
        assert repository.orders == {"order-1": first}


# --- adapters -----------------------------------------------------------------


class TestDynamoDBOrderRepository:
    def test_reads_the_table_name_from_the_environment_when_constructed(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ORDERS_TABLE_NAME", "orders-from-env")
        repository = DynamoDBOrderRepository(client=FakeDynamoDBClient())
        monkeypatch.setenv("ORDERS_TABLE_NAME", "changed-later")
        assert repository.table_name == "orders-from-env"

    def test_a_missing_table_name_is_a_clear_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("ORDERS_TABLE_NAME", raising=False)
        with pytest.raises(RuntimeError, match="ORDERS_TABLE_NAME is not set"):
            DynamoDBOrderRepository()

    def test_puts_the_order_on_condition_that_its_id_is_new(self) -> None:
        client = FakeDynamoDBClient()
        assert DynamoDBOrderRepository("orders", client).add(accept_order(order_placed())) is True
        [request] = client.requests
        assert request["ConditionExpression"] == "attribute_not_exists(order_id)"
        assert request["Item"]["order_id"] == {"S": "order-1"}
        assert request["Item"]["total_cents"] == {"N": str(2 * 3999 + 1250)}

    def test_conditional_check_failed_means_already_recorded(self) -> None:
        repository = DynamoDBOrderRepository("orders", FakeDynamoDBClient())
        repository.add(accept_order(order_placed()))
        assert repository.add(accept_order(order_placed())) is False

    def test_other_client_errors_propagate(self) -> None:
        repository = DynamoDBOrderRepository("orders", ThrottledDynamoDBClient())
        with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
            repository.add(accept_order(order_placed()))


# --- storefront ---------------------------------------------------------------


class TestStorefront:
    def test_place_order_puts_one_order_placed_on_the_bus(self) -> None:
        client = FakeEventsClient()
        event = Storefront("shop-bus", client).place_order("customer-7", [line(quantity=2)])
        [[entry]] = client.calls
        assert entry["EventBusName"] == "shop-bus"
        assert from_eventbridge(delivered_by_eventbridge(entry)) == event
        assert event.customer_id == "customer-7"
        assert event.total_cents == 2 * 3999

    def test_place_order_carries_the_correlation_id(self) -> None:
        storefront = Storefront("shop", FakeEventsClient())
        event = storefront.place_order("c", [line()], correlation_id="checkout-42")
        assert event.correlation_id == "checkout-42"

    def test_each_order_gets_its_own_order_id(self) -> None:
        storefront = Storefront("shop", FakeEventsClient())
        first, second = storefront.place_order("c", [line()]), storefront.place_order("c", [line()])
        assert first.order_id != second.order_id

    def test_place_orders_sends_at_most_10_entries_per_put_events_call(self) -> None:
        """https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html"""
        client = FakeEventsClient()
        events = Storefront("shop", client).place_orders(carts(23))
        assert [len(call) for call in client.calls] == [10, 10, 3]
        sent = [json.loads(entry["Detail"])["event_id"] for call in client.calls for entry in call]
        assert sent == [event.event_id for event in events]

    def test_a_refused_entry_is_put_again_then_raises_put_events_failed_naming_the_order(self) -> None:
        """A refused entry, and only it, is put again after 0.1 s, then 0.2 s; refused every
        time, it is raised. https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevents.html"""
        client, waits = FakeEventsClient(refuse=for_customers("customer-3")), []
        with pytest.raises(PutEventsFailed, match="refused 1 of 5 entries 3 times.*InternalFailure") as raised:
            Storefront("shop", client, wait=waits.append).place_orders(carts(5))
        [(event, code, _message)] = raised.value.failures
        assert (event.customer_id, code) == ("customer-3", "InternalFailure")
        assert [len(call) for call in client.calls] == [5, 1, 1] and waits == [0.1, 0.2]

    def test_refusals_in_every_batch_are_reported_after_all_batches_were_tried(self) -> None:
        client = FakeEventsClient(refuse=for_customers("customer-0", "customer-20"))
        with pytest.raises(PutEventsFailed) as raised:
            Storefront("shop", client, wait=lambda seconds: None).place_orders(carts(21))
        assert [len(call) for call in client.calls] == [10, 1, 1, 10, 1, 1, 1]  # each refusal tried 3 times
        refused = [event.customer_id for event, _code, _message in raised.value.failures]
        assert refused == ["customer-0", "customer-20"]

    def test_an_invalid_cart_sends_nothing(self) -> None:
        client = FakeEventsClient()
        carts = [Cart("customer-1", [line()]), Cart("", [line()])]
        with pytest.raises(InvalidEvent, match="customer_id"):
            Storefront("shop", client).place_orders(carts)
        assert client.calls == []


# --- handler ------------------------------------------------------------------


class TestCartOrderId:
    def test_a_retried_cart_with_its_own_order_id_is_the_same_order(self):
        # given a checkout that the caller retries with the same order id
        client = FakeEventsClient()
        storefront = Storefront("shop-bus", client)
        cart = Cart("customer-1", [line()], order_id="order-42")
        # when it is placed twice
        first, second = storefront.place_orders([cart]), storefront.place_orders([cart])
        # then both events carry the same order id, so the consumer records it once
        assert first[0].order_id == second[0].order_id == "order-42"


class TestCartShippingCountry:
    def test_the_cart_sets_where_the_order_ships(self):
        # given a cart that ships to Belgium
        storefront = Storefront("shop-bus", FakeEventsClient())
        # when it is placed
        [event] = storefront.place_orders([Cart("customer-1", [line()], shipping_country="BE")])
        # then the event says so, for the rules that route on it
        assert event.shipping_country == "BE"
