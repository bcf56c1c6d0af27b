"""Event filtering for event source mappings, with EventBridge's pattern syntax.

https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html
"""

from __future__ import annotations

from typing import Any

from ..patterns import matches


def matches_filter_criteria(filter_criteria: dict[str, Any], record: dict[str, Any]) -> bool:
    """True when the record matches any filter (filters are ORed)."""
    filters = filter_criteria.get("Filters") or []
    if not filters:
        return True
    # A filter's Pattern is JSON text in the API; matches() reads it as EventBridge rules are read.
    return any(matches(item.get("Pattern") or {}, record) for item in filters)
