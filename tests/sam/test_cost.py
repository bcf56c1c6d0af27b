"""What the finished shop costs (edakit/cost.py): the table in sam-app/README.md is what the
local cloud counts today, and the counting follows how AWS bills.
https://aws.amazon.com/dynamodb/pricing/on-demand/ (a transactional write costs two units)
https://aws.amazon.com/sqs/pricing/ (every request, whoever makes it, in 64 KB chunks)
"""

from __future__ import annotations

from collections import Counter

import pytest

from edakit import cost
from edakit.paths import SAM_APP


@pytest.fixture(scope="module")
def usage() -> cost.Usage:
    return cost.measure(orders=cost.README_ORDERS)


def test_the_readme_table_is_current(usage: cost.Usage) -> None:
    """Rewrite it with `python -m edakit cost --write` after changing the template or the shop."""
    readme = (SAM_APP / "README.md").read_text()
    assert readme == cost.with_table(readme, cost.table(usage, cost.idle())), \
        "sam-app/README.md's cost table is stale: run `python -m edakit cost --write`"


def test_what_one_order_uses(usage: cost.Usage) -> None:
    """Per order: one OrderPlaced and its follow-ups on the bus (InventoryReserved, PaymentSucceeded,
    OrderConfirmed), one message into every queue each of them is routed to, an email and a text
    to the customer; nothing is free of requests."""
    per_order = Counter({k: v / usage.orders for k, v in usage.quantities.items()})
    assert per_order["eventbridge_events"] == 4
    assert per_order["sns_publish"] == 1
    assert per_order["sns_sms"] == 1
    assert per_order["sns_email"] >= 1  # the customer's, plus the operator's alarm emails
    assert per_order["sqs_standard"] > 10 and per_order["sqs_fifo"] > 0
    assert per_order["dynamodb_writes"] > 10
    assert per_order["kinesis_put_units"] >= 2  # OrderPlaced and OrderConfirmed, by the rule
    assert per_order["lambda_requests"] > 5


def test_dynamodb_units_count_a_transactional_item_twice() -> None:
    requests = Counter({("InventoryFunction", "dynamodb:TransactWriteItems"): 1,
                        ("InventoryFunction", "dynamodb:PutItem"): 3,
                        ("OrderStatusFunction", "dynamodb:GetItem"): 2,
                        (None, "dynamodb:Scan"): 5})  # a test's own reads: not the shop's
    entries = Counter({("InventoryFunction", "dynamodb:TransactWriteItems"): 3})
    assert cost._dynamodb_units(requests, entries) == (2 * 3 + 3, 2)


def test_idle_counts_shards_keys_alarms_and_pollers() -> None:
    idle = cost.idle()
    assert idle["kinesis_shard_hours"] == 2 * cost.HOURS_PER_MONTH
    assert idle["kms_keys"] == 1
    assert idle["alarms"] == 8  # stage 8's seven and stage 10's throttles alarm
    # One estimate per SQS event source: order processing, order status, payments.
    assert idle["sqs_standard"] == 3 * cost.IDLE_POLLERS * cost.HOURS_PER_MONTH * 3600 / cost.LONG_POLL_SECONDS
