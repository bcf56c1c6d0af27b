"""Stage 4, buffering with SQS: the order processing rules send to OrdersQueue, which
OrderProcessingFunction drains in batches with partial failures; a message that fails three
times moves to OrdersDLQ and is redriven after the fix; a FIFO queue keeps each order's
status history in order.

The same tests check a learner's workspace: `pytest tests/stages/test_stage_04.py --stage-dir workspace/`.
Run this file (`python tests/stages/test_stage_04.py`) to rewrite the diff in the chapter's README.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import boto3
import pytest

from edakit import LocalCloud
from edakit.chapters import check_readme, stage_diff, write_readme
from edakit.paths import CHAPTERS, NOTEBOOKS, SHOP_SRC
from edakit.redrive import redrive
from edakit.template import read_template

if str(SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(SHOP_SRC))

import shop.orders  # noqa: E402
from shop.adapters.dynamodb import DynamoDBStockRepository  # noqa: E402
from shop.adapters.order_history import DynamoDBStatusHistory  # noqa: E402
from shop.events import InventoryReserved, OrderLine, OrderPlaced, to_put_events_entry  # noqa: E402
from shop.inventory import seed_stock  # noqa: E402
from shop.storefront import Cart, Storefront  # noqa: E402

STAGE = "04-queues"
PREVIOUS_STAGE = "03-consumers"
NOTEBOOK = NOTEBOOKS / "04-queues.py"
#: The notebook is a chapter page: it must run in seconds (wall time, with the kernel's start).
NOTEBOOK_SECONDS = 10

#: Stage 3's resources that stage 4 changes: the order processor's channel (Events) only.
CHANNEL_CHANGED = "OrderProcessingFunction"
#: What stage 4 adds.
ADDED = ["OrdersQueue", "OrdersDLQ", "OrderPlacedToOrdersQueue", "InventoryAnsweredToOrdersQueue",
         "OrdersQueuePolicy", "OrderStatusQueue", "OrderStatusDLQ", "OrderLifecycleToStatusQueue",
         "OrderStatusQueuePolicy", "OrderStatusFunction", "OrderHistoryTable"]
ORDER_RULES = ["OrderPlacedToOrdersQueue", "InventoryAnsweredToOrdersQueue"]
#: A product the storefront sells before the order service's catalogue knows it: a poison order.
NEW_PRODUCT = "POSTER-001"
VISIBILITY_TIMEOUT = 90


@pytest.fixture
def cloud(stage_dir: Path) -> Iterator[LocalCloud]:
    with LocalCloud.from_template(stage_dir) as cloud:
        yield cloud


def stock(cloud: LocalCloud) -> DynamoDBStockRepository:
    return DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable"))


def cart(*lines: tuple[str, int], customer_id: str = "customer-1") -> Cart:
    return Cart(customer_id, [OrderLine(sku=sku, quantity=quantity, unit_price_cents=1500) for sku, quantity in lines])


def place(cloud: LocalCloud, *carts: Cart) -> list[OrderPlaced]:
    return Storefront(cloud.outputs["EventBusName"]).place_orders(carts)


def status_of(cloud: LocalCloud, order_id: str) -> str | None:
    item = boto3.client("dynamodb").get_item(
        TableName=cloud.physical_id("OrdersTable"), Key={"order_id": {"S": order_id}}).get("Item")
    return item["status"]["S"] if item else None


def dead_lettered(cloud: LocalCloud, queue: str = "OrdersDLQ") -> list[tuple[str, str]]:
    """(detail-type, order_id) of each event in a DLQ."""
    return [(e["detail-type"], e["detail"]["order_id"]) for e in map(json.loads, cloud.messages(queue))]


def history(cloud: LocalCloud, order_id: str) -> list[str]:
    return DynamoDBStatusHistory(cloud.physical_id("OrderHistoryTable")).history_of(order_id)


def message_ids(invocation: Any) -> list[str]:
    return [r["messageId"] for r in invocation.event["Records"]]


def order_ids(invocation: Any) -> list[str]:
    return [json.loads(r["body"])["detail"]["order_id"] for r in invocation.event["Records"]]


@pytest.fixture
def catalogue_with_new_product(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The fix, deployed: the order service's catalogue gains the new product. The functions
    run in this process and share the domain module, so replacing the catalogue is the deploy."""

    def deploy() -> None:
        monkeypatch.setattr(shop.orders, "CATALOGUE", MappingProxyType({**shop.orders.CATALOGUE, NEW_PRODUCT: "Poster"}))

    return deploy


