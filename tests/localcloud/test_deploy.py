"""Deployment: the stage's template deployed into moto, with one named shim per gap in moto's CloudFormation.

Each test checks what a shim makes true, through boto3, as it would be on AWS.
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-ref.html
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import boto3
import pytest

from edakit import EdakitError, LocalCloud

from .conftest import FUNCTIONS, HEADER


@pytest.fixture
def cloud_with_outputs(template: Callable[[str], Path]):
    """Open a cloud on Resources text plus an Outputs section (given unindented)."""
    opened: list[LocalCloud] = []

    def open_cloud(resources: str, outputs: str) -> LocalCloud:
        path = template(resources)
        path.write_text(path.read_text() + "Outputs:\n" + "".join(f"  {line}\n" for line in outputs.strip().splitlines()))
        cloud = LocalCloud.from_template(path)
        cloud.__enter__()
        opened.append(cloud)
        return cloud

    yield open_cloud
    for cloud in opened:
        cloud.__exit__(None, None, None)


class TestEventBusShims:
    def test_ref_to_an_event_bus_gives_its_name_in_rules_environment_and_outputs(self, cloud_with_outputs):
        """shim_event_bus_ref: `!Ref Bus` (moto's CloudFormation fails on it) resolves to the bus name.

        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-events-eventbus.html#aws-resource-events-eventbus-return-values
        """
        cloud = cloud_with_outputs("""
            Bus:
              Type: AWS::Events::EventBus
              Properties: {Name: shop}
            Orders:
              Type: AWS::SQS::Queue
            Rule:
              Type: AWS::Events::Rule
              Properties:
                EventBusName: !Ref Bus
                EventPattern: {source: [shop.orders]}
                Targets: [{Arn: !GetAtt Orders.Arn, Id: orders}]
            Publisher:
              Type: AWS::Serverless::Function
              Properties:
                Handler: behaviours.succeed
                Environment:
                  Variables:
                    EVENT_BUS_NAME: !Ref Bus
                    EVENT_BUS_LABEL: !Sub "bus ${Bus}"
        """, outputs="""
BusName:
  Value: !Ref Bus
""")

        variables = boto3.client("lambda").get_function_configuration(
            FunctionName=cloud.physical_id("Publisher"))["Environment"]["Variables"]
        assert variables == {"EVENT_BUS_NAME": "shop", "EVENT_BUS_LABEL": "bus shop"}
        assert cloud.outputs["BusName"] == "shop"
        boto3.client("events").put_events(Entries=[{
            "Source": "shop.orders", "DetailType": "OrderPlaced", "Detail": "{}", "EventBusName": "shop"}])
        assert len(cloud.messages("Orders")) == 1  # the rule is on the bus named shop

    def test_physical_id_of_an_event_bus_is_its_name(self, cloud_for):
        """shim_empty_physical_ids: moto lists a bus with an empty physical id; Ref gives its name.

        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-events-eventbus.html#aws-resource-events-eventbus-return-values
        """
        cloud = cloud_for("""
            Bus:
              Type: AWS::Events::EventBus
              Properties: {Name: shop}
        """)

        assert cloud.physical_id("Bus") == "shop"


class TestDeferredResources:
    def test_sns_subscription_is_created_with_its_attributes(self, cloud_for):
        """create_sns_subscription: AWS::SNS::Subscription, skipped by moto, exists with its FilterPolicy.

        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sns-subscription.html
        """
        cloud = cloud_for("""
            Topic:
              Type: AWS::SNS::Topic
            Orders:
              Type: AWS::SQS::Queue
            OrdersSubscription:
              Type: AWS::SNS::Subscription
              Properties:
                TopicArn: !Ref Topic
                Protocol: sqs
                Endpoint: !GetAtt Orders.Arn
                RawMessageDelivery: true
                FilterPolicy: {kind: [order]}
        """)
        sns = boto3.client("sns")

        [subscription] = sns.list_subscriptions_by_topic(TopicArn=cloud.physical_id("Topic"))["Subscriptions"]
        attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]

        assert subscription["Protocol"] == "sqs"
        assert subscription["Endpoint"].endswith(":" + cloud.physical_id("Orders").rsplit("/", 1)[-1])
        assert json.loads(attributes["FilterPolicy"]) == {"kind": ["order"]}
        assert attributes["RawMessageDelivery"] == "true"
        assert cloud.physical_id("OrdersSubscription") == subscription["SubscriptionArn"]

    def test_queue_policy_is_set_on_its_queues(self, cloud_for):
        """create_queue_policy: AWS::SQS::QueuePolicy, skipped by moto, becomes each queue's Policy.

        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sqs-queuepolicy.html
        """
        cloud = cloud_for("""
            Orders:
              Type: AWS::SQS::Queue
            OrdersPolicy:
              Type: AWS::SQS::QueuePolicy
              Properties:
                Queues: [!Ref Orders]
                PolicyDocument:
                  Version: "2012-10-17"
                  Statement:
                    - Effect: Allow
                      Principal: {Service: events.amazonaws.com}
                      Action: sqs:SendMessage
                      Resource: !GetAtt Orders.Arn
        """)

        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=cloud.physical_id("Orders"), AttributeNames=["Policy", "QueueArn"])["Attributes"]

        [statement] = json.loads(attributes["Policy"])["Statement"]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Resource"] == attributes["QueueArn"]

    def test_event_invoke_config_is_put_on_the_function(self, cloud_for):
        """create_event_invoke_config: SAM's EventInvokeConfig, skipped by moto, is the function's config.

        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-lambda-eventinvokeconfig.html
        """
        cloud = cloud_for("""
            Failures:
              Type: AWS::SQS::Queue
            Fn:
              Type: AWS::Serverless::Function
              Properties:
                Handler: behaviours.succeed
                EventInvokeConfig:
                  MaximumRetryAttempts: 1
                  MaximumEventAgeInSeconds: 600
                  DestinationConfig:
                    OnFailure: {Type: SQS, Destination: !GetAtt Failures.Arn}
        """)

        config = boto3.client("lambda").get_function_event_invoke_config(FunctionName=cloud.physical_id("Fn"))

        assert config["MaximumRetryAttempts"] == 1
        assert config["MaximumEventAgeInSeconds"] == 600
        assert config["DestinationConfig"]["OnFailure"]["Destination"].endswith(":" + cloud.physical_id("Failures").rsplit("/", 1)[-1])

    def test_alarm_is_stored_with_its_metric(self, cloud_for):
        """create_alarm: AWS::CloudWatch::Alarm, skipped by moto, is listed by DescribeAlarms.

        An alarm without AlarmName gets a name from the stack and its logical id.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-cloudwatch-alarm.html
        """
        cloud = cloud_for("""
            Orders:
              Type: AWS::SQS::Queue
            BacklogAlarm:
              Type: AWS::CloudWatch::Alarm
              Properties:
                Namespace: AWS/SQS
                MetricName: ApproximateNumberOfMessagesVisible
                Dimensions: [{Name: QueueName, Value: !GetAtt Orders.QueueName}]
                Statistic: Maximum
                Period: 60
                EvaluationPeriods: 1
                Threshold: 100
                ComparisonOperator: GreaterThanThreshold
            AgeAlarm:
              Type: AWS::CloudWatch::Alarm
              Properties:
                AlarmName: orders-too-old
                Namespace: AWS/SQS
                MetricName: ApproximateAgeOfOldestMessage
                Statistic: Maximum
                Period: 60
                EvaluationPeriods: 1
                Threshold: 300
                ComparisonOperator: GreaterThanThreshold
        """)

        alarms = {a["AlarmName"]: a for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]}

        assert set(alarms) == {cloud.physical_id("BacklogAlarm"), "orders-too-old"}
        assert cloud.physical_id("BacklogAlarm").startswith("shop-BacklogAlarm")
        backlog = alarms[cloud.physical_id("BacklogAlarm")]
        assert backlog["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert backlog["Threshold"] == 100.0
        assert backlog["Dimensions"] == [{"Name": "QueueName", "Value": cloud.physical_id("Orders").rsplit("/", 1)[-1]}]

    def test_function_code_location_exists_in_s3(self, cloud_for):
        """The code bucket: a function's Code.S3Bucket/S3Key must exist when CloudFormation creates it.

        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-lambda-function-code.html
        """
        cloud = cloud_for("""
            Fn:
              Type: AWS::Serverless::Function
              Properties:
                Handler: behaviours.succeed
        """)

        boto3.client("s3").head_object(Bucket="edakit-local-code", Key="function.zip")
        function = boto3.client("lambda").get_function(FunctionName=cloud.physical_id("Fn"))
        assert function["Configuration"]["Handler"] == "behaviours.succeed"


class TestPhysicalIds:
    def test_physical_id_is_what_ref_returns(self, cloud_with_outputs):
        """physical_id(logical id) equals Ref: a queue's URL, a topic's ARN, a stream's and a function's name.

        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-ref.html
        """
        cloud = cloud_with_outputs("""
            Orders:
              Type: AWS::SQS::Queue
            Topic:
              Type: AWS::SNS::Topic
            Clicks:
              Type: AWS::Kinesis::Stream
              Properties: {ShardCount: 1}
            Fn:
              Type: AWS::Serverless::Function
              Properties:
                Handler: behaviours.succeed
        """, outputs="""
Orders: {Value: !Ref Orders}
Topic: {Value: !Ref Topic}
Clicks: {Value: !Ref Clicks}
Fn: {Value: !Ref Fn}
""")

        for logical_id in ("Orders", "Topic", "Clicks", "Fn"):
            assert cloud.physical_id(logical_id) == cloud.outputs[logical_id]
        assert cloud.physical_id("Orders") == boto3.client("sqs").list_queues()["QueueUrls"][0]
        assert cloud.physical_id("Topic") == boto3.client("sns").list_topics()["Topics"][0]["TopicArn"]
        assert cloud.physical_id("Clicks") == boto3.client("kinesis").list_streams()["StreamNames"][0]
        assert cloud.physical_id("Fn") == boto3.client("lambda").list_functions()["Functions"][0]["FunctionName"]

    def test_unknown_logical_id_is_an_error_listing_the_resources(self, cloud_for):
        """A typo in a logical id: the error lists the stack's resources to choose from."""
        cloud = cloud_for("""
            Orders:
              Type: AWS::SQS::Queue
            Topic:
              Type: AWS::SNS::Topic
        """)

        with pytest.raises(EdakitError) as raised:
            cloud.physical_id("Order")

        assert type(raised.value) is EdakitError
        assert "'Order'" in str(raised.value)
        assert "Orders, Topic" in str(raised.value)


class TestEventSourceMappings:
    def test_mappings_are_listed_but_moto_does_not_poll_them(self, cloud_for):
        """The mapping exists as on AWS, but moto's own poller (which deletes messages unprocessed
        without Docker) is detached: the message waits until the local cloud's poller delivers it.

        https://docs.aws.amazon.com/lambda/latest/api/API_ListEventSourceMappings.html
        """
        cloud = cloud_for("""
            Orders:
              Type: AWS::SQS::Queue
            Consumer:
              Type: AWS::Serverless::Function
              Properties:
                Handler: behaviours.succeed
                Events:
                  Orders: {Type: SQS, Properties: {Queue: !GetAtt Orders.Arn, BatchSize: 5}}
        """)

        [mapping] = boto3.client("lambda").list_event_source_mappings(
            FunctionName=cloud.physical_id("Consumer"))["EventSourceMappings"]
        assert mapping["EventSourceArn"].endswith(":" + cloud.physical_id("Orders").rsplit("/", 1)[-1])
        assert mapping["BatchSize"] == 5

        boto3.client("sqs").send_message(QueueUrl=cloud.physical_id("Orders"), MessageBody="o-1")
        assert cloud.queue_depth("Orders")["visible"] == 1
        cloud.run_until_idle()
        [invocation] = cloud.invocations("Consumer")
        assert invocation.event["Records"][0]["body"] == "o-1"

    def test_a_mapping_created_through_the_api_is_polled_by_the_local_cloud_only(self, cloud_for):
        """CreateEventSourceMapping at run time: the mapping is listed, and a message sent right
        after it is neither deleted by moto's poller nor lost; the local cloud delivers it.

        https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html
        """
        cloud = cloud_for("""
            Orders:
              Type: AWS::SQS::Queue
            Consumer:
              Type: AWS::Serverless::Function
              Properties:
                Handler: behaviours.succeed
        """)
        queue_url = cloud.physical_id("Orders")
        queue_arn = boto3.client("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        boto3.client("lambda").create_event_source_mapping(
            FunctionName=cloud.physical_id("Consumer"), EventSourceArn=queue_arn, BatchSize=1)

        boto3.client("sqs").send_message(QueueUrl=queue_url, MessageBody="o-2")
        assert cloud.queue_depth("Orders")["visible"] == 1, "moto's own poller must not take the message"
        cloud.run_until_idle()
        [invocation] = cloud.invocations("Consumer")
        assert invocation.event["Records"][0]["body"] == "o-2"


class TestArchives:
    def test_an_archive_with_an_event_pattern_deploys_and_archives_matching_events(self, cloud_for):
        """shim_archive_event_pattern and shim_empty_physical_ids: an AWS::Events::Archive with an
        EventPattern object deploys, Ref gives its name, and it keeps only matching events.

        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-events-archive.html
        """
        cloud = cloud_for("""
            Bus:
              Type: AWS::Events::EventBus
              Properties: {Name: shop}
            Archive:
              Type: AWS::Events::Archive
              Properties:
                SourceArn: !GetAtt Bus.Arn
                EventPattern: {source: [{prefix: shop.}]}
        """)
        events = boto3.client("events")
        events.put_events(Entries=[
            {"Source": source, "DetailType": "T", "Detail": "{}", "EventBusName": "shop"}
            for source in ("shop.storefront", "shop.orders", "elsewhere")
        ])
        archive = events.describe_archive(ArchiveName=cloud.physical_id("Archive"))
        assert json.loads(archive["EventPattern"]) == {"source": [{"prefix": "shop."}]}
        assert archive["EventCount"] == 2

    def test_an_output_with_the_ref_of_an_archive_is_its_name(self, tmp_path):
        """shim_ref_outputs: Ref of an archive (or a bus) in Outputs gives its name, as on AWS.

        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-events-archive.html#aws-resource-events-archive-return-values
        """
        path = tmp_path / "template.yaml"
        path.write_text(HEADER + """\
  Bus:
    Type: AWS::Events::EventBus
    Properties: {Name: shop}
  Archive:
    Type: AWS::Events::Archive
    Properties: {SourceArn: !GetAtt Bus.Arn}
Outputs:
  ArchiveName: {Value: !Ref Archive}
""")
        with LocalCloud.from_template(path) as cloud:
            assert cloud.outputs["ArchiveName"] == cloud.physical_id("Archive")
            assert "object" not in cloud.outputs["ArchiveName"]


class TestFifoQueues:
    def test_a_fifo_queue_without_a_name_deploys_with_a_generated_fifo_name(self, cloud_for):
        """shim_fifo_queue_names: CloudFormation names an unnamed FIFO queue, ending in .fifo.

        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sqs-queue.html#cfn-sqs-queue-queuename
        """
        cloud = cloud_for("""
            Updates:
              Type: AWS::SQS::Queue
              Properties: {FifoQueue: true, ContentBasedDeduplication: true}
        """)
        url = cloud.physical_id("Updates")
        assert url.endswith(".fifo")
        attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["FifoQueue"])["Attributes"]
        assert attributes["FifoQueue"] == "true"


class TestLinkedTemplates:
    def test_a_linked_template_finds_its_code_relative_to_the_real_file(self, tmp_path):
        """A stage whose template.yaml links to another file (the last chapter links to
        sam-app/template.yaml) resolves CodeUri from where the real file is, as `sam` does."""
        real = tmp_path / "app"
        real.mkdir()
        (real / "template.yaml").write_text(HEADER.replace(f"CodeUri: {FUNCTIONS}", "CodeUri: code/") + """\
  Consumer:
    Type: AWS::Serverless::Function
    Properties: {Handler: behaviours.succeed}
""")
        (real / "code").symlink_to(FUNCTIONS)
        chapter = tmp_path / "chapter"
        chapter.mkdir()
        (chapter / "template.yaml").symlink_to(real / "template.yaml")
        with LocalCloud.from_template(chapter) as cloud:
            assert cloud.function("Consumer").code_dir == (real / "code").resolve()
