"""Hooks into moto where it would otherwise raise or do nothing: the Lambda service's doors.

moto raises NotImplementedError when an EventBridge rule targets a Lambda
function, an SNS topic or a Kinesis stream, and its Lambda runs no code without
Docker. While a LocalCloud is open, these hooks hand such deliveries to it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import TYPE_CHECKING, Any, Callable

from moto.awslambda.models import LambdaBackend
from moto.events.models import Rule
from moto.events.utils import EventTemplateParser
from moto.sns.models import Subscription
from moto.utilities.arns import parse_arn

if TYPE_CHECKING:
    from .cloud import LocalCloud

_active: "LocalCloud | None" = None
_originals: dict[str, Callable[..., Any]] = {}

#: EventBridge delivers these itself; moto already does it right.
_MOTO_TARGETS = ("logs", "events")


def active_cloud() -> "LocalCloud":
    if _active is None:
        raise RuntimeError("no LocalCloud is open")
    return _active


def _iso_time(event: dict[str, Any]) -> dict[str, Any]:
    if isinstance(event.get("time"), (int, float)):
        event = dict(event)
        event["time"] = dt.datetime.fromtimestamp(float(event["time"]), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def _json_path(document: Any, path: str) -> Any:
    """The simple JSONPath EventBridge's InputPath and PartitionKeyPath use ($.a.b)."""
    value = document
    for part in path.lstrip("$").strip(".").split("."):
        if not part:
            continue
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What a target receives: the event, Input, InputPath or InputTransformer output.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
    """
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        return _json_path(event, target["InputPath"])
    transformer = target.get("InputTransformer")
    if transformer:
        rendered = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
        return rendered
    return event


def _send_to_targets(rule: Rule, original_event: dict[str, Any], transform_input: bool = True) -> None:
    if not rule.event_pattern.matches_event(original_event):
        return
    cloud = active_cloud()
    event = _iso_time({**original_event, "account": original_event.get("account") or rule.account_id})
    moto_targets = []
    for target in rule.targets:
        arn = parse_arn(target["Arn"])
        if arn.service in _MOTO_TARGETS:
            moto_targets.append(target)
            continue
        payload = target_input(target, event) if transform_input else event
        cloud.record_route(rule.name, target["Arn"])
        if arn.service == "lambda":
            cloud.invoke_async(target["Arn"], payload)
        elif arn.service == "sqs":
            group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
            cloud.deliver_to_queue(arn.resource_id, payload, group_id=group_id, from_service="EventBridge")
        elif arn.service == "sns":
            cloud.sns_backend.publish(payload if isinstance(payload, str) else json.dumps(payload), arn=target["Arn"])
        elif arn.service == "kinesis":
            path = (target.get("KinesisParameters") or {}).get("PartitionKeyPath")
            key = _json_path(event, path) if path else None
            cloud.kinesis_backend.put_record(
                stream_arn=target["Arn"], stream_name=arn.resource_id.split("/")[-1],
                partition_key=str(key if key is not None else event["id"]), explicit_hash_key=None,
                # moto keeps record data base64-encoded, as the API carries it.
                data=base64.b64encode((payload if isinstance(payload, str) else json.dumps(payload)).encode()).decode(),
            )
        else:
            cloud.warn(f"rule {rule.name}: the local cloud does not deliver to {arn.service} targets ({target['Arn']})")
    if moto_targets:
        saved = rule.targets
        rule.targets = moto_targets
        try:
            _originals["send_to_targets"](rule, original_event, transform_input)
        finally:
            rule.targets = saved


def sns_lambda_event(subscription: Subscription, message: str, message_id: str, subject: str | None,
                     message_attributes: dict[str, Any] | None, when: float) -> dict[str, Any]:
    """The event SNS sends to a subscribed function.

    https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html
    """
    attributes = {
        name: {"Type": value.get("Type") or value.get("DataType"), "Value": value.get("Value") or value.get("StringValue")}
        for name, value in (message_attributes or {}).items()
    }
    region = subscription.topic.arn.split(":")[3]
    return {
        "Records": [
            {
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription.arn,
                "EventSource": "aws:sns",
                "Sns": {
                    "SignatureVersion": "1",
                    "Timestamp": dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": f"https://sns.{region}.amazonaws.com/SimpleNotificationService-local.pem",
                    "MessageId": message_id,
                    "Message": message,
                    "MessageAttributes": attributes,
                    "Type": "Notification",
                    "UnsubscribeUrl": f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription.arn}",
                    "TopicArn": subscription.topic.arn,
                    "Subject": subject,
                },
            }
        ]
    }


def _subscription_publish(subscription: Subscription, message: str, message_id: str, subject: str | None = None,
                          message_attributes: dict[str, Any] | None = None, group_id: str | None = None,
                          deduplication_id: str | None = None, message_structure: str | None = None) -> None:
    if subscription.protocol != "lambda":
        _originals["publish"](subscription, message, message_id, subject, message_attributes,
                              group_id, deduplication_id, message_structure)
        return
    if subscription._filter_policy_matcher is not None and not subscription._filter_policy_matcher.matches(message_attributes, message):
        return
    if message_structure == "json":
        message = subscription._parse_message_structure(message, subscription.protocol)
    cloud = active_cloud()
    event = sns_lambda_event(subscription, message, message_id, subject, message_attributes, cloud.clock.now())
    cloud.invoke_async(subscription.endpoint, event)


def _lambda_invoke(backend: LambdaBackend, function_name: str, qualifier: str | None, body: Any,
                   headers: Any, response_headers: Any) -> str | bytes | None:
    cloud = active_cloud()
    function = cloud.find_function(function_name)
    if function is None:
        return _originals["invoke"](backend, function_name, qualifier, body, headers, response_headers)
    event = json.loads(body) if body else {}
    if headers.get("X-Amz-Invocation-Type") == "Event":
        cloud.invoke_async(function.arn, event)
        return ""
    invocation = cloud.invoke_now(function, event)
    if invocation.error is not None:
        response_headers["x-amz-function-error"] = "Unhandled"
    response_headers["x-amz-executed-version"] = "$LATEST"
    return json.dumps(invocation.result)


def install(cloud: "LocalCloud") -> None:
    global _active
    if _active is not None:
        raise RuntimeError("a LocalCloud is already open: close it before opening another")
    _active = cloud
    _originals["send_to_targets"] = Rule.send_to_targets
    _originals["publish"] = Subscription.publish
    _originals["invoke"] = LambdaBackend.invoke
    Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign]
    Subscription.publish = _subscription_publish  # type: ignore[method-assign]
    LambdaBackend.invoke = _lambda_invoke  # type: ignore[method-assign]


def uninstall() -> None:
    global _active
    if _originals:
        Rule.send_to_targets = _originals.pop("send_to_targets")  # type: ignore[method-assign]
        Subscription.publish = _originals.pop("publish")  # type: ignore[method-assign]
        LambdaBackend.invoke = _originals.pop("invoke")  # type: ignore[method-assign]
    _active = None


def new_request_id() -> str:
    return str(uuid.uuid4())
