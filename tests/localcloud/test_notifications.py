"""Application-to-person (A2P) notifications: SNS subscriptions with protocol email, email-json,
sms or application deliver to people. The local cloud applies the subscription's filter policy,
then records the delivery in `cloud.notifications`, and never sends anything.

https://docs.aws.amazon.com/sns/latest/dg/sns-user-notifications.html
https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html
"""

from __future__ import annotations

import json
import socket
from typing import Any

import boto3
import pytest

#: A topic with one subscription of each A2P protocol; the sms one takes confirmations only.
CUSTOMER_CHANNELS = """\
Topic:
  Type: AWS::SNS::Topic
Email:
  Type: AWS::SNS::Subscription
  Properties:
    TopicArn: !Ref Topic
    Protocol: email
    Endpoint: customer@example.com
EmailJson:
  Type: AWS::SNS::Subscription
  Properties:
    TopicArn: !Ref Topic
    Protocol: email-json
    Endpoint: robot@example.com
Sms:
  Type: AWS::SNS::Subscription
  Properties:
    TopicArn: !Ref Topic
    Protocol: sms
    Endpoint: "+15555550100"
    FilterPolicy: {status: [CONFIRMED]}
"""


def publish(cloud: Any, message: str, *, subject: str | None = None, structure: str | None = None,
            **attributes: str) -> str:
    kwargs: dict[str, Any] = {"TopicArn": cloud.physical_id("Topic"), "Message": message}
    if subject is not None:
        kwargs["Subject"] = subject
    if structure is not None:
        kwargs["MessageStructure"] = structure
    kwargs["MessageAttributes"] = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
    return boto3.client("sns").publish(**kwargs)["MessageId"]


def by_protocol(cloud: Any) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for notification in cloud.notifications:
        found.setdefault(notification.protocol, []).append(notification)
    return found


class TestRecordedNotSent:
    def test_an_email_subscription_records_subject_message_attributes_topic_and_virtual_time(self, cloud_for):
        """SNS emails the message to a confirmed email subscription, with the publisher's Subject.
        https://docs.aws.amazon.com/sns/latest/dg/sns-email-notifications.html
        """
        cloud = cloud_for(CUSTOMER_CHANNELS)
        cloud.clock.advance(90)

        message_id = publish(cloud, "Your order is confirmed.", subject="Order confirmed", status="CONFIRMED")

        [email] = by_protocol(cloud)["email"]
        assert (email.endpoint, email.subject, email.message) == (
            "customer@example.com", "Order confirmed", "Your order is confirmed.")
        assert email.message_attributes == {"status": {"Type": "String", "Value": "CONFIRMED"}}
        assert (email.topic_arn, email.message_id) == (cloud.physical_id("Topic"), message_id)
        assert email.subscription_arn.startswith(cloud.physical_id("Topic") + ":")
        assert email.time == cloud.clock.now()

    def test_an_email_without_subject_gets_the_default_subject(self, cloud_for):
        """Without a Subject, SNS emails with the subject "AWS Notification Message".
        https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
        """
        cloud = cloud_for(CUSTOMER_CHANNELS)
        publish(cloud, "hello")
        assert [n.subject for n in by_protocol(cloud)["email"]] == ["AWS Notification Message"]

    def test_an_sms_carries_the_message_and_no_subject(self, cloud_for):
        """A text message has no subject line; SNS sends the message text only.
        https://docs.aws.amazon.com/sns/latest/dg/sns-mobile-phone-number-as-subscriber.html
        """
        cloud = cloud_for(CUSTOMER_CHANNELS)
        publish(cloud, "Order confirmed.", subject="Order confirmed", status="CONFIRMED")
        [sms] = by_protocol(cloud)["sms"]
        assert (sms.endpoint, sms.subject, sms.message) == ("+15555550100", None, "Order confirmed.")

    def test_email_json_receives_the_notification_as_a_json_document(self, cloud_for):
        """email-json gets the JSON document SNS sends to HTTP endpoints: Type, MessageId, Subject, Message...
        https://docs.aws.amazon.com/sns/latest/dg/sns-email-notifications.html
        https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html
        """
        cloud = cloud_for(CUSTOMER_CHANNELS)
        message_id = publish(cloud, "hello", subject="Hi")
        [document] = [json.loads(n.message) for n in by_protocol(cloud)["email-json"]]
        assert {k: document[k] for k in ("Type", "MessageId", "TopicArn", "Subject", "Message")} == {
            "Type": "Notification", "MessageId": message_id, "TopicArn": cloud.physical_id("Topic"),
            "Subject": "Hi", "Message": "hello"}

    def test_message_structure_json_gives_each_protocol_its_own_text(self, cloud_for):
        """With MessageStructure json, each protocol gets its own key's text, or `default`.
        https://docs.aws.amazon.com/sns/latest/dg/sns-send-custom-platform-specific-payloads-mobile-devices.html
        https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
        """
        cloud = cloud_for(CUSTOMER_CHANNELS)
        publish(cloud, json.dumps({"default": "{\"order_id\": \"o-1\"}", "email": "Dear customer, ...",
                                   "sms": "Order o-1 confirmed"}), structure="json", status="CONFIRMED")
        sent = {n.protocol: n.message for n in cloud.notifications}
        assert sent["email"] == "Dear customer, ..."
        assert sent["sms"] == "Order o-1 confirmed"
        assert json.loads(sent["email-json"])["Message"] == "{\"order_id\": \"o-1\"}"

    def test_nothing_leaves_the_machine(self, cloud_for, monkeypatch: pytest.MonkeyPatch):
        """Recorded, never sent: no connection is opened for an email or a text message.
        https://docs.aws.amazon.com/sns/latest/dg/sns-user-notifications.html
        """
        cloud = cloud_for(CUSTOMER_CHANNELS)
        connections: list[Any] = []
        monkeypatch.setattr(socket.socket, "connect", lambda self, address: connections.append(address))
        monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: connections.append(address))

        publish(cloud, "hello", subject="Hi", status="CONFIRMED")

        assert sorted(n.protocol for n in cloud.notifications) == ["email", "email-json", "sms"]
        assert connections == []

    def test_a_mobile_push_endpoint_is_recorded_too(self, cloud_for):
        """Protocol application delivers to a platform endpoint (a device); recorded like the others.
        https://docs.aws.amazon.com/sns/latest/dg/sns-mobile-application-as-subscriber.html
        """
        cloud = cloud_for("Topic:\n  Type: AWS::SNS::Topic")
        sns = boto3.client("sns")
        app = sns.create_platform_application(Name="shop-app", Platform="GCM",
                                              Attributes={"PlatformCredential": "key"})["PlatformApplicationArn"]
        device = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="device-1")["EndpointArn"]
        sns.subscribe(TopicArn=cloud.physical_id("Topic"), Protocol="application", Endpoint=device)

        publish(cloud, "Your parcel is on its way", subject="ignored")

        [push] = cloud.notifications
        assert (push.protocol, push.endpoint, push.subject, push.message) == (
            "application", device, None, "Your parcel is on its way")


