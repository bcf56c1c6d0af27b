"""Stage 6, real-time analytics with Kinesis: a rule sends placed and confirmed orders to
AnalyticsStream (partitioned by customer), the storefront puts its clickstream there directly
(partitioned by session), and AnalyticsFunction counts sales per minute and top products over
one-minute tumbling windows, writing each window's totals to AnalyticsTable.

The same tests check a learner's workspace: `pytest tests/stages/test_stage_06.py --stage-dir workspace/`.
Run this file (`python tests/stages/test_stage_06.py`) to rewrite the diff in the chapter's README.
"""

from __future__ import annotations

import base64
import datetime as dt
import difflib
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
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

from shop.adapters.analytics import DynamoDBWindowResults  # noqa: E402
from shop.adapters.dynamodb import DynamoDBStockRepository  # noqa: E402
from shop.analytics import ProductActivity, WindowTotals, per_window  # noqa: E402
from shop.clickstream import Clickstream  # noqa: E402
from shop.events import OrderLine, OrderPlaced, ProductAddedToCart, ProductViewed  # noqa: E402
from shop.inventory import seed_stock  # noqa: E402
from shop.storefront import Cart, Storefront  # noqa: E402

STAGE = "06-analytics"
PREVIOUS_STAGE = "05-fanout"
NOTEBOOK = NOTEBOOKS / "06-analytics.py"
#: The notebook is a chapter page: it must run in seconds (wall time, with the kernel's start).
NOTEBOOK_SECONDS = 10

#: What stage 6 adds to stage 5; nothing of stage 5 changes.
ADDED_IN_STAGE_6 = ["AnalyticsStream", "OrderEventsToAnalyticsStreamRole", "OrderEventsToAnalyticsStream",
                    "AnalyticsFunction", "AnalyticsTable", "AnalyticsFailuresQueue"]
OUTPUTS_ADDED_IN_STAGE_6 = {"AnalyticsStreamName", "AnalyticsTableName", "AnalyticsFailuresQueueUrl"}
PRICES = {"BOOK-001": 3999, "BOOK-002": 4500, "MUG-001": 1200, "SHIRT-001": 2000, "STICKER-001": 300}
CUSTOMERS = ["alice", "bob", "carol", "dave"]


@pytest.fixture
def cloud(stage_dir: Path) -> Iterator[LocalCloud]:
    with LocalCloud.from_template(stage_dir) as cloud:
        seed_stock(DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable")),
                   {sku: 1000 for sku in PRICES})
        yield cloud


