"""Asynchronous invocation: EventBridge, SNS and `invoke(InvocationType="Event")` hand events to
Lambda's own queue, which retries them, discards them, and reports what happened.

https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

# -- small stages ---------------------------------------------------------------------------


def stage(*resources: str) -> str:
    """Resources text for cloud_for, joined from snippets that are each indented their own way."""
    return "\n".join(textwrap.dedent(snippet).strip("\n") for snippet in resources)


def queue(logical_id: str) -> str:
    return f"{logical_id}:\n  Type: AWS::SQS::Queue"


def rule_consumer(handler: str = "async_handlers.reject", properties: str = "") -> str:
    """A custom bus named shop, and a function Consumer that a rule on it invokes for source shop.orders.

    `properties` (EventInvokeConfig, DeadLetterQueue...) are added to the function's Properties.
    """
    extra = textwrap.indent(textwrap.dedent(properties).strip("\n"), "    ")
    return f"""\
Bus:
  Type: AWS::Events::EventBus
  Properties: {{Name: shop}}
Consumer:
  Type: AWS::Serverless::Function
  Properties:
    Handler: {handler}
{extra}
    Events:
      Orders:
        Type: EventBridgeRule
        Properties:
          EventBusName: !GetAtt Bus.Name
          Pattern: {{source: [shop.orders]}}"""


def sns_consumer(handler: str = "behaviours.succeed", subscription: str = "") -> str:
    """A topic, and a function Consumer subscribed to it; `subscription` adds to the SNS event's Properties."""
    extra = textwrap.indent(textwrap.dedent(subscription).strip("\n"), "          ")
    return f"""\
Topic:
  Type: AWS::SNS::Topic
Consumer:
  Type: AWS::Serverless::Function
  Properties:
    Handler: {handler}
    Events:
      Notifications:
        Type: SNS
        Properties:
          Topic: !Ref Topic
{extra}"""


def put_order(cloud: Any, detail: dict[str, Any], source: str = "shop.orders") -> None:
    response = boto3.client("events").put_events(Entries=[{
        "Source": source, "DetailType": "OrderPlaced",
        "Detail": json.dumps(detail), "EventBusName": cloud.physical_id("Bus"),
    }])
    assert response["FailedEntryCount"] == 0


def publish(cloud: Any, message: dict[str, Any], **attributes: str) -> None:
    boto3.client("sns").publish(
        TopicArn=cloud.physical_id("Topic"), Message=json.dumps(message),
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )


def queue_arn(cloud: Any, logical_id: str) -> str:
    return boto3.client("sqs").get_queue_attributes(
        QueueUrl=cloud.physical_id(logical_id), AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def records(cloud: Any, logical_id: str) -> list[dict[str, Any]]:
    """The invocation records (JSON bodies) in a destination queue."""
    return [json.loads(body) for body in cloud.messages(logical_id)]


# -- EventBridge to Lambda --------------------------------------------------------------------


class TestEventBridgeRuleToLambda:
    def test_matching_event_invokes_the_function_with_the_whole_event(self, cloud_for):
        """A rule whose pattern matches sends the event, `account` included, to its Lambda target.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
        https://docs.aws.amazon.com/lambda/latest/dg/with-eventbridge.html
        """
        cloud = cloud_for(rule_consumer("behaviours.succeed"))

        put_order(cloud, {"order_id": "o-1"})
        cloud.run_until_idle()

        [invocation] = cloud.invocations("Consumer")
        event = invocation.event
        assert event["detail"] == {"order_id": "o-1"}
        assert event["account"] == cloud.account_id
        assert event["source"] == "shop.orders" and event["detail-type"] == "OrderPlaced"
        assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region",
                              "resources", "detail"}
        assert invocation.trigger == "async"

    def test_event_that_does_not_match_the_pattern_invokes_nothing(self, cloud_for):
        """Only events that match a rule's event pattern reach its targets.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html
        """
        cloud = cloud_for(rule_consumer("behaviours.succeed"))

        put_order(cloud, {"order_id": "o-1"}, source="shop.payments")
        cloud.run_until_idle()

        assert cloud.invocations("Consumer") == []