class TestBuffering:
    """OrdersQueue takes every order at once; the function drains it at its own pace."""

    def test_a_burst_loses_no_order_every_order_is_recorded_or_in_the_dlq(self, cloud: LocalCloud) -> None:
        """The queue absorbs a burst beyond what the function processes at once; a message that
        fails maxReceiveCount times moves to the DLQ, and nothing else does.
        https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
        """
        # given a slow order processor (2 s a batch) and a burst of 40 orders, 3 of them poison
        seed_stock(stock(cloud), {"BOOK-001": 100})
        cloud.function("OrderProcessingFunction").duration = 2.0
        carts = [cart((NEW_PRODUCT if n % 13 == 5 else "BOOK-001", 1), customer_id=f"c{n}") for n in range(40)]
        # when they are placed within a second
        orders = place(cloud, *carts)
        # then the queue holds them before the function has taken any
        assert cloud.queue_depth("OrdersQueue")["visible"] == 40
        cloud.run_until_idle()
        poison = {o.order_id for o, c in zip(orders, carts) if c.lines[0].sku == NEW_PRODUCT}
        assert len(poison) == 3
        # and every good order is confirmed, every poison one is in the DLQ, and nothing else is
        for order in orders:
            assert status_of(cloud, order.order_id) == (None if order.order_id in poison else "CONFIRMED")
        assert sorted(dead_lettered(cloud)) == sorted(("OrderPlaced", o) for o in poison)
        assert cloud.queue_depth("OrdersQueue") == {"visible": 0, "in_flight": 0, "delayed": 0}

    def test_the_function_gets_batches_of_up_to_10_and_at_most_5_at_once(self, cloud: LocalCloud) -> None:
        """BatchSize caps a batch's records; ScalingConfig MaximumConcurrency caps the batches in flight.
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
        """
        seed_stock(stock(cloud), {"BOOK-001": 100})
        cloud.function("OrderProcessingFunction").duration = 5.0
        place(cloud, *(cart(("BOOK-001", 1), customer_id=f"c{n}") for n in range(60)))
        cloud.run_until_idle()
        invocations = cloud.invocations("OrderProcessingFunction")
        assert {i.trigger for i in invocations} == {"sqs"}
        assert max(len(i.event["Records"]) for i in invocations) == 10
        overlapping = max(sum(1 for j in invocations if j.time <= i.time < j.time + 5.0) for i in invocations)
        assert overlapping == 5

    def test_a_partial_batch_failure_returns_only_the_failed_message(self, cloud: LocalCloud) -> None:
        """With ReportBatchItemFailures, the handler names the failed messages; Lambda deletes the others.
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
        """
        seed_stock(stock(cloud), {"BOOK-001": 10})
        good = place(cloud, cart(("BOOK-001", 1), customer_id="a"), cart(("BOOK-001", 1), customer_id="b"))
        [poison] = place(cloud, cart((NEW_PRODUCT, 1), customer_id="c"))
        more = place(cloud, cart(("BOOK-001", 1), customer_id="d"))
        cloud.run_for(2)  # the batching window (1 s) closes: one batch of the four OrderPlaced
        [first, *_] = cloud.invocations("OrderProcessingFunction")
        assert order_ids(first)[:4] == [o.order_id for o in (*good, poison, *more)]
        # the response names the poison message alone
        poison_message = message_ids(first)[2]
        assert first.ok and first.result == {"batchItemFailures": [{"itemIdentifier": poison_message}]}
        # and only it is left, in flight until its visibility timeout ends
        assert cloud.queue_depth("OrdersQueue") == {"visible": 0, "in_flight": 1, "delayed": 0}
        assert all(status_of(cloud, o.order_id) in ("PLACED", "CONFIRMED") for o in (*good, *more))

    def test_a_failed_message_waits_out_the_visibility_timeout_then_moves_to_the_dlq(self, cloud: LocalCloud) -> None:
        """A failed message is received again once its visibility timeout (90 s) ends; the third
        failed receive is the last (maxReceiveCount 3).
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
        """
        [poison] = place(cloud, cart((NEW_PRODUCT, 1)))
        cloud.run_until_idle()
        attempts = [i for i in cloud.invocations("OrderProcessingFunction") if poison.order_id in order_ids(i)]
        assert [a.event["Records"][0]["attributes"]["ApproximateReceiveCount"] for a in attempts] == ["1", "2", "3"]
        gaps = [later.time - earlier.time for earlier, later in zip(attempts, attempts[1:])]
        assert gaps == [pytest.approx(VISIBILITY_TIMEOUT, abs=1.1)] * 2
        assert dead_lettered(cloud) == [("OrderPlaced", poison.order_id)]

    def test_redrive_after_the_fix_processes_the_dlqs_messages_and_empties_it(
        self, cloud: LocalCloud, catalogue_with_new_product: Any
    ) -> None:
        """Once the cause is fixed, a DLQ redrive sends the messages back to their source queue.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html
        """
        # given two orders for a product the catalogue does not know yet, dead-lettered
        seed_stock(stock(cloud), {NEW_PRODUCT: 5})
        orders = place(cloud, cart((NEW_PRODUCT, 1), customer_id="a"), cart((NEW_PRODUCT, 2), customer_id="b"))
        cloud.run_until_idle()
        assert len(dead_lettered(cloud)) == 2
        # when the fix is deployed and the DLQ redriven (its source found from the RedrivePolicy)
        catalogue_with_new_product()
        result = redrive(cloud.physical_id("OrdersDLQ"))
        cloud.run_until_idle()
        # then both orders are recorded, and the DLQ is empty
        assert (result.moved, result.source_url) == (2, cloud.physical_id("OrdersQueue"))
        assert [status_of(cloud, o.order_id) for o in orders] == ["PLACED", "PLACED"]
        assert cloud.messages("OrdersDLQ") == []
        redriven = [i for i in cloud.invocations("OrderProcessingFunction") if i.time >= cloud.clock.now() - 5]
        assert redriven and all(i.ok and i.result == {"batchItemFailures": []} for i in redriven)


