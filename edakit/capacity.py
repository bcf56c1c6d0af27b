"""The finished shop's capacity model: a SimPy discrete-event simulation of orders flowing
through sam-app/template.yaml at AWS's documented quotas and scaling rates, for scales that
one machine's local cloud cannot run (a million orders an hour).

An order's path, as the template wires it (every hop is modelled unless named below):

1. The storefront puts OrderPlaced on the bus (PutEvents, one call per checkout). Rules send
   it to OrdersQueue, to PaymentsQueue (the amount due), to the analytics stream (one
   record), and invoke InventoryFunction asynchronously.
2. InventoryFunction reserves the stock and publishes InventoryReserved, which rules send to
   OrdersQueue and PaymentsQueue.
3. PaymentsFunction (PaymentsQueue, its own mapping: MaximumConcurrency 5) charges the order.
   The simulated gateway fails PAYMENT_FAILURE_RATE of the calls for a moment; a failed
   message comes back after the shop's exponential backoff (5 s, 10 s, 20 s ...), and after
   maxReceiveCount receives goes to PaymentsDLQ. Success publishes PaymentSucceeded, which
   a rule sends to OrdersQueue.
4. OrderProcessingFunction (OrdersQueue) records OrderPlaced, notes InventoryReserved and
   confirms the order on PaymentSucceeded (CONFIRMED: the order's last hop, where its latency
   is taken), publishing OrderConfirmed: a second analytics record, an email and an SMS.
   A PaymentSucceeded handled before its OrderPlaced fails (OrderNotFound) and returns
   after the visibility timeout, as the handler's batch item failure does.
5. AnalyticsFunction reads each shard of the stream, one batch in flight per shard.

Left out: OrderStatusQueue and its FIFO function (only checked: its sends against the FIFO
quota, and how many messages its one message group lets its consumer take in the run),
NotificationFunction's own invocation
(only its DynamoDB writes and SMS are counted), the audit, review and analytics queues
(they count as rule targets), out-of-stock orders and declined cards (the stock and the
amounts are assumed fine), and the clickstream's records.

What is simulated, and how:

- SQS event source mappings (OrdersQueue, PaymentsQueue): BatchSize and
  MaximumBatchingWindowInSeconds from the template; pollers start at 5 concurrent batches
  and add 300 a minute while messages remain, up to MaximumConcurrency (or 1,000), as
  edakit.sources.sqs does. Pollers ignore reserved concurrency: a batch that finds no free
  concurrency is throttled (each attempt counts), retried after 1 s, 2 s, 4 s ... while its
  visibility timeout lasts, then returned to the queue with its receive spent; a message
  received more than maxReceiveCount times goes to the DLQ.
- Lambda concurrency: the account's 1,000 concurrent executions, shared by the functions
  without a reservation, and each function's scaling rate (1,000 new execution environments
  per 10 seconds); InventoryFunction's asynchronous events wait in Lambda's queue for it.
- Kinesis: each shard takes 1,000 records/s and 1 MiB/s of writes; the excess is refused
  and retried the next second. Its consumer reads one batch per shard at a time, at most
  5 GetRecords per second per shard.
- Checks only (utilisation = peak demand / quota, nothing queues on them): EventBridge
  PutEvents requests and rule invocations per second, DynamoDB on-demand writes on the
  busiest table (Powertools Idempotency's), SendMessage to the FIFO OrderStatusQueue (300 a
  second), and the SNS SMS monthly spend.

Durations are virtual seconds per invocation (per batch); the effects of an invocation
(messages it sends, deletes) happen when it ends. Orders placed at the same instant form
one lot, simulated together: a lot's messages are split across batches as SQS would, so the
model is as exact for 1 order as for 10,000 placed at once. Randomness (payment failures,
shards of records) is seeded.

Calibration: tests/capacity/test_calibration.py runs a small spike (200 orders in 60
virtual seconds, MaximumConcurrency 2, order processing 1.5 s a batch) on the local cloud and
on this model with the same arrivals and durations. OrdersQueue's backlog (visible + in
flight, each virtual second) agrees: the peaks within 10 %; on a 9-second moving average,
the curves within 10 % of the local cloud's peak at every second and their peaks within
3 seconds; the message-seconds within 10 %. (Second by second the two differ by up to a
batch or so: the payment failures are drawn from different seeded generators.)

million_orders_an_hour places its orders in lots of LOT_SECONDS (0.5 s) and runs in about
5 to 10 seconds of wall time.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import random
import re
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import simpy

from .paths import SAM_APP, SHOP_SRC
from .runtime import DEFAULT_DURATION
from .spike import ACCOUNT_CONCURRENCY, MAXIMUM_CONCURRENCY_RANGE, Durations, Knobs
from .template import EventRule, event_rules, load_stage

# -- AWS's documented quotas and rates ---------------------------------------------------------

#: "When messages are available, Lambda starts processing five batches at a time with five
#: concurrent invocations of your function. If messages are still available, Lambda increases
#: the number of processes that are reading batches by up to 300 more instances per minute.
#: The maximum number of batches that an event source mapping can process simultaneously is 1,000."
#: https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
SQS_INITIAL_POLLERS = 5
SQS_POLLERS_ADDED_PER_MINUTE = 300
SQS_MAXIMUM_POLLERS = 1000
#: ScalingConfig MaximumConcurrency: "Minimum: 2, Maximum: 1000" (edakit.spike.MAXIMUM_CONCURRENCY_RANGE).
#: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-lambda-eventsourcemapping-scalingconfig.html
#: A throttled SQS batch is invoked again after 1, 2, 4 ... seconds while its messages are
#: invisible (the local cloud's schedule; AWS documents the retry, not its schedule).
#: https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
FIRST_THROTTLE_RETRY_SECONDS = 1.0
#: "Event source mappings don't account for reserved concurrency and can process more messages
#: off your queue than can be sent to your function." https://repost.aws/knowledge-center/lambda-sqs-scaling
#: Concurrent executions per account and Region: 1,000 by default (edakit.spike.ACCOUNT_CONCURRENCY).
#: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
#: "For each function, your concurrency scaling rate is 1,000 execution environment instances
#: every 10 seconds"; Lambda refills it continuously and does not accumulate unused rate.
#: https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html
SCALING_RATE_ENVIRONMENTS, SCALING_RATE_SECONDS = 1000, 10.0

#: "A shard supports 1 MB/s and 1000 records per second for writes and 2 MB/s for reads";
#: "each shard can support up to five read transactions per second" (GetRecords).
#: https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html
SHARD_WRITE_RECORDS_PER_SECOND = 1000
SHARD_WRITE_BYTES_PER_SECOND = 1024 * 1024
SHARD_READ_BYTES_PER_SECOND = 2 * 1024 * 1024
SHARD_GET_RECORDS_PER_SECOND = 5
#: Bytes of one order event on the stream: the EventBridge event, about 1 KB (an estimate; each
#: record is under one 25 KB PUT payload unit in edakit.cost's table).
RECORD_BYTES = 1000

#: "PutEvents throttle limit in transactions per second: us-east-1: 10,000 per second"; one
#: request carries at most 10 entries. "Invocations throttle limit in transactions per second:
#: us-east-1: 18,750 per second" (an invocation is one event sent to one rule target).
#: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html
PUT_EVENTS_PER_SECOND = 10_000
PUT_EVENTS_MAX_ENTRIES = 10
RULE_INVOCATIONS_PER_SECOND = 18_750
#: "By default, FIFO queues support 300 transactions per second, per API action for
#: SendMessage, ReceiveMessage, and DeleteMessage. Requests over 300 TPS get the
#: ThrottlingException error" (with high throughput, per message group; EventBridge sends one
#: message a call, all in the rule target's one group).
#: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/troubleshooting-fifo-throttling-issues.html
FIFO_SENDS_PER_SECOND = 300

#: "New on-demand tables will be able to sustain up to 4,000 writes per second and 12,000
#: reads per second." https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html
DYNAMODB_NEW_TABLE_WRITES_PER_SECOND = 4000
#: Powertools Idempotency writes twice per handled event (the INPROGRESS record, then COMPLETED).
#: https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/
IDEMPOTENCY_WRITES_PER_EVENT = 2

#: "We set the spending quota for all new accounts at $1.00 (USD) per month."
#: https://docs.aws.amazon.com/sns/latest/dg/channels-sms-awssupport-spend-threshold.html
SMS_MONTHLY_SPEND_USD = 1.00

# Quota names, as ModelResult.quota_use and the chapter's table show them.
Q_SMS = "SNS SMS monthly spend (1.00 USD, new account)"
Q_CONCURRENCY = "Lambda concurrent executions (1,000 per account)"
Q_POLLERS = "OrdersQueue mapping: batches at once (1,000)"
Q_PUT_EVENTS = "EventBridge PutEvents (10,000 requests/s)"
Q_RULE_INVOCATIONS = "EventBridge rule invocations (18,750/s)"
Q_KINESIS_RECORDS = "Kinesis writes per shard (1,000 records/s)"
Q_KINESIS_BYTES = "Kinesis writes per shard (1 MiB/s)"
Q_KINESIS_READS = "Kinesis GetRecords per shard (5/s)"
Q_DYNAMODB = "DynamoDB writes, IdempotencyTable (4,000/s, new on-demand table)"
Q_FIFO_SENDS = "OrderStatusQueue SendMessage (FIFO, 300/s)"


# -- the shop's settings, from its template ------------------------------------------------------


@dataclass(frozen=True)
class ShopSettings:
    """What the model reads from the template: event source settings, queues and the knobs."""

    orders_batch_size: int
    orders_batching_window: float
    orders_visibility_timeout: float
    orders_max_receive_count: int
    payments_batch_size: int
    payments_batching_window: float
    payments_visibility_timeout: float
    payments_max_receive_count: int
    payments_maximum_concurrency: int | None
    payment_failure_rate: float
    analytics_batch_size: int
    analytics_batching_window: float
    knobs: Knobs
    #: Rule targets each event the model publishes goes to (rule_targets): its rule invocations.
    rule_targets: dict[str, int] = field(default_factory=dict)
    #: FIFO queues each event is sent to (fifo_sends): SendMessage calls against the FIFO quota.
    fifo_sends: dict[str, int] = field(default_factory=dict)
    #: OrderStatusFunction's BatchSize: the FIFO status queue has one message group, so its
    #: consumer handles one batch at a time (not simulated; checked in the answer).
    status_batch_size: int = 10


@functools.cache
def shop_settings(template: Path = SAM_APP / "template.yaml") -> ShopSettings:
    """Read the settings the model needs from a SAM template (parameters resolve to their Default)."""
    stage = load_stage(template, "us-east-1")  # the SAM template, and the CloudFormation it becomes
    sam = stage.sam
    resources, parameters = sam["Resources"], sam.get("Parameters") or {}

    def value(raw: Any) -> Any:
        if isinstance(raw, dict) and set(raw) == {"Ref"} and raw["Ref"] in parameters:
            raw = parameters[raw["Ref"]].get("Default")
        if isinstance(raw, dict) and "Fn::If" in raw:  # the reservation: Ref the parameter, or none
            return value(raw["Fn::If"][1])
        return None if raw in (None, "none") else raw

    def mapping(function: str) -> dict[str, Any]:
        [event] = [e["Properties"] for e in resources[function]["Properties"]["Events"].values()
                   if e["Type"] in ("SQS", "Kinesis")]
        return event

    def queue(name: str) -> dict[str, Any]:
        return resources[name]["Properties"]

    orders, payments, analytics = (mapping("OrderProcessingFunction"), mapping("PaymentsFunction"),
                                   mapping("AnalyticsFunction"))
    reserved = value(resources["OrderProcessingFunction"]["Properties"].get("ReservedConcurrentExecutions"))
    cap = value((orders.get("ScalingConfig") or {}).get("MaximumConcurrency"))
    shards = value(resources["AnalyticsStream"]["Properties"].get("ShardCount")) or 1
    payments_cap = value((payments.get("ScalingConfig") or {}).get("MaximumConcurrency"))
    environment = resources["PaymentsFunction"]["Properties"].get("Environment", {}).get("Variables", {})
    return ShopSettings(
        orders_batch_size=int(orders.get("BatchSize", 10)),
        orders_batching_window=float(orders.get("MaximumBatchingWindowInSeconds", 0)),
        orders_visibility_timeout=float(queue("OrdersQueue").get("VisibilityTimeout", 30)),
        orders_max_receive_count=int(queue("OrdersQueue")["RedrivePolicy"]["maxReceiveCount"]),
        payments_batch_size=int(payments.get("BatchSize", 10)),
        payments_batching_window=float(payments.get("MaximumBatchingWindowInSeconds", 0)),
        payments_visibility_timeout=float(queue("PaymentsQueue").get("VisibilityTimeout", 30)),
        payments_max_receive_count=int(queue("PaymentsQueue")["RedrivePolicy"]["maxReceiveCount"]),
        payments_maximum_concurrency=None if payments_cap is None else int(payments_cap),
        payment_failure_rate=float(environment.get("PAYMENT_FAILURE_RATE", 0)),
        analytics_batch_size=int(analytics.get("BatchSize", 100)),
        analytics_batching_window=float(analytics.get("MaximumBatchingWindowInSeconds", 0)),
        knobs=Knobs(None if cap is None else int(cap), None if reserved is None else int(reserved), int(shards)),
        rule_targets=rule_targets(stage.resources),
        fifo_sends=fifo_sends(stage.resources),
        status_batch_size=int(mapping("OrderStatusFunction").get("BatchSize", 10)),
    )


#: The shop events the model puts on the bus (_Shop.publish), and the bus they go to.
PUBLISHED = ("OrderPlaced", "InventoryReserved", "PaymentSucceeded", "OrderConfirmed")
SHOP_BUS = "ShopBus"


def _bus_rules(resources: dict[str, Any]) -> list[EventRule]:
    """The enabled rules on the shop's bus, from the translated template (so the rules SAM makes
    from a function's EventBridgeRule events are among them). A pattern that also looks into
    the event's detail (OrderPlacedToReview: large or foreign orders) matches only some
    orders and is left out.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rules.html
    """
    return [rule for rule in event_rules(resources)
            if rule.enabled and rule.bus == SHOP_BUS and "detail" not in rule.pattern]


def _targets_per_event(resources: dict[str, Any], counted: Callable[[str], bool],
                       detail_types: Sequence[str]) -> dict[str, int]:
    """For each of `detail_types`, how many `counted` targets (logical ids) of the bus's rules it is sent to."""
    from .patterns import as_event, matches

    if str(SHOP_SRC) not in sys.path:
        sys.path.insert(0, str(SHOP_SRC))
    from shop.events import EVENT_TYPES

    rules = _bus_rules(resources)
    counts = {}
    for detail_type in detail_types:
        event = as_event({"Source": EVENT_TYPES[detail_type].source, "DetailType": detail_type, "Detail": "{}"})
        counts[detail_type] = sum(1 for rule in rules if matches(rule.pattern, event)
                                  for target in rule.targets if counted(target))
    return counts


