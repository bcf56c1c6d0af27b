"""Least privilege, proven from behaviour: the AWS calls each function needs, checked against its role.

While a LocalCloud is open, every AWS API call that a function's code makes is
recorded (a botocore hook on every client, attributed to the function whose
invocation is running). To those the kit adds the calls that the Lambda service
makes with the function's execution role and that the code never makes: polling
its event sources, writing its logs, sending to its DLQ and destinations, and the
KMS calls behind each use of a resource encrypted with a customer managed key.
Then an evaluator decides each call against the role's policies as deployed, and
the report lists the calls the role does not allow and the grants nothing used.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import yaml

from .errors import EdakitError
from .runtime import running_function

if TYPE_CHECKING:
    from .cloud import LocalCloud

#: One AWS call as IAM authorizes it: ("dynamodb:PutItem", "arn:aws:dynamodb:...:table/orders").
Call = tuple[str, str]

#: IAM's service prefix where it differs from the API's signing name.
_IAM_PREFIX = {"monitoring": "cloudwatch"}

#: Batch operations that IAM authorizes as the single action.
#: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-permissions-reference.html
#: https://docs.aws.amazon.com/sns/latest/api/API_PublishBatch.html
_AUTHORIZED_AS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sns:PublishBatch": "sns:Publish",
}

#: What an item of TransactWriteItems is authorized as, per table.
#: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
_TRANSACT_ITEM_ACTION = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem",
                         "Delete": "dynamodb:DeleteItem", "ConditionCheck": "dynamodb:ConditionCheckItem"}

#: KMS calls made on the caller's behalf when it uses a resource encrypted with a customer managed key.
#: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html
#: (a producer needs kms:GenerateDataKey and kms:Decrypt, a consumer kms:Decrypt)
#: https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html (a publisher: kms:GenerateDataKey* and kms:Decrypt)
#: https://docs.aws.amazon.com/streams/latest/dev/permissions-user-key-KMS.html (producer GenerateDataKey, consumer Decrypt)
#: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.howitworks.html
#: (DynamoDB decrypts the table key with the caller's permission to use the customer managed key)
KMS_ON_USE = {
    "sqs:SendMessage": ("kms:GenerateDataKey", "kms:Decrypt"),
    "sqs:ReceiveMessage": ("kms:Decrypt",),
    "sns:Publish": ("kms:GenerateDataKey", "kms:Decrypt"),
    "kinesis:PutRecord": ("kms:GenerateDataKey",),
    "kinesis:PutRecords": ("kms:GenerateDataKey",),
    "kinesis:GetRecords": ("kms:Decrypt",),
}
#: DynamoDB's item and query actions: each uses the table key.
_DYNAMODB_DATA = re.compile(r"dynamodb:(Get|Put|Update|Delete|BatchGet|BatchWrite|ConditionCheck)Item$|dynamodb:(Query|Scan)$")

#: The execution-role permissions of each kind of event source mapping, as the Lambda guide lists them.
#: https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html (execution role permissions)
#: https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-create.html
#: https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-eventsourcemapping.html
POLLING_ACTIONS = {
    "sqs": ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"),
    "kinesis": ("kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
                "kinesis:GetShardIterator", "kinesis:ListShards"),
    "dynamodb": ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"),
}

#: What Lambda calls to deliver an invocation record or a dead-lettered event to a target.
#: https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
DELIVERY_ACTION = {"sqs": "sqs:SendMessage", "sns": "sns:Publish", "lambda": "lambda:InvokeFunction",
                   "events": "events:PutEvents"}

#: Lambda writes the function's logs with its role.
#: https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html
LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")


# --- recording the calls of the functions' code ------------------------------------------


class CallRecorder:
    """Records each AWS call made while a function's code runs, per function (its logical id).

    A botocore `before-parameter-build` handler is registered on every client made
    while the recorder is on, so it sees the clients a handler (or Powertools) creates.
    """

    def __init__(self, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id
        self.calls: dict[str, set[Call]] = defaultdict(set)
        #: How many requests each caller made of each API operation ("sqs:SendMessage"); the
        #: caller is a function's logical id, or None for code outside any function (a producer).
        #: edakit.cost prices them.
        self.requests: Counter[tuple[str | None, str]] = Counter()
        #: Entries of each operation (a batch's items, else 1), and the bytes of a batch's entries
        #: (PutEvents is billed, and archived, by its entries' size).
        self.entries: Counter[tuple[str | None, str]] = Counter()
        self.payload_bytes: Counter[tuple[str | None, str]] = Counter()
        self._on = False

    @contextlib.contextmanager
    def recording(self) -> Iterator["CallRecorder"]:
        import botocore.session

        original = botocore.session.Session.create_client
        recorder = self

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-parameter-build", recorder._before_parameter_build)
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
        self._on = True
        try:
            yield self
        finally:
            self._on = False
            botocore.session.Session.create_client = original  # type: ignore[method-assign]

    def _before_parameter_build(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if not self._on:
            return
        function = running_function.get()
        prefix = model.service_model.signing_name
        operation = f"{_IAM_PREFIX.get(prefix, prefix)}:{model.name}"
        self.requests[function, operation] += 1
        for key in ("Entries", "Records", "TransactItems", "PublishBatchRequestEntries"):
            if isinstance(params.get(key), list):
                self.entries[function, operation] += len(params[key])
                self.payload_bytes[function, operation] += sum(len(json.dumps(e, default=str)) for e in params[key])
                break
        else:
            self.entries[function, operation] += 1
        if function is None:
            return
        self.calls[function].update(authorized_calls(_IAM_PREFIX.get(prefix, prefix), model.name, params,
                                                     self.region, self.account_id))


def authorized_calls(prefix: str, operation: str, params: dict[str, Any], region: str, account: str) -> set[Call]:
    """The (action, resource ARN) pairs IAM authorizes for one API call with these parameters."""
    action = _AUTHORIZED_AS.get(f"{prefix}:{operation}", f"{prefix}:{operation}")
    arn = f"arn:aws:{prefix}:{region}:{account}"
    if prefix == "dynamodb":
        if operation == "TransactWriteItems":
            return {(_TRANSACT_ITEM_ACTION[kind], f"{arn}:table/{body['TableName']}")
                    for item in params.get("TransactItems", []) for kind, body in item.items()}
        if operation == "TransactGetItems":
            return {("dynamodb:GetItem", f"{arn}:table/{item['Get']['TableName']}") for item in params.get("TransactItems", [])}
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return {(action, f"{arn}:table/{name}") for name in params.get("RequestItems", {})}
        if "StreamArn" in params:
            return {(action, params["StreamArn"])}
        if "TableName" in params:
            return {(action, f"{arn}:table/{params['TableName']}")}
    if prefix == "sqs" and "QueueUrl" in params:
        return {(action, f"{arn}:{params['QueueUrl'].rstrip('/').rsplit('/', 1)[-1]}")}
    if prefix == "sqs" and "QueueName" in params:
        return {(action, f"{arn}:{params['QueueName']}")}
    if prefix == "sns" and (params.get("TopicArn") or params.get("TargetArn")):
        return {(action, params.get("TopicArn") or params["TargetArn"])}
    if prefix == "events" and operation == "PutEvents":
        return {(action, _bus_arn(entry.get("EventBusName") or "default", arn)) for entry in params.get("Entries", [])}
    if prefix == "kinesis" and (params.get("StreamARN") or params.get("StreamName")):
        return {(action, params.get("StreamARN") or f"{arn}:stream/{params['StreamName']}")}
    if prefix == "kms" and "KeyId" in params:
        key = params["KeyId"]
        return {(action, key if key.startswith("arn:") else f"{arn}:{'' if key.startswith('alias/') else 'key/'}{key}")}
    if prefix == "lambda" and "FunctionName" in params:
        name = params["FunctionName"]
        return {(action, name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{account}:function:{name}")}
    return {(action, "*")}


def _bus_arn(name_or_arn: str, prefix: str) -> str:
    return name_or_arn if name_or_arn.startswith("arn:") else f"{prefix}:event-bus/{name_or_arn}"


# --- the calls the Lambda service makes with the role ----------------------------------


def customer_managed_key(cloud: "LocalCloud", arn: str) -> str | None:
    """The ARN of the customer managed KMS key that encrypts the resource at `arn`, if any."""
    service = arn.split(":")[2]
    key_id: str | None = None
    try:
        if service == "sqs":
            key_id = cloud.sqs_backend.get_queue(arn.rsplit(":", 1)[-1]).attributes.get("KmsMasterKeyId")
        elif service == "sns":
            key_id = cloud.sns_backend.get_topic(arn).kms_master_key_id
        elif service == "dynamodb" and ":table/" in arn:
            table = cloud.dynamodb_backend.tables.get(arn.split(":table/", 1)[1].split("/", 1)[0])
            spec = getattr(table, "sse_specification", None) or {}
            key_id = spec.get("KMSMasterKeyId") if spec.get("Enabled") else None
        elif service == "kinesis":
            stream = cloud.kinesis_backend.streams.get(arn.split(":stream/", 1)[-1])
            key_id = stream.key_id if stream is not None and stream.encryption_type == "KMS" else None
    except Exception:  # a resource that is gone (deleted by a test) has no key
        return None
    if not key_id:
        return None
    keys = cloud._backend("kms", "kms_backends")
    try:
        key = keys.keys[keys.get_key_id(key_id)] if not key_id.startswith("alias/") else keys.keys[keys.get_key_id_from_alias(key_id)]
    except Exception:
        return None
    return key.arn if key.key_manager == "CUSTOMER" else None


def lambda_service_calls(cloud: "LocalCloud", logical_id: str) -> set[Call]:
    """What the Lambda service calls with the function's execution role, which its code never does."""
    function = cloud.function(logical_id)
    region, account = cloud.region, cloud.account_id
    calls: set[Call] = set()
    if cloud.invocations(logical_id):
        group = f"arn:aws:logs:{region}:{account}:log-group:{function.log_group}:*"
        calls |= {(action, group) for action in LOG_ACTIONS}
    # Event source mappings: Lambda reads the source with the role. AWS checks these
    # permissions when the mapping is created, so a mapping uses them from the start.
    for mapping in cloud.lambda_backend._event_source_mappings.values():
        if cloud.find_function(mapping.function_arn) is not function:
            continue
        source_arn = mapping.event_source_arn
        service = source_arn.split(":")[2]
        calls |= {(action, source_arn) for action in POLLING_ACTIONS.get(service, ())}
        on_failure = ((getattr(mapping, "destination_config", None) or {}).get("OnFailure") or {}).get("Destination")
        if on_failure:
            calls.add((DELIVERY_ACTION[on_failure.split(":")[2]], on_failure))
    # Asynchronous invocation: the DLQ and the destinations. Lambda checks the role when
    # they are configured. https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
    targets = [((cloud.event_invoke_config(function).get("DestinationConfig") or {}).get(kind) or {}).get("Destination")
               for kind in ("OnSuccess", "OnFailure")]
    dead_letter = getattr(cloud.lambda_backend.get_function(function.name), "dead_letter_config", None) or {}
    targets.append(dead_letter.get("TargetArn") or function.dead_letter_arn)
    for target in filter(None, targets):
        calls.add((DELIVERY_ACTION[target.split(":")[2]], target))
    return calls