class TestOrderStatusFifo:
    """A FIFO queue hands a group's messages over in order, and one at a time."""

    def test_each_orders_status_history_is_kept_in_lifecycle_order(self, cloud: LocalCloud) -> None:
        """Messages of one message group are received in the order they were sent.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-message-order.html
        """
        seed_stock(stock(cloud), {"MUG-001": 3})
        orders = place(cloud, *(cart(("MUG-001", 1), customer_id=f"c{n}") for n in range(5)))
        cloud.run_until_idle()
        histories = sorted(tuple(history(cloud, o.order_id)) for o in orders)
        assert histories == [("PLACED", "OUT_OF_STOCK")] * 2 + [("PLACED", "RESERVED", "CONFIRMED")] * 3
        records = [r for i in cloud.invocations("OrderStatusFunction") for r in i.event["Records"]]
        # one group for all (EventBridge's MessageGroupId is static), one message at a time
        assert {r["attributes"]["MessageGroupId"] for r in records} == {"order-status"}
        assert {len(i.event["Records"]) for i in cloud.invocations("OrderStatusFunction")} == {1}

    def test_a_failing_message_holds_back_every_message_behind_it_until_it_leaves_for_the_dlq(
        self, cloud: LocalCloud
    ) -> None:
        """With one message group, a message that fails blocks the group: the messages behind it
        wait, in order, until it succeeds or moves to the DLQ.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-message-order.html
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
        """
        # given a stray InventoryReserved for an order never placed, then a real order
        seed_stock(stock(cloud), {"BOOK-001": 5})
        stray = InventoryReserved(order_id="never-placed", lines=[{"sku": "BOOK-001", "quantity": 1}])
        boto3.client("events").put_events(Entries=[to_put_events_entry(stray, cloud.outputs["EventBusName"])])
        [order] = place(cloud, cart(("BOOK-001", 1)))
        cloud.run_until_idle()
        calls = cloud.invocations("OrderStatusFunction")
        stray_calls = [i for i in calls if order_ids(i) == ["never-placed"]]
        order_calls = [i for i in calls if order_ids(i) == [order.order_id]]
        # then the stray one failed three times (a batch whose every record fails is an error
        # in Powertools), and the order's first message waited behind it
        assert [i.ok for i in stray_calls] == [False] * 3
        assert "HistoryNotStarted" in stray_calls[0].error
        assert order_calls[0].time >= stray_calls[-1].time + 60
        assert dead_lettered(cloud, "OrderStatusDLQ") == [("InventoryReserved", "never-placed")]
        # and the order's history is complete and in order
        assert history(cloud, order.order_id) == ["PLACED", "RESERVED", "CONFIRMED"]


