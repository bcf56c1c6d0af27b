"""The SQS event source mapping: Lambda polls a queue and invokes a function with batches.

https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .filters import matches_filter_criteria

if TYPE_CHECKING:
    from moto.awslambda.models import EventSourceMapping
    from moto.sqs.models import Message, Queue

    from ..cloud import LocalCloud
    from ..runtime import Function, Invocation

#: How Lambda scales a standard queue's pollers: five concurrent batches at first, up to 300
#: more a minute while messages remain, and at most 1,000 batches at once per mapping.
#: https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
INITIAL_POLLERS = 5
POLLERS_ADDED_PER_MINUTE = 300
DEFAULT_MAXIMUM_CONCURRENCY = 1000
#: A throttled batch is invoked again after 1, 2, 4 ... seconds while its messages are still
#: invisible. AWS documents the retry (the queue's visibility timeout should be six times the
#: function's timeout "to allow Lambda to retry if your function is throttled"), not its schedule.
#: https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
FIRST_THROTTLE_RETRY = 1.0
#: Receipt handles of earlier receives kept per message (see _forget_old_receipt_handles).
_OLD_RECEIPT_HANDLES_KEPT = 10


def sqs_record(message: "Message", queue: "Queue", region: str) -> dict[str, Any]:
    """One record of the event Lambda sends for an SQS batch.

    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#example-standard-queue-message-event
    """
    attributes = {
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "SentTimestamp": str(message.sent_timestamp),
        "SenderId": message.sender_id,
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    if message.group_id is not None:
        attributes["MessageGroupId"] = message.group_id
    if message.sequence_number is not None:
        attributes["SequenceNumber"] = message.sequence_number
    if message.deduplication_id is not None:
        attributes["MessageDeduplicationId"] = message.deduplication_id
    return {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {name: _lambda_attribute(value) for name, value in message.message_attributes.items()},
        "md5OfBody": message.body_md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue.queue_arn,
        "awsRegion": region,
    }


def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    data_type = value.get("data_type") or value.get("DataType") or "String"
    attribute: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": data_type}
    string_value = value.get("string_value", value.get("StringValue"))
    binary_value = value.get("binary_value", value.get("BinaryValue"))
    if string_value is not None:
        attribute["stringValue"] = str(string_value)
    if binary_value is not None:
        # moto keeps the raw bytes; the event is JSON, so Lambda sends them base64-encoded.
        attribute["binaryValue"] = (
            base64.b64encode(binary_value).decode() if isinstance(binary_value, (bytes, bytearray)) else binary_value
        )
    return attribute


def failed_message_ids(result: Any, batch_ids: list[str]) -> list[str] | None:
    """The messages a ReportBatchItemFailures response returns to the queue.

    Returns None when the response is invalid, which Lambda treats as a failure of
    the whole batch: an itemIdentifier that is null, empty, not a batch message,
    or a malformed response.
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
    """
    if not isinstance(result, dict) or result.get("batchItemFailures") is None:
        return []
    failures = result["batchItemFailures"]
    if not isinstance(failures, list):
        return None
    failed: list[str] = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in batch_ids:
            return None
        failed.append(identifier)
    return failed


@dataclass
class _Throttled:
    """A batch a poller received but could not invoke: the function had no free concurrency."""

    records: list[dict[str, Any]]
    retry_at: float
    visible_again_at: float   # the batch's visibility timeout ends: its messages go back to the queue
    attempts: int = 1


class SqsEventSource:
    """Polls one queue for one event source mapping, with Lambda's documented semantics.

    Pollers scale as Lambda's do (5 concurrent batches, then up to 300 more a minute while
    messages remain, capped by MaximumConcurrency). Like Lambda's, they do not look at the
    function's reserved concurrency: a batch received when the function has no free
    concurrency is throttled, retried while its messages are invisible, and returned to
    the queue (its receive count spent) when their visibility timeout ends.
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
    """

    kind = "sqs"

    def __init__(self, cloud: "LocalCloud", mapping: "EventSourceMapping") -> None:
        self.cloud = cloud
        self.mapping = mapping
        self.function: Function = cloud.function_by_arn(mapping.function_arn)
        self.queue_name = mapping.event_source_arn.rsplit(":", 1)[-1]
        self.in_flight = 0
        self.filtered_out = 0
        self.throttled: list[_Throttled] = []
        #: Virtual time since which messages have kept the pollers busy (None: scaled back).
        self.active_since: float | None = None

    # -- what moto holds ---------------------------------------------------------

    @property
    def queue(self) -> "Queue":
        return self.cloud.sqs_backend.get_queue(self.queue_name)

    @property
    def report_batch_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in (self.mapping.function_response_types or [])

    @property
    def maximum_concurrency(self) -> int:
        scaling = self.mapping.scaling_config or {}
        return int(scaling.get("MaximumConcurrency") or DEFAULT_MAXIMUM_CONCURRENCY)

    @property
    def batching_window(self) -> float:
        return float(self.mapping.max_batch_window or 0)

    def _deliverable(self, now_ms: float) -> tuple[int, float | None, float | None]:
        """What a receive would see now.

        Returns how many messages it would return, when the earliest of them
        became available (sent, delay ended, or visible again), and when the
        next message not yet available will be, all in epoch seconds.
        """
        queue = self.queue
        self._delete_expired(queue, now_ms)
        blocked_groups: set[str] = set()
        if queue.fifo_queue:
            # A FIFO group with a message in flight delivers nothing more until that
            # message is deleted or visible again.
            blocked_groups = {m.group_id for m in queue._pending_messages if m.visible_at >= now_ms and m.group_id}
        count, arrived, soonest = 0, None, None
        for message in queue._messages:
            ready_at = max(message.visible_at, message.delayed_until)
            if ready_at >= now_ms:
                soonest = ready_at if soonest is None else min(soonest, ready_at)
            elif message.group_id not in blocked_groups:
                count += 1
                available_at = max(ready_at, float(message.sent_timestamp or 0))
                arrived = available_at if arrived is None else min(arrived, available_at)
        return (
            count,
            None if arrived is None else arrived / 1000.0,
            None if soonest is None else (soonest + 1) / 1000.0,
        )

    @staticmethod
    def _delete_expired(queue: "Queue", now_ms: float) -> None:
        """SQS deletes a message once it has been in the queue for MessageRetentionPeriod.

        moto only stops returning such a message (and keeps receiving it), so a
        message that always fails without a DLQ would never leave the queue.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html
        """
        sent_before = now_ms - int(queue.message_retention_period) * 1000
        expired = [m for m in queue._messages if 0 < (m.sent_timestamp or 0) <= sent_before]
        for message in expired:
            queue._messages.remove(message)
            queue._pending_messages.discard(message)

    def _window_closes(self, arrived: float) -> float:
        """The batching window opens when the first message of the batch becomes available.

        Lambda's poller is always listening, so the window is counted from that
        message, not from whenever this process next looks at the queue.
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html
        """
        return arrived + self.batching_window

    def pollers(self, now: float) -> int:
        """Concurrent batches the mapping may process now: Lambda's ramp, capped by MaximumConcurrency."""
        ramp = INITIAL_POLLERS
        if self.active_since is not None:
            ramp += int(POLLERS_ADDED_PER_MINUTE * (now - self.active_since) / 60)
        return min(ramp, self.maximum_concurrency)

    def _next_poller_added(self, now: float) -> float | None:
        """When the ramp adds the next poller, if it still ramps and messages wait for it."""
        if self.active_since is None or self.pollers(now) >= self.maximum_concurrency or not self.queue._messages:
            return None
        added = self.pollers(now) - INITIAL_POLLERS + 1
        return self.active_since + added * 60 / POLLERS_ADDED_PER_MINUTE

    def _slots(self, now: float) -> int:
        return self.pollers(now) - self.in_flight - len(self.throttled)

    def _track_activity(self, now: float) -> None:
        """The ramp starts when messages arrive, and scales back once the queue is empty and idle."""
        if self.queue._messages or self.in_flight or self.throttled:
            if self.active_since is None:
                self.active_since = now
        else:
            self.active_since = None

    # -- EventSource ------------------------------------------------------------

    def next_due(self, now: float) -> float | None:
        if not self.mapping.enabled:
            return None
        retry = min((t.retry_at for t in self.throttled), default=None)
        if retry is not None and retry <= now:
            return now
        if self._slots(now) <= 0:
            added = self._next_poller_added(now)
            return retry if added is None else min(added, retry if retry is not None else added)
        count, arrived, soonest = self._deliverable(now * 1000)
        due = self._due(now, count, arrived, soonest)
        return due if retry is None or due is None else min(due, retry)

    def _due(self, now: float, count: int, arrived: float | None, soonest: float | None) -> float | None:
        if count == 0:
            return soonest
        if self.batching_window == 0 or count >= self.mapping.batch_size:
            return now
        assert arrived is not None
        return max(now, self._window_closes(arrived))

    def run(self, now: float) -> bool:
        self._track_activity(now)
        started = self._retry_throttled(now)
        while self.mapping.enabled and self._slots(now) > 0:
            count, arrived, _ = self._deliverable(now * 1000)
            if count == 0:
                break
            if count < self.mapping.batch_size and arrived is not None and now < self._window_closes(arrived):
                break  # a partial batch waits for more messages until its window closes
            messages = self.cloud.sqs_backend.receive_message(
                self.queue_name,
                self.mapping.batch_size,
                wait_seconds_timeout=0,
                visibility_timeout=self.queue.visibility_timeout,
                message_attribute_names=["All"],
            )
            if not messages:
                break
            self._forget_old_receipt_handles()
            records = [sqs_record(m, self.queue, self.cloud.region) for m in messages]
            records = self._drop_filtered(records)
            if not records:
                started = True
                continue
            visible_again_at = min(m.visible_at for m in messages) / 1000.0
            self._invoke_or_throttle(_Throttled(records, now, visible_again_at, attempts=0), now)
            started = True
        return started

    def _invoke_or_throttle(self, batch: _Throttled, now: float) -> None:
        if self.cloud.free_concurrency(self.function) > 0:
            self.in_flight += 1
            self.cloud.start_invocation(
                self.function, {"Records": batch.records}, trigger="sqs",
                on_done=lambda inv, recs=batch.records: self._complete(inv, recs),
            )
            return
        batch.attempts += 1
        self.cloud.cloudwatch.throttled(self.function, (self.mapping.uuid, batch.records[0]["receiptHandle"], batch.attempts))
        batch.retry_at = now + FIRST_THROTTLE_RETRY * 2 ** (batch.attempts - 1)
        if batch.retry_at < batch.visible_again_at:
            self.throttled.append(batch)
        # else: the poller lets go; the messages are visible again when their timeout ends.

    def _retry_throttled(self, now: float) -> bool:
        due = [t for t in self.throttled if t.retry_at <= now]
        if not due:
            return False
        self.throttled = [t for t in self.throttled if t.retry_at > now]
        for batch in sorted(due, key=lambda t: t.retry_at):
            self._invoke_or_throttle(batch, now)
        return True

    def _forget_old_receipt_handles(self) -> None:
        """moto keeps every receipt handle a message ever had and deep-copies them on each receive.

        A message retried for days (thousands of receives) would make each receive
        slower than the last. On AWS only the latest handle deletes a message; a
        few earlier ones are kept for moto's sake.
        """
        for message in self.queue._messages:
            if len(message._old_receipt_handles) > _OLD_RECEIPT_HANDLES_KEPT:
                del message._old_receipt_handles[:-_OLD_RECEIPT_HANDLES_KEPT]

    def _drop_filtered(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Lambda deletes SQS messages that match no filter of the mapping.

        https://docs.aws.amazon.com/lambda/latest/dg/with-sqs-filtering.html
        """
        if not self.mapping.filter_criteria:
            return records
        kept = []
        for record in records:
            if matches_filter_criteria(self.mapping.filter_criteria, _filterable(record)):
                kept.append(record)
            else:
                self.filtered_out += 1
                self.cloud.sqs_backend.delete_message(self.queue_name, record["receiptHandle"])
        return kept

    def _complete(self, invocation: "Invocation", records: list[dict[str, Any]]) -> None:
        self.in_flight -= 1
        if invocation.error is not None:
            # The whole batch returns to the queue once its visibility timeout ends.
            return
        ids = [r["messageId"] for r in records]
        failed: list[str] | None = []
        if self.report_batch_item_failures:
            failed = failed_message_ids(invocation.result, ids)
        if failed is None:
            invocation.error = "Invalid batchItemFailures response: the whole batch is returned to the queue"
            return
        for record in records:
            if record["messageId"] not in failed:
                self.cloud.sqs_backend.delete_message(self.queue_name, record["receiptHandle"])

    def describe_pending(self) -> str:
        queue = self.queue
        return f"queue {queue.name}: {len(queue._messages)} message(s) for {self.function.logical_id}"


def _filterable(record: dict[str, Any]) -> dict[str, Any]:
    """The record as filters see it: a JSON body is matched as an object."""
    view = dict(record)
    try:
        view["body"] = json.loads(record["body"])
    except (TypeError, ValueError):
        pass
    return view