# -- retries and event age ----------------------------------------------------------------------


class TestRetries:
    def test_failed_async_event_is_retried_after_one_then_two_minutes(self, cloud_for):
        """By default a failing event runs three times: one minute, then two minutes, after each failure.

        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
        """
        cloud = cloud_for(rule_consumer())

        put_order(cloud, {"order_id": "o-1"})
        cloud.run_until_idle()

        first, second, third = cloud.invocations("Consumer")
        assert all(i.error for i in (first, second, third))
        assert second.time - (first.time + first.duration) == pytest.approx(60)
        assert third.time - (second.time + second.duration) == pytest.approx(120)

    @pytest.mark.parametrize("retries", [0, 1])
    def test_maximum_retry_attempts_bounds_the_attempts(self, cloud_for, retries):
        """EventInvokeConfig MaximumRetryAttempts (0 to 2): the event runs 1 + MaximumRetryAttempts times.

        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-eventinvokeconfiguration.html
        """
        cloud = cloud_for(rule_consumer(properties=f"EventInvokeConfig: {{MaximumRetryAttempts: {retries}}}"))

        put_order(cloud, {"order_id": "o-1"})
        cloud.run_until_idle()

        assert len(cloud.invocations("Consumer")) == 1 + retries

    def test_successful_async_event_is_not_retried(self, cloud_for):
        """Only function errors are retried; an event that succeeds runs once.

        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
        """
        cloud = cloud_for(rule_consumer("behaviours.fail_when_told"))

        put_order(cloud, {"order_id": "o-1"})
        put_order(cloud, {"order_id": "o-2", "fail": True})
        cloud.run_until_idle()

        invocations = cloud.invocations("Consumer")
        assert [i.event["detail"]["order_id"] for i in invocations] == ["o-1", "o-2", "o-2", "o-2"]

    def test_put_event_invoke_config_replaces_the_whole_configuration(self, cloud_for):
        """PutFunctionEventInvokeConfig overwrites: settings it leaves out return to their defaults.

        https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionEventInvokeConfig.html
        """
        cloud = cloud_for(rule_consumer(properties="EventInvokeConfig: {MaximumRetryAttempts: 0}"))
        lambda_ = boto3.client("lambda")

        lambda_.put_function_event_invoke_config(FunctionName=cloud.physical_id("Consumer"), MaximumEventAgeInSeconds=3600)
        put_order(cloud, {"order_id": "o-1"})
        cloud.run_until_idle()

        config = lambda_.get_function_event_invoke_config(FunctionName=cloud.physical_id("Consumer"))
        assert config["MaximumEventAgeInSeconds"] == 3600 and "MaximumRetryAttempts" not in config
        assert len(cloud.invocations("Consumer")) == 3  # the default two retries again

    def test_update_event_invoke_config_changes_only_the_settings_it_names(self, cloud_for):
        """UpdateFunctionEventInvokeConfig keeps the settings it does not name.

        https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionEventInvokeConfig.html
        """
        cloud = cloud_for(rule_consumer(properties="EventInvokeConfig: {MaximumRetryAttempts: 0}"))
        lambda_ = boto3.client("lambda")

        lambda_.update_function_event_invoke_config(FunctionName=cloud.physical_id("Consumer"), MaximumEventAgeInSeconds=3600)
        put_order(cloud, {"order_id": "o-1"})
        cloud.run_until_idle()

        config = lambda_.get_function_event_invoke_config(FunctionName=cloud.physical_id("Consumer"))
        assert (config["MaximumEventAgeInSeconds"], config["MaximumRetryAttempts"]) == (3600, 0)
        assert len(cloud.invocations("Consumer")) == 1