class TestResources:
    """What the template must hold besides the behaviour."""

    def test_the_order_processor_keeps_its_handler_and_code_only_its_channel_changes(self, stage_dir: Path) -> None:
        """Business logic is written once: the same Handler and CodeUri, the same environment and
        policies; Events is now one SQS event source (and EventInvokeConfig, which only
        asynchronous invocations use, is gone).
        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-sqs.html
        """
        previous = read_template(CHAPTERS / PREVIOUS_STAGE / "template.yaml")
        current = read_template(stage_dir / "template.yaml")
        assert current["Globals"] == previous["Globals"]
        before = dict(previous["Resources"][CHANNEL_CHANGED]["Properties"])
        after = dict(current["Resources"][CHANNEL_CHANGED]["Properties"])
        events = after.pop("Events")
        for key in ("Events", "EventInvokeConfig"):
            before.pop(key)
        assert after == before
        [source] = events.values()
        assert source["Type"] == "SQS"

    def test_the_orders_queue_mapping_and_redrive_policy(self, cloud: LocalCloud) -> None:
        """Visibility timeout at least six times the function's timeout; a DLQ after 3 receives;
        batches of 10 with a batching window, partial failures, and at most 5 batches at once.
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
        """
        sqs = boto3.client("sqs")
        attributes = sqs.get_queue_attributes(QueueUrl=cloud.physical_id("OrdersQueue"), AttributeNames=["All"])["Attributes"]
        function = cloud.function("OrderProcessingFunction")
        [mapping] = boto3.client("lambda").list_event_source_mappings(FunctionName=function.name)["EventSourceMappings"]
        assert int(attributes["VisibilityTimeout"]) >= 6 * function.timeout + mapping["MaximumBatchingWindowInSeconds"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=cloud.physical_id("OrdersDLQ"),
                                           AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}
        assert mapping["EventSourceArn"] == attributes["QueueArn"]
        assert (mapping["BatchSize"], mapping["FunctionResponseTypes"], mapping["ScalingConfig"]) == (
            10, ["ReportBatchItemFailures"], {"MaximumConcurrency": 5})
        assert mapping["MaximumBatchingWindowInSeconds"] > 0

    def test_the_order_queues_accept_messages_only_from_their_rules(self, stage_dir: Path) -> None:
        """An SQS queue policy lets EventBridge send on behalf of the named rules only.
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions
        """
        resources = read_template(stage_dir / "template.yaml")["Resources"]
        for policy, queue, rules in [("OrdersQueuePolicy", "OrdersQueue", ORDER_RULES),
                                     ("OrderStatusQueuePolicy", "OrderStatusQueue", ["OrderLifecycleToStatusQueue"])]:
            [statement] = resources[policy]["Properties"]["PolicyDocument"]["Statement"]
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}
            assert statement["Action"] == "sqs:SendMessage"
            sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
            assert sorted(json.dumps(s) for s in (sources if isinstance(sources, list) else [sources])) == sorted(
                json.dumps({"Fn::GetAtt": [rule, "Arn"]}) for rule in rules)
            for rule in rules:
                [target] = resources[rule]["Properties"]["Targets"]
                assert target["Arn"] == {"Fn::GetAtt": [queue, "Arn"]}

    def test_the_status_queue_is_fifo_with_content_based_deduplication_and_a_fifo_dlq(self, cloud: LocalCloud) -> None:
        """EventBridge sends no deduplication id, so the FIFO queue deduplicates on content; a FIFO
        queue's DLQ is a FIFO queue too.
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
        """
        sqs = boto3.client("sqs")
        queue = sqs.get_queue_attributes(QueueUrl=cloud.physical_id("OrderStatusQueue"), AttributeNames=["All"])["Attributes"]
        dlq = sqs.get_queue_attributes(QueueUrl=cloud.physical_id("OrderStatusDLQ"), AttributeNames=["All"])["Attributes"]
        assert (queue["FifoQueue"], queue["ContentBasedDeduplication"], dlq["FifoQueue"]) == ("true", "true", "true")
        assert json.loads(queue["RedrivePolicy"])["deadLetterTargetArn"] == dlq["QueueArn"]

    def test_stage_3_is_kept_except_the_order_processors_channel(self, stage_dir: Path) -> None:
        """A stage adds to the one before: every stage 3 resource is there as it was, except the
        order processor's Events (checked above); stage 4 adds the queues, rules and the status history.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-anatomy.html
        """
        previous = read_template(CHAPTERS / PREVIOUS_STAGE / "template.yaml")
        current = read_template(stage_dir / "template.yaml")
        kept = [r for r in previous["Resources"] if r != CHANNEL_CHANGED]
        assert {r: current["Resources"].get(r) for r in kept} == {r: previous["Resources"][r] for r in kept}
        assert sorted(current["Resources"]) == sorted([*previous["Resources"], *ADDED])
        assert {k: v for k, v in current["Outputs"].items() if k in previous["Outputs"]} == previous["Outputs"]


