"""Event filtering for event source mappings, with EventBridge's pattern syntax.

https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html
"""

from __future__ import annotations

import json
from typing import Any

from moto.events.models import EventPattern


def matches_filter_criteria(filter_criteria: dict[str, Any], record: dict[str, Any]) -> bool:
    """True when the record matches any filter (filters are ORed)."""
    filters = filter_criteria.get("Filters") or []
    if not filters:
        return True
    for item in filters:
        pattern = item.get("Pattern")
        if isinstance(pattern, str):
            pattern = json.loads(pattern)
        if EventPattern(json.dumps(pattern), pattern).matches_event(record):
            return True
    return False