class TestMaximumEventAge:
    def test_event_older_than_maximum_age_is_discarded_with_retries_left(self, cloud_for):
        """MaximumEventAgeInSeconds: an event is discarded once it is that old, even with retries left.

        The OnFailure record says why: condition EventAgeExceeded.
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
        """
        cloud = cloud_for(stage(queue("Failures"), rule_consumer(properties="""
            EventInvokeConfig:
              MaximumEventAgeInSeconds: 90
              MaximumRetryAttempts: 2
              DestinationConfig:
                OnFailure: {Type: SQS, Destination: !GetAtt Failures.Arn}
        """)))

        put_order(cloud, {"order_id": "o-1"})
        cloud.run_until_idle()

        # The first retry starts at 60 s; the second would start at 180 s, past the 90 s age.
        assert len(cloud.invocations("Consumer")) == 2
        [record] = records(cloud, "Failures")
        assert record["requestContext"]["condition"] == "EventAgeExceeded"
        assert record["requestContext"]["approximateInvokeCount"] == 2

    def test_throttled_event_that_ages_out_is_discarded_without_running(self, cloud_for):
        """An event that waits, throttled, longer than MaximumEventAgeInSeconds is discarded unrun.

        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
        """
        cloud = cloud_for(stage(queue("Failures"), rule_consumer("behaviours.succeed", """
            ReservedConcurrentExecutions: 1
            Timeout: 120
            EventInvokeConfig:
              MaximumEventAgeInSeconds: 60
              DestinationConfig:
                OnFailure: {Type: SQS, Destination: !GetAtt Failures.Arn}
        """)))
        cloud.function("Consumer").duration = 100.0

        put_order(cloud, {"order_id": "o-1"})
        put_order(cloud, {"order_id": "o-2"})
        cloud.run_until_idle()

        assert [i.event["detail"]["order_id"] for i in cloud.invocations("Consumer")] == ["o-1"]
        [record] = records(cloud, "Failures")
        assert record["requestContext"]["condition"] == "EventAgeExceeded"
        assert record["requestContext"]["approximateInvokeCount"] == 0
        assert record["requestPayload"]["detail"] == {"order_id": "o-2"}


# -- where discarded and finished events go -------------------------------------------------------


class TestDeadLetterQueue:
    def test_dead_letter_queue_receives_the_original_event_with_error_attributes(self, cloud_for):
        """DeadLetterConfig: the discarded event, as-is, with RequestID, ErrorCode and ErrorMessage attributes.

        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq
        https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-property-function-deadletterqueue.html
        """
        cloud = cloud_for(stage(queue("DLQ"), rule_consumer(properties="""
            DeadLetterQueue: {Type: SQS, TargetArn: !GetAtt DLQ.Arn}
            EventInvokeConfig: {MaximumRetryAttempts: 1}
        """)))

        put_order(cloud, {"order_id": "o-7"})
        cloud.run_until_idle()

        first, last = cloud.invocations("Consumer")
        [message] = boto3.client("sqs").receive_message(
            QueueUrl=cloud.physical_id("DLQ"), MessageAttributeNames=["All"])["Messages"]
        assert json.loads(message["Body"]) == last.event == first.event
        attributes = message["MessageAttributes"]
        assert attributes["RequestID"] == {"StringValue": last.request_id, "DataType": "String"}
        assert attributes["ErrorCode"] == {"StringValue": "200", "DataType": "Number"}
        assert attributes["ErrorMessage"] == {"StringValue": "order o-7 rejected", "DataType": "String"}

    def test_function_configuration_shows_the_dead_letter_config(self, cloud_for):
        """GetFunctionConfiguration returns DeadLetterConfig.TargetArn (moto drops it; the kit keeps it).

        https://docs.aws.amazon.com/lambda/latest/api/API_GetFunctionConfiguration.html
        """
        cloud = cloud_for(stage(queue("DLQ"), rule_consumer(
            properties="DeadLetterQueue: {Type: SQS, TargetArn: !GetAtt DLQ.Arn}")))

        config = boto3.client("lambda").get_function_configuration(FunctionName=cloud.physical_id("Consumer"))

        assert config["DeadLetterConfig"] == {"TargetArn": queue_arn(cloud, "DLQ")}

    def test_dead_letter_config_set_by_update_function_configuration_applies_at_once(self, cloud_for):
        """UpdateFunctionConfiguration(DeadLetterConfig=...) points discarded events at a new queue.

        https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html
        """
        cloud = cloud_for(stage(queue("DLQ"), rule_consumer(properties="EventInvokeConfig: {MaximumRetryAttempts: 0}")))

        boto3.client("lambda").update_function_configuration(
            FunctionName=cloud.physical_id("Consumer"), DeadLetterConfig={"TargetArn": queue_arn(cloud, "DLQ")})
        put_order(cloud, {"order_id": "o-1"})
        cloud.run_until_idle()

        [body] = cloud.messages("DLQ")
        assert json.loads(body)["detail"] == {"order_id": "o-1"}


