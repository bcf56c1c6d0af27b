"""`make demo`: the finished system's main scenario, on the local cloud, with a running commentary.

A spike of orders hits the storefront. EventBridge routes every OrderPlaced to the
orders queue, which absorbs the spike; the order processor drains it in batches,
reports the poison orders as batch item failures, and SQS moves them to the DLQ
after three receives. Nothing is lost: every order is either recorded or in the DLQ.
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from pathlib import Path

import boto3

from .cloud import LocalCloud
from .errors import EdakitError

ROOT = Path(__file__).resolve().parent.parent
SAM_APP = ROOT / "sam-app"

#: The spike: orders per virtual second, for this many seconds.
ORDERS_PER_SECOND = 10
SPIKE_SECONDS = 30
#: One order in this many is a poison order (a SKU the shop does not sell).
POISON_ONE_IN = 40


def _carts(rng: random.Random, count: int) -> list:
    from shop.orders import CATALOGUE
    from shop.storefront import Cart

    skus = sorted(CATALOGUE)
    carts = []
    for number in range(count):
        lines = [
            {"sku": rng.choice(skus), "quantity": rng.randint(1, 3), "unit_price_cents": rng.choice([990, 1490, 2500])}
            for _ in range(rng.randint(1, 3))
        ]
        if rng.randrange(POISON_ONE_IN) == 0:
            lines[0] = {**lines[0], "sku": "DISCONTINUED-404"}
        carts.append(Cart(
            customer_id=f"customer-{rng.randint(1, 120):03d}", lines=lines, correlation_id=f"demo-{number:04d}",
            order_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),  # seeded: the same ids every run
        ))
    return carts


def _status(cloud: LocalCloud, placed: int) -> str:
    depth = cloud.queue_depth("OrdersQueue")
    invocations = cloud.invocations("OrderProcessorFunction")
    return (
        f"  t=+{cloud.clock.elapsed:5.0f}s  placed {placed:4d} | queue {depth['visible']:3d} waiting, "
        f"{depth['in_flight']:3d} in flight | {len(invocations):3d} invocations | DLQ {len(cloud.messages('OrdersDLQ'))}"
    )


def run(seed: int = 7) -> int:
    """Run the scenario and print a summary; return a process exit code."""
    wall_start = time.perf_counter()
    sys.path.insert(0, str(SAM_APP / "src"))
    from shop.orders import OrderRejected, accept_order
    from shop.events import from_eventbridge
    from shop.storefront import Storefront

    print(f"Deploying {SAM_APP.relative_to(ROOT)}/template.yaml on the local cloud (moto, virtual time)...")
    with LocalCloud.from_template(SAM_APP / "template.yaml") as cloud:
        resources = cloud.deployment.resource_types if cloud.deployment else {}
        print(f"  {len(resources)} resources deployed; functions: {', '.join(cloud.functions)}")
        storefront = Storefront(cloud.physical_id("ShopBus"))
        rng = random.Random(seed)
        carts = _carts(rng, ORDERS_PER_SECOND * SPIKE_SECONDS)

        print(f"\nSpike: {ORDERS_PER_SECOND} orders per second for {SPIKE_SECONDS} virtual seconds")
        placed = 0
        for second in range(SPIKE_SECONDS):
            batch = carts[second * ORDERS_PER_SECOND:(second + 1) * ORDERS_PER_SECOND]
            storefront.place_orders(batch)
            placed += len(batch)
            cloud.run_for(1.0)
            if (second + 1) % 5 == 0:
                print(_status(cloud, placed))

        print("\nDraining: poison orders come back after the 60 s visibility timeout, up to 3 receives...")
        cloud.run_until_idle()
        print(_status(cloud, placed))

        invocations = cloud.invocations("OrderProcessorFunction")
        records = [r for i in invocations for r in i.event["Records"]]
        redeliveries = sum(1 for r in records if int(r["attributes"]["ApproximateReceiveCount"]) > 1)
        reported = sum(len((i.result or {}).get("batchItemFailures", [])) for i in invocations if i.ok)
        failed_whole = sum(1 for i in invocations if not i.ok)
        table = cloud.physical_id("OrdersTable")
        recorded = boto3.client("dynamodb").scan(TableName=table, Select="COUNT")["Count"]
        dead = cloud.messages("OrdersDLQ")
        routed = sum(cloud.routes.values())

        print("\nSummary")
        print(f"  orders placed         {placed}")
        print(f"  events routed         {routed}  (OrderPlacedRule -> OrdersQueue)")
        print(f"  invocations           {len(invocations)} of OrderProcessorFunction, "
              f"{len(records)} records")
        print(f"  failures              {reported} records reported as batch item failures; {failed_whole} invocations "
              "failed whole (every record of the batch failed)")
        print(f"  retries               {redeliveries} redeliveries after a visibility timeout")
        print(f"  orders recorded       {recorded} in {table}")
        print(f"  DLQ contents          {len(dead)} message(s)")
        for body in dead:
            order = from_eventbridge(body)
            try:
                accept_order(order)
                reason = "accepted on a re-check"
            except OrderRejected as exc:
                reason = "; ".join(exc.reasons)
            print(f"    - order {order.order_id[:8]} ({order.correlation_id}): {reason}")
        lost = placed - recorded - len(dead)
        print(f"  lost                  {lost}")
        print(f"\nVirtual time {cloud.clock.elapsed:.0f} s in {time.perf_counter() - wall_start:.1f} s of wall time.")
        return 0 if lost == 0 else 1


def main(argv: list[str] | None = None) -> int:
    try:
        return run()
    except EdakitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
