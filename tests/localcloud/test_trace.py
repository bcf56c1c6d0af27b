"""The trace of one order, drawn from what ran on stage 5: producer, bus, rules, queues, topic,
functions and the customer's channels, in virtual-time order."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from edakit import LocalCloud
from edakit.errors import EdakitError
from edakit.paths import CHAPTERS, SHOP_SRC
from edakit.trace import sequence_diagram

if str(SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(SHOP_SRC))

from shop.adapters.dynamodb import DynamoDBStockRepository  # noqa: E402
from shop.events import OrderLine  # noqa: E402
from shop.inventory import seed_stock  # noqa: E402
from shop.storefront import Cart, Storefront  # noqa: E402


@pytest.fixture(scope="module")
def stage_5() -> Iterator[tuple[LocalCloud, list]]:
    """Stage 5 with two orders run to the end: alice's is confirmed, bob's is out of stock."""
    with LocalCloud.from_template(CHAPTERS / "05-fanout") as cloud:
        seed_stock(DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable")),
                   {"BOOK-001": 5, "MUG-001": 1})
        placed = Storefront(cloud.outputs["EventBusName"]).place_orders([
            Cart("alice", [OrderLine(sku="BOOK-001", quantity=2, unit_price_cents=1500)]),
            Cart("bob", [OrderLine(sku="MUG-001", quantity=2, unit_price_cents=1500)])])
        cloud.run_until_idle()
        yield cloud, placed


class TestTrace:
    def test_the_trace_of_an_order_names_every_hop_in_virtual_time_order(self, stage_5: tuple[LocalCloud, list]) -> None:
        """Producer -> bus -> rule -> queue -> function -> bus -> ... -> topic -> subscribers, following the
        correlation id every shop event carries.
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rules.html
        https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
        https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html
        """
        cloud, (alice, _) = stage_5
        hops = cloud.cloudwatch.tracer.trace(alice.correlation_id)
        steps = [(h.source, h.target) for h in hops]
        expected = [
            ("shop.storefront", "ShopBus"),
            ("ShopBus", "OrdersQueue"), ("ShopBus", "InventoryFunction"),
            ("InventoryFunction", "ShopBus"),
            ("OrdersQueue", "OrderProcessingFunction"),
            ("OrderProcessingFunction", "ShopBus"),
            ("ShopBus", "NotificationFunction"),
            ("NotificationFunction", "OrderStatusTopic"),
            ("OrderStatusTopic", "email: customer@example.com"), ("OrderStatusTopic", "sms: +15555550100"),
            ("OrderStatusTopic", "ShippingQueue"), ("OrderStatusTopic", "LoyaltyQueue"),
        ]
        positions = [steps.index(step) for step in expected]
        assert positions == sorted(positions), steps
        assert [h.time for h in hops] == sorted(h.time for h in hops)
        rule_hop = next(h for h in hops if (h.source, h.target) == ("ShopBus", "OrdersQueue"))
        assert rule_hop.label == "OrderPlaced (rule OrderPlacedToOrdersQueue)"

    def test_another_orders_trace_takes_its_own_way(self, stage_5: tuple[LocalCloud, list]) -> None:
        """Bob's order is out of stock: customer service gets it, shipping and SMS do not.
        https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html
        """
        cloud, (_, bob) = stage_5
        targets = {h.target for h in cloud.cloudwatch.tracer.trace(bob.correlation_id)}
        assert "CustomerServiceQueue" in targets
        assert not targets & {"ShippingQueue", "sms: +15555550100", "LoyaltyQueue"}

    def test_the_trace_renders_as_a_mermaid_sequence_diagram(self, stage_5: tuple[LocalCloud, list]) -> None:
        """One participant per resource, one arrow per hop, labelled with the offset in virtual time.
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-what-is.html
        """
        cloud, (alice, _) = stage_5
        diagram = cloud.trace(alice.correlation_id)
        assert diagram.startswith("sequenceDiagram\n")
        assert "participant shop_storefront as shop.storefront" in diagram
        assert "    shop_storefront->>ShopBus: +0.0s PutEvents OrderPlaced" in diagram
        assert "OrderStatusTopic->>email__customer_example_com:" in diagram
        assert diagram.count("->>") == len(cloud.cloudwatch.tracer.trace(alice.correlation_id))

    def test_excluded_resources_are_left_out_of_the_trace(self, stage_5: tuple[LocalCloud, list]) -> None:
        """Every shop event also goes to the audit queue (rule AllShopEventsRule); a trace can leave it out.
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rules.html
        """
        cloud, (alice, _) = stage_5
        everything = cloud.cloudwatch.tracer.trace(alice.correlation_id)
        focused = cloud.cloudwatch.tracer.trace(alice.correlation_id, exclude=("AuditQueue",))
        assert any(h.target == "AuditQueue" for h in everything)
        assert focused == [h for h in everything if h.target != "AuditQueue"]
        assert "AuditQueue" not in cloud.trace(alice.correlation_id, exclude=("AuditQueue",))

    def test_a_failed_invocation_is_drawn_as_a_lost_message(self) -> None:
        """https://docs.aws.amazon.com/lambda/latest/dg/invocation-retries.html"""
        from edakit.trace import Hop

        diagram = sequence_diagram([Hop(0.0, 0, "OrdersQueue", "OrderProcessingFunction", "batch ✗ error", "", ok=False)])
        assert "OrdersQueue-xOrderProcessingFunction: +0.0s batch ✗ error" in diagram

    def test_an_unknown_correlation_id_is_a_clear_error(self, stage_5: tuple[LocalCloud, list]) -> None:
        """https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html"""
        cloud, _ = stage_5
        with pytest.raises(EdakitError, match="no hop carried correlation id 'nope'"):
            cloud.trace("nope")
