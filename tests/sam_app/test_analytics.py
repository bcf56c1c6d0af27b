"""Unit tests of real-time analytics (window totals, top products, the tumbling-window state,
the idempotent result write, poison records) and of the clickstream producer, against
hand-written fakes (no AWS, no moto)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from shop.adapters.analytics import DynamoDBWindowResults, from_item, to_item
from shop.analytics import ProductActivity, WindowResult, WindowTotals, aggregate_window, per_window
from shop.clickstream import MAX_ATTEMPTS, Clickstream, PutRecordsFailed, as_eventbridge_event
from shop.events import (
    EventEnvelope,
    InvalidEvent,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    OutOfStock,
    ProductAddedToCart,
    ProductViewed,
    any_from_eventbridge,
)
from shop.handlers import analytics as handler

LOGGER = Logger(service="test-analytics")
WINDOW = {"start": "2025-11-28T09:00:00Z", "end": "2025-11-28T09:01:00Z"}
SHARD = "shardId-000000000000"


def order(customer: str, *lines: tuple[str, int, int]) -> OrderPlaced:
    return OrderPlaced(order_id=f"order-{customer}", customer_id=customer,
                       lines=tuple(OrderLine(sku=s, quantity=q, unit_price_cents=p) for s, q, p in lines))


def view(sku: str, session: str = "s-1") -> ProductViewed:
    return ProductViewed(session_id=session, sku=sku)


def added(sku: str, quantity: int = 1, session: str = "s-1") -> ProductAddedToCart:
    return ProductAddedToCart(session_id=session, sku=sku, quantity=quantity)


def kinesis_record(data: str, number: int) -> dict[str, Any]:
    """https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html"""
    return {
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "k", "sequenceNumber": str(number),
                    "data": base64.b64encode(data.encode()).decode(), "approximateArrivalTimestamp": 1764320400.0},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"{SHARD}:{number}",
        "eventName": "aws:kinesis:record", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/r",
    }


def window_event(*events: EventEnvelope | str, state: dict[str, Any] | None = None,
                 final: bool = False) -> dict[str, Any]:
    """A tumbling-window invocation: the records (shop events, or raw data), the state, the flags.
    https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html"""
    data = [e if isinstance(e, str) else json.dumps(as_eventbridge_event(e, "123456789012", "us-east-1"))
            for e in events]
    return {"Records": [kinesis_record(d, n) for n, d in enumerate(data, start=1)], "window": WINDOW,
            "state": state if state is not None else {}, "shardId": SHARD,
            "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s",
            "isFinalInvokeForWindow": final, "isWindowTerminatedEarly": False}


@dataclass
class InMemoryWindowResults:
    """A fake results table, keyed as the DynamoDB table is: (window_start, shard_id)."""

    items: dict[tuple[str, str], WindowResult] = field(default_factory=dict)
    writes: int = 0

    def save(self, result: WindowResult) -> None:
        self.writes += 1
        self.items[(result.window_start, result.shard_id)] = result

    def all(self) -> list[WindowResult]:
        return [self.items[key] for key in sorted(self.items)]


class TestWindowTotals:
    def test_an_order_adds_its_total_to_sales_and_its_units_to_each_product(self) -> None:
        totals = WindowTotals()
        totals.order_placed(order("alice", ("BOOK-001", 2, 1500), ("MUG-001", 1, 900)))
        totals.order_placed(order("bob", ("BOOK-001", 1, 1500)))
        assert (totals.orders_placed, totals.sales_cents) == (2, 3900 + 1500)
        assert totals.products["BOOK-001"].units_ordered == 3
        assert totals.products["MUG-001"].units_ordered == 1

    def test_a_confirmation_counts_apart_from_the_sales(self) -> None:
        totals = WindowTotals()
        totals.order_confirmed(OrderConfirmed(order_id="o-1", customer_id="alice", total_cents=3000))
        assert (totals.orders_confirmed, totals.confirmed_cents, totals.orders_placed, totals.sales_cents) == (1, 3000, 0, 0)

    def test_views_and_add_to_carts_count_events_whatever_the_quantity(self) -> None:
        totals = WindowTotals()
        for event in (view("BOOK-001"), view("BOOK-001"), added("BOOK-001", quantity=3)):
            {ProductViewed: totals.product_viewed, ProductAddedToCart: totals.product_added_to_cart}[type(event)](event)  # type: ignore[operator]
        assert totals.products["BOOK-001"] == ProductActivity(views=2, added_to_cart=1, units_ordered=0)

    def test_top_products_rank_units_ordered_then_add_to_carts_then_views_then_sku(self) -> None:
        totals = WindowTotals(products={
            "A": ProductActivity(views=50), "B": ProductActivity(units_ordered=1),
            "C": ProductActivity(added_to_cart=2, views=1), "D": ProductActivity(added_to_cart=2, views=3),
            "E": ProductActivity(units_ordered=1), "F": ProductActivity(views=1)})
        assert [sku for sku, _ in totals.top_products()] == ["B", "E", "D", "C", "A"]
        assert [sku for sku, _ in totals.top_products(2)] == ["B", "E"]

    def test_the_state_is_json_and_gives_back_the_same_totals(self) -> None:
        totals = WindowTotals()
        totals.order_placed(order("alice", ("BOOK-001", 2, 1500)))
        totals.product_viewed(view("MUG-001"))
        state = json.loads(json.dumps(totals.to_state()))
        assert WindowTotals.from_state(state) == totals
        assert WindowTotals.from_state({}) == WindowTotals() and WindowTotals.from_state(None).empty

    def test_two_shards_totals_of_a_window_add_up(self) -> None:
        one = WindowTotals(1, 1500, 0, 0, {"BOOK-001": ProductActivity(units_ordered=1)})
        two = WindowTotals(2, 4000, 1, 1500, {"BOOK-001": ProductActivity(views=2), "MUG-001": ProductActivity(views=1)})
        both = one + two
        assert (both.orders_placed, both.sales_cents, both.orders_confirmed, both.confirmed_cents) == (3, 5500, 1, 1500)
        assert both.products == {"BOOK-001": ProductActivity(views=2, units_ordered=1), "MUG-001": ProductActivity(views=1)}
        assert one.products == {"BOOK-001": ProductActivity(units_ordered=1)}  # the operands are unchanged


class TestAggregateWindow:
    def test_each_invocation_returns_the_state_the_next_one_of_the_window_receives(self) -> None:
        """https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html"""
        results = InMemoryWindowResults()
        # given the window's first batch
        first = aggregate_window(window_event(order("alice", ("BOOK-001", 2, 1500)), view("BOOK-001")), results, LOGGER)
        # when Lambda passes its state to the next batch of the same window
        second = aggregate_window(window_event(order("bob", ("MUG-001", 1, 900)), state=first["state"]), results, LOGGER)
        # then the totals carry over, and nothing is written before the window closes
        totals = WindowTotals.from_state(second["state"])
        assert (totals.orders_placed, totals.sales_cents) == (2, 3900)
        assert totals.products["BOOK-001"] == ProductActivity(views=1, units_ordered=2)
        assert results.writes == 0

    def test_the_final_invocation_writes_the_window_result_keyed_on_window_start_and_shard(self) -> None:
        results = InMemoryWindowResults()
        state = aggregate_window(window_event(order("alice", ("BOOK-001", 2, 1500))), results, LOGGER)["state"]
        response = aggregate_window(window_event(state=state, final=True), results, LOGGER)
        [result] = results.all()
        assert (result.window_start, result.window_end, result.shard_id) == (WINDOW["start"], WINDOW["end"], SHARD)
        assert result.totals == WindowTotals.from_state(state)
        assert response == {"state": state}  # the final response still carries the state, as Lambda requires

    def test_a_repeated_final_invocation_writes_the_same_item_again(self) -> None:
        """A retried final invocation (or a replay of the stream) writes the same key and totals."""
        results = InMemoryWindowResults()
        state = aggregate_window(window_event(order("alice", ("BOOK-001", 2, 1500))), results, LOGGER)["state"]
        aggregate_window(window_event(state=state, final=True), results, LOGGER)
        before = results.all()
        aggregate_window(window_event(state=state, final=True), results, LOGGER)
        assert results.writes == 2 and results.all() == before

    def test_an_empty_window_writes_nothing(self) -> None:
        results = InMemoryWindowResults()
        assert aggregate_window(window_event(final=True), results, LOGGER) == {"state": WindowTotals().to_state()}
        assert results.writes == 0

    @pytest.mark.parametrize("poison", [
        "not json",
        json.dumps({"detail-type": "ProductViewed", "source": "shop.storefront", "detail": {"sku": "BOOK-001"}}),
        json.dumps({"detail-type": "Refunded", "source": "shop.payments", "detail": {}}),
    ], ids=["not-json", "missing-session", "unknown-type"])
    def test_a_poison_record_fails_the_invocation_and_leaves_the_state_it_was_given(self, poison: str) -> None:
        """The invocation fails (Lambda then bisects the batch); the state it received is untouched, so a
        retry of the same batch counts from the same totals.
        https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html"""
        state = WindowTotals(1, 1500, 0, 0, {"BOOK-001": ProductActivity(units_ordered=1)}).to_state()
        given = json.loads(json.dumps(state))
        event = window_event(order("bob", ("BOOK-001", 1, 1500)), poison, view("BOOK-001"), state=given)
        with pytest.raises(InvalidEvent):
            aggregate_window(event, InMemoryWindowResults(), LOGGER)
        assert event["state"] == state

    def test_an_order_event_it_does_not_count_is_a_poison_record_too(self) -> None:
        """The rule sends OrderPlaced and OrderConfirmed only; anything else on the stream is a mistake."""
        event = window_event(OutOfStock(order_id="o-1", sku="MUG-001", requested=2, available=0))
        with pytest.raises(InvalidEvent, match="OutOfStock has no route here"):
            aggregate_window(event, InMemoryWindowResults(), LOGGER)

    def test_per_window_adds_up_the_shards_of_each_minute_in_time_order(self) -> None:
        later = WindowResult("2025-11-28T09:01:00Z", "2025-11-28T09:02:00Z", SHARD, WindowTotals(1, 100))
        results = [later,
                   WindowResult(WINDOW["start"], WINDOW["end"], "shardId-000000000001", WindowTotals(2, 300)),
                   WindowResult(WINDOW["start"], WINDOW["end"], SHARD, WindowTotals(1, 200))]
        merged = per_window(results)
        assert list(merged) == [WINDOW["start"], later.window_start]
        assert (merged[WINDOW["start"]].orders_placed, merged[WINDOW["start"]].sales_cents) == (3, 500)


class TestHandler:
    def test_the_handler_is_the_adapter_around_aggregate_window(self, monkeypatch: pytest.MonkeyPatch) -> None:
        results = InMemoryWindowResults()
        monkeypatch.setattr(handler, "results", results)

        @dataclass
        class Context:
            function_name: str = "analytics"
            memory_limit_in_mb: int = 256
            invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:analytics"
            aws_request_id: str = "request-1"

        state = handler.lambda_handler(window_event(view("BOOK-001")), Context())["state"]  # type: ignore[arg-type]
        handler.lambda_handler(window_event(state=state, final=True), Context())  # type: ignore[arg-type]
        assert results.all()[0].totals.products == {"BOOK-001": ProductActivity(views=1)}


@dataclass
class FakeDynamoDB:
    """put_item and scan over items keyed by (window_start, shard_id), as the table's key schema says."""

    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def put_item(self, *, TableName: str, Item: dict[str, Any]) -> None:
        self.items[(Item["window_start"]["S"], Item["shard_id"]["S"])] = Item

    def scan(self, *, TableName: str, **kwargs: Any) -> dict[str, Any]:
        return {"Items": list(self.items.values())}