def with_kms_calls(cloud: "LocalCloud", calls: set[Call]) -> set[Call]:
    """The calls plus the KMS calls each makes on an encrypted resource."""
    found = set(calls)
    for action, resource in calls:
        kms_actions = KMS_ON_USE.get(action) or (("kms:Decrypt",) if _DYNAMODB_DATA.match(action) else ())
        if kms_actions and (key := customer_managed_key(cloud, resource)):
            found |= {(kms_action, key) for kms_action in kms_actions}
    return found


def aws_calls(cloud: "LocalCloud", logical_id: str) -> set[Call]:
    """Every call made with the function's role: its code's, the Lambda service's, and their KMS calls."""
    recorder: CallRecorder | None = getattr(cloud, "call_recorder", None)
    code = set(recorder.calls.get(logical_id, set())) if recorder is not None else set()
    return with_kms_calls(cloud, code | lambda_service_calls(cloud, logical_id))


# --- policy evaluation -----------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


@dataclass(frozen=True)
class Statement:
    """One statement of a policy, normalized; `policy` names where it came from."""

    policy: str
    index: int
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    principals: tuple[tuple[str, str], ...]
    condition: str  # JSON text, to keep the dataclass hashable

    @classmethod
    def parse(cls, policy: str, index: int, raw: dict[str, Any]) -> "Statement":
        principal = raw.get("Principal")
        principals: list[tuple[str, str]] = []
        if principal == "*":
            principals.append(("*", "*"))
        elif isinstance(principal, dict):
            principals = [(kind, value) for kind, values in principal.items() for value in _as_list(values)]
        return cls(policy, index, raw["Effect"], tuple(_as_list(raw.get("Action", []))),
                   tuple(_as_list(raw.get("NotAction", []))), tuple(_as_list(raw.get("Resource", []))),
                   tuple(_as_list(raw.get("NotResource", []))), tuple(principals),
                   json.dumps(raw.get("Condition") or {}, sort_keys=True))

    def matches_action(self, action: str) -> bool:
        if self.not_actions:
            return not any(_matches(p, action, case_sensitive=False) for p in self.not_actions)
        return any(_matches(p, action, case_sensitive=False) for p in self.actions)

    def matches_resource(self, resource: str) -> bool:
        if self.not_resources:
            return not any(_matches(p, resource, case_sensitive=True) for p in self.not_resources)
        # A call whose resource is "*" (an action without resource-level permissions) needs "*".
        return any(_matches(p, resource, case_sensitive=True) if resource != "*" else p == "*" for p in self.resources)

    def matches_principal(self, principal: tuple[str, str] | None) -> bool:
        if principal is None:  # identity policies name no principal: the role is it
            return not self.principals
        return any(kind == "*" or (kind == principal[0] and value in ("*", principal[1])) for kind, value in self.principals)


