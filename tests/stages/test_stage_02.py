"""Stage 2, routing with EventBridge: rules filter the shop's events by their content and send
each consumer (a queue, at this stage) only the events it needs.

The same tests check a learner's workspace: `pytest tests/stages/test_stage_02.py --stage-dir workspace/`.
Run this file (`python tests/stages/test_stage_02.py`) to rewrite the diff in the chapter's README.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from edakit import LocalCloud
from edakit.chapters import check_readme, stage_diff, write_readme
from edakit.paths import CHAPTERS, NOTEBOOKS, SHOP_SRC
from edakit.patterns import as_event, matches, rule_patterns
from edakit.template import read_template

if str(SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(SHOP_SRC))

from shop.events import OrderConfirmed, OrderLine, OrderPlaced, to_put_events_entry  # noqa: E402

STAGE = "02-routing"
PREVIOUS_STAGE = "01-events"
NOTEBOOK = NOTEBOOKS / "02-routing.py"
#: The notebook is a chapter page: it must run in seconds (wall time, with the kernel's start).
NOTEBOOK_SECONDS = 10

#: Each rule of the stage and the queue it targets.
RULE_TARGETS = {
    "AllShopEventsRule": "AuditQueue",
    "OrderPlacedToOrderProcessing": "OrderProcessingQueue",
    "OrderPlacedToInventory": "InventoryQueue",
    "ShopEventsToAnalytics": "AnalyticsQueue",
    "OrderPlacedToReview": "ReviewQueue",
}
EVERY_SHOP_EVENT = {"AllShopEventsRule", "ShopEventsToAnalytics"}
EVERY_ORDER = EVERY_SHOP_EVENT | {"OrderPlacedToOrderProcessing", "OrderPlacedToInventory"}
REVIEWED_ORDER = EVERY_ORDER | {"OrderPlacedToReview"}


def order(total_cents: int, country: str = "FR") -> OrderPlaced:
    """An OrderPlaced of one line worth ``total_cents``, shipping to ``country``."""
    return OrderPlaced(order_id=f"order-{uuid.uuid4().hex[:8]}", customer_id="customer-1",
                       lines=(OrderLine(sku="SKU-1", quantity=1, unit_price_cents=total_cents),),
                       shipping_country=country)


def raw_order(**detail: Any) -> dict[str, Any]:
    """A PutEvents entry claiming to be an OrderPlaced, with whatever detail a faulty producer sends."""
    return {"Source": "shop.storefront", "DetailType": "OrderPlaced", "Detail": json.dumps(detail)}


def entry(source: str, detail_type: str, **detail: Any) -> dict[str, Any]:
    return {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}


#: (what the event is, its PutEvents entry, the rules that must match it). The negative cases are
#: the point: each names an event a careless pattern would let through.
EVENTS: list[tuple[str, dict[str, Any], set[str]]] = [
    ("an order to France", to_put_events_entry(order(12_000, "FR"), "bus"), EVERY_ORDER),
    ("an order to Luxembourg", to_put_events_entry(order(12_000, "LU"), "bus"), EVERY_ORDER),
    ("an order of 499.99 EUR to France", to_put_events_entry(order(49_999, "FR"), "bus"), EVERY_ORDER),
    ("an order of exactly 500 EUR", to_put_events_entry(order(50_000, "FR"), "bus"), REVIEWED_ORDER),
    ("an order of 1200 EUR to Germany", to_put_events_entry(order(120_000, "DE"), "bus"), REVIEWED_ORDER),
    ("an order to the United States", to_put_events_entry(order(3_000, "US"), "bus"), REVIEWED_ORDER),
    ("an order to Switzerland", to_put_events_entry(order(3_000, "CH"), "bus"), REVIEWED_ORDER),
    ("a high-value order to a risky country", to_put_events_entry(order(80_000, "US"), "bus"), REVIEWED_ORDER),
    ("an order whose total is a string", raw_order(total_cents="90000", shipping_country="FR"), EVERY_ORDER),
    ("an order whose country is lower case", raw_order(total_cents=100, shipping_country="fr"), REVIEWED_ORDER),
    ("an OrderConfirmed", to_put_events_entry(
        OrderConfirmed(order_id="order-1", customer_id="customer-1", total_cents=90_000), "bus"), EVERY_SHOP_EVENT),
    ("an OrderPlaced from another shop source", entry("shop.orders", "OrderPlaced", total_cents=90_000,
                                                      shipping_country="US"), EVERY_SHOP_EVENT),
    ("an orderplaced in the wrong case", entry("shop.storefront", "orderplaced", total_cents=100,
                                               shipping_country="FR"), EVERY_SHOP_EVENT),
    ("an event from a partner", entry("partner.crm", "OrderPlaced", total_cents=90_000), set()),
    ("an event from a source that only starts like the shop's", entry("shopping.cart", "OrderPlaced"), set()),
    ("an event whose source is the bare prefix", entry("shop", "OrderPlaced"), set()),
]


@pytest.fixture
def cloud(stage_dir: Path) -> Iterator[LocalCloud]:
    with LocalCloud.from_template(stage_dir) as cloud:
        yield cloud


def publish(cloud: LocalCloud, *entries: dict[str, Any]) -> list[str]:
    """Put the entries on the shop's bus, deliver them, and return their event ids."""
    bus = cloud.outputs["EventBusName"]
    client = boto3.client("events")
    ids: list[str] = []
    for start in range(0, len(entries), 10):  # PutEvents takes at most 10 entries
        batch = [{**item, "EventBusName": bus} for item in entries[start:start + 10]]
        response = client.put_events(Entries=batch)
        assert response["FailedEntryCount"] == 0, response
        ids += [result["EventId"] for result in response["Entries"]]
    cloud.run_until_idle()
    return ids