def rule_targets(resources: dict[str, Any], detail_types: Sequence[str] = PUBLISHED) -> dict[str, int]:
    """How many rule targets each of `detail_types` is sent to on the shop's bus (_bus_rules),
    given the translated template's resources."""
    return _targets_per_event(resources, lambda target: True, detail_types)


def fifo_sends(resources: dict[str, Any], detail_types: Sequence[str] = PUBLISHED) -> dict[str, int]:
    """How many FIFO queues each of `detail_types` is sent to: one SendMessage each
    (EventBridge sends one message per event to an SQS target). A rule target gives every
    message its one fixed MessageGroupId, so even with high throughput, whose quota applies
    per message group (FifoThroughputLimit: perMessageGroupId), the 300 a second hold.
    https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_SqsParameters.html
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/high-throughput-fifo.html
    """
    def fifo(target: str) -> bool:
        queue = resources.get(target) or {}
        return queue.get("Type") == "AWS::SQS::Queue" and bool((queue.get("Properties") or {}).get("FifoQueue"))

    return _targets_per_event(resources, fifo, detail_types)


SHOP = shop_settings()


@functools.cache
def _payment_backoff() -> Callable[[int], int]:
    """The payments handler's own backoff (shop.payments.backoff_seconds): one definition."""
    if str(SHOP_SRC) not in sys.path:
        sys.path.insert(0, str(SHOP_SRC))
    from shop.payments import backoff_seconds

    return backoff_seconds