def assert_failure_record(record: dict[str, Any], cloud: Any) -> None:
    """The invocation record of an event that failed all three attempts, as the Lambda docs show it."""
    invocations = cloud.invocations("Consumer")
    assert record["version"] == "1.0"
    assert record["timestamp"].endswith("Z")
    context = record["requestContext"]
    assert context["condition"] == "RetriesExhausted"
    assert context["approximateInvokeCount"] == 3
    assert context["functionArn"] == cloud.function("Consumer").arn + ":$LATEST"
    assert context["requestId"] == invocations[-1].request_id
    assert record["requestPayload"] == invocations[0].event
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "order o-1 rejected"


class TestDestinations:
    def test_on_failure_sqs_destination_receives_the_invocation_record(self, cloud_for):
        """OnFailure to SQS: the record (condition, attempts, request and response) is the message body.

        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
        """
        cloud = cloud_for(stage(queue("Failures"), rule_consumer(properties="""
            EventInvokeConfig:
              DestinationConfig:
                OnFailure: {Type: SQS, Destination: !GetAtt Failures.Arn}
        """)))

        put_order(cloud, {"order_id": "o-1"})
        cloud.run_until_idle()

        [record] = records(cloud, "Failures")
        assert_failure_record(record, cloud)

    def test_on_success_sns_destination_receives_the_invocation_record(self, cloud_for):
        """OnSuccess to SNS: the record is the notification's Message; condition Success.

        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
        """
        cloud = cloud_for(stage(queue("Results"), """
            ResultsTopic:
              Type: AWS::SNS::Topic
            ResultsSubscription:
              Type: AWS::SNS::Subscription
              Properties:
                TopicArn: !Ref ResultsTopic
                Protocol: sqs
                Endpoint: !GetAtt Results.Arn
        """, rule_consumer("async_handlers.echo", """
            EventInvokeConfig:
              DestinationConfig:
                OnSuccess: {Type: SNS, Destination: !Ref ResultsTopic}
        """)))

        put_order(cloud, {"order_id": "o-1"})
        cloud.run_until_idle()

        [invocation] = cloud.invocations("Consumer")
        [notification] = records(cloud, "Results")
        record = json.loads(notification["Message"])
        assert record["requestContext"]["condition"] == "Success"
        assert record["requestContext"]["approximateInvokeCount"] == 1
        assert record["requestPayload"] == invocation.event
        assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
        assert record["responsePayload"] == invocation.result

    def test_on_failure_eventbridge_destination_puts_a_lambda_invocation_result_event(self, cloud_for):
        """OnFailure to EventBridge: source `lambda`, detail-type "...Result - Failure", the record as detail.

        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
        """
        cloud = cloud_for(stage(queue("Failures"), """
            Results:
              Type: AWS::Events::EventBus
              Properties: {Name: results}
            FailedInvocations:
              Type: AWS::Events::Rule
              Properties:
                EventBusName: !GetAtt Results.Name
                EventPattern: {source: [lambda]}
                Targets: [{Arn: !GetAtt Failures.Arn, Id: failures}]
        """, rule_consumer(properties="""
            EventInvokeConfig:
              DestinationConfig:
                OnFailure: {Type: EventBridge, Destination: !GetAtt Results.Arn}
        """)))

        put_order(cloud, {"order_id": "o-1"})
        cloud.run_until_idle()

        [event] = records(cloud, "Failures")
        assert event["source"] == "lambda"
        assert event["detail-type"] == "Lambda Function Invocation Result - Failure"
        assert cloud.function("Consumer").arn + ":$LATEST" in event["resources"]
        assert_failure_record(event["detail"], cloud)

    def test_on_failure_lambda_destination_is_invoked_with_the_invocation_record(self, cloud_for):
        """OnFailure to a Lambda function: the record is that function's event.

        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
        """
        cloud = cloud_for(stage("""
            FailureHandler:
              Type: AWS::Serverless::Function
              Properties:
                Handler: behaviours.succeed
        """, rule_consumer(properties="""
            EventInvokeConfig:
              DestinationConfig:
                OnFailure: {Type: Lambda, Destination: !GetAtt FailureHandler.Arn}
        """)))

        put_order(cloud, {"order_id": "o-1"})
        cloud.run_until_idle()

        [invocation] = cloud.invocations("FailureHandler")
        assert_failure_record(invocation.event, cloud)
        assert invocation.trigger == "async"