def queues_reached(cloud: LocalCloud) -> dict[str, set[str]]:
    """For each event id, the queues holding a copy of that event."""
    reached: dict[str, set[str]] = {}
    for queue in RULE_TARGETS.values():
        for body in cloud.messages(queue):
            reached.setdefault(json.loads(body)["id"], set()).add(queue)
    return reached


def queues_of(rules: set[str]) -> set[str]:
    return {RULE_TARGETS[rule] for rule in rules}


class TestRoutingOnTheLocalCloud:
    """End to end: events put on the bus land in exactly the queues whose rules match them."""

    def test_each_event_reaches_exactly_the_queues_whose_rules_match_it(self, cloud: LocalCloud) -> None:
        """A rule sends each matching event to its targets, and no other event.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rules.html
        """
        ids = publish(cloud, *(item for _, item, _ in EVENTS))
        reached = queues_reached(cloud)
        got = {label: reached.get(event_id, set()) for (label, _, _), event_id in zip(EVENTS, ids, strict=True)}
        assert got == {label: queues_of(rules) for label, _, rules in EVENTS}

    def test_a_normal_order_goes_to_order_processing_inventory_and_analytics(self, cloud: LocalCloud) -> None:
        """Two rules with the same pattern each deliver their own copy; more than one rule may match an event.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rules.html
        """
        [event_id] = publish(cloud, to_put_events_entry(order(12_000, "FR"), "bus"))
        assert queues_reached(cloud)[event_id] == {"OrderProcessingQueue", "InventoryQueue", "AnalyticsQueue", "AuditQueue"}

    @pytest.mark.parametrize("total_cents", [50_000, 50_001, 1_000_000])
    def test_an_order_of_500_eur_or_more_also_goes_to_review(self, cloud: LocalCloud, total_cents: int) -> None:
        """Numeric matching: ">=" includes the bound.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
        """
        [event_id] = publish(cloud, to_put_events_entry(order(total_cents, "FR"), "bus"))
        assert "ReviewQueue" in queues_reached(cloud)[event_id]

    @pytest.mark.parametrize("country", ["US", "CH", "GB", "ES"])
    def test_an_order_shipping_outside_the_usual_countries_also_goes_to_review(self, cloud: LocalCloud, country: str) -> None:
        """Anything-but matching with a list: any value except those listed matches.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
        """
        [event_id] = publish(cloud, to_put_events_entry(order(3_000, country), "bus"))
        assert "ReviewQueue" in queues_reached(cloud)[event_id]


