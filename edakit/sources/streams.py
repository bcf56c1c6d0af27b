"""Kinesis and DynamoDB Streams event source mappings: Lambda reads each shard in order and invokes with batches.

https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html
https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html

The semantics, and where AWS leaves a choice to the kit:

- One poller per shard; a shard has at most one batch in flight, so records of a
  shard reach the function in sequence order (ParallelizationFactor is not emulated).
- StartingPosition: TRIM_HORIZON reads the oldest record still retained;
  LATEST reads records written after the mapping starts polling (a mapping in the
  template starts when the stage is deployed; one created through the API starts at
  the cloud's next step, as AWS creates mappings asynchronously); AT_TIMESTAMP
  reads records that arrived at or after StartingPositionTimestamp.
- BatchSize and MaximumBatchingWindowInSeconds: a batch is invoked when it is full,
  or when the window, counted from the arrival of its first record, has passed.
- A failing batch (an error, a timeout, an invalid response) is retried (after 1 s,
  doubling up to 60 s: AWS does not document the wait) and blocks its shard until it succeeds, MaximumRetryAttempts is spent, or its oldest record
  is older than MaximumRecordAgeInSeconds (or than the stream's retention, when that
  is -1). Then the OnFailure destination receives the batch's metadata
  (KinesisBatchInfo / DDBStreamBatchInfo), not its records, and the shard moves on.
  https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
  https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html
- BisectBatchOnFunctionError splits a failed batch in two, without spending a retry;
  the halves are tried at once, in order.
- ReportBatchItemFailures: the lowest reported sequence number is the checkpoint.
  https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html
- TumblingWindowInSeconds: windows are aligned on multiples of the window length
  (epoch time) and hold records by arrival time; the state a function returns is
  passed to its next invocation for the same window, and a final invocation
  (isFinalInvokeForWindow, no records) closes the window once it has ended.
  https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html
- FilterCriteria: records that match no filter are skipped, as if processed. A
  Kinesis record is matched on its ``data``, decoded as JSON when it is JSON.
  https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis-filtering.html

Not emulated: ParallelizationFactor, enhanced fan-out consumers, the 1 MB state
limit of a window (isWindowTerminatedEarly is always false), and reading a parent
shard before its children after resharding.
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Protocol

from .filters import matches_filter_criteria

if TYPE_CHECKING:
    from moto.awslambda.models import EventSourceMapping

    from ..cloud import LocalCloud
    from ..runtime import Function, Invocation

#: AWS does not document how long Lambda waits before retrying a failed stream batch.
#: The kit retries 1 s after the failure (Lambda polls a shard about once a second),
#: doubling the wait up to 60 s, so a batch that always fails with the default
#: settings (retry until the records expire) costs about 1,500 invocations a day.
FIRST_RETRY_DELAY = 1.0
MAX_RETRY_DELAY = 60.0

#: "The data retention limit for DynamoDB Streams is 24 hours." (services-ddb-params)
DYNAMODB_STREAM_RETENTION = 24 * 3600.0


def source_for(cloud: "LocalCloud", mapping: "EventSourceMapping") -> "StreamEventSource | None":
    """The event source for a Kinesis or DynamoDB Streams mapping; None (with a warning) for others."""
    arn = mapping.event_source_arn
    service = arn.split(":")[2]
    if service == "kinesis" and ":stream/" in arn:
        # invokeIdentityArn in each record is the function's execution role.
        role = cloud.lambda_backend.get_function(cloud.function_by_arn(mapping.function_arn).name).role
        return StreamEventSource(cloud, mapping, KinesisShards(cloud, arn, role))
    if service == "dynamodb" and "/stream/" in arn:
        return StreamEventSource(cloud, mapping, DynamoDBShards(cloud, arn))
    cloud.warn(f"event source mapping {mapping.uuid}: the local cloud does not poll {arn}")
    return None


# -- reading shards from moto --------------------------------------------------------------


@dataclass
class ShardRecord:
    """A record of a shard, as its Lambda event record and as event filters see it."""

    sequence: int
    arrival: float
    record: dict[str, Any]
    filterable: dict[str, Any]


class Shards(Protocol):
    """The shards of one stream, read from moto's backend."""

    trigger: str
    batch_info_key: str

    def shard_ids(self) -> list[str]: ...

    def retention(self) -> float: ...

    def records_after(self, shard_id: str, sequence: int) -> Iterator[ShardRecord]: ...

    def last_sequence(self, shard_id: str) -> int: ...

    def sequence_before(self, shard_id: str, timestamp: float) -> int: ...


