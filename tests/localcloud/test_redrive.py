"""edakit.redrive: moving a DLQ's messages back to their source queue, as SQS's DLQ redrive does.

moto has no StartMessageMoveTask, so the kit redrives with ReceiveMessage, SendMessageBatch
and DeleteMessageBatch. These tests run on plain moto and boto3, with no local cloud: the
same calls work against AWS.
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from edakit.errors import EdakitError
from edakit.redrive import (
    AmbiguousSourceError,
    NotADeadLetterQueueError,
    RedriveNotAllowedError,
    redrive,
)

REDRIVE_DOC = "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html"


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def queue_with_dlq(sqs: Any, name: str = "orders", *, fifo: bool = False, max_receive_count: int = 1,
                   ) -> tuple[str, str]:
    suffix = ".fifo" if fifo else ""
    fifo_attributes = {"FifoQueue": "true"} if fifo else {}
    dlq = sqs.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=fifo_attributes)["QueueUrl"]
    source = sqs.create_queue(QueueName=f"{name}{suffix}", Attributes={
        **fifo_attributes,
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn(sqs, dlq), "maxReceiveCount": max_receive_count}),
    })["QueueUrl"]
    return source, dlq


def dead_letter(sqs: Any, source: str, count: int, **send: Any) -> None:
    """Send ``count`` messages and let each fail once (maxReceiveCount 1): SQS moves them to the DLQ."""
    for n in range(count):
        sqs.send_message(QueueUrl=source, MessageBody=json.dumps({"n": n}), **send)
    received = 0
    while received < count:
        received += len(sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10, VisibilityTimeout=0)
                        .get("Messages", []))
    # The next receive finds them over maxReceiveCount and moves them to the DLQ.
    assert sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10).get("Messages", []) == []


def bodies(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                                       MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"]).get("Messages"):
        messages += batch
    return messages


def depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


class TestRedrive:
    def test_every_message_goes_back_to_the_source_queue_and_the_dlq_is_left_empty(self, sqs: Any) -> None:
        """By default a redrive moves a DLQ's messages to the queue they came from.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html
        """
        # given 25 messages in the DLQ (more than one receive's worth)
        source, dlq = queue_with_dlq(sqs)
        dead_letter(sqs, source, 25)
        assert depth(sqs, dlq) == 25
        # when the DLQ is redriven, naming only the DLQ
        result = redrive(dlq, sqs_client=sqs)
        # then the source was found from its RedrivePolicy, and has every message back
        assert (result.source_url, result.moved, result.failed) == (source, 25, [])
        assert depth(sqs, dlq) == 0
        assert sorted(json.loads(m["Body"])["n"] for m in bodies(sqs, source)) == list(range(25))

    def test_a_message_keeps_its_body_and_message_attributes_and_its_receive_count_starts_again(self, sqs: Any) -> None:
        """A redriven message is a new message in the source: same body and attributes, received 0 times.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html
        """
        source, dlq = queue_with_dlq(sqs)
        dead_letter(sqs, source, 1, MessageAttributes={
            "tenant": {"DataType": "String", "StringValue": "shop-0"},
            "priority": {"DataType": "Number", "StringValue": "3"}})
        redrive(dlq, sqs_client=sqs)
        [message] = bodies(sqs, source)
        assert json.loads(message["Body"]) == {"n": 0}
        assert {k: (v["DataType"], v["StringValue"]) for k, v in message["MessageAttributes"].items()} == {
            "tenant": ("String", "shop-0"), "priority": ("Number", "3")}
        assert message["Attributes"]["ApproximateReceiveCount"] == "1"  # this receive is its first

    def test_a_fifo_dlq_redrives_in_order_keeping_each_message_group(self, sqs: Any) -> None:
        """A FIFO DLQ redrives to a FIFO queue, oldest message first; each message keeps its group.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-message-order.html
        """
        # given a FIFO DLQ holding two orders' messages, oldest first
        source, dlq = queue_with_dlq(sqs, fifo=True)
        for n in range(4):
            sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"n": n}), MessageGroupId=f"order-{n % 2}",
                             MessageDeduplicationId=f"message-{n}")
        result = redrive(dlq, sqs_client=sqs)
        assert result.moved == 4
        moved = bodies(sqs, source)
        groups: dict[str, list[int]] = {}
        for message in moved:
            groups.setdefault(message["Attributes"]["MessageGroupId"], []).append(json.loads(message["Body"])["n"])
        assert groups == {"order-0": [0, 2], "order-1": [1, 3]}
        assert [m["Attributes"]["MessageDeduplicationId"] for m in moved] == [
            f"message-{json.loads(m['Body'])['n']}" for m in moved]

    def test_max_messages_moves_at_most_that_many_oldest_first(self, sqs: Any) -> None:
        """A redrive can be limited; what is left stays in the DLQ.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html
        """
        source, dlq = queue_with_dlq(sqs)
        dead_letter(sqs, source, 12)
        assert redrive(dlq, sqs_client=sqs, max_messages=5).moved == 5
        assert (depth(sqs, source), depth(sqs, dlq)) == (5, 7)

    def test_an_explicit_destination_of_the_same_type_gets_the_messages(self, sqs: Any) -> None:
        """The destination may be any queue of the DLQ's type, not only the source.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html
        """
        source, dlq = queue_with_dlq(sqs)
        other = sqs.create_queue(QueueName="orders-retry")["QueueUrl"]
        dead_letter(sqs, source, 3)
        assert redrive(dlq, other, sqs_client=sqs).moved == 3
        assert (depth(sqs, other), depth(sqs, source), depth(sqs, dlq)) == (3, 0, 0)


class FailingSends:
    """A fake SQS client: the real one (moto's), except that SendMessageBatch refuses every
    entry whose body contains ``refuse``, as SQS reports a failed entry."""

    def __init__(self, real: Any, refuse: str) -> None:
        self.real = real
        self.refuse = refuse

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        kept = [e for e in Entries if self.refuse not in e["MessageBody"]]
        response = self.real.send_message_batch(QueueUrl=QueueUrl, Entries=kept) if kept else {"Successful": []}
        response["Failed"] = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
                              for e in Entries if self.refuse in e["MessageBody"]]
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class TestNothingIsLost:
    def test_a_message_whose_send_fails_stays_in_the_dlq(self, sqs: Any) -> None:
        """A message is deleted from the DLQ only after the destination accepted it.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
        """
        source, dlq = queue_with_dlq(sqs)
        dead_letter(sqs, source, 3)
        result = redrive(dlq, sqs_client=FailingSends(sqs, refuse='"n": 1'))
        assert result.moved == 2
        assert [f["Code"] for f in result.failed] == ["InternalError"]
        assert "could not be sent and stay in the DLQ" in str(result)
        # the refused message is still in the DLQ (in flight until its visibility timeout ends)
        assert depth(sqs, dlq) == 1 and depth(sqs, source) == 2


class TestClearErrors:
    def test_a_queue_no_queue_uses_as_its_dlq_is_refused(self, sqs: Any) -> None:
        """Redrive moves messages from a DLQ, so the kit finds the source from a RedrivePolicy.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListDeadLetterSourceQueues.html
        """
        plain = sqs.create_queue(QueueName="plain")["QueueUrl"]
        with pytest.raises(NotADeadLetterQueueError, match="plain is not a dead-letter queue"):
            redrive(plain, sqs_client=sqs)

    def test_a_dlq_shared_by_two_queues_needs_a_source_url(self, sqs: Any) -> None:
        """https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html"""
        source, dlq = queue_with_dlq(sqs)
        sqs.create_queue(QueueName="returns", Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn(sqs, dlq), "maxReceiveCount": 3})})
        with pytest.raises(AmbiguousSourceError, match="orders, returns"):
            redrive(dlq, sqs_client=sqs)
        assert redrive(dlq, source, sqs_client=sqs).moved == 0

    def test_a_fifo_dlq_cannot_redrive_to_a_standard_queue(self, sqs: Any) -> None:
        """If the DLQ is a FIFO queue, the redrive destination must be a FIFO queue as well.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html
        """
        _, dlq = queue_with_dlq(sqs, fifo=True)
        standard = sqs.create_queue(QueueName="standard")["QueueUrl"]
        with pytest.raises(RedriveNotAllowedError, match="not the same type"):
            redrive(dlq, standard, sqs_client=sqs)

    def test_a_missing_queue_is_named_and_every_error_is_an_edakit_error(self, sqs: Any) -> None:
        """https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html"""
        with pytest.raises(EdakitError, match="no queue .*nowhere"):
            redrive("https://sqs.us-east-1.amazonaws.com/123456789012/nowhere", sqs_client=sqs)


class TestWhyTheKitRedrives:
    def test_moto_has_no_start_message_move_task(self, sqs: Any) -> None:
        """The reason edakit.redrive exists (listed on docs/reference/fidelity.md). If moto gains
        StartMessageMoveTask, this test fails: then compare the two, and update the page.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html
        """
        source, dlq = queue_with_dlq(sqs)
        with pytest.raises(Exception) as raised:
            sqs.start_message_move_task(SourceArn=arn(sqs, dlq))
        assert "not" in str(raised.value).lower() and "implement" in str(raised.value).lower()