# -- SNS ---------------------------------------------------------------------------------------------


class TestSnsSubscriptions:
    def test_sns_invokes_a_subscribed_function_with_the_notification(self, cloud_for):
        """SNS invokes a subscribed function asynchronously with a Records[].Sns event.

        https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html
        """
        cloud = cloud_for(sns_consumer())

        publish(cloud, {"order_id": "o-1"}, kind="order")
        cloud.run_until_idle()

        [invocation] = cloud.invocations("Consumer")
        [record] = invocation.event["Records"]
        assert record["EventSource"] == "aws:sns"
        assert record["Sns"]["TopicArn"] == cloud.physical_id("Topic")
        assert json.loads(record["Sns"]["Message"]) == {"order_id": "o-1"}
        assert record["Sns"]["MessageAttributes"] == {"kind": {"Type": "String", "Value": "order"}}
        assert invocation.trigger == "async"

    def test_filter_policy_on_message_attributes_drops_other_messages(self, cloud_for):
        """A subscription's FilterPolicy (scope MessageAttributes, the default) decides what it receives.

        https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html
        """
        cloud = cloud_for(sns_consumer(subscription="FilterPolicy: {kind: [order]}"))

        publish(cloud, {"order_id": "o-1"}, kind="order")
        publish(cloud, {"order_id": "o-2"}, kind="refund")
        publish(cloud, {"order_id": "o-3"})
        cloud.run_until_idle()

        bodies = [json.loads(i.event["Records"][0]["Sns"]["Message"]) for i in cloud.invocations("Consumer")]
        assert bodies == [{"order_id": "o-1"}]

    def test_filter_policy_scope_message_body_filters_on_the_json_body(self, cloud_for):
        """FilterPolicyScope MessageBody applies the filter policy to the message's JSON body.

        https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering-scope.html
        """
        cloud = cloud_for(sns_consumer(subscription="""
            FilterPolicy: {status: [paid]}
            FilterPolicyScope: MessageBody
        """))

        publish(cloud, {"order_id": "o-1", "status": "paid"})
        publish(cloud, {"order_id": "o-2", "status": "open"}, status="paid")
        cloud.run_until_idle()

        bodies = [json.loads(i.event["Records"][0]["Sns"]["Message"]) for i in cloud.invocations("Consumer")]
        assert bodies == [{"order_id": "o-1", "status": "paid"}]

    @pytest.mark.parametrize("raw", [True, False])
    def test_sns_to_sqs_subscription_filters_and_delivers_raw_or_enveloped(self, cloud_for, raw):
        """AWS::SNS::Subscription to SQS with FilterPolicy; RawMessageDelivery drops the JSON envelope.

        https://docs.aws.amazon.com/sns/latest/dg/sns-large-payload-raw-message-delivery.html
        https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html
        """
        cloud = cloud_for(f"""
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
                RawMessageDelivery: {str(raw).lower()}
                FilterPolicy: {{kind: [order]}}
        """)

        publish(cloud, {"order_id": "o-1"}, kind="order")
        publish(cloud, {"order_id": "o-2"}, kind="refund")

        [body] = records(cloud, "Orders")
        if raw:
            assert body == {"order_id": "o-1"}
        else:
            assert body["Type"] == "Notification"
            assert json.loads(body["Message"]) == {"order_id": "o-1"}