# -- results ---------------------------------------------------------------------------------------


@dataclass
class Sample:
    """OrdersQueue, order processing and the analytics consumer, at one virtual second."""

    second: float
    visible: int  # OrdersQueue ApproximateNumberOfMessagesVisible
    in_flight: int  # ApproximateNumberOfMessagesNotVisible
    oldest_age: float  # ApproximateAgeOfOldestMessage (s), 0 when empty
    concurrency: int  # OrderProcessingFunction's concurrent executions
    throttles: int  # cumulative throttled invocations of OrderProcessingFunction
    iterator_age: float  # analytics consumer's IteratorAge (s)

    @property
    def backlog(self) -> int:
        return self.visible + self.in_flight


@dataclass
class ModelResult:
    """What a simulated run gives: the samples, each order's latency, and the quotas' use."""

    samples: list[Sample]
    latencies: list[float]  # per order, placement -> its last hop (CONFIRMED or final status)
    throttles: int
    dead_lettered: int  # messages moved to OrdersDLQ
    quota_use: dict[str, float]  # quota name -> peak demand / quota (>1 means it breaks)
    broken_at: dict[str, float] = field(default_factory=dict)  # quota name -> when demand first exceeded it
    payments_dead_lettered: int = 0
    payments_peak_backlog: int = 0  # PaymentsQueue, visible + in flight, at the worst second
    kinesis_refused: int = 0  # records the stream refused (then retried)
    orders: int = 0
    fifo_sent: int = 0  # messages EventBridge sent to OrderStatusQueue (FIFO)

    def breaks_first(self) -> str | None:
        """The quota whose demand went over it first (virtual time), or None if none did."""
        if not self.broken_at:
            return None
        return min(self.broken_at, key=lambda name: (self.broken_at[name], -self.quota_use[name]))

    @property
    def peak_backlog(self) -> int:
        return max((s.backlog for s in self.samples), default=0)


# -- the simulation's parts ------------------------------------------------------------------------


def _instant(seconds: float) -> float:
    """Virtual time to the microsecond: batches started together finish together (one event),
    and a time computed two ways (float sums) is one instant."""
    return round(seconds, 6)


class _Lot:
    """Orders placed at the same instant, simulated together."""

    __slots__ = ("placed_at", "count", "recorded", "confirmed")

    def __init__(self, placed_at: float, count: int) -> None:
        self.placed_at, self.count = placed_at, count
        self.recorded = 0  # OrderPlaced handled by order processing
        self.confirmed = 0


class _Origin:
    """One message send (count messages, one per order of a lot): its age, and how many are not deleted."""

    __slots__ = ("sent_at", "alive", "seq")

    def __init__(self, sent_at: float, alive: int, seq: int) -> None:
        self.sent_at, self.alive, self.seq = sent_at, alive, seq


class _Chunk:
    """`count` messages of one kind about one lot, with the same receive history."""

    __slots__ = ("lot", "kind", "count", "origin", "receives", "available_at")

    def __init__(self, lot: _Lot, kind: str, count: int, origin: _Origin, receives: int, available_at: float) -> None:
        self.lot, self.kind, self.count, self.origin = lot, kind, count, origin
        self.receives, self.available_at = receives, available_at

    def split(self, count: int) -> "_Chunk":
        """Take `count` messages off this chunk, as a chunk of their own."""
        self.count -= count
        return _Chunk(self.lot, self.kind, count, self.origin, self.receives, self.available_at)


