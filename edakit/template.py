"""Reading a SAM template and translating it offline to CloudFormation, as `sam deploy` does."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import TemplateError, UnsupportedResourceError

#: Code of every function is uploaded nowhere: CloudFormation only needs a location.
CODE_PLACEHOLDER = "s3://edakit-local-code/function.zip"

#: Resource types the local cloud deploys (into moto, or through a named shim).
SUPPORTED_RESOURCE_TYPES = frozenset(
    {
        "AWS::Serverless::Function",
        "AWS::Serverless::SimpleTable",
        "AWS::CloudWatch::Alarm",
        "AWS::DynamoDB::Table",
        "AWS::Events::Archive",
        "AWS::Events::EventBus",
        "AWS::Events::Rule",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::KMS::Alias",
        "AWS::KMS::Key",
        "AWS::Kinesis::Stream",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Lambda::Function",
        "AWS::Lambda::Permission",
        "AWS::Logs::LogGroup",
        "AWS::SNS::Subscription",
        "AWS::SNS::Topic",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
    }
)

#: SAM event source types of AWS::Serverless::Function that the local cloud runs.
SUPPORTED_EVENT_SOURCES = frozenset(
    {"SQS", "SNS", "EventBridgeRule", "CloudWatchEvent", "Kinesis", "DynamoDB"}
)


UNSUPPORTED_RESOURCE_HINT = (
    "Remove it from the stage's template (or run that stage on AWS); "
    "the fidelity page (docs/reference/fidelity.md) lists the types the local cloud deploys."
)

#: What to do instead, for the event sources learners reach for most.
UNSUPPORTED_EVENT_HINTS = {
    "Api": "API Gateway is not emulated: call the function with boto3.client('lambda').invoke() "
           "and an API Gateway proxy event instead.",
    "HttpApi": "API Gateway is not emulated: call the function with boto3.client('lambda').invoke() "
               "and an API Gateway HTTP API event instead.",
    "Schedule": "Schedules never fire offline: invoke the function yourself, or put the event, "
                "from the test or notebook.",
    "ScheduleV2": "EventBridge Scheduler never fires offline: invoke the function yourself from "
                  "the test or notebook.",
}


class _TemplateLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation's short forms (!Ref, !GetAtt, !Sub...)."""


def _short_form(loader: yaml.Loader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_TemplateLoader.add_multi_constructor("!", _short_form)
# Keep timestamps and other implicit types as CloudFormation does: as strings.
_TemplateLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class FunctionSource:
    """Where a function's code lives on disk, kept before CodeUri is replaced."""

    logical_id: str
    code_dir: Path
    handler: str
    runtime: str


@dataclass
class Stage:
    """A SAM template read from disk and translated to CloudFormation."""

    path: Path
    sam: dict[str, Any]
    cloudformation: dict[str, Any]
    functions: dict[str, FunctionSource] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, Any]:
        return self.cloudformation.get("Resources", {})


def read_template(path: Path) -> dict[str, Any]:
    """Parse a SAM/CloudFormation template (YAML or JSON) with short-form tags."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise TemplateError(f"cannot read template {path}: {exc.strerror}") from None
    try:
        document = yaml.load(text, Loader=_TemplateLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TemplateError(
            f"{path}: not valid YAML{at}: {problem}. Check the indentation and brackets on that line and the one before."
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(
            f"{path}: a template needs a 'Resources' mapping at the top level; add one "
            "(Resources: followed by the logical ids, indented)."
        )
    return document


def _check_supported(sam: dict[str, Any]) -> None:
    for logical_id, resource in sam["Resources"].items():
        if not isinstance(resource, dict) or "Type" not in resource:
            raise TemplateError(f"{logical_id}: every resource needs a 'Type'")
        resource_type = resource["Type"]
        if resource_type not in SUPPORTED_RESOURCE_TYPES:
            raise UnsupportedResourceError(logical_id, resource_type, UNSUPPORTED_RESOURCE_HINT)
        if resource_type == "AWS::Serverless::Function":
            events = (resource.get("Properties") or {}).get("Events") or {}
            for event_id, event in events.items():
                event_type = (event or {}).get("Type") if isinstance(event, dict) else None
                if event_type not in SUPPORTED_EVENT_SOURCES:
                    raise UnsupportedResourceError(
                        f"{logical_id}.Events.{event_id}",
                        f"Type {event_type}",
                        UNSUPPORTED_EVENT_HINTS.get(str(event_type), "Remove this event from the stage's template.")
                        + " The local cloud runs these event sources: "
                        + ", ".join(sorted(SUPPORTED_EVENT_SOURCES))
                        + ".",
                        kind="event source",
                    )


def _function_sources(sam: dict[str, Any], base: Path) -> dict[str, FunctionSource]:
    globals_ = (sam.get("Globals") or {}).get("Function") or {}
    sources: dict[str, FunctionSource] = {}
    for logical_id, resource in sam["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        code_uri = props.get("CodeUri", globals_.get("CodeUri"))
        handler = props.get("Handler", globals_.get("Handler"))
        runtime = props.get("Runtime", globals_.get("Runtime"))
        if not isinstance(code_uri, str) or code_uri.startswith("s3://"):
            raise TemplateError(
                f"{logical_id}: CodeUri must be a local directory for the local cloud, got {code_uri!r}"
            )
        if not isinstance(handler, str):
            raise TemplateError(f"{logical_id}: Handler must be a string such as 'package.module.function'")
        if not (isinstance(runtime, str) and runtime.startswith("python")):
            raise UnsupportedResourceError(
                logical_id, f"AWS::Serverless::Function with Runtime {runtime}",
                "The local cloud runs Python functions in-process: use Runtime: python3.12.",
            )
        sources[logical_id] = FunctionSource(logical_id, (base / code_uri).resolve(), handler, runtime)
    return sources


def _with_placeholder_code(sam: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(sam)
    globals_ = (document.get("Globals") or {}).get("Function")
    if isinstance(globals_, dict) and "CodeUri" in globals_:
        globals_["CodeUri"] = CODE_PLACEHOLDER
    for resource in document["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = CODE_PLACEHOLDER
    return document


class _NoManagedPolicies:
    """Managed-policy loader for samtranslator that makes no IAM call."""

    def load(self) -> dict[str, str]:
        return {}


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "edakit" / "translated"


def _name_event(message: str, sam: dict[str, Any]) -> str:
    """SAM names a function's event by a generated id (FnQueue); add where it is written (Fn.Events.Queue)."""
    for logical_id, resource in sam.get("Resources", {}).items():
        events = ((resource or {}).get("Properties") or {}).get("Events") or {}
        for event_id in events:
            if f"[{logical_id}{event_id}]" in message:
                return f"{message} (the event {logical_id}.Events.{event_id})"
    return message