# -- the chapter's own pages (not a learner's workspace) ---------------------------------------------




def readme_diffs() -> dict[str, str]:
    """The README's template diff, from stage 3's template to stage 4's: what this chapter changes."""
    return {"template diff": stage_diff(PREVIOUS_STAGE, STAGE)}


@pytest.mark.usefixtures("chapter_only")
class TestChapter:
    def test_the_readme_shows_the_template_diff_from_stage_3(self) -> None:
        """The README's diff is the diff of the two templates as they are (rewrite it by running this file).
        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification.html
        """
        check_readme(STAGE, readme_diffs(), __file__)

    @pytest.mark.notebook
    def test_the_notebook_runs_in_seconds_and_shows_the_burst_the_dlq_the_redrive_and_fifo_order(self) -> None:
        """The chapter's notebook runs stage 4 on the local cloud: a burst absorbed by the queue
        (plotted), poison orders dead-lettered after 3 receives, a redrive after the fix, and
        each order's status history in order.
        https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
        """
        from edakit.notebooks import execute_notebook, outputs_of, text_of

        notebook, seconds = execute_notebook(NOTEBOOK)
        outputs = outputs_of(notebook)
        text = text_of(outputs)
        assert "lost: 0" in text
        assert "receives at +0 s, +91 s, +182 s, then the DLQ" in text
        assert "moved 3 message(s) from" in text and "DLQ now holds 0" in text
        assert "PLACED → RESERVED → CONFIRMED" in text
        assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook draws no plot"
        assert seconds < NOTEBOOK_SECONDS, f"the notebook took {seconds:.1f} s"


if __name__ == "__main__":
    print(write_readme(STAGE, readme_diffs(), __file__))
