"""`make demo`: the newest stage of the shop (sam-app/), run on the local cloud with a commentary.

A spike of orders hits the storefront. EventBridge routes each OrderPlaced; the
orders queue absorbs the spike; inventory reserves stock or answers OutOfStock;
order processing confirms; the rest of the system reacts to the follow-up
events. Poison orders fail, are retried and end in a dead-letter queue. At the
end, every order is accounted for: confirmed, out of stock, or in a DLQ.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

from .cloud import LocalCloud
from .errors import EdakitError
from .paths import ROOT, SAM_APP, SHOP_SRC
from .scenarios import carts as scenario_carts

#: The spike: orders per virtual second, for this many seconds.
ORDERS_PER_SECOND = 8
SPIKE_SECONDS = 15
#: One order in this many is a poison order (a SKU the shop does not sell).
POISON_ONE_IN = 40
#: Stock per SKU; the mug is scarce, so some orders end out of stock.
STOCK = {"BOOK-001": 400, "BOOK-002": 400, "MUG-001": 25, "SHIRT-001": 400, "STICKER-001": 400}


def _queues(cloud: LocalCloud) -> list[str]:
    assert cloud.deployment is not None
    return sorted(k for k, t in cloud.deployment.resource_types.items() if t == "AWS::SQS::Queue")


def _dead_letter_queues(cloud: LocalCloud) -> list[str]:
    """Queues that a queue's RedrivePolicy, or a function's OnFailure or DLQ, sends failures to."""
    sqs = boto3.client("sqs")
    logical_by_arn: dict[str, str] = {}
    targets: set[str | None] = set()
    for logical_id in _queues(cloud):
        attributes = sqs.get_queue_attributes(QueueUrl=cloud.physical_id(logical_id), AttributeNames=["All"])["Attributes"]
        logical_by_arn[attributes["QueueArn"]] = logical_id
        targets.add(json.loads(attributes.get("RedrivePolicy", "{}")).get("deadLetterTargetArn"))
    for function in cloud.functions.values():
        on_failure = (cloud.event_invoke_config(function).get("DestinationConfig") or {}).get("OnFailure", {})
        targets |= {on_failure.get("Destination"), function.dead_letter_arn}
    return sorted(logical_by_arn[arn] for arn in targets if arn in logical_by_arn)


def _order_statuses(cloud: LocalCloud) -> Counter[str]:
    if "OrdersTable" not in cloud.outputs.values() and "OrdersTable" not in (cloud.deployment.physical_ids if cloud.deployment else {}):
        return Counter()
    items = boto3.client("dynamodb").scan(TableName=cloud.physical_id("OrdersTable"))["Items"]
    return Counter(item.get("status", {}).get("S", "RECORDED") for item in items)


def _status_line(cloud: LocalCloud, placed: int) -> str:
    depth = cloud.queue_depth("OrdersQueue") if "OrdersQueue" in _queues(cloud) else {"visible": 0, "in_flight": 0}
    statuses = ", ".join(f"{status.lower().replace('_', ' ')} {count}" for status, count in sorted(_order_statuses(cloud).items()))
    return (
        f"  t=+{cloud.clock.elapsed:4.0f}s  placed {placed:3d} | orders queue {depth['visible']:3d} waiting, "
        f"{depth['in_flight']:3d} in flight | invocations {len(cloud.invocations()):4d} | orders: {statuses or 'none yet'}"
    )


def run(template: Path = SAM_APP / "template.yaml", seed: int = 7, *,
        orders_per_second: int = ORDERS_PER_SECOND, spike_seconds: int = SPIKE_SECONDS) -> int:
    """Run the scenario on `template` and print a summary; return a process exit code."""
    wall_start = time.perf_counter()
    shown = template.relative_to(ROOT) if template.is_relative_to(ROOT) else template
    print(f"Deploying {shown} on the local cloud (moto, virtual time)...")
    with LocalCloud.from_template(template) as cloud:
        assert cloud.deployment is not None
        print(f"  {len(cloud.deployment.resource_types)} resources; functions: {', '.join(cloud.functions)}")
        # The shop's code as the functions loaded it: the template's CodeUri (sam-app/src/,
        # or a function's directory in .aws-sam/build/ for a built template).
        if str(SHOP_SRC) not in sys.path:
            sys.path.append(str(SHOP_SRC))
        import shop
        from shop.events import from_eventbridge
        from shop.orders import OrderRejected, accept_order
        from shop.storefront import Storefront

        code = Path(shop.__file__).parent.parent
        print(f"  shop code: {code.relative_to(ROOT) if code.is_relative_to(ROOT) else code}")
        if "StockTable" in cloud.deployment.physical_ids:
            from shop.adapters.dynamodb import DynamoDBStockRepository
            from shop.inventory import seed_stock

            seed_stock(DynamoDBStockRepository(cloud.physical_id("StockTable"), cloud.physical_id("ReservationsTable")), STOCK)
            print(f"  stock seeded: {', '.join(f'{sku} x{qty}' for sku, qty in STOCK.items())}")

        storefront = Storefront(cloud.physical_id("ShopBus"))
        carts = scenario_carts(random.Random(seed), orders_per_second * spike_seconds,
                               poison_one_in=POISON_ONE_IN, prefix="demo")
        print(f"\nSpike: {orders_per_second} orders per second for {spike_seconds} virtual seconds")
        placed = 0
        for second in range(spike_seconds):
            batch = carts[second * orders_per_second:(second + 1) * orders_per_second]
            storefront.place_orders(batch)
            placed += len(batch)
            cloud.run_for(1.0)
            if (second + 1) % 5 == 0:
                print(_status_line(cloud, placed))

        print("\nDraining: failed messages come back after their visibility timeout, async retries after 1 and 2 minutes...")
        cloud.run_until_idle()
        print(_status_line(cloud, placed))

        invocations = cloud.invocations()
        redelivered = sum(
            1 for i in invocations if i.trigger == "sqs"
            for r in i.event["Records"] if int(r["attributes"]["ApproximateReceiveCount"]) > 1
        )
        by_function = Counter(i.function for i in invocations)
        failed_by_function = Counter(i.function for i in invocations if not i.ok)
        statuses = _order_statuses(cloud)
        dead_letter_queues = _dead_letter_queues(cloud)
        dead = {q: cloud.messages(q) for q in dead_letter_queues}
        poison_ids: set[str] = set()

        print("\nSummary")
        print(f"  orders placed        {placed}")
        print(f"  events routed        {sum(cloud.routes.values())} deliveries by {len({r for r, _ in cloud.routes})} rules")
        print("  invocations")
        for function, count in sorted(by_function.items()):
            print(f"    {function:28s} {count:4d}  ({failed_by_function[function]} failed)")
        print(f"  retries              {redelivered} SQS redeliveries after a visibility timeout")
        if statuses:
            print("  orders by status     " + ", ".join(f"{status} {count}" for status, count in sorted(statuses.items())))
        if cloud.notifications:
            topics = {arn: logical for logical, arn in cloud.deployment.physical_ids.items()
                      if cloud.deployment.resource_types.get(logical) == "AWS::SNS::Topic"}
            channels = Counter((topics.get(n.topic_arn, n.topic_arn), n.protocol) for n in cloud.notifications)
            print("  notifications        " + ", ".join(f"{count} by {protocol} from {topic}"
                                                        for (topic, protocol), count in sorted(channels.items()))
                  + " (recorded, never sent)")
        print("  dead-letter queues")
        for queue, bodies in dead.items():
            print(f"    {queue:28s} {len(bodies)} message(s)")
            for body in bodies:
                event = json.loads(body)
                event = event.get("requestPayload", event)  # an OnFailure record carries the event
                if event.get("detail-type") != "OrderPlaced":
                    continue
                order = from_eventbridge(event)
                poison_ids.add(order.order_id)
                try:
                    accept_order(order)
                    reason = "accepted on a re-check"
                except OrderRejected as exc:
                    reason = "; ".join(exc.reasons)
                print(f"      - order {order.order_id[:8]} ({order.correlation_id}): {reason}")
        # With inventory in the stage, an order is settled once confirmed or out of stock;
        # before that stage, being recorded is all that happens to it.
        final = ("CONFIRMED", "OUT_OF_STOCK", "CANCELLED") if "StockTable" in cloud.deployment.physical_ids else tuple(statuses)
        settled = sum(statuses.get(s, 0) for s in final)
        lost = placed - settled - len(poison_ids)
        print(f"  lost                 {lost}")
        print(f"\nVirtual time {cloud.clock.elapsed:.0f} s in {time.perf_counter() - wall_start:.1f} s of wall time.")
        return 0 if lost == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edakit demo", description="Run a stage's main scenario on the local cloud.")
    parser.add_argument("template", nargs="?", default=str(SAM_APP / "template.yaml"),
                        help="a stage's template.yaml or its directory (default: sam-app/, the finished system)")
    parser.add_argument("--rate", type=int, default=ORDERS_PER_SECOND, help="orders per virtual second")
    parser.add_argument("--seconds", type=int, default=SPIKE_SECONDS, help="how long the spike lasts, in virtual seconds")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv or [])
    try:
        template = Path(args.template).resolve()
        if template.is_dir():
            template = template / "template.yaml"
        return run(template, args.seed, orders_per_second=args.rate, spike_seconds=args.seconds)
    except EdakitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
