"""Hooks into moto where it would otherwise raise or do nothing: the Lambda service's doors.

moto raises NotImplementedError when an EventBridge rule targets a Lambda
function, an SNS topic or a Kinesis stream, and its Lambda runs no code without
Docker. While a LocalCloud is open, these hooks hand such deliveries to it. SNS
deliveries to people (email, SMS, mobile push) are recorded in `cloud.notifications`,
never sent.
"""

from __future__ import annotations

import base64
import copy
import functools
import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import jsonpath_ng.ext
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.events.models import Archive, Replay, ReplayState, Rule, events_backends
from moto.sns.models import Subscription
from moto.core.utils import camelcase_to_underscores, unix_time_millis
import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.sqs.models import Queue, SQSBackend
from moto.utilities.arns import parse_arn

from .errors import EdakitError

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
    """The simple JSONPath EventBridge's InputPath and PartitionKeyPath use ($.a.b, $.items[0])."""
    value = document
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path.strip().removeprefix("$")):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(value, list) or index >= len(value):
                return None
            value = value[index]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    return value


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def render_input_template(template: str, variables: dict[str, Any]) -> str:
    """Fill an InputTemplate's <placeholders> as EventBridge does; return the text the target gets.

    Inside a JSON string a value is inserted as text; elsewhere it is inserted as
    JSON, so a string value gets its quotes (moto inserts it bare, which makes
    the output invalid JSON). A variable whose path matched nothing is not
    created: its placeholder stays as written.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
    """
    out: list[str] = []
    in_string = False
    position = 0
    while position < len(template):
        char = template[position]
        match = _PLACEHOLDER.match(template, position) if char == "<" else None
        if match and match.group(1) in variables:
            value = variables[match.group(1)]
            out.append(value if in_string and isinstance(value, str) else _minified(value))
            position = match.end()
            continue
        if char == "\\" and in_string:
            out.append(template[position:position + 2])
            position += 2
            continue
        if char == '"':
            in_string = not in_string
        out.append(char)
        position += 1
    return "".join(out)