class KinesisShards:
    """A Kinesis data stream: moto keeps each shard's records in sequence order."""

    trigger = "kinesis"
    batch_info_key = "KinesisBatchInfo"

    def __init__(self, cloud: "LocalCloud", arn: str, role_arn: str) -> None:
        self.cloud = cloud
        self.arn = arn
        self.name = arn.split(":stream/", 1)[1]
        self.role_arn = role_arn

    def _stream(self) -> Any:
        return self.cloud.kinesis_backend.streams.get(self.name)

    def shard_ids(self) -> list[str]:
        stream = self._stream()
        return sorted(stream.shards) if stream is not None else []

    def retention(self) -> float:
        stream = self._stream()
        return float(stream.retention_period_hours if stream is not None else 24) * 3600

    def _records(self, shard_id: str) -> Any:
        stream = self._stream()
        shard = stream.shards.get(shard_id) if stream is not None else None
        return shard.records if shard is not None else {}

    def records_after(self, shard_id: str, sequence: int) -> Iterator[ShardRecord]:
        records = self._records(shard_id)
        numbers = list(records)
        for number in numbers[bisect.bisect_right(numbers, sequence):]:
            yield self._shard_record(shard_id, records[number])

    def last_sequence(self, shard_id: str) -> int:
        records = self._records(shard_id)
        return next(reversed(records), 0) if records else 0

    def sequence_before(self, shard_id: str, timestamp: float) -> int:
        earlier = [n for n, r in self._records(shard_id).items() if r.created_at < timestamp]
        return earlier[-1] if earlier else 0

    def _shard_record(self, shard_id: str, moto_record: Any) -> ShardRecord:
        record = kinesis_record(moto_record, shard_id, self.arn, self.cloud.region, self.role_arn)
        return ShardRecord(int(moto_record.sequence_number), float(moto_record.created_at), record,
                           {"data": _json_or_text(moto_record.data)})


class DynamoDBShards:
    """A DynamoDB table's stream: moto keeps one shard per table."""

    trigger = "dynamodb"
    batch_info_key = "DDBStreamBatchInfo"

    def __init__(self, cloud: "LocalCloud", arn: str) -> None:
        self.cloud = cloud
        self.arn = arn
        self.table_name = arn.split(":table/", 1)[1].split("/stream/", 1)[0]

    def _shard(self) -> Any:
        table = self.cloud.dynamodb_backend.tables.get(self.table_name)
        return table.stream_shard if table is not None else None

    def shard_ids(self) -> list[str]:
        shard = self._shard()
        return [shard.id] if shard is not None else []

    def retention(self) -> float:
        return DYNAMODB_STREAM_RETENTION

    def _items(self, shard_id: str) -> list[Any]:
        shard = self._shard()
        return shard.items if shard is not None and shard.id == shard_id else []

    def records_after(self, shard_id: str, sequence: int) -> Iterator[ShardRecord]:
        items = [i.record for i in self._items(shard_id)]
        numbers = [int(i["dynamodb"]["SequenceNumber"]) for i in items]
        start = bisect.bisect_right(numbers, sequence)
        for index, item in enumerate(items[start:], start):
            if not_written_by_dynamodb(item, items[index + 1] if index + 1 < len(items) else None):
                continue
            record = dynamodb_record(item, self.arn, self.cloud.region)
            yield ShardRecord(int(record["dynamodb"]["SequenceNumber"]),
                              record["dynamodb"]["ApproximateCreationDateTime"], record, record)

    def last_sequence(self, shard_id: str) -> int:
        items = self._items(shard_id)
        return int(items[-1].record["dynamodb"]["SequenceNumber"]) if items else 0

    def sequence_before(self, shard_id: str, timestamp: float) -> int:
        earlier = [r for r in self.records_after(shard_id, 0) if r.arrival < timestamp]
        return earlier[-1].sequence if earlier else 0


