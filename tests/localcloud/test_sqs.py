"""The SQS event source mapping: the local cloud polls a queue and invokes a function as Lambda does."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from edakit import LocalCloud, StillBusyError
from edakit.runtime import Invocation

VISIBILITY_TIMEOUT = 30
#: Where a regression could retry forever, fail in seconds instead of replaying SQS's 4-day retention.
RETRY_HORIZON = 3600


def send(cloud: LocalCloud, queue: str, *bodies: Any, **options: Any) -> list[str]:
    """Send each body (JSON-encoded unless a string) to a queue; return the message ids."""
    sqs = boto3.client("sqs")
    ids = []
    for body in bodies:
        text = body if isinstance(body, str) else json.dumps(body)
        ids.append(sqs.send_message(QueueUrl=cloud.physical_id(queue), MessageBody=text, **options)["MessageId"])
    return ids


def bodies(invocation: Invocation) -> list[Any]:
    return [json.loads(record["body"]) for record in invocation.event["Records"]]


def message_ids(invocation: Invocation) -> list[str]:
    return [record["messageId"] for record in invocation.event["Records"]]


def most_overlapping(invocations: list[Invocation]) -> int:
    """The largest number of invocations running at the same virtual instant."""
    return max(
        sum(1 for other in invocations if other.time <= started.time < other.time + other.duration)
        for started in invocations
    )


def throttles(cloud: LocalCloud, function: str = "Consumer") -> int:
    """The function's AWS/Lambda Throttles, summed (0 when the metric has no data)."""
    dimensions = {"FunctionName": cloud.physical_id(function)}
    if ("AWS/Lambda", "Throttles", tuple(dimensions.items())) not in cloud.cloudwatch.store._series:
        return 0
    return int(sum(v for _, v in cloud.metric("AWS/Lambda", "Throttles", dimensions)))


def consumer(handler: str, *, mapping: dict[str, Any] | None = None, function: dict[str, Any] | None = None,
             queue: dict[str, Any] | None = None, max_receive_count: int | None = None) -> str:
    """Resources: a queue, its dead-letter queue and a function subscribed to the queue.

    ``mapping``, ``function`` and ``queue`` add properties to the SAM SQS event,
    the function and the queue; ``max_receive_count`` gives the queue a
    RedrivePolicy to the DLQ.
    """
    def flow(properties: dict[str, Any] | None) -> str:
        return "".join(f", {name}: {json.dumps(value)}" for name, value in (properties or {}).items())

    queue_properties = flow({"VisibilityTimeout": VISIBILITY_TIMEOUT, **(queue or {})}).removeprefix(", ")
    function_lines = "".join(f"\n            {name}: {json.dumps(value)}" for name, value in (function or {}).items())
    redrive = (f", RedrivePolicy: {{deadLetterTargetArn: !GetAtt DLQ.Arn, maxReceiveCount: {max_receive_count}}}"
               if max_receive_count else "")
    return f"""
        DLQ:
          Type: AWS::SQS::Queue
        Queue:
          Type: AWS::SQS::Queue
          Properties: {{{queue_properties}{redrive}}}
        Consumer:
          Type: AWS::Serverless::Function
          Properties:
            Handler: {handler}{function_lines}
            Events:
              Orders:
                Type: SQS
                Properties: {{Queue: !GetAtt Queue.Arn{flow(mapping)}}}
    """