# -- input transformation ------------------------------------------------------------------------------


def shaped(target_input: str) -> str:
    """A rule with two targets, the function Consumer and the queue Shaped, that shape their input alike."""
    input_lines = textwrap.indent(textwrap.dedent(target_input).strip("\n"), "      ")
    return f"""\
Bus:
  Type: AWS::Events::EventBus
  Properties: {{Name: shop}}
Shaped:
  Type: AWS::SQS::Queue
Consumer:
  Type: AWS::Serverless::Function
  Properties:
    Handler: behaviours.succeed
Rule:
  Type: AWS::Events::Rule
  Properties:
    EventBusName: !GetAtt Bus.Name
    EventPattern: {{source: [shop.orders]}}
    Targets:
    - Arn: !GetAtt Consumer.Arn
      Id: function
{input_lines}
    - Arn: !GetAtt Shaped.Arn
      Id: queue
{input_lines}"""


class TestInputTransformation:
    def delivered(self, cloud: Any) -> tuple[Any, str]:
        """What the function and the queue received for one OrderPlaced event."""
        put_order(cloud, {"order_id": "o-1", "total": 42, "lines": [{"sku": "tea"}]})
        cloud.run_until_idle()
        [invocation] = cloud.invocations("Consumer")
        [body] = cloud.messages("Shaped")
        return invocation.event, body

    def test_input_replaces_the_event_with_constant_json(self, cloud_for):
        """Input: the target receives the given JSON text instead of the event.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
        """
        cloud = cloud_for(shaped("""Input: '{"task": "recount"}'"""))

        event, body = self.delivered(cloud)

        assert event == {"task": "recount"}
        assert json.loads(body) == {"task": "recount"}

    def test_input_path_sends_part_of_the_event(self, cloud_for):
        """InputPath: the target receives the part of the event the JSONPath selects.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
        """
        cloud = cloud_for(shaped("InputPath: $.detail"))

        event, body = self.delivered(cloud)

        assert event == {"order_id": "o-1", "total": 42, "lines": [{"sku": "tea"}]}
        assert json.loads(body) == event

    def test_input_transformer_fills_the_template_from_the_paths_map(self, cloud_for):
        """InputTransformer: a string value is quoted outside a JSON string and inserted as text inside one.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
        """
        cloud = cloud_for(shaped("""
            InputTransformer:
              InputPathsMap: {order: $.detail.order_id, total: $.detail.total, sku: "$.detail.lines[0].sku"}
              InputTemplate: '{"order": <order>, "total": <total>, "note": "order <order>: <sku>", "rule": <aws.events.rule-name>}'
        """))

        event, body = self.delivered(cloud)

        rule_name = boto3.client("events").list_rules(EventBusName="shop")["Rules"][0]["Name"]
        assert event == {"order": "o-1", "total": 42, "note": "order o-1: tea", "rule": rule_name}
        assert json.loads(body) == event

    def test_input_transformer_string_template_reaches_the_queue_as_text(self, cloud_for):
        """A template that is a JSON string is sent as that text: the queue's body keeps its quotes.

        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
        """
        cloud = cloud_for(shaped("""
            InputTransformer:
              InputPathsMap: {order: $.detail.order_id}
              InputTemplate: '"order <order> placed"'
        """))

        event, body = self.delivered(cloud)

        assert event == "order o-1 placed"
        assert body == '"order o-1 placed"'


# -- the Invoke API ----------------------------------------------------------------------------------------