def not_written_by_dynamodb(record: dict[str, Any], following: dict[str, Any] | None) -> bool:
    """Stream records moto writes where DynamoDB writes none.

    moto records an UpdateItem that creates an item as two INSERTs (the key alone,
    then the item), and a write that changes nothing as a MODIFY. DynamoDB writes
    one INSERT, and no stream record for a write that does not change the item.
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_Record.html
    """
    change = record["dynamodb"]
    if record["eventName"] == "MODIFY" and "NewImage" in change and change.get("NewImage") == change.get("OldImage"):
        return True
    return (record["eventName"] == "INSERT" and following is not None and following["eventName"] == "INSERT"
            and following["dynamodb"]["Keys"] == change["Keys"])


def kinesis_record(moto_record: Any, shard_id: str, stream_arn: str, region: str, role_arn: str) -> dict[str, Any]:
    """One record of the event Lambda sends for a Kinesis batch.

    https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html#services-kinesis-event-example
    """
    sequence = str(moto_record.sequence_number)
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": moto_record.partition_key,
            "sequenceNumber": sequence,
            "data": moto_record.data,  # moto keeps the data base64-encoded, as Lambda sends it
            "approximateArrivalTimestamp": float(moto_record.created_at),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": role_arn,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def dynamodb_record(moto_record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """One record of the event Lambda sends for a DynamoDB Streams batch.

    moto writes eventVersion 1.0, a fixed awsRegion and a datetime; Lambda sends
    eventVersion 1.1, the table's Region and epoch seconds.
    https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#services-ddb-event-example
    """
    change = dict(moto_record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, dt.datetime):
        created = (created if created.tzinfo else created.replace(tzinfo=dt.timezone.utc)).timestamp()
    change["ApproximateCreationDateTime"] = float(created or 0.0)
    return {
        "eventID": moto_record["eventID"],
        "eventName": moto_record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }


def _json_or_text(data: str) -> Any:
    """Kinesis data as filters see it: the decoded JSON object when the data is JSON."""
    try:
        return json.loads(base64.b64decode(data))
    except (ValueError, TypeError):
        return data


def _iso(timestamp: float) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- the poller ------------------------------------------------------------------------------


@dataclass
class Batch:
    """Records of one shard handed to the function together, and what became of them."""

    records: list[ShardRecord]
    window: tuple[float, float] | None = None
    final: bool = False  # the closing invocation of a tumbling window: no records
    due: float = 0.0
    attempts: int = 0  # invocations of this batch (approximateInvokeCount)
    retries: int = 0  # failed invocations counted against MaximumRetryAttempts
    last_invocation: "Invocation | None" = None

    @property
    def oldest_arrival(self) -> float:
        if self.records:
            return self.records[0].arrival
        return self.window[1] if self.window else 0.0


@dataclass
class ShardPoller:
    """Where Lambda stands in one shard: its checkpoint, the batches it holds, its window."""

    shard_id: str
    checkpoint: int
    batches: list[Batch] = field(default_factory=list)  # formed and unfinished, in shard order
    busy: bool = False
    window: tuple[float, float] | None = None
    state: Any = field(default_factory=dict)


@dataclass
class Plan:
    """What a shard poller would do next, and when."""

    when: float
    action: str  # "invoke", "discard" or "skip"
    batch: Batch | None = None
    condition: str = ""
    skip_to: int = 0


class StreamEventSource:
    """Polls every shard of one stream for one event source mapping."""

    def __init__(self, cloud: "LocalCloud", mapping: "EventSourceMapping", shards: Shards) -> None:
        self.cloud = cloud
        self.mapping = mapping
        self.shards = shards
        self.kind = shards.trigger
        self.function: Function = cloud.function_by_arn(mapping.function_arn)
        #: Metadata records of the batches given up on, whether or not an OnFailure destination took them.
        self.discarded: list[dict[str, Any]] = []
        self.pollers = {s: ShardPoller(s, self._starting_checkpoint(s)) for s in shards.shard_ids()}
        if int(mapping.parallelization_factor or 1) > 1:
            cloud.warn(f"{self.function.logical_id}: ParallelizationFactor is not emulated; "
                       "each shard is processed one batch at a time")

    # -- configuration, read live from moto's mapping ------------------------------------

    @property
    def batch_size(self) -> int:
        return int(self.mapping.batch_size or 100)

    @property
    def batching_window(self) -> float:
        return float(self.mapping.max_batch_window or 0)

    @property
    def maximum_retry_attempts(self) -> int | None:
        value = self.mapping.max_retry_attempts
        return None if value is None or int(value) < 0 else int(value)

    @property
    def maximum_record_age(self) -> float:
        """MaximumRecordAgeInSeconds; -1 (the default) means until the records expire."""
        value = self.mapping.max_record_age
        retention = self.shards.retention()
        return retention if value is None or int(value) < 0 else min(float(value), retention)

    @property
    def tumbling_window(self) -> float:
        return float(self.mapping.tumbling_window or 0)

    @property
    def bisect(self) -> bool:
        return bool(self.mapping.bisect_on_error)

    @property
    def report_batch_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in (self.mapping.function_response_types or [])

    @property
    def on_failure(self) -> str | None:
        return ((self.mapping.destination_config or {}).get("OnFailure") or {}).get("Destination") or None

    # -- shards ---------------------------------------------------------------------------

    def _refresh_shards(self) -> list[ShardPoller]:
        """Every shard's poller; a shard that appears later (resharding) is read from its beginning."""
        for shard_id in self.shards.shard_ids():
            self.pollers.setdefault(shard_id, ShardPoller(shard_id, 0))
        return [self.pollers[s] for s in sorted(self.pollers)]

    def _starting_checkpoint(self, shard_id: str) -> int:
        """The sequence number just before the first record the mapping reads (StartingPosition)."""
        position = (self.mapping.starting_position or "TRIM_HORIZON").upper()
        if position == "LATEST":
            return self.shards.last_sequence(shard_id)
        if position == "AT_TIMESTAMP":
            return self.shards.sequence_before(shard_id, _epoch(self.mapping.starting_position_timestamp))
        return 0

    # -- planning: one function decides for next_due and run, so they never disagree --------

    def _plan(self, poller: ShardPoller, now: float) -> Plan | None:
        if poller.busy:
            return None
        if poller.batches:
            batch = poller.batches[0]
            if batch.due <= now and self._too_old(batch.oldest_arrival, now):
                return Plan(now, "discard", batch, condition="RecordAgeExceeded")
            return Plan(max(batch.due, now), "invoke", batch)
        return self._next_batch(poller, now)

    def _next_batch(self, poller: ShardPoller, now: float) -> Plan | None:
        """Read on from the checkpoint: the next batch to invoke, records to skip, or a window to close."""
        taken: list[ShardRecord] = []
        skip_to = 0
        too_old = False
        window = poller.window
        exhausted = True
        retention = self.shards.retention()
        for record in self.shards.records_after(poller.shard_id, poller.checkpoint):
            if now - record.arrival > retention:
                skip_to = record.sequence  # trimmed from the stream before Lambda read it
                continue
            if self.mapping.filter_criteria and not matches_filter_criteria(self.mapping.filter_criteria, record.filterable):
                skip_to = record.sequence  # as if processed: the checkpoint moves past it
                continue
            if self.tumbling_window:
                record_window = self._window_of(record.arrival)
                if window is None:
                    window = record_window
                elif record_window[0] > window[0]:
                    exhausted = False
                    if not taken and poller.window is not None:
                        return Plan(now, "invoke", Batch([], window=poller.window, final=True))
                    break
            old = self._too_old(record.arrival, now)
            if taken and old != too_old:
                exhausted = False
                break
            taken.append(record)
            too_old = old
            if len(taken) >= self.batch_size:
                exhausted = False
                break
        if not taken:
            if skip_to:
                return Plan(now, "skip", skip_to=skip_to)
            if poller.window is not None:
                return Plan(max(now, poller.window[1]), "invoke", Batch([], window=poller.window, final=True))
            return None
        batch = Batch(taken, window=window if self.tumbling_window else None)
        if too_old:
            return Plan(now, "discard", batch, condition="RecordAgeExceeded")
        if exhausted and self.batching_window:
            return Plan(max(now, taken[0].arrival + self.batching_window), "invoke", batch)
        return Plan(now, "invoke", batch)

    def _too_old(self, arrival: float, now: float) -> bool:
        return now - arrival >= self.maximum_record_age

    def _window_of(self, arrival: float) -> tuple[float, float]:
        length = self.tumbling_window
        start = (arrival // length) * length
        return start, start + length

    # -- EventSource ----------------------------------------------------------------------------

    def next_due(self, now: float) -> float | None:
        if not self.mapping.enabled:
            return None
        can_invoke = self.cloud.free_concurrency(self.function) > 0
        due: float | None = None
        for poller in self._refresh_shards():
            plan = self._plan(poller, now)
            if plan is None or (plan.action == "invoke" and not can_invoke):
                continue  # a throttled shard waits for a completion to free a slot
            due = plan.when if due is None else min(due, plan.when)
        return due

    def run(self, now: float) -> bool:
        if not self.mapping.enabled:
            return False
        progressed = False
        for poller in self._refresh_shards():
            while (plan := self._plan(poller, now)) is not None and plan.when <= now:
                if plan.action == "skip":
                    poller.checkpoint = plan.skip_to
                elif plan.action == "discard":
                    assert plan.batch is not None
                    self._discard(poller, plan.batch, plan.condition)
                else:
                    if self.cloud.free_concurrency(self.function) <= 0:
                        break
                    assert plan.batch is not None
                    self._invoke(poller, plan.batch)
                progressed = True
        return progressed

    def describe_pending(self) -> str:
        if not self.mapping.enabled:
            return ""
        now = self.cloud.clock.now()
        parts = []
        for poller in self._refresh_shards():
            unread = sum(1 for _ in self.shards.records_after(poller.shard_id, poller.checkpoint))
            if poller.batches and poller.batches[0].attempts:
                batch = poller.batches[0]
                span = f"{batch.records[0].sequence}-{batch.records[-1].sequence}" if batch.records else "window close"
                parts.append(f"{poller.shard_id} blocked by a failing batch ({span}, {batch.attempts} invocation(s), "
                             f"next try in {max(0.0, batch.due - now):.0f} s)")
            elif unread:
                parts.append(f"{poller.shard_id}: {unread} unread record(s)")
            elif poller.window is not None:
                parts.append(f"{poller.shard_id}: tumbling window open until {_iso(poller.window[1])}")
        if not parts:
            return ""
        return f"{self.shards.trigger} stream {self.mapping.event_source_arn} for {self.function.logical_id}: " + "; ".join(parts)

    # -- invoking and what follows -----------------------------------------------------------------

    def _invoke(self, poller: ShardPoller, batch: Batch) -> None:
        if batch not in poller.batches:
            poller.batches.append(batch)
        if batch.window is not None and poller.window is None:
            poller.window, poller.state = batch.window, {}
        poller.busy = True
        batch.attempts += 1
        self.cloud.start_invocation(
            self.function, self._event(poller, batch), trigger=self.shards.trigger,
            on_done=lambda invocation: self._complete(poller, batch, invocation),
        )

    def _event(self, poller: ShardPoller, batch: Batch) -> dict[str, Any]:
        event: dict[str, Any] = {"Records": [r.record for r in batch.records]}
        if batch.window is not None:
            # https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html
            event.update({
                "window": {"start": _iso_seconds(batch.window[0]), "end": _iso_seconds(batch.window[1])},
                "state": poller.state,
                "shardId": poller.shard_id,
                "eventSourceARN": self.mapping.event_source_arn,
                "isFinalInvokeForWindow": batch.final,
                "isWindowTerminatedEarly": False,
            })
        # A copy: what the handler does to its event must not change the retried batch.
        return json.loads(json.dumps(event))

    def _complete(self, poller: ShardPoller, batch: Batch, invocation: "Invocation") -> None:
        poller.busy = False
        batch.last_invocation = invocation
        now = self.cloud.clock.now()
        failed_at = self._failed_index(batch, invocation)
        if failed_at != 0 and batch.window is not None and not batch.final:
            poller.state = invocation.result["state"]
        if failed_at is None:
            self._finish(poller, batch)
            return
        if failed_at > 0:
            # Records before the checkpoint are done; the batch retries from it.
            poller.checkpoint = batch.records[failed_at - 1].sequence
            batch.records = batch.records[failed_at:]
            if self.bisect:
                batch.due = now  # "bisected at the returned sequence number": no retry spent
                return
        elif self.bisect and len(batch.records) > 1:
            middle = len(batch.records) // 2
            halves = [Batch(batch.records[:middle], batch.window, due=now), Batch(batch.records[middle:], batch.window, due=now)]
            index = poller.batches.index(batch)
            poller.batches[index:index + 1] = halves
            return
        batch.retries += 1
        limit = self.maximum_retry_attempts
        if limit is not None and batch.retries > limit:
            self._discard(poller, batch, "RetryAttemptsExhausted")
            return
        delay = min(MAX_RETRY_DELAY, FIRST_RETRY_DELAY * 2 ** min(batch.retries - 1, 16))
        # The batch is given up on when its oldest record reaches the maximum age, not at the next try.
        batch.due = min(now + delay, max(now, batch.oldest_arrival + self.maximum_record_age))

    def _failed_index(self, batch: Batch, invocation: "Invocation") -> int | None:
        """None when the batch succeeded, else the index of the first record to retry."""
        if invocation.error is not None:
            return 0
        result = invocation.result
        if batch.window is not None and not batch.final and not (isinstance(result, dict) and "state" in result):
            # "When using tumbling windows, the Lambda function response must contain a state property."
            invocation.error = "Invalid response: with TumblingWindowInSeconds the function must return a state"
            return 0
        if not self.report_batch_item_failures or batch.final:
            return None
        index = checkpoint_index(result, [r.sequence for r in batch.records])
        if index == -1:
            invocation.error = "Invalid batchItemFailures response: the whole batch is retried"
            return 0
        return index

    def _finish(self, poller: ShardPoller, batch: Batch) -> None:
        poller.batches.remove(batch)
        if batch.records:
            poller.checkpoint = max(poller.checkpoint, batch.records[-1].sequence)
        if batch.final:
            poller.window, poller.state = None, {}

    def _discard(self, poller: ShardPoller, batch: Batch, condition: str) -> None:
        """Give up on a batch: its metadata goes to the OnFailure destination, and the shard moves on."""
        if batch in poller.batches:
            poller.batches.remove(batch)
        if batch.final:
            poller.window, poller.state = None, {}
        if not batch.records:
            return
        poller.checkpoint = max(poller.checkpoint, batch.records[-1].sequence)
        record = self.failure_record(poller, batch, condition)
        self.discarded.append(record)
        if self.on_failure:
            self.cloud.send_to_destination(self.on_failure, record, source=self.function)

    def failure_record(self, poller: ShardPoller, batch: Batch, condition: str) -> dict[str, Any]:
        """What the OnFailure destination receives: the invocation's metadata and the batch's position.

        https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
        https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html
        """
        first, last = batch.records[0], batch.records[-1]
        invocation = batch.last_invocation
        response_context: dict[str, Any] = {}
        if invocation is not None:
            response_context = {"statusCode": 200, "executedVersion": "$LATEST"}
            if invocation.error is not None:
                response_context["functionError"] = "Unhandled"
        return {
            "requestContext": {
                "requestId": invocation.request_id if invocation is not None else str(uuid.uuid4()),
                "functionArn": self.function.arn,
                "condition": condition,
                "approximateInvokeCount": batch.attempts,
            },
            "responseContext": response_context,
            "version": "1.0",
            "timestamp": _iso(self.cloud.clock.now()),
            self.shards.batch_info_key: {
                "shardId": poller.shard_id,
                "startSequenceNumber": str(first.sequence),
                "endSequenceNumber": str(last.sequence),
                "approximateArrivalOfFirstRecord": _iso(first.arrival),
                "approximateArrivalOfLastRecord": _iso(last.arrival),
                "batchSize": len(batch.records),
                "streamArn": self.mapping.event_source_arn,
            },
        }


def checkpoint_index(result: Any, sequences: list[int]) -> int | None:
    """Where a ReportBatchItemFailures response puts the checkpoint, as an index into the batch.

    None means success (no response, a null or empty batchItemFailures); -1 means
    the response is invalid, which fails the whole batch (a null or empty
    itemIdentifier, or one that is not a sequence number of the batch). Otherwise
    the lowest reported sequence number is where the batch is retried from.
    https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html
    https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html
    """
    if not isinstance(result, dict) or result.get("batchItemFailures") is None:
        return None
    failures = result["batchItemFailures"]
    if not isinstance(failures, list):
        return -1
    if not failures:
        return None
    reported = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or not identifier.strip().isdigit() or int(identifier) not in sequences:
            return -1
        reported.append(int(identifier))
    return sequences.index(min(reported))


def _iso_seconds(timestamp: float) -> str:
    """Window bounds as Lambda writes them: 2020-12-09T07:04:00Z."""
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(value: Any) -> float:
    """StartingPositionTimestamp as epoch seconds, from a number, a datetime or an ISO string."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value or 0)