class TestBatching:
    WINDOWED = {"BatchSize": 5, "MaximumBatchingWindowInSeconds": 20}

    def test_batch_size_caps_the_records_per_invocation(self, cloud_for):
        """No invocation gets more records than the mapping's BatchSize.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html
        """
        cloud = cloud_for(consumer("behaviours.succeed", mapping={"BatchSize": 3}))
        send(cloud, "Queue", *[{"n": n} for n in range(7)])

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        sizes = [len(i.event["Records"]) for i in cloud.invocations("Consumer")]
        assert sorted(sizes) == [1, 3, 3]
        assert sorted(b["n"] for i in cloud.invocations("Consumer") for b in bodies(i)) == list(range(7))

    def test_batching_window_holds_a_partial_batch_until_it_closes(self, cloud_for):
        """Fewer messages than BatchSize wait for MaximumBatchingWindowInSeconds, counted from the first.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html
        """
        cloud = cloud_for(consumer("behaviours.succeed", mapping=self.WINDOWED))
        first_sent = cloud.clock.now()
        send(cloud, "Queue", {"n": 1})
        cloud.clock.advance(5)  # Lambda's poller saw the message when it arrived, not now
        cloud.run_for(5)
        assert cloud.invocations("Consumer") == []  # the window is still open
        send(cloud, "Queue", {"n": 2})

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        [invocation] = cloud.invocations("Consumer")
        assert [b["n"] for b in bodies(invocation)] == [1, 2]
        assert invocation.time == pytest.approx(first_sent + 20, abs=0.01)

    def test_a_full_batch_is_invoked_without_waiting_for_the_window(self, cloud_for):
        """As soon as BatchSize messages are there, Lambda invokes; the window is only an upper bound.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
        """
        cloud = cloud_for(consumer("behaviours.succeed", mapping=self.WINDOWED))
        sent = cloud.clock.now()
        send(cloud, "Queue", *[{"n": n} for n in range(5)])

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        [invocation] = cloud.invocations("Consumer")
        assert len(invocation.event["Records"]) == 5
        assert invocation.time == pytest.approx(sent, abs=0.01)


class TestErrors:
    REPORTING = {"FunctionResponseTypes": ["ReportBatchItemFailures"]}

    def test_a_raised_error_returns_the_whole_batch_after_the_visibility_timeout(self, cloud_for):
        """A function error makes every message of the batch visible again once VisibilityTimeout ends.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
        """
        cloud = cloud_for(consumer("sqs_consumers.fail_first_receive"))
        sent = send(cloud, "Queue", {"n": 1}, {"n": 2}, {"n": 3})

        cloud.run_for(VISIBILITY_TIMEOUT - 1)
        [failed] = cloud.invocations("Consumer")
        assert failed.error == "RuntimeError: the first delivery always fails"
        assert cloud.queue_depth("Queue")["in_flight"] == 3  # invisible, not deleted

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        [_, retry] = cloud.invocations("Consumer")
        assert sorted(message_ids(retry)) == sorted(sent)
        assert retry.time - failed.time == pytest.approx(VISIBILITY_TIMEOUT, abs=0.01)
        assert retry.error is None
        assert cloud.queue_depth("Queue") == {"visible": 0, "in_flight": 0, "delayed": 0}

    def test_reported_item_failures_return_only_those_messages(self, cloud_for):
        """With ReportBatchItemFailures, only the reported messages return; the others are deleted.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
        """
        cloud = cloud_for(consumer("sqs_consumers.report_failures_on_first_receive", mapping=self.REPORTING))
        ids = send(cloud, "Queue", {"n": 1}, {"n": 2, "fail": True}, {"n": 3})

        cloud.run_for(1)
        assert cloud.queue_depth("Queue") == {"visible": 0, "in_flight": 1, "delayed": 0}
        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        [first, retry] = cloud.invocations("Consumer")
        assert len(first.event["Records"]) == 3
        assert message_ids(retry) == [ids[1]]
        assert retry.time - first.time == pytest.approx(VISIBILITY_TIMEOUT, abs=0.01)

    @pytest.mark.parametrize("failure", [
        pytest.param({"itemIdentifier": None}, id="null-identifier"),
        pytest.param({"itemIdentifier": ""}, id="empty-identifier"),
        pytest.param({"itemIdentifier": "not-a-message-of-this-batch"}, id="unknown-identifier"),
        pytest.param({"messageId": "x"}, id="bad-key-name"),
    ])
    def test_an_invalid_batch_item_failures_response_fails_the_whole_batch(self, cloud_for, failure):
        """A null, empty, misnamed or unknown itemIdentifier makes Lambda treat the batch as failed.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
        """
        cloud = cloud_for(consumer("sqs_consumers.reply_from_body", mapping=self.REPORTING))
        reply = {"reply": {"batchItemFailures": [failure]}}
        ids = send(cloud, "Queue", reply, reply)

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        [first, retry] = cloud.invocations("Consumer")
        assert "batchItemFailures" in (first.error or "")
        assert sorted(message_ids(first)) == sorted(message_ids(retry)) == sorted(ids)
        assert retry.time - first.time == pytest.approx(VISIBILITY_TIMEOUT, abs=0.01)

    @pytest.mark.parametrize("reply", [
        pytest.param({"batchItemFailures": []}, id="empty-list"),
        pytest.param({"batchItemFailures": None}, id="null-list"),
        pytest.param({}, id="empty-response"),
        pytest.param(None, id="null-response"),
    ])
    def test_an_empty_batch_item_failures_response_means_every_message_succeeded(self, cloud_for, reply):
        """An empty or null batchItemFailures list, or an empty or null response, is a complete success.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
        """
        cloud = cloud_for(consumer("sqs_consumers.reply_from_body", mapping=self.REPORTING))
        send(cloud, "Queue", {"reply": reply}, {"reply": reply})

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        [invocation] = cloud.invocations("Consumer")
        assert invocation.error is None
        assert cloud.queue_depth("Queue") == {"visible": 0, "in_flight": 0, "delayed": 0}

    def test_batch_item_failures_are_ignored_without_report_batch_item_failures(self, cloud_for):
        """Without FunctionResponseTypes, a returned batchItemFailures is just a return value: all is deleted.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
        """
        cloud = cloud_for(consumer("behaviours.report_failures"))
        send(cloud, "Queue", {"n": 1, "fail": True}, {"n": 2})

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        [invocation] = cloud.invocations("Consumer")
        assert len(invocation.result["batchItemFailures"]) == 1
        assert cloud.queue_depth("Queue") == {"visible": 0, "in_flight": 0, "delayed": 0}

    def test_redrive_policy_moves_a_message_to_the_dlq_after_max_receive_count(self, cloud_for):
        """SQS moves a message to the dead-letter queue once it has been received maxReceiveCount times.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
        """
        cloud = cloud_for(consumer("behaviours.fail", max_receive_count=3))
        [message_id] = send(cloud, "Queue", {"order_id": "o-1"})

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        attempts = [i for i in cloud.invocations("Consumer") if message_id in message_ids(i)]
        assert len(attempts) == 3
        assert [b - a for a, b in zip([i.time for i in attempts], [i.time for i in attempts][1:])] == pytest.approx(
            [VISIBILITY_TIMEOUT] * 2, abs=0.01
        )
        assert [json.loads(body) for body in cloud.messages("DLQ")] == [{"order_id": "o-1"}]
        assert cloud.queue_depth("Queue") == {"visible": 0, "in_flight": 0, "delayed": 0}