#: The condition operators the evaluator decides; any other is reported as not evaluated.
_OPERATORS = {
    "StringEquals": lambda v, p: v == p, "StringLike": lambda v, p: fnmatch.fnmatchcase(v, p),
    "ArnEquals": lambda v, p: v == p, "ArnLike": lambda v, p: fnmatch.fnmatchcase(v, p),
    "Bool": lambda v, p: v.lower() == str(p).lower(),
}


def condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool | None:
    """True or False when every operator and key is known; None when it cannot be evaluated here.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
    """
    for operator, tests in condition.items():
        compare = _OPERATORS.get(operator)
        if compare is None:
            return None
        for key, patterns in tests.items():
            if key not in context:
                return None
            if not any(compare(context[key], str(p)) for p in _as_list(patterns)):
                return False
    return True


@dataclass
class Decision:
    """How IAM decides one request: explicit deny wins, then an allow, else the implicit deny.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
    """

    allowed: bool
    reason: str
    not_evaluated: list[Statement] = field(default_factory=list)


def evaluate(statements: list[Statement], action: str, resource: str, *,
             principal: tuple[str, str] | None = None, context: dict[str, str] | None = None) -> Decision:
    context = {"aws:SecureTransport": "true", **(context or {})}  # the SDKs call over HTTPS
    allowed_by: Statement | None = None
    unknown: list[Statement] = []
    for statement in statements:
        if not (statement.matches_action(action) and statement.matches_resource(resource)
                and statement.matches_principal(principal)):
            continue
        holds = condition_holds(json.loads(statement.condition), context)
        if holds is None:
            unknown.append(statement)
            continue
        if not holds:
            continue
        if statement.effect == "Deny":
            return Decision(False, f"explicitly denied by {statement.policy} (statement {statement.index})", unknown)
        allowed_by = allowed_by or statement
    if allowed_by is not None:
        return Decision(True, f"allowed by {allowed_by.policy}", unknown)
    return Decision(False, "no statement allows it (implicit deny)", unknown)


