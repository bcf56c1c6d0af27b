"""The SQS event source mapping: Lambda polls a queue and invokes a function with batches.

https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from .filters import matches_filter_criteria

if TYPE_CHECKING:
    from moto.awslambda.models import EventSourceMapping
    from moto.sqs.models import Message, Queue

    from ..cloud import LocalCloud
    from ..runtime import Function, Invocation

#: https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
DEFAULT_MAXIMUM_CONCURRENCY = 1000
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


class SqsEventSource:
    """Polls one queue for one event source mapping, with Lambda's documented semantics."""

    kind = "sqs"

    def __init__(self, cloud: "LocalCloud", mapping: "EventSourceMapping") -> None:
        self.cloud = cloud
        self.mapping = mapping
        self.function: Function = cloud.function_by_arn(mapping.function_arn)
        self.queue_name = mapping.event_source_arn.rsplit(":", 1)[-1]
        self.in_flight = 0
        self.filtered_out = 0

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
        retention_ms = int(queue.message_retention_period) * 1000
        expired = [m for m in queue._messages if m.sent_timestamp and m.sent_timestamp + retention_ms <= now_ms]
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

    def _slots(self) -> int:
        return min(self.maximum_concurrency - self.in_flight, self.cloud.free_concurrency(self.function))

    # -- EventSource ------------------------------------------------------------

    def next_due(self, now: float) -> float | None:
        if not self.mapping.enabled or self._slots() <= 0:
            return None
        count, arrived, soonest = self._deliverable(now * 1000)
        if count == 0:
            return soonest
        if self.batching_window == 0 or count >= self.mapping.batch_size:
            return now
        assert arrived is not None
        return max(now, self._window_closes(arrived))

    def run(self, now: float) -> bool:
        started = False
        while self.mapping.enabled and self._slots() > 0:
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
            self.in_flight += 1
            self.cloud.start_invocation(
                self.function, {"Records": records}, trigger="sqs",
                on_done=lambda inv, recs=records: self._complete(inv, recs),
            )
            started = True
        return started

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