class TestFifo:
    def test_fifo_queue_keeps_group_order_and_a_failed_message_blocks_its_group(self, cloud_for):
        """Within a message group, order holds; a failing message holds its group back, other groups go on.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-understanding-logic.html
        """
        cloud = cloud_for(f"""
            DLQ:
              Type: AWS::SQS::Queue
              Properties: {{FifoQueue: true, QueueName: orders-dlq.fifo}}
            Queue:
              Type: AWS::SQS::Queue
              Properties:
                FifoQueue: true
                QueueName: orders.fifo
                ContentBasedDeduplication: true
                VisibilityTimeout: {VISIBILITY_TIMEOUT}
                RedrivePolicy: {{deadLetterTargetArn: !GetAtt DLQ.Arn, maxReceiveCount: 2}}
            Consumer:
              Type: AWS::Serverless::Function
              Properties:
                Handler: behaviours.fail_when_told
                Events:
                  Orders: {{Type: SQS, Properties: {{Queue: !GetAtt Queue.Arn, BatchSize: 1}}}}
        """)
        for name, group, fail in [("a1", "A", True), ("a2", "A", False), ("b1", "B", False), ("b2", "B", False)]:
            send(cloud, "Queue", {"name": name, "fail": fail}, MessageGroupId=group)

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        seen = [(i.time, bodies(i)[0]["name"]) for i in sorted(cloud.invocations("Consumer"), key=lambda i: i.time)]
        names = [name for _, name in seen]
        assert names == ["a1", "b1", "b2", "a1", "a2"]
        times = dict((name, t) for t, name in seen)  # the last time each was seen
        assert times["b2"] < seen[0][0] + VISIBILITY_TIMEOUT  # group B did not wait for A's retry
        assert times["a2"] >= times["a1"] + VISIBILITY_TIMEOUT  # a2 waited until a1 left for the DLQ
        assert [json.loads(body)["name"] for body in cloud.messages("DLQ")] == ["a1"]