class TestEventsThatMustNotMatch:
    """The negative cases, end to end: a pattern is as much about what it keeps out."""

    @pytest.mark.parametrize("country", ["FR", "DE", "BE", "NL", "LU"])
    def test_an_order_of_49999_cents_to_a_usual_country_does_not_reach_review(self, cloud: LocalCloud, country: str) -> None:
        """Neither branch of the `$or` matches: below the bound and inside the anything-but list.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
        """
        [event_id] = publish(cloud, to_put_events_entry(order(49_999, country), "bus"))
        assert "ReviewQueue" not in queues_reached(cloud)[event_id]

    def test_an_order_confirmed_reaches_analytics_but_not_order_processing_or_inventory(self, cloud: LocalCloud) -> None:
        """Every field of a pattern must match: source and detail-type both.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html
        """
        confirmed = OrderConfirmed(order_id="order-1", customer_id="customer-1", total_cents=90_000)
        [event_id] = publish(cloud, to_put_events_entry(confirmed, "bus"))
        assert queues_reached(cloud)[event_id] == {"AnalyticsQueue", "AuditQueue"}

    @pytest.mark.parametrize("source", ["partner.crm", "shopping.cart", "shop", "Shop.storefront"])
    def test_an_event_from_a_non_shop_source_reaches_no_queue(self, cloud: LocalCloud, source: str) -> None:
        """Prefix matching is on the string, case-sensitive: "shopping" does not start with "shop.".

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
        """
        [event_id] = publish(cloud, entry(source, "OrderPlaced", total_cents=90_000, shipping_country="US"))
        assert event_id not in queues_reached(cloud)
        assert all(depth["visible"] == 0 for depth in map(cloud.queue_depth, RULE_TARGETS.values()))

    def test_a_total_sent_as_a_string_does_not_count_as_high_value(self, cloud: LocalCloud) -> None:
        """Numeric matching works with values that are JSON numbers: "90000" is a string.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
        """
        [event_id] = publish(cloud, raw_order(total_cents="90000", shipping_country="FR"))
        assert "ReviewQueue" not in queues_reached(cloud)[event_id]


class TestPatternsFromTheTemplate:
    """Table-driven: each rule's pattern, read from the stage's template, against many events,
    with the matcher the local cloud routes with (edakit.patterns.matches)."""

    @pytest.mark.parametrize(("label", "put_entry", "expected"), EVENTS, ids=[label for label, _, _ in EVENTS])
    def test_the_rules_that_match_each_event(self, stage_dir: Path, label: str, put_entry: dict[str, Any],
                                             expected: set[str]) -> None:
        """An event pattern matches an event when every field it names matches.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html
        """
        patterns = rule_patterns(stage_dir)
        assert {rule for rule, pattern in patterns.items() if matches(pattern, as_event(put_entry))} == expected

    def test_the_table_makes_every_rule_both_match_and_not_match(self, stage_dir: Path) -> None:
        """A table in which a rule always matches (or never does) proves nothing about its pattern.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html
        """
        patterns = rule_patterns(stage_dir)
        assert set(patterns) == set(RULE_TARGETS)
        for rule, pattern in patterns.items():
            outcomes = {matches(pattern, as_event(put_entry)) for _, put_entry, _ in EVENTS}
            assert outcomes == {True, False}, rule

    def test_the_review_rule_is_one_rule_with_or_not_two_rules(self, stage_dir: Path) -> None:
        """`$or` lets one rule match either condition, so an order both high-value and risky reaches review once.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
        """
        review = rule_patterns(stage_dir)["OrderPlacedToReview"]
        assert "$or" in review.get("detail", {})