class _Group:
    """Batches a mapping received at one instant: invoked together, or throttled together."""

    __slots__ = ("chunks", "batches", "messages", "visible_again_at", "attempts", "retry_at")

    def __init__(self, chunks: list[_Chunk], batch_size: int, visible_again_at: float) -> None:
        self.chunks = chunks
        self.messages = sum(c.count for c in chunks)
        self.batches = math.ceil(self.messages / batch_size)
        self.visible_again_at = visible_again_at
        self.attempts = 0
        self.retry_at = 0.0

    def split(self, batches: int, batch_size: int) -> "_Group":
        """The first `batches` batches, as a group of their own; this group keeps the rest."""
        wanted, taken = batches * batch_size, []
        while wanted > 0:
            chunk = self.chunks[0]
            if chunk.count <= wanted:
                taken.append(self.chunks.pop(0))
                wanted -= chunk.count
            else:
                taken.append(chunk.split(wanted))
                wanted = 0
        first = _Group(taken, batch_size, self.visible_again_at)
        self.messages -= first.messages
        self.batches -= first.batches
        return first


class _Concurrency:
    """Lambda's concurrency: the account's pool, reservations, and each function's scaling rate."""

    def __init__(self, model: "_Model", reserved: dict[str, int | None]) -> None:
        self.model = model
        self.reserved = reserved
        self.unreserved_pool = ACCOUNT_CONCURRENCY - sum(r for r in reserved.values() if r is not None)
        self.running: Counter[str] = Counter()
        self.unreserved_running = 0
        self.total = 0
        self.environments: Counter[str] = Counter()  # warm execution environments per function
        self._tokens: dict[str, tuple[float, float]] = {}  # function -> (tokens, at)
        self.peak_total = 0

    def _scaling_tokens(self, function: str, now: float) -> float:
        tokens, at = self._tokens.get(function, (float(SCALING_RATE_ENVIRONMENTS), now))
        rate = SCALING_RATE_ENVIRONMENTS / SCALING_RATE_SECONDS
        return min(float(SCALING_RATE_ENVIRONMENTS), tokens + (now - at) * rate)

    def free(self, function: str, now: float) -> int:
        reserved = self.reserved.get(function)
        free = reserved - self.running[function] if reserved is not None else self.unreserved_pool - self.unreserved_running
        if free <= 0:
            return 0
        warm_idle = self.environments[function] - self.running[function]
        if warm_idle >= free:
            return free
        return max(0, min(free, warm_idle + int(self._scaling_tokens(function, now))))

    def acquire(self, function: str, count: int, now: float) -> None:
        self.running[function] += count
        self.total += count
        if self.reserved.get(function) is None:
            self.unreserved_running += count
        new = self.running[function] - self.environments[function]
        if new > 0:
            self._tokens[function] = (self._scaling_tokens(function, now) - new, now)
            self.environments[function] = self.running[function]
        if self.total > self.peak_total:
            self.peak_total = self.total
            self.model.demand(Q_CONCURRENCY, self.total / ACCOUNT_CONCURRENCY, now)

    def release(self, function: str, count: int) -> None:
        self.running[function] -= count
        self.total -= count
        if self.reserved.get(function) is None:
            self.unreserved_running -= count


