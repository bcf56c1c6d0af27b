"""Returns what the LambdaContext told it."""

from __future__ import annotations

from typing import Any


def handler(event: Any, context: Any) -> dict[str, Any]:
    return {
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
    }
