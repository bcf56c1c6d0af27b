"""What the finished shop costs on AWS, idle and per 1,000 orders, from what the local cloud counted.

`python -m edakit cost` runs a seeded scenario on sam-app/ (orders through the storefront,
with its clickstream where the stage has one), counts what AWS bills for, and prices it:

- requests each caller made of each API (the call recorder of edakit.iam): DynamoDB
  reads and writes, PutEvents entries, SNS publishes;
- messages sent to every queue, from any source (a function, an EventBridge rule, an SNS
  subscription, a redrive), counted where moto stores them;
- records written to every stream;
- the Lambda service's own requests: one ReceiveMessage and one DeleteMessageBatch per SQS
  batch it hands a function;
- invocations and their (virtual) durations, log bytes, emails and text messages.

`--write` puts the table into sam-app/README.md; tests/sam/test_cost.py checks it is current.
Prices are US East (N. Virginia) list prices, before the free tier, dated below.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from .paths import SAM_APP
from .scenarios import browse, carts, place_steadily, seed_every_product

PRICES_AS_OF = "2026-11-27"
REGION = "us-east-1"


@dataclass(frozen=True)
class Price:
    what: str
    usd: float
    per: float
    unit: str
    source: str


PRICES = {
    "lambda_requests": Price("Lambda requests", 0.20, 1e6, "requests", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_compute": Price("Lambda compute (x86)", 0.0000166667, 1, "GB-seconds", "https://aws.amazon.com/lambda/pricing/"),
    "eventbridge_events": Price("EventBridge custom events", 1.00, 1e6, "events (64 KB chunks)", "https://aws.amazon.com/eventbridge/pricing/"),
    "eventbridge_archive": Price("EventBridge archive, events processed", 0.10, 1, "GB", "https://aws.amazon.com/eventbridge/pricing/"),
    "sqs_standard": Price("SQS requests, standard queues", 0.40, 1e6, "requests (64 KB chunks)", "https://aws.amazon.com/sqs/pricing/"),
    "sqs_fifo": Price("SQS requests, FIFO queues", 0.50, 1e6, "requests (64 KB chunks)", "https://aws.amazon.com/sqs/pricing/"),
    "sns_publish": Price("SNS publishes", 0.50, 1e6, "requests (64 KB chunks)", "https://aws.amazon.com/sns/pricing/"),
    "sns_email": Price("SNS email deliveries", 2.00, 1e5, "emails", "https://aws.amazon.com/sns/pricing/"),
    "sns_sms": Price("SNS SMS to US numbers (before carrier fees)", 0.00581, 1, "messages", "https://aws.amazon.com/sns/sms-pricing/"),
    "dynamodb_writes": Price("DynamoDB on-demand writes", 0.625, 1e6, "write request units", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_reads": Price("DynamoDB on-demand reads", 0.125, 1e6, "read request units", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "kinesis_put_units": Price("Kinesis PUT payload units", 0.014, 1e6, "25 KB units", "https://aws.amazon.com/kinesis/data-streams/pricing/"),
    "logs_ingested": Price("CloudWatch Logs ingestion", 0.50, 1, "GB", "https://aws.amazon.com/cloudwatch/pricing/"),
    # Idle, per month
    "kinesis_shard_hours": Price("Kinesis shard hours (provisioned)", 0.015, 1, "shard-hours", "https://aws.amazon.com/kinesis/data-streams/pricing/"),
    "kms_keys": Price("KMS customer managed keys", 1.00, 1, "key-months", "https://aws.amazon.com/kms/pricing/"),
    "kms_requests": Price("KMS requests", 0.03, 1e4, "requests", "https://aws.amazon.com/kms/pricing/"),
    "alarms": Price("CloudWatch standard alarms", 0.10, 1, "alarm-months", "https://aws.amazon.com/cloudwatch/pricing/"),
    "custom_metrics": Price("CloudWatch custom metrics", 0.30, 1, "metric-months", "https://aws.amazon.com/cloudwatch/pricing/"),
}

HOURS_PER_MONTH = 730
#: Lambda's SQS pollers long-poll an empty queue. AWS does not publish their number or rate;
#: this estimate assumes the 5 pollers Lambda starts with, each making a 20-second long poll.
#: https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
IDLE_POLLERS, LONG_POLL_SECONDS = 5, 20
#: SQS and SNS reuse a data key for this long by default (KmsDataKeyReusePeriodSeconds).
#: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-server-side-encryption.html
DATA_KEY_REUSE_SECONDS = 300
STOCK_PER_SKU = 100_000
#: The namespace of the shop's own metrics (POWERTOOLS_METRICS_NAMESPACE in the template).
CUSTOM_NAMESPACE = "Shop"


@dataclass
class Usage:
    """What the scenario used, in the units AWS bills."""

    orders: int
    virtual_seconds: float
    quantities: Counter[str] = field(default_factory=Counter)
    notes: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def _counting_stream_records() -> Iterator[Counter[str]]:
    """Count every record put on a stream (by stream name, in 25 KB units), whoever puts it: the
    storefront's PutRecords and the rule's target both end in moto's KinesisBackend.put_record."""
    from moto.kinesis.models import KinesisBackend

    put_units: Counter[str] = Counter()
    put_record = KinesisBackend.put_record

    def counted_put(self: Any, stream_arn: Any, stream_name: Any, partition_key: str, explicit_hash_key: Any, data: Any) -> Any:
        size = len(data if isinstance(data, (bytes, str)) else str(data))
        put_units[stream_name or str(stream_arn)] += max(1, math.ceil(size / 25600))
        return put_record(self, stream_arn, stream_name, partition_key, explicit_hash_key, data)

    KinesisBackend.put_record = counted_put  # type: ignore[method-assign]
    try:
        yield put_units
    finally:
        KinesisBackend.put_record = put_record  # type: ignore[method-assign]


