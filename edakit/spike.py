"""A Black-Friday spike on the local cloud: hundreds of orders in a virtual minute, sampled
each virtual second (chapter 10).

`run_spike` turns the three knobs of stage 10 with the API calls an operator would make
(UpdateEventSourceMapping's ScalingConfig, PutFunctionConcurrency, UpdateShardCount),
gives the functions their virtual durations, then places the spike's orders through the
storefront, each at its own virtual second, with each shopper's clicks on the analytics
stream just before. It samples, every virtual second, what CloudWatch would graph:

- OrdersQueue's ApproximateNumberOfMessagesVisible and ...NotVisible, and
  ApproximateAgeOfOldestMessage;
- order processing's concurrent executions and its throttled invocations (cumulative);
- the analytics consumer's IteratorAge (its latest batch's);

and, per order, the end-to-end latency: from its placement to its OrderConfirmed (or
OrderCancelled) on the bus.

`python -m edakit spike --write` runs the chapter's four spikes (a well-provisioned
baseline, then one knob turned down at a time) and writes their series to
chapters/10-scale/spike.json, which the chapter's notebook plots; a stage test runs
them again and checks the file is current.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .paths import CHAPTERS

if TYPE_CHECKING:
    from .cloud import LocalCloud

SPIKE_FILE = CHAPTERS / "10-scale" / "spike.json"
QUEUE = "OrdersQueue"
FUNCTION = "OrderProcessingFunction"
ANALYTICS = "AnalyticsFunction"
#: Bus events that end an order's way through the shop.
FINAL_EVENTS = ("OrderConfirmed", "OrderCancelled")
#: Where an order's message waits when it failed every receive (for a redrive).
DEAD_LETTER_QUEUES = ("OrdersDLQ", "PaymentsDLQ")


#: ScalingConfig's MaximumConcurrency range, and the account's concurrent executions.
#: https://docs.aws.amazon.com/lambda/latest/dg/API_ScalingConfig.html
MAXIMUM_CONCURRENCY_RANGE = (2, 1000)
ACCOUNT_CONCURRENCY = 1000


@dataclass(frozen=True)
class Knobs:
    """The three knobs of chapter 10 (stage 10's parameters); None leaves a knob as the
    template sets it. The local cloud (edakit.spike) and the model (edakit.capacity) share it."""

    maximum_concurrency: int | None = None   # OrdersQueue mapping's ScalingConfig
    reserved_concurrency: int | None = None  # OrderProcessingFunction's ReservedConcurrentExecutions
    shard_count: int | None = None           # AnalyticsStream's shards

    def __post_init__(self) -> None:
        low, high = MAXIMUM_CONCURRENCY_RANGE
        if self.maximum_concurrency is not None and not low <= self.maximum_concurrency <= high:
            raise ValueError(f"maximum_concurrency must be between {low} and {high} (ScalingConfig's range), "
                             f"or None for the template's; got {self.maximum_concurrency}")
        if self.reserved_concurrency is not None and not 0 <= self.reserved_concurrency <= ACCOUNT_CONCURRENCY:
            raise ValueError(f"reserved_concurrency must be between 0 and {ACCOUNT_CONCURRENCY}, or None; "
                             f"got {self.reserved_concurrency}")
        if self.shard_count is not None and self.shard_count < 1:
            raise ValueError(f"shard_count must be at least 1, got {self.shard_count}")

    def parameters(self) -> dict[str, str]:
        """The same knobs as stage 10's template parameters, for a fresh deploy."""
        values = {"OrdersMaximumConcurrency": self.maximum_concurrency,
                  "OrderProcessingReservedConcurrency": self.reserved_concurrency,
                  "AnalyticsShardCount": self.shard_count}
        return {name: str(value) for name, value in values.items() if value is not None}

    def over(self, template: "Knobs") -> "Knobs":
        """These knobs, with the ones left at None taken from `template`."""
        return Knobs(*(mine if mine is not None else theirs for mine, theirs in
                       zip((self.maximum_concurrency, self.reserved_concurrency, self.shard_count),
                           (template.maximum_concurrency, template.reserved_concurrency, template.shard_count))))


@dataclass(frozen=True)
class Durations:
    """Virtual seconds each invocation (a whole batch) takes, by function. The defaults are the
    local cloud's (edakit.runtime.DEFAULT_DURATION); SPIKE_DURATIONS are the chapter's."""

    order_processing: float = 0.1
    inventory: float = 0.1
    payments: float = 0.1
    analytics: float = 0.1

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"Durations.{name} must be a positive number of seconds, got {value}")

    def apply(self, cloud: "LocalCloud") -> None:
        for logical_id, seconds in (("OrderProcessingFunction", self.order_processing),
                                    ("InventoryFunction", self.inventory),
                                    ("PaymentsFunction", self.payments),
                                    ("AnalyticsFunction", self.analytics)):
            cloud.function(logical_id).duration = seconds


#: The chapter's spike: order processing takes 4 s a batch, analytics 8 s, so that 200 orders
#: in a minute make the knobs matter.
SPIKE_DURATIONS = Durations(order_processing=4.0, inventory=0.2, payments=0.5, analytics=8.0)


