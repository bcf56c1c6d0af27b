"""Least privilege from behaviour (edakit.iam) and the deploy shims for encryption and policies.

Every AWS call a function's code makes is recorded while it runs; the Lambda service's own calls
with the role are derived from the function's configuration; an evaluator decides each call
against the role as deployed.
"""

from __future__ import annotations

import json
from typing import Callable

import boto3
import pytest

from edakit import LocalCloud
from edakit.iam import Statement, authorized_calls, evaluate, least_privilege, security_problems, with_kms_calls

ACCOUNT, REGION = "123456789012", "us-east-1"

CALLER = """
Key:
  Type: AWS::KMS::Key
  Properties:
    EnableKeyRotation: true
    KeyPolicy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Principal: {AWS: !Sub "arn:aws:iam::${AWS::AccountId}:root"}
          Action: kms:*
          Resource: "*"
Queue:
  Type: AWS::SQS::Queue
  Properties:
    KmsMasterKeyId: !Ref Key
Table:
  Type: AWS::DynamoDB::Table
  Properties:
    BillingMode: PAY_PER_REQUEST
    AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
    KeySchema: [{AttributeName: id, KeyType: HASH}]
    SSESpecification: {SSEEnabled: true, SSEType: KMS, KMSMasterKeyId: !Ref Key}
Topic:
  Type: AWS::SNS::Topic
TopicPolicy:
  Type: AWS::SNS::TopicPolicy
  Properties:
    Topics: [!Ref Topic]
    PolicyDocument:
      Version: "2012-10-17"
      Statement:
        - Effect: Deny
          Principal: "*"
          Action: sns:Publish
          Resource: !Ref Topic
          Condition: {Bool: {aws:SecureTransport: "false"}}
Caller:
  Type: AWS::Serverless::Function
  Properties:
    Handler: aws_calls.lambda_handler
    Environment:
      Variables:
        QUEUE_URL: !Ref Queue
        TABLE_NAME: !Ref Table
    Policies:
      - SQSSendMessagePolicy: {QueueName: !GetAtt Queue.QueueName}
      - DynamoDBWritePolicy: {TableName: !Ref Table}
"""


def statements(*raw: dict) -> list[Statement]:
    return [Statement.parse("policy", i, s) for i, s in enumerate(raw)]