class TestDynamoDBWindowResults:
    def test_a_result_reads_back_as_it_was_written(self) -> None:
        totals = WindowTotals(2, 3900, 1, 3000, {"BOOK-001": ProductActivity(3, 1, 2), "MUG-001": ProductActivity(1)})
        result = WindowResult(WINDOW["start"], WINDOW["end"], SHARD, totals)
        assert from_item(json.loads(json.dumps(to_item(result)))) == result
        assert to_item(result)["top_products"] == {"L": [{"S": "BOOK-001"}, {"S": "MUG-001"}]}

    def test_writing_the_same_window_twice_leaves_one_item(self) -> None:
        """PutItem replaces an item with the same key: the window write is idempotent.
        https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html"""
        client = FakeDynamoDB()
        results = DynamoDBWindowResults("analytics", client=client)
        result = WindowResult(WINDOW["start"], WINDOW["end"], SHARD, WindowTotals(1, 1500))
        results.save(result)
        results.save(result)
        assert results.all() == [result] and len(client.items) == 1

    def test_without_a_table_name_the_error_says_where_it_comes_from(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("ANALYTICS_TABLE_NAME", raising=False)
        with pytest.raises(RuntimeError, match="ANALYTICS_TABLE_NAME is not set"):
            DynamoDBWindowResults()


@dataclass
class FakeKinesis:
    """put_records that refuses the records whose partition key is in `refuse`, `times` times each."""

    refuse: dict[str, int] = field(default_factory=dict)
    calls: list[list[dict[str, Any]]] = field(default_factory=list)
    stored: list[dict[str, Any]] = field(default_factory=list)

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(list(Records))
        results: list[dict[str, Any]] = []
        for record in Records:
            if self.refuse.get(record["PartitionKey"], 0) > 0:
                self.refuse[record["PartitionKey"]] -= 1
                results.append({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"})
            else:
                self.stored.append(record)
                results.append({"SequenceNumber": str(len(self.stored)), "ShardId": SHARD})
        return {"FailedRecordCount": sum("ErrorCode" in r for r in results), "Records": results}


def clickstream(kinesis: FakeKinesis, waits: list[float] | None = None) -> Clickstream:
    return Clickstream("analytics", kinesis, account="123456789012", region="us-east-1",
                       wait=(waits if waits is not None else []).append)


class TestClickstream:
    def test_each_record_is_partitioned_by_session_and_carries_an_eventbridge_shaped_event(self) -> None:
        """https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html"""
        kinesis = FakeKinesis()
        sent = clickstream(kinesis).put([view("BOOK-001", "s-1"), added("MUG-001", 2, "s-2")])
        assert [r["PartitionKey"] for r in kinesis.stored] == ["s-1", "s-2"]
        for event, record in zip(sent, kinesis.stored, strict=True):
            data = json.loads(record["Data"])
            EventBridgeModel.model_validate(data)  # the shape a rule would deliver
            assert any_from_eventbridge(data) == event  # and the channel adapter reads it back
            assert data["id"] == event.event_id

    def test_records_refused_in_a_successful_call_are_put_again_alone_after_a_wait(self) -> None:
        """FailedRecordCount: a call can succeed while single records fail; only those are retried."""
        kinesis, waits = FakeKinesis(refuse={"s-2": 1}), []
        clickstream(kinesis, waits).put([view("BOOK-001", "s-1"), view("BOOK-001", "s-2"), view("MUG-001", "s-3")])
        assert [[r["PartitionKey"] for r in call] for call in kinesis.calls] == [["s-1", "s-2", "s-3"], ["s-2"]]
        assert sorted(r["PartitionKey"] for r in kinesis.stored) == ["s-1", "s-2", "s-3"]
        assert waits == [0.1]

    def test_records_refused_on_every_attempt_raise_and_name_the_events(self) -> None:
        kinesis, waits = FakeKinesis(refuse={"s-2": 99}), []
        events = [view("BOOK-001", "s-1"), view("BOOK-001", "s-2")]
        with pytest.raises(PutRecordsFailed, match="refused 1 of 2 records 3 times") as raised:
            clickstream(kinesis, waits).put(events)
        assert [event for event, _, _ in raised.value.failures] == [events[1]]
        assert events[1].event_id in str(raised.value) and "ProvisionedThroughputExceededException" in str(raised.value)
        assert len(kinesis.calls) == MAX_ATTEMPTS and waits == [0.1, 0.2]

    def test_at_most_500_records_go_in_one_call(self) -> None:
        kinesis = FakeKinesis()
        clickstream(kinesis).put([view("BOOK-001", f"s-{n}") for n in range(501)])
        assert [len(call) for call in kinesis.calls] == [500, 1]

    def test_an_order_event_is_refused_before_anything_is_sent(self) -> None:
        kinesis = FakeKinesis()
        with pytest.raises(InvalidEvent, match="orders reach the analytics stream from the bus"):
            clickstream(kinesis).put([view("BOOK-001"), order("alice", ("BOOK-001", 1, 1500))])  # type: ignore[list-item]
        assert kinesis.calls == []

    def test_a_bad_click_is_refused_by_its_model(self) -> None:
        with pytest.raises(InvalidEvent, match="quantity"):
            ProductAddedToCart.parse({"session_id": "s-1", "sku": "BOOK-001", "quantity": 0})