class TestFiltering:
    FILTER_CRITERIA = {"Filters": [
        {"Pattern": json.dumps({"body": {"kind": ["order"]}})},
        {"Pattern": json.dumps({"body": {"amount": [{"numeric": [">", 100]}]}})},
    ]}

    def test_messages_that_match_no_filter_are_deleted_without_invoking(self, cloud_for):
        """Lambda removes an SQS message that matches none of the mapping's filters; the function never sees it.

        https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html
        https://docs.aws.amazon.com/lambda/latest/dg/with-sqs-filtering.html
        """
        cloud = cloud_for(consumer("behaviours.succeed", mapping={"FilterCriteria": self.FILTER_CRITERIA}))
        send(cloud, "Queue", {"kind": "refund", "amount": 5}, "plain text")

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        assert cloud.invocations("Consumer") == []
        assert cloud.queue_depth("Queue") == {"visible": 0, "in_flight": 0, "delayed": 0}
        assert cloud.messages("DLQ") == []

    def test_filters_match_json_bodies_as_objects_and_any_filter_may_match(self, cloud_for):
        """A JSON body is matched field by field, and the filters of a mapping are ORed.

        https://docs.aws.amazon.com/lambda/latest/dg/with-sqs-filtering.html
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html
        """
        cloud = cloud_for(consumer("behaviours.succeed", mapping={"FilterCriteria": self.FILTER_CRITERIA}))
        send(cloud, "Queue",
             {"kind": "order", "amount": 5},      # first filter
             {"kind": "refund", "amount": 500},   # second filter
             {"kind": "refund", "amount": 5},     # neither
             '{"kind": "order"')                  # not JSON: never matched as an object

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        delivered = [b for i in cloud.invocations("Consumer") for b in bodies(i)]
        assert sorted(delivered, key=json.dumps) == sorted(
            [{"kind": "order", "amount": 5}, {"kind": "refund", "amount": 500}], key=json.dumps
        )
        assert cloud.queue_depth("Queue") == {"visible": 0, "in_flight": 0, "delayed": 0}