@dataclass(frozen=True)
class Spike:
    """`orders` orders placed at seeded random instants over `seconds` virtual seconds."""

    orders: int = 200
    seconds: float = 60.0
    seed: int = 2026

    def arrivals(self) -> list[float]:
        rng = random.Random(self.seed)
        return sorted(round(rng.uniform(0, self.seconds), 3) for _ in range(self.orders))


@dataclass
class Sample:
    """What CloudWatch would graph at one virtual second of the spike."""

    second: float
    visible: int
    in_flight: int
    oldest_age: float
    concurrency: int
    throttles: int
    iterator_age: float | None


@dataclass
class SpikeResult:
    knobs: Knobs
    durations: Durations
    placed_at: list[float]
    samples: list[Sample]
    latencies: list[tuple[float, float]]  # per final order: (placed at, seconds to its final event)
    unfinished: int                  # orders with no final event when the run ended
    dead_lettered: int               # messages in OrdersDLQ and PaymentsDLQ at the end
    label: str = ""

    @property
    def peak_backlog(self) -> int:
        return max(s.visible + s.in_flight for s in self.samples)

    @property
    def peak_age(self) -> float:
        return max(s.oldest_age for s in self.samples)

    @property
    def peak_concurrency(self) -> int:
        return max(s.concurrency for s in self.samples)

    @property
    def throttles(self) -> int:
        return self.samples[-1].throttles if self.samples else 0

    @property
    def peak_iterator_age(self) -> float:
        return max((s.iterator_age or 0.0) for s in self.samples)

    def latency(self, quantile: float) -> float:
        ordered = sorted(latency for _, latency in self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "knobs": asdict(self.knobs),
            "durations": asdict(self.durations),
            "samples": {name: [getattr(s, name) for s in self.samples] for name in Sample.__dataclass_fields__},
            "placed_at": self.placed_at,
            "latencies": [[placed, round(latency, 3)] for placed, latency in self.latencies],
            "unfinished": self.unfinished,
            "dead_lettered": self.dead_lettered,
        }

    @classmethod
    def from_json(cls, run: dict[str, Any]) -> "SpikeResult":
        """The result that `as_json` wrote (one run of spike.json)."""
        columns = run["samples"]
        samples = [Sample(*row) for row in zip(*(columns[name] for name in Sample.__dataclass_fields__))]
        return cls(Knobs(**run["knobs"]), Durations(**run["durations"]), list(run["placed_at"]), samples,
                   [(placed, latency) for placed, latency in run["latencies"]],
                   unfinished=run["unfinished"], dead_lettered=run["dead_lettered"], label=run["label"])