def window_start(when: float) -> str:
    """The one-minute tumbling window a record that arrives at `when` belongs to, as Lambda names it."""
    start = dt.datetime.fromtimestamp(when // 60 * 60, dt.timezone.utc)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Sent:
    """What the scenario put on the bus and the stream, by the minute it was put."""

    orders: dict[str, list[OrderPlaced]] = field(default_factory=dict)
    clicks: dict[str, list[ProductViewed | ProductAddedToCart]] = field(default_factory=dict)

    def expected(self) -> dict[str, WindowTotals]:
        """The totals each minute must have, computed from the events, not from the function."""
        minutes: dict[str, WindowTotals] = {}
        for minute in sorted(set(self.orders) | set(self.clicks)):
            totals = minutes.setdefault(minute, WindowTotals())
            for order in self.orders.get(minute, []):
                totals.orders_placed += 1
                totals.sales_cents += sum(line.quantity * line.unit_price_cents for line in order.lines)
                for line in order.lines:
                    totals.products.setdefault(line.sku, ProductActivity()).units_ordered += line.quantity
            for click in self.clicks.get(minute, []):
                activity = totals.products.setdefault(click.sku, ProductActivity())
                if isinstance(click, ProductViewed):
                    activity.views += 1
                else:
                    activity.added_to_cart += 1
        return minutes


def shop_for(cloud: LocalCloud, minutes: int = 3, seed: int = 6) -> Sent:
    """A few minutes of shopping: each minute, sessions view and add products, then some customers
    check out; then everything runs, which closes the minute's window. Seeded, so repeatable."""
    rng = random.Random(seed)
    storefront = Storefront(cloud.outputs["EventBusName"])
    clickstream = Clickstream(cloud.outputs["AnalyticsStreamName"])
    sent = Sent()
    for _ in range(minutes):
        minute = window_start(cloud.clock.now())
        clicks: list[ProductViewed | ProductAddedToCart] = []
        for customer in CUSTOMERS:
            for sku in rng.sample(sorted(PRICES), k=rng.randint(1, 3)):
                clicks.append(ProductViewed(session_id=f"session-{customer}", sku=sku))
                if rng.random() < 0.5:
                    clicks.append(ProductAddedToCart(session_id=f"session-{customer}", sku=sku, quantity=rng.randint(1, 3)))
        sent.clicks[minute] = clickstream.put(clicks)
        buyers = rng.sample(CUSTOMERS, k=rng.randint(1, 3))
        carts = [Cart(customer, [OrderLine(sku=sku, quantity=rng.randint(1, 2), unit_price_cents=PRICES[sku])
                                 for sku in rng.sample(sorted(PRICES), k=rng.randint(1, 2))]) for customer in buyers]
        sent.orders[minute] = storefront.place_orders(carts)
        cloud.run_until_idle()
    return sent


def window_totals(cloud: LocalCloud) -> dict[str, WindowTotals]:
    """AnalyticsTable's window results, every shard's added up, by minute."""
    return per_window(DynamoDBWindowResults(cloud.outputs["AnalyticsTableName"]).all())


def processed(cloud: LocalCloud) -> list[tuple[str, str, dict[str, Any]]]:
    """Every record the function processed successfully, in processing order: (shard, partition key, event)."""
    out = []
    for invocation in cloud.invocations("AnalyticsFunction"):
        if invocation.ok:
            for record in invocation.event["Records"]:
                out.append((invocation.event["shardId"], record["kinesis"]["partitionKey"],
                            json.loads(base64.b64decode(record["kinesis"]["data"]))))
    return out


class TestSalesPerMinute:
    """Sales per minute and top products, from a few virtual minutes of orders and clicks."""

    def test_each_minute_holds_the_orders_and_sales_placed_in_it(self, cloud: LocalCloud) -> None:
        """Records belong to the window of their arrival; each window's state carries its totals from
        batch to batch, and AnalyticsTable gets them when the window closes.
        https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html
        """
        sent = shop_for(cloud)
        found, expected = window_totals(cloud), sent.expected()
        assert list(found) == list(expected) and len(found) == 3
        for minute, totals in expected.items():
            assert (found[minute].orders_placed, found[minute].sales_cents) == (
                totals.orders_placed, totals.sales_cents), minute
        # every order was confirmed (stock was plenty), and each confirmation was counted once
        assert sum(t.orders_confirmed for t in found.values()) == sum(len(o) for o in sent.orders.values())
        assert sum(t.confirmed_cents for t in found.values()) == sum(t.sales_cents for t in expected.values())

    def test_each_minute_ranks_the_products_as_shoppers_used_them(self, cloud: LocalCloud) -> None:
        """Views and add-to-carts come from the clickstream (PutRecords), units from the orders (the rule).
        https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
        """
        sent = shop_for(cloud)
        found, expected = window_totals(cloud), sent.expected()
        for minute, totals in expected.items():
            assert found[minute].products == totals.products, minute
            assert found[minute].top_products() == totals.top_products(), minute

    def test_a_window_is_written_once_per_shard_when_it_closes(self, cloud: LocalCloud) -> None:
        """The final invocation of a window (isFinalInvokeForWindow) has no records and writes the result.
        https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html
        """
        shop_for(cloud, minutes=2)
        finals = [i for i in cloud.invocations("AnalyticsFunction") if i.event["isFinalInvokeForWindow"]]
        results = DynamoDBWindowResults(cloud.outputs["AnalyticsTableName"]).all()
        assert sorted((i.event["window"]["start"], i.event["shardId"]) for i in finals) == [
            (r.window_start, r.shard_id) for r in results]
        assert all(i.event["Records"] == [] for i in finals)
        assert {r.window_end for r in results} == {"2025-11-28T09:01:00Z", "2025-11-28T09:02:00Z"}


class TestOrderPerShard:
    def test_a_customers_events_reach_one_shard_and_are_processed_in_order(self, cloud: LocalCloud) -> None:
        """The partition key chooses the shard; Lambda reads each shard in order.
        https://docs.aws.amazon.com/streams/latest/dev/key-concepts.html
        https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html
        """
        sent = shop_for(cloud)
        records = processed(cloud)
        orders = [(key, event) for _, key, event in records if event["detail-type"].startswith("Order")]
        for customer in CUSTOMERS:
            assert len({shard for shard, key, _ in records if key == customer}) <= 1, customer
            theirs = [event for key, event in orders if key == customer]
            placed = [o.order_id for minute in sorted(sent.orders) for o in sent.orders[minute] if o.customer_id == customer]
            assert [e["detail"]["order_id"] for e in theirs if e["detail-type"] == "OrderPlaced"] == placed
            # each order is placed before it is confirmed, and confirmed before the customer's next order
            assert [(e["detail-type"], e["detail"]["order_id"]) for e in theirs] == [
                step for order_id in placed for step in (("OrderPlaced", order_id), ("OrderConfirmed", order_id))]
        for customer in CUSTOMERS:  # and a session's clicks are processed in the order they were put
            session = f"session-{customer}"
            put = [c.event_id for minute in sorted(sent.clicks) for c in sent.clicks[minute] if c.session_id == session]
            assert [e["id"] for _, key, e in records if key == session] == put
        assert len({shard for shard, _, _ in records}) == 2  # the keys spread over both shards


def put_poisoned_batch(cloud: LocalCloud) -> tuple[str, str, list[ProductViewed]]:
    """Eight views of one session with a record that is not a shop event in the middle (same shard).
    Returns the poison's shard and sequence number, and the good views."""
    clickstream = Clickstream(cloud.outputs["AnalyticsStreamName"])
    kinesis = boto3.client("kinesis")
    good = clickstream.put([ProductViewed(session_id="session-x", sku="BOOK-001") for _ in range(4)])
    poison = kinesis.put_record(StreamName=cloud.outputs["AnalyticsStreamName"], PartitionKey="session-x",
                                Data=b'{"detail-type": "ProductViewed", "detail": "oops"}')
    good += clickstream.put([ProductViewed(session_id="session-x", sku="BOOK-001") for _ in range(4)])
    cloud.run_until_idle()
    return poison["ShardId"], poison["SequenceNumber"], good


class TestPoisonRecord:
    def test_a_poison_record_is_bisected_down_and_its_position_goes_to_the_failures_queue(self, cloud: LocalCloud) -> None:
        """BisectBatchOnFunctionError splits the failed batch until the bad record is alone; after
        MaximumRetryAttempts the OnFailure destination gets the batch's metadata, not its data.
        https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
        """
        shard, sequence, _ = put_poisoned_batch(cloud)
        [body] = cloud.messages("AnalyticsFailuresQueue")
        record = json.loads(body)
        info = record["KinesisBatchInfo"]
        assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
            shard, sequence, sequence, 1)
        assert info["streamArn"].endswith(f"/{cloud.outputs['AnalyticsStreamName']}")
        assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 3  # the first try and MaximumRetryAttempts: 2
        assert "oops" not in body and "Records" not in record  # the metadata, not the record
        # the batch (4 views, the poison, 4 views) was split in halves until the poison was alone;
        # the halves without it succeeded at once, the poison alone was tried 3 times
        tried = [([r["kinesis"]["sequenceNumber"] == sequence for r in i.event["Records"]], i.ok)
                 for i in cloud.invocations("AnalyticsFunction") if i.event["Records"]]
        assert [(len(poisoned), any(poisoned), ok) for poisoned, ok in tried] == [
            (9, True, False), (4, False, True), (5, True, False), (2, True, False),
            (1, True, False), (1, True, False), (1, True, False), (1, False, True), (3, False, True)]

    def test_the_rest_of_the_batch_is_counted_once(self, cloud: LocalCloud) -> None:
        """A failed invocation returns no state, so the records of a retried half are not counted twice."""
        _, _, good = put_poisoned_batch(cloud)
        [totals] = window_totals(cloud).values()
        assert totals.products == {"BOOK-001": ProductActivity(views=len(good))}

    def test_the_failure_record_leads_back_to_the_record_in_the_stream(self, cloud: LocalCloud) -> None:
        """The records are not in the failure record: read them from the stream before it trims them (24 h).
        https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html
        """
        put_poisoned_batch(cloud)
        info = json.loads(cloud.messages("AnalyticsFailuresQueue")[0])["KinesisBatchInfo"]
        kinesis = boto3.client("kinesis")
        iterator = kinesis.get_shard_iterator(
            StreamName=cloud.outputs["AnalyticsStreamName"], ShardId=info["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=info["startSequenceNumber"])["ShardIterator"]
        [record, *_] = kinesis.get_records(ShardIterator=iterator, Limit=info["batchSize"])["Records"]
        assert record["Data"] == b'{"detail-type": "ProductViewed", "detail": "oops"}'


class TestResources:
    """What the template must hold besides the behaviour."""

    def test_stage_5_is_kept_and_stage_6_only_adds(self, stage_dir: Path) -> None:
        """A stage adds to the one before: every stage 5 resource, output and parameter is there as it was.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-anatomy.html
        """
        previous = read_template(CHAPTERS / PREVIOUS_STAGE / "template.yaml")
        current = read_template(stage_dir / "template.yaml")
        assert {k: current["Resources"].get(k) for k in previous["Resources"]} == previous["Resources"]
        assert sorted(set(current["Resources"]) - set(previous["Resources"])) == sorted(ADDED_IN_STAGE_6)
        assert {k: current["Outputs"].get(k) for k in previous["Outputs"]} == previous["Outputs"]
        assert set(current["Outputs"]) - set(previous["Outputs"]) == OUTPUTS_ADDED_IN_STAGE_6
        assert current["Parameters"] == previous["Parameters"]
        assert current["Globals"]["Function"] | {"CodeUri": None} == previous["Globals"]["Function"] | {"CodeUri": None}

    def test_the_template_text_of_stage_5_is_kept_apart_from_the_description_and_code_location(
        self, stage_dir: Path
    ) -> None:
        """Nothing of stage 5 changes, comments included: the only removed lines are the Description's
        text, and CodeUri when the two stages' code is not in the same place (a workspace's own src/).
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-anatomy.html
        """
        previous = (CHAPTERS / PREVIOUS_STAGE / "template.yaml").read_text().splitlines()
        current = (stage_dir / "template.yaml").read_text().splitlines()
        removed = [line[1:] for line in difflib.unified_diff(previous, current, lineterm="", n=0)
                   if line.startswith("-") and not line.startswith("---")]
        start = previous.index("Description: >-") + 1
        description = previous[start:previous.index("", start)]
        assert [line for line in removed if not line.startswith("    CodeUri: ")] == description

    def test_the_stream_has_two_shards_kept_for_24_hours(self, cloud: LocalCloud) -> None:
        """https://docs.aws.amazon.com/streams/latest/dev/kinesis-extended-retention.html"""
        summary = boto3.client("kinesis").describe_stream_summary(
            StreamName=cloud.outputs["AnalyticsStreamName"])["StreamDescriptionSummary"]
        assert (summary["OpenShardCount"], summary["RetentionPeriodHours"]) == (2, 24)

    def test_the_mapping_reads_one_minute_windows_and_isolates_bad_records(self, cloud: LocalCloud) -> None:
        """https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-parameters.html"""
        [mapping] = boto3.client("lambda").list_event_source_mappings(
            FunctionName=cloud.physical_id("AnalyticsFunction"))["EventSourceMappings"]
        queue_arn = boto3.client("sqs").get_queue_attributes(
            QueueUrl=cloud.outputs["AnalyticsFailuresQueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        assert mapping["StartingPosition"] == "TRIM_HORIZON"
        assert (mapping["TumblingWindowInSeconds"], mapping["BisectBatchOnFunctionError"],
                mapping["MaximumRetryAttempts"]) == (60, True, 2)
        assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": queue_arn}}
        assert mapping.get("FunctionResponseTypes", []) == []

    def test_order_events_reach_the_stream_partitioned_by_customer_through_a_role(self, cloud: LocalCloud) -> None:
        """A Kinesis target needs a role EventBridge assumes; PartitionKeyPath picks the key.
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-identity-based.html
        https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_KinesisParameters.html
        """
        events = boto3.client("events")
        rule = cloud.physical_id("OrderEventsToAnalyticsStream").split("|")[-1].split("/")[-1]
        [target] = events.list_targets_by_rule(Rule=rule, EventBusName=cloud.outputs["EventBusName"])["Targets"]
        assert target["KinesisParameters"] == {"PartitionKeyPath": "$.detail.customer_id"}
        assert target["RoleArn"].split("/")[-1] == cloud.physical_id("OrderEventsToAnalyticsStreamRole")
        assert cloud.stage is not None
        role = cloud.stage.cloudformation["Resources"]["OrderEventsToAnalyticsStreamRole"]["Properties"]
        [statement] = role["Policies"][0]["PolicyDocument"]["Statement"]
        assert (statement["Action"], statement["Resource"]) == ("kinesis:PutRecord", {"Fn::GetAtt": ["AnalyticsStream", "Arn"]})

    def test_the_analytics_function_may_write_its_table_and_nothing_else_of_dynamodb(self, cloud: LocalCloud) -> None:
        """https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-policy-template-list.html"""
        assert cloud.stage is not None
        role = json.dumps(cloud.stage.cloudformation["Resources"]["AnalyticsFunctionRole"]["Properties"]["Policies"])
        assert "AnalyticsTable" in role and "dynamodb:PutItem" in role
        assert "dynamodb:DeleteItem" not in role and '"dynamodb:*"' not in role


# -- the chapter's own pages (not a learner's workspace) ---------------------------------------------


def readme_diffs() -> dict[str, str]:
    """The README's template diff, from stage 5's template to stage 6's: what this chapter changes."""
    return {"template diff": stage_diff(PREVIOUS_STAGE, STAGE)}


@pytest.mark.usefixtures("chapter_only")
class TestChapter:
    def test_the_readme_shows_the_template_diff_from_stage_5(self) -> None:
        """The README's diff is that of the templates as they are (rewrite it by running this file).
        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification.html
        """
        check_readme(STAGE, readme_diffs(), __file__)

    @pytest.mark.notebook
    def test_the_notebook_runs_in_seconds_and_shows_sales_and_top_products(self) -> None:
        """The chapter's notebook runs stage 6 on the local cloud: a few minutes of orders and clicks,
        the windows' totals, a chart, and a poison record.
        https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html
        """
        from edakit.notebooks import execute_notebook, outputs_of, text_of

        notebook, seconds = execute_notebook(NOTEBOOK)
        outputs = outputs_of(notebook)
        text = text_of(outputs)
        assert "| 09:00 |" in text and "| 09:02 |" in text
        assert "the table matches what was sent: True" in text
        assert "AnalyticsFailuresQueue: 1 failure record, batchSize 1" in text
        assert sum("image/png" in o.get("data", {}) for o in outputs) >= 1, "the notebook draws no chart"
        assert seconds < NOTEBOOK_SECONDS, f"the notebook took {seconds:.1f} s"


if __name__ == "__main__":
    print(write_readme(STAGE, readme_diffs(), __file__))