def _document(value: Any) -> dict[str, Any]:
    """A policy document as IAM returns it; moto's CloudFormation stores an inline policy
    as the text of a Python dict (single quotes), which is read here too."""
    if isinstance(value, dict):
        return value
    try:
        return json.loads(value)
    except ValueError:
        import ast

        return ast.literal_eval(value)


def role_statements(cloud: "LocalCloud", logical_id: str) -> list[Statement]:
    """The statements of the function's execution role as deployed: inline and attached managed policies."""
    import boto3
    iam = boto3.client("iam")
    role_name = cloud.lambda_backend.get_function(cloud.function(logical_id).name).role.rsplit("/", 1)[-1]
    statements: list[Statement] = []
    for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        document = _document(iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"])
        statements += [Statement.parse(name, i, s) for i, s in enumerate(_as_list(document["Statement"]))]
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        arn = attached["PolicyArn"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = _document(iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])
        statements += [Statement.parse(attached["PolicyName"], i, s) for i, s in enumerate(_as_list(document["Statement"]))]
    return statements


# --- the least-privilege report ----------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """One action that one Allow statement grants, on the statement's resources as a whole."""

    function: str
    policy: str
    action: str
    resources: tuple[str, ...]

    def describe(self, names: dict[str, str]) -> str:
        where = ", ".join(sorted({names.get(_resource_key(r), r) for r in self.resources}))
        return f"{self.action} on {where} ({self.policy})"


def _resource_key(arn: str) -> str:
    """The name part of an ARN, to name the resource by its logical id: table/x/index/* -> x."""
    if ":table/" in arn:
        return arn.split(":table/", 1)[1].split("/", 1)[0]
    return arn.rstrip("/").rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def resource_names(cloud: "LocalCloud") -> dict[str, str]:
    """Physical name (queue, table, topic, key...) -> logical id, to report resources by their template name."""
    assert cloud.deployment is not None
    names: dict[str, str] = {}
    for logical_id, physical in cloud.deployment.physical_ids.items():
        kind = cloud.deployment.resource_types.get(logical_id, "")
        if physical and not kind.endswith(("Policy", "Subscription", "Alias", "Permission", "Mapping")):
            names[physical.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]] = logical_id
    return names