class TestScaling:
    def test_maximum_concurrency_caps_the_batches_processed_at_once(self, cloud_for):
        """ScalingConfig MaximumConcurrency limits how many invocations the mapping runs at the same time.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
        """
        cloud = cloud_for(consumer(
            "behaviours.succeed", mapping={"BatchSize": 1, "ScalingConfig": {"MaximumConcurrency": 2}}
        ))
        cloud.function("Consumer").duration = 5.0
        send(cloud, "Queue", *[{"n": n} for n in range(6)])

        elapsed = cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        invocations = cloud.invocations("Consumer")
        assert len(invocations) == 6
        assert most_overlapping(invocations) == 2
        assert elapsed == pytest.approx(15, abs=0.1)

    def test_reserved_concurrency_caps_the_batches_processed_at_once(self, cloud_for):
        """A function's reserved concurrency is also its maximum: the mapping cannot exceed it.
        The pollers receive more than it can run; those batches are throttled and retried.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
        https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
        """
        cloud = cloud_for(consumer(
            "behaviours.succeed", mapping={"BatchSize": 1}, function={"ReservedConcurrentExecutions": 1}
        ))
        cloud.function("Consumer").duration = 5.0
        send(cloud, "Queue", *[{"n": n} for n in range(3)])

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        invocations = cloud.invocations("Consumer")
        assert len(invocations) == 3
        assert most_overlapping(invocations) == 1


    def test_pollers_start_at_five_batches_and_add_up_to_300_a_minute(self, cloud_for):
        """With a backlog, Lambda starts five concurrent batches, then adds up to 300 a minute
        while messages remain; MaximumConcurrency (here 100) caps the ramp.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
        """
        cloud = cloud_for(consumer("behaviours.succeed", mapping={"BatchSize": 1, "ScalingConfig": {"MaximumConcurrency": 100}},
                                   queue={"VisibilityTimeout": 900}, function={"Timeout": 900}))
        cloud.function("Consumer").duration = 600.0  # nothing finishes during the test
        for start in range(0, 150, 10):
            boto3.client("sqs").send_message_batch(QueueUrl=cloud.physical_id("Queue"), Entries=[
                {"Id": str(n), "MessageBody": json.dumps({"n": n})} for n in range(start, start + 10)])
        running = []
        for _ in range(4):
            cloud.run_for(6)
            running.append(len(cloud.invocations("Consumer")))
        cloud.run_for(60)
        assert running == [5 + 30, 5 + 60, 5 + 90, 100], running
        assert len(cloud.invocations("Consumer")) == 100  # MaximumConcurrency, not the 150 messages
        assert throttles(cloud) == 0

    def test_a_reserved_concurrency_below_the_pollers_throttles_and_can_dead_letter_messages(self, cloud_for):
        """Event source mappings do not account for reserved concurrency: the pollers receive batches
        the function cannot run. Those invocations are throttled (Throttles), retried while the
        messages are invisible, and the messages return to the queue when their visibility timeout
        ends: each receive counts, so with maxReceiveCount 1 they go to the DLQ unprocessed.

        https://repost.aws/knowledge-center/lambda-sqs-scaling
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
        """
        cloud = cloud_for(consumer("behaviours.succeed", mapping={"BatchSize": 1}, function={"ReservedConcurrentExecutions": 1},
                                   queue={"VisibilityTimeout": 10}, max_receive_count=1))
        cloud.function("Consumer").duration = 8.0
        send(cloud, "Queue", *[{"n": n} for n in range(4)])

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        dead = boto3.client("sqs").receive_message(QueueUrl=cloud.physical_id("DLQ"), MaxNumberOfMessages=10)
        assert throttles(cloud) >= 3
        assert most_overlapping(cloud.invocations("Consumer")) == 1
        assert len(cloud.invocations("Consumer")) + len(dead.get("Messages", [])) == 4
        assert dead.get("Messages"), "no message was dead-lettered by the throttling"

    def test_maximum_concurrency_at_the_reserved_concurrency_never_throttles(self, cloud_for):
        """MaximumConcurrency no higher than the reserved concurrency keeps the pollers from receiving
        what the function cannot run: no throttles, no receive spent, nothing dead-lettered.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
        """
        cloud = cloud_for(consumer("behaviours.succeed", mapping={"BatchSize": 1, "ScalingConfig": {"MaximumConcurrency": 2}},
                                   function={"ReservedConcurrentExecutions": 2}, queue={"VisibilityTimeout": 10},
                                   max_receive_count=1))
        cloud.function("Consumer").duration = 8.0
        send(cloud, "Queue", *[{"n": n} for n in range(6)])

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        assert len(cloud.invocations("Consumer")) == 6
        assert throttles(cloud) == 0


class TestMappingState:
    def test_a_disabled_mapping_invokes_nothing_until_it_is_enabled(self, cloud_for):
        """With Enabled: false Lambda does not poll; UpdateEventSourceMapping Enabled=True starts delivery.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html
        https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html
        """
        cloud = cloud_for(consumer("behaviours.succeed", mapping={"Enabled": False}))
        send(cloud, "Queue", {"n": 1})

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)
        assert cloud.invocations("Consumer") == []
        assert cloud.queue_depth("Queue")["visible"] == 1

        lambda_client = boto3.client("lambda")
        listed = lambda_client.list_event_source_mappings(FunctionName=cloud.physical_id("Consumer"))
        [mapping] = listed["EventSourceMappings"]
        lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
        send(cloud, "Queue", {"n": 2})
        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        assert sorted(b["n"] for i in cloud.invocations("Consumer") for b in bodies(i)) == [1, 2]
        assert cloud.queue_depth("Queue") == {"visible": 0, "in_flight": 0, "delayed": 0}