def turn_knobs(cloud: "LocalCloud", knobs: Knobs) -> None:
    """Set the knobs with the calls an operator makes on a deployed stack; a knob already as
    deployed (by the stack's parameters) is left alone."""
    import boto3

    lambda_client = boto3.client("lambda")
    function_name = cloud.physical_id(FUNCTION)
    if knobs.maximum_concurrency is not None:
        [mapping] = [m for m in lambda_client.list_event_source_mappings(FunctionName=function_name)["EventSourceMappings"]
                     if m["EventSourceArn"].endswith(":" + cloud.physical_id(QUEUE).rsplit("/", 1)[-1])]
        if (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency") != knobs.maximum_concurrency:
            lambda_client.update_event_source_mapping(UUID=mapping["UUID"],
                                                      ScalingConfig={"MaximumConcurrency": knobs.maximum_concurrency})
    if knobs.reserved_concurrency is not None:
        reserved = lambda_client.get_function(FunctionName=function_name).get("Concurrency", {})
        if reserved.get("ReservedConcurrentExecutions") != knobs.reserved_concurrency:
            lambda_client.put_function_concurrency(FunctionName=function_name,
                                                   ReservedConcurrentExecutions=knobs.reserved_concurrency)
    if knobs.shard_count is not None:
        kinesis = boto3.client("kinesis")
        stream = cloud.outputs["AnalyticsStreamName"]
        if kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["OpenShardCount"] != knobs.shard_count:
            kinesis.update_shard_count(StreamName=stream, TargetShardCount=knobs.shard_count, ScalingType="UNIFORM_SCALING")


def run_spike(cloud: "LocalCloud", spike: Spike = Spike(), knobs: Knobs = Knobs(),
              durations: Durations = SPIKE_DURATIONS, *, label: str = "", horizon: float = 3600.0) -> SpikeResult:
    """Place the spike's orders on a running stage-10 cloud and sample it each virtual second
    until every order is through (or `horizon` virtual seconds have passed)."""
    from .metrics import iterator_age, oldest_message_age
    from .scenarios import _shop_on_path, browse, carts, seed_every_product

    _shop_on_path()
    from shop.clickstream import Clickstream
    from shop.storefront import Storefront

    cloud.run_until_idle()
    turn_knobs(cloud, knobs)
    durations.apply(cloud)
    seed_every_product(cloud, 1_000_000)
    orders = carts(random.Random(spike.seed), spike.orders, prefix=f"spike-{label or 'run'}")
    storefront = Storefront(cloud.physical_id("ShopBus"))
    clicks = Clickstream(cloud.outputs["AnalyticsStreamName"])
    tracer = cloud.cloudwatch.tracer
    first_hop = len(tracer.hops)
    throttled_before = cloud.throttles(FUNCTION)

    start = cloud.clock.now()
    placed_at: dict[str, float] = {}
    samples: list[Sample] = []
    arrivals = spike.arrivals()
    seen_invocations = len(cloud.invocations())
    queue = cloud.sqs_backend.get_queue(cloud.physical_id(QUEUE).rsplit("/", 1)[-1])

    def sample(second: int) -> None:
        nonlocal seen_invocations
        now = cloud.clock.now()
        depth = cloud.queue_depth(QUEUE)
        recent = cloud.invocations_since(seen_invocations)
        seen_invocations += len(recent)
        ages = [iterator_age(i.event, i.time) for i in recent if i.function == ANALYTICS]
        ages = [a / 1000 for a in ages if a is not None]
        samples.append(Sample(float(second), depth["visible"], depth["in_flight"],
                              round(oldest_message_age(queue, now) or 0.0, 3),
                              cloud.concurrency(FUNCTION), cloud.throttles(FUNCTION) - throttled_before,
                              round(max(ages), 3) if ages else None))

    second, index = 0, 0
    while True:
        while index < len(arrivals) and arrivals[index] < second + 1:
            cloud.run_until(start + arrivals[index])
            cart = orders[index]
            browse(clicks, [cart])
            [placed] = storefront.place_orders([cart])
            placed_at[placed.order_id] = arrivals[index]
            index += 1
        cloud.run_until(start + second + 1)
        second += 1
        sample(second)
        done = index == len(arrivals) and cloud.next_time() is None
        if done or second >= horizon:
            break

    finished: dict[str, float] = {}
    for hop in tracer.hops[first_hop:]:
        if hop.label.startswith("PutEvents ") and hop.label.split(" ", 1)[1] in FINAL_EVENTS:
            detail = json.loads(json.loads(hop.text)["Detail"])
            order_id = detail.get("order_id")
            if order_id in placed_at and order_id not in finished:
                finished[order_id] = hop.time - start
    latencies = [(placed_at[o], round(finished[o] - placed_at[o], 3)) for o in placed_at if o in finished]
    dead = sum(sum(cloud.queue_depth(dlq).values()) for dlq in DEAD_LETTER_QUEUES)
    return SpikeResult(knobs, durations, list(placed_at.values()), samples, latencies,
                       unfinished=len(placed_at) - len(finished), dead_lettered=dead, label=label)


#: The chapter's spikes: a well-provisioned baseline, then one knob turned down at a time.
BASELINE = Knobs(maximum_concurrency=10, shard_count=4)
RUNS: dict[str, Knobs] = {
    "baseline": BASELINE,
    "MaximumConcurrency 2": Knobs(maximum_concurrency=2, shard_count=4),
    "reserved concurrency 2": Knobs(maximum_concurrency=10, reserved_concurrency=2, shard_count=4),
    "1 shard": Knobs(maximum_concurrency=10, shard_count=1),
}


def chapter_runs(spike: Spike = Spike(), durations: Durations = SPIKE_DURATIONS,
                 stage: Path | None = None) -> dict[str, SpikeResult]:
    """Each of RUNS on a fresh stage-10 cloud, deployed with the run's knobs as parameters (so
    run_spike finds them set and only records them)."""
    from .cloud import LocalCloud
    from .paths import chapter

    results = {}
    for label, knobs in RUNS.items():
        with LocalCloud.from_template(stage or chapter("10"), parameters=knobs.parameters()) as cloud:
            results[label] = run_spike(cloud, spike, knobs, durations, label=label)
    return results


def as_document(results: dict[str, SpikeResult], spike: Spike) -> str:
    document = {"spike": asdict(spike), "runs": {label: r.as_json() for label, r in results.items()}}
    return json.dumps(document, indent=1) + "\n"


def load(path: Path = SPIKE_FILE) -> dict[str, SpikeResult]:
    """The chapter's spikes, by label, as `python -m edakit spike --write` wrote them."""
    return {label: SpikeResult.from_json(run) for label, run in json.loads(path.read_text())["runs"].items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edakit spike", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write the series to {SPIKE_FILE.relative_to(CHAPTERS.parent)}")
    args = parser.parse_args(argv)
    spike = Spike()
    results = chapter_runs(spike)
    for label, result in results.items():
        print(f"{label:24s} peak backlog {result.peak_backlog:4d}  oldest {result.peak_age:6.1f} s  "
              f"concurrency {result.peak_concurrency:3d}  throttles {result.throttles:4d}  "
              f"iterator age {result.peak_iterator_age:5.1f} s  p50 {result.latency(0.5):6.1f} s  "
              f"p99 {result.latency(0.99):6.1f} s  unfinished {result.unfinished}  DLQ {result.dead_lettered}")
    if args.write:
        SPIKE_FILE.write_text(as_document(results, spike))
        print(f"wrote {SPIKE_FILE.relative_to(CHAPTERS.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