#: Whole-service wildcards (and "*") are never least privilege.
_WILDCARD_ACTION = re.compile(r"^(\*|[a-z0-9-]+:\*)$", re.I)


@dataclass
class Exemption:
    """A grant kept although the scenario never uses it, with its reason (least-privilege-exceptions.yaml)."""

    function: str
    actions: tuple[str, ...]
    resource: str
    why: str


def load_exceptions(path: Path) -> list[Exemption]:
    """The deliberate unused grants; each needs a reason (`why`)."""
    document = yaml.safe_load(path.read_text()) or {}
    found = []
    for i, entry in enumerate(document.get("exceptions") or []):
        why = str(entry.get("why") or "").strip()
        if not why:
            raise EdakitError(f"{path}: exception {i + 1} ({entry.get('function')}, {entry.get('actions')}) has no "
                              "'why': say why the grant stays although the scenario never uses it")
        for function in _as_list(entry.get("functions") or entry.get("function")):
            found.append(Exemption(function, tuple(_as_list(entry["actions"])), entry.get("resource", "*"), why))
    return found


@dataclass
class FunctionReport:
    function: str
    calls: dict[Call, Decision]
    grants: dict[Grant, bool]
    excepted: dict[Grant, str]
    wildcards: list[Grant]

    @property
    def denied(self) -> list[Call]:
        return sorted(c for c, d in self.calls.items() if not d.allowed)

    @property
    def unused(self) -> list[Grant]:
        return [g for g, used in self.grants.items() if not used and g not in self.excepted]