def _dynamodb_units(requests: Counter[tuple[str | None, str]], entries: Counter[tuple[str | None, str]]) -> tuple[float, float]:
    """Write and read request units, for items under 1 KB (writes) and 4 KB (reads), as the shop's are.
    A transactional item costs two units. https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html"""
    writes = reads = 0.0
    for (caller, operation), count in requests.items():
        if caller is None or not operation.startswith("dynamodb:"):
            continue
        name = operation.split(":", 1)[1]
        if name in ("PutItem", "UpdateItem", "DeleteItem"):
            writes += count
        elif name == "BatchWriteItem":
            writes += entries[caller, operation]
        elif name == "TransactWriteItems":
            writes += 2 * entries[caller, operation]
        elif name in ("GetItem", "Query", "Scan"):
            reads += count  # strongly consistent or not: one unit at most per 4 KB
        elif name == "TransactGetItems":
            reads += 2 * entries[caller, operation]
    return writes, reads


#: Orders in the scenario the README's table comes from.
README_ORDERS = 50


def measure(template: Path = SAM_APP / "template.yaml", orders: int = README_ORDERS, seed: int = 11) -> Usage:
    """Run the seeded scenario on `template` and count what it used."""
    from .cloud import LocalCloud

    with _counting_stream_records() as put_units, LocalCloud.from_template(template) as cloud:
        # Every message sent to a queue, from any source: the local cloud's SQS metrics
        # (NumberOfMessagesSent) already see each one, and tell their listeners.
        messages: Counter[str] = Counter()
        cloud.cloudwatch.sqs_metrics.on_send.append(lambda queue_name: messages.update([queue_name]))
        seed_every_product(cloud, STOCK_PER_SKU)
        orders_placed = carts(random.Random(seed), orders)
        before_each = None
        if "AnalyticsStream" in cloud.deployment.physical_ids:  # the stage has the storefront's clickstream
            from shop.clickstream import Clickstream

            clicks = Clickstream(cloud.physical_id("AnalyticsStream"))

            def before_each(batch: Sequence[Any]) -> None:
                browse(clicks, batch)

        place_steadily(cloud, orders_placed, before_each=before_each)
        usage = _usage(cloud, orders, messages, put_units)
    return usage