class TestResources:
    """What the template must hold besides the patterns."""

    def test_each_rule_targets_its_own_queue(self, cloud: LocalCloud) -> None:
        """A rule sends matching events to the targets it lists.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html
        """
        client = boto3.client("events")
        bus = cloud.outputs["EventBusName"]
        queue_arns = {queue: _queue_arn(cloud, queue) for queue in RULE_TARGETS.values()}
        for rule, queue in RULE_TARGETS.items():
            targets = client.list_targets_by_rule(Rule=cloud.physical_id(rule), EventBusName=bus)["Targets"]
            assert [target["Arn"] for target in targets] == [queue_arns[queue]], rule

    def test_each_queue_lets_only_its_own_rule_send(self, cloud: LocalCloud) -> None:
        """A queue policy allows events.amazonaws.com to send, with aws:SourceArn naming the one rule.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions
        """
        client = boto3.client("sqs")
        rule_arns = {rule["Name"]: rule["Arn"] for rule in boto3.client("events").list_rules(
            EventBusName=cloud.outputs["EventBusName"])["Rules"]}
        for rule, queue in RULE_TARGETS.items():
            attributes = client.get_queue_attributes(QueueUrl=cloud.physical_id(queue), AttributeNames=["Policy"])
            [statement] = json.loads(attributes["Attributes"]["Policy"])["Statement"]
            assert statement["Effect"] == "Allow" and statement["Action"] == "sqs:SendMessage", queue
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}, queue
            assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arns[cloud.physical_id(rule)]}}, queue

    def test_stage_1_is_kept_unchanged(self, stage_dir: Path) -> None:
        """A stage adds to the one before: stage 1's resources and outputs are all still there, as they were.

        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-anatomy.html
        """
        previous = read_template(CHAPTERS / PREVIOUS_STAGE / "template.yaml")
        current = read_template(stage_dir / "template.yaml")
        for section in ("Resources", "Outputs"):
            kept = {logical_id: current.get(section, {}).get(logical_id) for logical_id in previous.get(section, {})}
            assert kept == previous.get(section, {}), section


# -- the chapter's own pages (not a learner's workspace) ---------------------------------------------




def readme_diffs() -> dict[str, str]:
    """The README's template diff, from stage 1's template to stage 2's: what this chapter adds."""
    return {"template diff": stage_diff(PREVIOUS_STAGE, STAGE)}


@pytest.mark.usefixtures("chapter_only")
class TestChapter:
    def test_the_readme_shows_the_template_diff_from_stage_1(self) -> None:
        """The README's diff is the diff of the two templates as they are (rewrite it by running this file).

        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification.html
        """
        check_readme(STAGE, readme_diffs(), __file__)

    @pytest.mark.notebook
    def test_the_notebook_runs_in_seconds_and_shows_where_each_order_went(self) -> None:
        """The chapter's notebook routes a mix of orders on the local cloud, as the rules do on AWS.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
        """
        from edakit.notebooks import execute_notebook, outputs_of

        notebook, seconds = execute_notebook(NOTEBOOK)
        outputs = outputs_of(notebook)
        tables = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
        rows = {cells[0]: cells[1:] for table in tables for cells in _rows(table)}
        # Columns: OrderProcessing, Inventory, Analytics, Review.
        assert rows["normal"] == ["✔", "✔", "✔", ""]
        assert rows["high value"] == ["✔", "✔", "✔", "✔"]
        assert rows["just under 500 EUR"] == ["✔", "✔", "✔", ""]
        assert rows["risky country"] == ["✔", "✔", "✔", "✔"]
        assert rows["OrderConfirmed"] == ["", "", "✔", ""]
        assert rows["partner event"] == ["", "", "", ""]
        assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook draws no chart"
        assert any("OrderPlacedToReview --> ReviewQueue" in table for table in tables), "no architecture diagram"
        assert seconds < NOTEBOOK_SECONDS, f"the notebook took {seconds:.1f} s"


def _rows(markdown: str) -> Iterator[list[str]]:
    """The body rows of a Markdown table, as lists of stripped cells."""
    for line in markdown.splitlines()[2:]:
        if line.startswith("|"):
            yield [cell.strip() for cell in line.strip().strip("|").split("|")]


def _queue_arn(cloud: LocalCloud, queue: str) -> str:
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=cloud.physical_id(queue), AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


if __name__ == "__main__":
    print(write_readme(STAGE, readme_diffs(), __file__))
