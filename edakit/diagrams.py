"""Pictures of a running stage, drawn from what is deployed rather than from what was meant.

`architecture(cloud)` reads the stage's resources back from the emulator through
boto3, as the AWS console would show them (buses, rules and their targets,
archives, queues and their DLQs, topics and subscriptions, event source mappings,
functions and their destinations), and returns a mermaid flowchart. `show()`
displays one in a notebook. Nodes are named by the template's logical ids.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from .cloud import LocalCloud

#: Longest rule pattern or filter summary drawn in full; longer ones are cut with "…".
MAX_SUMMARY = 60

# How each kind of resource is drawn: mermaid's opening and closing brackets, and
# the words under its name.
_SHAPES: dict[str, tuple[str, str, str]] = {
    "bus": ("{{", "}}", "event bus"),
    "rule": ("([", "])", "rule"),
    "archive": ("[(", ")]", "archive"),
    "queue": ("[[", "]]", "SQS queue"),
    "topic": (">", "]", "SNS topic"),
    "function": ("(", ")", "Lambda function"),
    "stream": ("[/", "/]", "Kinesis stream"),
    "table": ("[(", ")]", "DynamoDB table"),
    "log-group": ("[", "]", "log group"),
    "other": ("[", "]", ""),
}

# The CloudFormation types that become nodes, and how their physical id (what Ref
# returns) names them.
_KINDS = {
    "AWS::Events::EventBus": "bus",
    "AWS::Events::Rule": "rule",
    "AWS::Events::Archive": "archive",
    "AWS::SQS::Queue": "queue",
    "AWS::SNS::Topic": "topic",
    "AWS::Lambda::Function": "function",
    "AWS::Kinesis::Stream": "stream",
    "AWS::DynamoDB::Table": "table",
    "AWS::Logs::LogGroup": "log-group",
}


@dataclass
class _Node:
    id: str
    name: str
    kind: str
    detail: str = ""


@dataclass
class _Edge:
    source: str
    target: str
    label: str = ""
    dotted: bool = False


@dataclass
class _Graph:
    nodes: dict[str, _Node] = field(default_factory=dict)
    edges: list[_Edge] = field(default_factory=list)

    def edge(self, source: _Node, target: _Node, label: str = "", *, dotted: bool = False) -> None:
        self.nodes.setdefault(source.id, source)
        self.nodes.setdefault(target.id, target)
        self.edges.append(_Edge(source.id, target.id, label, dotted))

    def render(self) -> str:
        lines = ["flowchart LR"]
        for node in self.nodes.values():
            opening, closing, words = _SHAPES[node.kind]
            label = "<br/>".join(_escape(part) for part in (node.name, node.detail or words) if part)
            lines.append(f'    {node.id}{opening}"{label}"{closing}')
        for edge in self.edges:
            arrow = "-.->" if edge.dotted else "-->"
            label = f'|"{_escape(edge.label)}"|' if edge.label else ""
            lines.append(f"    {edge.source} {arrow}{label} {edge.target}")
        return "\n".join(lines)


class _Names:
    """Turns ARNs and names the emulator reports into nodes named by logical id."""

    def __init__(self, cloud: "LocalCloud") -> None:
        assert cloud.deployment is not None, "the cloud is not open"
        self._logical: dict[tuple[str, str], str] = {}
        for logical_id, physical_id in cloud.deployment.physical_ids.items():
            kind = _KINDS.get(cloud.deployment.resource_types.get(logical_id, ""))
            if kind is not None and physical_id:
                self._logical[(kind, _name_from_physical_id(kind, physical_id))] = logical_id
        self._taken: dict[str, tuple[str, str]] = {}

    def node(self, kind: str, name: str, detail: str = "") -> _Node:
        if kind == "queue" and name.endswith(".fifo") and not detail:
            detail = "SQS FIFO queue"
        logical_id = self._logical.get((kind, name))
        if logical_id is not None:
            return _Node(logical_id, logical_id, kind, detail)
        # Not from the template (the default bus, or something made with boto3 later):
        # named by its own name, under an id that cannot clash with a logical id.
        node_id = f"{kind.replace('-', '_')}_{re.sub(r'[^A-Za-z0-9_]', '_', name)}"
        return _Node(node_id, name, kind, detail)

    def from_arn(self, arn: str) -> _Node:
        kind, name = _kind_and_name(arn)
        return self.node(kind, name)


def architecture(cloud: "LocalCloud") -> str:
    """A mermaid `flowchart LR` of the running stage: every bus, rule, archive, queue,
    topic, stream, table and function, with the routes between them."""
    names = _Names(cloud)
    graph = _Graph()
    region = cloud.region
    _draw_event_buses(graph, names, boto3.client("events", region_name=region))
    _draw_queues(graph, names, boto3.client("sqs", region_name=region))
    _draw_topics(graph, names, boto3.client("sns", region_name=region))
    _draw_streams_and_tables(graph, names, region)
    _draw_functions(graph, names, cloud)
    return graph.render()


def show(mermaid_text: str) -> None:
    """Display a mermaid diagram in a notebook (JupyterLab, and mkdocs-material on the site,
    draw a ```mermaid fence); consoles get the mermaid text itself."""
    from IPython.display import display

    display({"text/markdown": f"```mermaid\n{mermaid_text}\n```", "text/plain": mermaid_text}, raw=True)


# --- readers, one per service -------------------------------------------------------


def _draw_event_buses(graph: _Graph, names: _Names, events: Any) -> None:
    for bus in events.list_event_buses()["EventBuses"]:
        rules = [r for r in _pages(events, "list_rules", "Rules", EventBusName=bus["Name"])
                 if not r.get("ManagedBy")]  # an archive's own rule is drawn as the archive
        bus_node = names.node("bus", bus["Name"])
        if bus["Name"] != "default" or rules:
            graph.nodes.setdefault(bus_node.id, bus_node)
        for rule in rules:
            pattern = json.loads(rule["EventPattern"]) if rule.get("EventPattern") else None
            summary = summarise_pattern(pattern) if pattern else rule.get("ScheduleExpression", "")
            rule_node = names.node("rule", rule["Name"], summary)
            graph.edge(bus_node, rule_node)
            targets = _pages(events, "list_targets_by_rule", "Targets", Rule=rule["Name"], EventBusName=bus["Name"])
            for target in targets:
                graph.edge(rule_node, names.from_arn(target["Arn"]), _target_label(target))
    for archive in events.list_archives().get("Archives", []):
        described = events.describe_archive(ArchiveName=archive["ArchiveName"])
        retention = described.get("RetentionDays")
        detail = f"archive, {retention} days" if retention else "archive, kept forever"
        archive_node = names.node("archive", archive["ArchiveName"], detail)
        pattern = json.loads(described["EventPattern"]) if described.get("EventPattern") else None
        graph.edge(names.from_arn(archive["EventSourceArn"]), archive_node,
                   summarise_pattern(pattern) if pattern else "every event")


def _draw_queues(graph: _Graph, names: _Names, sqs: Any) -> None:
    for url in sqs.list_queues().get("QueueUrls", []):
        name = url.rsplit("/", 1)[-1]
        node = names.node("queue", name)
        graph.nodes.setdefault(node.id, node)
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
        if "RedrivePolicy" in attributes:
            policy = json.loads(attributes["RedrivePolicy"])
            receives = int(policy.get("maxReceiveCount", 0))
            graph.edge(node, names.from_arn(policy["deadLetterTargetArn"]),
                       f"after {receives} receive{'s' if receives != 1 else ''}", dotted=True)


def _draw_topics(graph: _Graph, names: _Names, sns: Any) -> None:
    for topic in _pages(sns, "list_topics", "Topics"):
        node = names.from_arn(topic["TopicArn"])
        graph.nodes.setdefault(node.id, node)
    for subscription in _pages(sns, "list_subscriptions", "Subscriptions"):
        if not subscription["SubscriptionArn"].startswith("arn:"):
            continue  # PendingConfirmation: nothing is delivered until the endpoint confirms
        attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
        label = []
        if attributes.get("FilterPolicy"):
            label.append(summarise_pattern(json.loads(attributes["FilterPolicy"])))
        if attributes.get("RawMessageDelivery") == "true":
            label.append("raw")
        graph.edge(names.from_arn(subscription["TopicArn"]), names.from_arn(subscription["Endpoint"]), ", ".join(label))


def _draw_streams_and_tables(graph: _Graph, names: _Names, region: str) -> None:
    for stream in boto3.client("kinesis", region_name=region).list_streams().get("StreamNames", []):
        node = names.node("stream", stream)
        graph.nodes.setdefault(node.id, node)
    for table in boto3.client("dynamodb", region_name=region).list_tables().get("TableNames", []):
        node = names.node("table", table)
        graph.nodes.setdefault(node.id, node)


def _draw_functions(graph: _Graph, names: _Names, cloud: "LocalCloud") -> None:
    client = boto3.client("lambda", region_name=cloud.region)
    by_physical = _physical_nodes(graph, names, cloud)
    for function in _pages(client, "list_functions", "Functions"):
        node = names.node("function", function["FunctionName"])
        graph.nodes.setdefault(node.id, node)
        config = client.get_function_configuration(FunctionName=function["FunctionName"])
        dead_letter = (config.get("DeadLetterConfig") or {}).get("TargetArn")
        if dead_letter:
            graph.edge(node, names.from_arn(dead_letter), "dead-letter queue", dotted=True)
        local = cloud.find_function(function["FunctionName"])
        invoke_config = cloud.event_invoke_config(local) if local is not None else {}
        for outcome, words in (("OnSuccess", "on success"), ("OnFailure", "on failure")):
            destination = ((invoke_config.get("DestinationConfig") or {}).get(outcome) or {}).get("Destination")
            if destination:
                graph.edge(node, names.from_arn(destination), words, dotted=outcome == "OnFailure")
        # A variable holding another resource's name, URL or ARN says the function uses it.
        variables = (config.get("Environment") or {}).get("Variables") or {}
        for variable, value in sorted(variables.items()):
            used = by_physical.get(value)
            if used is not None and used.id != node.id:
                graph.edge(node, used, variable, dotted=True)
    for mapping in _pages(client, "list_event_source_mappings", "EventSourceMappings"):
        source = names.from_arn(mapping["EventSourceArn"])
        function = names.from_arn(mapping["FunctionArn"])
        label = [f"batch {mapping['BatchSize']}"] if mapping.get("BatchSize") else []
        if (mapping.get("FilterCriteria") or {}).get("Filters"):
            label.append("filtered")
        if mapping.get("State") == "Disabled":
            label.append("disabled")
        graph.edge(source, function, ", ".join(label))
        on_failure = ((mapping.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        if on_failure:
            graph.edge(function, names.from_arn(on_failure), "on failure", dotted=True)


def _physical_nodes(graph: _Graph, names: _Names, cloud: "LocalCloud") -> dict[str, _Node]:
    """The nodes of the stack's resources by what Ref gives for them (a name, URL or ARN)."""
    assert cloud.deployment is not None
    found = {}
    for logical_id, physical_id in cloud.deployment.physical_ids.items():
        kind = _KINDS.get(cloud.deployment.resource_types.get(logical_id, ""))
        if kind is not None and kind != "function" and physical_id:
            name = _name_from_physical_id(kind, physical_id)
            found[physical_id] = graph.nodes.get(logical_id) or names.node(kind, name)
    return found


# --- names --------------------------------------------------------------------------


def _name_from_physical_id(kind: str, physical_id: str) -> str:
    """The resource's name, from what CloudFormation's Ref returns for it."""
    if kind == "queue":
        return physical_id.rsplit("/", 1)[-1]  # a queue URL
    if physical_id.startswith("arn:"):
        return _kind_and_name(physical_id)[1]  # a topic's ARN
    return physical_id.split("|")[-1]  # a rule on a custom bus is "bus|rule"


def _kind_and_name(arn: str) -> tuple[str, str]:
    """The kind of node and the resource's name in an ARN."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return "other", arn
    service, resource = parts[2], parts[5]
    if service == "sqs":
        return "queue", resource
    if service == "sns":
        return "topic", resource
    if service == "lambda":
        return "function", resource.split(":")[1] if resource.startswith("function:") else resource
    if service == "events":
        kind, _, path = resource.partition("/")
        return {"event-bus": "bus", "rule": "rule", "archive": "archive"}.get(kind, "other"), path.split("/")[-1]
    if service == "kinesis":
        return "stream", resource.split("/")[1]
    if service == "dynamodb":
        return "table", resource.split("/")[1]  # a table, or one of its streams
    if service == "logs":
        return "log-group", resource.removeprefix("log-group:").removesuffix(":*")
    return "other", resource


def _target_label(target: dict[str, Any]) -> str:
    """What a rule changes on the way to its target, if anything."""
    if "InputTransformer" in target:
        return "input transformer"
    if "InputPath" in target:
        return f"input {target['InputPath']}"
    if "Input" in target:
        return "constant input"
    return ""


# --- patterns -----------------------------------------------------------------------


def summarise_pattern(pattern: dict[str, Any]) -> str:
    """An event pattern (or SNS filter policy) in one short line, such as
    `source: prefix shop.; detail.total_cents: >= 10000`."""
    text = "; ".join(_summarise(pattern, ""))
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1] + "…"


def _summarise(pattern: dict[str, Any], prefix: str) -> list[str]:
    parts = []
    for key, value in pattern.items():
        if key == "$or":
            parts.append(" or ".join("(" + "; ".join(_summarise(branch, prefix)) + ")" for branch in value))
        elif isinstance(value, dict):
            parts += _summarise(value, f"{prefix}{key}.")
        else:
            values = value if isinstance(value, list) else [value]
            parts.append(f"{prefix}{key}: {', '.join(_matcher(v) for v in values)}")
    return parts


def _matcher(value: Any) -> str:
    if not isinstance(value, dict):
        return "null" if value is None else json.dumps(value) if isinstance(value, bool) else str(value)
    operator, operand = next(iter(value.items()))  # a matcher is an object of one operator
    if operator == "numeric":
        return " ".join(str(part) for part in operand)
    if operator == "exists":
        return "exists" if operand else "absent"
    if operator == "anything-but":
        if isinstance(operand, dict):
            return "not " + _matcher(operand)
        return "not " + ", ".join(_matcher(v) for v in (operand if isinstance(operand, list) else [operand]))
    if operator == "equals-ignore-case":
        return f"{operand} (any case)"
    return f"{operator} {operand}"


def _escape(text: str) -> str:
    """Text safe inside a quoted mermaid label (mermaid reads #name; as an entity)."""
    return text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of a listing, across pages when the operation has a paginator."""
    if client.can_paginate(operation):
        return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page.get(key, [])]
    return list(getattr(client, operation)(**kwargs).get(key, []))
