"""CloudWatch metrics the local cloud publishes, in virtual time: what functions log in the
embedded metric format (EMF), Lambda's own AWS/Lambda metrics and SQS's AWS/SQS metrics.

moto stores metric data but produces none. Everything here is written into moto's CloudWatch
backend (boto3's get_metric_statistics reads it) and kept in an index that alarms and
`cloud.metric()` read quickly.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .errors import EdakitError

if TYPE_CHECKING:
    from .cloud import LocalCloud
    from .runtime import Function, Invocation

#: SQS pushes its queue metrics to CloudWatch once a minute.
#: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-monitoring-using-cloudwatch.html
SQS_SAMPLE_SECONDS = 60
#: A queue with no message and no API call for six hours is inactive: SQS stops sampling it.
#: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
SQS_INACTIVE_AFTER = 6 * 3600
#: EMF: at most 30 dimensions in a dimension set, 100 metrics per directive, 100 values per metric.
#: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
EMF_MAX_DIMENSIONS = 30
EMF_MAX_METRICS = 100
EMF_MAX_VALUES = 100
#: The units PutMetricData accepts (an EMF Unit must be one of them).
UNITS = frozenset({
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
})

Dimensions = tuple[tuple[str, str], ...]


class InvalidEmf(ValueError):
    """A log line that claims to be EMF (it has `_aws`) but breaks the specification."""


@dataclass(frozen=True)
class Datum:
    """One value of one metric, at a virtual time (epoch seconds)."""

    namespace: str
    name: str
    dimensions: Dimensions
    time: float
    value: float
    unit: str = "None"


def dimensions_key(dimensions: dict[str, str] | Iterable[tuple[str, str]] | None) -> Dimensions:
    items = dimensions.items() if isinstance(dimensions, dict) else (dimensions or ())
    return tuple(sorted((str(k), str(v)) for k, v in items))


# -- the embedded metric format ----------------------------------------------------------------


def parse_emf(line: str) -> list[Datum] | None:
    """The metric data of one log line in the embedded metric format.

    Returns None for a line that is not an EMF document (not a JSON object with
    `_aws`), and raises InvalidEmf for a document that breaks the specification.
    A document yields one datum per metric value, per dimension set, per directive.
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
    """
    text = line.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return None  # most log lines: no need to parse them
    try:
        root = json.loads(text)
    except ValueError:
        return None
    if not isinstance(root, dict) or "_aws" not in root:
        return None
    metadata = root["_aws"]
    if not isinstance(metadata, dict):
        raise InvalidEmf("_aws must be an object")
    timestamp = metadata.get("Timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        raise InvalidEmf("_aws.Timestamp must be a number (milliseconds since the epoch)")
    directives = metadata.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        raise InvalidEmf("_aws.CloudWatchMetrics must be an array of metric directives")
    data: list[Datum] = []
    for index, directive in enumerate(directives):
        where = f"CloudWatchMetrics[{index}]"
        if not isinstance(directive, dict):
            raise InvalidEmf(f"{where} must be an object")
        namespace = directive.get("Namespace")
        if not isinstance(namespace, str) or not 1 <= len(namespace) <= 1024:
            raise InvalidEmf(f"{where}.Namespace must be a string of 1 to 1024 characters")
        dimension_sets = directive.get("Dimensions")
        if not isinstance(dimension_sets, list):
            raise InvalidEmf(f"{where}.Dimensions must be an array of dimension sets")
        metrics = directive.get("Metrics")
        if not isinstance(metrics, list) or len(metrics) > EMF_MAX_METRICS:
            raise InvalidEmf(f"{where}.Metrics must be an array of at most {EMF_MAX_METRICS} metric definitions")
        resolved_sets: list[Dimensions] = []
        for dimension_set in dimension_sets:
            if not isinstance(dimension_set, list) or len(dimension_set) > EMF_MAX_DIMENSIONS:
                raise InvalidEmf(f"{where}: a dimension set is an array of at most {EMF_MAX_DIMENSIONS} names")
            pairs = []
            for name in dimension_set:
                if not isinstance(name, str):
                    raise InvalidEmf(f"{where}: dimension names are strings")
                value = root.get(name)
                if not isinstance(value, str):
                    raise InvalidEmf(f"{where}: dimension {name!r} needs a string member of that name at the root")
                pairs.append((name, value))
            resolved_sets.append(dimensions_key(pairs))
        for metric in metrics:
            if not isinstance(metric, dict) or not isinstance(metric.get("Name"), str):
                raise InvalidEmf(f"{where}: each metric definition has a Name")
            name = metric["Name"]
            unit = metric.get("Unit", "None")
            if unit not in UNITS:
                raise InvalidEmf(f"{where}: metric {name!r} has Unit {unit!r}, not a CloudWatch unit")
            values = root.get(name)
            values = values if isinstance(values, list) else [values]
            if len(values) > EMF_MAX_VALUES or not values or any(
                    isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
                raise InvalidEmf(f"{where}: metric {name!r} needs a number (or up to {EMF_MAX_VALUES}) "
                                 "in a root member of that name")
            for dimensions in resolved_sets:
                data.extend(Datum(namespace, name, dimensions, timestamp / 1000.0, float(v), unit) for v in values)
    return data


# -- the store --------------------------------------------------------------------------------


class MetricStore:
    """Metric data in virtual time: written to moto's CloudWatch backend and to an index."""

    def __init__(self, cloud: "LocalCloud") -> None:
        self.cloud = cloud
        self._series: dict[tuple[str, str, Dimensions], list[tuple[float, float]]] = defaultdict(list)
        #: Log lines that claimed to be EMF and were not valid: (log group, line, reason).
        self.emf_errors: list[tuple[str, str, str]] = []

    @property
    def backend(self) -> Any:
        from moto.cloudwatch.models import cloudwatch_backends

        return cloudwatch_backends[self.cloud.account_id][self.cloud.region]

    def index(self, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        """Index what PutMetricData stored in moto (a learner's own metrics), for alarms to read."""
        for member in metric_data:
            stamp = member.get("Timestamp")
            if isinstance(stamp, str):
                stamp = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            if isinstance(stamp, dt.datetime):
                at = (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)).timestamp()
            else:
                at = self.cloud.clock.now()
            dims = dimensions_key((d["Name"], d["Value"]) for d in member.get("Dimensions") or [])
            if member.get("Values"):
                counts = member.get("Counts") or [1] * len(member["Values"])
                values = [float(v) for v, c in zip(member["Values"], counts) for _ in range(int(float(c)))]
            elif member.get("StatisticValues"):
                stats = member["StatisticValues"]
                # CloudWatch keeps the set's statistics; the index keeps its average, SampleCount times.
                count = int(float(stats["SampleCount"]))
                values = [float(stats["Sum"]) / count] * count if count else []
            else:
                values = [float(member.get("Value", 0))]
            series = self._series[(namespace, member["MetricName"], dims)]
            for value in values:
                bisect.insort(series, (at, value))

    def put(self, data: Iterable[Datum]) -> None:
        from moto.cloudwatch.models import MetricDatum

        for datum in data:
            timestamp = dt.datetime.fromtimestamp(datum.time, dt.timezone.utc).replace(tzinfo=None)  # moto keeps UTC, naive
            self.backend.metric_data.append(MetricDatum(
                datum.namespace, datum.name, datum.value,
                [{"Name": k, "Value": v} for k, v in datum.dimensions], timestamp, datum.unit))
            series = self._series[(datum.namespace, datum.name, datum.dimensions)]
            bisect.insort(series, (datum.time, datum.value))

    def values(self, namespace: str, name: str, dimensions: dict[str, str] | None,
               start: float, end: float) -> list[float]:
        """Every value of the metric with exactly these dimensions in [start, end)."""
        series = self._series.get((namespace, name, dimensions_key(dimensions)), [])
        low = bisect.bisect_left(series, (start, -math.inf))
        high = bisect.bisect_left(series, (end, -math.inf))
        return [value for _, value in series[low:high]]

    def metrics(self) -> list[tuple[str, str, dict[str, str]]]:
        """(namespace, name, dimensions) of every metric with data."""
        return [(ns, name, dict(dims)) for ns, name, dims in sorted(self._series)]

    def series(self, namespace: str, name: str, dimensions: dict[str, str] | None = None,
               stat: str = "Sum", period: int = 60) -> list[tuple[dt.datetime, float]]:
        """The metric's statistic per period, as a CloudWatch graph shows it: (period start, value)."""
        data = self._series.get((namespace, name, dimensions_key(dimensions)))
        if not data:
            known = sorted(f"{n} {dict(d)}" for ns, n, d in self._series if ns == namespace)
            raise EdakitError(f"no data for {namespace} {name} {dict(dimensions or {})}; "
                              f"metrics with data in {namespace}: {', '.join(known) or 'none'}")
        buckets: dict[float, list[float]] = defaultdict(list)
        for time, value in data:
            buckets[time - time % period].append(value)
        return [(dt.datetime.fromtimestamp(start, dt.timezone.utc), statistic(stat, values))
                for start, values in sorted(buckets.items())]

    # -- EMF -----------------------------------------------------------------------------

    def log_lines(self, log_group: str, lines: Iterable[str]) -> None:
        """CloudWatch Logs extracts the metrics of every EMF line; an invalid document gives none."""
        for line in lines:
            try:
                data = parse_emf(line)
            except InvalidEmf as error:
                self.emf_errors.append((log_group, line, str(error)))
                continue
            if data:
                self.put(data)