class TestPolicyEvaluation:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"""

    def test_an_explicit_deny_wins_over_an_allow(self) -> None:
        policy = statements({"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
                            {"Effect": "Deny", "Action": "sqs:DeleteQueue", "Resource": "arn:aws:sqs:*:*:orders"})
        assert evaluate(policy, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:orders").allowed
        decision = evaluate(policy, "sqs:DeleteQueue", "arn:aws:sqs:us-east-1:1:orders")
        assert not decision.allowed and decision.reason.startswith("explicitly denied")

    def test_nothing_is_allowed_without_a_matching_allow(self) -> None:
        policy = statements({"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "arn:aws:dynamodb:*:*:table/a"})
        decision = evaluate(policy, "dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/b")
        assert (decision.allowed, decision.reason) == (False, "no statement allows it (implicit deny)")

    def test_action_wildcards_ignore_case_and_resource_wildcards_do_not(self) -> None:
        """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html"""
        policy = statements({"Effect": "Allow", "Action": "SQS:sendmessage*", "Resource": "arn:aws:sqs:*:*:Orders-*"})
        assert evaluate(policy, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:Orders-1").allowed
        assert not evaluate(policy, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:orders-1").allowed

    def test_not_action_allows_everything_else(self) -> None:
        """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html"""
        policy = statements({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
        assert evaluate(policy, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q").allowed
        assert not evaluate(policy, "iam:CreateUser", "*").allowed

    def test_conditions_are_decided_or_reported_as_not_evaluated(self) -> None:
        """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html"""
        deny_http = {"Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": "*",
                     "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        allow = {"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
                 "Resource": "*", "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:1:topic"}}}
        policy = statements(deny_http, allow)
        sns = ("Service", "sns.amazonaws.com")
        assert evaluate(policy, "sqs:SendMessage", "q", principal=sns, context={"aws:SourceArn": "arn:aws:sns:us-east-1:1:topic"}).allowed
        assert not evaluate(policy, "sqs:SendMessage", "q", principal=sns, context={"aws:SourceArn": "arn:aws:sns:us-east-1:1:other"}).allowed
        assert not evaluate(policy, "sqs:SendMessage", "q", principal=sns, context={
            "aws:SourceArn": "arn:aws:sns:us-east-1:1:topic", "aws:SecureTransport": "false"}).allowed
        unknown = statements({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                              "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})
        decision = evaluate(unknown, "s3:GetObject", "*")
        assert not decision.allowed and decision.not_evaluated == unknown


class TestAuthorizedCalls:
    def test_a_transaction_is_authorized_item_by_item(self) -> None:
        """https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html"""
        calls = authorized_calls("dynamodb", "TransactWriteItems", {"TransactItems": [
            {"Update": {"TableName": "stock"}}, {"Put": {"TableName": "reservations"}},
            {"ConditionCheck": {"TableName": "stock"}}]}, REGION, ACCOUNT)
        table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/"
        assert calls == {("dynamodb:UpdateItem", table + "stock"), ("dynamodb:PutItem", table + "reservations"),
                         ("dynamodb:ConditionCheckItem", table + "stock")}

    def test_a_batch_send_is_authorized_as_send_message_and_put_events_per_bus(self) -> None:
        """https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-permissions-reference.html
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-identity-based.html"""
        assert authorized_calls("sqs", "SendMessageBatch", {"QueueUrl": "https://sqs/1/orders"}, REGION, ACCOUNT) == {
            ("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders")}
        assert authorized_calls("events", "PutEvents", {"Entries": [{"EventBusName": "shop"}, {}]}, REGION, ACCOUNT) == {
            ("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/shop"),
            ("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default")}


class TestRecording:
    def test_the_calls_of_a_functions_code_are_recorded_with_their_kms_calls_and_the_tests_are_not(
        self, cloud_for: Callable[[str], LocalCloud]
    ) -> None:
        """The function's own clients (even one made at import from another session) are seen;
        the KMS calls behind an encrypted queue and table are added.
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.howitworks.html
        """
        cloud = cloud_for(CALLER)
        boto3.client("sqs").send_message(QueueUrl=cloud.physical_id("Queue"), MessageBody="from the test")
        boto3.client("lambda").invoke(FunctionName=cloud.physical_id("Caller"), Payload=b"{}")
        key = boto3.client("kms").describe_key(KeyId=cloud.physical_id("Key"))["KeyMetadata"]["Arn"]
        queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{cloud.physical_id('Queue').rsplit('/', 1)[-1]}"
        table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{cloud.physical_id('Table')}"
        calls = cloud.aws_calls("Caller")
        assert {c for c in calls if not c[0].startswith("logs:")} == {
            ("sqs:SendMessage", queue), ("dynamodb:PutItem", table), ("dynamodb:ConditionCheckItem", table),
            ("kms:GenerateDataKey", key), ("kms:Decrypt", key)}
        assert cloud.call_recorder.calls.keys() == {"Caller"}

    def test_the_report_names_calls_the_role_does_not_allow_and_grants_never_used(
        self, cloud_for: Callable[[str], LocalCloud]
    ) -> None:
        """The role allows sqs:SendMessage* and DynamoDB writes, not ConditionCheckItem nor KMS.
        https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
        """
        cloud = cloud_for(CALLER)
        boto3.client("lambda").invoke(FunctionName=cloud.physical_id("Caller"), Payload=b"{}")
        problems = least_privilege(cloud).problems()
        denied = sorted(p.split(" is not allowed")[0] for p in problems if "is not allowed" in p)
        assert denied == ["Caller: dynamodb:ConditionCheckItem on Table", "Caller: kms:Decrypt on Key",
                          "Caller: kms:GenerateDataKey on Key"]
        unused = sorted(p.split(" (")[0] for p in problems if "never used" in p)
        assert unused == ["Caller: grant never used: dynamodb:BatchWriteItem on Table",
                          "Caller: grant never used: dynamodb:UpdateItem on Table"]


class TestSecurityShims:
    def test_encryption_and_policies_are_deployed_as_written(self, cloud_for: Callable[[str], LocalCloud]) -> None:
        """moto's CloudFormation skips AWS::SNS::TopicPolicy, keeps a KeyPolicy as an object, reads a table's
        SSESpecification under the API's names, and drops a role's ManagedPolicyArns: the shims fix each.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sns-topicpolicy.html
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-dynamodb-table-ssespecification.html
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-iam-role.html
        """
        cloud = cloud_for(CALLER)
        assert cloud.deployment is not None
        assert {"create_topic_policy", "shim_kms_key_policy", "shim_dynamodb_sse",
                "shim_role_managed_policies"} <= set(cloud.deployment.shims_applied)
        key = boto3.client("kms").describe_key(KeyId=cloud.physical_id("Key"))["KeyMetadata"]["Arn"]
        policy = json.loads(boto3.client("kms").get_key_policy(KeyId=key, PolicyName="default")["Policy"])
        assert policy["Statement"][0]["Action"] == "kms:*"
        sse = boto3.client("dynamodb").describe_table(TableName=cloud.physical_id("Table"))["Table"]["SSEDescription"]
        assert sse == {"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": key}
        topic = boto3.client("sns").get_topic_attributes(TopicArn=cloud.physical_id("Topic"))["Attributes"]
        assert json.loads(topic["Policy"])["Statement"][0]["Effect"] == "Deny"
        role = cloud.lambda_backend.get_function(cloud.physical_id("Caller")).role.rsplit("/", 1)[-1]
        attached = boto3.client("iam").list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        assert [p["PolicyName"] for p in attached] == ["AWSLambdaBasicExecutionRole"]

    def test_a_kinesis_stream_is_encrypted_as_written_and_its_producer_needs_generate_data_key(
        self, cloud_for: Callable[[str], LocalCloud]
    ) -> None:
        """moto's CloudFormation ignores StreamEncryption; shim_kinesis_stream_encryption starts it.
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-kinesis-stream-streamencryption.html
        https://docs.aws.amazon.com/streams/latest/dev/permissions-user-key-KMS.html
        """
        cloud = cloud_for("""
            Key:
              Type: AWS::KMS::Key
              Properties:
                KeyPolicy:
                  Version: "2012-10-17"
                  Statement:
                    - Effect: Allow
                      Principal: {AWS: !Sub "arn:aws:iam::${AWS::AccountId}:root"}
                      Action: kms:*
                      Resource: "*"
            Stream:
              Type: AWS::Kinesis::Stream
              Properties:
                ShardCount: 1
                StreamEncryption: {EncryptionType: KMS, KeyId: !Ref Key}
        """)
        stream = boto3.client("kinesis").describe_stream_summary(StreamName=cloud.physical_id("Stream"))
        key = boto3.client("kms").describe_key(KeyId=cloud.physical_id("Key"))["KeyMetadata"]
        assert (stream["StreamDescriptionSummary"]["EncryptionType"], stream["StreamDescriptionSummary"]["KeyId"]) == (
            "KMS", key["KeyId"])
        stream_arn = stream["StreamDescriptionSummary"]["StreamARN"]
        assert with_kms_calls(cloud, {("kinesis:PutRecord", stream_arn)}) == {
            ("kinesis:PutRecord", stream_arn), ("kms:GenerateDataKey", key["Arn"])}
        assert not [p for p in security_problems(cloud) if p.startswith("stream")]

    def test_an_unencrypted_topic_and_queue_are_named(self, cloud_for: Callable[[str], LocalCloud]) -> None:
        """https://docs.aws.amazon.com/sns/latest/dg/sns-server-side-encryption.html"""
        cloud = cloud_for(CALLER)
        problems = security_problems(cloud)
        assert "topic Topic is not encrypted with a customer managed KMS key: set its KmsMasterKeyId to the shop's key" in problems
        assert 'queue Queue accepts requests without TLS: add a Deny statement on aws:SecureTransport "false" to its queue policy' in problems
        assert not [p for p in problems if p.startswith(("table", "topic Topic accepts"))]