@dataclass
class LeastPrivilegeReport:
    functions: dict[str, FunctionReport]
    names: dict[str, str]

    def name(self, arn: str) -> str:
        return self.names.get(_resource_key(arn), arn)

    def problems(self) -> list[str]:
        lines = []
        for function, report in self.functions.items():
            for action, resource in report.denied:
                lines.append(f"{function}: {action} on {self.name(resource)} is not allowed by its role "
                             f"({report.calls[(action, resource)].reason}); add a policy that grants it")
            for grant in report.wildcards:
                lines.append(f"{function}: wildcard action {grant.describe(self.names)}: grant the actions it needs by name")
            for grant in report.unused:
                lines.append(f"{function}: grant never used: {grant.describe(self.names)}; remove it, or list it "
                             "with a reason in least-privilege-exceptions.yaml")
        return lines

    def not_evaluated(self) -> list[str]:
        return sorted({f"{f}: {s.policy} statement {s.index} has a condition the evaluator does not decide"
                       for f, r in self.functions.items() for d in r.calls.values() for s in d.not_evaluated})


def least_privilege(cloud: "LocalCloud", exceptions: list[Exemption] | None = None, *,
                    without: tuple[str, ...] = ()) -> LeastPrivilegeReport:
    """Each function's calls against its role: what is not allowed, and what is granted but never used.

    `without` names policies to leave out of the roles (a what-if: "and without this one?").
    """
    names = resource_names(cloud)
    reports = {}
    for logical_id in cloud.functions:
        statements = [s for s in role_statements(cloud, logical_id) if s.policy not in without]
        calls = aws_calls(cloud, logical_id)
        decisions = {call: evaluate(statements, *call) for call in calls}
        grants: dict[Grant, bool] = {}
        wildcards = []
        for statement in statements:
            if statement.effect != "Allow":
                continue
            if statement.not_actions:
                wildcards.append(Grant(logical_id, statement.policy, "NotAction " + ",".join(statement.not_actions), statement.resources))
                continue
            for action in statement.actions:
                grant = Grant(logical_id, statement.policy, action, statement.resources)
                if _WILDCARD_ACTION.match(action):
                    wildcards.append(grant)
                used = any(_matches(action, a, case_sensitive=False) and statement.matches_resource(r) for a, r in calls)
                grants[grant] = grants.get(grant, False) or used
        excepted = {}
        for grant in grants:
            for exception in exceptions or []:
                if exception.function == logical_id and grant.action in exception.actions and (
                        exception.resource == "*" or any(names.get(_resource_key(r)) == exception.resource for r in grant.resources)):
                    excepted[grant] = exception.why
        reports[logical_id] = FunctionReport(logical_id, decisions, grants, excepted, wildcards)
    return LeastPrivilegeReport(reports, names)


# --- encryption, TLS and the services' use of the key -------------------------------------


def _policy_statements(text: str | None, name: str) -> list[Statement]:
    if not text:
        return []
    document = json.loads(text) if isinstance(text, str) else text
    return [Statement.parse(name, i, s) for i, s in enumerate(_as_list(document.get("Statement", [])))]