class _SqsMapping:
    """A queue and the Lambda event source mapping that polls it."""

    def __init__(self, model: "_Model", *, function: str, batch_size: int, batching_window: float,
                 visibility_timeout: float, max_receive_count: int, maximum_concurrency: int | None,
                 duration: float, handle: Callable[[list[_Chunk], float], list[tuple[_Chunk, float | None]]]) -> None:
        self.model, self.function, self.handle = model, function, handle
        self.batch_size, self.batching_window = batch_size, batching_window
        self.visibility_timeout, self.max_receive_count = visibility_timeout, max_receive_count
        self.cap = min(maximum_concurrency or SQS_MAXIMUM_POLLERS, SQS_MAXIMUM_POLLERS)
        self.duration = duration
        self._visible: list[tuple[int, int, int, _Chunk]] = []  # by send order, as moto receives
        self._invisible: list[tuple[float, int, _Chunk]] = []  # by when they are visible again
        self._origins: list[tuple[float, int, _Origin]] = []  # for the oldest message's age
        self.visible = 0
        self.in_flight = 0
        self.running = 0  # batches being processed
        self.throttled: list[_Group] = []
        self.active_since: float | None = None
        self.throttles = 0
        self.dead_lettered = 0
        self.peak_batches = 0
        self._timers: set[float] = set()

    # -- the queue --

    def send(self, lot: _Lot, kind: str, count: int, now: float) -> None:
        origin = _Origin(now, count, next(self.model.sequence))
        heapq.heappush(self._origins, (now, origin.seq, origin))
        heapq.heappush(self._visible, (origin.seq, 1, next(self.model.sequence), _Chunk(lot, kind, count, origin, 0, now)))
        self.visible += count
        self._wake(now)

    def _return(self, chunk: _Chunk, at: float) -> None:
        """A received message, not deleted, is visible again at `at`."""
        heapq.heappush(self._invisible, (at, next(self.model.sequence), chunk))
        self._wake(at)

    def _delete(self, chunk: _Chunk) -> None:
        chunk.origin.alive -= chunk.count

    def oldest_age(self, now: float) -> float:
        while self._origins and self._origins[0][2].alive <= 0:
            heapq.heappop(self._origins)
        return max(0.0, now - self._origins[0][0]) if self._origins else 0.0

    def _make_visible(self, now: float) -> None:
        while self._invisible and _instant(self._invisible[0][0]) <= now:
            at, _, chunk = heapq.heappop(self._invisible)
            chunk.available_at = at
            # Ahead of the messages of its send not received yet: SQS keeps a message's place.
            heapq.heappush(self._visible, (chunk.origin.seq, 0, next(self.model.sequence), chunk))
            self.visible += chunk.count
            self.in_flight -= chunk.count

    def _receive(self, wanted: int, now: float) -> list[_Chunk]:
        taken: list[_Chunk] = []
        while wanted > 0 and self._visible:
            chunk = self._visible[0][-1]
            if chunk.count > wanted:
                chunk = chunk.split(wanted)
            else:
                heapq.heappop(self._visible)
            self.visible -= chunk.count
            wanted -= chunk.count
            if chunk.receives >= self.max_receive_count:
                # SQS moves a message received maxReceiveCount times to the DLQ instead of returning it.
                self.dead_lettered += chunk.count
                self._delete(chunk)
                continue
            chunk.receives += 1
            self.in_flight += chunk.count
            taken.append(chunk)
        return taken

    # -- the pollers --

    def pollers(self, now: float) -> int:
        ramp = SQS_INITIAL_POLLERS
        if self.active_since is not None:
            # (+1e-9: the instant a poller is added counts, whatever the float rounding)
            ramp += int(SQS_POLLERS_ADDED_PER_MINUTE * (now - self.active_since) / 60 + 1e-9)
        return min(ramp, self.cap)

    def _slots(self, now: float) -> int:
        return self.pollers(now) - self.running - sum(g.batches for g in self.throttled)

    def _track_activity(self, now: float) -> None:
        if self.visible or self.in_flight or self.running or self.throttled:
            if self.active_since is None:
                self.active_since = now
        else:
            self.active_since = None

    def _wake(self, at: float) -> None:
        """Pump at `at`, once, after everything else that happens at that instant."""
        at = _instant(at)
        if at not in self._timers:
            self._timers.add(at)
            self.model.at(at, lambda: (self._timers.discard(at), self.pump(self.model.env.now)))

    def pump(self, now: float) -> None:
        """Receive and invoke what the pollers can, now; schedule the next time there is something to do."""
        now = _instant(now)
        self._make_visible(now)
        self._track_activity(now)
        due = [g for g in self.throttled if _instant(g.retry_at) <= now]
        if due:
            self.throttled = [g for g in self.throttled if _instant(g.retry_at) > now]
            for group in sorted(due, key=lambda g: g.retry_at):
                self._invoke_or_throttle(group, now)
        while (slots := self._slots(now)) > 0 and self.visible:
            full = self.visible // self.batch_size
            if full == 0 and self.batching_window > 0:
                closes = _instant(min(entry[-1].available_at for entry in self._visible) + self.batching_window)
                if now < closes:
                    self._wake(closes)
                    break
            batches = min(slots, full) if full else 1
            chunks = self._receive(batches * self.batch_size, now)
            if chunks:
                self._invoke_or_throttle(_Group(chunks, self.batch_size, now + self.visibility_timeout), now)
        if self._slots(now) <= 0 and self.visible and self.pollers(now) < self.cap and self.active_since is not None:
            added = self.pollers(now) - SQS_INITIAL_POLLERS + 1
            self._wake(max(now + 1e-6, self.active_since + added * 60 / SQS_POLLERS_ADDED_PER_MINUTE))
        busy = self.running + sum(g.batches for g in self.throttled)
        self.peak_batches = max(self.peak_batches, busy)

    def _invoke_or_throttle(self, group: _Group, now: float) -> None:
        free = self.model.concurrency.free(self.function, now)
        if free >= group.batches:
            self._start(group, now)
            return
        if free > 0:
            self._start(group.split(free, self.batch_size), now)
        group.attempts += 1
        self.throttles += group.batches
        group.retry_at = now + FIRST_THROTTLE_RETRY_SECONDS * 2 ** (group.attempts - 1)
        if group.retry_at < group.visible_again_at:
            self.throttled.append(group)
            self._wake(group.retry_at)
        else:  # the poller lets go; the messages come back when their visibility timeout ends
            for chunk in group.chunks:
                self._return(chunk, group.visible_again_at)

    def _start(self, group: _Group, now: float) -> None:
        self.model.concurrency.acquire(self.function, group.batches, now)
        self.running += group.batches
        self.model.at(now + self.duration, lambda: self._complete(group))

    def _complete(self, group: _Group) -> None:
        now = self.model.env.now
        self.model.concurrency.release(self.function, group.batches)
        self.running -= group.batches
        failed = self.handle(group.chunks, now)
        failed_ids = {id(chunk) for chunk, _ in failed}
        for chunk in group.chunks:
            if id(chunk) not in failed_ids:
                self.in_flight -= chunk.count
                self._delete(chunk)
        for chunk, visible_at in failed:  # None: when the visibility timeout of its receive ends
            self._return(chunk, group.visible_again_at if visible_at is None else visible_at)
        self._wake(now)
        self.model.concurrency_released(now)

    def idle(self) -> bool:
        return not (self.visible or self.in_flight or self.running or self.throttled)


class _AsyncFunction:
    """A function invoked asynchronously by a rule: Lambda queues its events and runs them as concurrency allows."""

    def __init__(self, model: "_Model", function: str, duration: float,
                 handle: Callable[[list[tuple[_Lot, int]], float], None]) -> None:
        self.model, self.function, self.duration, self.handle = model, function, duration, handle
        self.waiting: deque[list[Any]] = deque()  # [lot, count]
        self.queued = 0
        self.running = 0
        self._woken = False

    def invoke(self, lot: _Lot, count: int, now: float) -> None:
        self.waiting.append([lot, count])
        self.queued += count
        self.wake(now)

    def wake(self, now: float) -> None:
        """Pump once, after everything else that happens at this instant."""
        if not self._woken:
            self._woken = True
            self.model.at(now, self.pump)

    def pump(self) -> None:
        self._woken = False
        now = self.model.env.now
        take = min(self.queued, self.model.concurrency.free(self.function, now))
        if take <= 0:
            return
        events, wanted = [], take
        while wanted:
            lot, count = self.waiting[0]
            n = min(count, wanted)
            events.append((lot, n))
            wanted -= n
            if n == count:
                self.waiting.popleft()
            else:
                self.waiting[0][1] -= n
        self.queued -= take
        self.running += take
        self.model.concurrency.acquire(self.function, take, now)
        self.model.at(now + self.duration, lambda: self._complete(events, take))

    def _complete(self, events: list[tuple[_Lot, int]], count: int) -> None:
        now = self.model.env.now
        self.model.concurrency.release(self.function, count)
        self.running -= count
        self.handle(events, now)
        self.model.concurrency_released(now)

    def idle(self) -> bool:
        return not (self.queued or self.running)


