"""Stage 3, Lambda consumers: EventBridge rules invoke the order processing and inventory
functions asynchronously; inventory reserves stock with conditional writes, the functions
publish follow-up events, failures are retried then recorded, and a redelivered event has
one effect.

The same tests check a learner's workspace: `pytest tests/stages/test_stage_03.py --stage-dir workspace/`.
Run this file (`python tests/stages/test_stage_03.py`) to rewrite the diff in the chapter's README.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest

from edakit import LocalCloud
from edakit.chapters import check_readme, stage_diff, write_readme
from edakit.paths import CHAPTERS, NOTEBOOKS, SHOP_SRC
from edakit.template import read_template

if str(SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(SHOP_SRC))

from shop.adapters.dynamodb import DynamoDBStockRepository  # noqa: E402
from shop.events import OrderLine, OrderPlaced  # noqa: E402
from shop.inventory import seed_stock  # noqa: E402
from shop.storefront import Cart, Storefront  # noqa: E402

STAGE = "03-consumers"
PREVIOUS_STAGE = "02-routing"
NOTEBOOK = NOTEBOOKS / "03-consumers.py"
#: The notebook is a chapter page: it must run in seconds (wall time, with the kernel's start).
NOTEBOOK_SECONDS = 10

#: Stage 2's resources that stage 3 keeps as they were: stage 1's, analytics and review.
KEPT_FROM_STAGE_2 = ["ShopBus", "ShopArchive", "AuditQueue", "AllShopEventsRule", "AuditQueuePolicy",
                     "AnalyticsQueue", "ShopEventsToAnalytics", "AnalyticsQueuePolicy",
                     "ReviewQueue", "OrderPlacedToReview", "ReviewQueuePolicy"]
#: Stage 2's queues (with their rules and policies) that the functions replace.
REPLACED_BY_FUNCTIONS = ["OrderProcessingQueue", "OrderPlacedToOrderProcessing", "OrderProcessingQueuePolicy",
                         "InventoryQueue", "OrderPlacedToInventory", "InventoryQueuePolicy"]
FUNCTIONS = ["OrderProcessingFunction", "InventoryFunction"]


@pytest.fixture
def cloud(stage_dir: Path) -> Iterator[LocalCloud]:
    with LocalCloud.from_template(stage_dir) as cloud:
        yield cloud


def stock(cloud: LocalCloud) -> DynamoDBStockRepository:
    return DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable"))


def place(cloud: LocalCloud, *carts: Cart) -> list[OrderPlaced]:
    """The storefront places the orders (one PutEvents call); then everything runs to the end."""
    orders = Storefront(cloud.outputs["EventBusName"]).place_orders(carts)
    cloud.run_until_idle()
    return orders


def cart(*lines: tuple[str, int], customer_id: str = "customer-1") -> Cart:
    return Cart(customer_id, [OrderLine(sku=sku, quantity=quantity, unit_price_cents=1500) for sku, quantity in lines])


def status_of(cloud: LocalCloud, order_id: str) -> str | None:
    item = boto3.client("dynamodb").get_item(
        TableName=cloud.physical_id("OrdersTable"), Key={"order_id": {"S": order_id}}).get("Item")
    return item["status"]["S"] if item else None


def published(cloud: LocalCloud, detail_type: str | None = None) -> list[dict[str, Any]]:
    """The shop events on the bus, in order, as the audit queue (stage 1's copy of every shop event) holds them."""
    events = [json.loads(body) for body in cloud.messages("AuditQueue")]
    return [e for e in events if detail_type is None or e["detail-type"] == detail_type]


def failure_records(cloud: LocalCloud) -> list[dict[str, Any]]:
    return [json.loads(body) for body in cloud.messages("ConsumerFailuresQueue")]


class TestChoreography:
    """Each service reacts to events and publishes what happened; nobody calls anybody."""

    def test_an_order_in_stock_is_confirmed_with_inventory_reserved_and_order_confirmed_published(
        self, cloud: LocalCloud
    ) -> None:
        """A rule invokes each function asynchronously with the event; each publishes its follow-up event.
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html
        """
        # given stock for the order
        seed_stock(stock(cloud), {"BOOK-001": 5})
        # when the storefront places it
        [order] = place(cloud, cart(("BOOK-001", 2)))
        # then the order is confirmed, and the chain of events is on the bus
        assert status_of(cloud, order.order_id) == "CONFIRMED"
        chain = [e for e in published(cloud) if e["detail"]["order_id"] == order.order_id]
        assert [e["detail-type"] for e in chain] == ["OrderPlaced", "InventoryReserved", "OrderConfirmed"]
        assert {e["detail"]["correlation_id"] for e in chain} == {order.correlation_id}
        [confirmed] = published(cloud, "OrderConfirmed")
        assert (confirmed["source"], confirmed["detail"]["total_cents"]) == ("shop.orders", 3000)
        assert stock(cloud).stock_of("BOOK-001") == 3
        # and both functions were invoked asynchronously, the order processor twice
        assert [i.trigger for i in cloud.invocations("InventoryFunction")] == ["async"]
        assert [i.trigger for i in cloud.invocations("OrderProcessingFunction")] == ["async", "async"]
        assert all(i.ok for i in cloud.invocations())

    def test_an_order_out_of_stock_is_marked_so_and_nothing_is_confirmed(self, cloud: LocalCloud) -> None:
        """OutOfStock is published instead of InventoryReserved.
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html
        """
        seed_stock(stock(cloud), {"BOOK-001": 1})
        [order] = place(cloud, cart(("BOOK-001", 2)))
        assert status_of(cloud, order.order_id) == "OUT_OF_STOCK"
        [out] = published(cloud, "OutOfStock")
        assert {k: out["detail"][k] for k in ("sku", "requested", "available")} == {
            "sku": "BOOK-001", "requested": 2, "available": 1}
        assert published(cloud, "OrderConfirmed") == []
        assert stock(cloud).stock_of("BOOK-001") == 1


class TestStockNeverNegative:
    """The check and the write are one atomic step, so no order takes stock that is not there."""

    def test_of_two_orders_for_the_last_units_exactly_one_wins(self, cloud: LocalCloud) -> None:
        """A conditional update (`stock >= :quantity`) fails instead of going below zero.
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
        """
        seed_stock(stock(cloud), {"MUG-001": 2})
        orders = place(cloud, cart(("MUG-001", 2), customer_id="alice"), cart(("MUG-001", 2), customer_id="bob"))
        assert sorted(status_of(cloud, o.order_id) for o in orders) == ["CONFIRMED", "OUT_OF_STOCK"]
        assert len(published(cloud, "InventoryReserved")) == len(published(cloud, "OutOfStock")) == 1
        assert stock(cloud).stock_of("MUG-001") == 0

    def test_many_orders_for_few_units_confirm_as_many_as_there_are_units(self, cloud: LocalCloud) -> None:
        """https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html"""
        seed_stock(stock(cloud), {"SHIRT-001": 3})
        orders = place(cloud, *(cart(("SHIRT-001", 1), customer_id=f"customer-{n}") for n in range(8)))
        statuses = [status_of(cloud, o.order_id) for o in orders]
        assert (statuses.count("CONFIRMED"), statuses.count("OUT_OF_STOCK")) == (3, 5)
        assert stock(cloud).stock_of("SHIRT-001") == 0

    def test_a_multi_line_order_reserves_all_or_nothing(self, cloud: LocalCloud) -> None:
        """TransactWriteItems: if any condition fails, none of the writes happens.
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
        """
        seed_stock(stock(cloud), {"BOOK-001": 5, "BOOK-002": 5, "MUG-001": 0})
        [order] = place(cloud, cart(("BOOK-001", 1), ("BOOK-002", 2), ("MUG-001", 1)))
        assert status_of(cloud, order.order_id) == "OUT_OF_STOCK"
        assert [stock(cloud).stock_of(sku) for sku in ("BOOK-001", "BOOK-002", "MUG-001")] == [5, 5, 0]
        [out] = published(cloud, "OutOfStock")
        assert out["detail"]["sku"] == "MUG-001"


def redeliver(cloud: LocalCloud, function: str, event: Mapping[str, Any]) -> None:
    """Deliver `event` to the function again, as an asynchronous invocation (as the rule did)."""
    response = boto3.client("lambda").invoke(
        FunctionName=cloud.physical_id(function), InvocationType="Event", Payload=json.dumps(event))
    assert response["StatusCode"] == 202


class TestAtLeastOnceDelivery:
    """EventBridge and Lambda deliver at least once; Powertools Idempotency, keyed on the
    event's id, makes the second delivery return the first one's result."""

    def test_the_same_order_placed_delivered_twice_takes_stock_once_and_publishes_once(self, cloud: LocalCloud) -> None:
        """https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html
        """
        # given an order whose stock is reserved
        seed_stock(stock(cloud), {"BOOK-001": 5})
        place(cloud, cart(("BOOK-001", 2)))
        [first] = cloud.invocations("InventoryFunction")
        # when the very same event reaches the inventory function again
        redeliver(cloud, "InventoryFunction", first.event)
        cloud.run_until_idle()
        # then it ran without error, gave the saved result, and had no effect
        [_, again] = cloud.invocations("InventoryFunction")
        assert again.ok and again.event == first.event and again.result == first.result
        assert stock(cloud).stock_of("BOOK-001") == 3
        assert len(published(cloud, "InventoryReserved")) == 1
        assert len(published(cloud, "OrderConfirmed")) == 1

    def test_the_same_inventory_reserved_delivered_twice_confirms_and_publishes_once(self, cloud: LocalCloud) -> None:
        """https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/"""
        seed_stock(stock(cloud), {"BOOK-001": 5})
        place(cloud, cart(("BOOK-001", 1)))
        reserved = next(i.event for i in cloud.invocations("OrderProcessingFunction")
                        if i.event["detail-type"] == "InventoryReserved")
        redeliver(cloud, "OrderProcessingFunction", reserved)
        cloud.run_until_idle()
        assert len(published(cloud, "OrderConfirmed")) == 1
        assert all(i.ok for i in cloud.invocations("OrderProcessingFunction"))

    def test_each_handled_event_leaves_a_completed_record_that_expires(self, cloud: LocalCloud) -> None:
        """Powertools keeps one record per function and event in the table, with a TTL attribute.
        https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html
        """
        seed_stock(stock(cloud), {"BOOK-001": 5})
        place(cloud, cart(("BOOK-001", 1)))
        # moto's CloudFormation drops TimeToLiveSpecification (and moto never expires items),
        # so the template is read for it rather than DescribeTimeToLive.
        assert cloud.stage is not None
        table_properties = cloud.stage.cloudformation["Resources"]["IdempotencyTable"]["Properties"]
        assert table_properties["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
        records = boto3.client("dynamodb").scan(TableName=cloud.physical_id("IdempotencyTable"))["Items"]
        # OrderPlaced twice (once per function), then InventoryReserved
        assert len(records) == len(cloud.invocations()) == 3
        assert {r["status"]["S"] for r in records} == {"COMPLETED"}
        assert all(int(r["expiration"]["N"]) > cloud.clock.now() for r in records)


class TestFailures:
    """An invocation that raises is retried twice; then Lambda sends its invocation record to OnFailure."""

    def test_a_failing_consumer_is_retried_twice_then_the_on_failure_queue_gets_the_record(
        self, cloud: LocalCloud
    ) -> None:
        """One minute before the second attempt, two more before the third; then the record.
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
        """
        # given an order the shop rejects (its SKU is not in the catalogue)
        [order] = place(cloud, cart(("UNICORN-001", 1)))
        for function in FUNCTIONS:
            attempts = cloud.invocations(function)
            # then each function tried it three times, 60 s then 120 s apart
            assert [a.ok for a in attempts] == [False, False, False], function
            gaps = [later.time - earlier.time for earlier, later in zip(attempts, attempts[1:])]
            assert gaps == [pytest.approx(60, abs=1), pytest.approx(120, abs=1)], function
        # and the failures queue holds one invocation record per function
        records = {r["requestContext"]["functionArn"].split(":")[6]: r for r in failure_records(cloud)}
        assert set(records) == {cloud.physical_id(f) for f in FUNCTIONS}
        for function, record in records.items():
            assert record["requestContext"]["condition"] == "RetriesExhausted"
            assert record["requestContext"]["approximateInvokeCount"] == 3
            assert record["requestPayload"]["detail"]["order_id"] == order.order_id
            assert record["responsePayload"]["errorType"] == "OrderRejected"
        assert status_of(cloud, order.order_id) is None

    def test_each_function_retries_twice_and_names_the_failures_queue_in_its_event_invoke_config(
        self, cloud: LocalCloud
    ) -> None:
        """A rule's own retry policy and DLQ cover handing the event to Lambda; once Lambda has
        queued it, the function's EventInvokeConfig decides. So OnFailure is set there.
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-configuring.html
        """
        client = boto3.client("lambda")
        for function in FUNCTIONS:
            config = client.get_function_event_invoke_config(FunctionName=cloud.physical_id(function))
            assert config["MaximumRetryAttempts"] == 2, function
            queue_arn = boto3.client("sqs").get_queue_attributes(
                QueueUrl=cloud.physical_id("ConsumerFailuresQueue"), AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            assert config["DestinationConfig"]["OnFailure"]["Destination"] == queue_arn, function

    def test_a_successful_order_leaves_nothing_in_the_failures_queue(self, cloud: LocalCloud) -> None:
        """OnFailure receives records of failed invocations only.
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
        """
        seed_stock(stock(cloud), {"BOOK-001": 1})
        place(cloud, cart(("BOOK-001", 1)), cart(("BOOK-001", 1)))  # one confirmed, one out of stock
        assert failure_records(cloud) == []


class TestResources:
    """What the template must hold besides the behaviour."""

    def test_each_function_may_touch_only_its_own_tables(self, cloud: LocalCloud) -> None:
        """Least privilege with SAM policy templates: each role names the tables the function uses.
        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-policy-templates.html
        """
        assert cloud.stage is not None
        tables = {"OrdersTable", "StockTable", "ReservationsTable", "IdempotencyTable"}
        wanted = {"OrderProcessingFunction": {"OrdersTable", "IdempotencyTable"},
                  "InventoryFunction": {"StockTable", "ReservationsTable", "IdempotencyTable"}}
        resources = cloud.stage.cloudformation["Resources"]
        for function, expected in wanted.items():
            role = json.dumps(resources[f"{function}Role"]["Properties"]["Policies"])
            assert {t for t in tables if f'"Ref": "{t}"' in role} == expected, function
            assert '"Action": "*"' not in role and '"dynamodb:*"' not in role, function

    def test_stage_2_is_kept_except_the_queues_the_functions_replace(self, stage_dir: Path) -> None:
        """A stage adds to the one before: stage 1's resources, analytics and review are there as they were.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-anatomy.html
        """
        previous = read_template(CHAPTERS / PREVIOUS_STAGE / "template.yaml")["Resources"]
        current = read_template(stage_dir / "template.yaml")["Resources"]
        assert sorted(previous) == sorted(KEPT_FROM_STAGE_2 + REPLACED_BY_FUNCTIONS)
        assert {logical_id: current.get(logical_id) for logical_id in KEPT_FROM_STAGE_2} == {
            logical_id: previous[logical_id] for logical_id in KEPT_FROM_STAGE_2}
        assert not set(REPLACED_BY_FUNCTIONS) & set(current)


# -- the chapter's own pages (not a learner's workspace) ---------------------------------------------




def readme_diffs() -> dict[str, str]:
    """The README's template diff, from stage 2's template to stage 3's: what this chapter changes."""
    return {"template diff": stage_diff(PREVIOUS_STAGE, STAGE)}


@pytest.mark.usefixtures("chapter_only")
class TestChapter:
    def test_the_readme_shows_the_template_diff_from_stage_2(self) -> None:
        """The README's diff is the diff of the two templates as they are (rewrite it by running this file).
        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification.html
        """
        check_readme(STAGE, readme_diffs(), __file__)

    @pytest.mark.notebook
    def test_the_notebook_runs_in_seconds_and_shows_the_choreography_retries_and_one_effect(self) -> None:
        """The chapter's notebook runs stage 3 on the local cloud: choreography, retries 60 s and
        120 s apart, the OnFailure record, and a redelivered event with one effect.
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html
        """
        from edakit.notebooks import execute_notebook, outputs_of, text_of

        notebook, seconds = execute_notebook(NOTEBOOK)
        outputs = outputs_of(notebook)
        text = text_of(outputs)
        assert "alice: CONFIRMED" in text and "bob: OUT_OF_STOCK" in text
        assert "OrderPlaced → InventoryReserved → OrderConfirmed" in text
        assert "attempts at +0 s, +60 s, +180 s" in text
        assert "condition RetriesExhausted after 3 attempts" in text
        assert "delivered 2 times: stock taken once (5 → 4), InventoryReserved published 1 time" in text
        assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook draws no timeline"
        assert seconds < NOTEBOOK_SECONDS, f"the notebook took {seconds:.1f} s"


if __name__ == "__main__":
    print(write_readme(STAGE, readme_diffs(), __file__))