def statistic(stat: str, values: list[float]) -> float:
    """A CloudWatch statistic of a period's values: SampleCount, Sum, Average, Minimum, Maximum or pNN.

    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Statistics-definitions.html
    """
    if stat == "SampleCount":
        return float(len(values))
    if stat == "Sum":
        return float(sum(values))
    if stat == "Average":
        return sum(values) / len(values)
    if stat == "Minimum":
        return min(values)
    if stat == "Maximum":
        return max(values)
    if stat.startswith("p"):
        try:
            percentile = float(stat[1:])
        except ValueError:
            percentile = -1
        if 0 <= percentile <= 100:
            ordered = sorted(values)
            rank = max(1, math.ceil(percentile / 100 * len(ordered)))
            return ordered[rank - 1]
    raise EdakitError(f"unknown statistic {stat!r}: use SampleCount, Sum, Average, Minimum, Maximum or pNN (p99)")


# -- Lambda's metrics ---------------------------------------------------------------------------


class LambdaMetrics:
    """The AWS/Lambda metrics of each invocation, with the dimension FunctionName.

    https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
    """

    namespace = "AWS/Lambda"

    def __init__(self, store: MetricStore) -> None:
        self.store = store
        self._throttled: set[object] = set()
        self._throttle_counts: Counter[str] = Counter()

    def invoked(self, function: "Function", invocation: "Invocation", running: int, running_total: int) -> None:
        dims = dimensions_key({"FunctionName": function.name})
        at = invocation.time
        data = [
            Datum(self.namespace, "Invocations", dims, at, 1, "Count"),
            Datum(self.namespace, "Errors", dims, at, 0 if invocation.ok else 1, "Count"),
            Datum(self.namespace, "Duration", dims, at, min(invocation.duration, function.timeout) * 1000, "Milliseconds"),
            Datum(self.namespace, "ConcurrentExecutions", dims, at, running, "Count"),
            Datum(self.namespace, "ConcurrentExecutions", (), at, running_total, "Count"),
        ]
        age = iterator_age(invocation.event, at)
        if age is not None:
            data.append(Datum(self.namespace, "IteratorAge", dims, at, age, "Milliseconds"))
        self.store.put(data)

    def throttle_count(self, logical_id: str) -> int:
        return self._throttle_counts[logical_id]

    def throttled(self, function: "Function", request: object, at: float) -> None:
        """One throttled invocation request: ``request`` names it, so a request that waits
        through several scheduler passes counts once."""
        if (function.logical_id, request) in self._throttled:
            return
        self._throttled.add((function.logical_id, request))
        self._throttle_counts[function.logical_id] += 1
        self.store.put([Datum(self.namespace, "Throttles", dimensions_key({"FunctionName": function.name}),
                              at, 1, "Count")])


