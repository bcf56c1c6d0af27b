"""What chapter 7 needs of the local cloud: a stopped consumer, a retry delayed by the
function itself, a configuration change that fixes a poison message, and an archive replay."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest

from edakit import LocalCloud

from .test_sqs import RETRY_HORIZON, consumer, message_ids, send


class TestStoppedConsumer:
    def test_a_mapping_disabled_while_messages_arrive_leaves_them_in_the_queue_until_it_is_enabled(
        self, cloud_for
    ):
        """With the mapping disabled, Lambda stops polling: messages wait in the queue, are not
        received (no receive count, so no DLQ), and drain once it is enabled again.

        https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html
        """
        cloud = cloud_for(consumer("behaviours.succeed", mapping={"BatchSize": 1}, max_receive_count=1))
        lambda_client = boto3.client("lambda")
        [mapping] = lambda_client.list_event_source_mappings(
            FunctionName=cloud.physical_id("Consumer"))["EventSourceMappings"]
        send(cloud, "Queue", {"n": 1})
        cloud.run_until_idle(max_seconds=RETRY_HORIZON)
        lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)

        send(cloud, "Queue", {"n": 2}, {"n": 3})
        cloud.run_for(15 * 60)

        assert len(cloud.invocations("Consumer")) == 1
        assert cloud.queue_depth("Queue") == {"visible": 2, "in_flight": 0, "delayed": 0}
        assert cloud.queue_depth("DLQ")["visible"] == 0

        lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        assert len(cloud.invocations("Consumer")) == 3
        assert all(i.ok for i in cloud.invocations("Consumer"))
        assert cloud.queue_depth("Queue") == {"visible": 0, "in_flight": 0, "delayed": 0}
        assert cloud.queue_depth("DLQ")["visible"] == 0


class TestBackoffByTheFunction:
    def test_a_failed_message_whose_visibility_the_function_changed_returns_after_that_time(self, cloud_for):
        """A function may call ChangeMessageVisibility on a message it reports as failed: the
        message is visible again that many seconds later, not after the queue's VisibilityTimeout.

        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html
        https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
        """
        cloud = cloud_for(consumer(
            "resilience_consumers.fail_first_receive_and_back_off",
            mapping={"FunctionResponseTypes": ["ReportBatchItemFailures"]},
            function={"Environment": {"Variables": {"QUEUE_URL": {"Ref": "Queue"}}}},
        ))
        [sent] = send(cloud, "Queue", {"n": 1})

        cloud.run_until_idle(max_seconds=RETRY_HORIZON)

        first, second = cloud.invocations("Consumer")
        assert message_ids(first) == message_ids(second) == [sent]
        assert second.time - first.time == pytest.approx(300, abs=0.01)  # not the queue's 30 s
        assert second.ok and second.result == {"batchItemFailures": []}


class TestConfigurationChange:
    def test_new_environment_variables_apply_from_the_next_invocation(self, cloud_for):
        """UpdateFunctionConfiguration with new Environment Variables: the next invocation sees them.

        https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html
        https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html
        """
        cloud = cloud_for("""
        Replier:
          Type: AWS::Serverless::Function
          Properties:
            Handler: resilience_consumers.reply_with_environment
            Environment: {Variables: {REPLY: before}}
        """)
        client = boto3.client("lambda")
        name = cloud.physical_id("Replier")

        def reply() -> str:
            return json.loads(client.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())

        assert reply() == "before"
        client.update_function_configuration(FunctionName=name, Environment={"Variables": {"REPLY": "after"}})
        assert reply() == "after"


ARCHIVED_BUS = """
        Bus:
          Type: AWS::Events::EventBus
          Properties: {Name: replay-bus}
        Archive:
          Type: AWS::Events::Archive
          Properties:
            SourceArn: !GetAtt Bus.Arn
            EventPattern: {source: [{prefix: shop.}]}
        First:
          Type: AWS::SQS::Queue
        Second:
          Type: AWS::SQS::Queue
        ToFirst:
          Type: AWS::Events::Rule
          Properties:
            EventBusName: !GetAtt Bus.Name
            EventPattern: {source: [{prefix: shop.}]}
            Targets: [{Id: First, Arn: !GetAtt First.Arn}]
        ToSecond:
          Type: AWS::Events::Rule
          Properties:
            EventBusName: !GetAtt Bus.Name
            EventPattern: {source: [{prefix: shop.}]}
            Targets: [{Id: Second, Arn: !GetAtt Second.Arn}]
"""


class TestArchiveReplay:
    def test_a_replay_sends_the_events_of_its_time_window_to_the_rules_it_names(self, cloud_for):
        """StartReplay replays only events that occurred between EventStartTime and EventEndTime,
        only to the rules in Destination.FilterArns, each marked with `replay-name`.

        https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_StartReplay.html
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-replay-archived-event.html
        """
        cloud: LocalCloud = cloud_for(ARCHIVED_BUS)
        events = boto3.client("events")
        bus = "replay-bus"

        def put(n: int) -> None:
            events.put_events(Entries=[{"Source": "shop.test", "DetailType": "Numbered",
                                        "Detail": json.dumps({"n": n}), "EventBusName": bus}])

        put(1)
        cloud.clock.advance(600)
        window_start = cloud.clock.now()
        put(2)
        put(3)
        cloud.clock.advance(600)
        window_end = cloud.clock.now()
        cloud.clock.advance(60)
        put(4)
        cloud.run_until_idle()
        bus_arn = events.describe_event_bus(Name=bus)["Arn"]
        rule_arn = events.describe_rule(Name=cloud.physical_id("ToSecond"), EventBusName=bus)["Arn"]

        events.start_replay(
            ReplayName="missed", EventSourceArn=events.describe_archive(
                ArchiveName=cloud.physical_id("Archive"))["ArchiveArn"],
            EventStartTime=datetime.fromtimestamp(window_start, timezone.utc),
            EventEndTime=datetime.fromtimestamp(window_end, timezone.utc),
            Destination={"Arn": bus_arn, "FilterArns": [rule_arn]})
        cloud.run_until_idle()

        first = [json.loads(b) for b in cloud.messages("First")]
        second = [json.loads(b) for b in cloud.messages("Second")]
        assert [e["detail"]["n"] for e in first] == [1, 2, 3, 4]
        assert [e["detail"]["n"] for e in second] == [1, 2, 3, 4, 2, 3]
        assert [e.get("replay-name") for e in second] == [None] * 4 + ["missed", "missed"]
        assert events.describe_replay(ReplayName="missed")["State"] == "COMPLETED"
