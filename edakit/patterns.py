"""EventBridge event patterns, matched by the very matcher the local cloud routes with.

The local cloud lets moto decide whether a rule matches an event
(`moto.events.models.EventPattern`); Lambda's event filtering uses the same
syntax. This module is the one wrapper around that matcher, so that a test, a
notebook or an event source mapping gets the answer routing would give.
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from moto.events.exceptions import InvalidEventPatternException
from moto.events.models import EventPattern

from .errors import EdakitError

if TYPE_CHECKING:
    from .cloud import LocalCloud

Pattern = dict[str, Any]

#: The local cloud's account and Region (edakit.cloud imports this module, so they are repeated here).
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


class InvalidPatternError(EdakitError, ValueError):
    """A pattern that PutRule would refuse (not JSON, or a field that is not an array or an object)."""


def parse(pattern: Mapping[str, Any] | str) -> Pattern:
    """The pattern as a dict, checked as PutRule checks it; a pattern may be given as its JSON text."""
    text = pattern if isinstance(pattern, str) else json.dumps(pattern)
    hint = 'Every field of a pattern is an array of values (["shop.storefront"]) or an object of fields.'
    try:
        loaded = json.loads(text)
    except ValueError:
        raise InvalidPatternError(f"the event pattern is not valid JSON: {text}") from None
    if not isinstance(loaded, dict):
        raise InvalidPatternError(f"an event pattern is a JSON object, got {text}. {hint}")
    try:
        return EventPattern.load(text).get_pattern()
    except InvalidEventPatternException as exc:
        raise InvalidPatternError(f"{exc.message} in {text}. {hint}") from None


def matches(pattern: Mapping[str, Any] | str, event: Mapping[str, Any]) -> bool:
    """True when EventBridge (as the local cloud emulates it) would send ``event`` to a rule with ``pattern``.

    ``event`` is an event as it is on the bus (``source``, ``detail-type``,
    ``detail``...); ``as_event`` makes one from a PutEvents entry.
    """
    # Rule.__init__ loads the pattern from its JSON text and delivery calls
    # matches_event on it: the same two steps, so the same answer.
    return bool(EventPattern.load(json.dumps(parse(pattern))).matches_event(dict(event)))


def as_event(entry: Mapping[str, Any], *, account: str = ACCOUNT_ID, region: str = REGION,
             time: str = "2025-11-28T09:00:00Z", event_id: str | None = None) -> dict[str, Any]:
    """The event EventBridge makes of a PutEvents entry (Source, DetailType, Detail): what rules match.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
    """
    detail = entry.get("Detail", "{}")
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": account,
        "time": time,
        "region": region,
        "resources": list(entry.get("Resources") or []),
        "detail": json.loads(detail) if isinstance(detail, str) else dict(detail),
    }


def rule_patterns(cloud_or_template: "LocalCloud | str | os.PathLike[str]") -> dict[str, Pattern]:
    """Each rule's event pattern, by logical id, from a running cloud or from a stage's template.

    From a template (a file or its directory) the patterns are read from the
    translated CloudFormation, so rules that SAM makes from a function's
    EventBridgeRule events are included, under the logical ids SAM gives them.
    From a cloud they are read from the rules as deployed.
    """
    if hasattr(cloud_or_template, "deployment"):
        return _deployed_patterns(cloud_or_template)  # type: ignore[arg-type]
    from .template import load_stage

    stage = load_stage(cloud_or_template, REGION)  # type: ignore[arg-type]
    patterns: dict[str, Pattern] = {}
    for logical_id, resource in stage.resources.items():
        if resource.get("Type") != "AWS::Events::Rule":
            continue
        pattern = (resource.get("Properties") or {}).get("EventPattern")
        if pattern is None:
            continue  # a scheduled rule
        if _uses_intrinsics(pattern):
            raise EdakitError(f"{logical_id}: its EventPattern uses CloudFormation functions (Ref, Fn::...), which "
                              "only a deployment resolves; read it from a running cloud: rule_patterns(cloud).")
        patterns[logical_id] = parse(pattern)
    return patterns


def _deployed_patterns(cloud: "LocalCloud") -> dict[str, Pattern]:
    if cloud.deployment is None:
        raise EdakitError("the cloud is not open: use `with LocalCloud.from_template(...) as cloud:`")
    rules = {name: rule for bus in cloud.events_backend.event_buses.values() for name, rule in bus.rules.items()}
    patterns: dict[str, Pattern] = {}
    for logical_id, resource_type in cloud.deployment.resource_types.items():
        rule = rules.get(cloud.deployment.physical_ids.get(logical_id, ""))
        if resource_type == "AWS::Events::Rule" and rule is not None and rule.event_pattern.get_pattern():
            patterns[logical_id] = rule.event_pattern.get_pattern()
    return patterns


def _uses_intrinsics(node: Any) -> bool:
    if isinstance(node, dict):
        return any(key == "Ref" or key.startswith("Fn::") or _uses_intrinsics(value) for key, value in node.items())
    if isinstance(node, list):
        return any(_uses_intrinsics(value) for value in node)
    return False
