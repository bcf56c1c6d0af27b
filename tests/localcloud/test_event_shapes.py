"""Every event the local cloud hands a function has the shape Lambda gives it: Powertools' models parse it."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SnsModel, SqsModel

from edakit import LocalCloud


def only_event(cloud: LocalCloud, function: str) -> dict[str, Any]:
    [invocation] = cloud.invocations(function)
    assert invocation.error is None, invocation.error
    # Lambda hands the handler parsed JSON: nothing in an event may be a Python-only type.
    assert json.loads(json.dumps(invocation.event)) == invocation.event
    return invocation.event


def test_sqs_event_parses_with_sqs_model_including_message_attributes(cloud_for):
    """A standard-queue batch, with String, Number and Binary message attributes.

    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#example-standard-queue-message-event
    """
    cloud = cloud_for("""
        Queue:
          Type: AWS::SQS::Queue
        Consumer:
          Type: AWS::Serverless::Function
          Properties:
            Handler: behaviours.succeed
            Events:
              Orders: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
    """)
    boto3.client("sqs").send_message(
        QueueUrl=cloud.physical_id("Queue"), MessageBody=json.dumps({"order_id": "o-1"}),
        MessageAttributes={
            "channel": {"DataType": "String", "StringValue": "web"},
            "items": {"DataType": "Number", "StringValue": "3"},
            "signature": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )

    cloud.run_until_idle()

    [record] = SqsModel.model_validate(only_event(cloud, "Consumer")).Records
    assert json.loads(record.body) == {"order_id": "o-1"}
    assert record.eventSource == "aws:sqs"
    assert record.attributes.ApproximateReceiveCount == "1"
    assert record.messageAttributes["channel"].stringValue == "web"
    assert record.messageAttributes["items"].dataType == "Number"
    assert base64.b64decode(record.messageAttributes["signature"].binaryValue) == b"\x00\x01"


def test_fifo_sqs_event_parses_with_sqs_model_and_carries_group_attributes(cloud_for):
    """A FIFO batch also carries MessageGroupId, MessageDeduplicationId and SequenceNumber.

    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#example-fifo-queue-message-event
    """
    cloud = cloud_for("""
        Queue:
          Type: AWS::SQS::Queue
          Properties: {FifoQueue: true, QueueName: orders.fifo}
        Consumer:
          Type: AWS::Serverless::Function
          Properties:
            Handler: behaviours.succeed
            Events:
              Orders: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
    """)
    boto3.client("sqs").send_message(
        QueueUrl=cloud.physical_id("Queue"), MessageBody="{}",
        MessageGroupId="customer-1", MessageDeduplicationId="d-1",
    )

    cloud.run_until_idle()

    [record] = SqsModel.model_validate(only_event(cloud, "Consumer")).Records
    assert record.attributes.MessageGroupId == "customer-1"
    assert record.attributes.MessageDeduplicationId == "d-1"
    assert record.attributes.SequenceNumber


def test_eventbridge_rule_event_parses_with_eventbridge_model(cloud_for):
    """A rule that targets a function sends it the event itself, with the account that sent it.

    https://docs.aws.amazon.com/eventbridge/latest/ref/overiew-event-structure.html
    https://docs.aws.amazon.com/lambda/latest/dg/with-eventbridge.html
    """
    cloud = cloud_for("""
        Bus:
          Type: AWS::Events::EventBus
          Properties: {Name: shop}
        Handler:
          Type: AWS::Serverless::Function
          Properties:
            Handler: behaviours.succeed
            Events:
              Placed:
                Type: EventBridgeRule
                Properties: {EventBusName: !Ref Bus, Pattern: {source: [shop.storefront]}}
    """)
    boto3.client("events").put_events(Entries=[{
        "Source": "shop.storefront", "DetailType": "OrderPlaced",
        "Detail": json.dumps({"order_id": "o-1"}), "EventBusName": cloud.physical_id("Bus"),
    }])

    cloud.run_until_idle()

    event = EventBridgeModel.model_validate(only_event(cloud, "Handler"))
    assert event.account == cloud.account_id
    assert event.source == "shop.storefront"
    assert event.detail_type == "OrderPlaced"
    assert event.detail == {"order_id": "o-1"}


def test_sns_event_parses_with_sns_model(cloud_for):
    """A subscribed function gets a Records list whose Sns part holds the message and its attributes.

    https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html
    """
    cloud = cloud_for("""
        Topic:
          Type: AWS::SNS::Topic
        Subscriber:
          Type: AWS::Serverless::Function
          Properties:
            Handler: behaviours.succeed
            Events:
              Notified: {Type: SNS, Properties: {Topic: !Ref Topic}}
    """)
    boto3.client("sns").publish(
        TopicArn=cloud.physical_id("Topic"), Message=json.dumps({"order_id": "o-1"}), Subject="OrderPlaced",
        MessageAttributes={"channel": {"DataType": "String", "StringValue": "web"}},
    )

    cloud.run_until_idle()

    [record] = SnsModel.model_validate(only_event(cloud, "Subscriber")).Records
    assert record.EventSource == "aws:sns"
    assert json.loads(record.Sns.Message) == {"order_id": "o-1"}
    assert record.Sns.Subject == "OrderPlaced"
    assert record.Sns.TopicArn == cloud.physical_id("Topic")
    assert record.Sns.MessageAttributes["channel"].Value == "web"


def test_eventbridge_event_delivered_to_sqs_parses_with_eventbridge_model(cloud_for):
    """A rule with a queue target sends the whole event as the message body.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html
    https://docs.aws.amazon.com/eventbridge/latest/ref/overiew-event-structure.html
    """
    cloud = cloud_for("""
        Bus:
          Type: AWS::Events::EventBus
          Properties: {Name: shop}
        Queue:
          Type: AWS::SQS::Queue
        Rule:
          Type: AWS::Events::Rule
          Properties:
            EventBusName: !Ref Bus
            EventPattern: {source: [shop.storefront]}
            Targets: [{Arn: !GetAtt Queue.Arn, Id: queue}]
        Consumer:
          Type: AWS::Serverless::Function
          Properties:
            Handler: behaviours.succeed
            Events:
              Orders: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
    """)
    boto3.client("events").put_events(Entries=[{
        "Source": "shop.storefront", "DetailType": "OrderPlaced",
        "Detail": json.dumps({"order_id": "o-1"}), "EventBusName": cloud.physical_id("Bus"),
    }])

    cloud.run_until_idle()

    [record] = SqsModel.model_validate(only_event(cloud, "Consumer")).Records
    event = EventBridgeModel.model_validate_json(record.body)
    assert event.account == cloud.account_id
    assert event.detail == {"order_id": "o-1"}