def _denies_plain_http(statements: list[Statement], action: str, resource: str) -> bool:
    """Whether the policy explicitly denies the action over plain HTTP, whatever else allows it."""
    allow_all = Statement.parse("anything", 0, {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"})
    return not evaluate([*statements, allow_all], action, resource, principal=("AWS", "*"),
                        context={"aws:SecureTransport": "false"}).allowed


def security_problems(cloud: "LocalCloud") -> list[str]:
    """Every queue, topic, table and stream without the customer managed key, and every queue
    or topic whose policy does not refuse requests without TLS.

    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-security-best-practices.html
    https://docs.aws.amazon.com/sns/latest/dg/sns-security-best-practices.html
    """
    names = resource_names(cloud)
    region, account = cloud.region, cloud.account_id
    problems = []
    resources: list[tuple[str, str, str | None]] = []  # (kind, arn, policy)
    for queue in cloud.sqs_backend.queues.values():
        resources.append(("queue", queue.queue_arn, queue.attributes.get("Policy") or getattr(queue, "policy", None)))
    for topic in cloud.sns_backend.topics.values():
        resources.append(("topic", topic.arn, topic.policy))
    for table in cloud.dynamodb_backend.tables.values():
        resources.append(("table", f"arn:aws:dynamodb:{region}:{account}:table/{table.name}", None))
    for stream in cloud.kinesis_backend.streams.values():
        resources.append(("stream", stream.arn, None))
    for kind, arn, policy in resources:
        name = names.get(_resource_key(arn), arn.rsplit(":", 1)[-1])
        if customer_managed_key(cloud, arn) is None:
            setting = {"queue": "KmsMasterKeyId", "topic": "KmsMasterKeyId", "table": "SSESpecification (SSEType KMS, KMSMasterKeyId)",
                       "stream": "StreamEncryption"}[kind]
            problems.append(f"{kind} {name} is not encrypted with a customer managed KMS key: set its {setting} to the shop's key")
        if kind in ("queue", "topic"):
            action = "sqs:SendMessage" if kind == "queue" else "sns:Publish"
            if not _denies_plain_http(_policy_statements(policy, f"{name} policy"), action, arn):
                problems.append(f"{kind} {name} accepts requests without TLS: add a Deny statement on "
                                f"aws:SecureTransport \"false\" to its {kind} policy")
    return problems


def service_delivery_problems(cloud: "LocalCloud") -> list[str]:
    """Deliveries that services make on their own (EventBridge rules to queues, SNS to queues):
    each needs the queue policy to let the service send, and the key policy of an encrypted
    queue to let it use the key.

    https://docs.aws.amazon.com/sns/latest/dg/sns-enable-encryption-for-topic-sqs-queue-subscriptions.html
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-troubleshooting.html
    """
    names = resource_names(cloud)
    keys = cloud._backend("kms", "kms_backends")
    deliveries: list[tuple[str, str, str]] = []  # (service principal, source ARN, queue ARN)
    for rule in (r for bus in cloud.events_backend.event_buses.values() for r in bus.rules.values()):
        for target in rule.targets:
            if target["Arn"].split(":")[2] == "sqs":
                deliveries.append(("events.amazonaws.com", rule.arn, target["Arn"]))
    for subscription in cloud.sns_backend.subscriptions.values():
        if subscription.protocol == "sqs":
            deliveries.append(("sns.amazonaws.com", subscription.topic.arn, subscription.endpoint))
    problems = []
    for service, source, queue_arn in deliveries:
        queue_name = names.get(_resource_key(queue_arn), queue_arn)
        source_name = names.get(_resource_key(source), source)
        context = {"aws:SourceArn": source, "aws:SourceAccount": cloud.account_id}
        queue = cloud.sqs_backend.get_queue(queue_arn.rsplit(":", 1)[-1])
        queue_policy = _policy_statements(queue.attributes.get("Policy") or getattr(queue, "policy", None), f"{queue_name} policy")
        decision = evaluate(queue_policy, "sqs:SendMessage", queue_arn, principal=("Service", service), context=context)
        if not decision.allowed:
            problems.append(f"{source_name} -> {queue_name}: the queue policy does not let {service} send ({decision.reason})")
        key_arn = customer_managed_key(cloud, queue_arn)
        if key_arn is None:
            continue
        key = keys.keys[keys.get_key_id(key_arn)]
        key_policy = _policy_statements(key.policy, f"key policy of {names.get(key.id, key.id)}")
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            decision = evaluate(key_policy, action, key_arn, principal=("Service", service), context=context)
            if not decision.allowed:
                problems.append(f"{source_name} -> {queue_name}: the queue is encrypted with {names.get(key.id, key.id)}, "
                                f"whose key policy does not let {service} call {action} ({decision.reason})")
    return problems