class TestInvokeApi:
    def test_request_response_invoke_runs_the_handler_and_returns_its_result(self, cloud_for):
        """Invoke (RequestResponse): the response Payload is the handler's JSON result, StatusCode 200.

        https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html
        """
        cloud = cloud_for(sns_consumer("async_handlers.echo"))

        response = boto3.client("lambda").invoke(
            FunctionName=cloud.physical_id("Consumer"), Payload=json.dumps({"order_id": "o-1"}))

        [invocation] = cloud.invocations("Consumer")
        assert response["StatusCode"] == 200
        assert "FunctionError" not in response
        assert json.loads(response["Payload"].read()) == {
            "received": {"order_id": "o-1"}, "request_id": invocation.request_id}
        assert invocation.trigger == "sync"

    def test_request_response_invoke_reports_an_unhandled_error_and_is_not_retried(self, cloud_for):
        """A synchronous invocation that raises: FunctionError "Unhandled", the error as payload, no retry.

        https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-retries.html
        """
        cloud = cloud_for(sns_consumer("async_handlers.reject"))

        response = boto3.client("lambda").invoke(
            FunctionName=cloud.physical_id("Consumer"), Payload=json.dumps({"order_id": "o-1"}))
        cloud.run_until_idle()

        assert response["StatusCode"] == 200
        assert response["FunctionError"] == "Unhandled"
        payload = json.loads(response["Payload"].read())
        assert payload["errorType"] == "ValueError"
        assert payload["errorMessage"] == "order o-1 rejected"
        assert len(cloud.invocations("Consumer")) == 1

    def test_event_invoke_is_queued_with_202_and_runs_later(self, cloud_for):
        """Invoke with InvocationType Event: Lambda queues the event, answers 202, and runs it from its queue.

        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async.html
        """
        cloud = cloud_for(sns_consumer("async_handlers.echo"))

        response = boto3.client("lambda").invoke(
            FunctionName=cloud.physical_id("Consumer"), InvocationType="Event",
            Payload=json.dumps({"order_id": "o-1"}))
        assert response["StatusCode"] == 202
        assert cloud.invocations("Consumer") == []
        cloud.run_until_idle()

        [invocation] = cloud.invocations("Consumer")
        assert invocation.event == {"order_id": "o-1"}
        assert invocation.trigger == "async"

    def test_dry_run_invoke_validates_and_runs_nothing(self, cloud_for):
        """Invoke with InvocationType DryRun: 204, and the function does not run.

        https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html
        """
        cloud = cloud_for(sns_consumer())

        response = boto3.client("lambda").invoke(FunctionName=cloud.physical_id("Consumer"), InvocationType="DryRun")
        cloud.run_until_idle()

        assert response["StatusCode"] == 204
        assert cloud.invocations("Consumer") == []

    def test_invoke_with_a_payload_that_is_not_json_is_rejected(self, cloud_for):
        """A payload that is not JSON: InvalidRequestContentException, and nothing runs.

        https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors
        """
        cloud = cloud_for(sns_consumer())

        with pytest.raises(ClientError) as raised:
            boto3.client("lambda").invoke(FunctionName=cloud.physical_id("Consumer"), Payload=b"{order: o-1}")

        assert raised.value.response["Error"]["Code"] == "InvalidRequestContentException"
        assert cloud.invocations("Consumer") == []


# -- concurrency -------------------------------------------------------------------------------------------------


class TestThrottling:
    def test_throttled_async_events_wait_and_run_without_spending_retries(self, cloud_for):
        """With reserved concurrency 1, extra async events are throttled, wait in the queue, and all run.

        Throttles are not function errors: no retry is spent, each event runs once.
        https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
        https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
        """
        cloud = cloud_for(stage(queue("Results"), rule_consumer("behaviours.succeed", """
            ReservedConcurrentExecutions: 1
            Timeout: 60
            EventInvokeConfig:
              MaximumRetryAttempts: 0
              DestinationConfig:
                OnSuccess: {Type: SQS, Destination: !GetAtt Results.Arn}
        """)))
        cloud.function("Consumer").duration = 30.0

        for n in range(3):
            put_order(cloud, {"order_id": f"o-{n}"})
        cloud.run_until_idle()

        invocations = cloud.invocations("Consumer")
        assert sorted(i.event["detail"]["order_id"] for i in invocations) == ["o-0", "o-1", "o-2"]
        starts = [i.time - invocations[0].time for i in invocations]
        assert starts == pytest.approx([0, 30, 60])  # one at a time
        assert [r["requestContext"]["approximateInvokeCount"] for r in records(cloud, "Results")] == [1, 1, 1]