def iterator_age(event: Any, now: float) -> float | None:
    """For a stream event source: milliseconds from when the batch's last record was written to now.

    https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
    """
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list) or not event["Records"]:
        return None
    last = event["Records"][-1]
    if not isinstance(last, dict):
        return None
    if last.get("eventSource") == "aws:kinesis":
        written = (last.get("kinesis") or {}).get("approximateArrivalTimestamp")
    elif last.get("eventSource") == "aws:dynamodb":
        written = (last.get("dynamodb") or {}).get("ApproximateCreationDateTime")
    else:
        return None
    if not isinstance(written, (int, float)):
        return None
    return max(0.0, (now - float(written)) * 1000)


# -- SQS's metrics ---------------------------------------------------------------------------------


def oldest_message_age(queue: Any, now: float) -> float | None:
    """ApproximateAgeOfOldestMessage of a moto queue at virtual time ``now``: seconds since its
    oldest message (visible, in flight or delayed) was sent, or None when it holds none.

    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
    """
    oldest = min((m.sent_timestamp for m in queue._messages if m.sent_timestamp), default=None)
    return None if oldest is None else max(0.0, now - oldest / 1000)


class SqsMetrics:
    """The AWS/SQS metrics of every queue, with the dimension QueueName.

    The gauges (ApproximateNumberOfMessages*, ApproximateAgeOfOldestMessage) are sampled
    at each virtual minute boundary; the counters (NumberOfMessagesSent, Received,
    Deleted) count the calls, one datum per call.
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
    """

    namespace = "AWS/SQS"

    def __init__(self, store: MetricStore) -> None:
        self.store = store
        self.last_active: dict[str, float] = {}
        #: Called with the queue's name after each SendMessage.
        self.on_send: list[Callable[[str], None]] = []
        self._originals: dict[str, Callable[..., Any]] = {}

    def _count(self, queue_name: str, metric: str, value: int) -> None:
        now = self.store.cloud.clock.now()
        self.last_active[queue_name] = now
        self.store.put([Datum(self.namespace, metric, dimensions_key({"QueueName": queue_name}), now, value, "Count")])

    def install(self) -> None:
        """Count SendMessage, ReceiveMessage and DeleteMessage on moto's SQS backend, whoever calls them."""
        from moto.sqs.models import SQSBackend

        originals = self._originals
        originals.update(send=SQSBackend.send_message, receive=SQSBackend.receive_message,
                         delete=SQSBackend.delete_message)
        metrics = self

        def send_message(backend: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
            message = originals["send"](backend, queue_name, *args, **kwargs)
            metrics._count(queue_name, "NumberOfMessagesSent", 1)
            for listener in metrics.on_send:
                listener(queue_name)
            return message

        def receive_message(backend: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
            messages = originals["receive"](backend, queue_name, *args, **kwargs)
            metrics._count(queue_name, "NumberOfMessagesReceived", len(messages))
            return messages

        def delete_message(backend: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
            result = originals["delete"](backend, queue_name, *args, **kwargs)
            metrics._count(queue_name, "NumberOfMessagesDeleted", 1)
            return result

        SQSBackend.send_message = send_message  # type: ignore[method-assign]
        SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
        SQSBackend.delete_message = delete_message  # type: ignore[method-assign]

    def uninstall(self) -> None:
        from moto.sqs.models import SQSBackend

        if self._originals:
            SQSBackend.send_message = self._originals.pop("send")  # type: ignore[method-assign]
            SQSBackend.receive_message = self._originals.pop("receive")  # type: ignore[method-assign]
            SQSBackend.delete_message = self._originals.pop("delete")  # type: ignore[method-assign]

    def sample(self, at: float) -> None:
        """The queue gauges as they are at the minute boundary ``at`` (nothing has run since)."""
        data = []
        for queue in self.store.cloud.sqs_backend.queues.values():
            messages = queue._messages
            if messages:
                self.last_active[queue.name] = at
            elif at - self.last_active.setdefault(queue.name, at) > SQS_INACTIVE_AFTER:
                continue
            at_ms = at * 1000
            visible = sum(1 for m in messages if m.visible_at < at_ms and m.delayed_until < at_ms)
            delayed = sum(1 for m in messages if m.delayed_until >= at_ms)
            dims = dimensions_key({"QueueName": queue.name})
            oldest_age = oldest_message_age(queue, at)
            data += [
                Datum(self.namespace, "ApproximateNumberOfMessagesVisible", dims, at, visible, "Count"),
                Datum(self.namespace, "ApproximateNumberOfMessagesNotVisible", dims, at,
                      len(messages) - visible - delayed, "Count"),
                Datum(self.namespace, "ApproximateNumberOfMessagesDelayed", dims, at, delayed, "Count"),
            ]
            if oldest_age is not None:
                data.append(Datum(self.namespace, "ApproximateAgeOfOldestMessage", dims, at, oldest_age, "Seconds"))
        self.store.put(data)