def _usage(cloud: Any, orders: int, messages: Counter[str], put_units: Counter[str]) -> Usage:
    recorder = cloud.call_recorder
    usage = Usage(orders=orders, virtual_seconds=cloud.clock.elapsed)
    q = usage.quantities
    invocations = cloud.invocations()
    q["lambda_requests"] = len(invocations)
    memory = {logical_id: f.memory for logical_id, f in cloud.functions.items()}
    q["lambda_compute"] = sum(math.ceil(i.duration * 1000) / 1000 * memory[i.function] / 1024 for i in invocations)
    usage.notes["lambda_compute"] = "durations are the local cloud's model of each function, not measured on AWS"
    q["eventbridge_events"] = sum(n for (caller, op), n in recorder.entries.items() if op == "events:PutEvents")
    archives = [r for r, t in cloud.deployment.resource_types.items() if t == "AWS::Events::Archive"]
    if archives:
        event_bytes = sum(b for (caller, op), b in recorder.payload_bytes.items() if op == "events:PutEvents")
        q["eventbridge_archive"] = event_bytes * len(archives) / 1e9
    # SQS: messages in (every source), plus what callers asked of queues, plus Lambda's polling.
    fifo = {name for name in messages if name.endswith(".fifo")}
    by_kind: Counter[str] = Counter()
    for name, count in messages.items():
        by_kind["sqs_fifo" if name in fifo else "sqs_standard"] += count
    for (caller, op), count in recorder.requests.items():
        if op.startswith("sqs:") and op not in ("sqs:SendMessage", "sqs:SendMessageBatch"):
            by_kind["sqs_standard"] += count
    polled = [i for i in invocations if i.trigger == "sqs"]
    for invocation in polled:
        source = invocation.event["Records"][0]["eventSourceARN"].rsplit(":", 1)[1]
        by_kind["sqs_fifo" if source.endswith(".fifo") else "sqs_standard"] += 2  # ReceiveMessage + DeleteMessageBatch
    q.update(by_kind)
    q["sns_publish"] = sum(n for (caller, op), n in recorder.entries.items() if op in ("sns:Publish", "sns:PublishBatch"))
    notifications = Counter(n["protocol"] if isinstance(n, dict) else getattr(n, "protocol", "?") for n in cloud.notifications)
    q["sns_email"] = notifications.get("email", 0) + notifications.get("email-json", 0)
    q["sns_sms"] = notifications.get("sms", 0)
    q["dynamodb_writes"], q["dynamodb_reads"] = _dynamodb_units(recorder.requests, recorder.entries)
    q["kinesis_put_units"] = sum(put_units.values())
    q["logs_ingested"] = sum(len(line.encode()) + 26 for f in cloud.functions for line in cloud.logs(f)) / 1e9
    usage.notes["sqs_standard"] = ("one request per message sent, whoever sends it: every message the shop sends "
                                   "is under 64 KB, SQS's billing chunk")
    usage.notes["logs_ingested"] = "each event's bytes plus 26 bytes of metadata, as CloudWatch Logs meters them"
    metrics = {(m["MetricName"], json.dumps(m.get("Dimensions", []), sort_keys=True))
               for page in boto3.client("cloudwatch").get_paginator("list_metrics").paginate(Namespace=CUSTOM_NAMESPACE)
               for m in page["Metrics"]}
    if metrics:
        usage.notes["custom_metrics"] = (
            f"the functions publish {len(metrics)} metrics in the {CUSTOM_NAMESPACE} namespace (embedded metric format); "
            f"each costs {PRICES['custom_metrics'].usd:.2f} USD a month, prorated by the hour, in the hours it is "
            f"published: {len(metrics) * PRICES['custom_metrics'].usd:.2f} USD for a month of steady traffic")
    return usage


def idle(template: Path = SAM_APP / "template.yaml") -> Counter[str]:
    """Monthly quantities the stack is billed for with no traffic at all."""
    from .template import load_stage

    cloudformation = load_stage(template, REGION).cloudformation
    resources = cloudformation["Resources"]
    defaults = {name: p.get("Default") for name, p in cloudformation.get("Parameters", {}).items()}

    def value(v: Any) -> Any:
        """A literal, or a parameter's Default (the stack as deployed without overrides)."""
        return defaults.get(v["Ref"]) if isinstance(v, dict) and "Ref" in v else v

    q: Counter[str] = Counter()
    for resource in resources.values():
        kind, props = resource["Type"], resource.get("Properties") or {}
        if kind == "AWS::Kinesis::Stream" and props.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED") == "PROVISIONED":
            q["kinesis_shard_hours"] += int(value(props.get("ShardCount", 1))) * HOURS_PER_MONTH
        elif kind == "AWS::KMS::Key":
            q["kms_keys"] += 1
        elif kind == "AWS::CloudWatch::Alarm":
            q["alarms"] += 1
        elif kind == "AWS::Lambda::EventSourceMapping" and _is_queue(props.get("EventSourceArn"), resources):
            q["sqs_standard"] += IDLE_POLLERS * HOURS_PER_MONTH * 3600 / LONG_POLL_SECONDS
    return q