class _Shard:
    """One shard of the analytics stream: its write quota, its unread records and its consumer."""

    def __init__(self, model: "_Model", index: int) -> None:
        self.model, self.index = model, index
        self.records: deque[list[float]] = deque()  # [written_at, count], unread
        self.unread = 0
        self.second = -1
        self.written = 0  # records written in self.second
        self.arrived: simpy.Event = model.env.event()
        self.wake_at = 1  # unread records that wake the consumer: 1 when it waits for any, a batch when for a full one
        self.busy = False

    def put(self, count: int, now: float, *, retry: bool = False) -> None:
        second = math.floor(now)
        if second != self.second:
            self.second, self.written = second, 0
        if not retry:
            self.model.per_second[("kinesis_records", self.index, second)] += count
        room = min(SHARD_WRITE_RECORDS_PER_SECOND - self.written,
                   (SHARD_WRITE_BYTES_PER_SECOND - self.written * RECORD_BYTES) // RECORD_BYTES)
        accepted = max(0, min(count, room))
        if accepted:
            self.written += accepted
            self.records.append([now, accepted])
            self.unread += accepted
            if self.unread >= self.wake_at and not self.arrived.triggered:
                self.arrived.succeed()
        refused = count - accepted
        if refused:  # ProvisionedThroughputExceeded: the producer puts them again
            self.model.kinesis_refused += refused
            self.model.at(second + 1, lambda: self.put(refused, self.model.env.now, retry=True))

    def consume(self, batch_size: int, window: float, duration: float) -> Any:
        """Lambda's consumer of this shard: one batch in flight, at most 5 GetRecords a second."""
        env, model = self.model.env, self.model
        last_read = -math.inf
        while True:
            if not self.unread:
                self.arrived, self.wake_at = env.event(), 1
                yield self.arrived
                continue
            closes = _instant(self.records[0][0] + window)
            if self.unread < batch_size and _instant(env.now) < closes:  # the batching window: wait for a full batch
                self.arrived, self.wake_at = env.event(), batch_size
                yield env.any_of([self.arrived, env.timeout(closes - env.now)])
                continue
            next_read = _instant(last_read + 1 / SHARD_GET_RECORDS_PER_SECOND)
            if _instant(env.now) < next_read:
                yield env.timeout(next_read - env.now)
                continue
            last_read = env.now
            wanted, newest = min(batch_size, self.unread), 0.0
            taken = wanted
            while wanted:
                written_at, count = self.records[0]
                n = int(min(count, wanted))
                newest, wanted = written_at, wanted - n
                if n == count:
                    self.records.popleft()
                else:
                    self.records[0][1] -= n
            self.unread -= taken
            second = math.floor(env.now)
            model.per_second[("kinesis_reads", self.index, second)] += 1
            while model.concurrency.free("analytics", env.now) <= 0:
                yield env.timeout(1.0)
            model.concurrency.acquire("analytics", 1, env.now)
            model.iterator_ages.append((env.now, env.now - newest))
            self.busy = True
            yield env.timeout(duration)
            self.busy = False
            model.concurrency.release("analytics", 1)
            model.concurrency_released(env.now)


class _Model:
    """One simulated run: the shop's components on one SimPy environment."""

    def __init__(self, knobs: Knobs, durations: Durations, *, batch_size: int, visibility_timeout: float,
                 max_receive_count: int, seed: int) -> None:
        self.env = simpy.Environment()
        self.rng = random.Random(seed)
        self.sequence = itertools.count()
        self.knobs, self.durations = knobs, durations
        self.per_second: Counter[tuple[Any, ...]] = Counter()
        self.quota_use: dict[str, float] = {}
        self.broken_at: dict[str, float] = {}
        self.latencies: list[float] = []
        self.iterator_ages: list[tuple[float, float]] = []
        self.kinesis_refused = 0
        self.sms = 0
        self.concurrency = _Concurrency(self, {"order_processing": knobs.reserved_concurrency})
        self.orders_queue = _SqsMapping(
            self, function="order_processing", batch_size=batch_size, batching_window=SHOP.orders_batching_window,
            visibility_timeout=visibility_timeout, max_receive_count=max_receive_count,
            maximum_concurrency=knobs.maximum_concurrency, duration=durations.order_processing,
            handle=self._order_processing)
        self.payments_queue = _SqsMapping(
            self, function="payments", batch_size=SHOP.payments_batch_size,
            batching_window=SHOP.payments_batching_window, visibility_timeout=SHOP.payments_visibility_timeout,
            max_receive_count=SHOP.payments_max_receive_count, maximum_concurrency=SHOP.payments_maximum_concurrency,
            duration=durations.payments, handle=self._payments)
        self.inventory = _AsyncFunction(self, "inventory", durations.inventory, self._inventory)
        self.shards = [_Shard(self, i) for i in range(knobs.shard_count)]
        for shard in self.shards:
            self.env.process(shard.consume(SHOP.analytics_batch_size, SHOP.analytics_batching_window,
                                           durations.analytics))

    # -- scheduling and counting --

    def at(self, when: float, action: Callable[[], Any]) -> None:
        event = self.env.timeout(max(0.0, _instant(when) - self.env.now))
        event.callbacks.append(lambda _: action())

    def demand(self, quota: str, use: float, now: float) -> None:
        if use > self.quota_use.get(quota, 0.0):
            self.quota_use[quota] = use
        if use > 1 and quota not in self.broken_at:
            self.broken_at[quota] = now

    def count(self, metric: str, amount: int, now: float, quota: str, per_second_quota: float) -> None:
        key = (metric, math.floor(now))
        self.per_second[key] += amount
        self.demand(quota, self.per_second[key] / per_second_quota, now)

    def publish(self, detail_type: str, events: int, now: float, *, calls: int | None = None) -> None:
        """`events` shop events put on the bus (one PutEvents call each, unless `calls` says)."""
        self.count("put_events", events if calls is None else calls, now, Q_PUT_EVENTS, PUT_EVENTS_PER_SECOND)
        self.count("rule_invocations", events * SHOP.rule_targets[detail_type], now, Q_RULE_INVOCATIONS,
                   RULE_INVOCATIONS_PER_SECOND)
        if sends := events * SHOP.fifo_sends[detail_type]:
            self.count("fifo_sends", sends, now, Q_FIFO_SENDS, FIFO_SENDS_PER_SECOND)

    def idempotency_writes(self, events: int, now: float) -> None:
        self.count("idempotency_writes", events * IDEMPOTENCY_WRITES_PER_EVENT, now, Q_DYNAMODB,
                   DYNAMODB_NEW_TABLE_WRITES_PER_SECOND)

    def to_stream(self, count: int, now: float) -> None:
        """`count` order events for the stream, partitioned by customer: spread over the shards."""
        shards = len(self.shards)
        each, rest = divmod(count, shards)
        extra = set(self.rng.sample(range(shards), rest))
        for i, shard in enumerate(self.shards):
            if n := each + (i in extra):
                shard.put(n, now)

    def concurrency_released(self, now: float) -> None:
        self.inventory.wake(now)

    # -- the shop's functions (what each does with what it is given) --

    def place(self, lot: _Lot) -> None:
        now = self.env.now
        self.publish("OrderPlaced", lot.count, now)
        self.orders_queue.send(lot, "placed", lot.count, now)
        self.payments_queue.send(lot, "due", lot.count, now)
        self.inventory.invoke(lot, lot.count, now)
        self.to_stream(lot.count, now)

    def _inventory(self, events: list[tuple[_Lot, int]], now: float) -> None:
        for lot, count in events:
            self.idempotency_writes(count, now)
            self.publish("InventoryReserved", count, now)
            self.orders_queue.send(lot, "reserved", count, now)
            self.payments_queue.send(lot, "charge", count, now)

    def _payments(self, chunks: list[_Chunk], now: float) -> list[tuple[_Chunk, float | None]]:
        failed: list[tuple[_Chunk, float | None]] = []
        for chunk in chunks:
            if chunk.kind != "charge":
                continue
            refused = sum(self.rng.random() < SHOP.payment_failure_rate for _ in range(chunk.count)) \
                if chunk.count <= 32 else round(self.rng.gauss(chunk.count * SHOP.payment_failure_rate,
                                                               math.sqrt(chunk.count * SHOP.payment_failure_rate
                                                                         * (1 - SHOP.payment_failure_rate))))
            refused = max(0, min(chunk.count, refused))
            if refused:  # the handler sets the failed message's visibility: the shop's backoff
                failed.append((chunk.split(refused), now + _payment_backoff()(chunk.receives)))
            if chunk.count:
                self.publish("PaymentSucceeded", chunk.count, now)
                self.orders_queue.send(chunk.lot, "paid", chunk.count, now)
        return failed

    def _order_processing(self, chunks: list[_Chunk], now: float) -> list[tuple[_Chunk, float | None]]:
        failed: list[tuple[_Chunk, float | None]] = []
        for chunk in chunks:
            lot = chunk.lot
            if chunk.kind == "placed":
                lot.recorded += chunk.count
            elif chunk.kind == "paid":
                ready = min(chunk.count, lot.recorded - lot.confirmed)
                if ready < chunk.count:  # OrderNotFound: back after the visibility timeout
                    failed.append((chunk.split(chunk.count - ready), None))
                if chunk.count:
                    lot.confirmed += chunk.count
                    self.latencies.extend([now - lot.placed_at] * chunk.count)
                    self.publish("OrderConfirmed", chunk.count, now)
                    self.to_stream(chunk.count, now)
                    self.idempotency_writes(chunk.count, now)  # NotificationFunction's
                    self.sms += chunk.count
                    self.demand(Q_SMS, self.sms * _sms_price() / SMS_MONTHLY_SPEND_USD, now)
            self.idempotency_writes(chunk.count, now)
        return failed

    # -- the run --

    def idle(self) -> bool:
        return (self.orders_queue.idle() and self.payments_queue.idle() and self.inventory.idle()
                and not any(s.unread or s.busy for s in self.shards))

    def run(self, arrivals: Sequence[float], horizon: float | None) -> list[Sample]:
        lots = sorted(Counter(float(t) for t in arrivals).items())
        last_arrival = lots[-1][0] if lots else 0.0
        samples: list[Sample] = []
        self.payments_peak_backlog = 0

        def storefront() -> Any:
            for placed_at, count in lots:
                if placed_at > self.env.now:
                    yield self.env.timeout(placed_at - self.env.now)
                self.place(_Lot(placed_at, count))

        def sampler() -> Any:  # at the end of each virtual second, as edakit.spike samples the local cloud
            second = 1
            while True:
                yield self.env.timeout(second - self.env.now)
                now = self.env.now
                ages = [age for at, age in self.iterator_ages if at > now - 1]
                self.iterator_ages = [(at, age) for at, age in self.iterator_ages if at > now - 1]
                queue = self.orders_queue
                payments = self.payments_queue.visible + self.payments_queue.in_flight
                self.payments_peak_backlog = max(self.payments_peak_backlog, payments)
                samples.append(Sample(float(second), queue.visible, queue.in_flight, queue.oldest_age(now),
                                      self.concurrency.running["order_processing"], queue.throttles,
                                      max(ages, default=0.0)))
                if horizon is None and now >= last_arrival and self.idle():
                    return
                second += 1

        self.env.process(storefront())
        stop = self.env.process(sampler())
        self.env.run(until=stop if horizon is None else horizon + 1e-9)
        return samples


@functools.cache
def _sms_price() -> float:
    from .cost import PRICES

    return PRICES["sns_sms"].usd / PRICES["sns_sms"].per


def simulate(arrivals: Sequence[float], knobs: Knobs = Knobs(), durations: Durations = Durations(), *,
             batch_size: int = SHOP.orders_batch_size, visibility_timeout: float = SHOP.orders_visibility_timeout,
             max_receive_count: int = SHOP.orders_max_receive_count, horizon: float | None = None,
             seed: int = 0) -> ModelResult:
    """Simulate orders placed at `arrivals` (virtual seconds) through the shop.

    Runs until every order is confirmed or dead-lettered, or until `horizon` seconds.
    `batch_size`, `visibility_timeout` and `max_receive_count` are OrdersQueue's (the
    template's by default).
    """
    if any(not math.isfinite(t) or t < 0 for t in arrivals):
        raise ValueError("arrivals must be virtual seconds from the start, finite and not negative")
    if not 1 <= batch_size <= 10_000:
        raise ValueError(f"batch_size must be between 1 and 10,000 (an SQS mapping's range), got {batch_size}")
    if visibility_timeout <= 0 or max_receive_count < 1:
        raise ValueError("visibility_timeout must be positive and max_receive_count at least 1")
    knobs = knobs.over(SHOP.knobs)  # a knob left at None is as the template sets it
    model = _Model(knobs, durations, batch_size=batch_size, visibility_timeout=visibility_timeout,
                   max_receive_count=max_receive_count, seed=seed)
    samples = model.run(arrivals, horizon)
    model.quota_use.setdefault(Q_POLLERS, model.orders_queue.peak_batches / SQS_MAXIMUM_POLLERS)
    for (metric, *key), amount in model.per_second.items():
        if metric == "kinesis_records":
            model.demand(Q_KINESIS_RECORDS, amount / SHARD_WRITE_RECORDS_PER_SECOND, key[1])
            model.demand(Q_KINESIS_BYTES, amount * RECORD_BYTES / SHARD_WRITE_BYTES_PER_SECOND, key[1])
        elif metric == "kinesis_reads":
            model.demand(Q_KINESIS_READS, amount / SHARD_GET_RECORDS_PER_SECOND, key[1])
    return ModelResult(
        samples=samples, latencies=model.latencies, throttles=model.orders_queue.throttles,
        dead_lettered=model.orders_queue.dead_lettered, quota_use=model.quota_use, broken_at=model.broken_at,
        payments_dead_lettered=model.payments_queue.dead_lettered, kinesis_refused=model.kinesis_refused,
        payments_peak_backlog=model.payments_peak_backlog,
        orders=len(arrivals),
        fifo_sent=sum(count for key, count in model.per_second.items() if key[0] == "fifo_sends"),
    )


# -- one million orders in an hour ----------------------------------------------------------------


@dataclass
class Answer:
    """The chapter's question, answered by the model."""

    orders: int
    knobs: Knobs
    durations: Durations
    peak_backlog: int  # OrdersQueue, visible + in flight
    peak_oldest_age: float  # seconds
    p50_latency: float  # seconds, placement -> CONFIRMED
    p99_latency: float
    confirmed: int
    dead_lettered: int
    throttles: int
    breaks_first: str | None
    breaks_first_use: float
    quota_use: dict[str, float]
    cost_usd: float
    cost_per_1000_orders: float
    wall_seconds: float
    result: ModelResult = field(repr=False)
    seconds: float = 3600.0

    @property
    def status_handled_at_most(self) -> int:
        """What OrderStatusFunction can take from its FIFO queue in the hour: its one message
        group is handled one batch at a time, at the local cloud's default duration a batch.
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html"""
        return int(self.seconds / DEFAULT_DURATION) * SHOP.status_batch_size

    def table(self) -> str:
        """The answer and every quota's peak use, as a Markdown table."""
        knobs = ", ".join(f"{k} {v}" for k, v in vars(self.knobs).items())
        durations = ", ".join(f"{k} {v:g} s" for k, v in vars(self.durations).items())
        lines = [
            f"{self.orders:,} orders in one hour (uniform). Knobs: {knobs}. Durations per batch: {durations}.",
            "",
            "| measure | value |",
            "| --- | ---: |",
            f"| peak OrdersQueue backlog (visible + in flight) | {self.peak_backlog:,} messages |",
            f"| peak PaymentsQueue backlog | {self.result.payments_peak_backlog:,} messages |",
            f"| oldest message, at worst | {self.peak_oldest_age:,.0f} s |",
            f"| latency p50 / p99 (placed -> CONFIRMED) | {self.p50_latency:,.1f} s / {self.p99_latency:,.1f} s |",
            f"| orders confirmed within the run | {self.confirmed:,} |",
            f"| throttled invocations / dead-lettered messages | {self.throttles:,} / {self.dead_lettered:,} |",
            f"| breaks first | {self.breaks_first or 'nothing'} ({self.breaks_first_use:,.2f} x) |",
            f"| cost ({self.cost_per_1000_orders:.4f} USD per 1,000 orders) | {self.cost_usd:,.2f} USD |",
            f"| status messages sent to OrderStatusQueue (FIFO, one message group) | {self.result.fifo_sent:,} |",
            f"| of which its consumer can handle in the hour (one batch of {SHOP.status_batch_size} at a time, "
            f"{DEFAULT_DURATION:g} s each) | at most {self.status_handled_at_most:,} |",
            "",
            "| quota | peak use |",
            "| --- | ---: |",
        ]
        for name, use in sorted(self.quota_use.items(), key=lambda item: -item[1]):
            lines.append(f"| {name} | {use:,.2f}{' (breaks)' if use > 1 else ''} |")
        return "\n".join(lines)

    __str__ = table


def cost_per_1000_orders(readme: Path = SAM_APP / "README.md") -> float:
    """USD per 1,000 orders: the total of edakit.cost's table in sam-app/README.md (the local
    cloud's counted calls, priced; tests/sam/test_cost.py keeps it current)."""
    from .cost import BEGIN, END

    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme} has no cost table; run `python -m edakit cost --write` to put it there")
    table = text[text.index(BEGIN):text.index(END)]
    found = re.search(r"\|\s*\*\*total\*\*\s*\|\s*\|\s*\*\*([0-9.]+)\*\*\s*\|", table)
    if found is None:
        raise ValueError(f"{readme}: the cost table has no per-1,000-orders total; regenerate it with "
                         "`python -m edakit cost --write`")
    return float(found.group(1))


