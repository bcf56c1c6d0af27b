"""A seeded chaos run of stage 7: many orders with every failure of chapter 7 mixed in.

Declined cards, poison orders (above the merchant account's limit), a flaky gateway (the
stage's own PAYMENT_FAILURE_RATE), duplicate OrderPlaced events, SQS redeliveries and an
outage of the payments consumer. Afterwards `check()` names every order that is not in a
terminal state, every double charge and any stock that went missing; the stage test asserts
there are none, and the chapter's notebook draws the run.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

from .paths import SHOP_SRC
from .redrive import RedriveResult, redrive

if TYPE_CHECKING:
    from .cloud import LocalCloud

if str(SHOP_SRC) not in sys.path:
    sys.path.insert(0, str(SHOP_SRC))

from shop.adapters.dynamodb import DynamoDBStockRepository  # noqa: E402
from shop.events import OrderLine, OrderPlaced, to_put_events_entry  # noqa: E402
from shop.inventory import seed_stock  # noqa: E402
from shop.payments import DECLINED_CUSTOMER_PREFIX  # noqa: E402

#: Queues this stage fills and nobody reads (kept for inspection). moto's SendMessage reads
#: a queue's attributes, which counts its messages, so every send to a deep queue costs more
#: than the last; the run empties them after each wave (unless a function reads one).
SINK_QUEUES = ("AuditQueue", "AnalyticsQueue", "ReviewQueue", "ShippingQueue", "CustomerServiceQueue", "LoyaltyQueue")
SKUS = ("BOOK-001", "BOOK-002", "MUG-001", "SHIRT-001")
#: The unit price of a poison order's line: two of them are above the stage's merchant limit.
POISON_UNIT_PRICE_CENTS = 60_000


@dataclass(frozen=True)
class ChaosPlan:
    """What the run mixes in; every choice is drawn from `seed`."""

    orders: int = 500
    seed: int = 2026
    declined_share: float = 0.10  # customers whose card is declined: compensation
    poison_share: float = 0.02  # orders above the merchant limit: DLQ, fix, redrive
    duplicate_share: float = 0.05  # OrderPlaced put twice (a storefront retry)
    redeliveries: int = 20  # payments messages SQS delivers a second time
    wave_size: int = 10  # orders placed together, one wave every wave_seconds
    wave_seconds: float = 30.0
    outage: tuple[float, float] = (0.3, 0.6)  # the payments consumer is stopped over this part of the waves
    stock_share: float = 0.9  # stock seeded for about this share of the units ordered


@dataclass
class Sample:
    """The queues at one virtual moment (for the notebook's chart)."""

    seconds: float
    payments_queue: int
    payments_dlq: int
    consumer_enabled: bool


@dataclass
class ChaosRun:
    """One run on an open stage 7 cloud: run(), then check(); fix_and_redrive() for the DLQ."""

    cloud: "LocalCloud"
    plan: ChaosPlan = field(default_factory=ChaosPlan)
    orders: list[OrderPlaced] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # order_id -> normal, declined or poison
    initial_stock: dict[str, int] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    duplicates: int = 0
    redelivered: int = 0

    def __post_init__(self) -> None:
        self.random = random.Random(self.plan.seed)
        self.started = self.cloud.clock.now()
        self._dynamodb = boto3.client("dynamodb")
        self._sqs = boto3.client("sqs")
        self._events = boto3.client("events")
        self._bus = self.cloud.outputs["EventBusName"]
        self._last_purge = float("-inf")

    # -- running ---------------------------------------------------------------------------

    def run(self) -> "ChaosRun":
        """Seed the stock, place every order in waves (stopping the consumer for the outage),
        redeliver some payments messages, and run until nothing is left to do."""
        carts = [self._cart(n) for n in range(self.plan.orders)]
        units: Counter[str] = Counter()
        for _, lines in carts:
            for line in lines:
                units[line.sku] += line.quantity
        self.initial_stock = {sku: int(units[sku] * self.plan.stock_share) for sku in SKUS}
        seed_stock(self._stock(), self.initial_stock)
        waves = -(-len(carts) // self.plan.wave_size)
        first_outage, last_outage = (round(share * waves) for share in self.plan.outage)
        for wave, start in enumerate(range(0, len(carts), self.plan.wave_size)):
            if wave == first_outage:
                self.set_consumer(enabled=False)
            if wave == last_outage:
                self.set_consumer(enabled=True)
            self._place(carts[start:start + self.plan.wave_size])
            if wave == len(carts) // self.plan.wave_size // 2:
                self._redeliver()
            self.cloud.run_for(self.plan.wave_seconds)
            self._sample()
            self._empty_sinks()
        self.set_consumer(enabled=True)
        self.drain()
        return self

    def drain(self, step_seconds: float = 60.0) -> None:
        """Run until idle, a sample every `step_seconds` of virtual time."""
        while self.cloud.next_time() is not None:
            self.cloud.run_for(step_seconds)
            self._sample()

    def set_consumer(self, *, enabled: bool) -> None:
        """Stop or restart the payments consumer: UpdateEventSourceMapping Enabled=False/True."""
        client = boto3.client("lambda")
        [mapping] = client.list_event_source_mappings(
            FunctionName=self.cloud.physical_id("PaymentsFunction"))["EventSourceMappings"]
        client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)

    def fix_and_redrive(self) -> RedriveResult:
        """The fix for the poison orders (a higher merchant limit, in the function's
        configuration), then the DLQ's messages back to the payments queue; run until idle."""
        client = boto3.client("lambda")
        name = self.cloud.physical_id("PaymentsFunction")
        variables = client.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
        client.update_function_configuration(
            FunctionName=name, Environment={"Variables": {**variables, "PAYMENT_MAX_AMOUNT_CENTS": "1000000"}})
        result = redrive(self.cloud.physical_id("PaymentsDLQ"))
        self.drain()
        return result

    def _cart(self, n: int) -> tuple[str, list[OrderLine]]:
        """The `n`th order's kind (normal, declined or poison) and lines."""
        draw = self.random.random()
        if draw < self.plan.poison_share:
            return "poison", [OrderLine(sku=self.random.choice(SKUS), quantity=2,
                                        unit_price_cents=POISON_UNIT_PRICE_CENTS)]
        kind = "declined" if draw < self.plan.poison_share + self.plan.declined_share else "normal"
        return kind, [OrderLine(sku=sku, quantity=self.random.randint(1, 3), unit_price_cents=1500)
                      for sku in self.random.sample(SKUS, self.random.randint(1, 2))]

    def _place(self, carts: list[tuple[str, list[OrderLine]]]) -> None:
        entries = []
        for kind, lines in carts:
            n = len(self.orders)
            prefix = {"poison": "poison-", "declined": DECLINED_CUSTOMER_PREFIX}.get(kind, "customer-")
            order = OrderPlaced(order_id=f"order-{n:04d}", customer_id=f"{prefix}{n}", lines=tuple(lines))
            self.orders.append(order)
            self.kinds[order.order_id] = kind
            entries.append(to_put_events_entry(order, self._bus))
            if self.random.random() < self.plan.duplicate_share:
                entries.append(to_put_events_entry(order, self._bus))  # the same event, put again
                self.duplicates += 1
        for start in range(0, len(entries), 10):
            response = self._events.put_events(Entries=entries[start:start + 10])
            assert response["FailedEntryCount"] == 0, response

    def _redeliver(self) -> None:
        """SQS delivers at least once: send bodies the payments function already handled again."""
        handled = [r["body"] for i in self.cloud.invocations("PaymentsFunction") for r in i.event["Records"]]
        url = self.cloud.physical_id("PaymentsQueue")
        for body in self.random.sample(handled, min(self.plan.redeliveries, len(handled))):
            self._sqs.send_message(QueueUrl=url, MessageBody=body)
            self.redelivered += 1

    def _empty_sinks(self) -> None:
        # "Only one PurgeQueue operation ... is allowed every 60 seconds."
        # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_PurgeQueue.html
        if self.cloud.clock.now() - self._last_purge <= 61:
            return
        self._last_purge = self.cloud.clock.now()
        read = {m.event_source_arn.rsplit(":", 1)[-1] for m in self.cloud.lambda_backend._event_source_mappings.values()}
        for logical_id in SINK_QUEUES:
            url = self.cloud.deployment.physical_ids.get(logical_id) if self.cloud.deployment else None
            if url and url.rsplit("/", 1)[-1] not in read:
                self._sqs.purge_queue(QueueUrl=url)

    def _sample(self) -> None:
        depth = self.cloud.queue_depth("PaymentsQueue")
        function_name = self.cloud.physical_id("PaymentsFunction")
        enabled = all(m.enabled for m in self.cloud.lambda_backend._event_source_mappings.values()
                      if m.function_arn.rsplit(":", 1)[-1] == function_name)
        self.samples.append(Sample(
            seconds=self.cloud.clock.now() - self.started,
            payments_queue=depth["visible"] + depth["in_flight"] + depth["delayed"],
            payments_dlq=self.cloud.queue_depth("PaymentsDLQ")["visible"],
            consumer_enabled=enabled,
        ))

    def _stock(self) -> DynamoDBStockRepository:
        return DynamoDBStockRepository(self.cloud.physical_id("StockTable"),
                                       self.cloud.physical_id("ReservationsTable"))

    # -- checking ----------------------------------------------------------------------------

    def outcomes(self) -> dict[str, str]:
        """Each order's outcome: confirmed, cancelled, out of stock, dead-lettered, or what it is stuck in."""
        orders = self._scan("OrdersTable")
        ledger = self._scan("PaymentsTable")
        reservations = self._scan("ReservationsTable")
        dead = {json.loads(body)["detail"]["order_id"] for body in self.cloud.messages("PaymentsDLQ")}
        outcomes = {}
        for order in self.orders:
            status = orders.get(order.order_id, {}).get("status", {}).get("S", "MISSING")
            payment = ledger.get(order.order_id, {})
            paid = payment.get("status", {}).get("S", "NONE")
            charges = int(payment.get("charges", {}).get("N", "0"))
            reservation = reservations.get(order.order_id)
            released = bool(reservation and reservation.get("released", {}).get("BOOL"))
            if (status, paid, charges) == ("CONFIRMED", "CHARGED", 1) and reservation and not released:
                outcomes[order.order_id] = "confirmed"
            elif (status, paid, charges) == ("CANCELLED", "DECLINED", 0) and released:
                outcomes[order.order_id] = "cancelled"
            elif status == "OUT_OF_STOCK" and charges == 0 and reservation is None:
                outcomes[order.order_id] = "out of stock"
            elif order.order_id in dead and status == "PLACED" and charges == 0:
                outcomes[order.order_id] = "dead-lettered"
            else:
                outcomes[order.order_id] = f"stuck: order {status}, payment {paid}, {charges} charge(s), " + (
                    "no reservation" if reservation is None else "released" if released else "reserved")
        return outcomes

    def check(self, *, allow_dead_letters: bool = False) -> list[str]:
        """Every broken property, one line each; [] when none is broken.

        - no order is lost: each is confirmed, cancelled or out of stock (or, before the
          redrive, dead-lettered, when `allow_dead_letters`);
        - none is charged twice (the ledger counts each charge);
        - stock is conserved: initial = remaining + units of the charged orders.
        """
        problems = []
        outcomes = self.outcomes()
        terminal = {"confirmed", "cancelled", "out of stock"} | ({"dead-lettered"} if allow_dead_letters else set())
        for order_id, outcome in outcomes.items():
            if outcome not in terminal:
                problems.append(f"lost: {order_id} ({self.kinds[order_id]}) is {outcome}")
        for order_id, item in self._scan("PaymentsTable").items():
            charges = int(item.get("charges", {}).get("N", "0"))
            if charges > 1:
                problems.append(f"charged twice: {order_id} was charged {charges} times")
        confirmed = {o for o, outcome in outcomes.items() if outcome == "confirmed"}
        sold: Counter[str] = Counter()
        for order in self.orders:
            if order.order_id in confirmed:
                for line in order.lines:
                    sold[line.sku] += line.quantity
        held: Counter[str] = Counter()  # reserved for dead-lettered orders, not yet charged
        reservations = self._scan("ReservationsTable")
        for order in self.orders:
            reservation = reservations.get(order.order_id)
            if order.order_id not in confirmed and reservation and not reservation.get("released", {}).get("BOOL"):
                for line in order.lines:
                    held[line.sku] += line.quantity
        stock = self._stock()
        for sku, initial in self.initial_stock.items():
            remaining = stock.stock_of(sku)
            if initial != remaining + sold[sku] + held[sku]:
                problems.append(f"stock of {sku}: {initial} at the start, {remaining} left, {sold[sku]} sold, "
                                f"{held[sku]} held: {initial - remaining - sold[sku] - held[sku]} unaccounted for")
        return problems

    def charges(self) -> int:
        """How many times the run's orders were charged, by the ledger."""
        mine = {order.order_id for order in self.orders}
        return sum(int(item.get("charges", {}).get("N", "0"))
                   for order_id, item in self._scan("PaymentsTable").items() if order_id in mine)

    def _scan(self, logical_id: str) -> dict[str, dict[str, Any]]:
        items: dict[str, dict[str, Any]] = {}
        paginator = self._dynamodb.get_paginator("scan")
        for page in paginator.paginate(TableName=self.cloud.physical_id(logical_id), ConsistentRead=True):
            for item in page["Items"]:
                items[item["order_id"]["S"]] = item
        return items
