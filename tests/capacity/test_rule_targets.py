"""The capacity model counts EventBridge rule invocations from the template's rules, not from
a hand-kept table: each event the model publishes is sent to as many targets as its rules have."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from edakit.capacity import (
    FIFO_SENDS_PER_SECOND,
    Q_FIFO_SENDS,
    SAM_APP,
    SHOP,
    Knobs,
    fifo_sends,
    rule_targets,
    simulate,
)
from edakit.template import cloudformation_of, read_template

#: The targets in sam-app/template.yaml: OrderPlaced goes to the audit and analytics queues,
#: InventoryFunction, OrdersQueue, the status queue, the stream and PaymentsQueue;
#: InventoryReserved to audit, analytics, OrdersQueue, the status queue and PaymentsQueue;
#: PaymentSucceeded to audit, analytics and OrdersQueue; OrderConfirmed to audit, analytics,
#: the status queue, NotificationFunction and the stream.
SHOP_TARGETS = {"OrderPlaced": 7, "InventoryReserved": 5, "PaymentSucceeded": 3, "OrderConfirmed": 5}


@pytest.fixture
def sam() -> dict[str, Any]:
    return copy.deepcopy(read_template(SAM_APP / "template.yaml"))


def deployed(sam: dict[str, Any]) -> dict[str, Any]:
    """The resources the SAM template becomes (its functions' EventBridgeRule events become rules)."""
    return cloudformation_of(sam, "us-east-1")["Resources"]


class TestRuleTargets:
    def test_each_published_event_counts_the_targets_of_the_rules_it_matches(self, sam: dict[str, Any]) -> None:
        """One rule invocation is one event sent to one target: an event is sent to every target
        of every enabled rule on the bus whose pattern it matches; a function's EventBridgeRule
        event is a rule with the function as its one target. OrderPlacedToReview looks into the
        detail (large or foreign orders) and is not counted.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rules.html
        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-eventbridgerule.html
        """
        assert rule_targets(deployed(sam)) == SHOP_TARGETS
        assert SHOP.rule_targets == SHOP_TARGETS  # what the model multiplies each publish by

    def test_a_target_added_to_a_rule_counts_for_the_events_that_rule_matches(self, sam: dict[str, Any]) -> None:
        """https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html"""
        # given one more target on the rule that sends OrderPlaced to OrdersQueue
        sam["Resources"]["OrderPlacedToOrdersQueue"]["Properties"]["Targets"].append(
            {"Id": "Copy", "Arn": {"Fn::GetAtt": ["ReviewQueue", "Arn"]}})
        # then OrderPlaced has one more, and nothing else changes
        assert rule_targets(deployed(sam)) == {**SHOP_TARGETS, "OrderPlaced": 8}

    def test_a_new_function_rule_counts_and_a_disabled_rule_does_not(self, sam: dict[str, Any]) -> None:
        """A rule in state DISABLED sends nothing; a rule on another bus sees no shop event.

        https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html
        """
        events = sam["Resources"]["NotificationFunction"]["Properties"]["Events"]
        bus = events["OrderConfirmed"]["Properties"]["EventBusName"]
        events["Paid"] = {"Type": "EventBridgeRule", "Properties": {
            "EventBusName": bus, "Pattern": {"source": ["shop.payments"], "detail-type": ["PaymentSucceeded"]}}}
        events["PaidOnDefaultBus"] = {"Type": "EventBridgeRule", "Properties": {
            "Pattern": {"source": ["shop.payments"], "detail-type": ["PaymentSucceeded"]}}}
        sam["Resources"]["AllShopEventsRule"]["Properties"]["State"] = "DISABLED"
        assert rule_targets(deployed(sam)) == {"OrderPlaced": 6, "InventoryReserved": 4, "PaymentSucceeded": 3,
                                     "OrderConfirmed": 4}


class TestTheFifoStatusQueue:
    def test_every_event_the_status_rule_matches_is_one_send_to_the_fifo_queue(self, sam: dict[str, Any]) -> None:
        """EventBridge sends each event to an SQS target with one SendMessage; the status rule
        sends OrderPlaced, InventoryReserved and OrderConfirmed (not PaymentSucceeded) to the
        FIFO OrderStatusQueue. A standard queue is not counted.

        https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_SqsParameters.html
        """
        status = {"OrderPlaced": 1, "InventoryReserved": 1, "PaymentSucceeded": 0, "OrderConfirmed": 1}
        assert fifo_sends(deployed(sam)) == status
        assert SHOP.fifo_sends == status
        assert SHOP.status_batch_size == 1  # its consumer takes one message at a time
        del sam["Resources"]["OrderStatusQueue"]["Properties"]["FifoQueue"]
        assert fifo_sends(deployed(sam)) == dict.fromkeys(status, 0)

    def test_more_than_300_sends_a_second_to_the_fifo_queue_break_its_quota(self) -> None:
        """"By default, FIFO queues support 300 transactions per second, per API action for
        SendMessage": up to three status messages an order, so 50 orders in a second stay below it,
        200 break it.

        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/troubleshooting-fifo-throttling-issues.html
        """
        few = simulate([0.5] * 50, Knobs(maximum_concurrency=1000), horizon=30)
        assert 0 < few.quota_use[Q_FIFO_SENDS] < 1 and Q_FIFO_SENDS not in few.broken_at
        many = simulate([0.5] * 200, Knobs(maximum_concurrency=1000), horizon=30)
        assert many.quota_use[Q_FIFO_SENDS] * FIFO_SENDS_PER_SECOND > FIFO_SENDS_PER_SECOND
        assert Q_FIFO_SENDS in many.broken_at
        # OrderPlaced and InventoryReserved for each order, OrderConfirmed for each confirmed one
        assert many.fifo_sent == 2 * 200 + len(many.latencies)