def _is_queue(arn: Any, resources: dict[str, Any]) -> bool:
    """Whether an event source (a literal ARN or a GetAtt) is an SQS queue."""
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:
        target = arn["Fn::GetAtt"][0] if isinstance(arn["Fn::GetAtt"], list) else str(arn["Fn::GetAtt"]).split(".")[0]
        return resources.get(target, {}).get("Type") == "AWS::SQS::Queue"
    return ":sqs:" in json.dumps(arn)


def _cost(quantities: Counter[str]) -> dict[str, float]:
    return {key: quantities[key] * PRICES[key].usd / PRICES[key].per for key in quantities if quantities[key]}


def table(usage: Usage, idle_quantities: Counter[str]) -> str:
    """The Markdown table for sam-app/README.md."""
    per_1000 = Counter({k: v * 1000 / usage.orders for k, v in usage.quantities.items()})
    cost_1000 = _cost(per_1000)
    cost_idle = _cost(idle_quantities)
    lines = [
        f"Computed by `python -m edakit cost` from a seeded run of {usage.orders} orders on the local cloud "
        f"({usage.virtual_seconds:.0f} virtual seconds), priced at US East (N. Virginia) list prices as of "
        f"{PRICES_AS_OF}, before the free tier. Sources: the pricing page named in each row.",
        "",
        "**Per 1,000 orders**",
        "",
        "| item | quantity | USD |",
        "| --- | ---: | ---: |",
    ]
    for key in sorted(cost_1000, key=lambda k: -cost_1000[k]):
        price = PRICES[key]
        lines.append(f"| [{price.what}]({price.source}) | {_quantity(per_1000[key])} {price.unit} | {_usd(cost_1000[key])} |")
    lines.append(f"| **total** | | **{sum(cost_1000.values()):.4f}** |")
    lines += ["", "**Idle, per month** (no orders at all)", "", "| item | quantity | USD |", "| --- | ---: | ---: |"]
    for key in sorted(cost_idle, key=lambda k: -cost_idle[k]):
        price = PRICES[key]
        label = price.what + (" (Lambda's pollers on empty queues, an estimate)" if key.startswith("sqs") else "")
        lines.append(f"| [{label}]({price.source}) | {_quantity(idle_quantities[key])} {price.unit} | {cost_idle[key]:.2f} |")
    lines.append(f"| **total** | | **{sum(cost_idle.values()):.2f}** |")
    lines += ["", "Notes:", ""]
    lines += [f"- {PRICES[k].what}: {note}." for k, note in sorted(usage.notes.items())]
    lines += [
        f"- KMS requests are not in the table: SQS and SNS reuse a data key for {DATA_KEY_REUSE_SECONDS // 60} minutes, "
        "so a busy shop makes a few requests per queue and caller every 5 minutes (cents per month).",
        "- Idle SQS polling: AWS does not publish how often Lambda polls an empty queue; the row assumes "
        f"{IDLE_POLLERS} pollers each making a {LONG_POLL_SECONDS}-second long poll, per SQS event source.",
        "- Not counted: data transfer, DynamoDB and archive storage (cents for a shop this size), and the free tier, "
        "which covers most of a learner's traffic.",
    ]
    return "\n".join(lines)


def _usd(value: float) -> str:
    return f"{value:.4f}" if value >= 0.0001 else "< 0.0001"


def _quantity(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:,.1f}"
    return f"{value:.3g}"


BEGIN = "<!-- cost table: generated by `python -m edakit cost --write`; tests/sam/test_cost.py checks it -->"
END = "<!-- end of cost table -->"


def with_table(readme: str, text: str) -> str:
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + text + "\n" + readme[end:]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edakit cost", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=README_ORDERS)
    parser.add_argument("--write", action="store_true", help="put the table into sam-app/README.md")
    args = parser.parse_args(argv)
    if args.orders < 1:
        print("error: --orders must be at least 1", file=sys.stderr)
        return 2
    if args.write and args.orders != README_ORDERS:
        print(f"error: the README's table is made from {README_ORDERS} orders (its test checks that); "
              "drop --orders, or print a table for another count without --write", file=sys.stderr)
        return 2
    text = table(measure(orders=args.orders), idle())
    if args.write:
        readme = SAM_APP / "README.md"
        readme.write_text(with_table(readme.read_text(), text))
        print(f"wrote the cost table into {readme}")
    else:
        print(text)
    return 0