class TestVirtualTime:
    @pytest.mark.timing
    def test_hours_of_retries_take_seconds_of_wall_time(self, cloud_for):
        """Five one-hour visibility timeouts pass in virtual time, then the message goes to the DLQ.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
        """
        cloud = cloud_for(consumer("behaviours.fail", queue={"VisibilityTimeout": 3600}, max_receive_count=5))
        wall = []
        for message in range(1, 4):  # the best of three: one run can be stalled by the machine, not the cloud
            send(cloud, "Queue", {"order_id": f"o-{message}"})

            wall_started = time.perf_counter()
            virtual_seconds = cloud.run_until_idle(max_seconds=24 * 3600)
            wall.append(time.perf_counter() - wall_started)

            assert len(cloud.invocations("Consumer")) == 5 * message
            assert virtual_seconds >= 4 * 3600
            assert len(cloud.messages("DLQ")) == message
        assert min(wall) < 0.25, wall  # about 0.03 s; ticking through every virtual second would take ~0.6 s

    def test_a_message_older_than_the_retention_period_is_deleted_even_while_it_fails(self, cloud_for):
        """SQS deletes a message after MessageRetentionPeriod, so a failing message without a DLQ is lost.

        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
        """
        cloud = cloud_for(consumer("behaviours.fail", queue={"MessageRetentionPeriod": 60}))
        send(cloud, "Queue", {"order_id": "o-1"})

        virtual_seconds = cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        assert len(cloud.invocations("Consumer")) == 60 // VISIBILITY_TIMEOUT
        assert virtual_seconds < 60 + VISIBILITY_TIMEOUT
        assert cloud.queue_depth("Queue") == {"visible": 0, "in_flight": 0, "delayed": 0}

    def test_run_until_idle_raises_still_busy_when_a_message_always_fails_without_a_dlq(self, cloud_for):
        """Without a RedrivePolicy a failing message returns until its retention period ends: say so.

        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
        """
        cloud = cloud_for(consumer("behaviours.fail"))
        send(cloud, "Queue", {"order_id": "o-1"})

        with pytest.raises(StillBusyError) as raised:
            cloud.run_until_idle(max_seconds=300)

        message = str(raised.value)
        assert "300 virtual seconds" in message
        assert cloud.physical_id("Queue").rsplit("/", 1)[-1] in message
        assert "DLQ" in message
        assert len(cloud.invocations("Consumer")) >= 300 // VISIBILITY_TIMEOUT  # one try per timeout


class TestQueueAttributes:
    def test_get_queue_attributes_is_what_moto_computes_one_attribute_at_a_time(self, template) -> None:
        """The local cloud works moto's queue attributes out one at a time (moto rebuilds them all,
        counting every message, on each send); GetQueueAttributes still answers the same, for a FIFO
        queue with a DLQ, a key and a policy, and while messages wait.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html
        """
        from moto.sqs.models import Queue

        from edakit import patches

        path = template("""
            Key:
              Type: AWS::KMS::Key
              Properties:
                KeyPolicy: {Version: "2012-10-17", Statement: [{Effect: Allow, Principal: {AWS: "*"}, Action: "kms:*", Resource: "*"}]}
            Dlq:
              Type: AWS::SQS::Queue
              Properties: {FifoQueue: true}
            Work:
              Type: AWS::SQS::Queue
              Properties:
                FifoQueue: true
                ContentBasedDeduplication: true
                KmsMasterKeyId: !Ref Key
                RedrivePolicy: {deadLetterTargetArn: !GetAtt Dlq.Arn, maxReceiveCount: 3}
        """)
        with LocalCloud.from_template(path) as cloud:
            url = cloud.physical_id("Work")
            sqs = boto3.client("sqs")
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": "*",
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})})
            for n in range(3):
                sqs.send_message(QueueUrl=url, MessageBody=f"order {n}", MessageGroupId="g")
            queue = cloud.sqs_backend.get_queue(url.rsplit("/", 1)[-1])
            assert isinstance(Queue.attributes.fget(queue), patches._QueueAttributes)
            moto_own = patches._originals["queue_attributes"].fget(queue)
            answered = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            dlq = cloud.sqs_backend.get_queue(cloud.physical_id("Dlq").rsplit("/", 1)[-1])  # no redrive, no key
            assert dict(patches._QueueAttributes(dlq)) == patches._originals["queue_attributes"].fget(dlq)
        assert dict(patches._QueueAttributes(queue)) == moto_own
        assert answered["ApproximateNumberOfMessages"] == "3"
        assert answered["ContentBasedDeduplication"] == "true" and answered["FifoQueue"] == "true"
        assert json.loads(answered["RedrivePolicy"])["maxReceiveCount"] == 3
        assert {"KmsMasterKeyId", "Policy"} <= set(answered), [k for k in ("KmsMasterKeyId", "Policy") if k not in answered]
