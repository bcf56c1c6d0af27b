"""Architecture diagrams: edakit.diagrams draws the running stage from the emulator's state.

The diagram shows what the AWS APIs report (ListRules, ListTargetsByRule,
GetQueueAttributes RedrivePolicy, ListEventSourceMappings, ListSubscriptions,
GetFunctionEventInvokeConfig), so a resource missing from the deployment is
missing from the picture.
https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_ListTargetsByRule.html
"""

from __future__ import annotations

import re

import boto3
import pytest

from edakit.diagrams import architecture, summarise_pattern

ORDERS_STAGE = """
Bus:
  Type: AWS::Events::EventBus
  Properties: {Name: shop}
OrdersRule:
  Type: AWS::Events::Rule
  Properties:
    EventBusName: !GetAtt Bus.Name
    EventPattern:
      source: [shop.storefront]
      detail-type: [OrderPlaced]
    Targets: [{Arn: !GetAtt Orders.Arn, Id: orders}]
Orders:
  Type: AWS::SQS::Queue
  Properties:
    VisibilityTimeout: 60
    RedrivePolicy: {deadLetterTargetArn: !GetAtt OrdersDLQ.Arn, maxReceiveCount: 3}
OrdersDLQ:
  Type: AWS::SQS::Queue
Processor:
  Type: AWS::Serverless::Function
  Properties:
    Handler: behaviours.succeed
    Events:
      OrdersMessages:
        Type: SQS
        Properties: {Queue: !GetAtt Orders.Arn, BatchSize: 5}
"""


def nodes(diagram: str) -> dict[str, str]:
    """Node id -> label text (lines joined by " / ")."""
    found = {}
    for match in re.finditer(r'^    (\w+)\W{1,2}"([^"]*)"', diagram, re.MULTILINE):
        found[match.group(1)] = match.group(2).replace("<br/>", " / ")
    return found


def edges(diagram: str) -> set[tuple[str, str, str, str]]:
    """(source, arrow, label, target) of every edge."""
    pattern = r'^    (\w+) (-->|-\.->)(?:\|"([^"]*)"\|)? (\w+)$'
    return {(m[1], m[2], m[3] or "", m[4]) for m in re.finditer(pattern, diagram, re.MULTILINE)}