def _minified(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def target_input(target: dict[str, Any], event: dict[str, Any], rule: Any = None) -> dict[str, Any] | str:
    """What a target receives: the event itself, or the text that Input, InputPath or InputTransformer make.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
    """
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        return _minified(_json_path(event, target["InputPath"]))
    transformer = target.get("InputTransformer")
    if transformer:
        variables: dict[str, Any] = {}
        for name, path in (transformer.get("InputPathsMap") or {}).items():
            value = _json_path(event, path)
            if value is not None:
                variables[name] = value
        variables["aws.events.event"] = {k: v for k, v in event.items() if k != "detail"}
        variables["aws.events.event.json"] = event
        variables["aws.events.event.ingestion-time"] = event.get("time")
        if rule is not None:
            variables["aws.events.rule-name"] = rule.name
            variables["aws.events.rule-arn"] = rule.arn
        return render_input_template(transformer.get("InputTemplate", ""), variables)
    return event


def _as_text(payload: dict[str, Any] | str) -> str:
    return payload if isinstance(payload, str) else json.dumps(payload)


def _as_lambda_payload(payload: dict[str, Any] | str) -> Any:
    """Lambda receives JSON: transformed text that parses is passed parsed, other text as a JSON string."""
    if not isinstance(payload, str):
        return payload
    try:
        return json.loads(payload)
    except ValueError:
        return payload


def _send_to_targets(rule: Rule, original_event: dict[str, Any], transform_input: bool = True) -> None:
    # A disabled rule matches nothing; moto delivers whatever the rule's State.
    if rule.state == "DISABLED":
        return
    # moto keeps its ingestion time inside the event; no target sees that field on AWS.
    event = {k: v for k, v in original_event.items() if k != "ingestion-time"}
    event = _iso_time({**event, "account": event.get("account") or rule.account_id})
    # Match the event as AWS shows it (time as ISO-8601 text), not moto's Unix number.
    if not rule.event_pattern.matches_event(event):
        return
    cloud = active_cloud()
    moto_targets = []
    for target in rule.targets:
        arn = parse_arn(target["Arn"])
        if arn.service in _MOTO_TARGETS:
            moto_targets.append(target)
            continue
        payload = target_input(target, event, rule) if transform_input else event
        cloud.record_route(rule.name, target["Arn"])
        if arn.service == "lambda":
            cloud.invoke_async(target["Arn"], _as_lambda_payload(payload))
        elif arn.service == "sqs":
            group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
            cloud.deliver_to_queue(arn.resource_id, payload, group_id=group_id, from_service="EventBridge")
        elif arn.service == "sns":
            cloud.sns_backend.publish(_as_text(payload), arn=target["Arn"])
        elif arn.service == "kinesis":
            path = (target.get("KinesisParameters") or {}).get("PartitionKeyPath")
            key = _json_path(event, path) if path else None
            cloud.kinesis_backend.put_record(
                stream_arn=target["Arn"], stream_name=arn.resource_id.split("/")[-1],
                partition_key=str(key if key is not None else event["id"]), explicit_hash_key=None,
                # moto keeps record data base64-encoded, as the API carries it.
                data=base64.b64encode(_as_text(payload).encode()).decode(),
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


#: Application-to-person protocols: SNS sends these to people (or their devices), so the
#: local cloud records each delivery in `cloud.notifications` and sends nothing.
#: https://docs.aws.amazon.com/sns/latest/dg/sns-user-notifications.html
A2P_PROTOCOLS = ("email", "email-json", "sms", "application")
#: The subject SNS gives an email when the publisher set none.
DEFAULT_EMAIL_SUBJECT = "AWS Notification Message"


@dataclass(frozen=True)
class Notification:
    """One application-to-person delivery, as its recipient would have received it.

    `message` is the text for the subscription's protocol (the protocol's key of a
    MessageStructure json message, else `default`); for email-json it is the JSON
    document SNS sends. `subject` is what an email shows (None for sms and
    application: they have no subject). `message_attributes` are the publisher's,
    as SNS carries them: {name: {"Type": ..., "Value": ...}}.
    """

    time: float
    topic_arn: str
    subscription_arn: str
    protocol: str
    endpoint: str
    subject: str | None
    message: str
    message_attributes: dict[str, Any]
    message_id: str


def _a2p_notification(subscription: Subscription, message: str, message_id: str, subject: str | None,
                      message_attributes: dict[str, Any] | None, when: float) -> Notification:
    protocol = subscription.protocol
    if protocol in ("email", "email-json"):
        subject = subject or DEFAULT_EMAIL_SUBJECT
    else:
        subject = None  # an SMS or a push notification shows no subject
    if protocol == "email-json":
        region = subscription.topic.arn.split(":")[3]
        message = json.dumps({
            "Type": "Notification", "MessageId": message_id, "TopicArn": subscription.topic.arn,
            "Subject": subject, "Message": message,
            "Timestamp": dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "SignatureVersion": "1", "Signature": "EXAMPLE",
            "SigningCertURL": f"https://sns.{region}.amazonaws.com/SimpleNotificationService-local.pem",
            "UnsubscribeURL": f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={subscription.arn}",
        }, indent=2)
    return Notification(time=when, topic_arn=subscription.topic.arn, subscription_arn=subscription.arn,
                        protocol=protocol, endpoint=subscription.endpoint, subject=subject, message=message,
                        message_attributes=dict(message_attributes or {}), message_id=message_id)


def _subscription_publish(subscription: Subscription, message: str, message_id: str, subject: str | None = None,
                          message_attributes: dict[str, Any] | None = None, group_id: str | None = None,
                          deduplication_id: str | None = None, message_structure: str | None = None) -> None:
    if subscription.protocol not in ("lambda", *A2P_PROTOCOLS):
        _originals["publish"](subscription, message, message_id, subject, message_attributes,
                              group_id, deduplication_id, message_structure)
        return
    if subscription._filter_policy_matcher is not None and not subscription._filter_policy_matcher.matches(message_attributes, message):
        return
    if message_structure == "json":
        message = subscription._parse_message_structure(message, subscription.protocol)
    cloud = active_cloud()
    if subscription.protocol in A2P_PROTOCOLS:
        # Recorded, never sent: no email, text message or push leaves the machine.
        cloud.notifications.append(
            _a2p_notification(subscription, message, message_id, subject, message_attributes, cloud.clock.now()))
        return
    event = sns_lambda_event(subscription, message, message_id, subject, message_attributes, cloud.clock.now())
    cloud.invoke_async(subscription.endpoint, event)


def _lambda_invoke(backend: LambdaBackend, function_name: str, qualifier: str | None, body: Any,
                   headers: Any, response_headers: Any) -> str | bytes | None:
    cloud = active_cloud()
    function = cloud.find_function(function_name)
    if function is None:
        return _originals["invoke"](backend, function_name, qualifier, body, headers, response_headers)
    try:
        event = json.loads(body) if body else {}
    except ValueError as exc:
        raise LambdaClientError("InvalidRequestContentException",
                                f"Could not parse request body into json: {exc}") from None
    invocation_type = headers.get("X-Amz-Invocation-Type")
    if invocation_type == "DryRun":
        return ""  # validates the request and the caller's permission; runs nothing
    if invocation_type == "Event":
        cloud.invoke_async(function.arn, event)
        return ""
    invocation = cloud.invoke_now(function, event)
    if invocation.error is not None:
        response_headers["x-amz-function-error"] = "Unhandled"
    response_headers["x-amz-executed-version"] = "$LATEST"
    return json.dumps(invocation.result)


def _get_configuration(function: LambdaFunction, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """moto's function configuration, with the DeadLetterConfig that moto itself drops."""
    config = _originals["get_configuration"](function, *args, **kwargs)
    dead_letter = getattr(function, "dead_letter_config", None)
    if dead_letter:
        config["DeadLetterConfig"] = dict(dead_letter)
    return config


def _update_configuration(function: LambdaFunction, config_updates: dict[str, Any]) -> dict[str, Any]:
    if "DeadLetterConfig" in config_updates:
        function.dead_letter_config = dict(config_updates["DeadLetterConfig"] or {})  # type: ignore[attr-defined]
    result = _originals["update_configuration"](function, config_updates)
    # New Environment variables apply from the next invocation, as on AWS.
    running = active_cloud().find_function(function.function_name) if _active is not None else None
    if running is not None and "Environment" in config_updates:
        running.environment = dict((config_updates["Environment"] or {}).get("Variables") or {})
    return result


def _replay_events(replay: Replay, archive: Archive) -> None:
    """StartReplay sends back the archived events that occurred between EventStartTime and
    EventEndTime, to the rules named in Destination.FilterArns (every rule of the bus without
    it), each event marked with a `replay-name` field. moto replays every archived event to
    every rule, whatever the times and FilterArns.
    https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_StartReplay.html
    """
    start, end = float(replay.event_start_time), float(replay.event_end_time)
    only = set(replay.destination.get("FilterArns") or [])
    backend = events_backends[replay.account_id][replay.region]
    bus = backend.describe_event_bus(replay.destination["Arn"].split("/")[-1])
    for event in archive.events:
        occurred = event.get("time")
        if isinstance(occurred, str):
            occurred = dt.datetime.fromisoformat(occurred.replace("Z", "+00:00")).timestamp()
        if not start <= float(occurred) <= end:
            continue
        for rule in list(bus.rules.values()):
            if only and rule.arn not in only:
                continue
            rule.send_to_targets({**event, "replay-name": replay.name})
    replay.state = ReplayState.COMPLETED
    replay.end_time = dt.datetime.now(dt.timezone.utc).timestamp()


def _put_event_invoke_config(backend: LambdaBackend, function_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """PutFunctionEventInvokeConfig overwrites the function's configuration (moto appends and keeps the first)."""
    backend.get_function(function_name).event_invoke_config = []
    return _originals["put_event_invoke_config"](backend, function_name, config)


def _update_event_invoke_config(backend: LambdaBackend, function_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """UpdateFunctionEventInvokeConfig changes only the settings it names (moto replaces them all)."""
    existing = backend.get_function(function_name).event_invoke_config
    merged = {**(existing[-1].config if existing else {}), **config}
    return _put_event_invoke_config(backend, function_name, merged)


def _create_event_source_mapping(backend: LambdaBackend, spec: dict[str, Any]) -> Any:
    """Create the mapping in moto, then detach moto's own poller at once (see LocalCloud._detach_moto_pollers)."""
    mapping = _originals["create_event_source_mapping"](backend, spec)
    active_cloud()._detach_moto_pollers()
    return mapping


def _is_message_valid_based_on_retention_period(backend: SQSBackend, queue_name: str, message: Any) -> bool:
    """moto's own check, without rebuilding every queue attribute (and counting every
    message) on each message it receives: the same answer at a fraction of the cost."""
    retention_period = int(backend.get_queue(queue_name).message_retention_period)
    return retention_period + message.sent_timestamp / 1000 > dt.datetime.now(dt.timezone.utc).timestamp()


def _visible_messages(queue: Queue) -> list[Any]:
    """moto's Queue.messages (visible and not delayed), reading the clock once per receive.

    moto's own property reads the clock twice for every message of the queue, on every
    receive: a backlog of a few hundred messages made each receive cost milliseconds.
    The same messages, in the same order."""
    now = unix_time_millis()
    return [m for m in queue._messages if now > m.visible_at and now >= m.delayed_until]


class _CopyExceptTables:
    """moto.dynamodb.models' `copy`, except that a Table is not copied.

    moto backs up every table a transaction names with a deep copy of the whole table,
    and puts the copy back if the transaction is cancelled: each transaction cost grew
    with the table. `_transact_write_items` backs up only the items it names instead."""

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _transaction_targets(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[tuple[Table, Any, Any]]:
    """(table, hash key, range key) of each item a transaction names, once each; an item
    whose key cannot be read is left to moto, which refuses the transaction."""
    targets: dict[tuple[str, Any, Any], tuple[Table, Any, Any]] = {}
    for entry in transact_items:
        try:
            _, op = next(iter(entry.items()))
            table = backend.tables[op["TableName"]]
            key = op["Item"] if "Item" in op else op["Key"]
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        except (AttributeError, KeyError, StopIteration, TypeError):
            continue
        targets.setdefault((table.name, hash_value, range_value), (table, hash_value, range_value))
    return list(targets.values())


def _transact_write_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems, all or nothing as on AWS, backing up the items it names
    rather than deep-copying their whole tables.
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html"""
    backups = []
    for table, hash_value, range_value in _transaction_targets(backend, transact_items[:100]):
        stream = table.stream_shard
        backups.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value)),
                        None if stream is None else len(stream.items)))
    try:
        _originals["transact_write_items"](backend, transact_items)
    except Exception:
        for table, hash_value, range_value, item, stream_length in reversed(backups):
            _put_back(table, hash_value, range_value, item)
            if stream_length is not None:
                del table.stream_shard.items[stream_length:]
        raise


def _put_back(table: Table, hash_value: Any, range_value: Any, item: Any) -> None:
    """Make the item at this key `item` again (None: no item), writing no stream record."""
    if range_value is None:
        items, key = table.items, hash_value
    else:
        items, key = table.items.setdefault(hash_value, {}), range_value
    if item is None:
        items.pop(key, None)
    else:
        items[key] = item
    if range_value is not None and not items:
        del table.items[hash_value]


class _QueueAttributes(Mapping[str, Any]):
    """moto's Queue.attributes, worked out one attribute at a time.

    moto builds the whole dict, counting every message of the queue for the approximate
    counts, each time it reads one attribute, and it reads ContentBasedDeduplication on
    every send: the cost of a send grows with the queue's depth. The same names and values,
    each computed only when read."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        names = list(queue.BASE_ATTRIBUTES)
        names += list(queue.FIFO_ATTRIBUTES) if queue.fifo_queue else []
        names += list(queue.KMS_ATTRIBUTES) if queue.kms_master_key_id else []
        names += [n for n, v in (("Policy", queue.policy), ("RedrivePolicy", queue.redrive_policy))
                  if v and n not in names]
        self._names = names

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        if name == "Policy" and self._queue.policy:
            return self._queue.policy
        if name == "RedrivePolicy" and self._queue.redrive_policy:
            return json.dumps(self._queue.redrive_policy)
        value = getattr(self._queue, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def install(cloud: "LocalCloud") -> None:
    global _active
    if _active is not None:
        raise EdakitError(
            f"a LocalCloud is already open (on {_active.template_path}): leave its `with` block "
            "(or call its __exit__) before opening another. moto's state belongs to the whole "
            "process, so one local cloud runs at a time."
        )
    _active = cloud
    _originals["send_to_targets"] = Rule.send_to_targets
    _originals["replay_events"] = Replay.replay_events
    Replay.replay_events = _replay_events  # type: ignore[method-assign]
    # moto parses the same few JSONPaths (an archive's input template) for every event, and
    # jsonpath_ng builds its parser anew each time (about 15 ms): parse each path once.
    _originals["jsonpath_parse"] = jsonpath_ng.ext.parse
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)
    _originals["publish"] = Subscription.publish
    _originals["invoke"] = LambdaBackend.invoke
    _originals["retention"] = SQSBackend.is_message_valid_based_on_retention_period
    SQSBackend.is_message_valid_based_on_retention_period = _is_message_valid_based_on_retention_period  # type: ignore[method-assign]
    _originals["queue_attributes"] = Queue.__dict__["attributes"]
    Queue.attributes = property(_QueueAttributes)  # type: ignore[assignment,method-assign]
    _originals["queue_messages"] = Queue.__dict__["messages"]
    Queue.messages = property(_visible_messages)  # type: ignore[assignment,method-assign]
    _originals["transact_write_items"] = DynamoDBBackend.transact_write_items
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    _originals["dynamodb_copy"] = dynamodb_models.copy  # type: ignore[attr-defined]
    dynamodb_models.copy = _CopyExceptTables  # type: ignore[attr-defined,assignment]
    _originals["create_event_source_mapping"] = LambdaBackend.create_event_source_mapping
    _originals["get_configuration"] = LambdaFunction.get_configuration
    _originals["update_configuration"] = LambdaFunction.update_configuration
    _originals["put_event_invoke_config"] = LambdaBackend.put_function_event_invoke_config
    _originals["update_event_invoke_config"] = LambdaBackend.update_function_event_invoke_config
    Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign]
    Subscription.publish = _subscription_publish  # type: ignore[method-assign]
    LambdaBackend.invoke = _lambda_invoke  # type: ignore[method-assign]
    LambdaBackend.create_event_source_mapping = _create_event_source_mapping  # type: ignore[method-assign]
    LambdaFunction.get_configuration = _get_configuration  # type: ignore[method-assign]
    LambdaFunction.update_configuration = _update_configuration  # type: ignore[method-assign]
    LambdaBackend.put_function_event_invoke_config = _put_event_invoke_config  # type: ignore[method-assign]
    LambdaBackend.update_function_event_invoke_config = _update_event_invoke_config  # type: ignore[method-assign]


def uninstall() -> None:
    global _active
    if _originals:
        Rule.send_to_targets = _originals.pop("send_to_targets")  # type: ignore[method-assign]
        Replay.replay_events = _originals.pop("replay_events")  # type: ignore[method-assign]
        jsonpath_ng.ext.parse = _originals.pop("jsonpath_parse")
        Subscription.publish = _originals.pop("publish")  # type: ignore[method-assign]
        LambdaBackend.invoke = _originals.pop("invoke")  # type: ignore[method-assign]
        SQSBackend.is_message_valid_based_on_retention_period = _originals.pop("retention")  # type: ignore[method-assign]
        Queue.attributes = _originals.pop("queue_attributes")  # type: ignore[method-assign]
        Queue.messages = _originals.pop("queue_messages")  # type: ignore[method-assign]
        DynamoDBBackend.transact_write_items = _originals.pop("transact_write_items")  # type: ignore[method-assign]
        dynamodb_models.copy = _originals.pop("dynamodb_copy")  # type: ignore[attr-defined]
        LambdaBackend.create_event_source_mapping = _originals.pop("create_event_source_mapping")  # type: ignore[method-assign]
        LambdaFunction.get_configuration = _originals.pop("get_configuration")  # type: ignore[method-assign]
        LambdaFunction.update_configuration = _originals.pop("update_configuration")  # type: ignore[method-assign]
        LambdaBackend.put_function_event_invoke_config = _originals.pop("put_event_invoke_config")  # type: ignore[method-assign]
        LambdaBackend.update_function_event_invoke_config = _originals.pop("update_event_invoke_config")  # type: ignore[method-assign]
    _active = None