class TestFilterPolicies:
    def test_a_filter_policy_keeps_what_it_does_not_match_from_the_person(self, cloud_for):
        """A subscription with a filter policy receives only messages whose attributes match it;
        a message without the attribute does not match.
        https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html
        """
        cloud = cloud_for(CUSTOMER_CHANNELS)

        publish(cloud, "confirmed", status="CONFIRMED")
        publish(cloud, "out of stock", status="OUT_OF_STOCK")
        publish(cloud, "no status at all")

        sent = by_protocol(cloud)
        assert [n.message for n in sent["sms"]] == ["confirmed"]
        assert [n.message for n in sent["email"]] == ["confirmed", "out of stock", "no status at all"]

    def test_a_filter_policy_on_the_message_body_applies_to_email_too(self, cloud_for):
        """FilterPolicyScope MessageBody matches the JSON message instead of its attributes.
        https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering-scope.html
        """
        cloud = cloud_for("""\
Topic:
  Type: AWS::SNS::Topic
Email:
  Type: AWS::SNS::Subscription
  Properties:
    TopicArn: !Ref Topic
    Protocol: email
    Endpoint: big-spenders@example.com
    FilterPolicyScope: MessageBody
    FilterPolicy: {total_cents: [{numeric: [">=", 50000]}]}
""")
        publish(cloud, json.dumps({"order_id": "o-1", "total_cents": 90000}))
        publish(cloud, json.dumps({"order_id": "o-2", "total_cents": 1500}), total_cents="90000")

        assert [json.loads(n.message)["order_id"] for n in cloud.notifications] == ["o-1"]


class TestConfirmation:
    def test_template_subscriptions_are_confirmed_at_once(self, cloud_for):
        """On AWS an email subscription stays PendingConfirmation until its owner follows the link in
        the confirmation email; the local cloud (as moto) treats every subscription as confirmed,
        as if the learner had clicked. docs/reference/fidelity.md lists the difference.
        https://docs.aws.amazon.com/sns/latest/dg/sns-email-notifications.html
        """
        cloud = cloud_for(CUSTOMER_CHANNELS)
        sns = boto3.client("sns")
        subscriptions = sns.list_subscriptions_by_topic(TopicArn=cloud.physical_id("Topic"))["Subscriptions"]
        assert len(subscriptions) == 3
        for subscription in subscriptions:
            attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
            assert attributes["PendingConfirmation"] == "false", subscription["Protocol"]