def translate(sam: dict[str, Any], region: str) -> dict[str, Any]:
    """Apply the SAM transform offline; results are cached by content, since it costs ~2 s."""
    if "Transform" not in sam:
        return copy.deepcopy(sam)
    from samtranslator import __version__ as sam_version

    key = hashlib.sha256(
        json.dumps([sam, region, sam_version], sort_keys=True, default=str).encode()
    ).hexdigest()
    cached = _cache_dir() / f"{key}.json"
    if cached.exists():
        return json.loads(cached.read_text())

    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    try:
        translated = transform(copy.deepcopy(sam), {}, _NoManagedPolicies())
    except InvalidDocumentException as exc:
        causes = "\n".join(f"  - {_name_event(cause.message, sam)}" for cause in exc.causes)
        raise TemplateError(
            f"the SAM transform rejected the template:\n{causes}\n"
            "Fix the properties named above; the AWS SAM specification lists each resource's properties."
        ) from None
    except Exception as exc:  # samtranslator raises many kinds; the learner needs the message only
        raise TemplateError(f"the SAM transform failed: {exc}") from None
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(translated))
    except OSError:
        pass  # a cache that cannot be written only costs time
    return translated


def cloudformation_of(sam: dict[str, Any], region: str) -> dict[str, Any]:
    """The CloudFormation a SAM template becomes (its code left out: functions get a placeholder)."""
    return translate(_with_placeholder_code(sam), region)


def logical_id_of(value: Any) -> str | None:
    """The template resource that a Ref or an Fn::GetAtt (["Id", "Attribute"] or "Id.Attribute")
    names; None for anything else (a literal ARN, an Fn::Sub)."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("Ref"), str):
        return value["Ref"]
    attribute = value.get("Fn::GetAtt")
    if isinstance(attribute, str):
        return attribute.split(".")[0]
    if isinstance(attribute, list) and attribute:
        return str(attribute[0])
    return None


@dataclass(frozen=True)
class EventRule:
    """An EventBridge rule that matches events (not a schedule), as the translated template has
    it: the rules SAM makes from a function's EventBridgeRule events are among them."""

    logical_id: str
    pattern: dict[str, Any]
    targets: list[str]  # each target's logical id, or its Arn as written when it names no resource
    bus: str | None  # the logical id of its event bus; None for the account's default bus
    enabled: bool  # State DISABLED sends nothing


def event_rules(resources: dict[str, Any]) -> list[EventRule]:
    """Every rule with an EventPattern among a translated template's `resources`, in order.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-events-rule.html"""
    rules = []
    for logical_id, resource in resources.items():
        properties = resource.get("Properties") or {}
        if resource.get("Type") != "AWS::Events::Rule" or "EventPattern" not in properties:
            continue
        targets = [logical_id_of(target.get("Arn")) or str(target.get("Arn")) for target in properties.get("Targets", [])]
        rules.append(EventRule(logical_id, properties["EventPattern"], targets,
                               logical_id_of(properties.get("EventBusName")), properties.get("State") != "DISABLED"))
    return rules


def load_stage(path: str | os.PathLike[str], region: str) -> Stage:
    """Read, check and translate a stage's template."""
    template_path = Path(path)
    if template_path.is_dir():
        template_path = template_path / "template.yaml"
    # A stage's template may be a link to another (stage 5 is sam-app/template.yaml):
    # CodeUri is relative to the file itself.
    template_path = template_path.resolve()
    sam = read_template(template_path)
    _check_supported(sam)
    functions = _function_sources(sam, template_path.parent)
    cloudformation = cloudformation_of(sam, region)
    for logical_id, resource in cloudformation.get("Resources", {}).items():
        if resource.get("Type") not in SUPPORTED_RESOURCE_TYPES:
            raise UnsupportedResourceError(logical_id, resource.get("Type", "?"), UNSUPPORTED_RESOURCE_HINT)
    return Stage(template_path, sam, cloudformation, functions)