class TestArchitecture:
    def test_is_a_left_to_right_mermaid_flowchart(self, cloud_for):
        diagram = architecture(cloud_for(ORDERS_STAGE))
        assert diagram.splitlines()[0] == "flowchart LR"

    def test_draws_bus_rule_queue_function_and_dlq_by_logical_id(self, cloud_for):
        """Rules and targets from ListRules/ListTargetsByRule, the DLQ from the queue's RedrivePolicy,
        the function from its event source mapping.

        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
        """
        diagram = architecture(cloud_for(ORDERS_STAGE))
        assert nodes(diagram) == {
            "Bus": "Bus / event bus",
            "OrdersRule": "OrdersRule / source: shop.storefront; detail-type: OrderPlaced",
            "Orders": "Orders / SQS queue",
            "OrdersDLQ": "OrdersDLQ / SQS queue",
            "Processor": "Processor / Lambda function",
        }
        assert edges(diagram) == {
            ("Bus", "-->", "", "OrdersRule"),
            ("OrdersRule", "-->", "", "Orders"),
            ("Orders", "-.->", "after 3 receives", "OrdersDLQ"),
            ("Orders", "-->", "batch 5", "Processor"),
        }

    def test_the_default_bus_is_left_out_when_no_rule_uses_it(self, cloud_for):
        assert "default" not in architecture(cloud_for(ORDERS_STAGE))

    def test_shows_what_was_changed_after_deployment(self, cloud_for):
        """The picture is the emulator's state: a target added with PutTargets appears in it."""
        cloud = cloud_for(ORDERS_STAGE)
        boto3.client("events").put_targets(
            Rule=cloud.physical_id("OrdersRule"), EventBusName="shop",
            Targets=[{"Id": "copy", "Arn": boto3.client("sqs").get_queue_attributes(
                QueueUrl=cloud.physical_id("OrdersDLQ"), AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]}],
        )
        assert ("OrdersRule", "-->", "", "OrdersDLQ") in edges(architecture(cloud))

    def test_an_archive_hangs_off_its_bus_with_its_pattern_and_retention(self, cloud_for):
        """https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-archive.html"""
        diagram = architecture(cloud_for("""
            Bus:
              Type: AWS::Events::EventBus
              Properties: {Name: shop}
            Archive:
              Type: AWS::Events::Archive
              Properties:
                SourceArn: !GetAtt Bus.Arn
                RetentionDays: 7
                EventPattern: {source: [{prefix: shop.}]}
        """))
        assert nodes(diagram)["Archive"] == "Archive / archive, 7 days"
        assert ("Bus", "-->", "source: prefix shop.", "Archive") in edges(diagram)

    def test_a_rule_that_invokes_a_function_and_the_functions_destinations(self, cloud_for):
        """Asynchronous invocation: the function's DLQ and its OnSuccess/OnFailure destinations.

        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
        """
        diagram = architecture(cloud_for("""
            Bus:
              Type: AWS::Events::EventBus
              Properties: {Name: shop}
            Failures:
              Type: AWS::SQS::Queue
            Successes:
              Type: AWS::SQS::Queue
            DeadLetters:
              Type: AWS::SQS::Queue
            Consumer:
              Type: AWS::Serverless::Function
              Properties:
                Handler: behaviours.succeed
                DeadLetterQueue: {Type: SQS, TargetArn: !GetAtt DeadLetters.Arn}
                EventInvokeConfig:
                  DestinationConfig:
                    OnSuccess: {Type: SQS, Destination: !GetAtt Successes.Arn}
                    OnFailure: {Type: SQS, Destination: !GetAtt Failures.Arn}
                Events:
                  Orders:
                    Type: EventBridgeRule
                    Properties:
                      EventBusName: !GetAtt Bus.Name
                      Pattern: {source: [shop.orders], detail: {total_cents: [{numeric: [">=", 100]}]}}
        """))
        drawn = edges(diagram)
        assert ("ConsumerOrders", "-->", "", "Consumer") in drawn
        assert ("Consumer", "-.->", "dead-letter queue", "DeadLetters") in drawn
        assert ("Consumer", "-->", "on success", "Successes") in drawn
        assert ("Consumer", "-.->", "on failure", "Failures") in drawn
        # ">" would open an HTML tag inside a mermaid label: it is written as an entity
        assert nodes(diagram)["ConsumerOrders"] == "ConsumerOrders / source: shop.orders; detail.total_cents: #gt;= 100"

    def test_a_topic_and_its_filtered_subscription(self, cloud_for):
        """https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html"""
        diagram = architecture(cloud_for("""
            Topic:
              Type: AWS::SNS::Topic
            Emails:
              Type: AWS::SQS::Queue
            EmailsSubscription:
              Type: AWS::SNS::Subscription
              Properties:
                TopicArn: !Ref Topic
                Protocol: sqs
                Endpoint: !GetAtt Emails.Arn
                RawMessageDelivery: true
                FilterPolicy: {kind: [email]}
        """))
        assert nodes(diagram)["Topic"] == "Topic / SNS topic"
        assert ("Topic", "-->", "kind: email, raw", "Emails") in edges(diagram)

    def test_a_stream_mapping_and_a_table_the_function_is_given(self, cloud_for):
        """A variable holding a resource's name is drawn as the function using that resource.

        https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html
        """
        diagram = architecture(cloud_for("""
            Clicks:
              Type: AWS::Kinesis::Stream
              Properties: {ShardCount: 1}
            Totals:
              Type: AWS::DynamoDB::Table
              Properties:
                BillingMode: PAY_PER_REQUEST
                AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
                KeySchema: [{AttributeName: id, KeyType: HASH}]
            Counter:
              Type: AWS::Serverless::Function
              Properties:
                Handler: behaviours.succeed
                Environment:
                  Variables: {TOTALS_TABLE: !Ref Totals}
                Events:
                  ClickRecords:
                    Type: Kinesis
                    Properties: {Stream: !GetAtt Clicks.Arn, StartingPosition: TRIM_HORIZON, BatchSize: 100}
        """))
        assert nodes(diagram)["Clicks"] == "Clicks / Kinesis stream"
        assert ("Clicks", "-->", "batch 100", "Counter") in edges(diagram)
        assert ("Counter", "-.->", "TOTALS_TABLE", "Totals") in edges(diagram)


class TestSummarisePattern:
    @pytest.mark.parametrize(
        ("pattern", "summary"),
        [
            ({"source": ["shop.storefront"]}, "source: shop.storefront"),
            ({"source": [{"prefix": "shop."}]}, "source: prefix shop."),
            ({"detail": {"currency": [{"anything-but": ["EUR", "GBP"]}]}}, "detail.currency: not EUR, GBP"),
            ({"detail": {"total_cents": [{"numeric": [">", 0, "<=", 100]}]}}, "detail.total_cents: > 0 <= 100"),
            ({"detail": {"coupon": [{"exists": False}]}}, "detail.coupon: absent"),
            ({"$or": [{"source": ["a"]}, {"detail-type": ["b"]}]}, "(source: a) or (detail-type: b)"),
            ({"detail": {"gift": [True, None]}}, "detail.gift: true, null"),
        ],
    )
    def test_one_line_per_pattern(self, pattern, summary):
        """https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html"""
        assert summarise_pattern(pattern) == summary

    def test_a_long_pattern_is_cut(self):
        summary = summarise_pattern({"detail-type": [f"Event{n}" for n in range(20)]})
        assert len(summary) == 60
        assert summary.endswith("…")