#: The million orders are placed uniformly over the hour, a lot every LOT_SECONDS (see _Lot).
LOT_SECONDS = 0.5


def million_orders_an_hour(knobs: Knobs | None = None, durations: Durations = Durations(), *,
                           orders: int = 1_000_000, seconds: float = 3600.0, seed: int = 0) -> Answer:
    """Simulate `orders` placed uniformly over `seconds` (the template's knobs by default) and
    answer: peak backlog, latency, which quota breaks first, and the cost."""
    knobs = (knobs or Knobs()).over(SHOP.knobs)
    lots = max(1, int(seconds / LOT_SECONDS))
    each, rest = divmod(orders, lots)
    arrivals: list[float] = []
    for i in range(lots):
        arrivals += [round(i * LOT_SECONDS, 6)] * (each + (i < rest))
    started = time.perf_counter()
    result = simulate(arrivals, knobs, durations, seed=seed)
    wall = time.perf_counter() - started
    latencies = sorted(result.latencies)
    first = result.breaks_first()
    per_1000 = cost_per_1000_orders()
    return Answer(
        orders=orders, knobs=knobs, durations=durations, peak_backlog=result.peak_backlog,
        peak_oldest_age=max((s.oldest_age for s in result.samples), default=0.0),
        p50_latency=_percentile(latencies, 0.50), p99_latency=_percentile(latencies, 0.99),
        confirmed=len(latencies), dead_lettered=result.dead_lettered, throttles=result.throttles,
        breaks_first=first, breaks_first_use=result.quota_use.get(first, 0.0) if first else 0.0,
        quota_use=result.quota_use, cost_usd=per_1000 * orders / 1000, cost_per_1000_orders=per_1000,
        wall_seconds=wall, result=result, seconds=seconds,
    )


def _percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


#: The chapter's answer, as `python -m edakit capacity --write` writes it (the notebook shows it;
#: tests/capacity/test_model.py checks it is current).
ANSWER_FILE = SAM_APP.parent / "chapters" / "10-scale" / "million-orders.md"


#: The shop as deployed, and with order processing's cap raised for the peak.
ANSWERS = {
    "As deployed (the template's defaults)": Knobs(),
    "OrdersMaximumConcurrency raised to 50": Knobs(maximum_concurrency=50),
}


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m edakit capacity",
                                     description="One million orders in an hour, through the capacity model.")
    parser.add_argument("--write", action="store_true", help=f"write the answer to {ANSWER_FILE.relative_to(SAM_APP.parent)}")
    args = parser.parse_args(argv)
    sections = []
    for title, knobs in ANSWERS.items():
        answer = million_orders_an_hour(knobs)
        sections.append(f"### {title}\n\n{answer.table()}\n")
        print(f"({title}: the model ran in {answer.wall_seconds:.1f} s)")
    text = "\n".join(sections)
    print(text)
    if args.write:
        ANSWER_FILE.write_text(text)
        print(f"wrote {ANSWER_FILE.relative_to(SAM_APP.parent)}")
    return 0
