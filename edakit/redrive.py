"""Dead-letter queue redrive: move the messages of a DLQ back to their source queue, after a fix.

On AWS, the console's "Start DLQ redrive" and the API's StartMessageMoveTask do this.
moto (5.2.5) does not implement StartMessageMoveTask, so the kit does it with the plain
SQS calls any client has: receive from the DLQ, send to the source, and delete from the
DLQ only what was sent. A message is never lost: if a send fails, the message stays in
the DLQ (it is visible again once its visibility timeout ends). It works the same with
boto3 against AWS.

https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3

from .errors import EdakitError

#: SQS returns at most 10 messages per ReceiveMessage, and takes 10 per SendMessageBatch.
_BATCH = 10
#: Long enough that a message received by this redrive is not received by it again
#: while it is being sent (on AWS; in virtual time nothing expires meanwhile).
_VISIBILITY_TIMEOUT = 60


class RedriveError(EdakitError):
    """A redrive that cannot be done as asked; the message says why and what to do."""


class NotADeadLetterQueueError(RedriveError):
    """No queue names this one in its RedrivePolicy, so there is no source to send back to."""


class AmbiguousSourceError(RedriveError):
    """Several queues use this DLQ: say which one to send the messages back to."""


class RedriveNotAllowedError(RedriveError):
    """SQS would refuse this redrive: the DLQ and the destination are not the same type."""


@dataclass(frozen=True)
class RedriveResult:
    """What a redrive did: how many messages it moved, and any it could not send (left in the DLQ)."""

    dlq_url: str
    source_url: str
    moved: int
    failed: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"moved {self.moved} message(s) from {self.dlq_url.rsplit('/', 1)[-1]} to {self.source_url.rsplit('/', 1)[-1]}"
        if self.failed:
            text += f"; {len(self.failed)} could not be sent and stay in the DLQ"
        return text


def redrive(dlq_url: str, source_url: str | None = None, *, sqs_client: Any | None = None,
            max_messages: int | None = None) -> RedriveResult:
    """Move the messages of the DLQ at ``dlq_url`` to ``source_url`` (by default, the queue
    whose RedrivePolicy names this DLQ), oldest first, at most ``max_messages`` of them.

    Each message keeps its body and message attributes; on a FIFO queue, its
    MessageGroupId and MessageDeduplicationId too. It arrives in the source as a new
    message, so its receive count starts again at 0, as with StartMessageMoveTask.
    """
    sqs = sqs_client or boto3.client("sqs")
    dlq = _attributes(sqs, dlq_url)
    if source_url is None:
        source_url = _source_of(sqs, dlq_url)
    source = _attributes(sqs, source_url)
    _check_allowed(dlq_url, dlq, source_url, source)
    fifo = dlq.get("FifoQueue") == "true"

    moved, failed = 0, []
    while max_messages is None or moved < max_messages:
        wanted = _BATCH if max_messages is None else min(_BATCH, max_messages - moved)
        messages = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=wanted, WaitTimeSeconds=0,
            VisibilityTimeout=_VISIBILITY_TIMEOUT,
            MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        entries = [_entry(str(n), message, fifo) for n, message in enumerate(messages)]
        sent = sqs.send_message_batch(QueueUrl=source_url, Entries=entries)
        by_id = {str(n): message for n, message in enumerate(messages)}
        done = [by_id[s["Id"]] for s in sent.get("Successful", [])]
        if done:
            # Deleted only once the source has them: a crash in between redelivers, never loses.
            sqs.delete_message_batch(QueueUrl=dlq_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)])
        moved += len(done)
        for failure in sent.get("Failed", []):
            failed.append({"MessageId": by_id[failure["Id"]]["MessageId"], "Code": failure.get("Code", ""),
                           "Message": failure.get("Message", "")})
        if failed:
            break  # stop rather than retry a send that is failing; what is left stays in the DLQ
    return RedriveResult(dlq_url=dlq_url, source_url=source_url, moved=moved, failed=failed)


def _attributes(sqs: Any, url: str) -> dict[str, str]:
    try:
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    except sqs.exceptions.QueueDoesNotExist:
        raise RedriveError(f"no queue {url}: check the URL (cloud.physical_id('OrdersDLQ') gives it)") from None


def _source_of(sqs: Any, dlq_url: str) -> str:
    """The queue whose RedrivePolicy names this DLQ (SQS's ListDeadLetterSourceQueues)."""
    sources = sqs.list_dead_letter_source_queues(QueueUrl=dlq_url).get("queueUrls", [])
    name = dlq_url.rsplit("/", 1)[-1]
    if not sources:
        raise NotADeadLetterQueueError(
            f"{name} is not a dead-letter queue: no queue names it in its RedrivePolicy "
            "(deadLetterTargetArn). Pass source_url to move its messages to a queue of your choice.")
    if len(sources) > 1:
        names = ", ".join(sorted(u.rsplit("/", 1)[-1] for u in sources))
        raise AmbiguousSourceError(
            f"{name} is the dead-letter queue of {len(sources)} queues ({names}): "
            "pass source_url to say which one gets the messages back")
    return sources[0]


def _check_allowed(dlq_url: str, dlq: dict[str, str], source_url: str, source: dict[str, str]) -> None:
    dlq_name, source_name = dlq_url.rsplit("/", 1)[-1], source_url.rsplit("/", 1)[-1]
    if dlq_url == source_url:
        raise RedriveError(f"{dlq_name} is both the DLQ and the destination: nothing would move")
    if (dlq.get("FifoQueue") == "true") != (source.get("FifoQueue") == "true"):
        raise RedriveNotAllowedError(
            f"{dlq_name} and {source_name} are not the same type (FIFO and standard): "
            "SQS redrives only to a queue of the DLQ's type")


def _entry(entry_id: str, message: dict[str, Any], fifo: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message["Body"]}
    attributes = {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    if attributes:
        entry["MessageAttributes"] = attributes
    system = message.get("Attributes") or {}
    if "AWSTraceHeader" in system:
        entry["MessageSystemAttributes"] = {
            "AWSTraceHeader": {"DataType": "String", "StringValue": system["AWSTraceHeader"]}}
    if fifo:
        # The group keeps its order in the source. In a FIFO DLQ, SQS has replaced the
        # deduplication id with the original message's id, so the source does not
        # discard the redriven message as a duplicate of the original.
        entry["MessageGroupId"] = system["MessageGroupId"]
        entry["MessageDeduplicationId"] = system.get("MessageDeduplicationId") or message["MessageId"]
    return entry
