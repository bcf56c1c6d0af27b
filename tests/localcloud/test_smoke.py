"""The local cloud's public surface, end to end on a tiny stage."""

from __future__ import annotations

import json

import boto3


def test_put_events_reaches_a_queue_consumer_through_a_rule(cloud_for):
    """A rule on a custom bus routes to SQS; the event source mapping invokes the function.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rules.html
    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
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
    [invocation] = cloud.invocations("Consumer")
    body = json.loads(invocation.event["Records"][0]["body"])
    assert body["detail"] == {"order_id": "o-1"}
    assert invocation.error is None
    assert cloud.queue_depth("Queue") == {"visible": 0, "in_flight": 0, "delayed": 0}
